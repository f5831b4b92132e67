//! The email channel against a real SMTP sink on loopback (Debian's `python3-aiosmtpd`): the
//! message a person reads, STARTTLS and implicit TLS with a login, `streampulse alert test`
//! naming exactly what failed, the config's errors, and the real monitor binary with a camera
//! that dies and a mail server that is down for a while.

mod alerts {
    pub mod smtp;
}
mod common;

use std::path::Path;
use std::time::Duration;

use alerts::smtp::{SinkTls, SmtpSink};
use common::{run, RunningChild, TestConfig, TestDir, TestStream};
use streampulse::alert::confirm::Notice;
use streampulse::alert::{outbox, AlertPlan, Notification, Subject};
use streampulse::config::{self, Config};
use streampulse::demo::{closed_port, RtspTestServer, SntpTestServer};
use streampulse::heartbeat::Health;

fn parse(text: &str) -> Config {
    config::parse(text, Path::new("/tmp/email-test.yaml")).unwrap_or_else(|e| panic!("{e}"))
}

/// An email channel to `sink`; `extra` is more flow-mapping keys (`tls: ..., username: ...`).
fn email_channel(name: &str, port: u16, extra: &str) -> String {
    format!(
        "    - {{name: {name}, type: email, host: 127.0.0.1, port: {port}, from: \"StreamPulse <cams@example.org>\", \
         to: [ops@example.org, \"Pat <pat@example.org>\"]{extra}}}\n"
    )
}

fn down_notification(config: &Config) -> Notification {
    let subject = Subject {
        stream: "Gate",
        url_redacted: Some("rtsp://admin:***@192.0.2.1/s"),
        reason: Some("refused"),
        message: "connection refused by 192.0.2.1:554",
    };
    let notice = Notice::Changed {
        from: Some(Health::Up),
        to: Health::Down,
        since_ms: 1_795_597_920_000,
    };
    Notification::of(&AlertPlan::from_config(config), &subject, notice, Some("up"))
}

#[tokio::test]
async fn a_mail_over_starttls_and_implicit_tls_with_a_login_says_what_happened() {
    let starttls = SmtpSink::start(SinkTls::Starttls, Some("cams:s3cret-pw"));
    let implicit = SmtpSink::start(SinkTls::Implicit, Some("cams:s3cret-pw"));
    let login = |sink: &SmtpSink, tls: &str| {
        format!(
            ", tls: {tls}, username: cams, password: s3cret-pw, ca_file: \"{}\"",
            sink.cert_path().display()
        )
    };
    let config = parse(&format!(
        "site: lab\nalerts:\n  public_url: https://cams.example.org/\n  channels:\n{}{}streams: []\n",
        email_channel("mail", starttls.port, &login(&starttls, "starttls")),
        email_channel("smtps", implicit.port, &login(&implicit, "tls")),
    ));
    let notification = down_notification(&config);
    for channel in &config.alerts.channels {
        outbox::send(channel, &notification, Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", channel.name));
    }
    for sink in [&starttls, &implicit] {
        let got = sink.received();
        assert_eq!(got.len(), 1, "{got:#?}");
        let mail = &got[0];
        assert_eq!(mail.mail_from, "cams@example.org");
        assert_eq!(mail.rcpt_tos, vec!["ops@example.org", "pat@example.org"]);
        assert_eq!(mail.login.as_deref(), Some("cams"));
        assert!(
            mail.header("subject")
                .is_some_and(|s| s.contains("Gate (lab) is down") || s.starts_with("=?utf-8?")),
            "{mail:#?}"
        );
        let body = mail.body();
        for line in [
            "Gate (lab): up → down since 2026-11-25T09:12:00Z (connection refused by 192.0.2.1:554)",
            "Stream:  Gate",
            "State:   up → down",
            "Reason:  refused",
            "Since:   2026-11-25T09:12:00Z",
            "URL:     rtsp://admin:***@192.0.2.1/s",
            "Link:    https://cams.example.org/streams/Gate",
            "Site:    lab",
        ] {
            assert!(body.contains(line), "{line:?} not in:\n{body}");
        }
    }
    // The password never shows in how a channel is printed.
    let shown = format!(
        "{:?} {}",
        config.alerts.channels,
        config.alerts.channels[1].redacted_url()
    );
    assert!(!shown.contains("s3cret-pw"), "{shown}");
    assert!(
        shown.contains(&format!("smtps://cams@127.0.0.1:{}", implicit.port)),
        "{shown}"
    );
}

#[test]
fn alert_test_says_exactly_what_failed_for_each_mail_server() {
    let plain = SmtpSink::start(SinkTls::None, None);
    let secured = SmtpSink::start(SinkTls::Starttls, Some("cams:right"));
    let refused = closed_port();
    let ca = format!(", ca_file: \"{}\"", secured.cert_path().display());
    let dir = TestDir::new();
    let text = format!(
        "streams: []\nalerts:\n  timeout_seconds: 5\n  channels:\n{}{}{}{}",
        email_channel("good", plain.port, ", tls: none"),
        email_channel("gone", refused, ", tls: none"),
        email_channel(
            "login",
            secured.port,
            &format!(", username: cams, password: wrong-pw{ca}")
        ),
        email_channel("untrusted", secured.port, ", username: cams, password: right"),
    );
    let path = dir.write_config_text(&text);
    let path = path.to_str().expect("UTF-8 path");
    let all = run(&["alert", "test", "--config", path], Duration::from_secs(60));
    assert_eq!(all.code(), Some(1), "{all:#?}");
    let expected = [
        format!(
            "ok      good (email, smtp://127.0.0.1:{}): accepted by the mail server",
            plain.port
        ),
        format!(
            "FAILED  gone (email, smtp://127.0.0.1:{refused}): connection refused by 127.0.0.1:{refused}"
        ),
        format!(
            "FAILED  login (email, smtp://cams@127.0.0.1:{}): login refused by 127.0.0.1:{}: 535",
            secured.port, secured.port
        ),
        format!(
            "FAILED  untrusted (email, smtp://cams@127.0.0.1:{}): TLS with 127.0.0.1:{} failed:",
            secured.port, secured.port
        ),
    ];
    for line in &expected {
        assert!(
            all.stdout.contains(line.as_str()),
            "{line:?} not in:\n{}",
            all.stdout
        );
    }
    assert!(
        all.stdout.contains("UnknownIssuer") || all.stdout.contains("certificate"),
        "{}",
        all.stdout
    );
    assert!(!all.all_output().contains("wrong-pw"), "{}", all.all_output());
    let got = plain.received();
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(
        got[0].body().contains("A test notification from StreamPulse"),
        "{got:#?}"
    );
    assert!(secured.received().is_empty());

    let good = run(
        &["alert", "test", "good", "--config", path],
        Duration::from_secs(30),
    );
    assert_eq!(good.code(), Some(0), "{good:#?}");
}

#[test]
fn email_settings_are_checked_with_their_lines() {
    let error = config::parse(
        "alerts:\n  channels:\n    - {name: a, type: email, host: h, from: nobody, to: [ok@example.org, \"not an address\"]}\n\
         \x20   - {name: b, type: email, url: \"http://h/\", to: x@example.org, from: y@example.org}\n\
         \x20   - {name: c, type: email, host: h, port: 70000, tls: ssl, username: u, from: y@example.org, to: x@example.org}\n\
         \x20   - {name: d, type: pager}\n    - {name: e, url: \"http://h/\", password: p}\nstreams: []\n",
        Path::new("/tmp/c.yaml"),
    )
    .expect_err("invalid")
    .to_string();
    for expected in [
        "/tmp/c.yaml:3: alerts.channels[0].from: \"nobody\" is not an email address",
        "/tmp/c.yaml:3: alerts.channels[0].to[1]: \"not an address\" is not an email address",
        "/tmp/c.yaml:4: alerts.channels[1].url: is a setting of `type: webhook` channels",
        "/tmp/c.yaml:4: alerts.channels[1]: needs `host:`",
        "/tmp/c.yaml:5: alerts.channels[2].port: must be between 1 and 65535",
        "/tmp/c.yaml:5: alerts.channels[2].tls: unknown value \"ssl\"",
        "/tmp/c.yaml:5: alerts.channels[2]: has `username:` but no `password:`",
        "/tmp/c.yaml:6: alerts.channels[3].type: unknown channel type \"pager\"; one of webhook, email",
        "/tmp/c.yaml:7: alerts.channels[4].password: is a setting of `type: email` channels",
    ] {
        assert!(error.contains(expected), "{expected:?} not in:\n{error}");
    }
    let config = parse(
        "alerts:\n  channels:\n    - name: mail\n      type: email\n      host: smtp.example.org\n      username: 123\n      password: 0042\n      from: cams@example.org\n      to: \"a@example.org, \\\"Doe, J\\\" <j@example.org>\"\nstreams: []\n",
    );
    let streampulse::config::ChannelKind::Email(email) = &config.alerts.channels[0].kind else {
        panic!("not email");
    };
    assert_eq!((email.port, email.to.len()), (587, 2));
    assert_eq!(email.password.as_ref().map(|p| p.expose()), Some("0042"));
}

fn alert_state(db: &Path) -> Option<Option<i64>> {
    let conn = rusqlite::Connection::open(db).ok()?;
    conn.query_row("SELECT confirmed_state FROM stream_alert_state", [], |row| {
        row.get(0)
    })
    .ok()
}

#[test]
fn a_dead_camera_mails_once_and_its_recovery_reaches_a_mail_server_that_was_down() {
    let mut rtsp = RtspTestServer::start().expect("RTSP server");
    let sntp = SntpTestServer::start(0).expect("SNTP server");
    let mut sink = SmtpSink::start(SinkTls::None, None);
    let dir = TestDir::new();
    let config = TestConfig::new(1, 0.8, sntp.port()).stream(TestStream::new("Lobby", &rtsp.url("/test")));
    let text = format!(
        "{}alerts:\n  down_after: 2\n  up_after: 1\n  retry_first_seconds: 0.5\n  retry_max_seconds: 1\n  retry_attempts: 1000\n  timeout_seconds: 3\n\
         \x20 channels:\n{}",
        config.to_yaml(),
        email_channel("mail", sink.port, ", tls: none")
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
    common::wait_for(Duration::from_secs(30), || {
        (common::heartbeats(&db, "Lobby")
            .iter()
            .filter(|h| h.outcome.health == Health::Up)
            .count()
            >= 2)
            .then_some(())
    })
    .expect("two up heartbeats");
    assert!(sink.received().is_empty(), "a first up is not a change");

    rtsp.stop();
    let got = common::wait_for(Duration::from_secs(30), || {
        Some(sink.received()).filter(|got| !got.is_empty())
    })
    .expect("the down mail");
    let downs = common::heartbeats(&db, "Lobby")
        .iter()
        .filter(|h| h.outcome.health == Health::Down)
        .count();
    assert!(downs >= 2, "confirmed after two failed probes, not one");
    assert!(got[0].body().contains("State:   up → down"), "{got:#?}");
    assert!(got[0].body().contains("Reason:  "), "{got:#?}");

    // The mail server goes away; the camera comes back; the recovery waits in the outbox.
    sink.stop();
    rtsp.restart().expect("RTSP restart");
    common::wait_for(Duration::from_secs(30), || {
        (alert_state(&db)? == Some(Health::Up.code())).then_some(())
    })
    .expect("confirmed up");
    common::wait_for(Duration::from_secs(30), || {
        let conn = rusqlite::Connection::open(&db).ok()?;
        let (attempts, error): (i64, String) = conn
            .query_row(
                "SELECT attempts, last_error FROM alert_outbox WHERE status = 'pending'",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .ok()?;
        (attempts >= 2 && error.contains("connection refused")).then_some(())
    })
    .expect("the recovery retried while the mail server was down");

    sink.resume();
    let got = common::wait_for(Duration::from_secs(30), || {
        Some(sink.received()).filter(|got| got.len() >= 2)
    })
    .expect("the recovery after the mail server came back");
    assert!(got[1].body().contains("State:   down → up"), "{got:#?}");
    // Nothing more for this one outage, even a few heartbeats later.
    let seen = common::heartbeats(&db, "Lobby").len();
    common::wait_for(Duration::from_secs(30), || {
        (common::heartbeats(&db, "Lobby").len() >= seen + 2).then_some(())
    })
    .expect("more heartbeats");
    assert_eq!(sink.received().len(), 2, "{:#?}", sink.received());
    monitor.signal(libc::SIGTERM);
    monitor.wait_timeout(Duration::from_secs(20)).expect("stopped");
}
