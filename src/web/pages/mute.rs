//! The mute buttons of the dashboard and the stream page (`POST /streams/{name}/mute` with
//! `for` = `1h`, `8h` or `forever`, and `POST /streams/{name}/unmute`), for administrators. Each
//! form carries the session's CSRF token and returns to the page it came from.

use std::sync::Arc;

use serde::Deserialize;
use warp::http::HeaderMap;
use warp::reply::Response;

use crate::alert::quiet::MuteFor;
use crate::web::api::mute::set_mute;
use crate::web::auth::{self, Principal};
use crate::web::links;
use crate::web::respond;
use crate::web::{WebError, WebState};

/// A mute or unmute form.
#[derive(Debug, Default, Deserialize)]
pub struct MuteForm {
    pub csrf: Option<String>,
    /// `1h`, `8h` or `forever` (muting only).
    #[serde(rename = "for")]
    pub duration: Option<String>,
    /// `stream` to return to the stream's page, else the dashboard.
    pub back: Option<String>,
}

pub async fn mute(
    name: String,
    mute: bool,
    principal: Principal,
    state: Arc<WebState>,
    headers: HeaderMap,
    form: MuteForm,
) -> Response {
    if let Err(error) = auth::check_csrf(&principal, &headers, form.csrf.as_deref()) {
        return respond::failure_page(&state, Some(&principal), error);
    }
    let until_ms = if mute {
        match form.duration.as_deref().and_then(MuteFor::parse) {
            Some(duration) => duration.until_ms(state.now_ms()),
            None => {
                let error = WebError::BadRequest("choose how long to mute: 1h, 8h or forever".into());
                return respond::failure_page(&state, Some(&principal), error);
            }
        }
    } else {
        None
    };
    // Only the two pages with the buttons: never an address taken from the form.
    let back = match form.back.as_deref() {
        Some("stream") => links::stream_href(&name),
        _ => "/".to_string(),
    };
    match set_mute(&state, &principal, name, mute, until_ms).await {
        Ok(_) => respond::see_other(&back),
        Err(error) => respond::failure_page(&state, Some(&principal), error),
    }
}
