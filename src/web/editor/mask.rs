//! Camera passwords in the config editor: each one shown as a numbered marker (`***1`, `***2`, …
//! in the order of the file) and put back on save from the marker, so two cameras whose URLs look
//! alike once masked (same user and host, or the same URL twice) each keep their own password,
//! and a URL can be moved, reordered or given a new path.
//!
//! A marker is not a key to any password: it is put back only into a URL with the same scheme,
//! user, host and port as the one it came from. Copied to another host (to make the server send
//! the password there), the save is refused, naming the line.
//!
//! URLs are found exactly as [`crate::url::redact_text`] finds them (userinfo up to the last `@`
//! on the URL's line), so whatever redaction hides everywhere else is hidden here too.

use std::collections::HashMap;

use super::key_secrets;
use crate::url::{url_spans, CameraUrl};

/// How a hidden password starts in the editor; the number after it says which one.
pub const HIDDEN: &str = "***";

/// One URL with a password (`scheme://user:password@host…`) in a text.
#[derive(Debug)]
struct Secret {
    /// Just after `://`.
    start: usize,
    /// The `@` ending the userinfo.
    at: usize,
    /// Where the URL ends.
    end: usize,
    /// Everything up to the first `:` of the userinfo.
    user_end: usize,
    /// Who the password is for: scheme, user, host and port, normalised.
    owner: Owner,
}

/// Where a password may be sent: never to a URL with any of these different.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owner {
    scheme: String,
    user: String,
    /// `host:port`, the scheme's default port filled in where known.
    authority: String,
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}@{}", self.scheme, self.user, self.authority)
    }
}

fn is_scheme_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "+-.".contains(c)
}

/// Every URL in `text` whose userinfo holds a password (a `:`), in order.
fn secrets(text: &str) -> Vec<Secret> {
    url_spans(text)
        .into_iter()
        .filter_map(|span| {
            let at = span.userinfo_end?;
            let colon = text[span.start..at].find(':')?;
            let before = &text[..span.start - "://".len()];
            let scheme_start = before
                .rfind(|c: char| !is_scheme_char(c))
                .map_or(0, |i| i + before[i..].chars().next().map_or(1, char::len_utf8));
            let scheme = before[scheme_start..].to_ascii_lowercase();
            let after_at = &text[at + 1..span.end];
            let host_port = &after_at[..after_at.find(['/', '?', '#']).unwrap_or(after_at.len())];
            let authority = CameraUrl::new(format!("{scheme}://{host_port}"))
                .host_port()
                .map_or_else(
                    || host_port.to_ascii_lowercase(),
                    |(host, port)| format!("{}:{port}", host.to_ascii_lowercase()),
                );
            Some(Secret {
                start: span.start,
                at,
                end: span.end,
                user_end: span.start + colon,
                owner: Owner {
                    scheme,
                    user: text[span.start..span.start + colon].to_string(),
                    authority,
                },
            })
        })
        .collect()
}

fn line_of(text: &str, byte: usize) -> usize {
    text[..byte].matches('\n').count() + 1
}

/// The text with every URL password replaced by a numbered marker (`rtsp://admin:***1@cam/x`),
/// then every secret value (`password: "***3"`, [`super::key_secrets`]) numbered after them.
pub fn mask(text: &str) -> String {
    let urls_masked = mask_urls(text);
    key_secrets::mask_values(&urls_masked, secrets(text).len() + 1)
}

fn mask_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (index, secret) in secrets(text).iter().enumerate() {
        out.push_str(&text[copied..secret.user_end]);
        out.push_str(&format!(":{HIDDEN}{}", index + 1));
        copied = secret.at;
    }
    out.push_str(&text[copied..]);
    out
}

/// What a submitted URL's password says.
enum Password {
    /// `***n`: the file's n-th password (1-based).
    Marker(usize),
    /// A bare `***`, as the dashboard and the logs show passwords.
    Bare,
    /// Anything else: typed by the user, kept as typed.
    Typed,
}

fn password_kind(password: &str) -> Password {
    match password.strip_prefix(HIDDEN) {
        Some("") => Password::Bare,
        Some(digits) if digits.bytes().all(|b| b.is_ascii_digit()) => {
            digits.parse().map_or(Password::Typed, Password::Marker)
        }
        _ => Password::Typed,
    }
}

/// Whether a URL in `text` carries a hidden password (`***` or `***n`) instead of a real one:
/// the add-stream form refuses those, since a new stream has no password of the file to stand for.
pub fn hides_a_password(text: &str) -> bool {
    secrets(text).iter().any(|secret| {
        !matches!(
            password_kind(&text[secret.user_end + 1..secret.at]),
            Password::Typed
        )
    })
}

/// Puts the real passwords back into an edited, masked text. A marker (`***n`) gets the file's
/// n-th password back if its URL still has the same scheme, user, host and port; a bare `***`
/// (pasted from elsewhere) gets one back only if exactly one URL of the file masks to the same
/// text. Anything else is refused line by line, so a marker is never saved as a password and
/// never sends a password to another host. Secret values ([`super::key_secrets`]) are restored
/// first, with the same care.
pub fn unmask(original: &str, submitted: &str) -> Result<String, Vec<String>> {
    let known = secrets(original);
    let submitted = &key_secrets::unmask_values(original, submitted, known.len() + 1)?;
    // Bare masked tail -> Some(real userinfo), or None when different real ones mask alike.
    let mut bare: HashMap<String, Option<&str>> = HashMap::new();
    for secret in &known {
        let shown = format!(
            "{}:{HIDDEN}{}",
            &original[secret.start..secret.user_end],
            &original[secret.at..secret.end]
        );
        let real = &original[secret.start..secret.at];
        bare.entry(shown)
            .and_modify(|seen| {
                if *seen != Some(real) {
                    *seen = None;
                }
            })
            .or_insert(Some(real));
    }
    let mut out = String::with_capacity(submitted.len());
    let mut problems = Vec::new();
    let mut copied = 0;
    for secret in secrets(submitted) {
        let line = line_of(submitted, secret.start);
        let password = &submitted[secret.user_end + 1..secret.at];
        let real = match password_kind(password) {
            Password::Typed => continue,
            Password::Marker(number) => match number.checked_sub(1).and_then(|i| known.get(i)) {
                Some(from) if from.owner == secret.owner => &original[from.start..from.at],
                Some(from) => {
                    problems.push(format!(
                        "line {line}: the hidden password {password} belongs to {}, which differs \
                         from this URL in scheme, user, host or port, so the password cannot be \
                         restored here; type the password, or show passwords first",
                        from.owner
                    ));
                    continue;
                }
                None => {
                    problems.push(format!(
                        "line {line}: there is no hidden password {password} in the file, so the \
                         password cannot be restored; type the password, or show passwords first"
                    ));
                    continue;
                }
            },
            Password::Bare => {
                let shown = &submitted[secret.start..secret.end];
                match bare.get(shown) {
                    Some(Some(real)) => real,
                    Some(None) => {
                        problems.push(format!(
                            "line {line}: more than one camera's URL reads like this one with the \
                             password hidden as {HIDDEN}; use the numbered form the editor shows \
                             ({HIDDEN}1, {HIDDEN}2, …), type the password, or show passwords first"
                        ));
                        continue;
                    }
                    None => {
                        problems.push(format!(
                            "line {line}: this URL's password is hidden ({HIDDEN}) and the URL was \
                             changed, so the password cannot be restored; type the password, or \
                             show passwords first"
                        ));
                        continue;
                    }
                }
            }
        };
        out.push_str(&submitted[copied..secret.start]);
        out.push_str(real);
        copied = secret.at;
    }
    out.push_str(&submitted[copied..]);
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str =
        "# cameras at the depot\nheartbeat_seconds: 15\nstreams:\n  - name: Gate  # front\n    \
                        url: rtsp://admin:hunter2@10.0.0.5/stream1\n  # the yard one\n  - name: Yard\n    \
                        url: http://cam:pa55word@10.0.0.6:8080/video\n    params:\n      x: y\nweb:\n  \
                        listen: 127.0.0.1:8000\n";

    #[test]
    fn hidden_passwords_are_recognised() {
        assert!(hides_a_password("rtsp://admin:***@cam/x"));
        assert!(hides_a_password("rtsp://admin:***12@cam/x"));
        assert!(!hides_a_password("rtsp://admin:s3cret@cam/x"));
        assert!(!hides_a_password("rtsp://admin:***x@cam/x"));
        assert!(!hides_a_password("rtsp://cam/x"));
    }

    #[test]
    fn masked_passwords_are_restored_on_save() {
        let masked = mask(FILE);
        assert!(!masked.contains("hunter2") && !masked.contains("pa55word"));
        assert!(masked.contains("rtsp://admin:***1@10.0.0.5/stream1"), "{masked}");
        assert!(masked.contains("http://cam:***2@10.0.0.6:8080/video"), "{masked}");
        let edited = masked.replace("heartbeat_seconds: 15", "heartbeat_seconds: 30");
        let restored = unmask(FILE, &edited).expect("restorable");
        assert_eq!(
            restored,
            FILE.replace("heartbeat_seconds: 15", "heartbeat_seconds: 30")
        );
        // Changing the host of a masked URL loses the password: refused, never saved as ***1.
        let moved = masked.replace("10.0.0.5", "10.0.0.7");
        let problems = unmask(FILE, &moved).expect_err("cannot restore");
        assert!(problems[0].starts_with("line 5: "), "{problems:?}");
        assert!(problems[0].contains("rtsp://admin@10.0.0.5:554"), "{problems:?}");
        // A new path on the same camera keeps the password.
        let path = masked.replace("/stream1", "/stream2");
        assert!(unmask(FILE, &path)
            .expect("same camera")
            .contains("rtsp://admin:hunter2@10.0.0.5/stream2"));
        // A new password typed in full is kept as typed.
        let typed = masked.replace("admin:***1@", "admin:n3w@");
        let saved = unmask(FILE, &typed).expect("typed");
        assert!(
            saved.contains("admin:n3w@10.0.0.5") && !saved.contains("hunter2"),
            "{saved}"
        );
        assert!(saved.contains("cam:pa55word@"), "{saved}");
    }

    /// Two cameras on one host with one user name but different passwords, and one URL used by
    /// two streams: masked alike, which used to refuse every save.
    const ALIKE: &str = "streams:\n  - name: Left\n    url: rtsp://admin:left-pw@192.0.2.5:554/live\n  \
                         - name: Right\n    url: rtsp://admin:right-pw@192.0.2.5:554/live\n  \
                         - name: Left again\n    url: rtsp://admin:left-pw@192.0.2.5:554/live\n";

    #[test]
    fn cameras_that_mask_alike_keep_their_own_passwords() {
        let masked = mask(ALIKE);
        assert!(!masked.contains("-pw"), "{masked}");
        assert_eq!(unmask(ALIKE, &masked).expect("restorable"), ALIKE);
        // Reordered: each URL takes its own password along.
        let reorder = |text: &str| {
            let (head, rest) = text.split_at(text.find("  - name:").expect("items"));
            let items: Vec<&str> = rest.split_inclusive("/live\n").collect();
            format!("{head}{}{}{}", items[2], items[1], items[0])
        };
        assert_eq!(
            unmask(ALIKE, &reorder(&masked)).expect("restorable"),
            reorder(ALIKE)
        );
        // A bare *** is ambiguous here: refused with a way out.
        let bare = masked.replace("***2", "***");
        let problems = unmask(ALIKE, &bare).expect_err("ambiguous");
        assert!(
            problems[0].starts_with("line 5: ") && problems[0].contains("***1"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_marker_never_sends_a_password_to_another_camera() {
        let masked = mask(ALIKE);
        for to in [
            "rtsp://admin:***1@evil.example:554",
            "rtsp://admin:***1@192.0.2.5:8554",
            "rtsp://root:***1@192.0.2.5:554",
            "http://admin:***1@192.0.2.5:554",
        ] {
            let copied = format!("{masked}extra: {to}/x\n");
            let problems = unmask(ALIKE, &copied).expect_err(to);
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(problems[0].starts_with("line 8: "), "{problems:?}");
            assert!(
                problems[0].contains("belongs to rtsp://admin@192.0.2.5:554"),
                "{problems:?}"
            );
        }
        // The default port written out, or the host in capitals, is the same camera.
        let same = masked
            .replacen("192.0.2.5:554", "192.0.2.5", 1)
            .replacen("rtsp://", "RTSP://", 1);
        assert!(unmask(ALIKE, &same)
            .expect("same camera")
            .contains("RTSP://admin:left-pw@192.0.2.5/live"));
        let unknown = masked.replace("***3", "***9");
        let problems = unmask(ALIKE, &unknown).expect_err("no such marker");
        assert!(
            problems[0].starts_with("line 7: ") && problems[0].contains("***9"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_typed_password_replaces_the_hidden_one() {
        let masked = mask(ALIKE);
        let typed = masked.replace("admin:***2@", "admin:brand-new@");
        let saved = unmask(ALIKE, &typed).expect("typed");
        assert!(saved.contains("admin:brand-new@192.0.2.5:554/live"), "{saved}");
        assert!(!saved.contains("right-pw"), "{saved}");
        assert_eq!(saved.matches("left-pw").count(), 2, "{saved}");
    }

    /// A config with one stream per `(user, password, host)`, hosts drawn from a few so that
    /// masked URLs often look alike.
    fn config_of(cameras: &[(String, String, usize)]) -> String {
        const HOSTS: [&str; 3] = ["192.0.2.5:554", "cam.example", "[2001:db8::1]:8554"];
        let mut text = String::from("heartbeat_seconds: 15\nstreams:\n");
        for (index, (user, password, host)) in cameras.iter().enumerate() {
            let host = HOSTS[host % HOSTS.len()];
            text.push_str(&format!(
                "  - name: cam{index}\n    url: rtsp://{user}:{password}@{host}/live\n"
            ));
        }
        text
    }

    fn camera() -> impl proptest::strategy::Strategy<Value = (String, String, usize)> {
        // Any printable password (`://` aside: a password holding ` x://` reads as a second URL
        // to any parser; validate refuses the space).
        ("[a-z]{1,6}", "[ -~\u{a0}-\u{17f}]{1,16}", 0usize..3)
            .prop_filter("no URL inside a password", |(_, password, _)| {
                !password.contains("://")
            })
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Any text at all: unmasking the mask gives the text back, byte for byte.
        #[test]
        fn unmask_of_mask_is_the_identity(text in "(\\PC|\n|://|:|@){0,80}") {
            prop_assert_eq!(unmask(&text, &mask(&text)), Ok(text.clone()));
        }

        /// Random configs with random passwords: none shows in the mask, all come back, even
        /// when the streams are reordered.
        #[test]
        fn every_password_is_hidden_and_restored(
            cameras in proptest::collection::vec(camera(), 1..6),
            order in Just(()).prop_perturb(|_, mut rng| rng.random::<u64>()),
        ) {
            let text = config_of(&cameras);
            let masked = mask(&text);
            // Exactly the file with each password replaced by its marker: nothing of any
            // password left, nothing else touched.
            let markers: Vec<_> = cameras
                .iter()
                .enumerate()
                .map(|(index, (user, _, host))| (user.clone(), format!("{HIDDEN}{}", index + 1), *host))
                .collect();
            prop_assert_eq!(&masked, &config_of(&markers));
            prop_assert_eq!(unmask(&text, &masked), Ok(text.clone()));
            // Reorder the streams (by a random rotation) in the masked text and in the original.
            let rotate = |text: &str| {
                let (head, rest) = text.split_at(text.find("  - name:").unwrap_or(text.len()));
                let mut items: Vec<&str> = rest.split_inclusive("/live\n").collect();
                let by = (order as usize) % items.len().max(1);
                items.rotate_left(by);
                format!("{head}{}", items.concat())
            };
            prop_assert_eq!(unmask(&text, &rotate(&masked)), Ok(rotate(&text)));
        }

        /// A marker copied into a URL of another host is refused, naming its line.
        #[test]
        fn a_marker_on_another_host_is_refused(
            cameras in proptest::collection::vec(camera(), 1..4),
            host in "[a-z]{1,10}\\.example",
        ) {
            let text = config_of(&cameras);
            let masked = mask(&text);
            let copied = format!("{masked}extra: rtsp://{}:{HIDDEN}1@{host}/x\n", cameras[0].0);
            let problems = unmask(&text, &copied).expect_err("refused");
            let line = copied.lines().count();
            prop_assert_eq!(problems.len(), 1);
            prop_assert!(problems[0].starts_with(&format!("line {line}: ")), "{:?}", problems);
        }
    }
}
