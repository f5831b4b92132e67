//! A picture as cells (a 16×9 grid) and the comparison of two pictures cell by cell: how many
//! cells changed, and how many unchanged cells show detail. Deciding "frozen" from the count of
//! unchanged cells, not from the whole frame or its largest change, is what keeps a frozen camera
//! under a ticking on-screen clock frozen: the clock changes a few cells, the rest is exactly
//! (or within compression noise) the same.
//!
//! Each cell is read at 6×6 lattice points. A point's change between two pictures is the
//! absolute luma difference; a cell's change is the mean over its points, so sensor noise (which
//! averaging a block would cancel) shows in every cell of a live picture. A cell's detail is the
//! mean difference between each point and its right-hand neighbour pixel: texture plus noise.
//!
//! Calibration (demo scenes, 320x240, see `demo::scenes`, `tests/quality.rs` and
//! `docs/benchmarks.md`): every cell of a live still scene with sensor noise changes, by a median
//! 4.6–5.6 levels (MJPEG and H.264 keyframe to keyframe); a frozen picture under a clock keeps
//! 140–142 cells at exactly 0 and the clock changes 2–4 by 6–12. Right after an H.264 encoder
//! starts, its keyframes of one frozen picture still differ everywhere (~3 levels): missed,
//! never mistaken. A ball on black changes 8–13 cells and leaves only flat ones unchanged.

use super::quality::LumaPlane;

pub const GRID_COLUMNS: usize = 16;
pub const GRID_ROWS: usize = 9;
/// Cells in a picture.
pub const CELL_COUNT: usize = GRID_COLUMNS * GRID_ROWS;
/// Lattice points per cell side.
const CELL_POINTS: usize = 6;
const LATTICE_COLUMNS: usize = GRID_COLUMNS * CELL_POINTS;
const LATTICE_ROWS: usize = GRID_ROWS * CELL_POINTS;
const POINTS_PER_CELL: f32 = (CELL_POINTS * CELL_POINTS) as f32;

/// A picture read at the lattice: about 5 KB, kept per stream between probes.
#[derive(Debug, Clone, PartialEq)]
pub struct Cells {
    /// Luma at each lattice point, row-major.
    points: Vec<u8>,
    /// Mean luma per cell, row-major.
    mean: Vec<f32>,
    /// Mean |neighbour difference| per cell: texture and sensor noise.
    detail: Vec<f32>,
}

/// How two pictures differ, cell by cell.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Cells whose change is above the threshold.
    pub changed: usize,
    /// Unchanged cells with detail in both pictures: evidence of a frozen picture (a flat cell,
    /// e.g. black background, is the same in a live picture too).
    pub unchanged_with_detail: usize,
    /// Median and largest cell change, luma levels.
    pub median_change: f64,
    pub largest_change: f64,
}

impl Cells {
    /// Reads the lattice; `None` for an empty plane.
    pub fn sample(plane: &LumaPlane<'_>) -> Option<Cells> {
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
        let luma = |x: usize, y: usize| data.get(y * stride + x * pixel_stride + offset).copied();
        let mut points = Vec::with_capacity(LATTICE_COLUMNS * LATTICE_ROWS);
        let mut mean = vec![0f32; CELL_COUNT];
        let mut detail = vec![0f32; CELL_COUNT];
        for row in 0..LATTICE_ROWS {
            let y = (2 * row + 1) * height / (2 * LATTICE_ROWS);
            for column in 0..LATTICE_COLUMNS {
                let x = (2 * column + 1) * width / (2 * LATTICE_COLUMNS);
                let neighbour_x = if x + 1 < width { x + 1 } else { x.saturating_sub(1) };
                let value = luma(x, y).unwrap_or(0);
                let neighbour = luma(neighbour_x, y).unwrap_or(value);
                points.push(value);
                let cell = (row / CELL_POINTS) * GRID_COLUMNS + column / CELL_POINTS;
                mean[cell] += f32::from(value);
                detail[cell] += f32::from(value.abs_diff(neighbour));
            }
        }
        for value in mean.iter_mut().chain(detail.iter_mut()) {
            *value /= POINTS_PER_CELL;
        }
        Some(Cells { points, mean, detail })
    }

    /// Mean luma of the brightest cell.
    pub fn brightest(&self) -> f64 {
        f64::from(self.mean.iter().copied().fold(0.0, f32::max))
    }

    /// The picture's noise: the median cell detail. Zero for a flat encoded black; sensor noise
    /// keeps it up even in a dark scene, and a few edges (one bright object) do not move it.
    pub fn noise(&self) -> f64 {
        median(&self.detail)
    }

    /// Compares cell by cell; a cell whose mean point change is at most `unchanged_max` counts
    /// as unchanged, and as showing detail when both pictures have at least `detail_min` there.
    pub fn compare(&self, other: &Cells, unchanged_max: f64, detail_min: f64) -> Comparison {
        let mut change = vec![0f32; CELL_COUNT];
        for (index, (a, b)) in self.points.iter().zip(&other.points).enumerate() {
            let (row, column) = (index / LATTICE_COLUMNS, index % LATTICE_COLUMNS);
            change[(row / CELL_POINTS) * GRID_COLUMNS + column / CELL_POINTS] += f32::from(a.abs_diff(*b));
        }
        let mut comparison = Comparison {
            changed: 0,
            unchanged_with_detail: 0,
            median_change: 0.0,
            largest_change: 0.0,
        };
        for (cell, total) in change.iter_mut().enumerate() {
            *total /= POINTS_PER_CELL;
            let moved = f64::from(*total);
            comparison.largest_change = comparison.largest_change.max(moved);
            if moved > unchanged_max {
                comparison.changed += 1;
            } else if f64::from(self.detail[cell].min(other.detail[cell])) >= detail_min {
                comparison.unchanged_with_detail += 1;
            }
        }
        comparison.median_change = median(&change);
        comparison
    }
}

fn median(values: &[f32]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f32::total_cmp);
    sorted.get(sorted.len() / 2).map_or(0.0, |v| f64::from(*v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(width: usize, height: usize, pixel: impl Fn(usize, usize) -> u8) -> Cells {
        let data: Vec<u8> = (0..height)
            .flat_map(|y| (0..width).map(move |x| (x, y)))
            .map(|(x, y)| pixel(x, y))
            .collect();
        Cells::sample(&LumaPlane {
            data: &data,
            width,
            height,
            stride: width,
            pixel_stride: 1,
            offset: 0,
        })
        .expect("a non-empty picture")
    }

    /// Deterministic per-pixel noise in -amplitude..=amplitude, different per `seed`.
    fn noise(x: usize, y: usize, seed: usize, amplitude: i32) -> i32 {
        let mut h =
            (x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (y as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        h ^= (seed as u64).wrapping_mul(0x1656_67B1_9E37_79F9);
        h ^= h >> 29;
        h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h ^= h >> 32;
        (h % (2 * amplitude as u64 + 1)) as i32 - amplitude
    }

    fn scene(x: usize, y: usize) -> i32 {
        60 + ((x / 10 + y / 7) % 5) as i32 * 30
    }

    #[test]
    fn a_clock_over_a_frozen_picture_changes_a_few_cells_only() {
        let frozen = |seconds: usize| {
            cells(320, 240, move |x, y| {
                // Fixed noise: the frozen frame's own grain, the same in every copy.
                let base = scene(x, y) + noise(x, y, 0, 4);
                // A clock's last digits, top left: 40x16 pixels that change every second.
                if x < 40 && y < 16 && (x + seconds * 3) % 7 < 3 {
                    235
                } else {
                    base.clamp(0, 255) as u8
                }
            })
        };
        let comparison = frozen(1).compare(&frozen(2), 1.0, 1.0);
        assert!(
            comparison.changed > 0 && comparison.changed <= 4,
            "{comparison:?}"
        );
        assert_eq!(comparison.unchanged_with_detail, CELL_COUNT - comparison.changed);
    }

    #[test]
    fn sensor_noise_changes_every_cell_and_a_ball_on_black_shows_no_detail() {
        let live = |seed: usize| {
            cells(320, 240, move |x, y| {
                (scene(x, y) + noise(x, y, seed, 4)).clamp(0, 255) as u8
            })
        };
        let comparison = live(1).compare(&live(2), 1.0, 1.0);
        assert_eq!(comparison.changed, CELL_COUNT, "{comparison:?}");
        assert!(comparison.median_change > 2.0, "{comparison:?}");

        let ball = |cx: usize, cy: usize| {
            cells(640, 360, move |x, y| {
                let (dx, dy) = (x.abs_diff(cx), y.abs_diff(cy));
                if dx * dx + dy * dy <= 400 {
                    235
                } else {
                    16
                }
            })
        };
        let (before, after) = (ball(100, 100), ball(500, 250));
        let comparison = before.compare(&after, 1.0, 1.0);
        assert!(comparison.changed <= 8, "{comparison:?}");
        assert_eq!(comparison.unchanged_with_detail, 0, "{comparison:?}");
        assert_eq!(before.noise(), 0.0);
        assert!(before.brightest() > 100.0, "the ball's cell is bright");
    }
}
