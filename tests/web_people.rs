//! People in the browser (issue 15, section 4): changing your own password, the users page,
//! the viewer role on every route, the public status page and the time display choice, through
//! the real route tree with `warp::test`.

mod web_support;

use bytes::Bytes;
use streampulse::heartbeat::Health;
use streampulse::store::accounts::{Accounts, Role, TokenScope};
use warp::http::Response;
use web_support::*;

const VIEWER_PASSWORD: &str = "viewer password 123";

/// A fixture with an admin (`admin`) and a viewer (`vera`), both logged in.
async fn admin_and_viewer(config: &str) -> (Fixture, Session, Session) {
    let (fixture, admin) = Fixture::logged_in(config).await;
    Accounts::open(&fixture.db_path)
        .expect("accounts")
        .with_hasher(cheap_hasher())
        .add_user_with_role("vera", VIEWER_PASSWORD, Role::Viewer, fixture.now_ms())
        .expect("add viewer");
    let response = fixture.try_login("vera", VIEWER_PASSWORD).await;
    assert_eq!(response.status(), 303, "{}", body(&response));
    let cookie = cookie_pair(&response, "sp_session").expect("session cookie");
    let mut viewer = Session {
        cookie,
        csrf: String::new(),
    };
    let page = fixture.get("/account", Some(&viewer)).await;
    viewer.csrf = csrf_field(&body(&page)).expect("csrf on the account page");
    (fixture, admin, viewer)
}

/// The page routes that change something (or show the config), read from the router's source so
/// a POST route added later fails [`a_viewer_changes_nothing_on_any_route`] until it is
/// classified here. `{}` stands for a path parameter.
fn router_post_paths() -> Vec<String> {
    let source = include_str!("../src/web/router.rs");
    let mut paths = Vec::new();
    for (index, _) in source.match_indices("warp::path!(") {
        let rest = &source[index + "warp::path!(".len()..];
        let Some(end) = rest.find(')') else { continue };
        let following = &rest[end..];
        let statement = &following[..following.find(';').unwrap_or(following.len())];
        if !statement.contains("warp::post()") {
            continue;
        }
        let path: Vec<String> = rest[..end]
            .split('/')
            .map(|part| part.trim().trim_matches('"').to_string())
            .map(|part| if part == "String" { "{}".into() } else { part })
            .collect();
        paths.push(format!("/{}", path.join("/")));
    }
    paths
}

/// POSTs a viewer may make: nothing of the fleet changes.
const VIEWER_MAY_POST: &[&str] = &[
    "/login",
    "/setup",
    "/logout",
    "/account/password",
    "/account/times",
];

fn assert_page_403(response: &Response<Bytes>, what: &str) {
    assert_eq!(response.status(), 403, "{what}: {}", body(response));
    let content_type = response.headers()["content-type"].to_str().unwrap_or("");
    assert!(content_type.starts_with("text/html"), "{what}: {content_type}");
    let page = body(response);
    assert!(
        page.contains("id=\"error-message\""),
        "{what}: a clear error page"
    );
    assert!(page.contains("is a viewer"), "{what}: {page}");
    assert!(!page.contains(CAMERA_PASSWORD), "{what}");
}

#[tokio::test]
async fn a_viewer_changes_nothing_on_any_route() {
    let (fixture, _admin, viewer) = admin_and_viewer(&standard_config()).await;
    let config_before = std::fs::read(&fixture.config_path).expect("read");
    let raw = standard_config().replace("heartbeat_seconds: 15", "heartbeat_seconds: 20");
    // Every mutating route, with a form that an admin's session would get through.
    let posts: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("/config", vec![("text", raw.as_str())]),
        (
            "/config/streams/add",
            vec![("name", "Porch"), ("url", "rtsp://192.0.2.40/s")],
        ),
        ("/config/streams/remove", vec![("name", "Gate")]),
        (
            "/config/streams/rename",
            vec![("name", "Gate"), ("new_name", "Front")],
        ),
        (
            "/config/confirm",
            vec![("password", VIEWER_PASSWORD), ("next", "/config?reveal=1")],
        ),
        ("/users/add", vec![("name", "mallory"), ("role", "admin")]),
        ("/users/remove", vec![("name", "admin")]),
        ("/users/reset", vec![("name", "admin")]),
        ("/users/role", vec![("name", "vera"), ("role", "admin")]),
        ("/streams/Gate/mute", vec![("for", "forever")]),
        ("/streams/Gate/unmute", vec![]),
        ("/config/notifications/test", vec![("channel", "")]),
    ];
    // The router's POST routes are all covered here or allowed to viewers.
    let covered: Vec<String> = posts
        .iter()
        .map(|(path, _)| {
            let parts: Vec<&str> = path.split('/').collect();
            match parts.as_slice() {
                ["", "config", "streams", _] | ["", "users", _] => {
                    format!("{}/{{}}", parts[..parts.len() - 1].join("/"))
                }
                ["", "streams", _, _] => "/streams/{}/{}".to_string(),
                _ => path.to_string(),
            }
        })
        .collect();
    let found = router_post_paths();
    assert!(found.len() >= 9, "the router's POST routes: {found:?}");
    for path in &found {
        assert!(
            covered.contains(path) || VIEWER_MAY_POST.contains(&path.as_str()),
            "POST {path} is neither tested for viewers nor allowed to them"
        );
    }
    for (path, mut fields) in posts {
        fields.push(("csrf", &viewer.csrf));
        let response = fixture.post(path, Some(&viewer.cookie), &fields).await;
        assert_page_403(&response, &format!("POST {path}"));
    }
    for path in [
        "/config",
        "/config?reveal=1",
        "/config/confirm",
        "/config/notifications",
        "/users",
        "/users?done=role",
    ] {
        let response = fixture.get(path, Some(&viewer)).await;
        assert_page_403(&response, &format!("GET {path}"));
    }
    assert_eq!(std::fs::read(&fixture.config_path).expect("read"), config_before);
    let users = Accounts::open(&fixture.db_path)
        .expect("accounts")
        .users()
        .expect("users");
    let roles: Vec<(&str, Role)> = users.iter().map(|u| (u.name.as_str(), u.role)).collect();
    assert_eq!(roles, [("admin", Role::Admin), ("vera", Role::Viewer)]);
    // The admin still logs in with the old password: nothing was reset.
    assert_eq!(fixture.try_login("admin", PASSWORD).await.status(), 303);
}

#[tokio::test]
async fn a_viewer_reads_the_dashboard_streams_api_and_exports() {
    let (fixture, _admin, viewer) = admin_and_viewer(&standard_config()).await;
    let now = fixture.now_ms();
    fixture.seed(&["Gate", "Yard"], |ids| {
        vec![
            heartbeat(ids[0], now - 2 * MINUTE, Health::Up),
            heartbeat(ids[1], now - MINUTE, Health::Down),
        ]
    });
    for path in [
        "/",
        "/streams/Gate",
        "/account",
        "/api/v1/streams",
        "/api/v1/streams/Gate",
        "/api/v1/streams/Gate/heartbeats",
        "/api/v1/streams/Yard/outages",
        "/api/v1/heartbeats.csv",
        "/api/v1/heartbeats.jsonl",
        "/api/v1/outages.csv",
        "/api/status",
        "/metrics",
    ] {
        let response = fixture.get(path, Some(&viewer)).await;
        assert_eq!(response.status(), 200, "{path}: {}", body(&response));
        assert!(!body(&response).contains(CAMERA_PASSWORD), "{path}");
    }
    let dashboard = body(&fixture.get("/", Some(&viewer)).await);
    assert!(
        !dashboard.contains("href=\"/config\""),
        "no editor link for viewers"
    );
    assert!(
        !dashboard.contains("href=\"/users\""),
        "no users link for viewers"
    );
}

#[tokio::test]
async fn changing_my_password_ends_my_other_sessions() {
    let (fixture, session) = Fixture::logged_in(&standard_config()).await;
    let other = fixture.login("admin", PASSWORD).await;
    let new_password = "a brand new password";
    let change = |current: &'static str, new: &'static str, again: &'static str| {
        let fixture = &fixture;
        let session = &session;
        async move {
            fixture
                .post(
                    "/account/password",
                    Some(&session.cookie),
                    &[
                        ("csrf", &session.csrf),
                        ("current", current),
                        ("password", new),
                        ("password2", again),
                    ],
                )
                .await
        }
    };
    let forged = fixture
        .post(
            "/account/password",
            Some(&session.cookie),
            &[
                ("csrf", "forged"),
                ("current", PASSWORD),
                ("password", new_password),
                ("password2", new_password),
            ],
        )
        .await;
    assert_eq!(forged.status(), 403, "CSRF");
    let differ = change(PASSWORD, new_password, "something else").await;
    assert_eq!(differ.status(), 400);
    let wrong = change("not my password", new_password, new_password).await;
    assert_eq!(wrong.status(), 401);
    assert!(body(&wrong).contains("current password is wrong"));
    let changed = change(PASSWORD, new_password, new_password).await;
    assert_eq!(changed.status(), 303, "{}", body(&changed));
    assert_eq!(location(&changed), "/account?changed=password");
    // This browser stays in, the other one is out.
    assert_eq!(fixture.get("/", Some(&session)).await.status(), 200);
    assert_eq!(fixture.get("/", Some(&other)).await.status(), 303);
    assert_eq!(fixture.try_login("admin", PASSWORD).await.status(), 401);
    assert_eq!(fixture.try_login("admin", new_password).await.status(), 303);
}

#[tokio::test]
async fn wrong_current_passwords_count_in_the_login_throttle() {
    let (fixture, session) = Fixture::logged_in(&standard_config()).await;
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let response = fixture
            .post(
                "/account/password",
                Some(&session.cookie),
                &[
                    ("csrf", &session.csrf),
                    ("current", "a wrong guess"),
                    ("password", "whatever it is"),
                    ("password2", "whatever it is"),
                ],
            )
            .await;
        statuses.push(response.status().as_u16());
    }
    assert_eq!(&statuses[..5], [401; 5], "{statuses:?}");
    assert_eq!(&statuses[5..], [429; 2], "{statuses:?}");
    // The same client's login waits too, even with the right password.
    assert_eq!(fixture.try_login("admin", PASSWORD).await.status(), 429);
}

/// The generated password shown once on a users page answer.
fn shown_password(page: &str) -> String {
    let start =
        page.find("id=\"generated-password\">").expect("password shown") + "id=\"generated-password\">".len();
    page[start..].split('<').next().unwrap_or("").to_string()
}

#[tokio::test]
async fn admins_add_reset_demote_and_remove_users() {
    let (fixture, admin) = Fixture::logged_in(&standard_config()).await;
    let post = |path: &'static str, name: &'static str, role: &'static str| {
        let fixture = &fixture;
        let admin = &admin;
        async move {
            fixture
                .post(
                    path,
                    Some(&admin.cookie),
                    &[("csrf", &admin.csrf), ("name", name), ("role", role)],
                )
                .await
        }
    };
    let listed = fixture.get("/users", Some(&admin)).await;
    assert_eq!(listed.status(), 200);
    assert!(body(&listed).contains("data-user=\"admin\""));

    let added = post("/users/add", "vera", "viewer").await;
    assert_eq!(added.status(), 200, "{}", body(&added));
    let first = shown_password(&body(&added));
    assert_eq!(first.chars().count(), 20);
    assert!(body(&added).contains("shown only now"));
    assert_eq!(fixture.try_login("vera", &first).await.status(), 303);
    // Shown once: the list afterwards does not hold it.
    assert!(!body(&fixture.get("/users", Some(&admin)).await).contains(&first));

    let taken = post("/users/add", "vera", "admin").await;
    assert_eq!(taken.status(), 409);
    let bad = post("/users/add", "<b>", "viewer").await;
    assert_eq!(bad.status(), 400);

    let reset = post("/users/reset", "vera", "").await;
    assert_eq!(reset.status(), 200);
    let second = shown_password(&body(&reset));
    assert_ne!(first, second);
    assert_eq!(fixture.try_login("vera", &first).await.status(), 401);
    assert_eq!(fixture.try_login("vera", &second).await.status(), 303);

    // The last admin can be neither demoted nor removed.
    for path in ["/users/role", "/users/remove"] {
        let refused = post(path, "admin", "viewer").await;
        assert_eq!(refused.status(), 409, "{path}");
        assert!(body(&refused).contains("last administrator"), "{path}");
    }
    let promoted = post("/users/role", "vera", "admin").await;
    assert_eq!(promoted.status(), 303);
    let demoted = post("/users/role", "admin", "viewer").await;
    assert_eq!(demoted.status(), 303);
    // Now a viewer: this very session lost the users page at once.
    assert_eq!(fixture.get("/users", Some(&admin)).await.status(), 403);

    let vera = fixture.login("vera", &second).await;
    let removed = fixture
        .post(
            "/users/remove",
            Some(&vera.cookie),
            &[("csrf", &vera.csrf), ("name", "admin")],
        )
        .await;
    assert_eq!(removed.status(), 303);
    assert_eq!(
        fixture.get("/", Some(&admin)).await.status(),
        303,
        "their session ended"
    );
    let missing = fixture
        .post(
            "/users/reset",
            Some(&vera.cookie),
            &[("csrf", &vera.csrf), ("name", "admin")],
        )
        .await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn api_tokens_cannot_manage_users() {
    let (fixture, _admin) = Fixture::logged_in(&standard_config()).await;
    let token = fixture.token_with_scope("deploy", TokenScope::Admin);
    let listed = fixture.get_with_token("/users", &token).await;
    assert_eq!(listed.status(), 403);
    assert_eq!(listed.headers()["content-type"], "application/json");
    for (path, fields) in [
        ("/users/reset", vec![("name", "admin")]),
        ("/users/add", vec![("name", "bot"), ("role", "admin")]),
    ] {
        let response = warp::test::request()
            .method("POST")
            .path(path)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&fields))
            .reply(&fixture.routes)
            .await;
        assert_eq!(response.status(), 403, "{path}");
        assert!(body(&response).contains("cannot manage users"), "{path}");
    }
    assert_eq!(
        fixture.try_login("admin", PASSWORD).await.status(),
        303,
        "not reset"
    );
    let names = Accounts::open(&fixture.db_path)
        .expect("accounts")
        .user_names()
        .expect("names");
    assert_eq!(names, ["admin"]);
}

#[tokio::test]
async fn the_public_status_page_is_off_by_default_and_leaks_nothing() {
    let fixture = Fixture::new(&standard_config());
    let off = fixture.get("/status", None).await;
    assert_eq!(off.status(), 404);

    let config = standard_config().replace(
        "database: streams.db\n",
        "database: streams.db\nweb:\n  public_status: true\n",
    );
    let fixture = Fixture::new(&config);
    let now = fixture.now_ms();
    fixture.seed(&["Gate", "Yard"], |ids| {
        vec![
            heartbeat(ids[0], now - 20 * SECOND, Health::Up),
            heartbeat(ids[1], now - 10 * SECOND, Health::Down),
        ]
    });
    let on = fixture.get("/status", None).await;
    assert_eq!(on.status(), 200, "{}", body(&on));
    let page = body(&on);
    for name in ["Gate", "Yard", "Dock", "Lobby"] {
        assert!(page.contains(&format!("data-name=\"{name}\"")), "{name}");
    }
    assert!(page.contains("data-health=\"down\""));
    for secret in [
        CAMERA_PASSWORD,
        "rtsp://",
        "http://viewer",
        "192.0.2.",
        "snapshot",
        "<img",
    ] {
        assert!(!page.contains(secret), "{secret} on the public page");
    }
    // Everything else still needs a login.
    assert_eq!(fixture.get("/", None).await.status(), 303);
    assert_eq!(fixture.get("/api/v1/streams", None).await.status(), 401);
}

#[tokio::test]
async fn times_follow_each_users_choice() {
    let (fixture, _admin, viewer) = admin_and_viewer(&standard_config()).await;
    let dashboard = body(&fixture.get("/", Some(&viewer)).await);
    assert!(!dashboard.contains("data-times=\"browser\""));
    let saved = fixture
        .post(
            "/account/times",
            Some(&viewer.cookie),
            &[("csrf", &viewer.csrf), ("display", "browser")],
        )
        .await;
    assert_eq!(saved.status(), 303);
    let dashboard = body(&fixture.get("/", Some(&viewer)).await);
    assert!(dashboard.contains("data-times=\"browser\""));
    // Remembered per user: a new login of the same user keeps it; the admin's pages do not.
    let again = fixture.login("vera", VIEWER_PASSWORD).await;
    assert!(body(&fixture.get("/streams/Gate", Some(&again)).await).contains("data-times=\"browser\""));
    let admin = fixture.login("admin", PASSWORD).await;
    assert!(!body(&fixture.get("/", Some(&admin)).await).contains("data-times=\"browser\""));
}
