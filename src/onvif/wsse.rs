//! WS-Security UsernameToken with a password digest, the authentication every ONVIF device
//! accepts: `PasswordDigest = Base64(SHA1(nonce + created + password))`. The password itself never
//! goes on the wire.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use sha1::{Digest, Sha1};

const SECURITY_NS: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
const UTILITY_NS: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
pub const PASSWORD_DIGEST_TYPE: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest";
const BASE64_BINARY: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary";

/// Base64(SHA1(nonce + created + password)), `nonce` raw (not Base64).
pub fn password_digest(nonce: &[u8], created: &str, password: &str) -> String {
    let mut hasher = Sha1::new();
    hasher.update(nonce);
    hasher.update(created.as_bytes());
    hasher.update(password.as_bytes());
    BASE64.encode(hasher.finalize())
}

/// Checks a received token against the password (the simulator's side). `nonce_base64` as sent.
pub fn digest_matches(nonce_base64: &str, created: &str, password: &str, digest: &str) -> bool {
    let Ok(nonce) = BASE64.decode(nonce_base64.trim()) else {
        return false;
    };
    let expected = password_digest(&nonce, created.trim(), password);
    subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), digest.trim().as_bytes()).into()
}

/// The `<wsse:Security>` header for `user`, created at `created` (RFC 3339 UTC, best in the
/// device's own time: devices refuse tokens too far from their clock).
pub fn security_header(user: &str, password: &str, created: &str) -> String {
    let nonce: [u8; 16] = rand::random();
    let digest = password_digest(&nonce, created, password);
    format!(
        concat!(
            r#"<wsse:Security s:mustUnderstand="1" xmlns:wsse="{security}" xmlns:wsu="{utility}">"#,
            "<wsse:UsernameToken><wsse:Username>{user}</wsse:Username>",
            r#"<wsse:Password Type="{digest_type}">{digest}</wsse:Password>"#,
            r#"<wsse:Nonce EncodingType="{base64}">{nonce}</wsse:Nonce>"#,
            "<wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security>"
        ),
        security = SECURITY_NS,
        utility = UTILITY_NS,
        user = super::xml::escape(user),
        digest_type = PASSWORD_DIGEST_TYPE,
        digest = digest,
        base64 = BASE64_BINARY,
        nonce = BASE64.encode(nonce),
        created = super::xml::escape(created),
    )
}

/// A received `<wsse:UsernameToken>`, for the device's side (the simulator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsernameToken {
    pub username: String,
    pub password_digest: String,
    pub nonce_base64: String,
    pub created: String,
}

/// The UsernameToken in a request's header, if any and if it carries a digest.
pub fn username_token(envelope: &super::xml::Element) -> Option<UsernameToken> {
    let token = envelope.child("Header")?.find("UsernameToken")?;
    let password = token.child("Password")?;
    if password
        .attribute("Type")
        .is_some_and(|t| t != PASSWORD_DIGEST_TYPE)
    {
        return None;
    }
    Some(UsernameToken {
        username: token.child("Username")?.text.trim().to_string(),
        password_digest: password.text.trim().to_string(),
        nonce_base64: token.child("Nonce")?.text.trim().to_string(),
        created: token.child("Created")?.text.trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_the_onvif_programmers_guide_example() {
        // ONVIF Application Programmer's Guide, 6.1.1.3.
        let nonce = BASE64.decode("LKqI6G/AikKCQrN0zqZFlg==").unwrap();
        assert_eq!(
            password_digest(&nonce, "2010-09-16T07:50:45Z", "userpassword"),
            "tuOSpGlFlIXsozq4HFNeeGeFLEI="
        );
        assert!(digest_matches(
            "LKqI6G/AikKCQrN0zqZFlg==",
            "2010-09-16T07:50:45Z",
            "userpassword",
            "tuOSpGlFlIXsozq4HFNeeGeFLEI="
        ));
        assert!(!digest_matches(
            "LKqI6G/AikKCQrN0zqZFlg==",
            "2010-09-16T07:50:45Z",
            "wrong",
            "tuOSpGlFlIXsozq4HFNeeGeFLEI="
        ));
    }

    #[test]
    fn header_never_carries_the_password() {
        let header = security_header("admin", "s3cret-pass", "2026-01-01T00:00:00Z");
        assert!(!header.contains("s3cret-pass"));
        assert!(header.contains("<wsse:Username>admin</wsse:Username>"));
        let envelope = super::super::soap::envelope("<x/>", Some(&header));
        let root = super::super::xml::parse(&envelope).unwrap();
        let token = username_token(&root).unwrap();
        assert_eq!(token.username, "admin");
        assert!(digest_matches(
            &token.nonce_base64,
            &token.created,
            "s3cret-pass",
            &token.password_digest
        ));
        assert!(!digest_matches(
            &token.nonce_base64,
            &token.created,
            "other",
            &token.password_digest
        ));
    }
}
