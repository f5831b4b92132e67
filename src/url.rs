//! Camera URLs: the one type that holds a camera's credentials, and the redaction that keeps them
//! out of every log line, page, API answer and error message.

use std::fmt;

/// A camera URL as written in the config. `Display` and `Debug` show it with the password
/// replaced by `***`; only [`CameraUrl::expose`] gives the real text (for GStreamer).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CameraUrl(String);

impl CameraUrl {
    pub fn new(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }

    /// The URL with credentials, for handing to GStreamer. Never log the result.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with its password masked.
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }

    /// Lower-case scheme (`rtsp`, `http`, ...) or `None` when the text has no `scheme://`.
    pub fn scheme(&self) -> Option<String> {
        let (scheme, _) = self.0.split_once("://")?;
        if scheme.is_empty()
            || !scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            return None;
        }
        Some(scheme.to_ascii_lowercase())
    }

    /// `(user, password)` from the authority part, percent-decoded.
    pub fn credentials(&self) -> Option<(String, Option<String>)> {
        let (_, rest) = self.0.split_once("://")?;
        let (userinfo, _, _) = split_authority(rest);
        let userinfo = userinfo?;
        match userinfo.split_once(':') {
            Some((user, pass)) => Some((percent_decode(user), Some(percent_decode(pass)))),
            None => Some((percent_decode(userinfo), None)),
        }
    }

    /// Why the user name or password cannot be used as written, if so. Never quotes them.
    pub fn credentials_problem(&self) -> Option<&'static str> {
        let (_, rest) = self.0.split_once("://")?;
        let (userinfo, host, _) = split_authority(rest);
        if host.contains('@') {
            return Some("an '@' in the user name or password must be written as %40");
        }
        let userinfo = userinfo?;
        if userinfo.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Some(
                "spaces and control characters in the user name or password must be \
                 percent-encoded (a space is %20)",
            );
        }
        if has_malformed_escape(userinfo) {
            return Some(
                "the user name or password has a '%' that is not followed by two hex digits \
                 (write a literal % as %25)",
            );
        }
        if percent_encoding::percent_decode_str(userinfo)
            .decode_utf8()
            .is_err()
        {
            return Some("the user name or password decodes to bytes that are not UTF-8 text");
        }
        None
    }

    /// `host:port` with the scheme's default port filled in, for diagnostics.
    pub fn host_port(&self) -> Option<(String, u16)> {
        let scheme = self.scheme()?;
        let (_, rest) = self.0.split_once("://")?;
        let (_, hostport, _) = split_authority(rest);
        let default_port = match scheme.as_str() {
            "rtsp" => 554,
            "rtsps" => 322,
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6.split_once(']')?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().ok()?,
                None => default_port,
            };
            return Some((host.to_string(), port));
        }
        match hostport.rsplit_once(':') {
            Some((host, port)) => Some((host.to_string(), port.parse().ok()?)),
            None => Some((hostport.to_string(), default_port)),
        }
    }

    /// The URL without its credentials (for elements that take them as separate properties).
    pub fn without_credentials(&self) -> String {
        match self.0.split_once("://") {
            Some((scheme, rest)) => {
                let (_, host, path) = split_authority(rest);
                format!("{scheme}://{host}{path}")
            }
            None => self.0.clone(),
        }
    }
}

impl fmt::Display for CameraUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for CameraUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CameraUrl({})", self.redacted())
    }
}

/// Masks the password of one URL: `rtsp://user:pass@host/x` → `rtsp://user:***@host/x`.
pub fn redact_url(url: &str) -> String {
    redact_text(url)
}

/// Splits what follows `scheme://` into (userinfo, host[:port], rest). Passwords typed raw may
/// contain `/`, `?` or `#`, so the first `@` decides where the userinfo ends.
fn split_authority(rest: &str) -> (Option<&str>, &str, &str) {
    let (userinfo, after) = match rest.find('@') {
        Some(at) if !rest[..at].contains(char::is_whitespace) => (Some(&rest[..at]), &rest[at + 1..]),
        _ => (None, rest),
    };
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    (userinfo, &after[..end], &after[end..])
}

/// Where one URL sits in free text, as redaction sees it (byte offsets into the text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlSpan {
    /// Just after `://`.
    pub start: usize,
    /// The `@` that ends the userinfo, if there is one.
    pub userinfo_end: Option<usize>,
    /// Where the URL ends: whitespace, a quote or `<`/`>` after the host, or the line's end.
    pub end: usize,
}

/// Every URL in `text`. A password may hold any printable character (spaces, quotes, `<`, `/`,
/// `@`, even `://`), so the userinfo is taken to end at the *last* `@` on the URL's line before
/// the next URL starts: over-masking a path or a sentence is harmless, a password left in view is
/// not.
pub fn url_spans(text: &str) -> Vec<UrlSpan> {
    let mut spans = Vec::new();
    let mut from = 0;
    while let Some(found) = text[from..].find("://") {
        let start = from + found + 3;
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let region_end = next_url_start(text, start, line_end).unwrap_or(line_end);
        let userinfo_end = text[start..region_end].rfind('@').map(|i| start + i);
        let host_from = userinfo_end.map_or(start, |at| at + 1);
        let end = text[host_from..region_end]
            .find(|c: char| c.is_whitespace() || "\"'<>".contains(c))
            .map_or(region_end, |i| host_from + i);
        spans.push(UrlSpan {
            start,
            userinfo_end,
            end,
        });
        from = end;
    }
    spans
}

/// The start of the next URL's scheme in `text[from..to]`: a `://` whose scheme word begins the
/// text or follows whitespace or punctuation that separates words (not a `:` or a letter, as in a
/// password like `a://b`).
fn next_url_start(text: &str, from: usize, to: usize) -> Option<usize> {
    let mut search = from;
    while let Some(found) = text[search..to].find("://") {
        let separator = search + found;
        // Just past the last character that cannot be in a scheme, which may be multi-byte.
        let scheme_start = text[from..separator]
            .char_indices()
            .rfind(|(_, c)| !(c.is_ascii_alphanumeric() || "+-.".contains(*c)))
            .map_or(from, |(i, c)| from + i + c.len_utf8());
        // Right after this URL's own `://` is its userinfo (`rtsp://admin://0 @cam`), not a
        // second URL.
        let word_boundary = scheme_start > from
            && text[..scheme_start]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_whitespace() || "\"'`(<[{,;=|".contains(c));
        if scheme_start < separator && word_boundary {
            return Some(scheme_start);
        }
        search = separator + 3;
    }
    None
}

/// Masks every `scheme://user:password@` in free text, such as a GStreamer error message that
/// quotes the location it failed on: `rtsp://user:***@host/x`.
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for span in url_spans(text) {
        let Some(at) = span.userinfo_end else {
            continue;
        };
        let userinfo = &text[span.start..at];
        // A userinfo without `:` is a user name alone: nothing to hide.
        if let Some((user, _)) = userinfo.split_once(':') {
            out.push_str(&text[copied..span.start]);
            out.push_str(user);
            out.push_str(":***");
            copied = at;
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// Decodes `%XX` escapes byte-wise (a multi-byte character after `%` is kept as it is); bytes
/// that are not UTF-8 become U+FFFD.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// A `%` not followed by two hex digits.
fn has_malformed_escape(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes.iter().enumerate().any(|(i, &byte)| {
        byte == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password_but_keeps_user_and_host() {
        let url = CameraUrl::new("rtsp://admin:s3cr%40t@cam.example:554/stream1");
        assert_eq!(url.to_string(), "rtsp://admin:***@cam.example:554/stream1");
        assert_eq!(
            format!("{url:?}"),
            "CameraUrl(rtsp://admin:***@cam.example:554/stream1)"
        );
        assert_eq!(url.credentials(), Some(("admin".into(), Some("s3cr@t".into()))));
        assert_eq!(url.host_port(), Some(("cam.example".into(), 554)));
        assert_eq!(url.without_credentials(), "rtsp://cam.example:554/stream1");
    }

    #[test]
    fn redacts_every_url_inside_free_text() {
        let text = "Could not open resource rtsp://u:p@h/a (http://x:y@z:81/) and http://plain/";
        assert_eq!(
            redact_text(text),
            "Could not open resource rtsp://u:***@h/a (http://x:***@z:81/) and http://plain/"
        );
    }

    #[test]
    fn raw_special_characters_in_passwords_stay_hidden() {
        let url = CameraUrl::new("rtsp://admin:pa/ss?w#rd@cam.example/live");
        assert_eq!(url.to_string(), "rtsp://admin:***@cam.example/live");
        assert_eq!(
            url.credentials(),
            Some(("admin".into(), Some("pa/ss?w#rd".into())))
        );
        assert_eq!(url.host_port(), Some(("cam.example".into(), 554)));
        assert_eq!(
            redact_text("at 'rtsp://a:b/c@h/x' failed"),
            "at 'rtsp://a:***@h/x' failed"
        );
    }

    #[test]
    fn a_multibyte_character_after_a_percent_sign_is_not_a_panic() {
        // Used to slice inside 'é' and panic, printing the password (issue 12).
        let url = CameraUrl::new("rtsp://u:%aé@host/x");
        assert_eq!(url.credentials(), Some(("u".into(), Some("%aé".into()))));
        assert!(url.credentials_problem().is_some());
        assert_eq!(url.to_string(), "rtsp://u:***@host/x");
        let not_utf8 = CameraUrl::new("rtsp://u:%ff@host/x").credentials_problem();
        assert!(not_utf8.is_some_and(|p| p.contains("UTF-8")), "{not_utf8:?}");
        assert_eq!(
            CameraUrl::new("rtsp://u:a%25b%40@host/x").credentials_problem(),
            None
        );
        assert_eq!(CameraUrl::new("rtsp://host/x").credentials_problem(), None);
    }

    #[test]
    fn a_multibyte_character_before_a_second_scheme_is_not_a_panic() {
        // Found by the editor's mask proptest: sliced inside 'é' and panicked, in every output
        // path that redacts (logs, pages, API, `check`).
        assert_eq!(redact_text("a://é://"), "a://é://");
        assert_eq!(
            redact_text("rtsp://u:p@h/é://x and http://v:w@h2/"),
            "rtsp://u:***@h/é://x and http://v:***@h2/"
        );
        assert_eq!(
            CameraUrl::new("rtsp://u:p@cam/😀://x").to_string(),
            "rtsp://u:***@cam/😀://x"
        );
        // Found by `any_printable_password_is_masked` (password `//0 `): the user name and the
        // password's `//` read as a second URL starting right after the first `://`.
        assert_eq!(
            CameraUrl::new("rtsp://admin://0 @cam.local:554/live").to_string(),
            "rtsp://admin:***@cam.local:554/live"
        );
    }

    proptest::proptest! {
        /// No text in a URL field can panic any of its readers.
        #[test]
        fn every_reader_takes_any_text(text in "\\PC*") {
            let url = CameraUrl::new(text.clone());
            let _ = (url.scheme(), url.credentials(), url.host_port(), url.without_credentials());
            let _ = (url.credentials_problem(), url.redacted(), redact_text(&text));
        }

        /// Percent escapes and multi-byte characters in any mix, where the panic was.
        #[test]
        fn userinfo_of_escapes_and_unicode(userinfo in "[%0-9a-fA-Fé😀:]{0,12}") {
            let url = CameraUrl::new(format!("rtsp://{userinfo}@cam/x"));
            let _ = (url.credentials(), url.credentials_problem(), url.host_port());
        }
    }

    #[test]
    fn passwords_with_spaces_quotes_angles_and_at_signs_are_masked() {
        for (url, shown) in [
            ("http://u:pa ss@host/auth", "http://u:***@host/auth"),
            ("http://u:a\"b@host/", "http://u:***@host/"),
            ("http://u:a@b@host/", "http://u:***@host/"),
            ("rtsp://u:a<x@host/", "rtsp://u:***@host/"),
            ("rtsp://u:a'x>y@host/", "rtsp://u:***@host/"),
            ("rtsp://u:a\tb@host/", "rtsp://u:***@host/"),
            ("rtsp://u:a://b@host/", "rtsp://u:***@host/"),
        ] {
            assert_eq!(CameraUrl::new(url).to_string(), shown, "{url}");
            assert_eq!(
                redact_text(&format!("failed on {url} (retrying)")),
                format!("failed on {shown} (retrying)"),
                "{url}"
            );
        }
        assert!(CameraUrl::new("http://u:a@b@host/")
            .credentials_problem()
            .is_some());
        assert!(CameraUrl::new("http://u:pa ss@host/")
            .credentials_problem()
            .is_some());
    }

    proptest::proptest! {
        /// Any printable password, in a URL alone or inside a sentence, never shows.
        #[test]
        fn any_printable_password_is_masked(
            password in "[ -~\u{a0}-\u{17f}]{4,24}",
            before in "[a-zA-Z ,.:(]{0,12}",
            after in "[a-zA-Z ,.:)]{0,12}",
        ) {
            // A password that also occurs in the visible rest proves nothing. One holding
            // ` scheme://` reads as a second URL, which no parser can tell apart (validate refuses
            // the space); `a://b` is a fixed case above.
            proptest::prop_assume!(!password.contains("://"));
            proptest::prop_assume!(!"rtsp://admin:***@cam.local:554/live".contains(password.as_str()));
            proptest::prop_assume!(!before.contains(password.as_str()) && !after.contains(password.as_str()));
            let url = format!("rtsp://admin:{password}@cam.local:554/live");
            let shown = CameraUrl::new(url.clone()).to_string();
            proptest::prop_assert_eq!(&shown, "rtsp://admin:***@cam.local:554/live");
            let sentence = redact_text(&format!("{before} {url} {after}"));
            proptest::prop_assert!(!sentence.contains(password.as_str()), "{}", sentence);
        }
    }

    #[test]
    fn default_ports_and_ipv6() {
        assert_eq!(
            CameraUrl::new("http://[::1]:8080/x").host_port(),
            Some(("::1".into(), 8080))
        );
        assert_eq!(
            CameraUrl::new("https://cam.example").host_port(),
            Some(("cam.example".into(), 443))
        );
        assert_eq!(CameraUrl::new("cam.example").scheme(), None);
    }
}
