//! Maintenance and mute against the real monitor binary, real demo cameras, closed ports and a
//! real HTTP webhook receiver on loopback: a muted camera that dies tells nothing while muted and
//! one "down" once unmuted; a maintenance window covering now keeps a dead camera's "down" quiet
//! and out of uptime; the window syntax reports every problem with its line; muted heartbeats
//! count apart in the store's rollups and raw edges.

#[allow(dead_code)]
mod alerts {
    pub mod receiver;
}
mod common;

use std::path::Path;
use std::time::Duration;

use alerts::receiver::Receiver;
use common::{run, RunningChild, TestConfig, TestDir, TestStream};
use proptest::prelude::*;
use streampulse::config::{self, maintenance};
use streampulse::demo::{closed_port, RtspTestServer, SntpTestServer};
use streampulse::heartbeat::{Health, Heartbeat, ProbeOutcome, Reason};
use streampulse::store::accounts::Accounts;
use streampulse::store::{Store, StreamIdentity};

fn alerts_yaml(receiver: &Receiver, down_after: u32) -> String {
    format!(
        "alerts:\n  down_after: {down_after}\n  up_after: 1\n  retry_first_seconds: 0.5\n  retry_max_seconds: 1\n\
         \x20 channels:\n    - {{name: hook, type: webhook, url: \"{}\"}}\n",
        receiver.url("/hook")
    )
}

/// `(health, quiet)` of every heartbeat of the only stream, oldest first.
fn flagged(db: &Path) -> Vec<(i64, i64)> {
    let Ok(conn) = rusqlite::Connection::open(db) else {
        return Vec::new();
    };
    let Ok(mut select) = conn.prepare("SELECT health, quiet FROM heartbeats ORDER BY ts_ms") else {
        return Vec::new();
    };
    select
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .and_then(|rows| rows.collect())
        .unwrap_or_default()
}

fn confirmed_state(db: &Path) -> Option<i64> {
    let conn = rusqlite::Connection::open(db).ok()?;
    conn.query_row("SELECT confirmed_state FROM stream_alert_state", [], |row| {
        row.get(0)
    })
    .ok()
    .flatten()
}

fn outbox_rows(db: &Path) -> i64 {
    rusqlite::Connection::open(db)
        .and_then(|conn| conn.query_row("SELECT count(*) FROM alert_outbox", [], |row| row.get(0)))
        .unwrap_or(-1)
}

fn spawn_monitor(config_path: &Path, db: &Path) -> (RunningChild, [String; 5]) {
    let args = [
        "monitor".to_string(),
        "--config".to_string(),
        config_path.to_str().expect("UTF-8 path").to_string(),
        "--db".to_string(),
        db.to_str().expect("UTF-8 path").to_string(),
    ];
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    (RunningChild::spawn(&refs), args)
}

#[test]
fn a_muted_camera_that_dies_tells_nothing_until_unmuted_then_one_down() {
    let mut rtsp = RtspTestServer::start().expect("RTSP server");
    let sntp = SntpTestServer::start(0).expect("SNTP server");
    let receiver = Receiver::start();
    let dir = TestDir::new();
    let config = TestConfig::new(1, 0.8, sntp.port()).stream(TestStream::new("Lobby", &rtsp.url("/test")));
    let config_path = dir.write_config_text(&format!("{}{}", config.to_yaml(), alerts_yaml(&receiver, 2)));
    let db = dir.db_path();
    let (mut monitor, _) = spawn_monitor(&config_path, &db);
    common::wait_for(Duration::from_secs(30), || {
        (flagged(&db)
            .iter()
            .filter(|(health, _)| *health == Health::Up.code())
            .count()
            >= 2)
            .then_some(())
    })
    .expect("two up heartbeats");

    // Muted by someone in the web (the same store call the API makes), then the camera dies.
    let accounts = Accounts::open(&db).expect("accounts");
    accounts
        .mute("Lobby", "ann", common::system_now_ms(), None)
        .expect("mute");
    rtsp.stop();
    common::wait_for(Duration::from_secs(30), || {
        let quiet_downs = flagged(&db)
            .iter()
            .filter(|&&(health, quiet)| health == Health::Down.code() && quiet == 2)
            .count();
        (quiet_downs >= 4 && confirmed_state(&db) == Some(Health::Down.code())).then_some(())
    })
    .expect("down confirmed while muted, its heartbeats flagged muted");
    assert!(receiver.received().is_empty(), "{:#?}", receiver.received());
    assert_eq!(outbox_rows(&db), 0, "nothing saved up for later");

    // Unmuted while still down: exactly one "down", and nothing more after it.
    accounts.unmute("Lobby").expect("unmute");
    let got = common::wait_for(Duration::from_secs(30), || {
        Some(receiver.received()).filter(|got| !got.is_empty())
    })
    .expect("one down after the mute");
    let down = got[0].json();
    assert_eq!(
        (down["old_state"].as_str(), down["new_state"].as_str()),
        (Some("up"), Some("down")),
        "{down}"
    );
    let seen = flagged(&db).len();
    common::wait_for(Duration::from_secs(30), || {
        (flagged(&db).len() >= seen + 3).then_some(())
    })
    .expect("more heartbeats");
    assert_eq!(receiver.received().len(), 1, "{:#?}", receiver.received());
    monitor.signal(libc::SIGTERM);
    monitor.wait_timeout(Duration::from_secs(20)).expect("stopped");
}

#[test]
fn a_maintenance_window_covering_now_keeps_a_dead_camera_quiet_and_out_of_uptime() {
    let sntp = SntpTestServer::start(0).expect("SNTP server");
    let receiver = Receiver::start();
    let dir = TestDir::new();
    let dead = format!("rtsp://127.0.0.1:{}/gone", closed_port());
    let config = TestConfig::new(1, 0.8, sntp.port()).stream(TestStream::new("Dock", &dead));
    // A window from 10 minutes ago to 20 minutes ahead, in a zone that is not UTC, built from
    // the local time now (it may cross midnight, which a window may).
    let zone = "Asia/Kolkata";
    let tz = time_tz::timezones::get_by_name(zone).expect("zone");
    let (_, minute) = maintenance::local_minute(common::system_now_ms(), tz);
    let clock = |m: i32| {
        let m = m.rem_euclid(1440);
        format!("{:02}:{:02}", m / 60, m % 60)
    };
    let from = clock(i32::from(minute) - 10);
    let to = clock(i32::from(minute) + 20);
    let yaml = config
        .to_yaml()
        .replace("timezone: UTC", &format!("timezone: {zone}"));
    let text = format!(
        "{yaml}maintenance:\n  - {{from: \"{from}\", to: \"{to}\"}}\n{}",
        alerts_yaml(&receiver, 1)
    );
    let config_path = dir.write_config_text(&text);
    let db = dir.db_path();
    let (mut monitor, args) = spawn_monitor(&config_path, &db);
    common::wait_for(Duration::from_secs(30), || {
        (flagged(&db).len() >= 4 && confirmed_state(&db) == Some(Health::Down.code())).then_some(())
    })
    .expect("down heartbeats, confirmed down");
    let beats = flagged(&db);
    assert!(
        beats
            .iter()
            .all(|&(health, quiet)| health == Health::Down.code() && quiet == 1),
        "every heartbeat down and flagged maintenance: {beats:?}"
    );
    assert!(receiver.received().is_empty(), "{:#?}", receiver.received());
    assert_eq!(outbox_rows(&db), 0);

    // Uptime leaves the window out (nothing else to count), the quiet share is reported apart.
    let status = run(
        &[
            "status",
            "--json",
            "--config",
            args[2].as_str(),
            "--db",
            args[4].as_str(),
        ],
        Duration::from_secs(30),
    );
    let row = &status.json()[0];
    assert_eq!(row["uptime_24h"], serde_json::Value::Null, "{row}");
    assert_eq!(row["quiet_24h"].as_f64(), Some(1.0), "{row}");
    monitor.signal(libc::SIGTERM);
    monitor.wait_timeout(Duration::from_secs(20)).expect("stopped");
}

#[test]
fn maintenance_windows_are_read_per_stream_and_for_all_and_problems_name_their_line() {
    let parsed = config::parse(
        "timezone: Europe/Berlin\nmaintenance:\n  - {from: \"03:00\", to: \"03:15\"}\nstreams:\n  - name: a\n    url: rtsp://h/a\n\
         \x20   maintenance:\n      - days: [sat, sun]\n        from: \"22:00\"\n        to: \"02:00\"\n",
        Path::new("/tmp/m.yaml"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed.maintenance[0].to_string(), "daily 03:00–03:15");
    assert_eq!(
        parsed.streams[0].maintenance[0].to_string(),
        "sat,sun 22:00–02:00"
    );

    let error = config::parse(
        "maintenance:\n  - {from: \"25:00\", to: \"03:00\"}\n  - {to: \"03:00\"}\n  - {from: \"03:00\", to: \"03:00\"}\n\
         \x20 - {from: \"01:00\", to: \"02:00\", days: [mon, someday]}\n  - {from: \"01:00\", to: \"02:00\", every: day}\nstreams: []\n",
        Path::new("/tmp/m.yaml"),
    )
    .expect_err("invalid")
    .to_string();
    for expected in [
        "/tmp/m.yaml:2: maintenance[0].from: expected a time such as 03:00",
        "/tmp/m.yaml:3: maintenance[1]: needs `from:`",
        "/tmp/m.yaml:4: maintenance[2].to: is the same time as `from:`",
        "/tmp/m.yaml:5: maintenance[3].days[1]: expected a day such as mon",
        "/tmp/m.yaml:6: maintenance[4].every: unknown key",
    ] {
        assert!(error.contains(expected), "{expected:?} not in:\n{error}");
    }
}

#[test]
fn muted_heartbeats_count_apart_in_rollups_and_at_the_edges_and_a_replaced_one_is_corrected() {
    let dir = TestDir::new();
    let db = dir.db_path();
    let mut store = Store::open(&db).expect("store");
    let ids = store
        .resolve_streams(
            &[StreamIdentity {
                config_id: None,
                name: "cam".into(),
                url_redacted: None,
                url_fingerprint: None,
            }],
            0,
        )
        .expect("resolve");
    let hour = 3_600_000_i64;
    let base = 500 * hour;
    let beat = |ts: i64, health: Health| {
        let outcome = match health {
            Health::Up => ProbeOutcome::up(100),
            _ => ProbeOutcome::down(Reason::Refused, "connection refused"),
        };
        Heartbeat::new(ids[0], ts, true, outcome)
    };
    // Up for the first half hour, muted for the second (down), up again after.
    let accounts = Accounts::open(&db).expect("accounts");
    accounts
        .mute("cam", "ann", base + hour / 2, Some(base + hour))
        .expect("mute");
    let beats: Vec<Heartbeat> = (0..8)
        .map(|i| {
            let ts = base + i * hour / 4;
            beat(
                ts,
                if (2..4).contains(&i) {
                    Health::Down
                } else {
                    Health::Up
                },
            )
        })
        .collect();
    store.record(&beats).expect("record");
    let whole = store.uptime(ids[0], base, base + 2 * hour).expect("uptime");
    assert_eq!((whole.up, whole.down, whole.quiet), (6, 0, 2), "{whole:?}");
    // A range with partial hours is answered from raw heartbeats at its edges: the same split.
    let partial = store
        .uptime(ids[0], base + 1, base + 2 * hour - 1)
        .expect("uptime");
    assert_eq!(
        (partial.up, partial.down, partial.quiet),
        (5, 0, 2),
        "{partial:?}"
    );
    // The monitor re-records a muted heartbeat: still counted once, still quiet.
    store
        .record(&[beat(base + hour / 2, Health::Up)])
        .expect("re-record");
    let again = store.uptime(ids[0], base, base + 2 * hour).expect("uptime");
    assert_eq!((again.up, again.down, again.quiet), (6, 0, 2), "{again:?}");
    let hourly = store.hourly(ids[0], base, base + hour).expect("hourly");
    assert_eq!((hourly[0].up, hourly[0].quiet), (2, 2));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any window written in the config reads back as written, and covers its start.
    #[test]
    fn any_written_window_reads_back(
        from in 0u16..1440,
        to in 1u16..=1440,
        days in proptest::sample::subsequence(vec!["mon", "tue", "wed", "thu", "fri", "sat", "sun"], 1..=7),
    ) {
        prop_assume!(from != to);
        let clock = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        let text = format!(
            "maintenance:\n  - from: \"{}\"\n    to: \"{}\"\n    days: [{}]\nstreams: []\n",
            clock(from), clock(to), days.join(", ")
        );
        let parsed = config::parse(&text, Path::new("/tmp/p.yaml")).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let window = parsed.maintenance[0];
        prop_assert_eq!((window.from_minute, window.to_minute), (from, to));
        let first = maintenance::DAY_NAMES.iter().position(|d| *d == days[0]).unwrap_or(0) as u8;
        prop_assert!(window.covers_local(first, from));
        prop_assert_eq!(window.days.count_ones() as usize, days.len());
    }
}
