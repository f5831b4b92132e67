//! The raw config editor's hidden passwords, through the real routes (issue 12 item 10): cameras
//! whose URLs look alike once masked save and keep their own passwords, reordered or not; a
//! hidden password copied to another host is refused naming the line; a typed one replaces it.
//! Channel secrets (SMTP password, bot token, Discord URL) and the MQTT password (plain values,
//! not in a URL) the same way.

mod web_support;

use web_support::*;

/// Two cameras on one host with one user but different passwords, and one URL used twice.
const ALIKE: &str = "database: streams.db\nstreams:\n  - name: Left\n    url: rtsp://admin:left-secret@192.0.2.5:554/live\n  \
                     - name: Right\n    url: rtsp://admin:right-secret@192.0.2.5:554/live\n  \
                     - name: Left copy\n    url: rtsp://admin:left-secret@192.0.2.5:554/live\n    enabled: false\n";

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

fn version_of(html: &str) -> String {
    html.split("name=\"version\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("version field")
        .to_string()
}

/// Opens the editor and saves `edit(masked text)`.
async fn save(
    fixture: &Fixture,
    session: &Session,
    edit: impl Fn(&str) -> String,
) -> warp::http::Response<bytes::Bytes> {
    let page = body(&fixture.get("/config", Some(session)).await);
    let masked = textarea_of(&page);
    assert!(!masked.contains("-secret"), "{masked}");
    fixture
        .post(
            "/config",
            Some(&session.cookie),
            &[
                ("csrf", &session.csrf),
                ("text", &edit(&masked).replace('\n', "\r\n")),
                ("version", &version_of(&page)),
            ],
        )
        .await
}

fn config(fixture: &Fixture) -> String {
    std::fs::read_to_string(&fixture.config_path).expect("read config")
}

#[tokio::test]
async fn cameras_that_mask_alike_save_and_keep_their_own_passwords() {
    let (fixture, session) = Fixture::logged_in(ALIKE).await;
    // Saved as shown: used to be refused ("two cameras have URLs that look alike").
    let response = save(&fixture, &session, |masked| {
        masked.replace("database:", "# edited\ndatabase:")
    })
    .await;
    assert_eq!(response.status(), 303, "{}", body(&response));
    assert_eq!(config(&fixture), format!("# edited\n{ALIKE}"));

    // Right moved first: each URL takes its own password along.
    let response = save(&fixture, &session, |masked| {
        let (head, rest) = masked.split_at(masked.find("  - name: Right").expect("Right"));
        let (right, copy) = rest.split_at(rest.find("  - name: Left copy").expect("copy"));
        let (head, left) = head.split_at(head.find("  - name: Left").expect("Left"));
        format!("{head}{right}{left}{copy}")
    })
    .await;
    assert_eq!(response.status(), 303, "{}", body(&response));
    let saved = config(&fixture);
    assert!(
        saved.contains("- name: Right\n    url: rtsp://admin:right-secret@192.0.2.5:554/live\n  - name: Left\n    url: rtsp://admin:left-secret@"),
        "{saved}"
    );
    assert_eq!(saved.matches("left-secret").count(), 2, "{saved}");

    // A new password typed for Left replaces its own and nothing else.
    let response = save(&fixture, &session, |masked| {
        let at = masked.find("  - name: Left\n").expect("Left");
        let (head, tail) = masked.split_at(at);
        let url_at = tail.find(":***").expect("marker");
        let marker_end = tail[url_at..].find('@').expect("@") + url_at;
        format!("{head}{}:typed-new{}", &tail[..url_at], &tail[marker_end..])
    })
    .await;
    assert_eq!(response.status(), 303, "{}", body(&response));
    let saved = config(&fixture);
    assert!(
        saved.contains("- name: Left\n    url: rtsp://admin:typed-new@192.0.2.5:554/live"),
        "{saved}"
    );
    assert!(
        saved.contains("admin:right-secret@") && saved.contains("admin:left-secret@"),
        "{saved}"
    );
}

#[tokio::test]
async fn a_hidden_password_copied_to_another_host_is_refused_naming_the_line() {
    let (fixture, session) = Fixture::logged_in(ALIKE).await;
    let before = config(&fixture);
    let response = save(&fixture, &session, |masked| {
        let marker = masked.find(":***2@").expect("Right's marker");
        let stolen = masked[marker..]
            .split('\n')
            .next()
            .expect("line")
            .replace("192.0.2.5:554", "203.0.113.66:554");
        format!("{masked}  - name: Elsewhere\n    url: rtsp://admin{stolen}\n")
    })
    .await;
    assert_eq!(response.status(), 400);
    let html = body(&response);
    assert!(
        html.contains("line 11: the hidden password ***2 belongs to rtsp://admin@192.0.2.5:554"),
        "{html}"
    );
    assert!(!html.contains("-secret"), "{html}");
    assert_eq!(config(&fixture), before, "nothing written");
}

#[tokio::test]
async fn a_refused_add_shows_the_password_hidden_and_never_saves_the_mask() {
    let (fixture, session) = Fixture::logged_in(ALIKE).await;
    let add = |url: &'static str, name: &'static str| {
        let (fixture, session) = (&fixture, &session);
        async move {
            fixture
                .post(
                    "/config/streams/add",
                    Some(&session.cookie),
                    &[
                        ("csrf", &session.csrf),
                        ("name", name),
                        ("url", url),
                        ("pipeline", ""),
                    ],
                )
                .await
        }
    };
    let before = config(&fixture);
    // Refused for its name; the form comes back with the typed password hidden.
    let refused = add("rtsp://admin:typed-secret@192.0.2.9/live", "Left").await;
    assert_eq!(refused.status(), 400);
    let page = body(&refused);
    assert!(
        !page.contains("typed-secret"),
        "the typed password is not shown back"
    );
    assert!(
        page.contains("rtsp://admin:***@192.0.2.9/live"),
        "the form keeps the URL, password hidden"
    );
    // Sent again as shown (or with a numbered marker), it is refused: the mask is no password.
    for masked in [
        "rtsp://admin:***@192.0.2.9/live",
        "rtsp://admin:***1@192.0.2.5:554/live",
    ] {
        let again = add(masked, "Gate").await;
        assert_eq!(again.status(), 400, "{masked}");
        assert!(body(&again).contains("password again"), "{masked}");
    }
    assert_eq!(config(&fixture), before, "nothing saved");
    let typed = add("rtsp://admin:typed-secret@192.0.2.9/live", "Gate").await;
    assert_eq!(typed.status(), 303, "{}", body(&typed));
    assert!(config(&fixture).contains("rtsp://admin:typed-secret@192.0.2.9/live"));
}

/// Channel secrets that are whole values: an SMTP password, a bot token, a Discord URL.
const CHANNELS: &str = "database: streams.db\nalerts:\n  channels:\n    - name: mail\n      type: email\n      host: smtp.example.org\n      \
                        username: cams\n      password: \"smtp-secret\"\n      from: cams@example.org\n      to: [ops@example.org]\n    \
                        - {name: bot, format: telegram, token: \"123:bot-secret\", chat_id: 5}\n    \
                        - {name: chat, format: discord, url: \"https://discord.com/api/webhooks/1/path-secret\"}\n\
                        streams:\n  - name: Gate\n    url: rtsp://admin:cam-secret@192.0.2.5/live\n";

#[tokio::test]
async fn channel_secrets_are_masked_and_saved_back_unchanged_but_never_to_another_server() {
    let (fixture, session) = Fixture::logged_in(CHANNELS).await;
    let page = body(&fixture.get("/config", Some(&session)).await);
    let masked = textarea_of(&page);
    for secret in ["smtp-secret", "bot-secret", "path-secret", "cam-secret"] {
        assert!(!masked.contains(secret), "{secret} in {masked}");
        assert!(!page.contains(secret), "{secret} on the page");
    }
    assert!(masked.contains("password: \"***2\""), "{masked}");
    assert!(masked.contains("token: \"***3\""), "{masked}");
    assert!(masked.contains("url: \"***4\""), "{masked}");

    // Saved back as shown (with an edit elsewhere): every real value is kept.
    let response = save(&fixture, &session, |masked| {
        masked.replace("chat_id: 5", "chat_id: 6")
    })
    .await;
    assert_eq!(response.status(), 303, "{}", body(&response));
    assert_eq!(config(&fixture), CHANNELS.replace("chat_id: 5", "chat_id: 6"));

    // The SMTP password pointed at another server: refused, nothing written.
    let before = config(&fixture);
    let response = save(&fixture, &session, |masked| {
        masked.replace("host: smtp.example.org", "host: mail.attacker.example")
    })
    .await;
    assert_eq!(response.status(), 400);
    let html = body(&response);
    assert!(
        html.contains("line 8: the hidden value ***2 belongs to another setting or server"),
        "{html}"
    );
    assert!(!html.contains("smtp-secret"), "{html}");
    assert_eq!(config(&fixture), before, "nothing written");

    // A typed password replaces the hidden one.
    let response = save(&fixture, &session, |masked| {
        masked.replace("\"***2\"", "new-smtp-pw")
    })
    .await;
    assert_eq!(response.status(), 303, "{}", body(&response));
    let saved = config(&fixture);
    assert!(saved.contains("password: new-smtp-pw\n"), "{saved}");
    assert!(
        saved.contains("123:bot-secret") && saved.contains("path-secret"),
        "{saved}"
    );
}

#[tokio::test]
async fn the_mqtt_password_is_hidden_in_the_editor_and_kept_on_save() {
    let with_mqtt = format!(
        "{ALIKE}mqtt:\n  enabled: true\n  host: 127.0.0.1\n  username: pulse\n  password: \"mqtt-secret\"  # broker\n"
    );
    let (fixture, session) = Fixture::logged_in(&with_mqtt).await;
    let page = body(&fixture.get("/config", Some(&session)).await);
    let masked = textarea_of(&page);
    assert!(!masked.contains("mqtt-secret"), "{masked}");
    assert!(masked.contains("  password: \"***4\"  # broker\n"), "{masked}");

    let response = save(&fixture, &session, |masked| {
        masked.replace("username: pulse", "username: pulse2")
    })
    .await;
    assert_eq!(response.status(), 303, "{}", body(&response));
    assert_eq!(
        config(&fixture),
        with_mqtt.replace("username: pulse", "username: pulse2")
    );

    let response = save(&fixture, &session, |masked| {
        masked.replace("\"***4\"", "typed-new")
    })
    .await;
    assert_eq!(response.status(), 303, "{}", body(&response));
    assert!(config(&fixture).contains("  password: typed-new  # broker\n"));
}
