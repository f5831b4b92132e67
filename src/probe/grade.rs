//! The verdict on a probe that got video: what the session saw (picture summaries, frame and byte
//! counts over the sample window) in, the graded outcome out. Pure: no GStreamer, no clock, so
//! every rule is unit-tested on made-up numbers.

use super::quality::{self, Observation, PictureSummary, Verdict};
use super::{Health, ProbeOutcome, Reason};
use crate::config::{Expectation, QualityConfig};
use std::time::Duration;

/// A window shorter than this gives no frame rate or bitrate: too few frames to count.
const MIN_MEASURED_SPAN: Duration = Duration::from_millis(200);
/// A window at least this long without a second frame means the camera stalled after one.
const MIN_STALL_SPAN: Duration = Duration::from_secs(1);

/// What a probe saw after its first frame.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seen {
    /// The frame rate the stream's caps announce.
    pub caps_fps: Option<f64>,
    /// The first clean frame (the first frame, unless the decoder flagged it corrupt).
    pub reference: Option<PictureSummary>,
    /// The sample window, when the stream has one.
    pub window: Option<WindowSeen>,
}

/// What the sample window counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WindowSeen {
    /// Frames after the first one.
    pub frames: u64,
    /// From the first frame to the end of the window.
    pub span: Duration,
    /// Compressed bytes that entered the decoders, when counted.
    pub encoded_bytes: Option<u64>,
    /// The last clean frame after the reference, and how long after the reference it came.
    pub last: Option<(PictureSummary, Duration)>,
}

/// The previous probe's picture, for "the same picture again?".
#[derive(Debug, Clone, Copy)]
pub struct Previous<'a> {
    pub picture: &'a PictureSummary,
    pub age: Duration,
}

/// Grades an `up` outcome (latency, codec and size filled in from the first frame): measured
/// fps and bitrate, the picture for the next probe, and `degraded` with a reason when a picture
/// check or an expectation fails.
pub fn grade(
    mut outcome: ProbeOutcome,
    seen: &Seen,
    previous: Option<Previous<'_>>,
    quality: &QualityConfig,
    expect: &Expectation,
) -> ProbeOutcome {
    let mut observation = Observation {
        first: seen.reference.clone(),
        width: outcome.width,
        height: outcome.height,
        fps: seen.caps_fps,
        ..Observation::default()
    };
    match &seen.window {
        Some(window) => {
            let span = window.span.as_secs_f64();
            if window.span > MIN_MEASURED_SPAN {
                observation.fps = Some(window.frames as f64 / span);
                outcome.fps = observation.fps;
                if let Some(bytes) = window.encoded_bytes {
                    outcome.bitrate_kbps = Some((bytes as f64 * 8.0 / span / 1000.0) as u64);
                }
            }
            if let Some((last, apart)) = &window.last {
                observation.span_seconds = apart.as_secs_f64();
                observation.last = Some(last.clone());
            }
            // A whole window without a second frame: the camera sent one picture and stalled.
            if window.frames == 0 && window.span >= MIN_STALL_SPAN {
                observation.stalled_seconds = Some(span);
            }
        }
        None => outcome.fps = observation.fps,
    }
    let verdict = quality::judge(
        &observation,
        previous.map(|p| p.picture),
        previous.map_or(0.0, |p| p.age.as_secs_f64()),
        quality,
        expect,
    );
    if let Some(verdict) = verdict {
        let (reason, detail) = match verdict {
            Verdict::Black(d) | Verdict::Blank(d) => (Reason::Black, d),
            Verdict::Frozen(d) => (Reason::Frozen, d),
            Verdict::WrongResolution(d) => (Reason::WrongResolution, d),
            Verdict::LowFps(d) => (Reason::LowFps, d),
        };
        outcome.health = Health::Degraded;
        outcome.reason = Some(reason);
        outcome.message = detail;
    }
    outcome.picture = observation.first;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::quality::{summarize_luma, LumaPlane};

    /// A 64x48 grey picture from a pixel function, summarised without GStreamer.
    fn picture(pixel: impl Fn(usize, usize) -> u8) -> PictureSummary {
        let (width, height) = (64, 48);
        let data: Vec<u8> = (0..height)
            .flat_map(|y| (0..width).map(move |x| (x, y)))
            .map(|(x, y)| pixel(x, y))
            .collect();
        summarize_luma(&LumaPlane {
            data: &data,
            width,
            height,
            stride: width,
            pixel_stride: 1,
            offset: 0,
        })
        .expect("a non-empty picture")
    }

    fn gradient() -> PictureSummary {
        picture(|x, y| (x * 3 + y) as u8)
    }

    fn moved() -> PictureSummary {
        picture(|x, y| ((x + 8) * 3 + y) as u8)
    }

    fn up(width: u32, height: u32) -> ProbeOutcome {
        ProbeOutcome {
            health: Health::Up,
            latency_ms: Some(120),
            reason: None,
            message: String::new(),
            codec: Some("h264".into()),
            width: Some(width),
            height: Some(height),
            fps: None,
            bitrate_kbps: None,
            picture: None,
        }
    }

    fn defaults(outcome: ProbeOutcome, seen: &Seen) -> ProbeOutcome {
        grade(
            outcome,
            seen,
            None,
            &QualityConfig::default(),
            &Expectation::default(),
        )
    }

    fn window(frames: u64, span_ms: u64, last: Option<(PictureSummary, u64)>) -> Option<WindowSeen> {
        Some(WindowSeen {
            frames,
            span: Duration::from_millis(span_ms),
            encoded_bytes: Some(250_000),
            last: last.map(|(picture, ms)| (picture, Duration::from_millis(ms))),
        })
    }

    #[test]
    fn a_live_picture_is_up_with_caps_fps_and_its_picture_kept() {
        let seen = Seen {
            caps_fps: Some(25.0),
            reference: Some(gradient()),
            window: None,
        };
        let graded = defaults(up(640, 360), &seen);
        assert_eq!(graded.health, Health::Up);
        assert_eq!((graded.reason, graded.message.as_str()), (None, ""));
        assert_eq!(graded.fps, Some(25.0));
        assert_eq!(graded.bitrate_kbps, None);
        assert_eq!(graded.picture, Some(gradient()));
    }

    #[test]
    fn the_window_measures_fps_and_bitrate() {
        let seen = Seen {
            caps_fps: Some(30.0),
            reference: Some(gradient()),
            window: window(20, 2000, Some((moved(), 1900))),
        };
        let graded = defaults(up(640, 360), &seen);
        assert_eq!(graded.health, Health::Up);
        assert_eq!(graded.fps, Some(10.0));
        // 250,000 bytes over 2 s.
        assert_eq!(graded.bitrate_kbps, Some(1000));
    }

    #[test]
    fn a_window_too_short_to_count_measures_nothing() {
        let seen = Seen {
            caps_fps: Some(30.0),
            reference: Some(gradient()),
            window: window(1, 150, None),
        };
        let graded = defaults(up(640, 360), &seen);
        assert_eq!((graded.fps, graded.bitrate_kbps), (None, None));
        assert_eq!(graded.health, Health::Up);
    }

    #[test]
    fn one_frame_then_nothing_is_frozen() {
        let seen = Seen {
            caps_fps: None,
            reference: Some(gradient()),
            window: window(0, 1500, None),
        };
        let graded = defaults(up(640, 360), &seen);
        assert_eq!(graded.health, Health::Degraded);
        assert_eq!(graded.reason, Some(Reason::Frozen));
        assert_eq!(graded.message, "no new frame for 1.5 s after the first");
    }

    #[test]
    fn the_same_picture_over_the_window_is_frozen() {
        let seen = Seen {
            caps_fps: None,
            reference: Some(gradient()),
            window: window(10, 2000, Some((gradient(), 1800))),
        };
        let graded = defaults(up(640, 360), &seen);
        assert_eq!(graded.reason, Some(Reason::Frozen));
        assert_eq!(graded.message, "identical picture over 1.8 s");
    }

    #[test]
    fn the_same_picture_as_the_previous_probe_is_frozen() {
        let seen = Seen {
            caps_fps: None,
            reference: Some(gradient()),
            window: None,
        };
        let same = gradient();
        let previous = Previous {
            picture: &same,
            age: Duration::from_secs(15),
        };
        let quality = QualityConfig::default();
        let none = Expectation::default();
        let graded = grade(up(640, 360), &seen, Some(previous), &quality, &none);
        assert_eq!(graded.reason, Some(Reason::Frozen));
        assert_eq!(graded.message, "identical picture as the previous probe 15 s ago");
        let other = moved();
        let previous = Previous {
            picture: &other,
            age: Duration::from_secs(15),
        };
        let graded = grade(up(640, 360), &seen, Some(previous), &quality, &none);
        assert_eq!(graded.health, Health::Up);
    }

    #[test]
    fn black_and_blank_pictures_are_both_black() {
        for (luma, message) in [
            (2, "mean luma 2 of 255, brightest cell 2, noise 0.0"),
            (128, "a single colour (luma 128 ± 0.0)"),
        ] {
            let seen = Seen {
                reference: Some(picture(|_, _| luma)),
                ..Seen::default()
            };
            let graded = defaults(up(640, 360), &seen);
            assert_eq!(graded.health, Health::Degraded);
            assert_eq!(graded.reason, Some(Reason::Black));
            assert_eq!(graded.message, message);
        }
    }

    #[test]
    fn without_a_clean_picture_only_size_and_rate_are_judged() {
        let seen = Seen {
            caps_fps: Some(5.0),
            reference: None,
            window: None,
        };
        let quality = QualityConfig::default();
        let graded = grade(
            up(320, 240),
            &seen,
            None,
            &quality,
            &Expectation {
                width: Some(1920),
                height: Some(1080),
                min_fps: None,
            },
        );
        assert_eq!(graded.reason, Some(Reason::WrongResolution));
        assert_eq!(graded.message, "320x240, expected 1920x1080");
        assert_eq!(graded.picture, None);
        let graded = grade(
            up(320, 240),
            &seen,
            None,
            &quality,
            &Expectation {
                min_fps: Some(10.0),
                ..Expectation::default()
            },
        );
        assert_eq!(graded.reason, Some(Reason::LowFps));
        assert_eq!(graded.message, "5.0 fps, expected at least 10");
    }
}
