//! How answers are built: HTML pages (a template rendered inside `layout.hbs`), JSON, plain
//! text, redirects and error pages, and gzip on the way out ([`compress`]).

pub mod compress;

use serde::Serialize;
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;

use super::auth::Principal;
use super::links;
use super::{WebError, WebState};
use crate::store::accounts::TimeDisplay;
use crate::url::redact_text;

/// What every page's layout needs.
#[derive(Debug, Serialize)]
pub struct Layout {
    pub title: String,
    pub user: Option<String>,
    pub csrf: Option<String>,
    /// Which navigation entry is current.
    pub nav: &'static str,
    /// The config file on disk is invalid (the last valid one is in use).
    pub config_problem: Option<String>,
    /// The monitor reports a full disk: heartbeats held in memory, some perhaps lost.
    pub store_problem: Option<String>,
    pub refresh_seconds: Option<u32>,
    /// May change things: the editor and users links are shown.
    pub admin: bool,
    /// Times are rewritten into the browser's timezone by `app.js`.
    pub browser_times: bool,
}

/// The layout of a page; the banners only for someone logged in.
pub fn layout(
    state: &WebState,
    principal: Option<&Principal>,
    title: impl Into<String>,
    nav: &'static str,
) -> Layout {
    Layout {
        title: title.into(),
        user: principal.map(Principal::display_name),
        csrf: principal.and_then(|p| p.csrf_token().map(str::to_string)),
        nav,
        config_problem: principal.and_then(|_| state.config_problem()),
        store_problem: principal.and_then(|_| state.store_health().banner(state.config().timezone)),
        refresh_seconds: None,
        admin: principal.is_some_and(Principal::is_admin),
        browser_times: principal.is_some_and(|p| p.time_display() == TimeDisplay::Browser),
    }
}

fn with_type(mut response: Response, status: StatusCode, content_type: &'static str) -> Response {
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static(content_type));
    response
}

pub fn html(status: StatusCode, body: String) -> Response {
    with_type(Response::new(body.into()), status, "text/html; charset=utf-8")
}

pub fn plain(status: StatusCode, message: &str) -> Response {
    with_type(
        Response::new(message.to_string().into()),
        status,
        "text/plain; charset=utf-8",
    )
}

/// A JSON answer. Serialising the answer types cannot fail (no maps with non-string keys, no
/// failing `Serialize` impls); should it ever, the client gets a 500, not a panic.
pub fn json(status: StatusCode, value: &impl Serialize) -> Response {
    match serde_json::to_string(value) {
        Ok(body) => with_type(Response::new(body.into()), status, "application/json"),
        Err(error) => {
            tracing::error!("cannot serialise an answer: {error}");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the answer could not be written",
            )
        }
    }
}

pub fn see_other(location: &str) -> Response {
    let mut response = Response::new(String::new().into());
    *response.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert("location", value);
    }
    response
}

/// To the login form, which comes back to `next` afterwards.
pub fn redirect_to_login(next: &str) -> Response {
    if next == "/" {
        return see_other("/login");
    }
    see_other(&format!("/login?next={}", links::encode(next)))
}

/// Renders `template` with `data`; a template error is logged and answered with a plain 500.
pub fn render(state: &WebState, template: &str, status: StatusCode, data: &impl Serialize) -> Response {
    match state.views().render(template, data) {
        Ok(body) => html(status, body),
        Err(error) => {
            tracing::error!("cannot render {template}: {}", redact_text(&error.to_string()));
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
        }
    }
}

#[derive(Serialize)]
struct ErrorPage<'a> {
    layout: Layout,
    status: u16,
    reason: &'a str,
    message: String,
}

/// An error page; the message is shown escaped and redacted.
pub fn error_page(
    state: &WebState,
    principal: Option<&Principal>,
    status: StatusCode,
    message: &str,
) -> Response {
    let reason = status.canonical_reason().unwrap_or("Error");
    let data = ErrorPage {
        layout: layout(state, principal, format!("{} {reason}", status.as_u16()), ""),
        status: status.as_u16(),
        reason,
        message: redact_text(message),
    };
    render(state, "error", status, &data)
}

pub fn not_found_page(state: &WebState, principal: &Principal) -> Response {
    error_page(state, Some(principal), StatusCode::NOT_FOUND, "no such page")
}

/// The error page for a failed request: its status, its public message, `Retry-After` when
/// throttled; server errors are logged.
pub fn failure_page(state: &WebState, principal: Option<&Principal>, error: WebError) -> Response {
    if error.status().is_server_error() {
        tracing::error!("request failed: {}", error.public_message());
    }
    let mut response = error_page(state, principal, error.status(), &error.public_message());
    if let WebError::TooManyRequests { retry_after_s, .. } = error {
        if let Ok(value) = HeaderValue::from_str(&retry_after_s.to_string()) {
            response.headers_mut().insert("retry-after", value);
        }
    }
    response
}
