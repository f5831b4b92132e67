//! Sticky picture verdicts. Most probes end at their first decoded frame, which on an H.264
//! camera is usually corrupt (joined between keyframes): it proves the stream flows but shows no
//! picture. So the picture is checked periodically instead: when the stream's last clean picture
//! is older than `picture_check_minutes`, the probe waits for the next keyframe
//! ([`PictureMemory::check_due`]). What that clean picture showed (black, frozen) stands, with
//! the time of the picture, on every probe until the next clean picture says otherwise
//! ([`PictureMemory::absorb`]).
//!
//! A new black verdict is confirmed before it stands: the probe that first sees black reports
//! the picture as it was before (usually `up`), and the next probe is a picture check; only when
//! that clean picture is black too does `degraded/black` stand. A decoder may hand over a flat
//! black frame that no encoder sent (decoded before any keyframe, not flagged corrupt: seen about
//! once in 5,000 probes of a live H.264 stream); unconfirmed, it costs nothing, where it used to
//! stand for `picture_check_minutes`. A black camera is reported one heartbeat later for it.
//!
//! The monitor keeps one per stream, in memory. After a restart nothing stands: the first two
//! probes of each stream are picture checks (frozen needs two pictures, black a confirmation),
//! so a black or frozen camera is `degraded` again from the second heartbeat.

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
    /// The last clean picture was black where no black verdict stood: the next probe checks.
    black_unconfirmed: bool,
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
            Some((_, taken)) => {
                !self.compared || self.black_unconfirmed || now.saturating_duration_since(*taken) >= interval
            }
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
            let black = outcome.reason == Some(Reason::Black);
            let black_stands = self
                .standing
                .as_ref()
                .is_some_and(|standing| standing.reason == Reason::Black);
            if black && !black_stands && !self.black_unconfirmed {
                // First sighting: what stood before still stands until a check confirms it.
                self.black_unconfirmed = true;
                tracing::debug!(
                    "black picture, to be confirmed by the next probe: {}",
                    outcome.message
                );
                outcome.health = Health::Up;
                outcome.reason = None;
                outcome.message.clear();
                self.apply_standing(outcome);
                return;
            }
            self.black_unconfirmed = false;
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
        self.apply_standing(outcome);
    }

    /// A standing verdict applies to an outcome that got video: `degraded`, saying when the
    /// picture was taken.
    fn apply_standing(&self, outcome: &mut ProbeOutcome) {
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
        let black = || ProbeOutcome {
            health: Health::Degraded,
            reason: Some(Reason::Black),
            message: "mean luma 16 of 255".into(),
            ..up(Some(picture()))
        };
        // Black is confirmed by the next probe, a check, before it stands.
        let mut first = black();
        memory.absorb(&mut first, 1_764_511_185_000, start);
        assert_eq!((first.health, first.reason), (Health::Up, None));
        assert!(
            memory.check_due(FIVE_MINUTES, start),
            "the confirmation is a check"
        );
        let mut confirmed = black();
        memory.absorb(&mut confirmed, 1_764_511_200_000, start);
        assert_eq!(confirmed.reason, Some(Reason::Black));
        assert!(!memory.check_due(FIVE_MINUTES, start));
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

    #[test]
    fn a_black_frame_the_next_check_does_not_confirm_never_stands() {
        let start = Instant::now();
        let mut memory = PictureMemory::default();
        memory.absorb(&mut up(Some(picture())), 0, start);
        memory.absorb(&mut up(Some(picture())), 1_000, start);
        // An ordinary probe's first frame, not flagged corrupt, decoded flat black.
        let mut bogus = ProbeOutcome {
            health: Health::Degraded,
            reason: Some(Reason::Black),
            message: "mean luma 16 of 255, brightest cell 16, noise 0.0".into(),
            ..up(Some(picture()))
        };
        memory.absorb(&mut bogus, 2_000, start);
        assert_eq!((bogus.health, bogus.reason), (Health::Up, None), "{bogus:?}");
        assert!(memory.check_due(FIVE_MINUTES, start));
        // The check finds the real picture: nothing stands, checks are back to every 5 minutes.
        let mut check = up(Some(picture()));
        memory.absorb(&mut check, 3_000, start);
        assert_eq!((check.health, check.reason), (Health::Up, None));
        assert_eq!(memory.standing(), None);
        assert!(!memory.check_due(FIVE_MINUTES, start));
        // A frozen verdict that stood goes on standing through an unconfirmed black.
        let mut frozen = ProbeOutcome {
            health: Health::Degraded,
            reason: Some(Reason::Frozen),
            message: "identical picture".into(),
            ..up(Some(picture()))
        };
        memory.absorb(&mut frozen, 4_000, start);
        let mut bogus = ProbeOutcome {
            health: Health::Degraded,
            reason: Some(Reason::Black),
            message: "mean luma 16".into(),
            ..up(Some(picture()))
        };
        memory.absorb(&mut bogus, 5_000, start);
        assert_eq!(bogus.reason, Some(Reason::Frozen), "{bogus:?}");
    }
}
