//! Chart geometry for the server-made SVG charts: sparklines, the latency chart and the up/down
//! timeline. This module only computes numbers and labels; the SVG markup lives in the handlebars
//! templates (`web/templates/`), which escape every label, so the charts read without JavaScript
//! and no markup is built from strings here.

use serde::Serialize;

use crate::clock::format_local;

/// A polyline's `points` attribute: `x,y x,y …`, numbers only.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Line {
    pub points: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Dot {
    pub x: f64,
    pub y: f64,
}

/// A dashboard sparkline. Its coordinates are whole numbers in a 1200 × 280 view box drawn at
/// 120 × 28 px: the dashboard draws one per camera, and integers are cheaper to format and
/// shorter to send than decimals.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Sparkline {
    pub lines: Vec<Line>,
    /// Heartbeats without video, drawn as marks on the baseline.
    pub downs: Vec<SparkDot>,
    pub empty: bool,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct SparkDot {
    pub x: i64,
    pub y: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Tick {
    pub position: f64,
    pub label: String,
    /// SVG `text-anchor`: the outer time labels align inwards so they stay inside the picture.
    pub anchor: &'static str,
    /// Every other time label, hidden on narrow screens where they would collide.
    pub minor: bool,
}

/// One sample of a latency chart: a time and, when the stream delivered video, latencies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencySample {
    pub ts_ms: i64,
    pub latency_ms: Option<f64>,
    /// The worst latency in the sample's period (hourly rollups have one).
    pub max_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LatencyChart {
    pub width: f64,
    pub height: f64,
    /// The plot area.
    pub left: f64,
    pub top: f64,
    pub right: f64,
    pub bottom: f64,
    pub lines: Vec<Line>,
    pub max_lines: Vec<Line>,
    pub downs: Vec<Dot>,
    pub y_ticks: Vec<Tick>,
    pub x_ticks: Vec<Tick>,
    pub empty: bool,
}

/// A stretch of the up/down timeline.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Segment {
    pub x: f64,
    pub width: f64,
    /// `up`, `degraded`, `down`, `muted-time`, `maintenance` or `nodata`: a CSS class.
    pub health: &'static str,
    /// Tooltip text.
    pub title: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Timeline {
    pub width: f64,
    /// Height of the bar; the picture is `view_height` tall to fit the time labels below it.
    pub height: f64,
    pub view_height: f64,
    pub segments: Vec<Segment>,
    pub x_ticks: Vec<Tick>,
}

/// Rounds to 0.1 so the SVG text stays short.
fn r(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// Splits `(x, Option<y>)` into polylines, breaking wherever y is absent.
fn polylines(points: impl Iterator<Item = (f64, Option<f64>)>) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut current: Vec<String> = Vec::new();
    for (x, y) in points {
        match y {
            Some(y) => current.push(format!("{},{}", r(x), r(y))),
            None if !current.is_empty() => lines.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
        .into_iter()
        .map(|mut points| {
            // A lone point draws nothing as a polyline: give it a short stroke.
            if points.len() == 1 {
                let again = points[0].clone();
                points.push(again);
            }
            Line {
                points: points.join(" "),
            }
        })
        .collect()
}

/// A sparkline of the latest heartbeats; `None` latency (down) shows as a mark.
pub fn sparkline(series: &[(i64, Option<u64>)]) -> Sparkline {
    // View-box units: tenths of the 120 × 28 px picture.
    const WIDTH: i64 = 1200;
    const HEIGHT: i64 = 280;
    let max = series.iter().filter_map(|(_, l)| *l).max().unwrap_or(0).max(1);
    let last = i64::try_from(series.len().saturating_sub(1))
        .unwrap_or(i64::MAX)
        .max(1);
    let x = |i: usize| i64::try_from(i).unwrap_or(i64::MAX).saturating_mul(WIDTH) / last;
    // 2 px of margin at the top and bottom; integer arithmetic, so no rounding to format.
    let y = |latency: u64| {
        let scaled = i64::try_from(latency.saturating_mul(240) / max).unwrap_or(240);
        HEIGHT - 20 - scaled
    };
    // Runs of points with video, split where the stream was down.
    let mut runs: Vec<Vec<(i64, i64)>> = vec![Vec::new()];
    let mut downs = Vec::new();
    for (i, (_, latency)) in series.iter().enumerate() {
        match latency {
            Some(latency) => {
                if let Some(run) = runs.last_mut() {
                    run.push((x(i), y(*latency)));
                }
            }
            None => {
                runs.push(Vec::new());
                downs.push(SparkDot {
                    x: x(i),
                    y: HEIGHT - 10,
                });
            }
        }
    }
    let lines = runs
        .into_iter()
        .filter(|run| !run.is_empty())
        .map(|mut run| {
            if let [(x, y)] = run[..] {
                // A lone point draws nothing as a polyline: give it a short (4 px) stroke.
                run.push((if x + 40 <= WIDTH { x + 40 } else { x - 40 }, y));
            }
            let points: Vec<String> = run.iter().map(|(x, y)| format!("{x},{y}")).collect();
            Line {
                points: points.join(" "),
            }
        })
        .collect();
    Sparkline {
        lines,
        downs,
        empty: series.is_empty(),
    }
}

/// A step of 1, 2 or 5 × 10ⁿ giving about `count` ticks up to `max`.
fn nice_step(max: f64, count: f64) -> f64 {
    let raw = (max / count).max(f64::MIN_POSITIVE);
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * magnitude);
    step.max(1.0)
}

fn latency_label(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{} s", ms / 1000.0)
    } else {
        format!("{ms} ms")
    }
}

/// Time ticks across `[from_ms, to_ms)` in the display timezone: times of day for ranges up to
/// two days, dates beyond.
fn time_ticks(from_ms: i64, to_ms: i64, left: f64, width: f64, tz: &time_tz::Tz) -> Vec<Tick> {
    const TICKS: i64 = 6;
    let span = (to_ms - from_ms).max(1);
    (0..=TICKS)
        .map(|i| {
            let ts = from_ms + span * i / TICKS;
            let local = format_local(ts, tz);
            // format_local gives "YYYY-MM-DD HH:MM:SS ZONE".
            let label = if span <= 2 * 86_400_000 {
                local.get(11..16)
            } else {
                local.get(5..10)
            };
            Tick {
                position: r(left + width * (ts - from_ms) as f64 / span as f64),
                label: label.unwrap_or(&local).to_string(),
                anchor: match i {
                    0 => "start",
                    TICKS => "end",
                    _ => "middle",
                },
                minor: i % 2 == 1,
            }
        })
        .collect()
}

/// The latency chart of one stream over `[from_ms, to_ms)`.
pub fn latency_chart(samples: &[LatencySample], from_ms: i64, to_ms: i64, tz: &time_tz::Tz) -> LatencyChart {
    const WIDTH: f64 = 720.0;
    const HEIGHT: f64 = 220.0;
    let (left, top, right, bottom) = (76.0, 10.0, WIDTH - 10.0, HEIGHT - 30.0);
    let highest = samples
        .iter()
        .flat_map(|s| [s.latency_ms, s.max_ms])
        .flatten()
        .fold(0.0f64, f64::max);
    let step = nice_step(highest.max(1.0), 5.0);
    let y_max = ((highest / step).ceil() * step).max(step);
    let span = (to_ms - from_ms).max(1) as f64;
    let x = |ts: i64| left + (right - left) * ((ts - from_ms) as f64 / span).clamp(0.0, 1.0);
    let y = |ms: f64| bottom - (bottom - top) * (ms / y_max);
    let lines = polylines(samples.iter().map(|s| (x(s.ts_ms), s.latency_ms.map(y))));
    let max_lines = if samples.iter().any(|s| s.max_ms.is_some()) {
        polylines(samples.iter().map(|s| (x(s.ts_ms), s.max_ms.map(y))))
    } else {
        Vec::new()
    };
    let downs = samples
        .iter()
        .filter(|s| s.latency_ms.is_none())
        .map(|s| Dot {
            x: r(x(s.ts_ms)),
            y: bottom,
        })
        .collect();
    let mut y_ticks = Vec::new();
    let mut value = 0.0;
    while value <= y_max + f64::EPSILON {
        y_ticks.push(Tick {
            position: r(y(value)),
            label: latency_label(value),
            anchor: "end",
            minor: false,
        });
        value += step;
    }
    LatencyChart {
        width: WIDTH,
        height: HEIGHT,
        left,
        top,
        right,
        bottom,
        lines,
        max_lines,
        downs,
        y_ticks,
        x_ticks: time_ticks(from_ms, to_ms, left, right - left, tz),
        empty: samples.is_empty(),
    }
}

/// A known health over `[start_ms, end_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub start_ms: i64,
    pub end_ms: i64,
    pub health: &'static str,
}

/// The timeline over `[from_ms, to_ms)`: the given periods (merged where adjacent and alike),
/// with the time not covered shown as "no data".
pub fn timeline(periods: &[Period], from_ms: i64, to_ms: i64, tz: &time_tz::Tz) -> Timeline {
    const WIDTH: f64 = 720.0;
    const HEIGHT: f64 = 28.0;
    let span = (to_ms - from_ms).max(1) as f64;
    let x = |ts: i64| WIDTH * ((ts - from_ms) as f64 / span).clamp(0.0, 1.0);
    let mut merged: Vec<Period> = Vec::new();
    for period in periods {
        let start = period.start_ms.max(from_ms);
        let end = period.end_ms.min(to_ms);
        if end <= start {
            continue;
        }
        match merged.last_mut() {
            Some(last) if last.health == period.health && start <= last.end_ms => {
                last.end_ms = last.end_ms.max(end)
            }
            _ => merged.push(Period {
                start_ms: start,
                end_ms: end,
                health: period.health,
            }),
        }
    }
    let segment = |start: i64, end: i64, health: &'static str| Segment {
        x: r(x(start)),
        width: r((x(end) - x(start)).max(0.5)),
        health,
        title: format!(
            "{}: {} → {}",
            label_of(health),
            format_local(start, tz),
            format_local(end, tz)
        ),
    };
    let mut segments = Vec::new();
    let mut cursor = from_ms;
    for period in &merged {
        if period.start_ms > cursor {
            segments.push(segment(cursor, period.start_ms, "nodata"));
        }
        segments.push(segment(period.start_ms, period.end_ms, period.health));
        cursor = cursor.max(period.end_ms);
    }
    if cursor < to_ms {
        segments.push(segment(cursor, to_ms, "nodata"));
    }
    Timeline {
        width: WIDTH,
        height: HEIGHT,
        view_height: HEIGHT + 30.0,
        segments,
        x_ticks: time_ticks(from_ms, to_ms, 0.0, WIDTH, tz),
    }
}

fn label_of(health: &str) -> &'static str {
    match health {
        "up" => "up",
        "degraded" => "degraded",
        "down" => "down",
        "muted-time" => "muted",
        "maintenance" => "maintenance",
        "quiet" => "muted / maintenance",
        _ => "no data",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc() -> &'static time_tz::Tz {
        time_tz::timezones::get_by_name("UTC").expect("UTC exists")
    }

    #[test]
    fn sparkline_breaks_at_outages() {
        let spark = sparkline(&[(0, Some(100)), (1, Some(200)), (2, None), (3, Some(100))]);
        assert_eq!(spark.lines.len(), 2);
        assert_eq!(spark.lines[0].points, "0,140 400,20");
        assert_eq!(spark.lines[1].points, "1200,140 1160,140");
        assert_eq!(spark.downs, vec![SparkDot { x: 800, y: 270 }]);
        assert!(sparkline(&[]).empty);
        assert_eq!(sparkline(&[(0, Some(5))]).lines[0].points, "0,20 40,20");
    }

    #[test]
    fn latency_axis_uses_round_numbers() {
        let samples = [
            LatencySample {
                ts_ms: 0,
                latency_ms: Some(340.0),
                max_ms: None,
            },
            LatencySample {
                ts_ms: 1000,
                latency_ms: Some(870.0),
                max_ms: None,
            },
        ];
        let chart = latency_chart(&samples, 0, 1000, utc());
        let labels: Vec<&str> = chart.y_ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["0 ms", "200 ms", "400 ms", "600 ms", "800 ms", "1 s"]);
        assert_eq!(chart.x_ticks.first().map(|t| t.label.as_str()), Some("00:00"));
    }

    #[test]
    fn timeline_fills_gaps_and_merges_alike_periods() {
        let periods = [
            Period {
                start_ms: 100,
                end_ms: 200,
                health: "up",
            },
            Period {
                start_ms: 200,
                end_ms: 300,
                health: "up",
            },
            Period {
                start_ms: 300,
                end_ms: 400,
                health: "down",
            },
        ];
        let line = timeline(&periods, 0, 1000, utc());
        let kinds: Vec<&str> = line.segments.iter().map(|s| s.health).collect();
        assert_eq!(kinds, ["nodata", "up", "down", "nodata"]);
        assert_eq!(line.segments[1].x, 72.0);
        assert_eq!(line.segments[1].width, 144.0);
    }
}
