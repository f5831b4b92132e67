//! Cross-site request forgery defences for every state-changing (POST) request made with a
//! cookie:
//!
//! - a synchronizer token: each session has a random `csrf_token`, put in every form as a hidden
//!   `csrf` field and compared on submission;
//! - before login (login and setup forms), a double-submit token: a random value in a
//!   `SameSite=Strict` cookie that must match the form field;
//! - an `Origin` check: a browser that sends `Origin` must name this very host.
//!
//! Requests authenticated by an API token carry no ambient credential and need none of this.

use warp::http::HeaderMap;

use super::secrets_match;
use crate::web::WebError;

/// Name of the hidden form field carrying the token.
pub const FIELD: &str = "csrf";
/// Cookie carrying the pre-login double-submit token.
pub const LOGIN_COOKIE: &str = "sp_login_csrf";

pub fn forbidden() -> WebError {
    WebError::Forbidden(
        "the form's security token is missing or out of date; reload the page and try again".into(),
    )
}

/// Checks a submitted token against the expected one.
pub fn check_token(expected: &str, submitted: Option<&str>) -> Result<(), WebError> {
    match submitted {
        Some(submitted) if !expected.is_empty() && secrets_match(expected, submitted) => Ok(()),
        _ => Err(forbidden()),
    }
}

/// Refuses a request whose `Origin` (when the browser sends one) is not this server.
pub fn check_origin(headers: &HeaderMap) -> Result<(), WebError> {
    let Some(origin) = headers.get("origin") else {
        return Ok(());
    };
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("");
    let origin = origin.to_str().unwrap_or("");
    // "null" comes from sandboxed frames and privacy modes: never a page of ours.
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .unwrap_or("");
    if !host.is_empty() && origin_host.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err(WebError::Forbidden(
            "cross-site request refused: the form was not sent from this server's pages".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_must_match_exactly() {
        assert!(check_token("abc", Some("abc")).is_ok());
        assert!(check_token("abc", Some("abd")).is_err());
        assert!(check_token("abc", None).is_err());
        assert!(check_token("", Some("")).is_err());
    }

    #[test]
    fn origin_must_be_this_host_when_present() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "127.0.0.1:8000".parse().expect("header"));
        assert!(check_origin(&headers).is_ok());
        headers.insert("origin", "http://127.0.0.1:8000".parse().expect("header"));
        assert!(check_origin(&headers).is_ok());
        headers.insert("origin", "http://evil.example".parse().expect("header"));
        assert!(check_origin(&headers).is_err());
        headers.insert("origin", "null".parse().expect("header"));
        assert!(check_origin(&headers).is_err());
    }
}
