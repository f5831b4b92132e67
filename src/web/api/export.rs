//! Exports: `GET /api/v1/heartbeats.csv`, `/api/v1/heartbeats.jsonl` and `/api/v1/outages.csv`
//! (`?stream=NAME&from=&to=`, every stream and all time by default), and v1's `GET /api/status`.
//!
//! An export is streamed: a blocking thread reads the store page by page and sends chunks of
//! text over a small bounded channel to the response body. Memory stays at a few chunks whatever
//! the range, a slow client slows the reader instead of piling rows up, and a client that goes
//! away ends the reader at its next chunk. Stream URLs are never written; messages are redacted
//! once more on the way out.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use warp::http::{HeaderValue, StatusCode};
use warp::reply::{Reply, Response};

use super::types::{ExportQuery, ExportedHeartbeat};
use super::{answer, error_response, failure};
use crate::clock::{iso_local, iso_utc, parse_time_param};
use crate::store::{Store, StoreError, EXPORT_PAGE_ROWS};
use crate::url::redact_text;
use crate::web::auth::Principal;
use crate::web::{WebError, WebState};

/// A chunk is sent once it holds this much text.
const CHUNK_BYTES: usize = 64 * 1024;
/// Chunks in flight between the reader and the client: the whole memory an export takes.
const CHANNEL_CHUNKS: usize = 4;
/// Exports running at once; each holds a blocking thread and a database connection.
const MAX_RUNNING_EXPORTS: usize = 4;

static RUNNING_EXPORTS: AtomicUsize = AtomicUsize::new(0);

/// What is exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Export {
    HeartbeatsCsv,
    HeartbeatsJsonLines,
    OutagesCsv,
}

impl Export {
    fn content_type(self) -> &'static str {
        match self {
            Export::HeartbeatsCsv | Export::OutagesCsv => "text/csv; charset=utf-8",
            Export::HeartbeatsJsonLines => "application/x-ndjson; charset=utf-8",
        }
    }

    fn file_name(self) -> &'static str {
        match self {
            Export::HeartbeatsCsv => "heartbeats.csv",
            Export::HeartbeatsJsonLines => "heartbeats.jsonl",
            Export::OutagesCsv => "outages.csv",
        }
    }

    fn header(self) -> &'static str {
        match self {
            Export::HeartbeatsCsv => {
                "stream,time_utc,time_local,ts_ms,health,reason,message,latency_ms,codec,width,height,fps,bitrate_kbps,ntp_synced\r\n"
            }
            Export::OutagesCsv => {
                "stream,start_utc,start_local,start_ms,end_utc,end_local,end_ms,duration_s,reason,message\r\n"
            }
            Export::HeartbeatsJsonLines => "",
        }
    }
}

/// One CSV field: quoted when it holds a comma, quote or line break; text that a spreadsheet
/// would run as a formula (`=`, `+`, `-`, `@` first) gets a leading `'`.
fn csv_text(out: &mut String, text: &str) {
    let formula = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = formula || text.contains([',', '"', '\n', '\r']);
    if quote {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    for c in text.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quote {
        out.push('"');
    }
}

fn csv_row(out: &mut String, fields: &[&dyn CsvField]) {
    for (index, field) in fields.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        field.write(out);
    }
    out.push_str("\r\n");
}

trait CsvField {
    fn write(&self, out: &mut String);
}

impl CsvField for &str {
    fn write(&self, out: &mut String) {
        csv_text(out, self);
    }
}

impl CsvField for String {
    fn write(&self, out: &mut String) {
        csv_text(out, self);
    }
}

impl<T: std::fmt::Display> CsvField for Option<T> {
    fn write(&self, out: &mut String) {
        if let Some(value) = self {
            out.push_str(&value.to_string());
        }
    }
}

impl CsvField for i64 {
    fn write(&self, out: &mut String) {
        out.push_str(&self.to_string());
    }
}

/// `from`/`to` of an export; absent means all of history / up to now and beyond.
fn export_range(query: &ExportQuery) -> Result<(i64, i64), WebError> {
    let parse = |key: &str, value: Option<&str>| -> Result<Option<i64>, WebError> {
        value
            .filter(|v| !v.trim().is_empty())
            .map(|v| parse_time_param(v).map_err(|e| WebError::BadRequest(format!("{key}: {e}"))))
            .transpose()
    };
    let from_ms = parse("from", query.from.as_deref())?.unwrap_or(i64::MIN);
    let to_ms = parse("to", query.to.as_deref())?.unwrap_or(i64::MAX);
    if from_ms >= to_ms {
        return Err(WebError::BadRequest("`from` must be before `to`".into()));
    }
    Ok((from_ms, to_ms))
}

/// Releases an export slot when the reader thread ends, however it ends.
struct Slot;

impl Drop for Slot {
    fn drop(&mut self) {
        RUNNING_EXPORTS.fetch_sub(1, Ordering::AcqRel);
    }
}

fn take_slot() -> Option<Slot> {
    RUNNING_EXPORTS
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |running| {
            (running < MAX_RUNNING_EXPORTS).then_some(running + 1)
        })
        .ok()
        .map(|_| Slot)
}

/// The reader's side of the channel: collects text and sends it in chunks.
struct Sink {
    sender: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buffer: String,
}

/// The client went away: stop reading.
struct Gone;

impl Sink {
    fn flush_if_full(&mut self) -> Result<(), Gone> {
        if self.buffer.len() >= CHUNK_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Gone> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            String::with_capacity(CHUNK_BYTES + 1024),
        ));
        self.sender.blocking_send(Ok(chunk)).map_err(|_| Gone)
    }

    fn fail(self, error: StoreError) {
        // The status line has gone out; all that is left is to cut the body short, which the
        // client sees as an incomplete transfer rather than a complete-looking file.
        tracing::error!("export stopped: {error}");
        let _ = self
            .sender
            .blocking_send(Err(std::io::Error::other("export stopped by a database error")));
    }
}

/// Writes the whole export into `sink`, page by page.
fn write_export(
    store: &Store,
    export: Export,
    streams: &[(i64, String)],
    (from_ms, to_ms): (i64, i64),
    tz: &time_tz::Tz,
    sink: &mut Sink,
) -> Result<Result<(), Gone>, StoreError> {
    sink.buffer.push_str(export.header());
    for (stream_id, name) in streams {
        let mut next_ms = from_ms;
        loop {
            let rows = match export {
                Export::OutagesCsv => {
                    let outages =
                        store.outages_page(*stream_id, from_ms, to_ms, next_ms, EXPORT_PAGE_ROWS)?;
                    for outage in &outages {
                        let end = outage.end_ms;
                        let duration_s = end.map(|end| (end - outage.start_ms) / 1000);
                        csv_row(
                            &mut sink.buffer,
                            &[
                                name,
                                &iso_utc(outage.start_ms),
                                &iso_local(outage.start_ms, tz),
                                &outage.start_ms,
                                &end.map(iso_utc),
                                &end.map(|ms| iso_local(ms, tz)),
                                &end,
                                &duration_s,
                                &outage.reason.map(|r| r.code()),
                                &redact_text(&outage.message),
                            ],
                        );
                    }
                    next_ms = outages.last().map_or(next_ms, |o| o.start_ms.saturating_add(1));
                    outages.len()
                }
                Export::HeartbeatsCsv | Export::HeartbeatsJsonLines => {
                    let beats = store.heartbeats_page(*stream_id, next_ms, to_ms, EXPORT_PAGE_ROWS)?;
                    for beat in &beats {
                        if export == Export::HeartbeatsJsonLines {
                            let line = ExportedHeartbeat::of(name, beat, tz);
                            // A struct of strings and numbers always serialises.
                            if let Ok(text) = serde_json::to_string(&line) {
                                sink.buffer.push_str(&text);
                                sink.buffer.push('\n');
                            }
                        } else {
                            let outcome = &beat.outcome;
                            csv_row(
                                &mut sink.buffer,
                                &[
                                    name,
                                    &iso_utc(beat.ts_ms),
                                    &iso_local(beat.ts_ms, tz),
                                    &beat.ts_ms,
                                    &outcome.health.as_str(),
                                    &outcome.reason.map(|r| r.code()),
                                    &redact_text(&outcome.message),
                                    &outcome.latency_ms,
                                    &outcome.codec.clone().unwrap_or_default(),
                                    &outcome.width,
                                    &outcome.height,
                                    &outcome.fps,
                                    &outcome.bitrate_kbps,
                                    &Some(outcome_ntp(beat.ntp_synced)),
                                ],
                            );
                        }
                    }
                    next_ms = beats.last().map_or(next_ms, |b| b.ts_ms.saturating_add(1));
                    beats.len()
                }
            };
            if let Err(gone) = sink.flush_if_full() {
                return Ok(Err(gone));
            }
            if rows < EXPORT_PAGE_ROWS {
                break;
            }
        }
    }
    Ok(sink.flush())
}

fn outcome_ntp(synced: bool) -> &'static str {
    if synced {
        "true"
    } else {
        "false"
    }
}

/// `GET /api/v1/heartbeats.csv|.jsonl`, `GET /api/v1/outages.csv`.
pub async fn export(
    export: Export,
    _principal: Principal,
    state: Arc<WebState>,
    query: ExportQuery,
) -> Response {
    let range = match export_range(&query) {
        Ok(range) => range,
        Err(error) => return failure(error),
    };
    let only = query.stream.filter(|name| !name.is_empty());
    let lookup = only.clone();
    let streams = match state
        .read(move |store| Ok(store.export_streams(lookup.as_deref())?))
        .await
    {
        Ok(streams) => streams,
        Err(error) => return failure(error),
    };
    if let (Some(name), true) = (&only, streams.is_empty()) {
        return failure(WebError::NotFound(format!("no stream named {name:?}")));
    }
    let Some(slot) = take_slot() else {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many exports are running; try again in a minute",
        );
    };
    let tz = state.config().timezone;
    let db_path = state.db_path().to_path_buf();
    let (sender, mut receiver) = tokio::sync::mpsc::channel(CHANNEL_CHUNKS);
    let reader = move || {
        let _slot = slot;
        let mut sink = Sink {
            sender,
            buffer: String::with_capacity(CHUNK_BYTES + 1024),
        };
        // Its own connection: an export may outlast many page requests, and must not hold a
        // pooled one.
        let result = Store::open_read_only(&db_path)
            .and_then(|store| write_export(&store, export, &streams, range, tz, &mut sink));
        match result {
            Ok(Ok(())) => {}
            Ok(Err(Gone)) => tracing::debug!("export ended early: the client went away"),
            Err(error) => sink.fail(error),
        }
    };
    if let Err(error) = std::thread::Builder::new().name("sp-export".into()).spawn(reader) {
        return failure(WebError::Internal(format!("cannot start the export: {error}")));
    }
    let body = futures::stream::poll_fn(move |cx| receiver.poll_recv(cx));
    let mut response = warp::reply::stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static(export.content_type()));
    let disposition = format!("attachment; filename=\"{}\"", export.file_name());
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert("content-disposition", value);
    }
    response
}

/// `GET /api/status`: v1's status answer, for v1 scripts and MQTT bridges that read it.
pub async fn v1_status(_principal: Principal, state: Arc<WebState>) -> Response {
    answer(
        state
            .fleet(false)
            .await
            .map(|(config, streams)| crate::fleet::v1_status(&config, &streams)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        let mut out = String::new();
        csv_row(
            &mut out,
            &[
                &"plain",
                &"a,b",
                &"say \"hi\"",
                &"two\nlines",
                &"=1+1",
                &Some(5),
                &None::<i64>,
            ],
        );
        assert_eq!(
            out,
            "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\"'=1+1\",5,\r\n"
        );
    }

    #[test]
    fn ranges_default_to_everything() {
        let all = export_range(&ExportQuery::default()).expect("range");
        assert_eq!(all, (i64::MIN, i64::MAX));
        let query = ExportQuery {
            from: Some("1000".into()),
            to: Some("1000".into()),
            ..ExportQuery::default()
        };
        assert!(export_range(&query).is_err());
    }
}
