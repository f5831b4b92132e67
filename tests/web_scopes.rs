//! API token scopes and the password confirmation before camera passwords are shown (issue 12,
//! item 4), through the real route tree with `warp::test`.

mod web_support;

use bytes::Bytes;
use streampulse::store::accounts::TokenScope;
use warp::http::Response;
use web_support::*;

/// A form POST by a script holding `token` (no cookie, no CSRF token: tokens need none).
async fn post_with_token(
    fixture: &Fixture,
    path: &str,
    token: &str,
    fields: &[(&str, &str)],
) -> Response<Bytes> {
    warp::test::request()
        .method("POST")
        .path(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(fields))
        .reply(&fixture.routes)
        .await
}

/// A 403 answered as the API's JSON error, with `words` in its message.
fn assert_json_403(response: &Response<Bytes>, words: &str, what: &str) {
    assert_eq!(response.status(), 403, "{what}: {}", body(response));
    assert_eq!(response.headers()["content-type"], "application/json", "{what}");
    let answer: serde_json::Value = serde_json::from_slice(response.body()).expect("JSON");
    assert_eq!(answer["error"]["status"], 403, "{what}");
    let message = answer["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains(words), "{what}: {message}");
}

fn add_stream_fields() -> Vec<(&'static str, &'static str)> {
    vec![("name", "Porch"), ("url", "rtsp://192.0.2.40/s")]
}

#[tokio::test]
async fn a_read_token_reads_but_never_sees_the_config_nor_changes_anything() {
    let fixture = Fixture::new(&standard_config());
    let token = fixture.token("grafana");
    for path in [
        "/api/v1/streams",
        "/api/v1/streams/Gate",
        "/metrics",
        "/",
        "/streams/Gate",
    ] {
        let response = fixture.get_with_token(path, &token).await;
        assert_eq!(response.status(), 200, "{path}: {}", body(&response));
    }
    let before = std::fs::read(&fixture.config_path).expect("read");
    for path in [
        "/config",
        "/config?reveal=1",
        "/config?saved=1",
        "/config/confirm",
    ] {
        let response = fixture.get_with_token(path, &token).await;
        assert_json_403(&response, "scope read", path);
        assert!(!body(&response).contains(CAMERA_PASSWORD), "{path}");
    }
    let raw = standard_config().replace("heartbeat_seconds: 15", "heartbeat_seconds: 20");
    let posts: [(&str, Vec<(&str, &str)>); 6] = [
        ("/config", vec![("text", raw.as_str()), ("reveal", "1")]),
        ("/config", vec![("text", raw.as_str())]),
        ("/config/streams/add", add_stream_fields()),
        ("/config/streams/remove", vec![("name", "Gate")]),
        (
            "/config/streams/rename",
            vec![("name", "Gate"), ("new_name", "Front")],
        ),
        ("/config/confirm", vec![("password", PASSWORD)]),
    ];
    for (path, fields) in posts {
        let response = post_with_token(&fixture, path, &token, &fields).await;
        assert_json_403(&response, "--scope admin", path);
    }
    assert_eq!(
        std::fs::read(&fixture.config_path).expect("read"),
        before,
        "nothing written"
    );
}

#[tokio::test]
async fn an_admin_token_changes_the_config_but_never_reveals_passwords() {
    let fixture = Fixture::new(&standard_config());
    let token = fixture.token_with_scope("deploy", TokenScope::Admin);
    let added = post_with_token(&fixture, "/config/streams/add", &token, &add_stream_fields()).await;
    assert_eq!(added.status(), 303, "{}", body(&added));
    assert_eq!(location(&added), "/config?saved=1");
    let text = std::fs::read_to_string(&fixture.config_path).expect("read");
    assert!(text.contains("name: \"Porch\""), "{text}");
    assert!(
        text.contains(CAMERA_PASSWORD),
        "the other cameras keep their passwords"
    );

    let editor = fixture.get_with_token("/config", &token).await;
    assert_eq!(editor.status(), 200);
    assert!(!body(&editor).contains(CAMERA_PASSWORD), "masked");
    for path in ["/config?reveal=1", "/config?saved=1&reveal=1", "/config/confirm"] {
        let response = fixture.get_with_token(path, &token).await;
        assert_json_403(&response, "never reveal", path);
        assert!(!body(&response).contains(CAMERA_PASSWORD), "{path}");
    }
    let mut fields = vec![("name", "Gate"), ("reveal", "1")];
    let removed = post_with_token(&fixture, "/config/streams/remove", &token, &fields).await;
    assert_json_403(&removed, "never reveal", "remove with reveal");
    let confirm = post_with_token(&fixture, "/config/confirm", &token, &[("password", PASSWORD)]).await;
    assert_json_403(&confirm, "never reveal", "confirm");
    assert!(std::fs::read_to_string(&fixture.config_path)
        .expect("read")
        .contains("name: Gate"));
    fields.pop();
    let removed = post_with_token(&fixture, "/config/streams/remove", &token, &fields).await;
    assert_eq!(removed.status(), 303, "{}", body(&removed));
}

#[tokio::test]
async fn showing_passwords_needs_a_recent_password_confirmation() {
    let (fixture, session) = Fixture::logged_in(&standard_config()).await;
    let start = fixture.state.clock().offset_ms();

    // Unconfirmed: "Show passwords" leads to the confirm page, which leads back.
    let asked = fixture.get("/config?reveal=1", Some(&session)).await;
    assert_eq!(asked.status(), 303);
    assert_eq!(location(&asked), "/config/confirm?next=%2Fconfig%3Freveal%3D1");
    let after_save = fixture.get("/config?saved=1&reveal=1", Some(&session)).await;
    assert_eq!(
        location(&after_save),
        "/config/confirm?next=%2Fconfig%3Fsaved%3D1%26reveal%3D1"
    );
    let page = fixture.get(&location(&asked), Some(&session)).await;
    assert_eq!(page.status(), 200);
    let html = body(&page);
    assert!(
        html.contains("Confirm your password to show camera passwords"),
        "{html}"
    );
    assert!(html.contains("id=\"confirm-form\""));
    // Handlebars escapes `=` in attribute values.
    assert!(
        html.contains("name=\"next\" value=\"/config?reveal&#x3D;1\""),
        "{html}"
    );
    assert!(!html.contains(CAMERA_PASSWORD));

    // Without the form's CSRF token, or with the wrong password: refused.
    let forged = fixture
        .post(
            "/config/confirm",
            Some(&session.cookie),
            &[("password", PASSWORD), ("next", "/config?reveal=1")],
        )
        .await;
    assert_eq!(forged.status(), 403);
    let wrong = fixture.confirm_password(&session, "not the password").await;
    assert_eq!(wrong.status(), 401);
    assert!(body(&wrong).contains("Wrong password."));
    assert_eq!(
        fixture.get("/config?reveal=1", Some(&session)).await.status(),
        303
    );

    // The right password: back to the editor, passwords shown.
    let confirmed = fixture.confirm_password(&session, PASSWORD).await;
    assert_eq!(confirmed.status(), 303, "{}", body(&confirmed));
    assert_eq!(location(&confirmed), "/config?reveal=1");
    let revealed = fixture.get("/config?reveal=1", Some(&session)).await;
    assert_eq!(revealed.status(), 200);
    assert!(body(&revealed).contains(CAMERA_PASSWORD));
    // Only this session: another login of the same user must confirm on its own.
    let other = fixture.login("admin", PASSWORD).await;
    assert_eq!(fixture.get("/config?reveal=1", Some(&other)).await.status(), 303);

    // Within the window it holds; after it, confirm again.
    let window = streampulse::web::auth::REVEAL_CONFIRM_MS;
    fixture.state.clock().set_offset(start + window - 30 * SECOND);
    assert_eq!(
        fixture.get("/config?reveal=1", Some(&session)).await.status(),
        200
    );
    fixture.state.clock().set_offset(start + window + SECOND);
    let expired = fixture.get("/config?reveal=1", Some(&session)).await;
    assert_eq!(expired.status(), 303);
    assert!(location(&expired).starts_with("/config/confirm?"));

    // An edit posted from a revealed editor after the window still saves, but what comes back
    // is masked.
    let refused = fixture
        .post(
            "/config/streams/add",
            Some(&session.cookie),
            &[
                ("csrf", &session.csrf),
                ("reveal", "1"),
                ("name", "Gate"),
                ("url", "rtsp://h/"),
            ],
        )
        .await;
    assert_eq!(refused.status(), 400, "a second Gate is refused");
    assert!(!body(&refused).contains(CAMERA_PASSWORD), "{}", body(&refused));
    let saved = fixture
        .post(
            "/config/streams/add",
            Some(&session.cookie),
            &[
                ("csrf", &session.csrf),
                ("reveal", "1"),
                ("name", "Porch"),
                ("url", "rtsp://h/"),
            ],
        )
        .await;
    assert_eq!(saved.status(), 303, "{}", body(&saved));
    assert_eq!(location(&saved), "/config?saved=1&reveal=1");
    assert_eq!(fixture.get(&location(&saved), Some(&session)).await.status(), 303);

    // Confirmed again: the revealed view is back.
    assert_eq!(fixture.confirm_password(&session, PASSWORD).await.status(), 303);
    assert!(body(&fixture.get("/config?reveal=1", Some(&session)).await).contains(CAMERA_PASSWORD));
}

#[tokio::test]
async fn the_confirm_form_follows_only_same_site_paths() {
    let (fixture, session) = Fixture::logged_in(&standard_config()).await;
    for (next, expected) in [
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\t/evil.example", "/"),
        ("/streams/Gate", "/streams/Gate"),
    ] {
        let response = fixture
            .post(
                "/config/confirm",
                Some(&session.cookie),
                &[("csrf", &session.csrf), ("password", PASSWORD), ("next", next)],
            )
            .await;
        assert_eq!(response.status(), 303, "{next:?}");
        assert_eq!(location(&response), expected, "{next:?}");
    }
}

#[tokio::test]
async fn wrong_confirmations_count_in_the_login_throttle() {
    let (fixture, session) = Fixture::logged_in(&standard_config()).await;
    let now = fixture.now_ms();
    let mut statuses = Vec::new();
    for _ in 0..8 {
        fixture.set_now(now);
        statuses.push(
            fixture
                .confirm_password(&session, "not the password")
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(&statuses[..5], [401; 5], "{statuses:?}");
    assert_eq!(statuses[7], 429, "{statuses:?}");
    fixture.set_now(now);
    let blocked = fixture.confirm_password(&session, PASSWORD).await;
    assert_eq!(
        blocked.status(),
        429,
        "not even the right password is checked now"
    );
    assert!(blocked.headers().contains_key("retry-after"));
    assert!(body(&blocked).contains("Too many failed password attempts"));
    // The same client logging in as that user waits too: one count for both forms.
    fixture.set_now(now);
    assert_eq!(fixture.try_login("admin", PASSWORD).await.status(), 429);
    assert_eq!(
        fixture.get("/config?reveal=1", Some(&session)).await.status(),
        303
    );
}
