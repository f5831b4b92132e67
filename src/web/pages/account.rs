//! Logging in and out, and the first-run setup link that creates the administrator.
//!
//! Before login there is no session to hold a CSRF token, so the login and setup forms use a
//! double-submit cookie ([`auth::login_csrf`]); failed logins slow down the client that fails
//! ([`auth::throttle`]), never the account.

use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use warp::http::{HeaderMap, HeaderValue, StatusCode};
use warp::reply::Response;

use crate::store::accounts::{self, AccountError};
use crate::web::auth::{self, csrf, Principal};
use crate::web::respond::{self, Layout};
use crate::web::{WebError, WebState};

/// `GET /login?next=`
#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    /// Where to go after logging in (same-site paths only).
    pub next: Option<String>,
}

/// `POST /login`
#[derive(Debug, Default, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub password: String,
    pub next: Option<String>,
    pub csrf: Option<String>,
}

/// `GET /setup?token=`
#[derive(Debug, Default, Deserialize)]
pub struct SetupQuery {
    #[serde(default)]
    pub token: String,
}

/// `POST /setup`
#[derive(Debug, Default, Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub password: String,
    pub password2: Option<String>,
    pub csrf: Option<String>,
}

/// `POST /logout`
#[derive(Debug, Default, Deserialize)]
pub struct LogoutForm {
    pub csrf: Option<String>,
}

/// Only same-site paths are followed after login (no `//host` or `https://…`). Browsers drop TAB,
/// CR and LF from URLs, so `/\t/evil.example` would become `//evil.example`: any whitespace or
/// control character refuses the path.
pub(crate) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(next)
            if next.starts_with('/')
                && !next.starts_with("//")
                && !next.contains('\\')
                && !next.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            next.to_string()
        }
        _ => "/".to_string(),
    }
}

#[derive(Serialize)]
struct LoginPage<'a> {
    layout: Layout,
    csrf_field: &'a str,
    next: &'a str,
    user: &'a str,
    error: Option<String>,
    setup_pending: bool,
}

/// The login form. `login_cookie` is the browser's pre-login CSRF cookie, reused when given.
fn login_page(
    state: &WebState,
    status: StatusCode,
    login_cookie: Option<&str>,
    next: &str,
    user: &str,
    error: Option<String>,
) -> Response {
    let (token, fresh) = auth::login_csrf(login_cookie);
    let data = LoginPage {
        layout: respond::layout(state, None, "Log in", "login"),
        csrf_field: &token,
        next,
        user,
        error,
        setup_pending: state.setup_token().is_some(),
    };
    let mut response = respond::render(state, "login", status, &data);
    if fresh {
        auth::set_login_csrf(&mut response, state, &token);
    }
    response
}

pub async fn login_form(state: Arc<WebState>, query: LoginQuery) -> Response {
    let next = safe_next(query.next.as_deref());
    login_page(&state, StatusCode::OK, None, &next, "", None)
}

pub async fn login(
    state: Arc<WebState>,
    headers: HeaderMap,
    remote: Option<SocketAddr>,
    login_cookie: Option<String>,
    form: LoginForm,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let user = form.user.trim().to_string();
    let password = form.password;
    if !auth::check_login_csrf(&headers, login_cookie.as_deref(), form.csrf.as_deref()) {
        let message = csrf::forbidden().public_message();
        return login_page(&state, StatusCode::FORBIDDEN, None, &next, &user, Some(message));
    }
    let client = auth::login_client(&state, remote, &headers);
    let now_ms = state.now_ms();
    if let Some(wait_ms) = state.throttle().blocked(client, &user, now_ms) {
        tracing::warn!(client = ?client, "login refused: too many failed attempts from this client");
        let mut response = login_page(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            login_cookie.as_deref(),
            &next,
            &user,
            Some(auth::wait_message(wait_ms)),
        );
        if let Ok(value) = HeaderValue::from_str(&auth::retry_after_s(wait_ms).to_string()) {
            response.headers_mut().insert("retry-after", value);
        }
        return response;
    }
    let checked = match auth::verify_password(&state, user.clone(), password).await {
        Ok(Some(user_id)) => state
            .accounts(move |accounts| Ok(accounts.create_session(user_id, now_ms)?))
            .await
            .map(Some),
        Ok(None) => Ok(None),
        Err(error) => Err(error),
    };
    match checked {
        Ok(Some(secret)) => {
            state.throttle().record_success(client, &user);
            tracing::info!(user = %user, "logged in");
            let mut response = respond::see_other(&next);
            auth::set_session(&mut response, &state, &secret);
            response
        }
        Ok(None) => {
            state.throttle().record_failure(client, &user, now_ms);
            tracing::warn!(client = ?client, "failed login");
            let message = "Wrong user name or password.".to_string();
            login_page(
                &state,
                StatusCode::UNAUTHORIZED,
                login_cookie.as_deref(),
                &next,
                &user,
                Some(message),
            )
        }
        Err(error) => respond::failure_page(&state, None, error),
    }
}

pub async fn logout(
    principal: Principal,
    state: Arc<WebState>,
    headers: HeaderMap,
    form: LogoutForm,
) -> Response {
    if let Err(error) = auth::check_csrf(&principal, &headers, form.csrf.as_deref()) {
        return respond::failure_page(&state, Some(&principal), error);
    }
    if let Principal::Session { secret, .. } = principal {
        if let Err(error) = state
            .accounts(move |accounts| Ok(accounts.delete_session(&secret)?))
            .await
        {
            return respond::failure_page(&state, None, error);
        }
    }
    let mut response = respond::see_other("/login");
    auth::clear_session(&mut response, &state);
    response
}

#[derive(Serialize)]
struct SetupPage<'a> {
    layout: Layout,
    csrf_field: &'a str,
    token: &'a str,
    user: &'a str,
    error: Option<String>,
    min_password: usize,
}

fn setup_page(
    state: &WebState,
    status: StatusCode,
    login_cookie: Option<&str>,
    token: &str,
    user: &str,
    error: Option<String>,
) -> Response {
    let (csrf_value, fresh) = auth::login_csrf(login_cookie);
    let data = SetupPage {
        layout: respond::layout(state, None, "Create the administrator", "login"),
        csrf_field: &csrf_value,
        token,
        user,
        error,
        min_password: accounts::MIN_PASSWORD_CHARS,
    };
    let mut response = respond::render(state, "setup", status, &data);
    if fresh {
        auth::set_login_csrf(&mut response, state, &csrf_value);
    }
    response
}

pub async fn setup_form(state: Arc<WebState>, query: SetupQuery) -> Response {
    if !state.setup_token_matches(&query.token) {
        return respond::error_page(
            &state,
            None,
            StatusCode::NOT_FOUND,
            "This setup link is not valid (it works once, and only while no user exists). Log in instead.",
        );
    }
    setup_page(&state, StatusCode::OK, None, &query.token, "admin", None)
}

pub async fn setup(
    state: Arc<WebState>,
    headers: HeaderMap,
    login_cookie: Option<String>,
    form: SetupForm,
) -> Response {
    let SetupForm {
        token,
        user,
        password,
        password2,
        csrf: submitted_csrf,
    } = form;
    let user = user.trim().to_string();
    let csrf_ok = auth::check_login_csrf(&headers, login_cookie.as_deref(), submitted_csrf.as_deref());
    if !state.setup_token_matches(&token) {
        return respond::error_page(
            &state,
            None,
            StatusCode::NOT_FOUND,
            "This setup link is not valid any more. Log in instead.",
        );
    }
    if !csrf_ok {
        let message = csrf::forbidden().public_message();
        return setup_page(&state, StatusCode::FORBIDDEN, None, &token, &user, Some(message));
    }
    if password2.as_deref() != Some(password.as_str()) {
        let message = "The two passwords differ.".to_string();
        return setup_page(
            &state,
            StatusCode::BAD_REQUEST,
            login_cookie.as_deref(),
            &token,
            &user,
            Some(message),
        );
    }
    let now_ms = state.now_ms();
    let name = user.clone();
    let created = state
        .accounts(move |accounts| {
            Ok(match accounts.add_first_user(&name, &password, now_ms)? {
                Some(user_id) => Some(accounts.create_session(user_id, now_ms)?),
                None => None,
            })
        })
        .await;
    match created {
        Ok(Some(secret)) => {
            state.take_setup_token(&token);
            tracing::info!(user = %user, "first administrator created through the setup link");
            let mut response = respond::see_other("/");
            auth::set_session(&mut response, &state, &secret);
            response
        }
        Ok(None) => {
            state.take_setup_token(&token);
            respond::error_page(
                &state,
                None,
                StatusCode::CONFLICT,
                "A user already exists. Log in instead.",
            )
        }
        Err(WebError::Accounts(error))
            if !matches!(error, AccountError::Sqlite(_) | AccountError::Store(_)) =>
        {
            setup_page(
                &state,
                StatusCode::BAD_REQUEST,
                login_cookie.as_deref(),
                &token,
                &user,
                Some(error.to_string()),
            )
        }
        Err(error) => respond::failure_page(&state, None, error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(safe_next(Some("/streams/a")), "/streams/a");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        // `next=/%09/evil.example`: the browser strips the TAB and goes to //evil.example.
        assert_eq!(safe_next(Some("/\t/evil.example")), "/");
        assert_eq!(safe_next(Some("/\n/evil.example")), "/");
        assert_eq!(safe_next(Some("/ /evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }

    proptest::proptest! {
        /// Whatever `next` holds, the target is a same-site path that a browser cannot turn into
        /// another host by dropping whitespace.
        #[test]
        fn next_never_leaves_the_site(next in "\\PC{0,40}|[/\\\\\t\n\r :a-z.]{0,12}") {
            let target = safe_next(Some(&next));
            let browser_sees: String = target.chars().filter(|c| !matches!(c, '\t' | '\n' | '\r')).collect();
            proptest::prop_assert!(browser_sees.starts_with('/'));
            proptest::prop_assert!(!browser_sees.starts_with("//") && !browser_sees.starts_with("/\\"));
        }
    }
}
