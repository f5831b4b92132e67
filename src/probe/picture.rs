//! Sticky picture verdicts. Most probes end at their first decoded frame, which on an H.264
//! camera is usually corrupt (joined between keyframes): it proves the stream flows but shows no
//! picture. So the picture is checked periodically instead: when the stream's last clean picture
//! is older than `picture_check_minutes`, the probe waits for the next keyframe
//! ([`PictureMemory::check_due`]). What that clean picture showed (black, frozen) stands, with
//! the time of the picture, on every probe until the next clean picture says otherwise
//! ([`PictureMemory::absorb`]).
//!
//! The monitor keeps one per stream, in memory. After a restart nothing stands: the first two
//! probes of each stream are picture checks (frozen needs two pictures), so a black camera is
//! `degraded/black` again from the first heartbeat and a frozen one from the second.

use super::quality::PictureSummary;
use super::{Health, ProbeOutcome, Reason};
use std::time::{Duration, Instant};

/// What the monitor remembers of one stream's pictures between probes.
#[derive(Debug, Clone, Default)]
pub struct PictureMemory {
    last_clean: Option<(PictureSummary, Instant)>,
    /// Whether the last clean picture was compared with an earlier one.
    compared: bool,
    standing: Option<StandingVerdict>,
}

/// A picture verdict that holds until the next clean picture.
#[derive(Debug, Clone, PartialEq)]
pub struct StandingVerdict {
    pub reason: Reason,
    pub detail: String,
    /// When the picture it came from was taken (the probe's heartbeat time).
    pub picture_ts_ms: i64,
}

impl PictureMemory {
    /// Whether the next probe should wait for a clean picture: none yet, none compared yet, or
    /// the last one is `interval` old (0 = every probe).
    pub fn check_due(&self, interval: Duration, now: Instant) -> bool {
        match &self.last_clean {
            None => true,
            Some((_, taken)) => !self.compared || now.saturating_duration_since(*taken) >= interval,
        }
    }

    /// The last clean picture and when it was taken, for the frozen check.
    pub fn previous(&self) -> Option<(PictureSummary, Instant)> {
        self.last_clean.clone()
    }

    /// The verdict that stands now, if any.
    pub fn standing(&self) -> Option<&StandingVerdict> {
        self.standing.as_ref()
    }

    /// Takes a graded outcome (probed at `ts_ms`, `now`). With a clean picture, the picture is
    /// remembered and its verdict (black, frozen, or none) becomes the standing one. Without, a
    /// standing verdict applies to an outcome that got video: `degraded`, saying when the
    /// picture was taken.
    pub fn absorb(&mut self, outcome: &mut ProbeOutcome, ts_ms: i64, now: Instant) {
        if let Some(picture) = outcome.picture.take() {
            self.compared = self.last_clean.is_some();
            self.last_clean = Some((picture, now));
            self.standing = match outcome.reason {
                Some(reason @ (Reason::Black | Reason::Frozen)) => Some(StandingVerdict {
                    reason,
                    detail: outcome.message.clone(),
                    picture_ts_ms: ts_ms,
                }),
                _ => None,
            };
            return;
        }
        let got_video = outcome.health != Health::Down;
        if let (true, Some(standing)) = (got_video, &self.standing) {
            outcome.health = Health::Degraded;
            outcome.reason = Some(standing.reason);
            outcome.message = format!(
                "{} (picture of {})",
                standing.detail,
                crate::clock::iso_utc(standing.picture_ts_ms)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::quality::{summarize_luma, LumaPlane};

    fn picture() -> PictureSummary {
        let data: Vec<u8> = (0..64 * 48).map(|i| (i % 61) as u8).collect();
        summarize_luma(&LumaPlane {
            data: &data,
            width: 64,
            height: 48,
            stride: 64,
            pixel_stride: 1,
            offset: 0,
        })
        .expect("a picture")
    }

    fn up(picture: Option<PictureSummary>) -> ProbeOutcome {
        ProbeOutcome {
            picture,
            ..ProbeOutcome::up(80)
        }
    }

    const FIVE_MINUTES: Duration = Duration::from_secs(300);

    #[test]
    fn checks_are_due_first_twice_then_every_interval() {
        let start = Instant::now();
        let mut memory = PictureMemory::default();
        assert!(memory.check_due(FIVE_MINUTES, start));
        memory.absorb(&mut up(Some(picture())), 0, start);
        assert!(
            memory.check_due(FIVE_MINUTES, start),
            "frozen needs a second picture"
        );
        memory.absorb(&mut up(Some(picture())), 1_000, start);
        assert!(!memory.check_due(FIVE_MINUTES, start + Duration::from_secs(299)));
        assert!(memory.check_due(FIVE_MINUTES, start + FIVE_MINUTES));
        assert!(memory.check_due(Duration::ZERO, start), "0 checks every probe");
    }

    #[test]
    fn a_verdict_stands_until_the_next_clean_picture() {
        let start = Instant::now();
        let mut memory = PictureMemory::default();
        let mut black = ProbeOutcome {
            health: Health::Degraded,
            reason: Some(Reason::Black),
            message: "mean luma 16 of 255".into(),
            ..up(Some(picture()))
        };
        memory.absorb(&mut black, 1_764_511_200_000, start);
        // Probes without a clean picture carry it, with the picture's time.
        let mut ordinary = up(None);
        memory.absorb(&mut ordinary, 1_764_511_215_000, start);
        assert_eq!(ordinary.health, Health::Degraded);
        assert_eq!(ordinary.reason, Some(Reason::Black));
        assert_eq!(
            ordinary.message,
            "mean luma 16 of 255 (picture of 2025-11-30T14:00:00Z)"
        );
        // A probe that got no video is down, whatever the picture said.
        let mut down = ProbeOutcome::down(Reason::Refused, "refused");
        memory.absorb(&mut down, 1_764_511_230_000, start);
        assert_eq!((down.health, down.reason), (Health::Down, Some(Reason::Refused)));
        // The next clean picture decides again.
        memory.absorb(&mut up(Some(picture())), 1_764_511_245_000, start);
        assert_eq!(memory.standing(), None);
        let mut later = up(None);
        memory.absorb(&mut later, 1_764_511_260_000, start);
        assert_eq!((later.health, later.reason), (Health::Up, None));
    }
}
