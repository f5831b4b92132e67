//! The JSON API under `/api/v1`, `/healthz` and `/metrics`.
//!
//! Errors are `{"error": {"status": 404, "message": "…"}}` with the matching HTTP status. Times
//! are given twice: RFC 3339 UTC text and milliseconds since the epoch (`*_ms`); query
//! parameters accept either.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Value};
use warp::http::{HeaderMap, HeaderValue, StatusCode};
use warp::reply::Response;

use super::filters::{authenticate, Principal};
use super::snapshot::{self, SnapshotResult};
use super::{metrics, WebError, WebState};
use crate::clock::{iso_utc, parse_time_param, DAY_MS, HOUR_MS};
use crate::fleet::{self, Counts, StreamSummary};
use crate::heartbeat::Heartbeat;
use crate::url::redact_text;

/// Heartbeats returned when the query gives no `limit`.
pub const DEFAULT_HEARTBEAT_LIMIT: usize = 1_000;
/// Most heartbeats one request may ask for.
pub const MAX_HEARTBEAT_LIMIT: usize = 10_000;

fn json_response(status: StatusCode, value: &Value) -> Response {
    let body = serde_json::to_string(value).unwrap_or_else(|_| "{}".into());
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
}

/// A JSON error body; the message is redacted once more on the way out.
pub fn error_response(status: StatusCode, message: &str) -> Response {
    let mut response = json_response(
        status,
        &json!({"error": {"status": status.as_u16(), "message": redact_text(message)}}),
    );
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_static("Bearer realm=\"streampulse\""),
        );
    }
    response
}

fn failure(error: WebError) -> Response {
    if error.status().is_server_error() {
        tracing::error!("API request failed: {}", error.public_message());
    }
    error_response(error.status(), &error.public_message())
}

fn respond(result: Result<Value, WebError>) -> Response {
    match result {
        Ok(value) => json_response(StatusCode::OK, &value),
        Err(error) => failure(error),
    }
}

/// One stream as the API shows it.
pub fn stream_json(summary: &StreamSummary) -> Value {
    let status = summary.status.as_ref();
    let time = |ms: Option<i64>| ms.map(iso_utc);
    let since_ms = status.and_then(|s| s.since_ms);
    let last_ms = status.and_then(|s| s.last_ts_ms);
    let last_up_ms = status.and_then(|s| s.last_up_ms);
    let reason = status.and_then(|s| s.reason);
    json!({
        "name": summary.name,
        "url": summary.url,
        "enabled": summary.enabled,
        "pipeline": summary.pipeline,
        "heartbeat_seconds": summary.heartbeat_ms / 1000,
        "health": summary.state.as_str(),
        "last_probe_health": status.and_then(|s| s.health).map(|h| h.as_str()),
        "since": time(since_ms),
        "since_ms": since_ms,
        "last_heartbeat": time(last_ms),
        "last_heartbeat_ms": last_ms,
        "last_up": time(last_up_ms),
        "last_up_ms": last_up_ms,
        "latency_ms": status.and_then(|s| s.last_latency_ms),
        "reason": reason.map(|r| r.code()),
        "reason_text": reason.map(|r| r.describe()),
        "message": summary.message,
        "codec": status.and_then(|s| s.codec.clone()),
        "width": status.and_then(|s| s.width),
        "height": status.and_then(|s| s.height),
        "uptime_24h": summary.last_24h.uptime,
        "uptime_7d": summary.last_7d.uptime,
    })
}

fn heartbeat_json(heartbeat: &Heartbeat) -> Value {
    json!({
        "ts": iso_utc(heartbeat.ts_ms),
        "ts_ms": heartbeat.ts_ms,
        "health": heartbeat.outcome.health.as_str(),
        "latency_ms": heartbeat.outcome.latency_ms,
        "reason": heartbeat.outcome.reason.map(|r| r.code()),
        "reason_text": heartbeat.outcome.reason.map(|r| r.describe()),
        "message": redact_text(&heartbeat.outcome.message),
        "codec": heartbeat.outcome.codec,
        "width": heartbeat.outcome.width,
        "height": heartbeat.outcome.height,
        "ntp_synced": heartbeat.ntp_synced,
    })
}

/// `from` / `to` from the query, defaulting to the `default_span_ms` before now.
fn time_range(
    query: &HashMap<String, String>,
    now_ms: i64,
    default_span_ms: i64,
) -> Result<(i64, i64), WebError> {
    let parse = |key: &str| -> Result<Option<i64>, WebError> {
        query
            .get(key)
            .filter(|v| !v.trim().is_empty())
            .map(|v| parse_time_param(v).map_err(|e| WebError::BadRequest(format!("{key}: {e}"))))
            .transpose()
    };
    let to_ms = parse("to")?.unwrap_or(now_ms);
    let from_ms = parse("from")?.unwrap_or(to_ms.saturating_sub(default_span_ms));
    if from_ms >= to_ms {
        return Err(WebError::BadRequest("`from` must be before `to`".into()));
    }
    Ok((from_ms, to_ms))
}

/// Always 200 while the web server answers (restarting it fixes nothing); `status` is
/// `degraded` while the monitor reports a full disk, with the details under `store`.
pub async fn healthz(state: Arc<WebState>) -> Response {
    let config_ok = state.config_problem().is_none();
    let store = state.store_health();
    let status = if store.disk_full() { "degraded" } else { "ok" };
    json_response(
        StatusCode::OK,
        &json!({
            "status": status,
            "config_valid": config_ok,
            "version": env!("CARGO_PKG_VERSION"),
            "store": store.healthz_json(),
        }),
    )
}

pub async fn metrics(state: Arc<WebState>, headers: HeaderMap) -> Response {
    if !state.config().web.metrics_public {
        match authenticate(&state, &headers).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                return error_response(StatusCode::UNAUTHORIZED, &WebError::Unauthorized.public_message())
            }
            Err(error) => return failure(error),
        }
    }
    let started = state.started();
    let text = match state.fleet(false).await {
        Ok((_, streams)) => {
            state
                .read(move |store| Ok(metrics::render(&streams, &store.probe_counts()?, started)))
                .await
        }
        Err(error) => Err(error),
    };
    match text {
        Ok(mut text) => {
            text.push_str(&state.store_health().metrics());
            let mut response = Response::new(text.into());
            response
                .headers_mut()
                .insert("content-type", HeaderValue::from_static(metrics::CONTENT_TYPE));
            response
        }
        Err(error) => failure(error),
    }
}

pub async fn streams(_principal: Principal, state: Arc<WebState>) -> Response {
    let now_ms = state.now_ms();
    let streams = match state.fleet(false).await {
        Ok((_, streams)) => streams,
        Err(error) => return failure(error),
    };
    let counts = Counts::of(&streams);
    json_response(
        StatusCode::OK,
        &json!({
            "generated_at": iso_utc(now_ms),
            "generated_at_ms": now_ms,
            "summary": {
                "total": streams.len(),
                "up": counts.up,
                "degraded": counts.degraded,
                "down": counts.down,
                "stale": counts.stale,
                "unknown": counts.unknown,
                "disabled": counts.disabled,
            },
            "streams": streams.iter().map(stream_json).collect::<Vec<_>>(),
        }),
    )
}

fn no_such_stream(name: &str) -> WebError {
    WebError::NotFound(format!("no stream named {name:?} in the configuration"))
}

pub async fn stream(name: String, _principal: Principal, state: Arc<WebState>) -> Response {
    let config = state.config();
    let now_ms = state.now_ms();
    respond(
        state
            .read(
                move |store| match fleet::load_one(&config, store, &name, now_ms)? {
                    Some(summary) => Ok(stream_json(&summary)),
                    None => Err(no_such_stream(&name)),
                },
            )
            .await,
    )
}

pub async fn heartbeats(
    name: String,
    _principal: Principal,
    state: Arc<WebState>,
    query: HashMap<String, String>,
) -> Response {
    let config = state.config();
    let now_ms = state.now_ms();
    let request = (|| {
        let (from_ms, to_ms) = time_range(&query, now_ms, HOUR_MS)?;
        let limit = match query.get("limit") {
            None => DEFAULT_HEARTBEAT_LIMIT,
            Some(text) => match text.parse::<usize>() {
                Ok(limit) if (1..=MAX_HEARTBEAT_LIMIT).contains(&limit) => limit,
                _ => {
                    return Err(WebError::BadRequest(format!(
                        "limit must be a whole number from 1 to {MAX_HEARTBEAT_LIMIT}"
                    )))
                }
            },
        };
        Ok((from_ms, to_ms, limit))
    })();
    let (from_ms, to_ms, limit) = match request {
        Ok(request) => request,
        Err(error) => return failure(error),
    };
    respond(
        state
            .read(move |store| {
                if !config.streams.iter().any(|s| s.name == name) {
                    return Err(no_such_stream(&name));
                }
                let heartbeats = match store.stream_id_by_name(&name)? {
                    Some(id) => store.heartbeats(id, from_ms, to_ms, limit)?,
                    None => Vec::new(),
                };
                Ok(json!({
                    "stream": name,
                    "from": iso_utc(from_ms),
                    "from_ms": from_ms,
                    "to": iso_utc(to_ms),
                    "to_ms": to_ms,
                    "limit": limit,
                    "order": "newest first",
                    "heartbeats": heartbeats.iter().map(heartbeat_json).collect::<Vec<_>>(),
                }))
            })
            .await,
    )
}

pub async fn outages(
    name: String,
    _principal: Principal,
    state: Arc<WebState>,
    query: HashMap<String, String>,
) -> Response {
    let config = state.config();
    let now_ms = state.now_ms();
    let (from_ms, to_ms) = match time_range(&query, now_ms, 30 * DAY_MS) {
        Ok(range) => range,
        Err(error) => return failure(error),
    };
    respond(
        state
            .read(move |store| {
                if !config.streams.iter().any(|s| s.name == name) {
                    return Err(no_such_stream(&name));
                }
                let outages = match store.stream_id_by_name(&name)? {
                    Some(id) => store.outages(id, from_ms, to_ms)?,
                    None => Vec::new(),
                };
                let outages: Vec<Value> = outages
                    .iter()
                    .map(|o| {
                        json!({
                            "start": iso_utc(o.start_ms),
                            "start_ms": o.start_ms,
                            "end": o.end_ms.map(iso_utc),
                            "end_ms": o.end_ms,
                            "ongoing": o.end_ms.is_none(),
                            "duration_ms": o.end_ms.unwrap_or(now_ms) - o.start_ms,
                            "reason": o.reason.map(|r| r.code()),
                            "reason_text": o.reason.map(|r| r.describe()),
                            "message": redact_text(&o.message),
                        })
                    })
                    .collect();
                Ok(json!({
                    "stream": name,
                    "from": iso_utc(from_ms),
                    "from_ms": from_ms,
                    "to": iso_utc(to_ms),
                    "to_ms": to_ms,
                    "outages": outages,
                }))
            })
            .await,
    )
}

pub async fn snapshot(name: String, principal: Principal, state: Arc<WebState>) -> Response {
    let config = state.config();
    let Some(stream) = config.streams.iter().find(|s| s.name == name) else {
        return failure(no_such_stream(&name));
    };
    let permit = match state.snapshots().try_acquire(&name) {
        Ok(permit) => permit,
        Err(error) => return failure(error),
    };
    tracing::info!(stream = %name, by = %principal.display_name(), "taking a snapshot");
    match snapshot::take(state.snapshots(), &config, stream, permit).await {
        Ok(SnapshotResult::Jpeg { jpeg, width, height }) => {
            let mut response = Response::new(jpeg.into());
            let headers = response.headers_mut();
            headers.insert("content-type", HeaderValue::from_static("image/jpeg"));
            headers.insert("cache-control", HeaderValue::from_static("no-store"));
            if let Ok(value) = HeaderValue::from_str(&format!("{width}x{height}")) {
                headers.insert("x-snapshot-size", value);
            }
            response
        }
        Ok(SnapshotResult::Failed {
            reason,
            reason_code,
            message,
        }) => {
            let text = if message.is_empty() {
                format!("no picture: {reason}")
            } else {
                format!("no picture: {reason} ({message})")
            };
            let mut response = json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"error": {
                    "status": 503,
                    "message": redact_text(&text),
                    "reason": reason_code,
                    "reason_text": reason,
                }}),
            );
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from_static("5"));
            response
        }
        Err(error) => failure(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ranges_accept_both_formats_and_default() {
        let mut query = HashMap::new();
        assert_eq!(
            time_range(&query, 10_000, 1_000).expect("default"),
            (9_000, 10_000)
        );
        query.insert("from".to_string(), "2026-11-25T14:00:00Z".to_string());
        query.insert("to".to_string(), "1795615300000".to_string());
        assert_eq!(
            time_range(&query, 0, 1).expect("both"),
            (1_795_615_200_000, 1_795_615_300_000)
        );
        query.insert("to".to_string(), "yesterday".to_string());
        assert!(matches!(time_range(&query, 0, 1), Err(WebError::BadRequest(_))));
    }
}
