//! The pages for people, one file per page or concern: [`account`] (login, first-run setup,
//! logout), [`dashboard`], [`stream`] (one stream's history), [`live`] (its live view, a JPEG
//! stream), [`mute`] (their mute buttons),
//! [`config`] (the editor) and [`confirm`] (re-entering the password before camera passwords are
//! shown), [`notifications`] (the channels, "Send a test"), [`profile`] (your own password and
//! time display), [`users`] (admins manage users and roles), [`wall`] (the dashboard's pictures) and [`status`] (the optional public
//! status page). Each gathers data, shapes it for its template and renders through
//! [`super::respond`]; failures become an error page with the right status.

pub mod account;
pub mod config;
pub mod confirm;
pub mod dashboard;
pub mod live;
pub mod mute;
pub mod notifications;
pub mod profile;
pub mod status;
pub mod stream;
pub mod users;
pub mod wall;

use std::sync::Arc;

use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;

use super::respond;
use super::WebState;

/// A built-in (or `--assets`) static file: CSS, JavaScript, the icon.
pub fn static_file(name: String, state: Arc<WebState>) -> Response {
    match state.views().static_file(&name) {
        Some((body, content_type)) => {
            let mut response = Response::new(body.into());
            response
                .headers_mut()
                .insert("content-type", HeaderValue::from_static(content_type));
            response
                .headers_mut()
                .insert("cache-control", HeaderValue::from_static("public, max-age=300"));
            response
        }
        None => respond::plain(StatusCode::NOT_FOUND, "no such file"),
    }
}
