//! The JSON API, `/metrics` and snapshots through `warp::test`, and the real server on an
//! ephemeral loopback port with graceful shutdown.

mod web_support;

use serde_json::Value;
use streampulse::heartbeat::Health;
use web_support::*;

fn json(response: &warp::http::Response<bytes::Bytes>) -> Value {
    serde_json::from_slice(response.body()).unwrap_or_else(|e| panic!("not JSON ({e}): {}", body(response)))
}

async fn seeded() -> (Fixture, String, i64) {
    let fixture = Fixture::new(&standard_config());
    let token = fixture.token("tests");
    let now = fixture.now_ms();
    fixture.seed(&["Gate", "Yard"], |ids| {
        let mut beats = Vec::new();
        for i in 0..40 {
            let ts = now - (40 - i) * 15 * SECOND;
            beats.push(heartbeat(ids[0], ts, Health::Up));
            beats.push(heartbeat(
                ids[1],
                ts,
                if (10..20).contains(&i) {
                    Health::Down
                } else {
                    Health::Up
                },
            ));
        }
        beats
    });
    (fixture, token, now)
}

#[tokio::test]
async fn streams_list_and_detail() {
    let (fixture, token, _) = seeded().await;
    let response = fixture.get_with_token("/api/v1/streams", &token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let list = json(&response);
    assert_eq!(list["summary"]["total"], 5);
    assert_eq!(list["summary"]["up"], 2);
    assert_eq!(list["summary"]["unknown"], 2, "Dock and Lobby were never probed");
    assert_eq!(list["summary"]["disabled"], 1);
    let names: Vec<&str> = list["streams"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["Gate", "Yard", "Dock", "Lobby", "Old"]);
    let gate = &list["streams"][0];
    assert_eq!(gate["state"], "up");
    assert_eq!(
        gate["health"], gate["state"],
        "`health`: the deprecated alias of `state`"
    );
    assert_eq!(gate["healthy_24h"], 1.0);
    assert_eq!(gate["latency_ms"], 420);
    assert_eq!(gate["width"], 1920);
    assert_eq!(gate["uptime_24h"], 1.0);
    assert_eq!(gate["url"], "rtsp://admin:***@192.0.2.10:554/stream1");
    assert!(gate["since"].as_str().expect("since").ends_with('Z'));

    let yard = json(&fixture.get_with_token("/api/v1/streams/Yard", &token).await);
    assert_eq!(yard["uptime_24h"], 0.75);
    assert_eq!(yard["healthy_24h"], 0.75);
    assert_eq!(yard["state"], "up");
    let spaced = fixture
        .get_with_token("/api/v1/streams/No%20such%20camera", &token)
        .await;
    assert_eq!(spaced.status(), 404);
    assert_eq!(
        json(&spaced)["error"]["message"],
        "no stream named \"No such camera\" in the configuration"
    );
    let unknown_route = fixture.get_with_token("/api/v1/cameras", &token).await;
    assert_eq!(unknown_route.status(), 404);
    assert_eq!(json(&unknown_route)["error"]["status"], 404);
}

#[tokio::test]
async fn heartbeats_take_iso_or_epoch_times_and_reject_bad_ones() {
    let (fixture, token, now) = seeded().await;
    let all = json(
        &fixture
            .get_with_token("/api/v1/streams/Yard/heartbeats", &token)
            .await,
    );
    assert_eq!(
        all["heartbeats"].as_array().expect("array").len(),
        40,
        "the last hour by default"
    );
    assert_eq!(all["heartbeats"][0]["ts_ms"], now - 15 * SECOND, "newest first");
    let from = now - 5 * MINUTE;
    let iso = streampulse::clock::iso_utc(from);
    let by_iso = json(
        &fixture
            .get_with_token(
                &format!("/api/v1/streams/Yard/heartbeats?from={iso}&limit=3"),
                &token,
            )
            .await,
    );
    let by_ms = json(
        &fixture
            .get_with_token(
                &format!("/api/v1/streams/Yard/heartbeats?from={from}&limit=3"),
                &token,
            )
            .await,
    );
    assert_eq!(by_iso["heartbeats"], by_ms["heartbeats"]);
    assert_eq!(by_iso["heartbeats"].as_array().expect("array").len(), 3);
    let down = json(
        &fixture
            .get_with_token(
                &format!("/api/v1/streams/Yard/heartbeats?to={}", now - 25 * 15 * SECOND),
                &token,
            )
            .await,
    );
    let first_down = down["heartbeats"]
        .as_array()
        .expect("array")
        .iter()
        .find(|h| h["health"] == "down")
        .expect("a down heartbeat")
        .clone();
    assert_eq!(first_down["reason"], "timeout_connect");
    assert_eq!(first_down["reason_text"], "timed out connecting");
    assert_eq!(
        first_down["message"],
        "could not connect to rtsp://admin:***@192.0.2.10:554/stream1"
    );

    for query in [
        "from=yesterday",
        "to=2026-13-45T00:00:00Z",
        "limit=0",
        "limit=100001",
        "limit=ten",
        "from=2000&to=1000",
    ] {
        let response = fixture
            .get_with_token(&format!("/api/v1/streams/Yard/heartbeats?{query}"), &token)
            .await;
        assert_eq!(response.status(), 400, "{query}");
        assert!(json(&response)["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(
        fixture
            .get_with_token("/api/v1/streams/Nope/heartbeats", &token)
            .await
            .status(),
        404
    );
    // Configured but never probed: an empty list, not an error.
    let lobby = json(
        &fixture
            .get_with_token("/api/v1/streams/Lobby/heartbeats", &token)
            .await,
    );
    assert_eq!(lobby["heartbeats"], Value::Array(Vec::new()));
}

#[tokio::test]
async fn outages_list_start_end_and_reason() {
    let (fixture, token, now) = seeded().await;
    let outages = json(
        &fixture
            .get_with_token("/api/v1/streams/Yard/outages", &token)
            .await,
    );
    let list = outages["outages"].as_array().expect("array");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["start_ms"], now - 30 * 15 * SECOND);
    assert_eq!(list[0]["end_ms"], now - 20 * 15 * SECOND);
    assert_eq!(list[0]["duration_ms"], 10 * 15 * SECOND);
    assert_eq!(list[0]["ongoing"], false);
    assert_eq!(list[0]["reason"], "timeout_connect");
    let none = json(
        &fixture
            .get_with_token("/api/v1/streams/Gate/outages", &token)
            .await,
    );
    assert_eq!(none["outages"], Value::Array(Vec::new()));
}

#[tokio::test]
async fn metrics_in_prometheus_text_format() {
    let (fixture, token, now) = seeded().await;
    let response = fixture.get_with_token("/metrics", &token).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap_or("")
        .starts_with("text/plain; version=0.0.4"));
    let text = body(&response);
    for line in [
        "# TYPE streampulse_stream_up gauge",
        "streampulse_stream_up{stream=\"Gate\"} 1",
        "streampulse_stream_up{stream=\"Lobby\"} 0",
        "streampulse_stream_latency_seconds{stream=\"Gate\"} 0.42",
        &format!(
            "streampulse_stream_last_success_timestamp_seconds{{stream=\"Gate\"}} {}",
            (now - 15 * SECOND) as f64 / 1000.0
        ),
        "# TYPE streampulse_probes_total counter",
        "streampulse_probes_total{stream=\"Gate\",outcome=\"up\"} 40",
        "streampulse_probes_total{stream=\"Yard\",outcome=\"timeout_connect\"} 10",
        "streampulse_streams{state=\"disabled\"} 1",
        "process_resident_memory_bytes ",
        "process_start_time_seconds ",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

/// `site:` labels every series, so one Prometheus can scrape many boxes.
#[tokio::test]
async fn metrics_carry_the_site_label_on_every_sample() {
    let fixture = Fixture::new(&format!("site: north-gate\n{}", standard_config()));
    let token = fixture.token("tests");
    let text = body(&fixture.get_with_token("/metrics", &token).await);
    let samples: Vec<&str> = text
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .collect();
    assert!(samples.len() > 10, "{text}");
    for sample in samples {
        assert_eq!(sample.matches("site=\"north-gate\"").count(), 1, "{sample}");
    }
    assert!(
        text.contains("streampulse_stream_up{site=\"north-gate\",stream=\"Gate\"} "),
        "{text}"
    );
    assert!(text.contains("process_open_fds{site=\"north-gate\"} "), "{text}");
}

#[tokio::test]
async fn snapshots_come_from_the_camera_or_say_why_not() {
    let camera = tokio::task::spawn_blocking(streampulse::demo::mjpeg::MjpegTestServer::start)
        .await
        .expect("join")
        .expect("MJPEG test camera");
    let closed = streampulse::demo::mjpeg::closed_port();
    let config = format!(
        "database: streams.db\nprobe_timeout_seconds: 5\nstreams:\n  - name: Live\n    url: {}\n  \
         - name: Closed\n    url: http://demo:secret@127.0.0.1:{closed}/stream\n",
        camera.url("/stream")
    );
    let fixture = Fixture::new(&config);
    let token = fixture.token("tests");
    let picture = fixture
        .get_with_token("/api/v1/streams/Live/snapshot.jpg", &token)
        .await;
    assert_eq!(picture.status(), 200, "{}", body(&picture));
    assert_eq!(picture.headers()["content-type"], "image/jpeg");
    assert_eq!(&picture.body()[..2], &[0xFF, 0xD8], "a JPEG starts with SOI");

    let refused = fixture
        .get_with_token("/api/v1/streams/Closed/snapshot.jpg", &token)
        .await;
    assert_eq!(refused.status(), 503);
    let error = json(&refused);
    assert!(
        error["error"]["message"]
            .as_str()
            .expect("message")
            .starts_with("no picture: "),
        "{error}"
    );
    assert!(!body(&refused).contains("secret"), "{error}");

    assert_eq!(
        fixture
            .get_with_token("/api/v1/streams/Nope/snapshot.jpg", &token)
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn the_server_runs_on_a_bound_listener_and_stops_gracefully() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fixture = Fixture::new(&standard_config());
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
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"status\":\"ok\""), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("x-frame-options: deny"));
    stop.send(()).expect("server still running");
    tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .expect("stops within 10 s")
        .expect("server task");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}

#[tokio::test]
async fn names_with_slashes_spaces_and_percent_signs_are_addressable() {
    let name = "Gate/North 100% ünïcode";
    let fixture = Fixture::new(&format!(
        "database: streams.db\nstreams:\n  - name: \"{name}\"\n    url: rtsp://192.0.2.1/s\n"
    ));
    let token = fixture.token("tests");
    let encoded = streampulse::web::links::encode(name);
    let response = fixture
        .get_with_token(&format!("/api/v1/streams/{encoded}"), &token)
        .await;
    assert_eq!(response.status(), 200, "{}", body(&response));
    assert_eq!(json(&response)["name"], name);
    let page = fixture
        .get_with_token(&format!("/streams/{encoded}"), &token)
        .await;
    assert_eq!(page.status(), 200);
    let dashboard = body(&fixture.get_with_token("/", &token).await);
    assert!(
        dashboard.contains(&format!("href=\"/streams/{encoded}\"")),
        "links are encoded"
    );
}

/// A stream the monitor owes heartbeats to but never probed turns stale after three intervals,
/// whether the monitor registered it (and then its task died) or never took it on at all.
#[tokio::test]
async fn never_probed_streams_turn_stale_once_three_heartbeats_are_overdue() {
    let fixture = Fixture::new(&standard_config());
    let token = fixture.token("tests");
    let summary = |list: &Value| list["summary"].clone();

    // Fresh config, nothing registered: the monitor has had no time yet.
    let list = json(&fixture.get_with_token("/api/v1/streams", &token).await);
    assert_eq!(summary(&list)["unknown"], 4, "{list:#}");
    assert_eq!(summary(&list)["stale"], 0, "{list:#}");

    // Gate was taken on by a monitor (40 days ago) and never got a heartbeat; the config file
    // is 10 minutes old (heartbeat 15 s), so the others are overdue too.
    fixture.seed(&["Gate"], |_| Vec::new());
    let ten_minutes_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(600);
    std::fs::File::options()
        .write(true)
        .open(&fixture.config_path)
        .and_then(|file| file.set_modified(ten_minutes_ago))
        .expect("set the config's mtime");
    let list = json(&fixture.get_with_token("/api/v1/streams", &token).await);
    assert_eq!(summary(&list)["stale"], 4, "{list:#}");
    assert_eq!(summary(&list)["unknown"], 0, "{list:#}");
    let gate = &list["streams"][0];
    assert_eq!(
        (&gate["name"], &gate["health"]),
        (&Value::from("Gate"), &Value::from("stale"))
    );

    let metrics = body(&fixture.get_with_token("/metrics", &token).await);
    for line in [
        "streampulse_stream_stale{stream=\"Gate\"} 1",
        "streampulse_stream_stale{stream=\"Lobby\"} 1",
        "streampulse_streams{state=\"stale\"} 4",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
    }
}

/// `HEAD /healthz` answers like GET (uptime checkers use it), and `config_valid` turns false as
/// soon as the file on disk stops being valid, without another request re-reading it first.
#[tokio::test]
async fn healthz_answers_head_and_sees_a_broken_config_at_once() {
    let fixture = Fixture::new(&standard_config());
    let head = warp::test::request()
        .method("HEAD")
        .path("/healthz")
        .reply(&fixture.routes)
        .await;
    assert_eq!(head.status(), 200);
    let health = json(&fixture.get("/healthz", None).await);
    assert_eq!(health["config_valid"], Value::Bool(true), "{health:#}");

    std::fs::write(&fixture.config_path, "heartbeat_seconds: [\n").expect("break the config");
    let health = json(&fixture.get("/healthz", None).await);
    assert_eq!(health["config_valid"], Value::Bool(false), "{health:#}");
}

/// Random `from`/`to`/`limit` values, and random raw query strings, through the real route:
/// 200 with an interval that matches what was asked, or a 400 in the API's JSON error shape;
/// never a 5xx, never a panic.
#[test]
fn random_query_strings_answer_200_or_a_json_400() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (fixture, token, _) = runtime.block_on(seeded());
    let value = || {
        prop_oneof![
            "\\PC{0,24}",
            "-?[0-9]{1,20}",
            "[0-9]{4}-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9](\\.[0-9]{1,9})?(Z|[+-][0-1][0-9]:[0-5][0-9])",
        ]
    };
    let fields = (
        proptest::option::of(value()),
        proptest::option::of(value()),
        proptest::option::of(value()),
    );
    let raw = "[A-Za-z0-9%&=+._~:/-]{0,40}";
    let mut runner = TestRunner::new(Config {
        cases: 48,
        ..Config::default()
    });
    let check = |query: String| -> Result<(), TestCaseError> {
        let path = format!("/api/v1/streams/Yard/heartbeats?{query}");
        let response = runtime.block_on(fixture.get_with_token(&path, &token));
        let answer = json(&response);
        match response.status().as_u16() {
            200 => {
                prop_assert!(
                    answer["from_ms"].as_i64() < answer["to_ms"].as_i64(),
                    "{}",
                    answer
                );
            }
            400 => {
                prop_assert_eq!(&answer["error"]["status"], 400);
                prop_assert!(!answer["error"]["message"].as_str().unwrap_or("").is_empty());
            }
            other => prop_assert!(false, "{} for {}: {}", other, path, answer),
        }
        Ok(())
    };
    runner
        .run(&fields, |(from, to, limit)| {
            let mut pairs = Vec::new();
            for (key, value) in [("from", &from), ("to", &to), ("limit", &limit)] {
                if let Some(value) = value {
                    pairs.push((key, value.as_str()));
                }
            }
            let query = form_body(&pairs);
            check(query.clone())?;
            // What was asked is what is answered.
            let response = runtime.block_on(
                fixture.get_with_token(&format!("/api/v1/streams/Yard/heartbeats?{query}"), &token),
            );
            if response.status() == 200 {
                let answer = json(&response);
                fn given(value: &Option<String>) -> Option<&str> {
                    value.as_deref().filter(|v| !v.trim().is_empty())
                }
                if let Some(from) = given(&from) {
                    prop_assert_eq!(
                        answer["from_ms"].as_i64(),
                        streampulse::clock::parse_time_param(from).ok()
                    );
                }
                if let Some(to) = given(&to) {
                    prop_assert_eq!(
                        answer["to_ms"].as_i64(),
                        streampulse::clock::parse_time_param(to).ok()
                    );
                }
                if let Some(limit) = &limit {
                    prop_assert_eq!(
                        answer["limit"].as_u64().map(|l| l.to_string()),
                        Some(limit.trim_start_matches('+').trim_start_matches('0').to_string())
                    );
                }
            }
            Ok(())
        })
        .expect("every query answered 200 or 400");
    runner
        .run(&raw, check)
        .expect("every raw query answered 200 or 400");
}
