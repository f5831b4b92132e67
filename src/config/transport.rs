//! A stream's `transport: udp | tcp | auto` (how RTSP media travels; `auto`, the default, starts
//! as the template says and follows what the probes learn) and whether an `http(s)://` stream's
//! template is detected from what its server says (no `pipeline:`).

use std::fmt;

/// `transport:` of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StreamTransport {
    /// UDP first, TCP after rtspsrc's UDP timeout, and TCP from the start once learned.
    #[default]
    Auto,
    /// TCP-interleaved only (rtspsrc `protocols=tcp`).
    Tcp,
    /// UDP only (rtspsrc `protocols=udp`).
    Udp,
}

impl StreamTransport {
    /// The value as written in a config file; accepts any case and surrounding spaces.
    pub fn parse(text: &str) -> Result<StreamTransport, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(StreamTransport::Auto),
            "tcp" => Ok(StreamTransport::Tcp),
            "udp" => Ok(StreamTransport::Udp),
            _ => Err(format!("{text:?} is not a transport; use udp, tcp or auto")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StreamTransport::Auto => "auto",
            StreamTransport::Tcp => "tcp",
            StreamTransport::Udp => "udp",
        }
    }
}

impl fmt::Display for StreamTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a stream with this URL scheme has an RTSP transport to choose (`rtsp`, `rtsps`).
pub fn has_transport(scheme: Option<&str>) -> bool {
    matches!(scheme, Some("rtsp" | "rtsps"))
}

/// Whether a stream's template is chosen by asking its server: `http(s)://` without `pipeline:`.
pub fn detects_template(scheme: Option<&str>, pipeline_given: bool) -> bool {
    !pipeline_given && matches!(scheme, Some("http" | "https"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_three_words_in_any_case() {
        assert_eq!(StreamTransport::parse(" TCP "), Ok(StreamTransport::Tcp));
        assert_eq!(StreamTransport::parse("udp"), Ok(StreamTransport::Udp));
        assert_eq!(StreamTransport::parse("Auto"), Ok(StreamTransport::Auto));
        assert!(StreamTransport::parse("rtsp").is_err());
        assert!(detects_template(Some("https"), false));
        assert!(!detects_template(Some("http"), true));
        assert!(!detects_template(Some("rtsp"), false));
        assert!(has_transport(Some("rtsps")) && has_transport(Some("rtsp")));
        assert!(!has_transport(Some("http")) && !has_transport(None));
    }

    proptest! {
        #[test]
        fn parses_exactly_its_own_words(text in "\\PC{0,12}") {
            match StreamTransport::parse(&text) {
                Ok(transport) => prop_assert_eq!(transport.as_str(), text.trim().to_ascii_lowercase()),
                Err(message) => prop_assert!(message.contains("udp, tcp or auto")),
            }
        }

        #[test]
        fn written_words_come_back(transport in prop_oneof![Just(StreamTransport::Auto), Just(StreamTransport::Tcp), Just(StreamTransport::Udp)]) {
            prop_assert_eq!(StreamTransport::parse(&transport.to_string()), Ok(transport));
        }
    }
}
