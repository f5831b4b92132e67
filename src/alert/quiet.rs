//! Quiet time: a stream muted from the web (until a time, or until unmuted) or inside one of its
//! `maintenance:` windows. Its heartbeats are recorded and flagged with why they were quiet,
//! left out of uptime, and tell nothing (see [`super::confirm`] for what is told after it).

use serde::Serialize;

use crate::clock::HOUR_MS;

/// Why a heartbeat was quiet; stored as `heartbeats.quiet` (0 when it was not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Quiet {
    Maintenance,
    Muted,
}

impl Quiet {
    pub fn code(self) -> i64 {
        match self {
            Quiet::Maintenance => 1,
            Quiet::Muted => 2,
        }
    }

    pub fn from_code(code: i64) -> Option<Quiet> {
        match code {
            1 => Some(Quiet::Maintenance),
            2 => Some(Quiet::Muted),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Quiet::Maintenance => "maintenance",
            Quiet::Muted => "muted",
        }
    }
}

/// A stream muted from the web or the API, as stored in `stream_mutes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mute {
    pub stream_id: i64,
    /// The user or API token that muted it.
    pub muted_by: String,
    pub muted_ms: i64,
    /// `None`: until someone unmutes it.
    pub until_ms: Option<i64>,
}

impl Mute {
    /// Whether a heartbeat at `ts_ms` falls in the mute.
    pub fn covers(&self, ts_ms: i64) -> bool {
        ts_ms >= self.muted_ms && self.until_ms.is_none_or(|until| ts_ms < until)
    }
}

/// The mute lengths the pages offer; the API takes any number of minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MuteFor {
    OneHour,
    EightHours,
    UntilUnmuted,
}

impl MuteFor {
    /// `1h`, `8h` or `forever`, as the forms send it.
    pub fn parse(text: &str) -> Option<MuteFor> {
        match text {
            "1h" => Some(MuteFor::OneHour),
            "8h" => Some(MuteFor::EightHours),
            "forever" => Some(MuteFor::UntilUnmuted),
            _ => None,
        }
    }

    /// When a mute made at `now_ms` ends.
    pub fn until_ms(self, now_ms: i64) -> Option<i64> {
        match self {
            MuteFor::OneHour => Some(now_ms + HOUR_MS),
            MuteFor::EightHours => Some(now_ms + 8 * HOUR_MS),
            MuteFor::UntilUnmuted => None,
        }
    }
}

/// Longest mute the API takes with `minutes`: a year (longer is "until unmuted").
pub const MAX_MUTE_MINUTES: u64 = 366 * 24 * 60;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mute_covers_from_its_start_until_its_end() {
        let mute = Mute {
            stream_id: 1,
            muted_by: "ann".into(),
            muted_ms: 100,
            until_ms: Some(200),
        };
        assert!(!mute.covers(99));
        assert!(mute.covers(100));
        assert!(!mute.covers(200));
        let forever = Mute {
            until_ms: None,
            ..mute
        };
        assert!(forever.covers(i64::MAX));
        assert_eq!(
            MuteFor::parse("8h").and_then(|m| m.until_ms(0)),
            Some(8 * HOUR_MS)
        );
    }
}
