//! Web security, in-process through `warp::test`: what needs a login, the first-run setup link,
//! session cookies and expiry, CSRF, login throttling and API tokens (their scopes and the reveal
//! confirmation are in `web_scopes.rs`).

mod web_support;

use web_support::*;

const PAGES: &[&str] = &[
    "/",
    "/streams/Gate",
    "/streams/Gate?range=7d",
    "/streams/Gate/live.mjpg",
    "/config",
    "/config?reveal=1",
    "/?view=wall",
    "/streams/Gate/picture.jpg",
    "/streams/Gate/picture.jpg?kind=verdict",
];
const API: &[&str] = &[
    "/api/v1/streams",
    "/api/v1/streams/Gate",
    "/api/v1/streams/Gate/heartbeats",
    "/api/v1/streams/Gate/outages",
    "/api/v1/streams/Gate/snapshot.jpg",
    "/api/v1/nothing-here",
];

#[tokio::test]
async fn every_page_and_api_route_needs_a_login() {
    let fixture = Fixture::new(&standard_config());
    for path in PAGES {
        let response = fixture.get(path, None).await;
        assert_eq!(response.status(), 303, "{path}");
        assert!(
            location(&response).starts_with("/login"),
            "{path}: {}",
            location(&response)
        );
    }
    for path in API {
        let response = fixture.get(path, None).await;
        assert_eq!(response.status(), 401, "{path}");
        assert_eq!(response.headers()["content-type"], "application/json");
        assert!(
            body(&response).contains("\"status\":401"),
            "{path}: {}",
            body(&response)
        );
    }
    // Writes are refused before their body is even read.
    for path in ["/config", "/config/streams/add", "/logout"] {
        let response = fixture.post(path, None, &[("text", "garbage: [")]).await;
        assert_eq!(response.status(), 303, "{path}");
    }
    // Only health (and metrics when configured so) are open.
    let health = fixture.get("/healthz", None).await;
    assert_eq!(health.status(), 200);
    assert!(body(&health).contains("\"status\":\"ok\""));
    assert_eq!(fixture.get("/metrics", None).await.status(), 401);
    assert_eq!(fixture.get("/login", None).await.status(), 200);
    assert_eq!(fixture.get("/static/style.css", None).await.status(), 200);
    // The public status page and its pictures exist only when the config says so.
    assert_eq!(fixture.get("/status", None).await.status(), 404);
    assert_eq!(fixture.get("/status/Gate/picture.jpg", None).await.status(), 404);

    let public = Fixture::new(&format!("{}web:\n  metrics_public: true\n", standard_config()));
    let metrics = public.get("/metrics", None).await;
    assert_eq!(metrics.status(), 200);
    assert!(body(&metrics).contains("streampulse_stream_up{stream=\"Gate\"}"));
}

#[tokio::test]
async fn login_redirects_back_and_sets_a_strict_http_only_cookie() {
    let fixture = Fixture::new(&standard_config());
    fixture.add_user("admin", PASSWORD);
    let response = fixture.get("/streams/Gate", None).await;
    assert_eq!(location(&response), "/login?next=%2Fstreams%2FGate");

    let form = fixture.get("/login?next=%2Fstreams%2FGate", None).await;
    let html = body(&form);
    assert!(html.contains("id=\"login-form\""));
    assert!(html.contains("value=\"/streams/Gate\""), "next is kept");
    let login_cookie = cookie_pair(&form, "sp_login_csrf").expect("pre-login cookie");
    let token = csrf_field(&html).expect("csrf field");
    let response = fixture
        .post(
            "/login",
            Some(&login_cookie),
            &[
                ("csrf", &token),
                ("user", "admin"),
                ("password", PASSWORD),
                ("next", "/streams/Gate"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303, "{}", body(&response));
    assert_eq!(location(&response), "/streams/Gate");
    let cookie = set_cookies(&response)
        .into_iter()
        .find(|c| c.starts_with("sp_session="))
        .expect("session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP without behind_tls: {cookie}"
    );

    // An open redirect is not followed.
    let session = fixture.login("admin", PASSWORD).await;
    let response = fixture
        .post(
            "/login",
            Some(&login_cookie),
            &[
                ("csrf", &token),
                ("user", "admin"),
                ("password", PASSWORD),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(location(&response), "/");

    // Logout ends the session on the server, not just in the browser.
    let logout = fixture
        .post("/logout", Some(&session.cookie), &[("csrf", &session.csrf)])
        .await;
    assert_eq!(logout.status(), 303);
    assert!(set_cookies(&logout)
        .iter()
        .any(|c| c.starts_with("sp_session=;") && c.contains("Max-Age=0")));
    assert_eq!(fixture.get("/", Some(&session)).await.status(), 303);
}

#[tokio::test]
async fn cookies_are_secure_behind_tls_and_wrong_passwords_fail() {
    let fixture = Fixture::new(&format!("{}web:\n  behind_tls: true\n", standard_config()));
    fixture.add_user("admin", PASSWORD);
    let wrong = fixture.try_login("admin", "not the password").await;
    assert_eq!(wrong.status(), 401);
    assert!(body(&wrong).contains("Wrong user name or password."));
    assert!(cookie_pair(&wrong, "sp_session").is_none());
    let unknown = fixture.try_login("nobody", PASSWORD).await;
    assert_eq!(unknown.status(), 401);
    let right = fixture.try_login("admin", PASSWORD).await;
    let cookie = set_cookies(&right)
        .into_iter()
        .find(|c| c.starts_with("sp_session="))
        .expect("session cookie");
    assert!(cookie.ends_with("; Secure"), "{cookie}");
}

#[tokio::test]
async fn the_setup_link_creates_the_first_administrator_once() {
    let fixture = Fixture::new(&standard_config());
    let token = fixture
        .state
        .setup_token()
        .expect("no user yet, so a setup token");
    assert_eq!(fixture.get("/setup?token=wrong", None).await.status(), 404);
    let login = fixture.get("/login", None).await;
    assert!(body(&login).contains("No user exists yet"));

    let form = fixture.get(&format!("/setup?token={token}"), None).await;
    assert_eq!(form.status(), 200);
    let cookie = cookie_pair(&form, "sp_login_csrf").expect("csrf cookie");
    let csrf = csrf_field(&body(&form)).expect("csrf field");
    let mismatch = fixture
        .post(
            "/setup",
            Some(&cookie),
            &[
                ("csrf", &csrf),
                ("token", &token),
                ("user", "root"),
                ("password", PASSWORD),
                ("password2", "other"),
            ],
        )
        .await;
    assert_eq!(mismatch.status(), 400);
    assert!(body(&mismatch).contains("The two passwords differ."));
    let short = fixture
        .post(
            "/setup",
            Some(&cookie),
            &[
                ("csrf", &csrf),
                ("token", &token),
                ("user", "root"),
                ("password", "short"),
                ("password2", "short"),
            ],
        )
        .await;
    assert_eq!(short.status(), 400);
    assert!(body(&short).contains("at least 8 characters"));

    let created = fixture
        .post(
            "/setup",
            Some(&cookie),
            &[
                ("csrf", &csrf),
                ("token", &token),
                ("user", "root"),
                ("password", PASSWORD),
                ("password2", PASSWORD),
            ],
        )
        .await;
    assert_eq!(created.status(), 303, "{}", body(&created));
    let session = cookie_pair(&created, "sp_session").expect("logged in at once");
    let dashboard = fixture
        .get(
            "/",
            Some(&Session {
                cookie: session,
                csrf: String::new(),
            }),
        )
        .await;
    assert_eq!(dashboard.status(), 200);
    assert!(body(&dashboard).contains("id=\"current-user\">root<"));

    // The link is spent.
    assert_eq!(fixture.state.setup_token(), None);
    assert_eq!(
        fixture.get(&format!("/setup?token={token}"), None).await.status(),
        404
    );
    let again = fixture
        .post(
            "/setup",
            Some(&cookie),
            &[
                ("csrf", &csrf),
                ("token", &token),
                ("user", "mallory"),
                ("password", PASSWORD),
                ("password2", PASSWORD),
            ],
        )
        .await;
    assert_eq!(again.status(), 404);
    fixture.login("root", PASSWORD).await;
    assert_eq!(fixture.try_login("mallory", PASSWORD).await.status(), 401);
}

#[tokio::test]
async fn no_setup_link_once_a_user_exists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config_path = dir.path().join("config.yaml");
    std::fs::write(&config_path, standard_config()).expect("write");
    let accounts = streampulse::store::accounts::Accounts::open(&dir.path().join("streams.db"))
        .expect("accounts")
        .with_hasher(cheap_hasher());
    accounts.add_user("admin", PASSWORD, 0).expect("add");
    let state =
        streampulse::web::WebState::new(streampulse::web::WebOptions::new(&config_path)).expect("state");
    assert_eq!(state.setup_token(), None);
}

#[tokio::test]
async fn state_changing_requests_without_a_valid_csrf_token_are_refused() {
    let (fixture, session) = Fixture::logged_in(&standard_config()).await;
    let before = std::fs::read(&fixture.config_path).expect("read");
    let valid_text = standard_config().replace("heartbeat_seconds: 15", "heartbeat_seconds: 20");
    let page = fixture.get("/config", Some(&session)).await;
    let version = body(&page)
        .split("name=\"version\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("version field")
        .to_string();

    // No token, a wrong token, a token from another session.
    let other = fixture.login("admin", PASSWORD).await;
    for csrf in [None, Some("0".repeat(64)), Some(other.csrf.clone())] {
        let mut fields = vec![
            ("text", valid_text.as_str()),
            ("version", version.as_str()),
            ("reveal", "1"),
        ];
        if let Some(csrf) = &csrf {
            fields.push(("csrf", csrf));
        }
        let response = fixture.post("/config", Some(&session.cookie), &fields).await;
        assert_eq!(response.status(), 403, "{csrf:?}");
        assert!(body(&response).contains("security token"));
    }
    // The right token from another site.
    let response = warp::test::request()
        .method("POST")
        .path("/config")
        .header("host", "127.0.0.1:8000")
        .header("origin", "http://evil.example")
        .header("cookie", &session.cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[
            ("csrf", &session.csrf),
            ("text", &valid_text),
            ("version", &version),
            ("reveal", "1"),
        ]))
        .reply(&fixture.routes)
        .await;
    assert_eq!(response.status(), 403);
    for path in [
        "/config/streams/add",
        "/config/streams/remove",
        "/config/streams/rename",
        "/logout",
    ] {
        let response = fixture
            .post(
                path,
                Some(&session.cookie),
                &[("name", "Gate"), ("new_name", "X"), ("url", "rtsp://h/")],
            )
            .await;
        assert_eq!(response.status(), 403, "{path}");
    }
    assert_eq!(
        std::fs::read(&fixture.config_path).expect("read"),
        before,
        "nothing written"
    );
    assert_eq!(
        fixture.get("/", Some(&session)).await.status(),
        200,
        "still logged in"
    );

    // Login itself: without the pre-login cookie the form is refused.
    let form = fixture.get("/login", None).await;
    let token = csrf_field(&body(&form)).expect("csrf");
    let response = fixture
        .post(
            "/login",
            None,
            &[("csrf", &token), ("user", "admin"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(response.status(), 403);
    assert!(cookie_pair(&response, "sp_session").is_none());

    // With the right token it goes through.
    let response = fixture
        .post(
            "/config",
            Some(&session.cookie),
            &[
                ("csrf", &session.csrf),
                ("text", &valid_text),
                ("version", &version),
                ("reveal", "1"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303, "{}", body(&response));
}

/// A login from the client at `from` (its TCP peer address).
async fn login_from(
    fixture: &Fixture,
    from: [u8; 4],
    user: &str,
    password: &str,
) -> warp::http::Response<bytes::Bytes> {
    let form = fixture.get("/login", None).await;
    let login_cookie = cookie_pair(&form, "sp_login_csrf").expect("login csrf cookie");
    let token = csrf_field(&body(&form)).expect("csrf field");
    warp::test::request()
        .method("POST")
        .path("/login")
        .header("host", "127.0.0.1:8000")
        .header("cookie", login_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .remote_addr((from, 40000).into())
        .body(form_body(&[
            ("csrf", &token),
            ("user", user),
            ("password", password),
            ("next", "/"),
        ]))
        .reply(&fixture.routes)
        .await
}

const ATTACKER: [u8; 4] = [192, 0, 2, 66];
const ELSEWHERE: [u8; 4] = [198, 51, 100, 7];

fn retry_after(response: &warp::http::Response<bytes::Bytes>) -> i64 {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds")
}

#[tokio::test]
async fn the_guessing_client_is_throttled_not_the_account_it_guesses() {
    let fixture = Fixture::new(&standard_config());
    fixture.add_user("bob", PASSWORD);
    fixture.add_user("dave", PASSWORD);
    let now = fixture.now_ms();
    let mut statuses = Vec::new();
    for _ in 0..20 {
        fixture.set_now(now);
        statuses.push(
            login_from(&fixture, ATTACKER, "bob", "guess")
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(&statuses[..5], [401; 5], "{statuses:?}");
    assert_eq!(&statuses[5..], [429; 15], "then it waits: {statuses:?}");
    // Even the right password is not checked from there, whatever the name's case.
    for user in ["bob", "BOB"] {
        fixture.set_now(now);
        let blocked = login_from(&fixture, ATTACKER, user, PASSWORD).await;
        assert_eq!(blocked.status(), 429, "{user}");
        assert!(retry_after(&blocked) >= 1);
        assert!(body(&blocked).contains("Too many failed password attempts"));
        assert!(cookie_pair(&blocked, "sp_session").is_none());
    }
    // bob himself, from his own machine, logs in at once.
    fixture.set_now(now);
    let bob = login_from(&fixture, ELSEWHERE, "bob", PASSWORD).await;
    assert_eq!(bob.status(), 303, "{}", body(&bob));
    assert!(cookie_pair(&bob, "sp_session").is_some());

    // Random names from the attacker slow the attacker, not dave elsewhere.
    for i in 0..20 {
        fixture.set_now(now);
        login_from(&fixture, ATTACKER, &format!("user{i}"), "guess").await;
    }
    fixture.set_now(now);
    assert_eq!(
        login_from(&fixture, ATTACKER, "dave", PASSWORD).await.status(),
        429
    );
    fixture.set_now(now);
    assert_eq!(
        login_from(&fixture, ELSEWHERE, "dave", PASSWORD).await.status(),
        303
    );
}

#[tokio::test]
async fn the_delay_grows_with_each_failure_and_relaxes_with_time() {
    let fixture = Fixture::new(&standard_config());
    fixture.add_user("bob", PASSWORD);
    let mut now = fixture.now_ms();
    for _ in 0..5 {
        fixture.set_now(now);
        assert_eq!(login_from(&fixture, ATTACKER, "bob", "guess").await.status(), 401);
    }
    // Each failure after the free ones doubles the wait: 1 s, 2 s, 4 s, …
    for expected in [1, 2, 4, 8, 16, 32] {
        fixture.set_now(now);
        let waiting = login_from(&fixture, ATTACKER, "bob", "guess").await;
        assert_eq!(waiting.status(), 429);
        // Whole seconds, rounded up: a millisecond's jitter may add one.
        let wait = retry_after(&waiting);
        assert!((expected..=expected + 1).contains(&wait), "{wait} for {expected}");
        now += expected * SECOND + 100;
        fixture.set_now(now);
        assert_eq!(login_from(&fixture, ATTACKER, "bob", "guess").await.status(), 401);
    }
    fixture.set_now(now);
    let wait = retry_after(&login_from(&fixture, ATTACKER, "bob", PASSWORD).await);
    assert!((64..=65).contains(&wait), "{wait}");
    // Half an hour of quiet and even this client is back to normal.
    now += 30 * MINUTE;
    fixture.set_now(now);
    assert_eq!(
        login_from(&fixture, ATTACKER, "bob", PASSWORD).await.status(),
        303
    );
}

/// A login posted by a reverse proxy on 127.0.0.1 for the client `forwarded_for`.
async fn login_through_proxy(
    fixture: &Fixture,
    forwarded_for: &str,
    user: &str,
    password: &str,
) -> warp::http::Response<bytes::Bytes> {
    fixture
        .try_login_with_headers(user, password, &[("x-forwarded-for", forwarded_for)])
        .await
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_login_limit() {
    let config = format!(
        "{}web:\n  trusted_proxies: [127.0.0.1, \"::1\"]\n",
        standard_config()
    );
    let fixture = Fixture::new(&config);
    fixture.add_user("admin", PASSWORD);
    let now = fixture.now_ms();
    for i in 0..20 {
        fixture.set_now(now);
        let response = login_through_proxy(&fixture, "192.0.2.7", &format!("user{i}"), "guess").await;
        assert!([401, 429].contains(&response.status().as_u16()));
    }
    fixture.set_now(now);
    let blocked = login_through_proxy(&fixture, "192.0.2.7", "admin", PASSWORD).await;
    assert_eq!(blocked.status(), 429, "the guessing client is blocked");
    // A forged entry to the left of the proxy's own does not get the guesser out.
    fixture.set_now(now);
    let forged = login_through_proxy(&fixture, "198.51.100.1, 192.0.2.7", "admin", PASSWORD).await;
    assert_eq!(forged.status(), 429);
    // Another client behind the same proxy is not.
    let other = login_through_proxy(&fixture, "192.0.2.8", "admin", PASSWORD).await;
    assert_eq!(other.status(), 303, "{}", body(&other));

    // Without `trusted_proxies` the header is ignored: everyone shares the proxy's address.
    let fixture = Fixture::new(&standard_config());
    fixture.add_user("admin", PASSWORD);
    let now = fixture.now_ms();
    for i in 0..20 {
        fixture.set_now(now);
        login_through_proxy(&fixture, "192.0.2.7", &format!("user{i}"), "guess").await;
    }
    fixture.set_now(now);
    let shared = login_through_proxy(&fixture, "192.0.2.8", "admin", PASSWORD).await;
    assert_eq!(shared.status(), 429);
}

#[test]
fn trusted_proxies_must_be_ip_addresses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.yaml");
    let text = format!(
        "{}web:\n  trusted_proxies:\n    - 127.0.0.1\n    - proxy.lan\n",
        standard_config()
    );
    std::fs::write(&path, text).expect("write config");
    let error = streampulse::config::load(&path)
        .expect_err("a host name is refused")
        .to_string();
    assert!(error.contains("web.trusted_proxies[1]"), "{error}");
    assert!(
        error.contains("proxy.lan") && error.contains("not an IP address"),
        "{error}"
    );
    let line = standard_config().lines().count() + 4;
    assert!(
        error.contains(&format!("config.yaml:{line}: ")),
        "names the line: {error}"
    );
}

#[tokio::test]
async fn sessions_end_when_idle_and_at_their_maximum_age() {
    let config = format!(
        "{}web:\n  session_idle_minutes: 10\n  session_max_hours: 1\n",
        standard_config()
    );
    let (fixture, session) = Fixture::logged_in(&config).await;
    let clock = fixture.state.clock();
    clock.set_offset(9 * MINUTE);
    assert_eq!(fixture.get("/", Some(&session)).await.status(), 200);
    clock.set_offset(20 * MINUTE);
    let expired = fixture.get("/", Some(&session)).await;
    assert_eq!(expired.status(), 303, "idle for 11 minutes");
    assert_eq!(fixture.get("/api/v1/streams", Some(&session)).await.status(), 401);

    clock.set_offset(0);
    let session = fixture.login("admin", PASSWORD).await;
    for minutes in (5..=55).step_by(5) {
        clock.set_offset(minutes * MINUTE);
        assert_eq!(
            fixture.get("/", Some(&session)).await.status(),
            200,
            "{minutes} min"
        );
    }
    clock.set_offset(61 * MINUTE);
    assert_eq!(
        fixture.get("/", Some(&session)).await.status(),
        303,
        "past the absolute limit"
    );
}

#[tokio::test]
async fn api_tokens_authenticate_scripts() {
    let fixture = Fixture::new(&standard_config());
    let token = fixture.token("grafana");
    let response = fixture.get_with_token("/api/v1/streams", &token).await;
    assert_eq!(response.status(), 200, "{}", body(&response));
    assert_eq!(fixture.get_with_token("/metrics", &token).await.status(), 200);
    assert_eq!(
        fixture.get_with_token("/", &token).await.status(),
        200,
        "pages accept tokens too"
    );
    assert_eq!(
        fixture
            .get_with_token("/api/v1/streams", "sp_wrong")
            .await
            .status(),
        401
    );
    let accounts = streampulse::store::accounts::Accounts::open(&fixture.db_path).expect("accounts");
    accounts.revoke_token("grafana").expect("revoke");
    assert_eq!(
        fixture.get_with_token("/api/v1/streams", &token).await.status(),
        401
    );
}
