//! A camera's `tls:` setting (`rtsps://`, `https://`): verify against the system's CAs (the
//! default), pin one certificate by its SHA-256 fingerprint, or accept any certificate.

use std::fmt;

/// How a stream's probe treats the camera's TLS certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CameraTls {
    /// The system's CAs and the URL's host name decide (`tls:` absent, or `verify: true`).
    #[default]
    Verify,
    /// Only the certificate with this fingerprint is accepted, whoever signed it and whatever
    /// names it carries: what pinning a self-signed camera means.
    Pinned(Fingerprint),
    /// Any certificate (`verify: false`): encrypted, not authenticated.
    AcceptAny,
}

/// How `openssl x509 -fingerprint -sha256` (OpenSSL 3) starts its line.
const OPENSSL_PREFIX: &str = "sha256 Fingerprint=";

/// The SHA-256 of a certificate's DER bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FingerprintError {
    #[error("a fingerprint starts with \"sha256:\" (only SHA-256 is supported)")]
    NotSha256,
    #[error("expected 64 hex digits (colons between pairs are optional), found {0}")]
    Length(usize),
    #[error("{0:?} is not a hex digit")]
    NotHex(char),
    #[error("colons go between pairs of hex digits (AB:CD:…)")]
    Colons,
}

impl Fingerprint {
    /// Of a certificate's DER bytes.
    pub fn of_der(der: &[u8]) -> Fingerprint {
        use sha2::Digest;
        Fingerprint(sha2::Sha256::digest(der).into())
    }

    /// `sha256:AB:CD:…`, also without colons and in any case, or the line
    /// `openssl x509 -noout -fingerprint -sha256` prints (`sha256 Fingerprint=AB:CD:…`). Spaces
    /// around it are ignored.
    pub fn parse(text: &str) -> Result<Fingerprint, FingerprintError> {
        let text = text.trim();
        let openssl = text
            .split_at_checked(OPENSSL_PREFIX.len())
            .filter(|(prefix, _)| prefix.eq_ignore_ascii_case(OPENSSL_PREFIX));
        if let Some((_, hex)) = openssl {
            return Fingerprint::parse(&format!("sha256:{hex}"));
        }
        let (prefix, hex) = text.split_at_checked(7).ok_or(FingerprintError::NotSha256)?;
        if !prefix.eq_ignore_ascii_case("sha256:") {
            return Err(FingerprintError::NotSha256);
        }
        let hex = hex.trim_start();
        let digits: String = if hex.contains(':') {
            let pairs: Vec<&str> = hex.split(':').collect();
            if pairs.iter().any(|pair| pair.chars().count() != 2) {
                let found: usize = pairs.iter().map(|pair| pair.chars().count()).sum();
                return Err(if found == 64 {
                    FingerprintError::Colons
                } else {
                    FingerprintError::Length(found)
                });
            }
            pairs.concat()
        } else {
            hex.to_string()
        };
        if let Some(bad) = digits.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(FingerprintError::NotHex(bad));
        }
        if digits.len() != 64 {
            return Err(FingerprintError::Length(digits.len()));
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(digits.as_bytes().chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| FingerprintError::Length(0))?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| FingerprintError::Length(0))?;
        }
        Ok(Fingerprint(bytes))
    }
}

/// `sha256:AB:CD:…`, upper case with colons: ready to paste into `tls: {fingerprint: …}`.
impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        for (index, byte) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HEX: &str =
        "3F:A1:00:7C:9B:DE:45:12:88:0A:FF:EE:01:23:45:67:89:AB:CD:EF:10:32:54:76:98:BA:DC:FE:00:11:22:33";

    #[test]
    fn colons_case_and_prefix_case_are_free() {
        let pinned = Fingerprint::parse(&format!("sha256:{HEX}")).expect("valid");
        assert_eq!(pinned.to_string(), format!("sha256:{HEX}"));
        for written in [
            format!("SHA256:{}", HEX.to_lowercase()),
            format!("sha256:{}", HEX.replace(':', "")),
            format!("  sha256: {}  ", HEX.replace(':', "").to_lowercase()),
            format!("sha256 Fingerprint={HEX}"),
        ] {
            assert_eq!(Fingerprint::parse(&written), Ok(pinned), "{written}");
        }
    }

    #[test]
    fn wrong_ones_say_what_is_wrong() {
        assert_eq!(Fingerprint::parse(HEX), Err(FingerprintError::NotSha256));
        assert_eq!(
            Fingerprint::parse(&format!("sha1:{HEX}")),
            Err(FingerprintError::NotSha256)
        );
        assert_eq!(
            Fingerprint::parse("sha256:AB:CD"),
            Err(FingerprintError::Length(4))
        );
        assert_eq!(
            Fingerprint::parse(&format!("sha256:{}", HEX.replace("3F", "3G"))),
            Err(FingerprintError::NotHex('G'))
        );
        let odd_colons = format!("sha256:{}", HEX.replacen(":", "", 1).replacen("A1", "A1:", 1));
        assert!(Fingerprint::parse(&odd_colons).is_err(), "{odd_colons}");
        assert!(Fingerprint::parse("").is_err());
    }

    #[test]
    fn of_der_is_sha256() {
        // SHA-256 of "abc" (FIPS 180-2).
        assert_eq!(
            Ok(Fingerprint::of_der(b"abc")),
            Fingerprint::parse("sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD")
        );
    }

    proptest! {
        #[test]
        fn every_fingerprint_reads_back_in_every_spelling(bytes in any::<[u8; 32]>(), lower: bool, colons: bool) {
            let fingerprint = Fingerprint(bytes);
            let mut text = fingerprint.to_string();
            if !colons {
                text = text.replace(':', "").replacen("sha256", "sha256:", 1);
            }
            if lower {
                text = text.to_lowercase();
            }
            prop_assert_eq!(Fingerprint::parse(&text), Ok(fingerprint));
        }

        #[test]
        fn any_text_is_parsed_or_refused_without_panicking(text in "\\PC{0,120}") {
            let _ = Fingerprint::parse(&text);
        }

        #[test]
        fn sha256_prefixed_garbage_is_refused(text in "[0-9a-fA-F:]{0,63}") {
            let whole = format!("sha256:{text}");
            let digits = text.chars().filter(|c| *c != ':').count();
            prop_assume!(digits != 64);
            prop_assert!(Fingerprint::parse(&whole).is_err());
        }
    }
}
