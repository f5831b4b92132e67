//! Keeps each stream's last picture from its own probes (no extra connection to the camera):
//! after a probe whose judged frame was clean and raw, [`StreamPictures::plan`] decides whether
//! it is worth a write, and [`keep`] encodes and writes it off the async workers. The heartbeat
//! is always queued first.
//!
//! Worth a write, per stream: the first picture; then at most one per `pictures.every_seconds`,
//! and only when the picture changed by the frozen rule (`quality::same_picture`: sensor noise
//! alone makes a live picture differ, so a frozen camera's does not). A picture that does not
//! change gets only its time refreshed (no encoding), every [`UNCHANGED_REFRESH_FACTOR`] ×
//! `every_seconds`, so its age shows the camera is still seen. A picture verdict (black, frozen,
//! …) keeps the picture that caused it, when that picture differs from the one kept for the last
//! verdict, rate-limited the same way.

use super::Shared;
use crate::config::{PicturesConfig, QualityConfig};
use crate::heartbeat::{Health, Reason};
use crate::pictures::{PictureDir, PictureKind, PictureMeta};
use crate::probe::jpeg;
use crate::probe::quality::{same_picture, PictureSummary};
use gstreamer as gst;
use std::time::{Duration, Instant};

/// An unchanged picture gets its time refreshed after this many `every_seconds`.
const UNCHANGED_REFRESH_FACTOR: u32 = 10;

/// The running `pictures:` settings and where they go; replaced on a config reload.
#[derive(Debug, Clone)]
pub(super) struct PictureSettings {
    pub config: PicturesConfig,
    pub dir: PictureDir,
}

/// What the stream task remembers of the pictures it wrote.
#[derive(Debug, Default)]
pub(super) struct StreamPictures {
    last: Option<Kept>,
    verdict: Option<Kept>,
}

#[derive(Debug)]
struct Kept {
    summary: PictureSummary,
    written: Instant,
    size: (u32, u32),
    reason: Option<Reason>,
}

/// What to do with one kind of picture after a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// Encode the frame and write picture and metadata.
    Encode,
    /// The same picture: write a newer time only.
    Refresh { width: u32, height: u32 },
}

/// What a probe's picture is worth.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Plan {
    pub last: Option<Action>,
    pub verdict: Option<Action>,
}

/// The probe as reported (after standing verdicts), and the reason the judged picture itself
/// got, for "did this picture cause the verdict?".
#[derive(Debug, Clone)]
pub(super) struct Reported {
    pub health: Health,
    pub reason: Option<Reason>,
    pub message: String,
    pub own_reason: Option<Reason>,
}

impl StreamPictures {
    /// Decides what to write for a clean picture `judged` and notes it as written (a failed
    /// write is logged, not retried before the next interval).
    pub(super) fn plan(
        &mut self,
        judged: &PictureSummary,
        reported: &Reported,
        every: Duration,
        quality: &QualityConfig,
        now: Instant,
    ) -> Plan {
        let mut plan = Plan::default();
        let due = |kept: &Kept| now.saturating_duration_since(kept.written) >= every;
        match &mut self.last {
            None => plan.last = Some(Action::Encode),
            Some(kept) if !due(kept) => {}
            Some(kept) if !same_picture(&kept.summary, judged, quality) => plan.last = Some(Action::Encode),
            Some(kept) => {
                if now.saturating_duration_since(kept.written) >= every * UNCHANGED_REFRESH_FACTOR {
                    kept.written = now;
                    let (width, height) = kept.size;
                    plan.last = Some(Action::Refresh { width, height });
                }
            }
        }
        if plan.last == Some(Action::Encode) {
            self.last = Some(Kept {
                summary: judged.clone(),
                written: now,
                size: (0, 0),
                reason: None,
            });
        }
        // The picture caused the verdict reported: a standing verdict from an older picture
        // (applied to this probe) does not make this one its picture.
        let caused = reported.health == Health::Degraded
            && reported.reason.is_some()
            && reported.reason == reported.own_reason;
        if caused {
            let worth = match &self.verdict {
                None => true,
                Some(kept) => {
                    due(kept)
                        && (kept.reason != reported.reason || !same_picture(&kept.summary, judged, quality))
                }
            };
            if worth {
                plan.verdict = Some(Action::Encode);
                self.verdict = Some(Kept {
                    summary: judged.clone(),
                    written: now,
                    size: (0, 0),
                    reason: reported.reason,
                });
            }
        }
        plan
    }

    /// Notes the encoded size, for later time-only refreshes.
    fn encoded(&mut self, width: u32, height: u32) {
        if let Some(kept) = &mut self.last {
            kept.size = (width, height);
        }
    }
}

/// After a probe: writes what the plan asks for, encoding at most once, on a blocking thread.
pub(super) async fn keep(
    shared: &Shared,
    stream_id: i64,
    memory: &mut StreamPictures,
    judged: (gst::Sample, PictureSummary),
    reported: Reported,
    ts_ms: i64,
    quality: &QualityConfig,
) {
    let settings = match shared.pictures.lock() {
        Ok(settings) => settings.clone(),
        Err(_) => return,
    };
    if !settings.config.enabled {
        return;
    }
    let (sample, summary) = judged;
    let plan = memory.plan(
        &summary,
        &reported,
        settings.config.every,
        quality,
        Instant::now(),
    );
    drop(summary);
    if plan == Plan::default() {
        return;
    }
    let written = tokio::task::spawn_blocking(move || {
        write_plan(&settings, stream_id, &sample, plan, &reported, ts_ms)
    })
    .await;
    match written {
        Ok(Some((width, height))) => memory.encoded(width, height),
        // Not encoded after all: the next clean picture tries again.
        _ if plan.last == Some(Action::Encode) => memory.last = None,
        _ => {}
    }
}

/// Encodes (when asked) and writes; the encoded size when the last picture was encoded.
fn write_plan(
    settings: &PictureSettings,
    stream_id: i64,
    sample: &gst::Sample,
    plan: Plan,
    reported: &Reported,
    ts_ms: i64,
) -> Option<(u32, u32)> {
    let dir = &settings.dir;
    let needs_encoding = plan.last == Some(Action::Encode) || plan.verdict == Some(Action::Encode);
    let encoded = if needs_encoding {
        match jpeg::encode(sample, settings.config.width, settings.config.quality) {
            Ok(encoded) => Some(encoded),
            Err(e) => {
                tracing::warn!("stream id {stream_id}: picture not kept: {e}");
                return None;
            }
        }
    } else {
        None
    };
    let meta = |width, height, verdict: bool| PictureMeta {
        ts_ms,
        width,
        height,
        health: reported.health.as_str().to_string(),
        reason: verdict
            .then(|| reported.reason.map(|r| r.code().to_string()))
            .flatten(),
        message: verdict.then(|| reported.message.clone()),
    };
    let log = |result: Result<(), crate::pictures::PictureError>| {
        if let Err(e) = result {
            tracing::warn!("stream id {stream_id}: {e}");
        }
    };
    match (plan.last, &encoded) {
        (Some(Action::Encode), Some(jpeg)) => log(dir.write(
            stream_id,
            PictureKind::Last,
            &jpeg.bytes,
            &meta(jpeg.width, jpeg.height, false),
        )),
        (Some(Action::Refresh { width, height }), _) => {
            log(dir.write_meta(stream_id, PictureKind::Last, &meta(width, height, false)))
        }
        _ => {}
    }
    if let (Some(Action::Encode), Some(jpeg)) = (plan.verdict, &encoded) {
        log(dir.write(
            stream_id,
            PictureKind::Verdict,
            &jpeg.bytes,
            &meta(jpeg.width, jpeg.height, true),
        ));
    }
    encoded
        .filter(|_| plan.last == Some(Action::Encode))
        .map(|jpeg| (jpeg.width, jpeg.height))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::quality::{summarize_luma, LumaPlane};

    /// A textured 64x48 picture; `seed` changes every pixel a little, like sensor noise.
    fn picture(seed: usize) -> PictureSummary {
        let data: Vec<u8> = (0..64 * 48)
            .map(|i| ((i * 7 + seed * 13) % 97) as u8 + 40)
            .collect();
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

    fn reported(health: Health, reason: Option<Reason>, own_reason: Option<Reason>) -> Reported {
        Reported {
            health,
            reason,
            message: String::new(),
            own_reason,
        }
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn first_then_at_most_once_an_interval_when_changed() {
        let quality = QualityConfig::default();
        let up = reported(Health::Up, None, None);
        let start = Instant::now();
        let mut memory = StreamPictures::default();
        assert_eq!(
            memory.plan(&picture(0), &up, MINUTE, &quality, start).last,
            Some(Action::Encode)
        );
        memory.encoded(320, 240);
        let soon = start + Duration::from_secs(30);
        assert_eq!(
            memory.plan(&picture(1), &up, MINUTE, &quality, soon),
            Plan::default()
        );
        let later = start + MINUTE;
        assert_eq!(
            memory.plan(&picture(1), &up, MINUTE, &quality, later).last,
            Some(Action::Encode)
        );
        memory.encoded(320, 240);
        // The same picture again: nothing until ten intervals, then only its time.
        let same = later + 5 * MINUTE;
        assert_eq!(
            memory.plan(&picture(1), &up, MINUTE, &quality, same),
            Plan::default()
        );
        let refresh = later + 10 * MINUTE;
        assert_eq!(
            memory.plan(&picture(1), &up, MINUTE, &quality, refresh).last,
            Some(Action::Refresh {
                width: 320,
                height: 240
            })
        );
        assert_eq!(
            memory.plan(&picture(1), &up, MINUTE, &quality, refresh + MINUTE),
            Plan::default()
        );
    }

    #[test]
    fn a_verdict_keeps_the_picture_that_caused_it() {
        let quality = QualityConfig::default();
        let start = Instant::now();
        let mut memory = StreamPictures::default();
        let black = reported(Health::Degraded, Some(Reason::Black), Some(Reason::Black));
        let plan = memory.plan(&picture(0), &black, MINUTE, &quality, start);
        assert_eq!(plan.verdict, Some(Action::Encode));
        // The same black picture again, later: already kept.
        let plan = memory.plan(&picture(0), &black, MINUTE, &quality, start + 2 * MINUTE);
        assert_eq!(plan.verdict, None);
        // A standing frozen verdict applied to a probe whose own picture was fine: not its picture.
        let standing = reported(Health::Degraded, Some(Reason::Frozen), None);
        let plan = memory.plan(&picture(3), &standing, MINUTE, &quality, start + 4 * MINUTE);
        assert_eq!(plan.verdict, None);
        // A new reason with its own picture is kept.
        let frozen = reported(Health::Degraded, Some(Reason::Frozen), Some(Reason::Frozen));
        let plan = memory.plan(&picture(0), &frozen, MINUTE, &quality, start + 6 * MINUTE);
        assert_eq!(plan.verdict, Some(Action::Encode));
    }
}
