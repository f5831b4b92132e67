//! `/account`: a logged-in user's own password and where their pages show times.
//!
//! Changing the password needs the current one, which counts in the login throttle like a login
//! (so a browser left logged in cannot be used to guess it), and ends every other session of the
//! user: whoever else was logged in as them is out. Viewers may do both: it changes nothing of
//! the fleet.

use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use warp::http::{HeaderMap, HeaderValue, StatusCode};
use warp::reply::Response;

use crate::store::accounts::{self, SessionInfo, TimeDisplay};
use crate::web::auth::{self, Principal};
use crate::web::respond::{self, Layout};
use crate::web::{api, WebError, WebState};

/// `GET /account?changed=1`
#[derive(Debug, Default, Deserialize)]
pub struct AccountQuery {
    pub changed: Option<String>,
}

/// `POST /account/password`
#[derive(Debug, Default, Deserialize)]
pub struct PasswordForm {
    pub csrf: Option<String>,
    #[serde(default)]
    pub current: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub password2: String,
}

/// `POST /account/times`
#[derive(Debug, Default, Deserialize)]
pub struct TimesForm {
    pub csrf: Option<String>,
    #[serde(default)]
    pub display: String,
}

#[derive(Serialize)]
struct AccountPage<'a> {
    layout: Layout,
    user: &'a str,
    role: &'static str,
    timezone: String,
    browser_times: bool,
    min_password: usize,
    notice: Option<&'static str>,
    error: Option<String>,
}

fn account_page(
    state: &WebState,
    principal: &Principal,
    info: &SessionInfo,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
) -> Response {
    let data = AccountPage {
        layout: respond::layout(state, Some(principal), "Your account", "account"),
        user: &info.user_name,
        role: info.role.as_str(),
        timezone: state.config().timezone_name.clone(),
        browser_times: info.time_display == TimeDisplay::Browser,
        min_password: accounts::MIN_PASSWORD_CHARS,
        notice,
        error,
    };
    respond::render(state, "account", status, &data)
}

/// The session behind a request; `None` for API tokens, which belong to no user.
fn session(principal: &Principal) -> Option<(SessionInfo, String)> {
    match principal {
        Principal::Session { info, secret } => Some((info.clone(), secret.clone())),
        Principal::Token { .. } => None,
    }
}

/// Tokens are scripts: the API's JSON error, never a form to fill in.
fn token_refused() -> Response {
    api::failure(WebError::Forbidden(
        "API tokens belong to no user: log in with a browser to change a password".into(),
    ))
}

pub async fn account_form(principal: Principal, state: Arc<WebState>, query: AccountQuery) -> Response {
    let Some((info, _)) = session(&principal) else {
        return token_refused();
    };
    let notice = match query.changed.as_deref() {
        Some("password") => Some("Your password was changed; your other sessions were ended."),
        Some("times") => Some("Time display saved."),
        _ => None,
    };
    account_page(&state, &principal, &info, StatusCode::OK, notice, None)
}

pub async fn change_password(
    principal: Principal,
    state: Arc<WebState>,
    headers: HeaderMap,
    remote: Option<SocketAddr>,
    form: PasswordForm,
) -> Response {
    let Some((info, secret)) = session(&principal) else {
        return token_refused();
    };
    if let Err(error) = auth::check_csrf(&principal, &headers, form.csrf.as_deref()) {
        return respond::failure_page(&state, Some(&principal), error);
    }
    let refuse =
        |status, message: String| account_page(&state, &principal, &info, status, None, Some(message));
    let client = auth::login_client(&state, remote, &headers);
    let now_ms = state.now_ms();
    if let Some(wait_ms) = state.throttle().blocked(client, &info.user_name, now_ms) {
        let mut response = refuse(StatusCode::TOO_MANY_REQUESTS, auth::wait_message(wait_ms));
        if let Ok(value) = HeaderValue::from_str(&auth::retry_after_s(wait_ms).to_string()) {
            response.headers_mut().insert("retry-after", value);
        }
        return response;
    }
    match auth::verify_password(&state, info.user_name.clone(), form.current).await {
        // The id too: the name could have been removed and given to someone else meanwhile.
        Ok(Some(user_id)) if user_id == info.user_id => {
            state.throttle().record_success(client, &info.user_name);
        }
        Ok(_) => {
            state.throttle().record_failure(client, &info.user_name, now_ms);
            tracing::warn!(client = ?client, user = %info.user_name, "wrong current password on a password change");
            return refuse(StatusCode::UNAUTHORIZED, "Your current password is wrong.".into());
        }
        Err(error) => return respond::failure_page(&state, Some(&principal), error),
    }
    if form.password != form.password2 {
        return refuse(StatusCode::BAD_REQUEST, "The two new passwords differ.".into());
    }
    let user_id = info.user_id;
    let password = form.password;
    let changed = state
        .accounts(move |accounts| Ok(accounts.change_password_keeping(user_id, &password, &secret, now_ms)?))
        .await;
    match changed {
        Ok(()) => {
            tracing::info!(user = %info.user_name, "password changed in the browser; other sessions ended");
            respond::see_other("/account?changed=password")
        }
        Err(error) if error.status().is_client_error() => refuse(error.status(), error.public_message()),
        Err(error) => respond::failure_page(&state, Some(&principal), error),
    }
}

pub async fn set_times(
    principal: Principal,
    state: Arc<WebState>,
    headers: HeaderMap,
    form: TimesForm,
) -> Response {
    let Some((info, _)) = session(&principal) else {
        return token_refused();
    };
    if let Err(error) = auth::check_csrf(&principal, &headers, form.csrf.as_deref()) {
        return respond::failure_page(&state, Some(&principal), error);
    }
    let display = TimeDisplay::parse(&form.display);
    let user_id = info.user_id;
    match state
        .accounts(move |accounts| Ok(accounts.set_time_display(user_id, display)?))
        .await
    {
        Ok(()) => respond::see_other("/account?changed=times"),
        Err(error) => respond::failure_page(&state, Some(&principal), error),
    }
}
