//! Notifications against a real HTTP receiver on loopback: the exact body and headers of every
//! format, `streampulse alert test`, the confirmed state and the outbox in the store (flapping,
//! restart), and the real monitor binary with a camera that dies, a receiver that is down for a
//! while and a SIGKILL mid-outage.

mod alerts {
    pub mod receiver;
}
mod common;

use std::path::Path;
use std::time::Duration;

use alerts::receiver::Receiver;
use common::{run, RunningChild, TestConfig, TestDir, TestStream};
use serde_json::json;
use streampulse::alert::confirm::Notice;
use streampulse::alert::{outbox, AlertPlan, Notification, Subject};
use streampulse::config::{self, Config};
use streampulse::demo::{closed_port, RtspTestServer, SntpTestServer};
use streampulse::heartbeat::{Health, Heartbeat, ProbeOutcome, Reason};
use streampulse::store::{Store, StreamIdentity};

fn parse(text: &str) -> Config {
    config::parse(text, Path::new("/tmp/alerts-test.yaml")).unwrap_or_else(|e| panic!("{e}"))
}

fn channels_yaml(receiver: &Receiver) -> String {
    format!(
        "site: lab\nalerts:\n  public_url: https://cams.example.org/\n  channels:\n\
         \x20   - {{name: plain, type: webhook, url: \"{json}\"}}\n\
         \x20   - {{name: phone, type: webhook, format: ntfy, url: \"{ntfy}\", token: tk_secret}}\n\
         \x20   - {{name: gotify, type: webhook, format: gotify, url: \"{base}\", token: AppToken1}}\n\
         \x20   - {{name: discord, type: webhook, format: discord, url: \"{discord}\"}}\n\
         \x20   - {{name: slack, type: webhook, format: slack, url: \"{slack}\"}}\n\
         \x20   - {{name: telegram, type: webhook, format: telegram, url: \"{base}\", token: \"123:BOT\", chat_id: -100200}}\n\
         \x20   - name: custom\n      format: template\n      content_type: application/json\n\
         \x20     template: '{{\"cam\": \"{{{{stream}}}}\", \"to\": \"{{{{new_state}}}}\", \"why\": \"{{{{message}}}}\"}}'\n\
         \x20     url: \"{custom}\"\n\
         streams:\n  - name: Gate \"A\"\n    url: rtsp://admin:pw@192.0.2.1/s\n",
        json = receiver.url("/hook"),
        ntfy = receiver.url("/cams"),
        base = receiver.url(""),
        discord = receiver.url("/api/webhooks/1/SECRETPATH"),
        slack = receiver.url("/services/T/B/SECRETPATH"),
        custom = receiver.url("/custom"),
    )
}

fn down_notification(config: &Config) -> Notification {
    let plan = AlertPlan::from_config(config);
    let subject = Subject {
        stream: "Gate \"A\"",
        url_redacted: Some("rtsp://admin:***@192.0.2.1/s"),
        reason: Some("refused"),
        message: "connection refused by 192.0.2.1:554",
    };
    let notice = Notice::Changed {
        from: Some(Health::Up),
        to: Health::Down,
        since_ms: 1_795_597_920_000,
    };
    Notification::of(&plan, &subject, notice, Some("up"))
}

#[tokio::test]
async fn every_format_sends_the_body_and_headers_its_service_expects() {
    let receiver = Receiver::start();
    let config = parse(&channels_yaml(&receiver));
    let notification = down_notification(&config);
    for channel in &config.alerts.channels {
        outbox::send(channel, &notification, Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", channel.name));
    }
    let got = receiver.received();
    assert_eq!(got.len(), 7, "{got:#?}");
    let text = "Gate \"A\" (lab): up → down since 2026-11-25T09:12:00Z (connection refused by 192.0.2.1:554)";
    let link = "https://cams.example.org/streams/Gate%20%22A%22";
    for request in &got {
        assert_eq!(request.method, "POST");
    }

    assert_eq!(got[0].path, "/hook");
    assert_eq!(got[0].headers["content-type"], "application/json");
    assert_eq!(
        got[0].json(),
        json!({
            "event": "change", "stream": "Gate \"A\"", "site": "lab", "old_state": "up", "new_state": "down",
            "reason": "refused", "message": "connection refused by 192.0.2.1:554",
            "since": "2026-11-25T09:12:00Z", "since_ms": 1_795_597_920_000_i64,
            "url": "rtsp://admin:***@192.0.2.1/s", "link": link,
            "title": "Gate \"A\" (lab) is down", "text": text,
        })
    );

    // ntfy: JSON publish to the server's root, the topic from the URL's last segment.
    assert_eq!(got[1].path, "/");
    assert_eq!(got[1].headers["authorization"], "Bearer tk_secret");
    assert_eq!(
        got[1].json(),
        json!({"topic": "cams", "title": "Gate \"A\" (lab) is down", "message": text, "priority": 4,
               "tags": ["rotating_light"], "click": link})
    );

    assert_eq!(got[2].path, "/message");
    assert_eq!(got[2].headers["x-gotify-key"], "AppToken1");
    assert_eq!(
        got[2].json(),
        json!({"title": "Gate \"A\" (lab) is down", "message": text, "priority": 8,
               "extras": {"client::notification": {"click": {"url": link}}}})
    );

    assert_eq!(got[3].path, "/api/webhooks/1/SECRETPATH");
    assert_eq!(
        got[3].json(),
        json!({"username": "StreamPulse", "content": format!("{text}\n{link}")})
    );

    assert_eq!(got[4].path, "/services/T/B/SECRETPATH");
    assert_eq!(got[4].json(), json!({"text": format!("{text}\n{link}")}));

    assert_eq!(got[5].path, "/bot123:BOT/sendMessage");
    assert_eq!(
        got[5].json(),
        json!({"chat_id": "-100200", "text": format!("{text}\n{link}"), "disable_web_page_preview": true})
    );

    // A user template: values are JSON-escaped inside a JSON body.
    assert_eq!(got[6].path, "/custom");
    assert_eq!(
        got[6].json(),
        json!({"cam": "Gate \"A\"", "to": "down", "why": "connection refused by 192.0.2.1:554"})
    );

    // Secrets never show in how a channel is printed.
    let shown = format!("{:?}", config.alerts.channels);
    for secret in ["tk_secret", "AppToken1", "SECRETPATH", "123:BOT"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    let discord = &config.alerts.channels[3];
    assert_eq!(discord.redacted_url(), format!("http://{}/***", receiver.addr));
}

#[test]
fn alert_test_says_exactly_what_failed_and_exits_non_zero() {
    let receiver = Receiver::start();
    let dir = TestDir::new();
    let refused = closed_port();
    let text = format!(
        "streams: []\nalerts:\n  timeout_seconds: 5\n  channels:\n\
         \x20   - {{name: good, type: webhook, url: \"{good}\"}}\n\
         \x20   - {{name: gone, type: webhook, url: \"http://u:hunter2@127.0.0.1:{refused}/hook\"}}\n",
        good = receiver.url("/ok"),
    );
    let path = dir.write_config_text(&text);
    let path = path.to_str().expect("UTF-8 path");
    let all = run(&["alert", "test", "--config", path], Duration::from_secs(30));
    assert_eq!(all.code(), Some(1), "{all:#?}");
    assert!(
        all.stdout.contains("ok      good (json, http://127.0.0.1:"),
        "{}",
        all.stdout
    );
    assert!(
        all.stdout.contains(&format!("FAILED  gone (json, http://u:***@127.0.0.1:{refused}/hook): connection refused by 127.0.0.1:{refused}")),
        "{}",
        all.stdout
    );
    assert!(!all.all_output().contains("hunter2"), "{}", all.all_output());
    assert_eq!(receiver.received()[0].json()["event"], "test");

    let good = run(
        &["alert", "test", "good", "--config", path],
        Duration::from_secs(30),
    );
    assert_eq!(good.code(), Some(0), "{good:#?}");

    receiver.answer(404);
    let rejected = run(
        &["alert", "test", "good", "--config", path],
        Duration::from_secs(30),
    );
    assert_eq!(rejected.code(), Some(1));
    assert!(
        rejected
            .stdout
            .contains("the receiver answered 404: answer 404: try later"),
        "{}",
        rejected.stdout
    );
}

// ---------------------------------------------------------------------------------------------
// The store: confirmed state and outbox rows in the heartbeat's transaction

fn heartbeat(stream_id: i64, ts_ms: i64, health: Health) -> Heartbeat {
    let outcome = match health {
        Health::Up => ProbeOutcome::up(100),
        _ => ProbeOutcome::down(Reason::Refused, "connection refused"),
    };
    Heartbeat::new(stream_id, ts_ms, true, outcome)
}

fn outbox_events(db: &Path) -> Vec<(String, String, String)> {
    let conn = rusqlite::Connection::open(db).expect("open");
    let mut select = conn
        .prepare("SELECT channel, event, payload FROM alert_outbox ORDER BY id")
        .expect("select");
    select
        .query_map([], |row| {
            let payload: String = row.get(2)?;
            let value: serde_json::Value = serde_json::from_str(&payload).expect("payload");
            Ok((
                row.get(0)?,
                row.get(1)?,
                value["new_state"].as_str().unwrap_or("").to_string(),
            ))
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[test]
fn flapping_is_one_notice_then_quiet_then_one_stable_and_a_reopened_store_remembers() {
    let dir = TestDir::new();
    let db = dir.db_path();
    let config = parse(
        "alerts:\n  down_after: 1\n  flap_changes: 3\n  flap_minutes: 1\n  channels:\n    - {name: hook, url: \"http://127.0.0.1:9/\"}\n\
         streams:\n  - name: cam\n    url: rtsp://127.0.0.1/x\n",
    );
    let ids = |store: &mut Store| {
        store
            .resolve_streams(
                &[StreamIdentity {
                    config_id: None,
                    name: "cam".into(),
                    url_redacted: None,
                    url_fingerprint: None,
                }],
                0,
            )
            .expect("resolve")
    };
    let mut store = Store::open(&db).expect("store");
    let id = ids(&mut store)[0];
    store.set_alert_plan(std::sync::Arc::new(AlertPlan::from_config(&config)));
    let mut ts = 1_000_000;
    // Up, then a change every second probe for 10 changes.
    for index in 0..22 {
        let health = if index % 4 < 2 { Health::Up } else { Health::Down };
        store.record(&[heartbeat(id, ts, health)]).expect("record");
        ts += 1_000;
    }
    let kinds: Vec<String> = outbox_events(&db)
        .into_iter()
        .map(|(_, event, _)| event)
        .collect();
    assert_eq!(kinds, vec!["change", "change", "change", "flapping"], "{kinds:?}");

    // The monitor restarts (a new store, the state read back), the camera stays up a minute.
    drop(store);
    let mut store = Store::open(&db).expect("reopen");
    ids(&mut store);
    store.set_alert_plan(std::sync::Arc::new(AlertPlan::from_config(&config)));
    store.record(&[heartbeat(id, ts, Health::Up)]).expect("record");
    for _ in 0..61 {
        ts += 1_000;
        store.record(&[heartbeat(id, ts, Health::Up)]).expect("record");
    }
    let events = outbox_events(&db);
    let kinds: Vec<&str> = events.iter().map(|(_, event, _)| event.as_str()).collect();
    assert_eq!(
        kinds,
        vec!["change", "change", "change", "flapping", "stable"],
        "{events:?}"
    );
    assert_eq!(events[4].2, "up");
}

// ---------------------------------------------------------------------------------------------
// The monitor binary

fn monitor_yaml(config: &TestConfig, receiver: &Receiver) -> String {
    format!(
        "{}alerts:\n  down_after: 2\n  up_after: 1\n  retry_first_seconds: 0.5\n  retry_max_seconds: 1\n  retry_attempts: 1000\n\
         \x20 channels:\n    - {{name: hook, type: webhook, url: \"{}\"}}\n",
        config.to_yaml(),
        receiver.url("/hook")
    )
}

fn alert_state(db: &Path) -> Option<(Option<i64>, i64)> {
    let conn = rusqlite::Connection::open(db).ok()?;
    conn.query_row(
        "SELECT confirmed_state, pending_count FROM stream_alert_state",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )
    .ok()
}

#[test]
fn a_dead_camera_is_told_once_across_a_sigkill_and_its_recovery_reaches_a_receiver_that_was_down() {
    let mut rtsp = RtspTestServer::start().expect("RTSP server");
    let sntp = SntpTestServer::start(0).expect("SNTP server");
    let receiver = Receiver::start();
    let dir = TestDir::new();
    let config = TestConfig::new(1, 0.8, sntp.port()).stream(TestStream::new("Lobby", &rtsp.url("/test")));
    let config_path = dir.write_config_text(&monitor_yaml(&config, &receiver));
    let db = dir.db_path();
    let args = [
        "monitor",
        "--config",
        config_path.to_str().expect("UTF-8 path"),
        "--db",
        db.to_str().expect("UTF-8 path"),
    ];
    let mut monitor = RunningChild::spawn(&args);
    common::wait_for(Duration::from_secs(30), || {
        (common::heartbeats(&db, "Lobby")
            .iter()
            .filter(|h| h.outcome.health == Health::Up)
            .count()
            >= 2)
            .then_some(())
    })
    .expect("two up heartbeats");
    assert!(receiver.received().is_empty(), "a first up is not a change");

    rtsp.stop();
    let got = common::wait_for(Duration::from_secs(30), || {
        Some(receiver.received()).filter(|got| !got.is_empty())
    })
    .expect("the down notification");
    let down = got[0].json();
    assert_eq!(
        (down["old_state"].as_str(), down["new_state"].as_str()),
        (Some("up"), Some("down"))
    );
    let downs_before = common::heartbeats(&db, "Lobby")
        .iter()
        .filter(|h| h.outcome.health == Health::Down)
        .count();
    assert!(downs_before >= 2, "confirmed after two failed probes, not one");

    // SIGKILL mid-outage and start again: the outage is remembered, not announced again.
    monitor.signal(libc::SIGKILL);
    monitor.wait_timeout(Duration::from_secs(10)).expect("killed");
    let before_restart = common::heartbeats(&db, "Lobby").len();
    let mut monitor = RunningChild::spawn(&args);
    common::wait_for(Duration::from_secs(30), || {
        (common::heartbeats(&db, "Lobby").len() >= before_restart + 3).then_some(())
    })
    .expect("more down heartbeats after the restart");
    assert_eq!(receiver.received().len(), 1, "{:#?}", receiver.received());

    // The receiver goes down; the camera comes back; the recovery waits in the outbox.
    receiver.answer(503);
    rtsp.restart().expect("RTSP restart");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", rtsp.port())).is_ok(),
        "the camera listens again on {}",
        rtsp.port()
    );
    common::wait_for(Duration::from_secs(30), || {
        (alert_state(&db)?.0 == Some(Health::Up.code())).then_some(())
    })
    .unwrap_or_else(|| {
        monitor.signal(libc::SIGKILL);
        monitor.wait_timeout(Duration::from_secs(5));
        let (_, stderr) = monitor.output();
        let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
        let conn = rusqlite::Connection::open(&db).expect("open");
        let outbox: Vec<(i64, String, i64)> = conn
            .prepare("SELECT id, status, created_ms FROM alert_outbox")
            .expect("prepare")
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        let newest: Option<i64> = conn
            .query_row("SELECT max(ts_ms) FROM heartbeats", [], |row| row.get(0))
            .expect("max");
        let state: Vec<(i64, Option<i64>, i64)> = conn
            .prepare("SELECT stream_id, confirmed_state, last_ts_ms FROM stream_alert_state")
            .expect("prepare")
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        eprintln!("outbox {outbox:?} newest heartbeat {newest:?} state {state:?}");
        panic!(
            "never confirmed up (log {tail:#?} monitor running: {}, now {}): {:?}\n{:#?}",
            monitor.is_running(),
            common::system_now_ms(),
            alert_state(&db),
            common::heartbeats(&db, "Lobby")
                .iter()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
        )
    });
    common::wait_for(Duration::from_secs(30), || {
        let conn = rusqlite::Connection::open(&db).ok()?;
        let attempts: i64 = conn
            .query_row(
                "SELECT max(attempts) FROM alert_outbox WHERE status = 'pending'",
                [],
                |row| row.get(0),
            )
            .ok()?;
        (attempts >= 2).then_some(())
    })
    .expect("the recovery retried while the receiver was down");
    assert_eq!(receiver.received().len(), 1);

    receiver.answer(200);
    let got = common::wait_for(Duration::from_secs(30), || {
        Some(receiver.received()).filter(|got| got.len() >= 2)
    })
    .expect("the recovery after the receiver came back");
    let up = got[1].json();
    assert_eq!(
        (up["old_state"].as_str(), up["new_state"].as_str()),
        (Some("down"), Some("up"))
    );
    // Nothing more for this one outage, even a few heartbeats later.
    let seen = common::heartbeats(&db, "Lobby").len();
    common::wait_for(Duration::from_secs(30), || {
        (common::heartbeats(&db, "Lobby").len() >= seen + 2).then_some(())
    })
    .expect("more heartbeats");
    assert_eq!(receiver.received().len(), 2, "{:#?}", receiver.received());

    // /metrics and status see the same store: the confirmed state is up, everything delivered.
    let status = run(
        &["status", "--json", "--config", args[2], "--db", args[4]],
        Duration::from_secs(30),
    );
    assert_eq!(status.json()[0]["state"], "up", "{status:#?}");
    monitor.signal(libc::SIGTERM);
    monitor.wait_timeout(Duration::from_secs(20)).expect("stopped");
}

#[test]
fn alerts_config_takes_defaults_overrides_per_stream_and_reports_every_problem_with_its_line() {
    let config = parse(
        "alerts:\n  down_after: 3\nstreams:\n  - name: a\n    url: rtsp://h/a\n  - name: b\n    url: rtsp://h/b\n    alerts: {down_after: 5, up_after: 2}\n",
    );
    assert_eq!(
        (
            config.streams[0].alerts.down_after,
            config.streams[0].alerts.up_after
        ),
        (3, 1)
    );
    assert_eq!(
        (
            config.streams[1].alerts.down_after,
            config.streams[1].alerts.up_after
        ),
        (5, 2)
    );
    assert_eq!(parse("streams: []\n").alerts.rules.down_after, 2);

    let error = config::parse(
        "alerts:\n  down_after: 0\n  channels:\n    - {name: t, format: telegram}\n    - {name: x, format: teams, url: \"http://h/\"}\n    - {name: f, url: \"ftp://h/\"}\nstreams: []\n",
        Path::new("/tmp/c.yaml"),
    )
    .expect_err("invalid")
    .to_string();
    for expected in [
        "/tmp/c.yaml:2: alerts.down_after: must be between 1 and 1000",
        "/tmp/c.yaml:4: alerts.channels[0]: needs `token:` (the bot token)",
        "/tmp/c.yaml:4: alerts.channels[0]: needs `chat_id:` (the chat to write to)",
        "/tmp/c.yaml:5: alerts.channels[1].format: unknown format \"teams\"",
        "/tmp/c.yaml:6: alerts.channels[2].url: must start with http:// or https://",
    ] {
        assert!(error.contains(expected), "{expected:?} not in:\n{error}");
    }
}

#[test]
fn a_flapping_camera_gives_one_flapping_message_not_one_per_change() {
    let mut rtsp = RtspTestServer::start().expect("RTSP server");
    let sntp = SntpTestServer::start(0).expect("SNTP server");
    let receiver = Receiver::start();
    let dir = TestDir::new();
    let config = TestConfig::new(1, 0.8, sntp.port()).stream(TestStream::new("Porch", &rtsp.url("/test")));
    let text = format!(
        "{}alerts:\n  down_after: 1\n  flap_changes: 2\n  flap_minutes: 10\n  retry_first_seconds: 0.5\n\
         \x20 channels:\n    - {{name: hook, type: webhook, url: \"{}\"}}\n",
        config.to_yaml(),
        receiver.url("/hook")
    );
    let config_path = dir.write_config_text(&text);
    let db = dir.db_path();
    let mut monitor = RunningChild::spawn(&[
        "monitor",
        "--config",
        config_path.to_str().expect("UTF-8 path"),
        "--db",
        db.to_str().expect("UTF-8 path"),
    ]);
    // Waits for a heartbeat of `health` newer than every one stored so far.
    let wait_for_health = |health: Health| {
        let seen = common::heartbeats(&db, "Porch").len();
        common::wait_for(Duration::from_secs(30), || {
            common::heartbeats(&db, "Porch")
                .iter()
                .skip(seen)
                .any(|h| h.outcome.health == health)
                .then_some(())
        })
        .unwrap_or_else(|| panic!("no {health:?} heartbeat"));
    };
    wait_for_health(Health::Up);
    // Five confirmed changes: down, up, down (the third is more than flap_changes), up, down.
    for round in 0..5 {
        if round % 2 == 0 {
            rtsp.stop();
            wait_for_health(Health::Down);
        } else {
            rtsp.restart().expect("RTSP restart");
            wait_for_health(Health::Up);
        }
    }
    // Three notifications arrive; a few heartbeats later there is still no fourth.
    common::wait_for(Duration::from_secs(30), || {
        (receiver.received().len() >= 3).then_some(())
    })
    .expect("three notifications");
    let seen = common::heartbeats(&db, "Porch").len();
    common::wait_for(Duration::from_secs(30), || {
        (common::heartbeats(&db, "Porch").len() >= seen + 2).then_some(())
    })
    .expect("more heartbeats");
    let got = receiver.received();
    let events: Vec<(String, String)> = got
        .iter()
        .map(|r| {
            let body = r.json();
            (
                body["event"].as_str().unwrap_or("").to_string(),
                body["new_state"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        events,
        vec![
            ("change".to_string(), "down".to_string()),
            ("change".to_string(), "up".to_string()),
            ("flapping".to_string(), "down".to_string()),
        ]
    );
    monitor.signal(libc::SIGTERM);
    monitor.wait_timeout(Duration::from_secs(20)).expect("stopped");
}
