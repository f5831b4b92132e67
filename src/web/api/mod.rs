//! The JSON API under `/api/v1` ([`streams`]), `/healthz` and `/metrics`.
//!
//! Every answer and query is a typed struct in [`types`], which `docs/api.md` is tested against.
//! Errors are `{"error": {"status": 404, "message": "…"}}` with the matching HTTP status.

pub mod export;
pub mod mute;
pub mod streams;
pub mod types;

use std::sync::Arc;

use serde::Serialize;
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;

use super::auth::{self, Credentials};
use super::{metrics, metrics_v1, respond, WebError, WebState};
use crate::clock::DAY_MS;
use crate::url::redact_text;
use types::{ErrorAnswer, ErrorDetail, Healthz, ServiceStatus};

/// A JSON error body; the message is redacted once more on the way out.
pub fn error_response(status: StatusCode, message: &str) -> Response {
    let answer = ErrorAnswer {
        error: ErrorDetail {
            status: status.as_u16(),
            message: redact_text(message),
            reason: None,
            reason_text: None,
        },
    };
    let mut response = respond::json(status, &answer);
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_static("Bearer realm=\"streampulse\""),
        );
    }
    response
}

/// The JSON error for a failed request; server errors are logged.
pub fn failure(error: WebError) -> Response {
    if error.status().is_server_error() {
        tracing::error!("API request failed: {}", error.public_message());
    }
    error_response(error.status(), &error.public_message())
}

/// `200` with the answer, or the error.
fn answer<T: Serialize>(result: Result<T, WebError>) -> Response {
    match result {
        Ok(value) => respond::json(StatusCode::OK, &value),
        Err(error) => failure(error),
    }
}

/// Always 200 while the web server answers (restarting it fixes nothing); `status` is
/// `degraded` while the monitor reports a full disk, with the details under `store`.
pub async fn healthz(state: Arc<WebState>) -> Response {
    let store = state.store_health();
    let answer = Healthz {
        status: if store.disk_full() {
            ServiceStatus::Degraded
        } else {
            ServiceStatus::Ok
        },
        config_valid: state.config_problem().is_none(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        store: store.healthz(),
    };
    respond::json(StatusCode::OK, &answer)
}

/// Prometheus text; needs a session or token unless the config says `metrics_public: true`.
pub async fn metrics(state: Arc<WebState>, credentials: Credentials) -> Response {
    if !state.config().web.metrics_public {
        match auth::authenticate(&state, credentials).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                return error_response(StatusCode::UNAUTHORIZED, &WebError::Unauthorized.public_message())
            }
            Err(error) => return failure(error),
        }
    }
    let started = state.started();
    let (v1_names, now_ms) = (state.config().metrics.v1_names, state.now_ms());
    let site = state.config().site.clone();
    let text = match state.fleet(false).await {
        Ok((_, streams)) => {
            state
                .read(move |store| {
                    let mut text = metrics::render(&streams, &store.probe_counts()?, started);
                    text.push_str(&metrics::render_alerts(&store.outbox_counts()?));
                    if v1_names {
                        let window = metrics_v1::SLA_WINDOW_DAYS * DAY_MS;
                        let samples = store.uptime_all(now_ms - window, now_ms)?;
                        text.push_str(&metrics_v1::render(&streams, samples.values(), now_ms));
                    }
                    Ok(text)
                })
                .await
        }
        Err(error) => Err(error),
    };
    match text {
        Ok(mut text) => {
            text.push_str(&state.store_health().metrics());
            text.push_str(&state.live().metrics());
            if let Some(site) = &site {
                text = metrics::with_site_label(&text, site);
            }
            let mut response = Response::new(text.into());
            response
                .headers_mut()
                .insert("content-type", HeaderValue::from_static(metrics::CONTENT_TYPE));
            response
        }
        Err(error) => failure(error),
    }
}
