//! Muting a stream from the web: `POST /api/v1/streams/{name}/mute` and `…/unmute` over real
//! HTTP on loopback (an admin token mutes; a read token and a viewer's session are refused), and
//! the dashboard's and stream page's mute buttons with their CSRF token.

mod web_support;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use streampulse::heartbeat::Health;
use streampulse::store::accounts::{Accounts, Role, TokenScope};
use streampulse::store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use web_support::*;

const VIEWER_PASSWORD: &str = "viewer password 123";
const HOUR_MS: i64 = 3_600_000;

/// One request over a fresh connection; the status and the body.
async fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut text =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    stream.write_all(text.as_bytes()).await.expect("write");
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer))
        .await
        .expect("answered within 10 s")
        .expect("read");
    let status = answer
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {answer}"));
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    // Small JSON answers come in one chunk; strip the chunk framing if there is one.
    let body = match body.split_once("\r\n") {
        Some((size, rest)) if usize::from_str_radix(size.trim(), 16).is_ok() => {
            rest.split("\r\n").next().unwrap_or("").to_string()
        }
        _ => body.to_string(),
    };
    (status, body)
}

fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

#[tokio::test]
async fn the_mute_api_takes_an_admin_token_and_refuses_a_read_token_and_a_viewer() {
    let (fixture, _admin) = Fixture::logged_in(&standard_config()).await;
    let now = fixture.now_ms();
    fixture.seed(&["Gate"], |ids| vec![heartbeat(ids[0], now - 1_000, Health::Up)]);
    Accounts::open(&fixture.db_path)
        .expect("accounts")
        .with_hasher(cheap_hasher())
        .add_user_with_role("vera", VIEWER_PASSWORD, Role::Viewer, now)
        .expect("add viewer");
    let viewer = fixture.try_login("vera", VIEWER_PASSWORD).await;
    let viewer_cookie = cookie_pair(&viewer, "sp_session").expect("viewer session");
    let admin_token = fixture.token_with_scope("deploy", TokenScope::Admin);
    let read_token = fixture.token("grafana");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(streampulse::web::serve(
        listener,
        fixture.state.clone(),
        async move {
            let _ = stopped.await;
        },
    ));

    let (name, value) = bearer(&admin_token);
    let (status, body) = request(
        addr,
        "POST",
        "/api/v1/streams/Gate/mute?minutes=60",
        &[(name, &value)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(answer["stream"], "Gate");
    assert_eq!(answer["mute"]["by"], "token deploy");
    let since = answer["mute"]["since_ms"].as_i64().expect("since_ms");
    assert_eq!(answer["mute"]["until_ms"].as_i64(), Some(since + HOUR_MS));

    // Everyone who reads sees it; the store has who and until when.
    let (read_name, read_value) = bearer(&read_token);
    let (status, body) = request(addr, "GET", "/api/v1/streams/Gate", &[(read_name, &read_value)]).await;
    assert_eq!(status, 200, "{body}");
    let stream: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(stream["mute"]["by"], "token deploy", "{stream}");
    let store = Store::open_read_only(&fixture.db_path).expect("store");
    let mutes = store.active_mutes(since).expect("mutes");
    assert_eq!(
        mutes.values().next().map(|m| m.until_ms),
        Some(Some(since + HOUR_MS))
    );

    // A read token, a viewer's session (with or without a CSRF header): 403, nothing changes.
    for path in ["/api/v1/streams/Gate/unmute", "/api/v1/streams/Gate/mute"] {
        let (status, body) = request(addr, "POST", path, &[(read_name, &read_value)]).await;
        assert_eq!(status, 403, "read token {path}: {body}");
        assert!(body.contains("--scope admin"), "{body}");
        let (status, body) = request(addr, "POST", path, &[("cookie", &viewer_cookie)]).await;
        assert_eq!(status, 403, "viewer {path}: {body}");
    }
    assert_eq!(store.active_mutes(since).expect("mutes").len(), 1);

    // Until unmuted, then unmuted; a stream not configured is 404; a bad length 400.
    let (status, body) = request(addr, "POST", "/api/v1/streams/Gate/mute", &[(name, &value)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("JSON")["mute"]["until_ms"],
        Value::Null
    );
    let (status, body) = request(addr, "POST", "/api/v1/streams/Gate/unmute", &[(name, &value)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("JSON")["mute"],
        Value::Null
    );
    assert!(store.active_mutes(since).expect("mutes").is_empty());
    let (status, _) = request(addr, "POST", "/api/v1/streams/Nowhere/mute", &[(name, &value)]).await;
    assert_eq!(status, 404);
    let (status, _) = request(
        addr,
        "POST",
        "/api/v1/streams/Gate/mute?minutes=0",
        &[(name, &value)],
    )
    .await;
    assert_eq!(status, 400);

    stop.send(()).expect("server still running");
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("stops")
        .expect("server task");
}

#[tokio::test]
async fn admins_mute_and_unmute_from_the_pages_with_the_csrf_token() {
    let (fixture, admin) = Fixture::logged_in(&standard_config()).await;
    let now = fixture.now_ms();
    fixture.seed(&["Gate"], |ids| vec![heartbeat(ids[0], now - 1_000, Health::Up)]);
    let dashboard = body(&fixture.get("/", Some(&admin)).await);
    assert!(dashboard.contains("action=\"/streams/Gate/mute\""), "{dashboard}");

    let forged = fixture
        .post("/streams/Gate/mute", Some(&admin.cookie), &[("for", "8h")])
        .await;
    assert_eq!(forged.status(), 403, "no CSRF token: {}", body(&forged));
    let muted = fixture
        .post(
            "/streams/Gate/mute",
            Some(&admin.cookie),
            &[("csrf", &admin.csrf), ("for", "8h")],
        )
        .await;
    assert_eq!(muted.status(), 303, "{}", body(&muted));
    assert_eq!(location(&muted), "/");
    let dashboard = body(&fixture.get("/", Some(&admin)).await);
    assert!(dashboard.contains("muted by admin until"), "{dashboard}");
    assert!(
        dashboard.contains("action=\"/streams/Gate/unmute\""),
        "{dashboard}"
    );
    let page = body(&fixture.get("/streams/Gate", Some(&admin)).await);
    assert!(page.contains("id=\"stream-quiet\""), "{page}");
    // Heartbeats recorded while muted are drawn as muted time on the timeline.
    let muted_at = fixture.now_ms();
    fixture.seed(&["Gate"], |ids| {
        (1..=3)
            .map(|i| heartbeat(ids[0], muted_at + i * 1_000, Health::Down))
            .collect()
    });
    fixture.set_now(muted_at + 4_000);
    let page = body(&fixture.get("/streams/Gate?range=1h", Some(&admin)).await);
    assert!(page.contains("class=\"seg muted-time\""), "{page}");
    assert!(page.contains("id=\"stream-quiet-share\""), "{page}");
    let metrics = body(&fixture.get("/metrics", Some(&admin)).await);
    assert!(
        metrics.contains("streampulse_stream_quiet{stream=\"Gate\"} 1"),
        "{metrics}"
    );

    let unmuted = fixture
        .post(
            "/streams/Gate/unmute",
            Some(&admin.cookie),
            &[("csrf", &admin.csrf), ("back", "stream")],
        )
        .await;
    assert_eq!(unmuted.status(), 303, "{}", body(&unmuted));
    assert_eq!(location(&unmuted), "/streams/Gate");
    let page = body(&fixture.get("/streams/Gate", Some(&admin)).await);
    assert!(!page.contains("id=\"stream-quiet\""), "{page}");
}
