//! What the picture says: a cheap summary of a decoded frame and the verdicts drawn from it —
//! black, blank, frozen, wrong size, too few frames.
//!
//! The summary reads only the luma plane: every few pixels for the mean, spread and hash, and a
//! fixed lattice of points (6×6 per cell of a 16×9 grid) for the cell-by-cell checks, so a 1080p
//! frame costs well under a millisecond: cheap enough for every probe of a large fleet.
//!
//! The checks are built for real cameras ([`cells`] has the comparison and its calibration):
//! * black: every cell dark *and* no sensor noise — a dark live scene is noisy, and a bright
//!   object anywhere lights its cell;
//! * frozen: nearly every cell unchanged while those cells show detail — an on-screen clock drawn
//!   over a frozen picture changes a few cells and nothing else; a live camera's sensor noise
//!   changes every cell; an object moving over a flat background is not evidence either way.
//!   A CBR encoder may re-quantize a band of a frozen picture: a clear majority of exact
//!   textured cells is frozen however many others changed.

use super::cells::{Cells, Comparison, CELL_COUNT};
use crate::config::{Expectation, QualityConfig};
use gstreamer as gst;
use gstreamer_video as gst_video;

/// Read every STEP-th pixel in both directions for the mean, spread and hash.
const STEP: usize = 4;
/// A picture with less noise than this (median cell detail, luma levels) and every cell dark is
/// black. Encoded black measures 0; the demo's dark live scene 3.7–5.3 (see `cells`).
pub const BLACK_MAX_NOISE: f64 = 0.5;
/// A cell with less detail than this is flat: no evidence for or against a frozen picture.
pub const DETAIL_MIN: f64 = 1.0;
/// A frozen picture changes at most this share of its cells: room for a clock or a date line.
pub const FROZEN_MAX_CHANGED_SHARE: f64 = 0.15;
/// ... and at least this share of its cells are unchanged and show detail.
pub const FROZEN_MIN_EVIDENCE_SHARE: f64 = 0.5;
/// With this much evidence the picture is frozen however many other cells changed: a CBR
/// encoder's rate control re-quantizes a frozen picture's keyframes differently from one to the
/// next, row by row (x264's VBV), so a band of cells changes a little while the rest stays exact.
/// A live sensor leaves no textured cell unchanged (see `cells`' calibration).
pub const FROZEN_STRONG_EVIDENCE_SHARE: f64 = 0.6;

/// A frame reduced to what the checks need.
#[derive(Debug, Clone, PartialEq)]
pub struct PictureSummary {
    pub mean_luma: f64,
    pub stddev_luma: f64,
    /// The picture as cells, for the black and frozen checks.
    pub cells: Cells,
    /// Hash of every sampled pixel: equal hashes mean, for all practical purposes, an identical
    /// picture — which a live camera never sends twice (sensor noise, clock overlays).
    pub exact_hash: u64,
}

impl PictureSummary {
    /// How `other` differs from this picture, cell by cell, under `quality`'s threshold.
    pub fn compare(&self, other: &PictureSummary, quality: &QualityConfig) -> Comparison {
        self.cells
            .compare(&other.cells, quality.frozen_max_difference, DETAIL_MIN)
    }
}

/// Summarises a decoded frame, or `None` when it is not raw video in a layout with a luma plane
/// (e.g. the nodecode template's compressed frames).
pub fn summarize(sample: &gst::Sample) -> Option<PictureSummary> {
    let caps = sample.caps()?;
    let info = gst_video::VideoInfo::from_caps(caps).ok()?;
    let buffer = sample.buffer()?;
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info).ok()?;
    // Where the luma of pixel x sits in a row, per layout.
    let (plane, pixel_stride, offset) = match info.format() {
        gst_video::VideoFormat::I420
        | gst_video::VideoFormat::Yv12
        | gst_video::VideoFormat::Nv12
        | gst_video::VideoFormat::Nv21
        | gst_video::VideoFormat::Y42b
        | gst_video::VideoFormat::Y444
        | gst_video::VideoFormat::Y41b
        | gst_video::VideoFormat::Gray8 => (0, 1, 0),
        gst_video::VideoFormat::Yuy2 | gst_video::VideoFormat::Yvyu => (0, 2, 0),
        gst_video::VideoFormat::Uyvy => (0, 2, 1),
        _ => return None,
    };
    let data = frame.plane_data(plane).ok()?;
    let stride = usize::try_from(*info.stride().first()?).ok()?;
    summarize_luma(&LumaPlane {
        data,
        width: info.width() as usize,
        height: info.height() as usize,
        stride,
        pixel_stride,
        offset,
    })
}

/// A picture's luma as laid out in memory: the luma of pixel (x, y) is at
/// `y * stride + x * pixel_stride + offset`.
#[derive(Debug, Clone, Copy)]
pub struct LumaPlane<'a> {
    pub data: &'a [u8],
    pub width: usize,
    pub height: usize,
    pub stride: usize,
    pub pixel_stride: usize,
    pub offset: usize,
}

/// Summarises a luma plane (no GStreamer involved); `None` when it is empty.
pub fn summarize_luma(plane: &LumaPlane<'_>) -> Option<PictureSummary> {
    let LumaPlane {
        data,
        width,
        height,
        stride,
        pixel_stride,
        offset,
    } = *plane;
    if width == 0 || height == 0 {
        return None;
    }
    let (mut sum, mut sum_squares, mut count) = (0u64, 0u64, 0u64);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for y in (0..height).step_by(STEP) {
        let row = y * stride;
        for x in (0..width).step_by(STEP) {
            let Some(&luma) = data.get(row + x * pixel_stride + offset) else {
                continue;
            };
            let value = u64::from(luma);
            sum += value;
            sum_squares += value * value;
            count += 1;
            hash = (hash ^ value).wrapping_mul(0x0100_0000_01b3);
        }
    }
    if count == 0 {
        return None;
    }
    let mean = sum as f64 / count as f64;
    let variance = (sum_squares as f64 / count as f64 - mean * mean).max(0.0);
    Some(PictureSummary {
        mean_luma: mean,
        stddev_luma: variance.sqrt(),
        cells: Cells::sample(plane)?,
        exact_hash: hash,
    })
}

/// Why a picture is not healthy, with the detail a person needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Black(String),
    Frozen(String),
    Blank(String),
    WrongResolution(String),
    LowFps(String),
}

/// What a probe saw over its window.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub first: Option<PictureSummary>,
    /// The last frame of the sample window (when there was one).
    pub last: Option<PictureSummary>,
    /// Seconds between the first and the last frame compared.
    pub span_seconds: f64,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Frames per second measured over the window, or from caps when there was none.
    pub fps: Option<f64>,
    /// Set when a sample window passed without a single new frame after the first.
    pub stalled_seconds: Option<f64>,
}

/// The first failed check, in order of what matters most to a person: a black picture, a frozen
/// one, a blank one, then size and rate.
pub fn judge(
    seen: &Observation,
    previous: Option<&PictureSummary>,
    previous_age_seconds: f64,
    quality: &QualityConfig,
    expect: &Expectation,
) -> Option<Verdict> {
    if let Some(first) = &seen.first {
        if let Some(detail) = black(first, quality) {
            return Some(Verdict::Black(detail));
        }
        if let Some(seconds) = seen.stalled_seconds {
            return Some(Verdict::Frozen(format!(
                "no new frame for {seconds:.1} s after the first"
            )));
        }
        if let Some(last) = &seen.last {
            if let Some(why) = frozen(first, last, quality) {
                return Some(Verdict::Frozen(format!("{why} over {:.1} s", seen.span_seconds)));
            }
        }
        if let Some(previous) = previous {
            if let Some(why) = frozen(previous, first, quality) {
                return Some(Verdict::Frozen(format!(
                    "{why} as the previous probe {previous_age_seconds:.0} s ago"
                )));
            }
        }
        // Like black: a flat picture is blank; a dim live one still has its sensor noise.
        if first.stddev_luma <= quality.blank_max_stddev && first.cells.noise() <= BLACK_MAX_NOISE {
            return Some(Verdict::Blank(format!(
                "a single colour (luma {:.0} ± {:.1})",
                first.mean_luma, first.stddev_luma
            )));
        }
    }
    if let (Some(want), Some(got)) = (expect.width, seen.width) {
        if want != got {
            return Some(Verdict::WrongResolution(resolution_detail(expect, seen)));
        }
    }
    if let (Some(want), Some(got)) = (expect.height, seen.height) {
        if want != got {
            return Some(Verdict::WrongResolution(resolution_detail(expect, seen)));
        }
    }
    if let (Some(min), Some(fps)) = (expect.min_fps, seen.fps) {
        if fps < min {
            return Some(Verdict::LowFps(format!("{fps:.1} fps, expected at least {min}")));
        }
    }
    None
}

/// Black: every cell dark (one bright object lights its cell) and no sensor noise (a dark live
/// scene is noisy; an encoder's black is flat).
fn black(picture: &PictureSummary, quality: &QualityConfig) -> Option<String> {
    let (brightest, noise) = (picture.cells.brightest(), picture.cells.noise());
    (brightest <= quality.black_max_luma && noise <= BLACK_MAX_NOISE).then(|| {
        format!(
            "mean luma {:.0} of 255, brightest cell {brightest:.0}, noise {noise:.1}",
            picture.mean_luma
        )
    })
}

/// Whether `after` shows the same picture as `before` by the frozen rule (identical, or nearly
/// every detailed cell unchanged): sensor noise alone makes a live picture differ.
pub fn same_picture(before: &PictureSummary, after: &PictureSummary, quality: &QualityConfig) -> bool {
    frozen(before, after, quality).is_some()
}

/// Frozen: identical, or nearly every cell unchanged while showing detail. The few cells left
/// may change: an on-screen clock ticks over a frozen picture.
fn frozen(before: &PictureSummary, after: &PictureSummary, quality: &QualityConfig) -> Option<String> {
    if before.exact_hash == after.exact_hash {
        return Some("identical picture".to_string());
    }
    let comparison = before.compare(after, quality);
    let cells = CELL_COUNT as f64;
    let few_changed = comparison.changed as f64 <= FROZEN_MAX_CHANGED_SHARE * cells;
    let evidence = comparison.unchanged_with_detail as f64;
    let frozen = (few_changed && evidence >= FROZEN_MIN_EVIDENCE_SHARE * cells)
        || evidence >= FROZEN_STRONG_EVIDENCE_SHARE * cells;
    frozen.then(|| match comparison.changed {
        0 => format!("the same picture in {CELL_COUNT} of {CELL_COUNT} cells"),
        changed if few_changed => format!(
            "the same picture in {} of {CELL_COUNT} cells (the {changed} others changed, e.g. a clock)",
            CELL_COUNT - changed
        ),
        changed => format!(
            "the same picture in {} of {CELL_COUNT} cells (the {changed} others changed, e.g. re-encoded)",
            CELL_COUNT - changed
        ),
    })
}

fn resolution_detail(expect: &Expectation, seen: &Observation) -> String {
    let show = |v: Option<u32>| v.map_or("?".to_string(), |v| v.to_string());
    format!(
        "{}x{}, expected {}x{}",
        show(seen.width),
        show(seen.height),
        show(expect.width.or(seen.width)),
        show(expect.height.or(seen.height))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary_of(width: usize, height: usize, pixel: impl Fn(usize, usize) -> u8) -> PictureSummary {
        gst::init().expect("gst");
        let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Gray8, width as u32, height as u32)
            .build()
            .expect("info");
        let stride = info.stride()[0] as usize;
        let mut data = vec![0u8; info.size()];
        for y in 0..height {
            for x in 0..width {
                data[y * stride + x] = pixel(x, y);
            }
        }
        let buffer = gst::Buffer::from_mut_slice(data);
        let caps = info.to_caps().expect("caps");
        let sample = gst::Sample::builder().buffer(&buffer).caps(&caps).build();
        summarize(&sample).expect("summarised")
    }

    #[test]
    fn black_blank_and_moving_pictures() {
        let quality = QualityConfig::default();
        let none = Expectation::default();
        let black = summary_of(64, 48, |_, _| 2);
        let grey = summary_of(64, 48, |_, _| 128);
        let gradient = summary_of(64, 48, |x, y| (x * 3 + y) as u8);
        let moved = summary_of(64, 48, |x, y| ((x + 8) * 3 + y) as u8);
        let observe = |first: &PictureSummary| Observation {
            first: Some(first.clone()),
            ..Observation::default()
        };
        assert!(matches!(
            judge(&observe(&black), None, 0.0, &quality, &none),
            Some(Verdict::Black(_))
        ));
        assert!(matches!(
            judge(&observe(&grey), None, 0.0, &quality, &none),
            Some(Verdict::Blank(_))
        ));
        assert_eq!(judge(&observe(&gradient), None, 0.0, &quality, &none), None);
        // The same picture as last time is frozen; a moved one is not.
        assert!(
            matches!(judge(&observe(&gradient), Some(&gradient), 15.0, &quality, &none), Some(Verdict::Frozen(m)) if m.contains("identical"))
        );
        assert_eq!(
            judge(&observe(&moved), Some(&gradient), 15.0, &quality, &none),
            None
        );
        // A change of one level in a few pixels is compression noise; a threshold of 0 counts it.
        let noisy = summary_of(64, 48, |x, y| (x * 3 + y) as u8 + u8::from((x + y) % 7 == 0));
        assert!(
            matches!(judge(&observe(&noisy), Some(&gradient), 15.0, &quality, &none), Some(Verdict::Frozen(m)) if m.contains("the same picture in 144 of 144 cells"))
        );
        let strict = QualityConfig {
            frozen_max_difference: 0.0,
            ..QualityConfig::default()
        };
        assert_eq!(
            judge(&observe(&noisy), Some(&gradient), 15.0, &strict, &none),
            None
        );
    }

    #[test]
    fn a_frozen_picture_re_quantized_below_a_band_is_still_frozen() {
        let quality = QualityConfig::default();
        let none = Expectation::default();
        let texture = |x: usize, y: usize| 60 + ((x / 3 + y / 2) % 5) as u8 * 30;
        let before = summary_of(320, 180, texture);
        // The lower 40% re-quantized (a few levels off everywhere there): 64 of 144 cells
        // changed, 80 (56%) exact: not enough on its own.
        let band = |rows: usize| {
            summary_of(320, 180, move |x, y| {
                texture(x, y) + if y >= 180 - rows { 3 + (x % 2) as u8 } else { 0 }
            })
        };
        let observe = |first: PictureSummary| Observation {
            first: Some(first),
            ..Observation::default()
        };
        assert_eq!(
            judge(&observe(band(80)), Some(&before), 60.0, &quality, &none),
            None
        );
        // The lower third: 48 changed, 96 exact (67%): frozen.
        assert!(
            matches!(judge(&observe(band(60)), Some(&before), 60.0, &quality, &none), Some(Verdict::Frozen(m)) if m.contains("96 of 144 cells (the 48 others changed, e.g. re-encoded)")),
            "{:?}",
            judge(&observe(band(60)), Some(&before), 60.0, &quality, &none)
        );
    }

    #[test]
    fn expectations_on_size_and_rate() {
        let quality = QualityConfig::default();
        let picture = summary_of(32, 32, |x, y| (x * 7 + y * 3) as u8);
        let seen = Observation {
            first: Some(picture),
            width: Some(320),
            height: Some(240),
            fps: Some(5.0),
            ..Observation::default()
        };
        let want_hd = Expectation {
            width: Some(1920),
            height: Some(1080),
            min_fps: None,
        };
        assert!(
            matches!(judge(&seen, None, 0.0, &quality, &want_hd), Some(Verdict::WrongResolution(m)) if m == "320x240, expected 1920x1080")
        );
        let want_fps = Expectation {
            min_fps: Some(10.0),
            ..Expectation::default()
        };
        assert!(matches!(
            judge(&seen, None, 0.0, &quality, &want_fps),
            Some(Verdict::LowFps(_))
        ));
    }
}
