//! The API's contract: every request's query and every answer as a typed struct.
//!
//! Answers derive `Serialize` to be sent and `Deserialize` (with `deny_unknown_fields`) so the
//! examples in `docs/api.md` are checked against them by a test: a field added here and not
//! there, or documented and gone, fails it. Times come twice, as RFC 3339 UTC text and as
//! milliseconds since the epoch (`*_ms`).

use serde::{Deserialize, Serialize};

use crate::alert::quiet::Mute;
use crate::clock::iso_utc;
use crate::fleet::{self, State, StreamSummary};
use crate::heartbeat::{Health, Heartbeat};
use crate::store::Outage;
use crate::url::redact_text;
use crate::web::store_health::HealthzStore;

/// `?from=&to=`: RFC 3339 text or epoch milliseconds; empty means "not given".
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RangeQuery {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// `?from=&to=&limit=` of the heartbeats endpoint. `limit` stays text until checked, so a bad
/// one is answered with what a good one looks like.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HeartbeatsQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<String>,
}

/// `?stream=&from=&to=` of the exports: one stream (by name) or all, any range (default: all
/// of it). Times as in [`RangeQuery`].
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ExportQuery {
    pub stream: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// One line of `GET /api/v1/heartbeats.jsonl`: a heartbeat with its stream's name, its time in
/// UTC and in the configured timezone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedHeartbeat {
    pub stream: String,
    pub ts: String,
    pub ts_local: String,
    pub ts_ms: i64,
    pub health: Health,
    pub latency_ms: Option<u64>,
    pub reason: Option<String>,
    pub message: String,
    pub codec: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fps: Option<f64>,
    pub bitrate_kbps: Option<u64>,
    pub ntp_synced: bool,
}

impl ExportedHeartbeat {
    pub fn of(stream: &str, heartbeat: &Heartbeat, tz: &time_tz::Tz) -> ExportedHeartbeat {
        let outcome = &heartbeat.outcome;
        ExportedHeartbeat {
            stream: stream.to_string(),
            ts: iso_utc(heartbeat.ts_ms),
            ts_local: crate::clock::iso_local(heartbeat.ts_ms, tz),
            ts_ms: heartbeat.ts_ms,
            health: outcome.health,
            latency_ms: outcome.latency_ms,
            reason: outcome.reason.map(|r| r.code().to_string()),
            message: redact_text(&outcome.message),
            codec: outcome.codec.clone(),
            width: outcome.width,
            height: outcome.height,
            fps: outcome.fps,
            bitrate_kbps: outcome.bitrate_kbps,
            ntp_synced: heartbeat.ntp_synced,
        }
    }
}

/// `GET /api/status`: v1's answer (also what `mqtt.topic` carries), defined with the fleet view.
pub use crate::fleet::{V1Status, V1StreamStatus};

/// `GET /api/v1/streams`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamList {
    pub generated_at: String,
    pub generated_at_ms: i64,
    pub summary: StateCounts,
    pub streams: Vec<StreamAnswer>,
}

/// How many configured streams are in each state: the fleet view's own counts.
pub type StateCounts = fleet::Counts;

/// One stream: in the list, and `GET /api/v1/streams/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamAnswer {
    pub name: String,
    /// The camera URL with its password masked.
    pub url: Option<String>,
    pub enabled: bool,
    pub pipeline: String,
    pub heartbeat_seconds: i64,
    pub state: State,
    /// Deprecated alias of `state` (same value), kept for one release.
    pub health: State,
    pub last_probe_health: Option<Health>,
    pub since: Option<String>,
    pub since_ms: Option<i64>,
    pub last_heartbeat: Option<String>,
    pub last_heartbeat_ms: Option<i64>,
    pub last_up: Option<String>,
    pub last_up_ms: Option<i64>,
    pub latency_ms: Option<u64>,
    pub reason: Option<String>,
    pub reason_text: Option<String>,
    pub message: String,
    pub codec: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Share of heartbeats that delivered video (up or degraded).
    pub uptime_24h: Option<f64>,
    pub uptime_7d: Option<f64>,
    /// Share of heartbeats that were plainly up.
    pub healthy_24h: Option<f64>,
    pub healthy_7d: Option<f64>,
    /// A change the latest probes show but not confirmed yet (`alerts.down_after` ...).
    #[serde(default)]
    pub confirming: Option<fleet::Confirming>,
    /// Share of all heartbeats that were muted or in maintenance (left out of the uptimes).
    #[serde(default)]
    pub quiet_24h: Option<f64>,
    #[serde(default)]
    pub quiet_7d: Option<f64>,
    /// The mute in force, if any.
    #[serde(default)]
    pub mute: Option<MuteInfo>,
    /// Inside one of its `maintenance:` windows now.
    #[serde(default)]
    pub in_maintenance: bool,
    /// The last picture the monitor kept from its probes (`null`: none yet).
    #[serde(default)]
    pub picture: Option<PictureAnswer>,
    /// The picture behind the last picture verdict (black, frozen, …), whatever the state now.
    #[serde(default)]
    pub verdict_picture: Option<PictureAnswer>,
    /// `onvif:` streams: the camera's clock minus StreamPulse's NTP-corrected time, in seconds
    /// (positive: ahead), at the last reading; `null` when not read yet or not readable.
    #[serde(default)]
    pub clock_offset_seconds: Option<f64>,
    /// When the camera's clock was last read (`null`: never, or no `onvif:`).
    #[serde(default)]
    pub clock_checked_at: Option<String>,
    #[serde(default)]
    pub clock_checked_at_ms: Option<i64>,
    /// Why the last reading failed (`null` when it worked).
    #[serde(default)]
    pub clock_error: Option<String>,
    /// What the monitor's probes learned about the camera (`null`: nothing yet).
    #[serde(default)]
    pub learned: Option<LearnedAnswer>,
}

/// The template detected for an `http(s)://` stream without `pipeline:`, the RTSP transport and
/// control form the camera needs, as learned by the monitor's probes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearnedAnswer {
    pub template: Option<String>,
    pub template_evidence: Option<String>,
    /// `tcp` (learned: no UDP media arrived) or `auto`.
    pub transport: String,
    /// `appended` (as ffmpeg does) or `as_resolved`.
    pub control_form: String,
    /// Each fact in words, as the stream page shows them.
    pub notes: Vec<String>,
    pub updated: String,
    pub updated_ms: i64,
}

impl LearnedAnswer {
    pub fn of(row: &crate::store::learned::LearnedRow) -> LearnedAnswer {
        LearnedAnswer {
            template: row.facts.template.clone(),
            template_evidence: row.facts.template_evidence.clone(),
            transport: row.facts.transport.clone(),
            control_form: row.facts.control_form.clone(),
            notes: row.facts.notes(),
            updated: iso_utc(row.updated_ms),
            updated_ms: row.updated_ms,
        }
    }
}

/// A kept picture: where to fetch it (with a session or token), when it was taken, its size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PictureAnswer {
    pub url: String,
    pub taken: String,
    pub taken_ms: i64,
    pub width: u32,
    pub height: u32,
    /// For a verdict picture: the verdict's reason code.
    #[serde(default)]
    pub reason: Option<String>,
}

impl PictureAnswer {
    fn of(info: crate::web::pictures::PictureInfo) -> PictureAnswer {
        PictureAnswer {
            url: info.url,
            taken: iso_utc(info.ts_ms),
            taken_ms: info.ts_ms,
            width: info.width,
            height: info.height,
            reason: info.reason,
        }
    }
}

/// A mute in force: who made it, since and until when (`until` null: until unmuted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MuteInfo {
    pub by: String,
    pub since: String,
    pub since_ms: i64,
    pub until: Option<String>,
    pub until_ms: Option<i64>,
}

impl MuteInfo {
    pub fn of(mute: &Mute) -> MuteInfo {
        MuteInfo {
            by: mute.muted_by.clone(),
            since: iso_utc(mute.muted_ms),
            since_ms: mute.muted_ms,
            until: mute.until_ms.map(iso_utc),
            until_ms: mute.until_ms,
        }
    }
}

/// `POST /api/v1/streams/{name}/mute?minutes=`: without `minutes`, until unmuted.
#[derive(Debug, Default, Deserialize)]
pub struct MuteQuery {
    pub minutes: Option<String>,
}

/// The answer to `POST …/mute` and `POST …/unmute`: the stream's mute now (`null`: not muted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MuteAnswer {
    pub stream: String,
    pub mute: Option<MuteInfo>,
}

impl StreamAnswer {
    pub fn of(summary: &StreamSummary) -> StreamAnswer {
        let status = summary.status.as_ref();
        let since_ms = status.and_then(|s| s.since_ms);
        let last_heartbeat_ms = status.and_then(|s| s.last_ts_ms);
        let last_up_ms = status.and_then(|s| s.last_up_ms);
        let reason = status.and_then(|s| s.reason);
        StreamAnswer {
            name: summary.name.clone(),
            url: summary.url.clone(),
            enabled: summary.enabled,
            pipeline: summary.pipeline.clone(),
            heartbeat_seconds: summary.heartbeat_ms / 1000,
            state: summary.state,
            health: summary.state,
            last_probe_health: status.and_then(|s| s.health),
            since: since_ms.map(iso_utc),
            since_ms,
            last_heartbeat: last_heartbeat_ms.map(iso_utc),
            last_heartbeat_ms,
            last_up: last_up_ms.map(iso_utc),
            last_up_ms,
            latency_ms: status.and_then(|s| s.last_latency_ms),
            reason: reason.map(|r| r.code().to_string()),
            reason_text: reason.map(|r| r.describe().to_string()),
            message: summary.message.clone(),
            codec: status.and_then(|s| s.codec.clone()),
            width: status.and_then(|s| s.width),
            height: status.and_then(|s| s.height),
            uptime_24h: summary.last_24h.uptime,
            uptime_7d: summary.last_7d.uptime,
            healthy_24h: summary.last_24h.healthy,
            healthy_7d: summary.last_7d.healthy,
            confirming: summary.confirming,
            quiet_24h: summary.last_24h.quiet,
            quiet_7d: summary.last_7d.quiet,
            mute: summary.mute.as_ref().map(MuteInfo::of),
            in_maintenance: summary.in_maintenance,
            picture: None,
            verdict_picture: None,
            learned: summary.learned.as_ref().map(LearnedAnswer::of),
            clock_offset_seconds: summary
                .camera_clock
                .as_ref()
                .and_then(|c| c.offset_ms)
                .map(|ms| ms as f64 / 1000.0),
            clock_checked_at: summary.camera_clock.as_ref().map(|c| iso_utc(c.checked_at_ms)),
            clock_checked_at_ms: summary.camera_clock.as_ref().map(|c| c.checked_at_ms),
            clock_error: summary.camera_clock.as_ref().and_then(|c| c.error.clone()),
        }
    }

    /// Fills in the kept pictures (reads two small files: call it off the async workers).
    pub fn with_pictures(
        mut self,
        dir: &crate::pictures::PictureDir,
        stream_id: Option<i64>,
    ) -> StreamAnswer {
        use crate::pictures::PictureKind;
        use crate::web::pictures::info;
        self.picture = info(dir, stream_id, &self.name, PictureKind::Last).map(PictureAnswer::of);
        self.verdict_picture = info(dir, stream_id, &self.name, PictureKind::Verdict).map(PictureAnswer::of);
        self
    }
}

/// The order of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Order {
    #[serde(rename = "newest first")]
    NewestFirst,
}

/// `GET /api/v1/streams/{name}/heartbeats`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatList {
    pub stream: String,
    pub from: String,
    pub from_ms: i64,
    pub to: String,
    pub to_ms: i64,
    pub limit: usize,
    pub order: Order,
    pub heartbeats: Vec<HeartbeatAnswer>,
}

/// One raw heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatAnswer {
    pub ts: String,
    pub ts_ms: i64,
    pub health: Health,
    pub latency_ms: Option<u64>,
    pub reason: Option<String>,
    pub reason_text: Option<String>,
    pub message: String,
    pub codec: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub ntp_synced: bool,
}

impl HeartbeatAnswer {
    pub fn of(heartbeat: &Heartbeat) -> HeartbeatAnswer {
        let outcome = &heartbeat.outcome;
        HeartbeatAnswer {
            ts: iso_utc(heartbeat.ts_ms),
            ts_ms: heartbeat.ts_ms,
            health: outcome.health,
            latency_ms: outcome.latency_ms,
            reason: outcome.reason.map(|r| r.code().to_string()),
            reason_text: outcome.reason.map(|r| r.describe().to_string()),
            message: redact_text(&outcome.message),
            codec: outcome.codec.clone(),
            width: outcome.width,
            height: outcome.height,
            ntp_synced: heartbeat.ntp_synced,
        }
    }
}

/// `GET /api/v1/streams/{name}/outages`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutageList {
    pub stream: String,
    pub from: String,
    pub from_ms: i64,
    pub to: String,
    pub to_ms: i64,
    pub outages: Vec<OutageAnswer>,
}

/// One period during which a stream was down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutageAnswer {
    pub start: String,
    pub start_ms: i64,
    pub end: Option<String>,
    pub end_ms: Option<i64>,
    pub ongoing: bool,
    pub duration_ms: i64,
    pub reason: Option<String>,
    pub reason_text: Option<String>,
    pub message: String,
}

impl OutageAnswer {
    /// An ongoing outage lasts until `now_ms`.
    pub fn of(outage: &Outage, now_ms: i64) -> OutageAnswer {
        OutageAnswer {
            start: iso_utc(outage.start_ms),
            start_ms: outage.start_ms,
            end: outage.end_ms.map(iso_utc),
            end_ms: outage.end_ms,
            ongoing: outage.end_ms.is_none(),
            duration_ms: outage.end_ms.unwrap_or(now_ms) - outage.start_ms,
            reason: outage.reason.map(|r| r.code().to_string()),
            reason_text: outage.reason.map(|r| r.describe().to_string()),
            message: redact_text(&outage.message),
        }
    }
}

/// `status` of `/healthz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceStatus {
    Ok,
    /// The monitor reports a full disk.
    Degraded,
}

/// `GET /healthz`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Healthz {
    pub status: ServiceStatus,
    pub config_valid: bool,
    pub version: String,
    pub store: HealthzStore,
}

/// Every error: `{"error": {"status": 404, "message": "…"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorAnswer {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetail {
    /// The HTTP status again.
    pub status: u16,
    pub message: String,
    /// Why a snapshot failed: the probe's reason code and its words (snapshots only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_text: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;
    use serde_json::Value;

    /// Every ```json block of the markdown with the heading it stands under.
    fn json_examples(markdown: &str) -> Vec<(String, String)> {
        let mut examples = Vec::new();
        let mut heading = String::new();
        let mut block: Option<String> = None;
        for line in markdown.lines() {
            match block.as_mut() {
                Some(text) if line.trim_start().starts_with("```") => {
                    examples.push((heading.clone(), std::mem::take(text)));
                    block = None;
                }
                Some(text) => {
                    text.push_str(line);
                    text.push('\n');
                }
                None if line.trim_start().starts_with("```json") => block = Some(String::new()),
                None if line.starts_with('#') => heading = line.trim_start_matches('#').trim().to_string(),
                None => {}
            }
        }
        examples
    }

    /// Parses `example` as `T` and writes it back: the same JSON must come out, so a field the
    /// type lacks, or one the example lacks, fails.
    fn check<T: Serialize + DeserializeOwned>(heading: &str, example: &str) {
        let value: Value = serde_json::from_str(example)
            .unwrap_or_else(|e| panic!("the example under {heading:?} is not JSON ({e}):\n{example}"));
        let typed: T = serde_json::from_value(value.clone()).unwrap_or_else(|e| {
            panic!(
                "the example under {heading:?} does not match {} ({e}):\n{example}",
                std::any::type_name::<T>()
            )
        });
        let again = serde_json::to_value(&typed).unwrap_or_else(|e| panic!("{heading}: {e}"));
        assert_eq!(
            again, value,
            "the example under {heading:?} leaves out fields the API sends"
        );
    }

    #[test]
    fn every_json_example_in_the_api_doc_is_what_the_api_sends() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.md");
        let markdown = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let examples = json_examples(&markdown);
        for (heading, example) in &examples {
            let endpoint = heading.trim_matches('`').split('?').next().unwrap_or("");
            match endpoint {
                "GET /api/v1/streams" => check::<StreamList>(heading, example),
                "GET /api/v1/streams/{name}" => check::<StreamAnswer>(heading, example),
                "GET /api/v1/streams/{name}/heartbeats" => check::<HeartbeatList>(heading, example),
                "GET /api/v1/streams/{name}/outages" => check::<OutageList>(heading, example),
                "GET /api/v1/streams/{name}/snapshot.jpg" | "Conventions" => {
                    check::<ErrorAnswer>(heading, example)
                }
                "GET /healthz" => check::<Healthz>(heading, example),
                "GET /api/v1/heartbeats.csv" | "GET /api/v1/heartbeats.jsonl" => {
                    check::<ExportedHeartbeat>(heading, example)
                }
                "GET /api/status" => check::<V1Status>(heading, example),
                "POST /api/v1/streams/{name}/mute" | "POST /api/v1/streams/{name}/unmute" => {
                    check::<MuteAnswer>(heading, example)
                }
                _ => panic!("docs/api.md has a JSON example under {heading:?}, which no test knows"),
            }
        }
        assert!(examples.len() >= 6, "only {} JSON examples found", examples.len());
    }

    #[test]
    fn states_are_sent_as_their_names() {
        for state in State::ALL {
            assert_eq!(serde_json::to_value(state).expect("json"), state.as_str());
        }
    }
}
