//! One v1 row as a heartbeat: its time to UTC milliseconds, `ok`/`fail` to a health, and a
//! reason read from v1's message.

use crate::clock::parse_time_param;
use crate::heartbeat::{Health, Heartbeat, ProbeOutcome, Reason, TimeoutStage};

/// v1 wrote free text; these are the messages its probes produced (`timeout`, `RTSP not 200`,
/// `HTTP 404`, `error:[Errno 111] …`, `no frame`), mapped to the reason they stand for. v1 has
/// no error codes to decide from, so its own wording is all there is.
pub fn reason_from_v1_message(message: &str) -> Reason {
    let lower = message.to_ascii_lowercase();
    if let Some(code) = lower.strip_prefix("http ").and_then(|rest| rest.get(..3)) {
        return match code {
            "401" | "403" => Reason::Unauthorized,
            "404" => Reason::NotFound,
            _ => Reason::Protocol,
        };
    }
    if lower == "timeout" || lower.contains("timed out") {
        // v1 did not say at which stage; a camera that is off never lets the connection open.
        Reason::Timeout(TimeoutStage::Connect)
    } else if lower.starts_with("rtsp") {
        Reason::Protocol
    } else if lower == "no frame" {
        Reason::NoVideo
    } else if lower.contains("errno 111")
        || lower.contains("refused")
        || lower.contains("connect call failed")
    {
        Reason::Refused
    } else if [
        "errno -2",
        "errno -3",
        "errno -5",
        "errno 113",
        "errno 101",
        "name or service",
        "name resolution",
        "no route",
        "unreachable",
    ]
    .iter()
    .any(|needle| lower.contains(needle))
    {
        Reason::Unreachable
    } else {
        Reason::Other
    }
}

/// One v1 row as a heartbeat; `None` when its time or status cannot be read.
pub(super) fn heartbeat_from_row(
    stream_id: i64,
    ts: &str,
    status: &str,
    latency_ms: Option<i64>,
    message: Option<String>,
) -> Option<Heartbeat> {
    let ts_ms = parse_time_param(ts).ok()?;
    let message = message.unwrap_or_default();
    let latency_ms = latency_ms.and_then(|ms| u64::try_from(ms).ok());
    let outcome = match status {
        "ok" => ProbeOutcome {
            message,
            latency_ms,
            ..ProbeOutcome::up(0)
        },
        "fail" => ProbeOutcome {
            // v1's time to failure, kept as v1 recorded it.
            latency_ms,
            ..ProbeOutcome::down(reason_from_v1_message(&message), message)
        },
        _ => return None,
    };
    debug_assert!(matches!(outcome.health, Health::Up | Health::Down));
    // v1 did not record whether its NTP query had succeeded.
    Some(Heartbeat::new(stream_id, ts_ms, false, outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_messages_give_reasons() {
        assert_eq!(
            reason_from_v1_message("timeout"),
            Reason::Timeout(TimeoutStage::Connect)
        );
        assert_eq!(reason_from_v1_message("HTTP 404"), Reason::NotFound);
        assert_eq!(reason_from_v1_message("HTTP 401"), Reason::Unauthorized);
        assert_eq!(reason_from_v1_message("HTTP 500"), Reason::Protocol);
        assert_eq!(reason_from_v1_message("RTSP not 200"), Reason::Protocol);
        assert_eq!(reason_from_v1_message("no frame"), Reason::NoVideo);
        assert_eq!(
            reason_from_v1_message("error:[Errno 111] Connect call failed ('10.0.0.5', 554)"),
            Reason::Refused
        );
        assert_eq!(
            reason_from_v1_message("error:[Errno -2] Name or service not known"),
            Reason::Unreachable
        );
        assert_eq!(reason_from_v1_message("cv2err:boom"), Reason::Other);
    }

    #[test]
    fn rows_become_heartbeats_in_utc() {
        let up = heartbeat_from_row(
            7,
            "2025-01-01T10:00:00+05:30",
            "ok",
            Some(42),
            Some("RTSP 200".into()),
        )
        .expect("ok row");
        assert_eq!(up.ts_ms, 1_735_705_800_000);
        assert_eq!(up.outcome.health, Health::Up);
        assert_eq!(up.outcome.latency_ms, Some(42));
        assert_eq!(up.outcome.message, "RTSP 200");
        let down = heartbeat_from_row(
            7,
            "2025-01-01T04:30:00.250000+00:00",
            "fail",
            Some(3500),
            Some("timeout".into()),
        )
        .expect("fail row");
        assert_eq!(down.ts_ms, 1_735_705_800_250);
        assert_eq!(down.outcome.health, Health::Down);
        assert_eq!(down.outcome.reason, Some(Reason::Timeout(TimeoutStage::Connect)));
        assert!(heartbeat_from_row(7, "yesterday", "ok", None, None).is_none());
        assert!(heartbeat_from_row(7, "2025-01-01T04:30:00+00:00", "maybe", None, None).is_none());
    }
}
