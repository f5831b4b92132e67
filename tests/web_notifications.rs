//! The settings page's "Send a test" (`/config/notifications`) through the real routes, against a
//! real HTTP receiver and a real SMTP sink on loopback: admins only, CSRF-checked, one channel or
//! all, each shown as delivered or with exactly what failed; secrets never on the page.

// Shared with tests/alerts.rs and tests/alerts_email.rs, which use all of them.
#[allow(dead_code)]
mod alerts {
    pub mod receiver;
    pub mod smtp;
}
mod web_support;

use alerts::receiver::Receiver;
use alerts::smtp::{SinkTls, SmtpSink};
use streampulse::store::accounts::{Accounts, Role};
use web_support::*;

fn config_with_channels(receiver: &Receiver, sink: &SmtpSink, refused: u16) -> String {
    format!(
        "database: streams.db\nalerts:\n  timeout_seconds: 5\n  channels:\n\
         \x20   - {{name: hook, url: \"{hook}\"}}\n\
         \x20   - {{name: bot, format: telegram, url: \"{base}\", token: \"123:BOTSECRET\", chat_id: 5}}\n\
         \x20   - {{name: mail, type: email, host: 127.0.0.1, port: {smtp}, tls: none, from: cams@example.org, to: [ops@example.org]}}\n\
         \x20   - {{name: gone, type: email, host: 127.0.0.1, port: {refused}, tls: none, username: u, password: SMTPSECRET, from: cams@example.org, to: [ops@example.org]}}\n\
         streams: []\n",
        hook = receiver.url("/hook"),
        base = receiver.url(""),
        smtp = sink.port,
    )
}

/// The rows of the results table: (channel, outcome text).
fn results(html: &str) -> Vec<(String, String)> {
    html.split("data-channel=\"")
        .skip(1)
        .map(|row| {
            let name = row.split('"').next().unwrap_or_default().to_string();
            let outcome = row
                .split("class=\"test-outcome\">")
                .nth(1)
                .and_then(|rest| rest.split("</td>").next())
                .unwrap_or_default()
                .trim()
                .to_string();
            (name, outcome)
        })
        .collect()
}

#[tokio::test]
async fn send_a_test_shows_each_channel_delivered_or_exactly_what_failed() {
    let receiver = Receiver::start();
    let sink = SmtpSink::start(SinkTls::None, None);
    let refused = streampulse::demo::closed_port();
    let (fixture, session) = Fixture::logged_in(&config_with_channels(&receiver, &sink, refused)).await;

    let page = fixture.get("/config/notifications", Some(&session)).await;
    assert_eq!(page.status(), 200);
    let html = body(&page);
    assert!(html.contains("id=\"test-send\""), "{html}");
    for secret in ["BOTSECRET", "SMTPSECRET"] {
        assert!(!html.contains(secret), "{secret} on the page");
    }

    let response = fixture
        .post(
            "/config/notifications/test",
            Some(&session.cookie),
            &[("csrf", &session.csrf), ("channel", "")],
        )
        .await;
    assert_eq!(response.status(), 200, "{}", body(&response));
    let html = body(&response);
    let rows = results(&html);
    let names: Vec<&str> = rows.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, vec!["hook", "bot", "mail", "gone"], "{html}");
    assert_eq!(rows[0].1, "✓ delivered (answered 200)");
    assert_eq!(rows[1].1, "✓ delivered (answered 200)");
    assert_eq!(rows[2].1, "✓ delivered (accepted by the mail server)");
    assert_eq!(rows[3].1, format!("✗ connection refused by 127.0.0.1:{refused}"));
    for secret in ["BOTSECRET", "SMTPSECRET"] {
        assert!(!html.contains(secret), "{secret} on the page");
    }
    let got = receiver.received();
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[0].json()["event"], "test");
    assert_eq!(got[1].path, "/bot123:BOTSECRET/sendMessage");
    assert_eq!(sink.received().len(), 1);

    // One channel; the receiver failing shows its status and body.
    receiver.answer(404);
    let response = fixture
        .post(
            "/config/notifications/test",
            Some(&session.cookie),
            &[("csrf", &session.csrf), ("channel", "hook")],
        )
        .await;
    let rows = results(&body(&response));
    assert_eq!(
        rows,
        vec![(
            "hook".to_string(),
            "✗ the receiver answered 404: answer 404: try later".to_string()
        )]
    );
    assert_eq!(sink.received().len(), 1, "only the chosen channel");

    let unknown = fixture
        .post(
            "/config/notifications/test",
            Some(&session.cookie),
            &[("csrf", &session.csrf), ("channel", "nope")],
        )
        .await;
    assert_eq!(unknown.status(), 400);
    assert!(
        body(&unknown).contains("no channel named &quot;nope&quot;"),
        "{}",
        body(&unknown)
    );
}

#[tokio::test]
async fn only_an_admin_with_the_form_token_can_send_a_test() {
    let receiver = Receiver::start();
    let sink = SmtpSink::start(SinkTls::None, None);
    let (fixture, session) = Fixture::logged_in(&config_with_channels(&receiver, &sink, 9)).await;

    let forged = fixture
        .post(
            "/config/notifications/test",
            Some(&session.cookie),
            &[("csrf", "not-the-token"), ("channel", "hook")],
        )
        .await;
    assert_eq!(forged.status(), 403, "{}", body(&forged));
    let anonymous = fixture
        .post("/config/notifications/test", None, &[("channel", "hook")])
        .await;
    assert!(
        matches!(anonymous.status().as_u16(), 303 | 401),
        "{}",
        anonymous.status()
    );

    Accounts::open(&fixture.db_path)
        .expect("accounts")
        .with_hasher(cheap_hasher())
        .add_user_with_role("vera", PASSWORD, Role::Viewer, fixture.now_ms())
        .expect("add viewer");
    let response = fixture.try_login("vera", PASSWORD).await;
    assert_eq!(response.status(), 303, "{}", body(&response));
    let viewer = Session {
        cookie: cookie_pair(&response, "sp_session").expect("session cookie"),
        csrf: String::new(),
    };
    let page = fixture.get("/config/notifications", Some(&viewer)).await;
    assert_eq!(page.status(), 403);
    assert!(receiver.received().is_empty());
    assert!(sink.received().is_empty());
}
