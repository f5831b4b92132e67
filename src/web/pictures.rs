//! The last pictures the monitor keeps beside the database (`crate::pictures`), served as they
//! are: `GET /streams/{name}/picture.jpg` (`?kind=verdict` for the picture behind the last
//! picture verdict) for anyone who may see the dashboard, and `GET /status/{name}/picture.jpg`
//! without login only with `web.public_status` and `web.public_pictures` both on. The web never
//! connects to a camera for them. Pages and the API describe them with [`PictureInfo`].

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use warp::http::{HeaderMap, HeaderValue, StatusCode};
use warp::reply::Response;

use crate::clock::{format_local, human_duration};
use crate::pictures::{PictureDir, PictureKind, PictureMeta};
use crate::web::links;
use crate::web::WebState;

/// Browsers may reuse a picture this long without asking; the dashboard reloads every 30 s.
const CACHE_CONTROL: &str = "private, max-age=10";

/// `?kind=`
#[derive(Debug, Default, Deserialize)]
pub struct PictureQuery {
    /// `verdict` for the picture behind the last picture verdict; anything else: the last one.
    pub kind: Option<String>,
}

impl PictureQuery {
    fn kind(&self) -> PictureKind {
        match self.kind.as_deref() {
            Some("verdict") => PictureKind::Verdict,
            _ => PictureKind::Last,
        }
    }
}

/// A kept picture, as pages and the API describe it.
#[derive(Debug, Clone, Serialize)]
pub struct PictureInfo {
    /// Where to fetch it (with its time, so a new picture is a new address).
    pub url: String,
    pub ts_ms: i64,
    pub width: u32,
    pub height: u32,
    /// For a verdict picture: the reason code and the verdict's words.
    pub reason: Option<String>,
    pub message: Option<String>,
}

impl PictureInfo {
    fn of(meta: PictureMeta, base: &str) -> PictureInfo {
        let separator = if base.contains('?') { '&' } else { '?' };
        PictureInfo {
            url: format!("{base}{separator}t={}", meta.ts_ms),
            ts_ms: meta.ts_ms,
            width: meta.width,
            height: meta.height,
            reason: meta.reason,
            message: meta.message,
        }
    }

    /// "12:04:05 (2 min ago)" in the page's timezone.
    pub fn taken_text(&self, tz: &time_tz::Tz, now_ms: i64) -> (String, String) {
        (format_local(self.ts_ms, tz), human_duration(now_ms - self.ts_ms))
    }
}

/// The pictures folder of the web's database.
pub fn dir(state: &WebState) -> PictureDir {
    PictureDir::beside(state.db_path())
}

/// The address of a stream's picture for signed-in users.
pub fn picture_href(name: &str, kind: PictureKind) -> String {
    match kind {
        PictureKind::Last => format!("{}/picture.jpg", links::stream_href(name)),
        PictureKind::Verdict => format!("{}/picture.jpg?kind=verdict", links::stream_href(name)),
    }
}

/// The address of a stream's picture on the public status page.
pub fn public_picture_href(name: &str) -> String {
    format!("/status/{}/picture.jpg", links::encode(name))
}

/// What is kept for store stream `stream_id` (metadata only: cheap enough for every dashboard row).
pub fn info(dir: &PictureDir, stream_id: Option<i64>, name: &str, kind: PictureKind) -> Option<PictureInfo> {
    let meta = dir.meta(stream_id?, kind)?;
    Some(PictureInfo::of(meta, &picture_href(name, kind)))
}

/// Like [`info`], addressed for the public status page.
pub fn public_info(dir: &PictureDir, stream_id: Option<i64>, name: &str) -> Option<PictureInfo> {
    let meta = dir.meta(stream_id?, PictureKind::Last)?;
    Some(PictureInfo::of(meta, &public_picture_href(name)))
}

/// `GET /streams/{name}/picture.jpg`: already authenticated (viewers included).
pub async fn picture(
    name: String,
    state: Arc<WebState>,
    headers: HeaderMap,
    query: PictureQuery,
) -> Response {
    serve(&state, &name, query.kind(), &headers).await
}

/// `GET /status/{name}/picture.jpg`: 404 unless the public page may show pictures.
pub async fn public_picture(name: String, state: Arc<WebState>, headers: HeaderMap) -> Response {
    let config = state.config();
    // Only what the public page shows: enabled cameras, with both switches on.
    let shown = config.streams.iter().any(|s| s.name == name && s.enabled);
    if !(config.web.public_status && config.web.public_pictures && shown) {
        return plain(StatusCode::NOT_FOUND, "no such page");
    }
    serve(&state, &name, PictureKind::Last, &headers).await
}

async fn serve(state: &Arc<WebState>, name: &str, kind: PictureKind, headers: &HeaderMap) -> Response {
    let config = state.config();
    if !config.streams.iter().any(|s| s.name == name) {
        return plain(StatusCode::NOT_FOUND, "no such camera");
    }
    let lookup = name.to_string();
    let stream_id = match state
        .read(move |store| Ok(store.stream_id_by_name(&lookup)?))
        .await
    {
        Ok(id) => id,
        Err(error) => return plain(error.status(), &error.public_message()),
    };
    let dir = dir(state);
    let found = match stream_id {
        Some(id) => tokio::task::spawn_blocking(move || dir.read(id, kind))
            .await
            .ok()
            .flatten(),
        None => None,
    };
    let Some((jpeg, meta)) = found else {
        let why = match kind {
            PictureKind::Last => {
                "no picture yet: the monitor keeps one from its probes once the camera has sent a clean frame \
                 (and only with `pictures.enabled`)"
            }
            PictureKind::Verdict => "no verdict picture: no probe has found this camera's picture black or frozen",
        };
        return plain(StatusCode::NOT_FOUND, why);
    };
    let etag = format!("\"{}-{}\"", meta.ts_ms, jpeg.len());
    let not_modified = headers
        .get("if-none-match")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|offered| offers_etag(offered, &etag));
    let mut response = if not_modified {
        let mut response = Response::new(Vec::new().into());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        let mut response = Response::new(jpeg.into());
        response
            .headers_mut()
            .insert("content-type", HeaderValue::from_static("image/jpeg"));
        response
    };
    let out = response.headers_mut();
    out.insert("cache-control", HeaderValue::from_static(CACHE_CONTROL));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        out.insert("etag", value);
    }
    if let Ok(value) = HeaderValue::from_str(&crate::clock::iso_utc(meta.ts_ms)) {
        out.insert("x-picture-time", value);
    }
    response
}

/// Whether an `If-None-Match` value names `etag` (a list, `*`, or weak `W/` tags).
fn offers_etag(offered: &str, etag: &str) -> bool {
    offered
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}

fn plain(status: StatusCode, text: &str) -> Response {
    let mut response = Response::new(format!("{text}\n").into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn if_none_match_forms() {
        let etag = "\"1795615185000-2048\"";
        assert!(offers_etag(etag, etag));
        assert!(offers_etag(&format!("\"x\", W/{etag}"), etag));
        assert!(offers_etag("*", etag));
        assert!(!offers_etag("\"1795615185000-2047\"", etag));
        assert!(!offers_etag("", etag));
    }

    #[test]
    fn kind_is_verdict_only_when_asked_exactly() {
        let kind = |text: Option<&str>| {
            PictureQuery {
                kind: text.map(str::to_string),
            }
            .kind()
        };
        assert_eq!(kind(Some("verdict")), PictureKind::Verdict);
        assert_eq!(kind(None), PictureKind::Last);
        assert_eq!(kind(Some("VERDICT")), PictureKind::Last);
    }

    proptest! {
        #[test]
        fn any_header_or_query_is_read_without_panicking(text in "\\PC{0,40}") {
            let _ = offers_etag(&text, "\"1-2\"");
            let kind = PictureQuery { kind: Some(text.clone()) }.kind();
            prop_assert_eq!(kind == PictureKind::Verdict, text == "verdict");
        }
    }
}
