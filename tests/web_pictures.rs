//! The last pictures on the web, in-process through `warp::test`: who may fetch them, 404 without
//! one, the dashboard's wall and the stream page linking them, the API's picture fields, and the
//! public status page showing them only with `web.public_pictures`. The pictures are files as
//! the monitor writes them (`streampulse::pictures`); `tests/pictures.rs` has the monitor make
//! real ones.

mod web_support;

use serde_json::Value;
use streampulse::heartbeat::{Health, Reason};
use streampulse::pictures::{PictureDir, PictureKind, PictureMeta};
use streampulse::store::accounts::{Accounts, Role};
use streampulse::store::Store;
use web_support::*;

const VIEWER_PASSWORD: &str = "viewer password 42";
/// Stands for a JPEG: the web serves the file's bytes as they are.
const JPEG: &[u8] = b"\xff\xd8 a small picture \xff\xd9";

/// A page's HTML with handlebars' `=` escape undone, to compare addresses as written.
fn page(response: &warp::http::Response<bytes::Bytes>) -> String {
    body(response).replace("&#x3D;", "=")
}

fn stream_id(fixture: &Fixture, name: &str) -> i64 {
    Store::open_read_only(&fixture.db_path)
        .expect("store")
        .stream_id_by_name(name)
        .expect("query")
        .expect("a stream id")
}

fn keep_picture(fixture: &Fixture, name: &str, kind: PictureKind, ts_ms: i64, reason: Option<Reason>) {
    let meta = PictureMeta {
        ts_ms,
        width: 320,
        height: 180,
        health: if reason.is_some() { "degraded" } else { "up" }.into(),
        reason: reason.map(|r| r.code().to_string()),
        message: reason.map(|_| "the same picture in 144 of 144 cells".to_string()),
    };
    PictureDir::beside(&fixture.db_path)
        .write(stream_id(fixture, name), kind, JPEG, &meta)
        .expect("write the picture");
}

/// Gate up with a picture, Yard degraded (frozen) with its verdict picture, Dock down without.
async fn fleet_with_pictures(config: &str) -> (Fixture, Session, i64) {
    let (fixture, session) = Fixture::logged_in(config).await;
    let now = fixture.now_ms();
    fixture.seed(&["Gate", "Yard", "Dock"], |ids| {
        vec![
            heartbeat(ids[0], now - 5 * SECOND, Health::Up),
            heartbeat(ids[1], now - 5 * SECOND, Health::Degraded),
            heartbeat(ids[2], now - 5 * SECOND, Health::Down),
        ]
    });
    keep_picture(&fixture, "Gate", PictureKind::Last, now - 2 * MINUTE, None);
    keep_picture(&fixture, "Yard", PictureKind::Last, now - MINUTE, None);
    keep_picture(
        &fixture,
        "Yard",
        PictureKind::Verdict,
        now - MINUTE,
        Some(Reason::Frozen),
    );
    (fixture, session, now)
}

#[tokio::test]
async fn pictures_are_served_to_signed_in_users_and_viewers_only() {
    let (fixture, session, now) = fleet_with_pictures(&standard_config()).await;
    let response = fixture.get("/streams/Gate/picture.jpg", Some(&session)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.body().as_ref(), JPEG);
    assert_eq!(response.headers()["content-type"], "image/jpeg");
    assert_eq!(response.headers()["cache-control"], "private, max-age=10");
    let etag = response.headers()["etag"].to_str().expect("etag").to_string();
    assert!(etag.contains(&(now - 2 * MINUTE).to_string()), "{etag}");

    // The same picture again: 304 without a body.
    let again = warp::test::request()
        .path("/streams/Gate/picture.jpg")
        .header("cookie", &session.cookie)
        .header("if-none-match", &etag)
        .reply(&fixture.routes)
        .await;
    assert_eq!(again.status(), 304);
    assert!(again.body().is_empty());

    // Anonymous: sent to the login page, no picture.
    let anonymous = fixture.get("/streams/Gate/picture.jpg", None).await;
    assert_eq!(anonymous.status(), 303, "{}", body(&anonymous));
    assert!(
        location(&anonymous).starts_with("/login"),
        "{}",
        location(&anonymous)
    );
    assert_ne!(anonymous.body().as_ref(), JPEG);

    // A viewer and a read token may see pictures.
    Accounts::open(&fixture.db_path)
        .expect("accounts")
        .with_hasher(cheap_hasher())
        .add_user_with_role("vera", VIEWER_PASSWORD, Role::Viewer, now)
        .expect("add viewer");
    let viewer = fixture.login("vera", VIEWER_PASSWORD).await;
    let response = fixture
        .get("/streams/Yard/picture.jpg?kind=verdict", Some(&viewer))
        .await;
    assert_eq!(response.status(), 200);
    let token = fixture.token("grafana");
    let response = fixture.get_with_token("/streams/Gate/picture.jpg", &token).await;
    assert_eq!(response.status(), 200);

    // None yet, no verdict, no such camera: 404 saying why.
    for (path, words) in [
        ("/streams/Dock/picture.jpg", "no picture yet"),
        ("/streams/Gate/picture.jpg?kind=verdict", "no verdict picture"),
        ("/streams/Nowhere/picture.jpg", "no such camera"),
    ] {
        let response = fixture.get(path, Some(&session)).await;
        assert_eq!(response.status(), 404, "{path}");
        assert!(body(&response).contains(words), "{path}: {}", body(&response));
        assert!(!body(&response).contains(CAMERA_PASSWORD));
    }
}

#[tokio::test]
async fn the_wall_shows_each_camera_with_its_picture_state_and_age() {
    let (fixture, session, _) = fleet_with_pictures(&standard_config()).await;
    let table = page(&fixture.get("/", Some(&session)).await);
    assert!(table.contains("id=\"streams\""), "the table by default");
    assert!(
        table.contains("href=\"/?view=wall\""),
        "the switch links the wall"
    );
    assert!(!table.contains("id=\"wall\""));

    let response = fixture.get("/?view=wall", Some(&session)).await;
    assert_eq!(response.status(), 200);
    let remembered = set_cookies(&response);
    assert!(
        remembered.iter().any(|c| c.starts_with("streampulse_view=wall")),
        "{remembered:?}"
    );
    let wall = page(&response);
    assert!(wall.contains("id=\"wall\""));
    assert!(!wall.contains("id=\"streams\""), "the wall replaces the table");
    let card = |name: &str| {
        let start = wall.find(&format!("data-name=\"{name}\"")).expect("a card");
        let end = wall[start..].find("</li>").map_or(wall.len(), |end| start + end);
        wall[start..end].to_string()
    };
    let gate = card("Gate");
    assert!(gate.contains("src=\"/streams/Gate/picture.jpg?t="), "{gate}");
    assert!(gate.contains("loading=\"lazy\""), "{gate}");
    assert!(gate.contains("2 min ago"), "{gate}");
    assert!(gate.contains("href=\"/streams/Gate\""), "{gate}");
    let yard = card("Yard");
    assert!(yard.contains("badge degraded"), "{yard}");
    assert!(yard.contains("class=\"reason\""), "the verdict's reason: {yard}");
    let dock = card("Dock");
    assert!(dock.contains("wall-placeholder"), "{dock}");
    assert!(!dock.contains("<img"), "{dock}");
    assert!(
        card("Old").contains("Disabled"),
        "a disabled camera says why it has none"
    );
    assert!(!wall.contains(CAMERA_PASSWORD));

    // The cookie brings the wall back on a plain visit; ?view=table returns to the table.
    let cookie = format!("{}; streampulse_view=wall", session.cookie);
    let plain = warp::test::request()
        .path("/")
        .header("cookie", &cookie)
        .reply(&fixture.routes)
        .await;
    assert!(page(&plain).contains("id=\"wall\""));
    let back = warp::test::request()
        .path("/?view=table")
        .header("cookie", &cookie)
        .reply(&fixture.routes)
        .await;
    assert!(page(&back).contains("id=\"streams\""));
}

#[tokio::test]
async fn the_stream_page_shows_the_last_picture_and_the_one_behind_a_verdict() {
    let (fixture, session, _) = fleet_with_pictures(&standard_config()).await;
    let yard = page(&fixture.get("/streams/Yard", Some(&session)).await);
    assert!(yard.contains("id=\"last-picture\""), "{yard}");
    assert!(yard.contains("src=\"/streams/Yard/picture.jpg?t="));
    assert!(yard.contains("id=\"verdict-picture\""));
    assert!(
        yard.contains("src=\"/streams/Yard/picture.jpg?kind=verdict&amp;t="),
        "{yard}"
    );
    assert!(yard.contains("the same picture in 144 of 144 cells"));
    let gate = page(&fixture.get("/streams/Gate", Some(&session)).await);
    assert!(gate.contains("id=\"last-picture\""));
    assert!(
        !gate.contains("id=\"verdict-picture\""),
        "Gate is up: no verdict picture"
    );
    let dock = page(&fixture.get("/streams/Dock", Some(&session)).await);
    assert!(dock.contains("id=\"no-picture\""));
    assert!(!dock.contains(CAMERA_PASSWORD));
}

#[tokio::test]
async fn the_api_tells_each_streams_picture() {
    let (fixture, _session, now) = fleet_with_pictures(&standard_config()).await;
    let token = fixture.token("grafana");
    let list: Value =
        serde_json::from_slice(fixture.get_with_token("/api/v1/streams", &token).await.body()).expect("json");
    let streams = list["streams"].as_array().expect("streams");
    let gate = streams.iter().find(|s| s["name"] == "Gate").expect("Gate");
    assert_eq!(gate["picture"]["taken_ms"], now - 2 * MINUTE);
    assert_eq!(gate["picture"]["width"], 320);
    assert_eq!(
        gate["picture"]["url"],
        format!("/streams/Gate/picture.jpg?t={}", now - 2 * MINUTE)
    );
    assert_eq!(gate["verdict_picture"], Value::Null);
    let yard: Value = serde_json::from_slice(
        fixture
            .get_with_token("/api/v1/streams/Yard", &token)
            .await
            .body(),
    )
    .expect("json");
    assert_eq!(yard["verdict_picture"]["reason"], "frozen");
    let dock = streams.iter().find(|s| s["name"] == "Dock").expect("Dock");
    assert_eq!(dock["picture"], Value::Null);
}

#[tokio::test]
async fn the_public_status_page_shows_pictures_only_when_allowed() {
    let public = standard_config().replace(
        "database: streams.db\n",
        "database: streams.db\nweb:\n  public_status: true\n",
    );
    let (fixture, _session, _) = fleet_with_pictures(&public).await;
    let html = page(&fixture.get("/status", None).await);
    assert!(
        !html.contains("picture.jpg"),
        "no pictures without public_pictures"
    );
    let refused = fixture.get("/status/Gate/picture.jpg", None).await;
    assert_eq!(refused.status(), 404);

    let with_pictures = standard_config().replace(
        "database: streams.db\n",
        "database: streams.db\nweb:\n  public_status: true\n  public_pictures: true\n",
    );
    let (fixture, _session, _) = fleet_with_pictures(&with_pictures).await;
    let html = page(&fixture.get("/status", None).await);
    assert!(html.contains("src=\"/status/Gate/picture.jpg?t="), "{html}");
    let served = fixture.get("/status/Gate/picture.jpg", None).await;
    assert_eq!(served.status(), 200);
    assert_eq!(served.body().as_ref(), JPEG);
    // Only the last picture: the public page shows no verdicts.
    let verdict = fixture.get("/status/Yard/picture.jpg?kind=verdict", None).await;
    assert_eq!(
        verdict.body().as_ref(),
        JPEG,
        "the query is ignored: the last picture"
    );
    assert!(!html.contains(CAMERA_PASSWORD));
}
