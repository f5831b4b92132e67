//! Any characters in a camera URL's password, through everything a config's URL meets before a
//! probe starts: the YAML reader, validation, the probe request and its pipeline text, and every
//! way a URL is shown (Display, Debug, problems, free-text redaction). Nothing may panic, and the
//! password may show nowhere but in the pipeline handed to GStreamer (issue 12).

use std::path::Path;

use proptest::prelude::*;
use streampulse::config;
use streampulse::pipeline::TemplateLibrary;
use streampulse::probe::{template_values, ProbeRequest};
use streampulse::url::redact_text;

/// Ends every generated password, so "does the password show?" is a plain substring test even
/// when the random part is one common character.
const MARKER: &str = "Pw9Marker";

/// A YAML double-quoted scalar holding `text` exactly (any character, controls escaped).
fn yaml_quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() || c == '\u{FEFF}' => out.push_str(&format!("\\U{:08X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn config_text(url: &str) -> String {
    format!(
        "ntp_server: 127.0.0.1:9\nstreams:\n  - name: Gate\n    url: {}\n",
        yaml_quoted(url)
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn no_password_stops_a_reader_or_shows_outside_the_pipeline(
        // Any character but line breaks (a URL is one line), weighted towards the troublesome.
        random in proptest::collection::vec(
            prop_oneof![
                3 => proptest::char::any(),
                2 => proptest::sample::select(vec!['%', '@', ':', '/', '?', '#', ' ', '"', '\'', '\\', '<', '>', 'é', '😀', '\t', '\u{0}']),
                1 => proptest::char::range('0', 'f'),
            ],
            0..16,
        ),
        scheme in proptest::sample::select(vec!["rtsp", "rtsps", "http", "https"]),
    ) {
        let random: String = random.into_iter().filter(|c| !matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')).collect();
        let password = format!("{random}{MARKER}");
        let url = format!("{scheme}://admin:{password}@cam.local:554/live");

        // Free-text redaction, as used on logs, pages and the API.
        let redacted = redact_text(&format!("could not connect to {url}: refused"));
        prop_assert!(!redacted.contains(MARKER), "{}", redacted);

        match config::parse(&config_text(&url), Path::new("config.yaml")) {
            Err(error) => {
                let shown = format!("{error} {error:?}");
                prop_assert!(!shown.contains(MARKER), "{}", shown);
            }
            Ok(parsed) => {
                let shown = format!("{parsed:?}");
                prop_assert!(!shown.contains(MARKER), "{}", shown);
                let stream = &parsed.streams[0];
                let camera = stream.url.as_ref().expect("a URL");
                let shown = format!("{camera} {camera:?}");
                prop_assert!(!shown.contains(MARKER), "{}", shown);
                // The probe's pipeline text gets the password (GStreamer needs it), or is
                // refused with an error that does not show it.
                let library = TemplateLibrary::new(None);
                let request = ProbeRequest::for_stream(stream, &library).expect("shipped template");
                let values = template_values(&request);
                match request.template.render(&values) {
                    Ok(_) => {}
                    Err(error) => {
                        let shown = format!("{error} {error:?}");
                        prop_assert!(!shown.contains(MARKER), "{}", shown);
                    }
                }
            }
        }
    }
}

#[test]
fn fixed_cases_take_both_paths() {
    let path = Path::new("config.yaml");
    // Accepted: an escaped `%`, and characters that need no escape.
    for password in [format!("a%25b{MARKER}"), format!("x!$&()*+,;={MARKER}")] {
        let url = format!("rtsp://admin:{password}@cam.local:554/live");
        let parsed = config::parse(&config_text(&url), path).expect("accepted");
        let shown = format!("{parsed:?}");
        assert!(!shown.contains(MARKER), "{shown}");
    }
    // Refused, naming the field, never the password: the panic (`%` + hex digit + a
    // multi-byte character), a raw `@`, a space, a control character.
    for password in ["%aé", "a@b", "a b", "a\u{1}b"] {
        let url = format!("rtsp://admin:{password}{MARKER}@cam.local:554/live");
        let error = config::parse(&config_text(&url), path).expect_err("refused");
        let shown = format!("{error}");
        assert!(shown.contains("streams[0].url"), "{shown}");
        assert!(!shown.contains(MARKER), "{shown}");
    }
}
