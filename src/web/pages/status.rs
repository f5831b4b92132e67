//! `/status`: the public, read-only status page for a wall screen or a team page, served
//! without login only when the config says `web.public_status: true` (404 otherwise, so an
//! instance that did not opt in does not even reveal it has one). Names, states, since when and
//! uptimes only: no URLs, no reasons (camera error messages can name hosts), and no pictures
//! unless the config also says `web.public_pictures: true` (then a wall of the last pictures,
//! served without login from `/status/{name}/picture.jpg`).

use std::sync::Arc;

use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::Response;

use crate::clock::{format_local, human_duration};
use crate::fleet::{self, State};
use crate::web::pictures;
use crate::web::respond;
use crate::web::WebState;

/// Seconds between automatic reloads, as on the dashboard.
const STATUS_REFRESH_SECONDS: u32 = 30;

#[derive(Serialize)]
struct StatusRow {
    name: String,
    health: &'static str,
    health_label: &'static str,
    since_ago: Option<String>,
    uptime_24h: String,
    uptime_7d: String,
    /// The last picture's address and age, with `web.public_pictures`.
    picture: Option<StatusPicture>,
}

#[derive(Serialize)]
struct StatusPicture {
    url: String,
    width: u32,
    height: u32,
    ago: String,
}

#[derive(Serialize)]
struct StatusPage {
    layout: respond::Layout,
    rows: Vec<StatusRow>,
    updated: String,
    pictures: bool,
}

pub async fn public_status(state: Arc<WebState>) -> Response {
    if !state.config().web.public_status {
        return respond::error_page(&state, None, StatusCode::NOT_FOUND, "no such page");
    }
    let now_ms = state.now_ms();
    let (config, streams) = match state.fleet(true).await {
        Ok(fleet) => fleet,
        Err(error) => return respond::failure_page(&state, None, error),
    };
    let shown: Vec<&fleet::StreamSummary> = streams.iter().filter(|s| s.enabled).collect();
    let with_pictures = config.web.public_pictures;
    let pictures = if with_pictures {
        let wanted: Vec<(Option<i64>, String)> =
            shown.iter().map(|s| (s.stream_id(), s.name.clone())).collect();
        let dir = pictures::dir(&state);
        tokio::task::spawn_blocking(move || {
            wanted
                .iter()
                .map(|(id, name)| pictures::public_info(&dir, *id, name))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default()
    } else {
        Vec::new()
    };
    let rows = shown
        .iter()
        .enumerate()
        .map(|(index, s)| {
            let status = s.status.as_ref();
            let since_ms = match s.state {
                State::Stale => status.and_then(|s| s.last_ts_ms),
                _ => status.and_then(|s| s.since_ms),
            };
            StatusRow {
                name: s.name.clone(),
                health: s.state.as_str(),
                health_label: s.state.label(),
                since_ago: since_ms.map(|ms| human_duration(now_ms - ms)),
                uptime_24h: fleet::percent(s.last_24h.uptime),
                uptime_7d: fleet::percent(s.last_7d.uptime),
                picture: pictures.get(index).cloned().flatten().map(|p| StatusPicture {
                    ago: human_duration(now_ms - p.ts_ms),
                    url: p.url,
                    width: p.width,
                    height: p.height,
                }),
            }
        })
        .collect();
    let mut layout = respond::layout(&state, None, "Status", "status");
    layout.refresh_seconds = Some(STATUS_REFRESH_SECONDS);
    let data = StatusPage {
        layout,
        rows,
        updated: format_local(now_ms, config.timezone),
        pictures: with_pictures,
    };
    respond::render(&state, "status", StatusCode::OK, &data)
}
