//! The camera clock check: what a stream's `onvif:` setting says, when the monitor reads the
//! camera's clock (every `max(heartbeat, 60 s)`, the first time with the first probe), the
//! offset's wording, and its verdict: an up probe of a camera whose clock is off by more than
//! `max_clock_skew` is `degraded` (reason `clock_skew`); a down probe stays down, and a clock
//! that cannot be read changes nothing (the stream page says why).

use super::client::{ClockReading, Credentials, Device, OnvifError};
use crate::heartbeat::{Health, ProbeOutcome, Reason};
use std::time::{Duration, Instant};

/// Default `max_clock_skew`.
pub const DEFAULT_MAX_CLOCK_SKEW: Duration = Duration::from_secs(60);
/// The clock is read at most this often, however short the heartbeat.
pub const MIN_READ_INTERVAL: Duration = Duration::from_secs(60);
/// The longest a clock reading may take (shorter when the probe timeout is).
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// A failing clock read is logged at most this often per stream.
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(600);
/// ONVIF's device service path, where GetSystemDateAndTime is answered.
pub const DEVICE_SERVICE_PATH: &str = "/onvif/device_service";

/// A stream's `onvif:` setting, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockCheck {
    pub host: String,
    pub port: u16,
    pub credentials: Option<Credentials>,
    pub max_skew: Duration,
}

impl ClockCheck {
    pub fn device_url(&self) -> String {
        let host = if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("http://{host}:{}{DEVICE_SERVICE_PATH}", self.port)
    }
}

/// `4 min 12 s`, `1 h 3 min 0 s`, `12 s`: an offset's size, to the second.
pub fn offset_size(offset_ms: i64) -> String {
    let seconds = (offset_ms.unsigned_abs() + 500) / 1000;
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min {} s", seconds / 60, seconds % 60),
        _ => format!(
            "{} h {} min {} s",
            seconds / 3600,
            seconds % 3600 / 60,
            seconds % 60
        ),
    }
}

/// `+5 min 0 s ahead`, `-12 s behind`, `in step`: for the stream page.
pub fn describe_offset(offset_ms: i64) -> String {
    let size = offset_size(offset_ms);
    if size == "0 s" {
        "in step".to_string()
    } else if offset_ms > 0 {
        format!("+{size} ahead")
    } else {
        format!("-{size} behind")
    }
}

/// The degraded heartbeat's message.
pub fn skew_message(offset_ms: i64) -> String {
    let direction = if offset_ms > 0 { "ahead" } else { "behind" };
    format!("camera clock off by {} ({direction})", offset_size(offset_ms))
}

/// Turns an up outcome degraded when `offset_ms` is past `max_skew`. Picture verdicts and down
/// outcomes keep their own reason.
pub fn apply_skew(outcome: &mut ProbeOutcome, offset_ms: i64, max_skew: Duration) {
    if outcome.health != Health::Up || offset_ms.unsigned_abs() as u128 <= max_skew.as_millis() {
        return;
    }
    outcome.health = Health::Degraded;
    outcome.reason = Some(Reason::ClockSkew);
    outcome.message = skew_message(offset_ms);
}

/// What one clock read found: the offset (camera minus us, ms) or why it could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockResult {
    pub checked_at_ms: i64,
    pub offset: Result<i64, String>,
}

/// One stream's camera clock, kept by its monitor task.
#[derive(Debug)]
pub struct ClockWatch {
    check: ClockCheck,
    every: Duration,
    timeout: Duration,
    next_due: Option<Instant>,
    last_offset_ms: Option<i64>,
    last_error_logged: Option<Instant>,
}

impl ClockWatch {
    pub fn new(check: ClockCheck, heartbeat: Duration, probe_timeout: Duration) -> ClockWatch {
        ClockWatch {
            check,
            every: heartbeat.max(MIN_READ_INTERVAL),
            timeout: probe_timeout.min(READ_TIMEOUT),
            next_due: None,
            last_offset_ms: None,
            last_error_logged: None,
        }
    }

    pub fn due(&self, now: Instant) -> bool {
        self.next_due.is_none_or(|due| now >= due)
    }

    /// Reads the clock when due (`now_ms`: our NTP-corrected time), `None` when not due.
    pub async fn read_if_due(&mut self, stream: &str, now_ms: impl Fn() -> i64) -> Option<ClockResult> {
        if !self.due(Instant::now()) {
            return None;
        }
        self.next_due = Some(Instant::now() + self.every);
        let result = self.read(&now_ms).await;
        let checked_at_ms = now_ms();
        match result {
            Ok(reading) => {
                let offset_ms = reading.offset_ms();
                self.last_offset_ms = Some(offset_ms);
                Some(ClockResult {
                    checked_at_ms,
                    offset: Ok(offset_ms),
                })
            }
            Err(error) => {
                self.last_offset_ms = None;
                let text = crate::url::redact_text(&error.to_string());
                let quiet = self
                    .last_error_logged
                    .is_some_and(|at| at.elapsed() < ERROR_LOG_INTERVAL);
                if !quiet {
                    self.last_error_logged = Some(Instant::now());
                    tracing::warn!("{stream}: camera clock not readable: {text}");
                }
                Some(ClockResult {
                    checked_at_ms,
                    offset: Err(text),
                })
            }
        }
    }

    async fn read(&self, now_ms: &impl Fn() -> i64) -> Result<ClockReading, OnvifError> {
        let device = Device::new(
            &self.check.device_url(),
            self.check.credentials.clone(),
            self.timeout,
        )?;
        device.clock(now_ms).await
    }

    /// Applies the last good reading to `outcome`.
    pub fn apply(&self, outcome: &mut ProbeOutcome) {
        if let Some(offset_ms) = self.last_offset_ms {
            apply_skew(outcome, offset_ms, self.check.max_skew);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wording() {
        assert_eq!(offset_size(252_000), "4 min 12 s");
        assert_eq!(describe_offset(300_000), "+5 min 0 s ahead");
        assert_eq!(describe_offset(-12_400), "-12 s behind");
        assert_eq!(describe_offset(300), "in step");
        assert_eq!(offset_size(3_780_000), "1 h 3 min 0 s");
        assert_eq!(skew_message(-252_000), "camera clock off by 4 min 12 s (behind)");
        assert_eq!(offset_size(i64::MIN), "2562047788015 h 12 min 56 s");
    }

    #[test]
    fn only_up_probes_turn_degraded() {
        let mut up = ProbeOutcome::up(10);
        apply_skew(&mut up, 61_000, DEFAULT_MAX_CLOCK_SKEW);
        assert_eq!(
            (up.health, up.reason),
            (Health::Degraded, Some(Reason::ClockSkew))
        );
        assert_eq!(up.message, "camera clock off by 1 min 1 s (ahead)");
        let mut fine = ProbeOutcome::up(10);
        apply_skew(&mut fine, -60_000, DEFAULT_MAX_CLOCK_SKEW);
        assert_eq!(fine.health, Health::Up);
        let mut down = ProbeOutcome::down(Reason::Refused, "x");
        apply_skew(&mut down, 600_000, DEFAULT_MAX_CLOCK_SKEW);
        assert_eq!((down.health, down.reason), (Health::Down, Some(Reason::Refused)));
    }

    #[test]
    fn reads_at_most_every_minute() {
        let check = ClockCheck {
            host: "::1".into(),
            port: 80,
            credentials: None,
            max_skew: DEFAULT_MAX_CLOCK_SKEW,
        };
        assert_eq!(check.device_url(), "http://[::1]:80/onvif/device_service");
        let watch = ClockWatch::new(check, Duration::from_secs(5), Duration::from_secs(10));
        assert_eq!(watch.every, MIN_READ_INTERVAL);
        assert!(watch.due(Instant::now()));
    }
}
