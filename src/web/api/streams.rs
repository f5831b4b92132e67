//! `/api/v1/streams…`: the fleet, one stream, its heartbeats and outages, and a live snapshot.

use std::sync::Arc;

use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;

use super::types::{
    ErrorAnswer, ErrorDetail, HeartbeatAnswer, HeartbeatList, HeartbeatsQuery, Order, OutageAnswer,
    OutageList, RangeQuery, StateCounts, StreamAnswer, StreamList,
};
use super::{answer, failure};
use crate::clock::{iso_utc, parse_time_param, DAY_MS, HOUR_MS};
use crate::fleet;
use crate::url::redact_text;
use crate::web::auth::Principal;
use crate::web::pictures;
use crate::web::respond;
use crate::web::snapshot::{self, SnapshotResult};
use crate::web::{WebError, WebState};

/// Heartbeats returned when the query gives no `limit`.
pub const DEFAULT_HEARTBEAT_LIMIT: usize = 1_000;
/// Most heartbeats one request may ask for.
pub const MAX_HEARTBEAT_LIMIT: usize = 10_000;
/// Heartbeats cover the last hour unless asked otherwise.
const DEFAULT_HEARTBEAT_SPAN_MS: i64 = HOUR_MS;
/// Outages cover the last 30 days unless asked otherwise.
const DEFAULT_OUTAGE_SPAN_MS: i64 = 30 * DAY_MS;

/// `from` / `to`, defaulting to the `default_span_ms` before now.
fn time_range(
    from: Option<&str>,
    to: Option<&str>,
    now_ms: i64,
    default_span_ms: i64,
) -> Result<(i64, i64), WebError> {
    let parse = |key: &str, value: Option<&str>| -> Result<Option<i64>, WebError> {
        value
            .filter(|v| !v.trim().is_empty())
            .map(|v| parse_time_param(v).map_err(|e| WebError::BadRequest(format!("{key}: {e}"))))
            .transpose()
    };
    let to_ms = parse("to", to)?.unwrap_or(now_ms);
    let from_ms = parse("from", from)?.unwrap_or(to_ms.saturating_sub(default_span_ms));
    if from_ms >= to_ms {
        return Err(WebError::BadRequest("`from` must be before `to`".into()));
    }
    Ok((from_ms, to_ms))
}

fn heartbeat_limit(limit: Option<&str>) -> Result<usize, WebError> {
    match limit {
        None => Ok(DEFAULT_HEARTBEAT_LIMIT),
        Some(text) => match text.parse::<usize>() {
            Ok(limit) if (1..=MAX_HEARTBEAT_LIMIT).contains(&limit) => Ok(limit),
            _ => Err(WebError::BadRequest(format!(
                "limit must be a whole number from 1 to {MAX_HEARTBEAT_LIMIT}"
            ))),
        },
    }
}

fn no_such_stream(name: &str) -> WebError {
    WebError::NotFound(format!("no stream named {name:?} in the configuration"))
}

pub async fn streams(_principal: Principal, state: Arc<WebState>) -> Response {
    let now_ms = state.now_ms();
    let streams = match state.fleet(false).await {
        Ok((_, streams)) => streams,
        Err(error) => return failure(error),
    };
    let dir = pictures::dir(&state);
    let list = tokio::task::spawn_blocking(move || StreamList {
        generated_at: iso_utc(now_ms),
        generated_at_ms: now_ms,
        summary: StateCounts::of(&streams),
        streams: streams
            .iter()
            .map(|s| StreamAnswer::of(s).with_pictures(&dir, s.stream_id()))
            .collect(),
    })
    .await
    .map_err(|_| WebError::Internal("the stream list could not be built".into()));
    answer(list)
}

pub async fn stream(name: String, _principal: Principal, state: Arc<WebState>) -> Response {
    let config = state.config();
    let now_ms = state.now_ms();
    let dir = pictures::dir(&state);
    answer(
        state
            .read(
                move |store| match fleet::load_one(&config, store, &name, now_ms)? {
                    Some(summary) => Ok(StreamAnswer::of(&summary).with_pictures(&dir, summary.stream_id())),
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
    query: HeartbeatsQuery,
) -> Response {
    let config = state.config();
    let now_ms = state.now_ms();
    let request = time_range(
        query.from.as_deref(),
        query.to.as_deref(),
        now_ms,
        DEFAULT_HEARTBEAT_SPAN_MS,
    )
    .and_then(|range| Ok((range, heartbeat_limit(query.limit.as_deref())?)));
    let ((from_ms, to_ms), limit) = match request {
        Ok(request) => request,
        Err(error) => return failure(error),
    };
    answer(
        state
            .read(move |store| {
                if !config.streams.iter().any(|s| s.name == name) {
                    return Err(no_such_stream(&name));
                }
                let heartbeats = match store.stream_id_by_name(&name)? {
                    Some(id) => store.heartbeats(id, from_ms, to_ms, limit)?,
                    None => Vec::new(),
                };
                Ok(HeartbeatList {
                    stream: name,
                    from: iso_utc(from_ms),
                    from_ms,
                    to: iso_utc(to_ms),
                    to_ms,
                    limit,
                    order: Order::NewestFirst,
                    heartbeats: heartbeats.iter().map(HeartbeatAnswer::of).collect(),
                })
            })
            .await,
    )
}

pub async fn outages(
    name: String,
    _principal: Principal,
    state: Arc<WebState>,
    query: RangeQuery,
) -> Response {
    let config = state.config();
    let now_ms = state.now_ms();
    let (from_ms, to_ms) = match time_range(
        query.from.as_deref(),
        query.to.as_deref(),
        now_ms,
        DEFAULT_OUTAGE_SPAN_MS,
    ) {
        Ok(range) => range,
        Err(error) => return failure(error),
    };
    answer(
        state
            .read(move |store| {
                if !config.streams.iter().any(|s| s.name == name) {
                    return Err(no_such_stream(&name));
                }
                let outages = match store.stream_id_by_name(&name)? {
                    Some(id) => store.outages(id, from_ms, to_ms)?,
                    None => Vec::new(),
                };
                Ok(OutageList {
                    stream: name,
                    from: iso_utc(from_ms),
                    from_ms,
                    to: iso_utc(to_ms),
                    to_ms,
                    outages: outages.iter().map(|o| OutageAnswer::of(o, now_ms)).collect(),
                })
            })
            .await,
    )
}

pub async fn snapshot(name: String, principal: Principal, state: Arc<WebState>) -> Response {
    let config = state.config();
    let Some(stream) = config.streams.iter().find(|s| s.name == name) else {
        return failure(no_such_stream(&name));
    };
    // A camera being watched live already has its one UI pipeline: its latest frame is the
    // snapshot.
    if let Some(jpeg) = state.live().latest(&name) {
        return jpeg_response(jpeg.bytes.clone(), jpeg.width, jpeg.height);
    }
    let permit = match state.snapshots().try_acquire(&name) {
        Ok(permit) => permit,
        Err(error) => return failure(error),
    };
    tracing::info!(stream = %name, by = %principal.display_name(), "taking a snapshot");
    match snapshot::take(state.snapshots(), &config, stream, permit).await {
        Ok(SnapshotResult::Jpeg { jpeg, width, height }) => jpeg_response(jpeg, width, height),
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
            let status = StatusCode::SERVICE_UNAVAILABLE;
            let error = ErrorAnswer {
                error: ErrorDetail {
                    status: status.as_u16(),
                    message: redact_text(&text),
                    reason: Some(reason_code),
                    reason_text: Some(reason),
                },
            };
            let mut response = respond::json(status, &error);
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from_static("5"));
            response
        }
        Err(error) => failure(error),
    }
}

fn jpeg_response(jpeg: Vec<u8>, width: u32, height: u32) -> Response {
    let mut response = Response::new(jpeg.into());
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("image/jpeg"));
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&format!("{width}x{height}")) {
        headers.insert("x-snapshot-size", value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ranges_accept_both_formats_and_default() {
        assert_eq!(
            time_range(None, None, 10_000, 1_000).expect("default"),
            (9_000, 10_000)
        );
        assert_eq!(
            time_range(Some("2026-11-25T14:00:00Z"), Some("1795615300000"), 0, 1).expect("both"),
            (1_795_615_200_000, 1_795_615_300_000)
        );
        assert!(matches!(
            time_range(Some("2026-11-25T14:00:00Z"), Some("yesterday"), 0, 1),
            Err(WebError::BadRequest(_))
        ));
        assert_eq!(time_range(Some(" "), None, 10, 5).expect("blank"), (5, 10));
    }

    #[test]
    fn limits_are_checked_with_a_useful_message() {
        assert_eq!(heartbeat_limit(None).expect("default"), DEFAULT_HEARTBEAT_LIMIT);
        assert_eq!(heartbeat_limit(Some("3")).expect("three"), 3);
        for bad in ["0", "10001", "ten", ""] {
            let error = heartbeat_limit(Some(bad)).expect_err(bad);
            assert!(error.to_string().contains("from 1 to 10000"), "{error}");
        }
    }

    use proptest::prelude::*;

    /// Times as people and scripts type them, valid or nearly: every field a little out of
    /// range now and then, any zone, 0 to 12 fraction digits.
    fn rfc3339ish() -> impl Strategy<Value = String> {
        (
            (0u32..10_001, 0u32..14, 0u32..33),
            (0u32..26, 0u32..62, 0u32..62),
            "(\\.[0-9]{1,12})?",
            prop_oneof![
                Just("Z".to_string()),
                Just("z".to_string()),
                "[+-][0-2][0-9]:[0-6][0-9]",
                Just(String::new())
            ],
            prop_oneof![Just("T"), Just("t"), Just(" ")],
        )
            .prop_map(
                |((year, month, day), (hour, minute, second), fraction, zone, t)| {
                    format!(
                        "{year:04}-{month:02}-{day:02}{t}{hour:02}:{minute:02}:{second:02}{fraction}{zone}"
                    )
                },
            )
    }

    fn any_time_text() -> impl Strategy<Value = String> {
        prop_oneof![
            "\\PC{0,32}",
            "[ ]?-?[0-9]{1,22}[ ]?",
            rfc3339ish(),
            any::<i64>().prop_map(|ms| ms.to_string()),
            any::<i64>().prop_map(iso_utc),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any text: a time that formats back to itself (both ways the API shows times), or a
        /// 400 that says what a time looks like.
        #[test]
        fn times_parse_to_what_they_format_back_to_or_are_refused(text in any_time_text()) {
            match parse_time_param(&text) {
                Ok(ms) => {
                    prop_assert_eq!(parse_time_param(&iso_utc(ms)).ok(), Some(ms), "{}", iso_utc(ms));
                    prop_assert_eq!(parse_time_param(&ms.to_string()).ok(), Some(ms));
                }
                Err(error) => {
                    prop_assert!(error.to_string().contains("RFC 3339"));
                    // Blank means "not given" to the API.
                    if !text.trim().is_empty() {
                        let refused = time_range(Some(&text), None, 0, 1).expect_err("refused here too");
                        prop_assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
                        prop_assert!(refused.public_message().starts_with("from: invalid time"));
                    }
                }
            }
        }

        /// `from`/`to`: either an interval with `from` before `to` or a 400.
        #[test]
        fn time_ranges_are_intervals_or_bad_requests(
            from in proptest::option::of(any_time_text()),
            to in proptest::option::of(any_time_text()),
            now_ms in any::<i64>(),
        ) {
            match time_range(from.as_deref(), to.as_deref(), now_ms, HOUR_MS) {
                Ok((from_ms, to_ms)) => prop_assert!(from_ms < to_ms),
                Err(error) => prop_assert_eq!(error.status(), StatusCode::BAD_REQUEST),
            }
        }

        /// `limit`: a whole number in range, read as itself, or a 400 saying what is allowed.
        #[test]
        fn limits_are_in_range_or_refused(text in prop_oneof!["\\PC{0,12}", "[+-]?[0-9]{1,21}"]) {
            match heartbeat_limit(Some(&text)) {
                Ok(limit) => {
                    prop_assert!((1..=MAX_HEARTBEAT_LIMIT).contains(&limit));
                    prop_assert_eq!(text.trim_start_matches('+').trim_start_matches('0'), limit.to_string());
                }
                Err(error) => {
                    prop_assert_eq!(error.status(), StatusCode::BAD_REQUEST);
                    prop_assert!(error.to_string().contains("from 1 to 10000"));
                }
            }
        }
    }
}
