//! Who is asking, and may they: the [`Principal`] behind a request (a login session or an API
//! token), what it may do ([`Access`], token scopes and the reveal confirmation), the session and
//! pre-login cookies, CSRF defences ([`csrf`]) and login throttling ([`throttle`]).
//!
//! Pages and the API depend on this module, never the reverse: it knows nothing of how an
//! answer looks. Passwords, sessions and tokens are stored by [`crate::store::accounts`].

pub mod csrf;
pub mod throttle;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use subtle::ConstantTimeEq;
use warp::http::{HeaderMap, HeaderValue};
use warp::reply::Response;
use warp::Filter;

use super::{WebError, WebState};
use crate::store::accounts::{self, Role, SessionInfo, TimeDisplay, TokenScope};

/// The session cookie.
pub const SESSION_COOKIE: &str = "sp_session";
/// Lifetime of the pre-login CSRF cookie.
const LOGIN_CSRF_MAX_AGE_S: i64 = 3600;
/// How long a password confirmation lets a session see camera passwords. Short: it guards
/// against a browser left logged in, not against its user.
pub const REVEAL_CONFIRM_MS: i64 = 5 * 60_000;

/// Who is asking.
#[derive(Debug, Clone)]
pub enum Principal {
    /// A browser with a login session.
    Session { info: SessionInfo, secret: String },
    /// A script with an API token (by its name).
    Token { name: String, scope: TokenScope },
}

/// What a request needs beyond being authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Pages, the API and metrics: any session or token.
    Read,
    /// The config editor (reading it, masked, or changing anything), users: an admin's
    /// session or an `admin` token. Camera passwords need more: [`may_reveal`].
    Admin,
}

impl Principal {
    /// The name shown in the page header.
    pub fn display_name(&self) -> String {
        match self {
            Principal::Session { info, .. } => info.user_name.clone(),
            Principal::Token { name, .. } => format!("token {name}"),
        }
    }

    /// An admin session or an `admin` token: may change things.
    pub fn is_admin(&self) -> bool {
        authorize(self, Access::Admin).is_ok()
    }

    /// Where this principal's pages show times (tokens: the config's timezone).
    pub fn time_display(&self) -> TimeDisplay {
        match self {
            Principal::Session { info, .. } => info.time_display,
            Principal::Token { .. } => TimeDisplay::Server,
        }
    }

    /// The session's CSRF token; API tokens need none.
    pub fn csrf_token(&self) -> Option<&str> {
        match self {
            Principal::Session { info, .. } => Some(&info.csrf_token),
            Principal::Token { .. } => None,
        }
    }
}

/// What a request offers as proof of identity, before it is checked.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// `Authorization: Bearer …`
    pub bearer: Option<String>,
    /// The [`SESSION_COOKIE`].
    pub session: Option<String>,
}

/// Extracts the [`Credentials`] of a request; never rejects.
pub fn credentials() -> impl Filter<Extract = (Credentials,), Error = Infallible> + Clone {
    warp::header::headers_cloned()
        .and(warp::cookie::optional::<String>(SESSION_COOKIE))
        .map(|headers: HeaderMap, session: Option<String>| Credentials {
            bearer: bearer(&headers),
            session,
        })
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// The principal for these credentials: an API token wins over a cookie; `Ok(None)` when
/// neither is present or valid.
pub async fn authenticate(
    state: &Arc<WebState>,
    credentials: Credentials,
) -> Result<Option<Principal>, WebError> {
    let now_ms = state.now_ms();
    if let Some(token) = credentials.bearer {
        let checked = state
            .accounts(move |accounts| Ok(accounts.check_token(&token, now_ms)?))
            .await?;
        return Ok(checked.map(|token| Principal::Token {
            name: token.name,
            scope: token.scope,
        }));
    }
    let Some(secret) = credentials.session else {
        return Ok(None);
    };
    let limits = state.session_limits();
    let lookup = secret.clone();
    let info = state
        .accounts(move |accounts| Ok(accounts.session(&lookup, now_ms, limits)?))
        .await?;
    Ok(info.map(|info| Principal::Session { info, secret }))
}

/// May `principal` do what `access` covers? A refusal says what the token lacks.
pub fn authorize(principal: &Principal, access: Access) -> Result<(), WebError> {
    match (principal, access) {
        (
            Principal::Token {
                name,
                scope: TokenScope::Read,
            },
            Access::Admin,
        ) => Err(WebError::Forbidden(format!(
            "API token {name:?} has scope read: it may read the API, pages and metrics, but not the \
             configuration nor change anything. Create a token with `streampulse token create NAME \
             --scope admin` for that"
        ))),
        (Principal::Session { info, .. }, Access::Admin) if info.role == Role::Viewer => {
            Err(WebError::Forbidden(format!(
                "{} is a viewer: viewers see the dashboard, streams and the API, but cannot open \
                 the configuration, see camera passwords or change anything. Ask an administrator",
                info.user_name
            )))
        }
        _ => Ok(()),
    }
}

/// Whether `principal` may see camera passwords now: only a session whose password was
/// confirmed within [`REVEAL_CONFIRM_MS`].
pub fn may_reveal(principal: &Principal, now_ms: i64) -> Result<(), RevealRefused> {
    match principal {
        Principal::Token { .. } => Err(RevealRefused::Token),
        Principal::Session { info, .. } => match info.confirmed_ms {
            Some(at) if (0..REVEAL_CONFIRM_MS).contains(&now_ms.saturating_sub(at)) => Ok(()),
            _ => Err(RevealRefused::NeedsConfirmation),
        },
    }
}

/// Why camera passwords are not shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevealRefused {
    /// API tokens never see them, whatever their scope.
    Token,
    /// A session must confirm its password first.
    NeedsConfirmation,
}

impl RevealRefused {
    pub fn error(self) -> WebError {
        match self {
            RevealRefused::Token => WebError::Forbidden(
                "API tokens can never reveal camera passwords; log in with a browser and confirm \
                 your password"
                    .into(),
            ),
            RevealRefused::NeedsConfirmation => {
                WebError::Forbidden("confirm your password to show camera passwords".into())
            }
        }
    }
}

/// The client a password check is counted against by the login throttle (see
/// [`throttle::client_address`]: `X-Forwarded-For` only from `web.trusted_proxies`).
pub fn login_client(state: &WebState, remote: Option<SocketAddr>, headers: &HeaderMap) -> Option<IpAddr> {
    throttle::client_address(
        remote.map(|addr| addr.ip()),
        headers,
        &state.config().web.trusted_proxies,
    )
}

/// What a throttled client is told.
pub fn wait_message(wait_ms: i64) -> String {
    let seconds = retry_after_s(wait_ms);
    let wait = if seconds < 120 {
        format!("{seconds} s")
    } else {
        format!("{} min", (seconds + 59) / 60)
    };
    format!("Too many failed password attempts from your address. Try again in {wait}.")
}

/// `Retry-After` for a wait, in whole seconds (at least 1).
pub fn retry_after_s(wait_ms: i64) -> i64 {
    ((wait_ms + 999) / 1000).max(1)
}

/// The user's id when `password` is theirs. Argon2 runs off the async workers and outside the
/// accounts connection's lock, so one check does not stall every other request's session lookup.
pub async fn verify_password(
    state: &Arc<WebState>,
    user: String,
    password: String,
) -> Result<Option<i64>, WebError> {
    let check = state
        .accounts(move |accounts| Ok(accounts.password_hash_of(&user)?))
        .await?;
    match tokio::task::spawn_blocking(move || check.verify(&password)).await {
        Ok(verified) => Ok(verified?),
        Err(error) => Err(WebError::Internal(format!("password check failed: {error}"))),
    }
}

/// Compares two secrets in time independent of where they differ (their lengths are not
/// secret: every token of one kind has the same length).
pub fn secrets_match(expected: &str, offered: &str) -> bool {
    expected.as_bytes().ct_eq(offered.as_bytes()).into()
}

/// Checks the origin and the form's CSRF token of a POST by a logged-in browser.
pub fn check_csrf(
    principal: &Principal,
    headers: &HeaderMap,
    submitted: Option<&str>,
) -> Result<(), WebError> {
    match principal.csrf_token() {
        Some(expected) => {
            csrf::check_origin(headers)?;
            csrf::check_token(expected, submitted)
        }
        // API tokens carry no ambient authority for a forger to borrow.
        None => Ok(()),
    }
}

/// Checks a login or setup form against its pre-login double-submit cookie.
pub fn check_login_csrf(headers: &HeaderMap, cookie: Option<&str>, submitted: Option<&str>) -> bool {
    csrf::check_origin(headers).is_ok() && csrf::check_token(cookie.unwrap_or(""), submitted).is_ok()
}

/// The pre-login CSRF value for a login or setup page: the browser's cookie when it holds a
/// well-formed one, else a new value (`true`: it must be set with [`set_login_csrf`]).
pub fn login_csrf(cookie: Option<&str>) -> (String, bool) {
    match cookie {
        Some(value) if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) => {
            (value.to_string(), false)
        }
        _ => (accounts::random_hex(32), true),
    }
}

/// `Set-Cookie` text: always HttpOnly and SameSite=Strict; Secure behind TLS.
fn cookie_text(state: &WebState, name: &str, value: &str, max_age_s: i64) -> String {
    let secure = if state.config().web.behind_tls || state.over_tls() {
        "; Secure"
    } else {
        ""
    };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}")
}

pub(crate) fn add_cookie(response: &mut Response, state: &WebState, name: &str, value: &str, max_age_s: i64) {
    if let Ok(value) = HeaderValue::from_str(&cookie_text(state, name, value, max_age_s)) {
        response.headers_mut().append("set-cookie", value);
    }
}

/// Starts a browser session: the session cookie (lasting as long as a session may), and the
/// pre-login CSRF cookie cleared.
pub fn set_session(response: &mut Response, state: &WebState, secret: &str) {
    let max_age_s = state.session_limits().max_ms / 1000;
    add_cookie(response, state, SESSION_COOKIE, secret, max_age_s);
    add_cookie(response, state, csrf::LOGIN_COOKIE, "", 0);
}

/// Ends the browser's session cookie.
pub fn clear_session(response: &mut Response, state: &WebState) {
    add_cookie(response, state, SESSION_COOKIE, "", 0);
}

/// Sets a fresh pre-login CSRF cookie (see [`login_csrf`]).
pub fn set_login_csrf(response: &mut Response, state: &WebState, value: &str) {
    add_cookie(response, state, csrf::LOGIN_COOKIE, value, LOGIN_CSRF_MAX_AGE_S);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_cookies_and_bearer_tokens() {
        let both = warp::test::request()
            .header("cookie", "a=1; sp_session=abc; b=2")
            .header("authorization", "Bearer sp_123")
            .filter(&credentials())
            .await
            .expect("never rejects");
        assert_eq!(both.session.as_deref(), Some("abc"));
        assert_eq!(both.bearer.as_deref(), Some("sp_123"));
        let none = warp::test::request()
            .header("cookie", "c=1")
            .header("authorization", "Basic dTpw")
            .filter(&credentials())
            .await
            .expect("never rejects");
        assert_eq!((none.session, none.bearer), (None, None));
    }

    #[test]
    fn secrets_match_only_when_equal() {
        assert!(secrets_match("abc", "abc"));
        assert!(!secrets_match("abc", "abd"));
        assert!(!secrets_match("abc", "ab"));
        assert!(secrets_match("", ""));
    }

    #[test]
    fn a_malformed_login_cookie_is_replaced() {
        let good = "a".repeat(64);
        assert_eq!(login_csrf(Some(&good)), (good.clone(), false));
        let (fresh, new) = login_csrf(Some("short"));
        assert!(new && fresh.len() == 64);
        assert!(login_csrf(None).1);
    }
}
