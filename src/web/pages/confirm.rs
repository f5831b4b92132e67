//! "Confirm your password to show camera passwords": the step between a login session and the
//! editor's revealed view. A right password marks the session confirmed for
//! [`auth::REVEAL_CONFIRM_MS`] ([`auth::may_reveal`]); a wrong one counts in the login throttle,
//! so the form cannot be used to guess the password of a browser left logged in. API tokens never
//! get here: they cannot reveal at all.

use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use warp::http::{HeaderMap, HeaderValue, StatusCode};
use warp::reply::Response;

use super::account::safe_next;
use crate::web::auth::{self, Principal, RevealRefused};
use crate::web::respond::{self, Layout};
use crate::web::{api, links, WebState};

/// Where the confirmation leads when the link names nothing.
const DEFAULT_NEXT: &str = "/config?reveal=1";

/// `GET /config/confirm?next=`
#[derive(Debug, Default, Deserialize)]
pub struct ConfirmQuery {
    /// Where to go once confirmed (same-site paths only).
    pub next: Option<String>,
}

/// `POST /config/confirm`
#[derive(Debug, Default, Deserialize)]
pub struct ConfirmForm {
    pub csrf: Option<String>,
    #[serde(default)]
    pub password: String,
    pub next: Option<String>,
}

/// The confirm page's address, coming back to `next` afterwards.
pub fn link(next: &str) -> String {
    format!("/config/confirm?next={}", links::encode(next))
}

fn target(next: Option<&str>) -> String {
    match next {
        None | Some("") => DEFAULT_NEXT.to_string(),
        Some(next) => safe_next(Some(next)),
    }
}

#[derive(Serialize)]
struct ConfirmPage<'a> {
    layout: Layout,
    user: &'a str,
    next: &'a str,
    minutes: i64,
    error: Option<String>,
}

fn confirm_page(
    state: &WebState,
    principal: &Principal,
    status: StatusCode,
    next: &str,
    error: Option<String>,
) -> Response {
    let user = match principal {
        Principal::Session { info, .. } => info.user_name.as_str(),
        Principal::Token { .. } => "",
    };
    let data = ConfirmPage {
        layout: respond::layout(state, Some(principal), "Confirm your password", "config"),
        user,
        next,
        minutes: auth::REVEAL_CONFIRM_MS / 60_000,
        error,
    };
    respond::render(state, "confirm", status, &data)
}

/// Tokens are scripts: they get the API's JSON error, never a form to fill in.
fn refuse_token() -> Response {
    api::failure(RevealRefused::Token.error())
}

pub async fn confirm_form(principal: Principal, state: Arc<WebState>, query: ConfirmQuery) -> Response {
    if matches!(principal, Principal::Token { .. }) {
        return refuse_token();
    }
    let next = target(query.next.as_deref());
    confirm_page(&state, &principal, StatusCode::OK, &next, None)
}

pub async fn confirm(
    principal: Principal,
    state: Arc<WebState>,
    headers: HeaderMap,
    remote: Option<SocketAddr>,
    form: ConfirmForm,
) -> Response {
    let (info, secret) = match &principal {
        Principal::Session { info, secret } => (info.clone(), secret.clone()),
        Principal::Token { .. } => return refuse_token(),
    };
    if let Err(error) = auth::check_csrf(&principal, &headers, form.csrf.as_deref()) {
        return respond::failure_page(&state, Some(&principal), error);
    }
    let next = target(form.next.as_deref());
    let client = auth::login_client(&state, remote, &headers);
    let now_ms = state.now_ms();
    if let Some(wait_ms) = state.throttle().blocked(client, &info.user_name, now_ms) {
        tracing::warn!(client = ?client, user = %info.user_name, "password confirmation refused: too many failed attempts");
        let message = auth::wait_message(wait_ms);
        let mut response = confirm_page(
            &state,
            &principal,
            StatusCode::TOO_MANY_REQUESTS,
            &next,
            Some(message),
        );
        if let Ok(value) = HeaderValue::from_str(&auth::retry_after_s(wait_ms).to_string()) {
            response.headers_mut().insert("retry-after", value);
        }
        return response;
    }
    match auth::verify_password(&state, info.user_name.clone(), form.password).await {
        // The id too: the name could have been removed and given to someone else meanwhile.
        Ok(Some(user_id)) if user_id == info.user_id => {
            let confirmed = state
                .accounts(move |accounts| Ok(accounts.confirm_session(&secret, now_ms)?))
                .await;
            if let Err(error) = confirmed {
                return respond::failure_page(&state, Some(&principal), error);
            }
            state.throttle().record_success(client, &info.user_name);
            tracing::info!(user = %info.user_name, "password confirmed: camera passwords shown for a few minutes");
            respond::see_other(&next)
        }
        Ok(_) => {
            state.throttle().record_failure(client, &info.user_name, now_ms);
            tracing::warn!(client = ?client, user = %info.user_name, "failed password confirmation");
            confirm_page(
                &state,
                &principal,
                StatusCode::UNAUTHORIZED,
                &next,
                Some("Wrong password.".into()),
            )
        }
        Err(error) => respond::failure_page(&state, Some(&principal), error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirmation_leads_back_to_a_same_site_path() {
        assert_eq!(target(None), DEFAULT_NEXT);
        assert_eq!(target(Some("")), DEFAULT_NEXT);
        assert_eq!(
            target(Some("/config?saved=1&reveal=1")),
            "/config?saved=1&reveal=1"
        );
        assert_eq!(target(Some("//evil.example/")), "/");
        assert_eq!(target(Some("/\t/evil.example")), "/");
        assert_eq!(
            link("/config?reveal=1"),
            "/config/confirm?next=%2Fconfig%3Freveal%3D1"
        );
    }
}
