//! `GET /streams/{name}/live.mjpg`: the stream page's live view, a `multipart/x-mixed-replace`
//! JPEG stream from the camera's shared live session ([`crate::web::live`]). Any signed-in user
//! may watch (viewers too); it changes nothing. Errors are plain text: an `<img>` shows none of
//! them, the page's script reads them.

use std::sync::Arc;

use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;
use warp::Reply;

use crate::web::auth::Principal;
use crate::web::live::{self, LiveError};
use crate::web::respond;
use crate::web::WebState;

pub async fn live_view(name: String, principal: Principal, state: Arc<WebState>) -> Response {
    let config = state.config();
    let Some(stream) = config.streams.iter().find(|s| s.name == name) else {
        return respond::plain(StatusCode::NOT_FOUND, &format!("no stream named {name:?}"));
    };
    if !stream.enabled {
        return respond::plain(
            StatusCode::CONFLICT,
            "this stream is disabled in the config; enable it to watch it live",
        );
    }
    let joined = state.live().join(state.snapshots(), &config, stream).await;
    let mut viewer = match joined {
        Ok(viewer) => viewer,
        Err(error) => return refused(&error),
    };
    let first = match viewer.first_frame().await {
        Ok(first) => first,
        Err(error) => return refused(&error),
    };
    tracing::info!(stream = %name, by = %principal.display_name(), "watching live");
    let remaining_s = viewer.remaining().as_secs();
    let mut response = warp::reply::stream(viewer.into_body(first)).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&live::content_type()) {
        headers.insert("content-type", value);
    }
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    // The page's script shows "ends in N s" from this (a shared session may be half over).
    headers.insert("x-live-ends-in", HeaderValue::from(remaining_s));
    response
}

/// A limit (503 with `Retry-After`) or the camera's failure (504 for a timeout, else 502), in
/// plain words; the messages were redacted where they were made.
fn refused(error: &LiveError) -> Response {
    let message = crate::url::redact_text(&error.to_string());
    match error {
        LiveError::Refused { retry_after_s, .. } => {
            let mut response = respond::plain(StatusCode::SERVICE_UNAVAILABLE, &message);
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(*retry_after_s));
            response
        }
        LiveError::Camera { timeout, .. } => {
            let status = if *timeout {
                StatusCode::GATEWAY_TIMEOUT
            } else {
                StatusCode::BAD_GATEWAY
            };
            respond::plain(status, &message)
        }
    }
}
