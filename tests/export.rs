//! Exports: `/api/v1/heartbeats.csv`, `.jsonl` and `/api/v1/outages.csv`: content and escaping,
//! range and stream filters, authentication, and a 500,000-row export streamed by the real server
//! with bounded memory.

mod web_support;

use std::time::{Duration, Instant};

use streampulse::heartbeat::Health;
use streampulse::store::{Store, StreamIdentity};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use web_support::*;

/// A camera name a CSV writer must quote, and one a spreadsheet would run as a formula.
const AWKWARD: &str = "Gate, \"North\"\nside";
const FORMULA: &str = "=HYPERLINK(\"x\")";

fn config() -> String {
    // The awkward name is only in the database (the config refuses newlines in names): exports
    // include streams kept for their history.
    format!(
        "heartbeat_seconds: 15\ntimezone: Asia/Kolkata\ndatabase: streams.db\nstreams:\n  \
         - name: '{}'\n    url: rtsp://admin:{CAMERA_PASSWORD}@192.0.2.11/s\n  \
         - name: Yard\n    url: rtsp://192.0.2.12/s\n",
        FORMULA.replace('\'', "''")
    )
}

/// Three streams, 10 heartbeats each a minute apart from `start`; the awkward one down at 4..6.
fn seeded() -> (Fixture, String, i64) {
    let fixture = Fixture::new(&config());
    let token = fixture.token("export");
    let start = fixture.now_ms() - 3_600_000;
    fixture.seed(&[AWKWARD, FORMULA, "Yard"], |ids| {
        let mut beats = Vec::new();
        for (index, id) in ids.iter().enumerate() {
            for i in 0..10 {
                let health = if index == 0 && (4..6).contains(&i) {
                    Health::Down
                } else {
                    Health::Up
                };
                beats.push(heartbeat(*id, start + i * MINUTE, health));
            }
        }
        beats
    });
    (fixture, token, start)
}

/// Splits RFC 4180 CSV into records of fields (quoted fields may hold `,`, `"` and newlines).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    records
}

#[tokio::test]
async fn csv_export_escapes_names_and_never_shows_passwords() {
    let (fixture, token, start) = seeded();
    let response = fixture.get_with_token("/api/v1/heartbeats.csv", &token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(response.headers()["content-disposition"]
        .to_str()
        .expect("ascii")
        .contains("heartbeats.csv"));
    let text = body(&response);
    assert!(!text.contains(CAMERA_PASSWORD), "{text}");
    let records = parse_csv(&text);
    assert_eq!(
        records[0][..5],
        ["stream", "time_utc", "time_local", "ts_ms", "health"]
    );
    assert_eq!(records.len(), 1 + 30, "{text}");
    let awkward: Vec<&Vec<String>> = records.iter().filter(|r| r[0] == AWKWARD).collect();
    assert_eq!(
        awkward.len(),
        10,
        "the name with comma, quotes and newline survives a round trip"
    );
    assert_eq!(
        records.iter().filter(|r| r[0] == format!("'{FORMULA}")).count(),
        10,
        "formulas are defused"
    );
    let down = awkward.iter().find(|r| r[4] == "down").expect("a down row");
    assert_eq!(down[3], (start + 4 * MINUTE).to_string());
    assert!(down[1].ends_with('Z') && down[2].ends_with("+05:30"), "{down:?}");
    assert_eq!(down[5], "timeout_connect");
    assert!(down[6].contains("***") && !down[6].contains(CAMERA_PASSWORD));

    let jsonl = fixture
        .get_with_token(
            &format!(
                "/api/v1/heartbeats.jsonl?stream={}",
                streampulse::web::links::encode(AWKWARD)
            ),
            &token,
        )
        .await;
    assert_eq!(jsonl.status(), 200);
    let lines: Vec<serde_json::Value> = body(&jsonl)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 10);
    assert!(lines.iter().all(|l| l["stream"] == AWKWARD));
    assert_eq!(lines[4]["health"], "down");
    assert_eq!(lines[4]["ts_ms"], start + 4 * MINUTE);

    let outages = fixture.get_with_token("/api/v1/outages.csv", &token).await;
    assert_eq!(outages.status(), 200);
    let rows = parse_csv(&body(&outages));
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1][0], AWKWARD);
    assert_eq!(rows[1][3], (start + 4 * MINUTE).to_string());
    assert_eq!(rows[1][6], (start + 6 * MINUTE).to_string());
    assert_eq!(rows[1][7], "120");
}

#[tokio::test]
async fn ranges_and_streams_filter_the_export() {
    let (fixture, token, start) = seeded();
    let path = format!(
        "/api/v1/heartbeats.csv?stream=Yard&from={}&to={}",
        start + 2 * MINUTE,
        start + 5 * MINUTE
    );
    let records = parse_csv(&body(&fixture.get_with_token(&path, &token).await));
    let times: Vec<&str> = records[1..].iter().map(|r| r[3].as_str()).collect();
    let expected: Vec<String> = (2..5).map(|i| (start + i * MINUTE).to_string()).collect();
    assert_eq!(times, expected, "[from, to) of one stream");
    assert!(records[1..].iter().all(|r| r[0] == "Yard"));

    let missing = fixture
        .get_with_token("/api/v1/heartbeats.csv?stream=Nope", &token)
        .await;
    assert_eq!(missing.status(), 404);
    let backwards = fixture
        .get_with_token("/api/v1/outages.csv?from=2000&to=1000", &token)
        .await;
    assert_eq!(backwards.status(), 400);
}

#[tokio::test]
async fn exports_need_a_session_or_token() {
    let (fixture, _token, _) = seeded();
    for path in [
        "/api/v1/heartbeats.csv",
        "/api/v1/heartbeats.jsonl",
        "/api/v1/outages.csv",
        "/api/status",
    ] {
        let anonymous = fixture.get(path, None).await;
        assert_eq!(anonymous.status(), 401, "{path}");
        let wrong = fixture.get_with_token(path, "sp_not-a-token").await;
        assert_eq!(wrong.status(), 401, "{path}");
    }
    fixture.add_user("admin", PASSWORD);
    let session = fixture.login("admin", PASSWORD).await;
    let response = fixture.get("/api/v1/heartbeats.csv", Some(&session)).await;
    assert_eq!(response.status(), 200);
    let dashboard = body(&fixture.get("/", Some(&session)).await);
    assert!(
        dashboard.contains("href=\"/api/v1/heartbeats.csv\""),
        "dashboard links the export"
    );
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

/// 500,000 heartbeats (about 60 MB of CSV) through the real server, read slowly: the first
/// bytes come long before the last, and the process grows by a small fraction of the export.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_export_streams_with_bounded_memory() {
    const STREAMS: i64 = 5;
    const PER_STREAM: i64 = 100_000;
    let fixture = Fixture::new(&config());
    let token = fixture.token("big");
    let db = fixture.db_path.clone();
    tokio::task::spawn_blocking(move || {
        let mut store = Store::open(&db).expect("store");
        let identities: Vec<StreamIdentity> = (0..STREAMS)
            .map(|i| StreamIdentity {
                config_id: None,
                name: format!("cam {i}"),
                url_redacted: None,
                url_fingerprint: None,
            })
            .collect();
        let ids = store.resolve_streams(&identities, 0).expect("resolve");
        for id in ids {
            for chunk in 0..PER_STREAM / 10_000 {
                let beats: Vec<_> = (0..10_000)
                    .map(|i| heartbeat(id, 1_700_000_000_000 + (chunk * 10_000 + i) * 15_000, Health::Up))
                    .collect();
                store.record(&beats).expect("record");
            }
        }
    })
    .await
    .expect("seed");

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
    let before = rss_bytes();
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(
            format!(
                "GET /api/v1/heartbeats.csv HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .expect("write");
    let mut buffer = vec![0u8; 64 * 1024];
    let mut total = 0usize;
    let mut newlines = 0usize;
    let mut first_bytes = None;
    let mut peak = before;
    loop {
        let read = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut buffer))
            .await
            .expect("the export keeps coming")
            .expect("read");
        if read == 0 {
            break;
        }
        if first_bytes.is_none() {
            first_bytes = Some(started.elapsed());
            assert!(
                String::from_utf8_lossy(&buffer[..read]).starts_with("HTTP/1.1 200"),
                "{}",
                String::from_utf8_lossy(&buffer[..read.min(400)])
            );
        }
        total += read;
        newlines += buffer[..read].iter().filter(|b| **b == b'\n').count();
        // A slow client: the reader must wait for it rather than queue rows in memory.
        if total % (4 * 1024 * 1024) < read {
            peak = peak.max(rss_bytes());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let elapsed = started.elapsed();
    let first_bytes = first_bytes.expect("an answer");
    let grown = peak.saturating_sub(before);
    eprintln!(
        "export: {} MB in {elapsed:?}, first bytes after {first_bytes:?}, RSS {} MB → peak {} MB (+{} MB)",
        total / 1_000_000,
        before / 1_000_000,
        peak / 1_000_000,
        grown / 1_000_000
    );
    // Headers (about 10 lines, one of them the CSV header's) plus one line per heartbeat.
    assert!(newlines as i64 > STREAMS * PER_STREAM, "{newlines} lines");
    assert!(total > 50_000_000, "{total} bytes");
    assert!(
        first_bytes * 10 < elapsed,
        "first bytes {first_bytes:?} of {elapsed:?}"
    );
    assert!(
        grown < 32 * 1024 * 1024,
        "RSS grew by {grown} bytes for a {total}-byte export"
    );
    stop.send(()).expect("server running");
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
}
