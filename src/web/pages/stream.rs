//! One stream's page: its current state, a latency chart and a state timeline over a chosen
//! range (raw heartbeats up to a day, hourly rollups beyond), its outages and latest problems.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};
use warp::http::StatusCode;
use warp::reply::Response;

use super::dashboard::dashboard_row;
use crate::alert::quiet::Quiet;
use crate::clock::{format_local, human_duration, HOUR_MS};
use crate::fleet;
use crate::heartbeat::{Health, Heartbeat};
use crate::pictures::PictureKind;
use crate::store::{HourlyPoint, Outage};
use crate::url::redact_text;
use crate::web::auth::Principal;
use crate::web::charts::{self, LatencySample, Period};
use crate::web::links;
use crate::web::pictures::{self, PictureInfo};
use crate::web::respond;
use crate::web::{WebError, WebState};

/// Longest raw-heartbeat range drawn point by point; longer ranges use hourly rollups.
const RAW_RANGE_LIMIT_MS: i64 = 24 * HOUR_MS;
/// Outages listed on the stream page; the API lists every one.
const MAX_LISTED_OUTAGES: usize = 100;
/// Raw heartbeats read at most for one chart (24 h at a 5 s heartbeat).
const MAX_CHART_HEARTBEATS: usize = 20_000;

/// The ranges the stream page offers.
const RANGES: &[(&str, &str, i64)] = &[
    ("1h", "1 hour", HOUR_MS),
    ("24h", "24 hours", 24 * HOUR_MS),
    ("7d", "7 days", 7 * 24 * HOUR_MS),
    ("30d", "30 days", 30 * 24 * HOUR_MS),
];

/// `GET /streams/{name}?range=`
#[derive(Debug, Default, Deserialize)]
pub struct StreamPageQuery {
    /// One of the [`RANGES`] keys; 24 hours when absent.
    pub range: Option<String>,
}

/// What the stream page reads from the store for one range.
struct History {
    heartbeats: Vec<Heartbeat>,
    hourly: Vec<HourlyPoint>,
    outages: Vec<Outage>,
    /// The latest heartbeats that were not plainly up.
    problems: Vec<Heartbeat>,
    /// The raw heartbeats' quiet ones (muted, maintenance), by time.
    quiet: HashMap<i64, Quiet>,
}

/// The timeline's class of a quiet heartbeat.
fn quiet_class(quiet: Quiet) -> &'static str {
    match quiet {
        Quiet::Muted => "muted-time",
        Quiet::Maintenance => "maintenance",
    }
}

fn health_class(health: Health) -> &'static str {
    match health {
        Health::Up => "up",
        Health::Degraded => "degraded",
        Health::Down => "down",
    }
}

pub async fn stream_page(
    name: String,
    principal: Principal,
    state: Arc<WebState>,
    query: StreamPageQuery,
) -> Response {
    match stream_page_inner(name, &principal, &state, &query).await {
        Ok(response) => response,
        Err(error) => respond::failure_page(&state, Some(&principal), error),
    }
}

async fn stream_page_inner(
    name: String,
    principal: &Principal,
    state: &Arc<WebState>,
    query: &StreamPageQuery,
) -> Result<Response, WebError> {
    let config = state.config();
    let tz = config.timezone;
    let now_ms = state.now_ms();
    let range_key = query.range.as_deref().unwrap_or("24h");
    let &(range_key, _, span_ms) = RANGES
        .iter()
        .find(|(key, _, _)| *key == range_key)
        .ok_or_else(|| WebError::BadRequest("range must be one of 1h, 24h, 7d, 30d".into()))?;
    let (from_ms, to_ms) = (now_ms - span_ms, now_ms);
    let for_read = Arc::clone(&config);
    let lookup = name.clone();
    let (summary, history) = state
        .read(move |store| {
            let Some(summary) = fleet::load_one(&for_read, store, &lookup, now_ms)? else {
                return Ok((None, None));
            };
            let Some(id) = summary.stream_id() else {
                return Ok((Some(summary), None));
            };
            let raw = span_ms <= RAW_RANGE_LIMIT_MS;
            let heartbeats = if raw {
                store.heartbeats(id, from_ms, to_ms, MAX_CHART_HEARTBEATS)?
            } else {
                Vec::new()
            };
            let hourly = if raw {
                Vec::new()
            } else {
                store.hourly(id, from_ms, to_ms)?
            };
            let outages = store.outages(id, from_ms, to_ms)?;
            let quiet = if raw {
                store
                    .quiet_heartbeats(id, from_ms, to_ms, MAX_CHART_HEARTBEATS)?
                    .into_iter()
                    .collect()
            } else {
                HashMap::new()
            };
            let recent = if raw {
                heartbeats.iter().take(2_000).cloned().collect()
            } else {
                store.heartbeats(id, now_ms - 24 * HOUR_MS, now_ms, 2_000)?
            };
            let problems = recent
                .into_iter()
                .filter(|h| h.outcome.health != Health::Up)
                .take(200)
                .collect();
            Ok((
                Some(summary),
                Some(History {
                    heartbeats,
                    hourly,
                    outages,
                    problems,
                    quiet,
                }),
            ))
        })
        .await?;
    let Some(summary) = summary else {
        return Err(WebError::NotFound(format!(
            "no stream named {name:?} in the configuration"
        )));
    };
    let history = history.unwrap_or(History {
        heartbeats: Vec::new(),
        hourly: Vec::new(),
        outages: Vec::new(),
        problems: Vec::new(),
        quiet: HashMap::new(),
    });

    // Chart samples and timeline periods, oldest first.
    let (samples, periods): (Vec<LatencySample>, Vec<Period>) = if history.hourly.is_empty() {
        let mut beats = history.heartbeats.clone();
        beats.reverse();
        let gap_ms = summary.heartbeat_ms.saturating_mul(2);
        let samples: Vec<LatencySample> = beats
            .iter()
            .map(|h| LatencySample {
                ts_ms: h.ts_ms,
                latency_ms: h
                    .outcome
                    .latency_ms
                    .filter(|_| h.outcome.health != Health::Down)
                    .map(|l| l as f64),
                max_ms: None,
            })
            .collect();
        let samples = downsample(samples, from_ms, to_ms);
        let periods = beats
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let next = beats
                    .get(i + 1)
                    .map_or(h.ts_ms + summary.heartbeat_ms, |n| n.ts_ms);
                Period {
                    start_ms: h.ts_ms,
                    end_ms: next.min(h.ts_ms + gap_ms),
                    health: history
                        .quiet
                        .get(&h.ts_ms)
                        .map_or_else(|| health_class(h.outcome.health), |q| quiet_class(*q)),
                }
            })
            .collect();
        (samples, periods)
    } else {
        let samples = history
            .hourly
            .iter()
            .map(|p| LatencySample {
                ts_ms: p.hour_ms + HOUR_MS / 2,
                latency_ms: p.latency_avg_ms,
                max_ms: p.latency_max_ms.map(|m| m as f64),
            })
            .collect();
        let periods = history
            .hourly
            .iter()
            .map(|p| Period {
                start_ms: p.hour_ms,
                end_ms: p.hour_ms + HOUR_MS,
                // An hour mostly muted or in maintenance is shown as such.
                health: if p.quiet > p.up + p.degraded + p.down {
                    "quiet"
                } else if p.up + p.degraded == 0 {
                    "down"
                } else if p.degraded > p.up {
                    "degraded"
                } else {
                    "up"
                },
            })
            .collect();
        (samples, periods)
    };
    let mut timeline = charts::timeline(&periods, from_ms, to_ms, tz);
    // Outages are exact; draw them over the hourly colours, except in hours mostly muted or in
    // maintenance, which stay shown as such.
    if !history.hourly.is_empty() {
        let quiet_hours: HashSet<i64> = history
            .hourly
            .iter()
            .filter(|p| p.quiet > p.up + p.degraded + p.down)
            .map(|p| p.hour_ms)
            .collect();
        let outage_periods = outage_periods(&history.outages, &quiet_hours, from_ms, to_ms);
        let overlay = charts::timeline(&outage_periods, from_ms, to_ms, tz);
        timeline
            .segments
            .extend(overlay.segments.into_iter().filter(|s| s.health == "down"));
    }
    let chart = charts::latency_chart(&samples, from_ms, to_ms, tz);

    let outages_more = history.outages.len().saturating_sub(MAX_LISTED_OUTAGES);
    let outages: Vec<Value> = history
        .outages
        .iter()
        .take(MAX_LISTED_OUTAGES)
        .map(|o| {
            json!({
                "start": format_local(o.start_ms, tz),
                "start_ms": o.start_ms,
                "end": o.end_ms.map(|ms| format_local(ms, tz)),
                "end_ms": o.end_ms,
                "duration": human_duration(o.end_ms.unwrap_or(now_ms) - o.start_ms),
                "reason": o.reason.map(|r| r.describe()).unwrap_or("down"),
                "message": redact_text(&o.message),
            })
        })
        .collect();
    let mut seen = BTreeSet::new();
    let reasons: Vec<Value> = history
        .problems
        .iter()
        .map(|h| (h.ts_ms, &h.outcome))
        .filter(|(_, o)| seen.insert((o.reason.map(|r| r.code()), o.message.clone())))
        .take(5)
        .map(|(ts_ms, o)| {
            json!({
                "at": format_local(ts_ms, tz),
                "at_ms": ts_ms,
                "health": o.health.as_str(),
                "reason": o.reason.map(|r| r.describe()).unwrap_or("problem"),
                "message": redact_text(&o.message),
            })
        })
        .collect();
    let ranges: Vec<Value> = RANGES
        .iter()
        .map(|(key, label, _)| {
            json!({
                "key": key,
                "label": label,
                "href": format!("{}?range={key}", links::stream_href(&summary.name)),
                "current": *key == range_key,
            })
        })
        .collect();
    let (picture, verdict_picture) = kept_pictures(state, &summary, tz, now_ms).await;
    let data = json!({
        "layout": respond::layout(state, Some(principal), summary.name.clone(), "dashboard"),
        "picture": picture,
        "verdict_picture": verdict_picture,
        "pictures_enabled": config.pictures.enabled,
        "stream": dashboard_row(&summary, tz, now_ms),
        "url": summary.url,
        "pipeline": summary.learned.as_ref().and_then(|l| l.facts.template.clone()).unwrap_or_else(|| summary.pipeline.clone()),
        "learned": summary.learned.as_ref().map(|l| l.facts.notes()).unwrap_or_default(),
        "heartbeat_seconds": summary.heartbeat_ms / 1000,
        "last_heartbeat": summary.status.as_ref().and_then(|s| s.last_ts_ms).map(|ms| format_local(ms, tz)),
        "last_heartbeat_ms": summary.status.as_ref().and_then(|s| s.last_ts_ms),
        "ranges": ranges,
        "range_label": RANGES.iter().find(|(k, _, _)| *k == range_key).map(|(_, l, _)| *l),
        "hourly": !history.hourly.is_empty(),
        "bucketed": history.heartbeats.len() > MAX_CHART_POINTS,
        "chart": chart,
        "timeline": timeline,
        "outages": outages,
        "outages_more": outages_more,
        "outages_href": format!("{}/outages", links::stream_api_href(&summary.name)),
        "exports": {
            "heartbeats_csv": links::export_href("heartbeats.csv", Some(&summary.name)),
            "heartbeats_jsonl": links::export_href("heartbeats.jsonl", Some(&summary.name)),
            "outages_csv": links::export_href("outages.csv", Some(&summary.name)),
        },
        "reasons": reasons,
        "timezone": config.timezone_name,
        "back": "stream",
        // Shown only for a stream that had quiet time this week.
        "quiet_shown": summary.last_7d.quiet.is_some_and(|share| share > 0.0),
        "quiet_24h": fleet::percent(summary.last_24h.quiet),
        "quiet_7d": fleet::percent(summary.last_7d.quiet),
        // The live view, unless turned off (`web.live_max_cameras: 0`).
        "live_href": (config.web.live_max_cameras > 0)
            .then(|| format!("{}/live.mjpg", links::stream_href(&summary.name))),
        "live_seconds": config.web.live_duration.as_secs(),
        "camera_clock": camera_clock_fact(&summary, tz),
    });
    Ok(respond::render(state, "stream", StatusCode::OK, &data))
}

/// "camera clock +5 min 0 s ahead" or "clock not readable: …", with when it was read
/// (`onvif:` streams with a reading only).
fn camera_clock_fact(summary: &fleet::StreamSummary, tz: &'static time_tz::Tz) -> Option<Value> {
    let clock = summary.camera_clock.as_ref()?;
    let text = match (clock.offset_ms, &clock.error) {
        (Some(offset_ms), _) => format!("camera clock {}", crate::onvif::skew::describe_offset(offset_ms)),
        (None, error) => format!(
            "clock not readable: {}",
            redact_text(error.as_deref().unwrap_or("no answer"))
        ),
    };
    Some(json!({
        "text": text,
        "checked": format_local(clock.checked_at_ms, tz),
        "checked_ms": clock.checked_at_ms,
    }))
}

/// The last picture the monitor kept and, while the stream is degraded by a picture verdict, the
/// picture behind that verdict (with its reason), as the template shows them.
async fn kept_pictures(
    state: &Arc<WebState>,
    summary: &fleet::StreamSummary,
    tz: &time_tz::Tz,
    now_ms: i64,
) -> (Option<Value>, Option<Value>) {
    let dir = pictures::dir(state);
    let (id, name) = (summary.stream_id(), summary.name.clone());
    let (last, verdict) = tokio::task::spawn_blocking(move || {
        (
            pictures::info(&dir, id, &name, PictureKind::Last),
            pictures::info(&dir, id, &name, PictureKind::Verdict),
        )
    })
    .await
    .unwrap_or_default();
    let current_reason = summary.status.as_ref().and_then(|s| s.reason);
    let verdict = verdict.filter(|v| {
        summary.state == fleet::State::Degraded && v.reason.as_deref() == current_reason.map(|r| r.code())
    });
    let shape = |info: PictureInfo| {
        json!({
            "url": info.url,
            "width": info.width,
            "height": info.height,
            "taken": format_local(info.ts_ms, tz),
            "taken_ms": info.ts_ms,
            "ago": human_duration(now_ms - info.ts_ms),
            "reason": current_reason.filter(|_| info.reason.is_some()).map(|r| r.describe()),
            "message": info.message.as_deref().map(redact_text),
        })
    };
    (last.map(shape), verdict.map(shape))
}

/// The outages within `[from_ms, to_ms)` as timeline periods, cut out of `quiet_hours`.
fn outage_periods(outages: &[Outage], quiet_hours: &HashSet<i64>, from_ms: i64, to_ms: i64) -> Vec<Period> {
    let mut periods = Vec::new();
    for outage in outages {
        let start = outage.start_ms.max(from_ms);
        let end = outage.end_ms.unwrap_or(to_ms).min(to_ms);
        let mut cursor = start;
        while cursor < end {
            let hour_end = (cursor.div_euclid(HOUR_MS) + 1) * HOUR_MS;
            let piece_end = hour_end.min(end);
            if !quiet_hours.contains(&(hour_end - HOUR_MS)) {
                periods.push(Period {
                    start_ms: cursor,
                    end_ms: piece_end,
                    health: "down",
                });
            }
            cursor = piece_end;
        }
    }
    periods.sort_by_key(|period| period.start_ms);
    periods
}

/// Points a chart draws at most; denser raw heartbeats are averaged into time buckets (with the
/// bucket's worst latency kept), so a day at a 15 s heartbeat stays a readable line.
const MAX_CHART_POINTS: usize = 360;

fn downsample(samples: Vec<LatencySample>, from_ms: i64, to_ms: i64) -> Vec<LatencySample> {
    if samples.len() <= MAX_CHART_POINTS {
        return samples;
    }
    let width_ms = ((to_ms - from_ms) / MAX_CHART_POINTS as i64).max(1);
    let mut buckets: Vec<(i64, Vec<Option<f64>>)> = Vec::new();
    for sample in samples {
        let bucket = (sample.ts_ms - from_ms).div_euclid(width_ms);
        match buckets.last_mut() {
            Some((index, values)) if *index == bucket => values.push(sample.latency_ms),
            _ => buckets.push((bucket, vec![sample.latency_ms])),
        }
    }
    buckets
        .into_iter()
        .map(|(bucket, values)| {
            let video: Vec<f64> = values.iter().flatten().copied().collect();
            LatencySample {
                ts_ms: from_ms + bucket * width_ms + width_ms / 2,
                // A bucket in which no heartbeat delivered video counts as down.
                latency_ms: (!video.is_empty()).then(|| video.iter().sum::<f64>() / video.len() as f64),
                max_ms: video.iter().copied().reduce(f64::max),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_are_cut_out_of_quiet_hours() {
        let outage = Outage {
            start_ms: HOUR_MS / 2,
            end_ms: Some(3 * HOUR_MS + 60_000),
            reason: None,
            message: String::new(),
        };
        let quiet: HashSet<i64> = [HOUR_MS, 2 * HOUR_MS].into_iter().collect();
        let periods = outage_periods(&[outage], &quiet, 0, 10 * HOUR_MS);
        let spans: Vec<(i64, i64)> = periods.iter().map(|p| (p.start_ms, p.end_ms)).collect();
        assert_eq!(
            spans,
            [(HOUR_MS / 2, HOUR_MS), (3 * HOUR_MS, 3 * HOUR_MS + 60_000)]
        );
    }
}
