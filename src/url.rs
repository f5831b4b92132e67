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
        let (userinfo, _, _) = split_authority(rest);
        let userinfo = userinfo?;
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

/// Masks every `scheme://user:password@` in free text, such as a GStreamer error message that
/// quotes the location it failed on.
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (before, after_sep) = rest.split_at(pos + 3);
        out.push_str(before);
        // The URL ends at whitespace or a quote; its userinfo ends at the first '@' in it.
        let url_end = after_sep
            .find(|c: char| c.is_whitespace() || "\"'<>".contains(c))
            .unwrap_or(after_sep.len());
        let url = &after_sep[..url_end];
        match url.find('@') {
            Some(at) => {
                let userinfo = &url[..at];
                match userinfo.split_once(':') {
                    Some((user, _)) => {
                        out.push_str(user);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&url[at..]);
            }
            None => out.push_str(url),
        }
        rest = &after_sep[url_end..];
    }
    out.push_str(rest);
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
