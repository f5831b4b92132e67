//! Pages, in-process through `warp::test`: the dashboard, a stream's history, hostile stream
//! names, password redaction and the config editor.

mod web_support;

use streampulse::heartbeat::Health;
use web_support::*;

fn row<'a>(html: &'a str, name: &str) -> &'a str {
    let marker = format!("data-name=\"{name}\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no row for {name}"));
    let end = html[start..].find("</tr>").map_or(html.len(), |end| start + end);
    &html[start..end]
}

fn health_of(html: &str, name: &str) -> String {
    let marker = "data-health=\"";
    let start = html[..html.find(&format!("data-name=\"{name}\"")).expect("row")]
        .rfind(marker)
        .expect("data-health")
        + marker.len();
    html[start..].split('"').next().unwrap_or("").to_string()
}

#[tokio::test]
async fn dashboard_shows_each_configured_stream_with_its_health() {
    let (fixture, session) = Fixture::logged_in(&standard_config()).await;
    let now = fixture.now_ms();
    fixture.seed(&["Gate", "Yard", "Dock", "Gone"], |ids| {
        let mut beats = Vec::new();
        for i in 0..20 {
            let ts = now - (20 - i) * 15 * SECOND;
            beats.push(heartbeat(ids[0], ts, Health::Up));
            beats.push(heartbeat(
                ids[1],
                ts,
                if i < 15 { Health::Up } else { Health::Down },
            ));
            beats.push(heartbeat(ids[3], ts, Health::Up));
        }
        // The monitor stopped writing for Dock ten minutes ago.
        beats.push(heartbeat(ids[2], now - 10 * MINUTE, Health::Up));
        beats
    });
    let response = fixture.get("/", Some(&session)).await;
    assert_eq!(response.status(), 200);
    let html = body(&response);
    assert_eq!(health_of(&html, "Gate"), "up");
    assert_eq!(health_of(&html, "Yard"), "down");
    assert_eq!(health_of(&html, "Dock"), "stale");
    assert_eq!(health_of(&html, "Lobby"), "unknown");
    assert_eq!(health_of(&html, "Old"), "disabled");
    assert!(
        !html.contains("data-name=\"Gone\""),
        "streams no longer configured are not shown"
    );
    assert!(
        html.contains("data-health=\"up\" data-count=\"1\""),
        "summary counts"
    );
    assert!(html.contains("data-health=\"down\" data-count=\"1\""));
    let gate = row(&html, "Gate");
    assert!(
        gate.contains("420 ms") && gate.contains("1920×1080") && gate.contains("h264"),
        "{gate}"
    );
    assert!(gate.contains("100.0 %"), "uptime: {gate}");
    assert!(
        gate.contains("<polyline class=\"spark-line\""),
        "sparkline: {gate}"
    );
    assert!(
        gate.contains("href=\"/api/v1/streams/Gate/snapshot.jpg\""),
        "snapshot button: {gate}"
    );
    let yard = row(&html, "Yard");
    assert!(
        yard.contains("timed out connecting"),
        "reason in plain words: {yard}"
    );
    assert!(yard.contains("75.0 %"), "{yard}");
    assert!(html.contains("data-refresh=\"30\""), "refreshes itself");
    assert!(html.contains("IST"), "times in the configured zone");

    // Filters.
    let down = body(&fixture.get("/?status=down", Some(&session)).await);
    assert!(down.contains("data-name=\"Yard\"") && !down.contains("data-name=\"Gate\""));
    let by_name = body(&fixture.get("/?q=ga", Some(&session)).await);
    assert!(by_name.contains("data-name=\"Gate\"") && !by_name.contains("data-name=\"Yard\""));
}

/// One failed probe after a run of good ones: still `up` (the shipped `down_after` is 2), and the
/// dashboard says a change is under way, as the API's `confirming` does.
#[tokio::test]
async fn the_dashboard_shows_a_change_not_yet_confirmed() {
    let (fixture, session) = Fixture::logged_in(&standard_config()).await;
    let now = fixture.now_ms();
    fixture.seed_with_alert_plan(&["Gate", "Yard"], |ids| {
        let mut beats = Vec::new();
        for i in 0..10 {
            let ts = now - (10 - i) * 15 * SECOND;
            beats.push(heartbeat(
                ids[0],
                ts,
                if i < 9 { Health::Up } else { Health::Down },
            ));
            beats.push(heartbeat(ids[1], ts, Health::Up));
        }
        beats
    });
    let html = body(&fixture.get("/", Some(&session)).await);
    let row = |name: &str| {
        let start = html
            .find(&format!("data-name=\"{name}\""))
            .unwrap_or_else(|| panic!("{name} row"));
        html[start..]
            .split("</tr>")
            .next()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(health_of(&html, "Gate"), "up", "one failure is not confirmed");
    assert!(
        row("Gate").contains("<div class=\"confirming\""),
        "{}",
        row("Gate")
    );
    assert!(row("Gate").contains(">failing 1/2</div>"), "{}", row("Gate"));
    assert!(!row("Yard").contains("confirming"), "{}", row("Yard"));
    let api = fixture
        .get_with_token("/api/v1/streams/Gate", &fixture.token("tests"))
        .await;
    let detail: serde_json::Value = serde_json::from_slice(api.body()).expect("json");
    assert_eq!(detail["confirming"]["probes"], 1, "{detail}");
    assert_eq!(detail["confirming"]["needed"], 2, "{detail}");
}

#[tokio::test]
async fn a_hostile_stream_name_is_rendered_inert() {
    let evil = "<script>alert(\"pwned\")</script><img src=x onerror=alert(1)>";
    let config =
        format!("database: streams.db\nstreams:\n  - name: '{evil}'\n    url: rtsp://192.0.2.10/s\n");
    let (fixture, session) = Fixture::logged_in(&config).await;
    let now = fixture.now_ms();
    fixture.seed(&[evil], |ids| {
        let mut beat = heartbeat(ids[0], now - SECOND, Health::Down);
        beat.outcome.message = "<b onmouseover=alert(2)>bold</b>".into();
        vec![beat]
    });
    let pages = [
        "/".to_string(),
        format!("/streams/{}", streampulse::web::links::encode(evil)),
        format!("/streams/{}?range=30d", streampulse::web::links::encode(evil)),
        "/config".to_string(),
    ];
    for path in &pages {
        let response = fixture.get(path, Some(&session)).await;
        assert_eq!(response.status(), 200, "{path}");
        let html = body(&response);
        for raw in ["<script>alert", "<img src=x", "<b onmouseover"] {
            assert!(!html.contains(raw), "{path} contains {raw}");
        }
        assert!(html.contains("&lt;script&gt;"), "{path} shows the name escaped");
    }
    let api = fixture.get("/api/v1/streams", Some(&session)).await;
    assert_eq!(api.headers()["content-type"], "application/json");
    assert!(api.headers()["content-security-policy"]
        .to_str()
        .unwrap_or("")
        .contains("script-src 'self'"));
}

#[tokio::test]
async fn camera_passwords_never_reach_a_page_or_an_api_answer() {
    let (fixture, session) = Fixture::logged_in(&standard_config()).await;
    let now = fixture.now_ms();
    fixture.seed(&["Gate", "Dock"], |ids| {
        let mut beats = Vec::new();
        for i in 0..10 {
            beats.push(heartbeat(
                ids[0],
                now - (10 - i) * 15 * SECOND,
                if i % 3 == 0 { Health::Down } else { Health::Up },
            ));
            beats.push(heartbeat(ids[1], now - (10 - i) * 15 * SECOND, Health::Down));
        }
        beats
    });
    let token = fixture.token("scraper");
    let paths = [
        "/",
        "/?status=down",
        "/streams/Gate",
        "/streams/Gate?range=1h",
        "/streams/Dock?range=30d",
        "/config",
        "/api/v1/streams",
        "/api/v1/streams/Gate",
        "/api/v1/streams/Dock/heartbeats",
        "/api/v1/streams/Gate/outages",
        "/api/v1/streams/Nope",
        "/metrics",
        "/healthz",
    ];
    for path in paths {
        for response in [
            fixture.get(path, Some(&session)).await,
            fixture.get_with_token(path, &token).await,
        ] {
            let text = body(&response);
            assert!(
                !text.contains(CAMERA_PASSWORD),
                "{path} leaks the camera password:\n{text}"
            );
        }
    }
    let page = body(&fixture.get("/streams/Gate", Some(&session)).await);
    assert!(
        page.contains("rtsp://admin:***@192.0.2.10:554/stream1"),
        "the URL is shown, masked"
    );
    let api = body(&fixture.get("/api/v1/streams/Dock", Some(&session)).await);
    assert!(api.contains("http://viewer:***@192.0.2.12:8080/video"), "{api}");
    // The editor shows them only when asked.
    fixture.confirm_password(&session, PASSWORD).await;
    let revealed = body(&fixture.get("/config?reveal=1", Some(&session)).await);
    assert!(revealed.contains(CAMERA_PASSWORD));
}

#[tokio::test]
async fn the_stream_page_draws_history_outages_and_reasons() {
    let (fixture, session) = Fixture::logged_in(&standard_config()).await;
    let now = fixture.now_ms();
    fixture.seed(&["Gate"], |ids| {
        let mut beats = Vec::new();
        // Two days of heartbeats every 15 s, with a 20-minute outage an hour ago and a
        // frozen picture two hours ago.
        let count = 2 * 24 * 240;
        for i in 0..count {
            let ts = now - (count - i) * 15 * SECOND;
            let age_min = (now - ts) / MINUTE;
            let health = match age_min {
                60..=79 => Health::Down,
                120..=122 => Health::Degraded,
                _ => Health::Up,
            };
            beats.push(heartbeat(ids[0], ts, health));
        }
        beats
    });
    for range in ["1h", "24h", "7d", "30d"] {
        let response = fixture
            .get(&format!("/streams/Gate?range={range}"), Some(&session))
            .await;
        assert_eq!(response.status(), 200, "{range}");
        let html = body(&response);
        assert!(html.contains("id=\"latency-chart\""), "{range}");
        assert!(html.contains("<polyline class=\"line\""), "{range}: latency line");
        assert!(html.contains("class=\"seg up\""), "{range}: timeline");
        assert!(
            html.contains(&format!("data-range=\"{range}\" aria-current=\"true\"")),
            "{range}"
        );
    }
    let day = body(&fixture.get("/streams/Gate?range=24h", Some(&session)).await);
    assert!(day.contains("class=\"seg down\""));
    assert!(day.contains("class=\"seg degraded\""));
    assert!(day.contains("class=\"outage-row\""), "the outage is listed");
    assert!(day.contains("20 min"), "with its duration");
    assert!(day.contains("timed out connecting"), "reasons in plain words");
    assert!(day.contains("picture frozen"));
    let month = body(&fixture.get("/streams/Gate?range=30d", Some(&session)).await);
    assert!(month.contains("hourly average"));
    assert!(
        month.contains("class=\"seg down\""),
        "outages drawn over the hourly colours"
    );
    assert!(
        month.contains("class=\"seg nodata\""),
        "before the first heartbeat"
    );

    assert_eq!(
        fixture
            .get("/streams/Gate?range=2y", Some(&session))
            .await
            .status(),
        400
    );
    assert_eq!(fixture.get("/streams/Nope", Some(&session)).await.status(), 404);
    let never = body(&fixture.get("/streams/Lobby", Some(&session)).await);
    assert!(never.contains("No heartbeats in this range."));
}

/// The editor's hidden `version` field.
fn version_of(html: &str) -> String {
    html.split("name=\"version\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("version field")
        .to_string()
}

/// The text area's content, unescaped as a browser would submit it.
fn textarea_of(html: &str) -> String {
    let start = html.find("id=\"config-text\"").expect("textarea");
    let open_end = html[start..].find('>').expect("tag end") + start + 1;
    let close = html[open_end..].find("</textarea>").expect("close") + open_end;
    html[open_end..close]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x3D;", "=")
        .replace("&#x60;", "`")
        .replace("&amp;", "&")
}

#[tokio::test]
async fn an_invalid_edit_is_refused_with_every_problem_and_nothing_written() {
    let (fixture, session) = Fixture::logged_in(&standard_config()).await;
    let before = std::fs::read(&fixture.config_path).expect("read");
    let page = body(&fixture.get("/config", Some(&session)).await);
    let masked = textarea_of(&page);
    assert!(masked.contains("admin:***1@192.0.2.10"), "{masked}");
    let broken = masked
        .replace("heartbeat_seconds: 15", "heartbeat_seconds: 0")
        .replace("timezone: Asia/Kolkata", "timezone: Mars/Olympus")
        .replace("\n", "\r\n");
    let response = fixture
        .post(
            "/config",
            Some(&session.cookie),
            &[
                ("csrf", &session.csrf),
                ("text", &broken),
                ("version", &version_of(&page)),
                ("reveal", "0"),
            ],
        )
        .await;
    assert_eq!(response.status(), 400);
    let html = body(&response);
    let errors = html.split("id=\"config-errors\"").nth(1).expect("error list");
    assert!(errors.contains("line 2: heartbeat_seconds:"), "{errors}");
    assert!(errors.contains("line 3: timezone:"), "{errors}");
    assert!(html.contains("Mars/Olympus"), "the edit is kept in the editor");
    assert!(!html.contains(CAMERA_PASSWORD));
    assert_eq!(
        std::fs::read(&fixture.config_path).expect("read"),
        before,
        "file unchanged"
    );
    assert!(!fixture.dir.path().join("config.yaml.bak").exists());

    // Bytes that are not UTF-8 (`%FF`) would be saved as U+FFFD: refused.
    let raw_body = format!(
        "{}&text={}%FF",
        form_body(&[("csrf", &session.csrf), ("version", &version_of(&page))]),
        &form_body(&[("x", &format!("{masked}\n# caf"))])["x=".len()..]
    );
    let response = warp::test::request()
        .method("POST")
        .path("/config")
        .header("host", "127.0.0.1:8000")
        .header("origin", "http://127.0.0.1:8000")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", &session.cookie)
        .remote_addr(([127, 0, 0, 1], 40000).into())
        .body(raw_body)
        .reply(&fixture.routes)
        .await;
    assert_eq!(response.status(), 400, "{}", body(&response));
    assert!(body(&response).contains("not UTF-8"));
    assert_eq!(
        std::fs::read(&fixture.config_path).expect("read"),
        before,
        "file unchanged"
    );

    // Not even YAML.
    let response = fixture
        .post(
            "/config",
            Some(&session.cookie),
            &[
                ("csrf", &session.csrf),
                ("text", "streams: [\n"),
                ("version", &version_of(&page)),
            ],
        )
        .await;
    assert_eq!(response.status(), 400);
    assert!(body(&response).contains("class=\"config-error\""));
    // 5,000 levels of nesting (10 KB) used to overflow the web worker's stack and kill the process.
    let deep = format!("{masked}\nextra:\n  {}x\n", "- ".repeat(5_000));
    let response = fixture
        .post(
            "/config",
            Some(&session.cookie),
            &[
                ("csrf", &session.csrf),
                ("text", &deep),
                ("version", &version_of(&page)),
            ],
        )
        .await;
    assert_eq!(response.status(), 400);
    let html = body(&response);
    assert!(html.contains("nested more than 64 deep"), "{html}");
    // A masked URL whose host was changed cannot get its password back.
    let moved = masked.replace("192.0.2.10:554", "192.0.2.99:554");
    let response = fixture
        .post(
            "/config",
            Some(&session.cookie),
            &[
                ("csrf", &session.csrf),
                ("text", &moved),
                ("version", &version_of(&page)),
            ],
        )
        .await;
    assert_eq!(response.status(), 400);
    assert!(body(&response).contains("password cannot be restored"));
    assert_eq!(
        std::fs::read(&fixture.config_path).expect("read"),
        before,
        "file unchanged"
    );
}

#[tokio::test]
async fn a_valid_edit_replaces_the_file_and_keeps_a_backup() {
    let (fixture, session) = Fixture::logged_in(&standard_config()).await;
    let before = std::fs::read_to_string(&fixture.config_path).expect("read");
    let page = body(&fixture.get("/config", Some(&session)).await);
    let edited = textarea_of(&page)
        .replace("heartbeat_seconds: 15", "heartbeat_seconds: 30")
        .replace("\n", "\r\n");
    let response = fixture
        .post(
            "/config",
            Some(&session.cookie),
            &[
                ("csrf", &session.csrf),
                ("text", &edited),
                ("version", &version_of(&page)),
                ("reveal", "0"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303, "{}", body(&response));
    assert_eq!(location(&response), "/config?saved=1");
    let after = std::fs::read_to_string(&fixture.config_path).expect("read");
    assert_eq!(
        after,
        before.replace("heartbeat_seconds: 15", "heartbeat_seconds: 30"),
        "passwords restored, LF kept"
    );
    let backup = std::fs::read_to_string(fixture.dir.path().join("config.yaml.bak")).expect("backup");
    assert_eq!(backup, before);
    assert_eq!(
        fixture.state.config().heartbeat.as_secs(),
        30,
        "the server uses the new file"
    );
    let saved = body(&fixture.get("/config?saved=1", Some(&session)).await);
    assert!(saved.contains("id=\"config-saved\""));

    // The old version field is stale now: a second save from the old page is a conflict.
    let response = fixture
        .post(
            "/config",
            Some(&session.cookie),
            &[
                ("csrf", &session.csrf),
                ("text", &edited),
                ("version", &version_of(&page)),
            ],
        )
        .await;
    assert_eq!(response.status(), 409);
    assert_eq!(
        std::fs::read_to_string(&fixture.config_path).expect("read"),
        after
    );
}

#[tokio::test]
async fn streams_are_added_renamed_and_removed_by_form() {
    let (fixture, session) = Fixture::logged_in(&standard_config()).await;
    let post = |path: &'static str, fields: Vec<(&'static str, String)>| {
        let fixture = &fixture;
        let session = &session;
        async move {
            let mut all: Vec<(&str, &str)> = vec![("csrf", session.csrf.as_str())];
            all.extend(fields.iter().map(|(k, v)| (*k, v.as_str())));
            fixture.post(path, Some(&session.cookie), &all).await
        }
    };
    let added = post(
        "/config/streams/add",
        vec![
            ("name", "Back door".into()),
            ("url", "rtsp://cam:s3cret@192.0.2.20/live".into()),
            ("pipeline", "".into()),
        ],
    )
    .await;
    assert_eq!(added.status(), 303, "{}", body(&added));
    let text = std::fs::read_to_string(&fixture.config_path).expect("read");
    assert!(
        text.contains("  - name: \"Back door\"\n    url: \"rtsp://cam:s3cret@192.0.2.20/live\"\n"),
        "{text}"
    );
    assert!(text.starts_with("# test fleet\n"), "comments kept");

    let renamed = post(
        "/config/streams/rename",
        vec![("name", "Gate".into()), ("new_name", "Front gate".into())],
    )
    .await;
    assert_eq!(renamed.status(), 303, "{}", body(&renamed));
    let removed = post("/config/streams/remove", vec![("name", "Yard".into())]).await;
    assert_eq!(removed.status(), 303, "{}", body(&removed));
    let config = fixture.state.config();
    let names: Vec<&str> = config.streams.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["Front gate", "Dock", "Lobby", "Old", "Back door"]);
    let text = std::fs::read_to_string(&fixture.config_path).expect("read");
    assert!(
        text.contains(CAMERA_PASSWORD),
        "other cameras keep their passwords"
    );

    // Refused: a duplicate name, a bad URL, an unknown stream.
    let before = std::fs::read(&fixture.config_path).expect("read");
    let duplicate = post(
        "/config/streams/add",
        vec![("name", "Dock".into()), ("url", "rtsp://h/".into())],
    )
    .await;
    assert_eq!(duplicate.status(), 400);
    assert!(body(&duplicate).contains("also used by"), "{}", body(&duplicate));
    let bad_url = post(
        "/config/streams/add",
        vec![("name", "New".into()), ("url", "ftp://h/".into())],
    )
    .await;
    assert_eq!(bad_url.status(), 400);
    assert!(body(&bad_url).contains("unsupported URL scheme"));
    let unknown = post("/config/streams/remove", vec![("name", "Nope".into())]).await;
    assert_eq!(unknown.status(), 400);
    assert_eq!(std::fs::read(&fixture.config_path).expect("read"), before);
}

fn gunzip(bytes: &[u8]) -> String {
    use std::io::Read;
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .expect("a valid gzip body");
    text
}

/// The text with every run of ASCII digits (and any decimal point inside it) replaced by `#`.
fn without_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_number = false;
    for c in text.chars() {
        let numeric = c.is_ascii_digit() || (in_number && c == '.');
        if numeric {
            if !in_number {
                out.push('#');
            }
        } else {
            out.push(c);
        }
        in_number = numeric;
    }
    out
}

#[tokio::test]
async fn large_answers_are_gzipped_only_for_clients_that_ask() {
    let (fixture, session) = Fixture::logged_in(&standard_config()).await;
    let now = fixture.now_ms();
    fixture.seed(&["Gate", "Yard"], |ids| {
        (0..40)
            .flat_map(|i| {
                let ts = now - (40 - i) * 15 * SECOND;
                [
                    heartbeat(ids[0], ts, Health::Up),
                    heartbeat(ids[1], ts, Health::Down),
                ]
            })
            .collect()
    });
    let token = fixture.token("gzip-test");
    let ask = |path: &str, encoding: Option<&str>, auth: (&str, String)| {
        let mut request = warp::test::request()
            .method("GET")
            .path(path)
            .header(auth.0, auth.1);
        if let Some(encoding) = encoding {
            request = request.header("accept-encoding", encoding);
        }
        request.reply(&fixture.routes)
    };
    let cookie = || ("cookie", session.cookie.clone());
    let bearer = || ("authorization", format!("Bearer {token}"));

    for (path, auth) in [("/", cookie()), ("/api/v1/streams", bearer())] {
        let plain = ask(path, None, auth.clone()).await;
        assert_eq!(plain.status(), 200);
        assert!(
            plain.headers().get("content-encoding").is_none(),
            "{path}: not asked, not compressed"
        );
        assert_eq!(plain.headers()["vary"], "accept-encoding", "{path}");
        let plain_text = body(&plain);

        let zipped = ask(path, Some("gzip, deflate, br"), auth.clone()).await;
        assert_eq!(zipped.status(), 200);
        assert_eq!(zipped.headers()["content-encoding"], "gzip", "{path}");
        assert_eq!(zipped.headers()["vary"], "accept-encoding", "{path}");
        assert!(
            zipped.body().len() < plain.body().len() / 3,
            "{path}: gzip pays off"
        );
        let unzipped = gunzip(zipped.body());
        // Both answers carry clock-driven numbers (ages, "updated HH:MM:SS", uptime over a
        // window that slides between the two requests); compare them with every run of digits
        // collapsed, so only what does not move with the clock must match.
        assert_eq!(without_numbers(&unzipped), without_numbers(&plain_text), "{path}");
        assert!(unzipped.contains("Gate") && unzipped.contains("Yard"), "{path}");

        let refused = ask(path, Some("gzip;q=0, br"), auth).await;
        assert!(
            refused.headers().get("content-encoding").is_none(),
            "{path}: q=0 refuses gzip"
        );
    }

    // Small answers and non-text bodies pass through.
    let health = warp::test::request()
        .path("/healthz")
        .header("accept-encoding", "gzip")
        .reply(&fixture.routes)
        .await;
    assert_eq!(health.status(), 200);
    assert!(health.headers().get("content-encoding").is_none());
}
