//! The dashboard: every configured stream with its state, since when, latency, uptimes and a
//! latency sparkline, filtered by name and state; it reloads itself every
//! [`DASHBOARD_REFRESH_SECONDS`]. `?view=wall` shows the same cameras as a wall of their last
//! pictures ([`super::wall`]) instead of the table; the choice is remembered in a cookie.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use warp::http::StatusCode;
use warp::reply::Response;

use crate::clock::format_local;
use crate::clock::human_duration;
use crate::fleet::{self, Counts, State, StreamSummary};
use crate::web::auth::Principal;
use crate::web::charts;
use crate::web::links;
use crate::web::respond::{self, Layout};

use super::wall::{wall_cards, WallCard};
use crate::web::{WebError, WebState};

/// Seconds between automatic reloads of the dashboard.
pub const DASHBOARD_REFRESH_SECONDS: u32 = 30;
/// The cookie that remembers the table or wall view (not a secret, one year).
pub const VIEW_COOKIE: &str = "streampulse_view";
const VIEW_COOKIE_MAX_AGE_S: i64 = 365 * 24 * 3600;

/// `GET /?q=&status=`
#[derive(Debug, Default, Deserialize)]
pub struct DashboardQuery {
    /// Part of a stream name, any case.
    pub q: Option<String>,
    /// Only streams in this state (`up`, `down`, …); an unknown value filters nothing.
    pub status: Option<String>,
    /// `table` or `wall`; absent: the remembered one.
    pub view: Option<String>,
}

/// Table or wall: asked in the query, else remembered in the cookie, else the table.
fn wall_wanted(query: &DashboardQuery, cookie: Option<&str>) -> bool {
    match query.view.as_deref().or(cookie) {
        Some(view) => view == "wall",
        None => false,
    }
}

/// The dashboard's address with the current filters and a view.
fn view_href(query: &DashboardQuery, view: &str) -> String {
    let mut href = format!("/?view={view}");
    for (key, value) in [("q", &query.q), ("status", &query.status)] {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            href.push_str(&format!("&{key}={}", links::encode(value)));
        }
    }
    href
}

fn latency_text(ms: Option<u64>) -> String {
    match ms {
        Some(ms) if ms >= 10_000 => format!("{:.1} s", ms as f64 / 1000.0),
        Some(ms) => format!("{ms} ms"),
        None => "—".into(),
    }
}

fn resolution_text(summary: &StreamSummary) -> Option<String> {
    let status = summary.status.as_ref()?;
    match (status.width, status.height) {
        (Some(w), Some(h)) if w > 0 && h > 0 => Some(format!("{w}×{h}")),
        _ => None,
    }
}

/// One camera's row on the dashboard. A typed struct rather than `json!`: handlebars converts
/// its data to JSON once, and with 1,000 cameras building the tree twice was a fifth of the page.
#[derive(Serialize)]
pub(super) struct DashboardRow<'a> {
    name: &'a str,
    href: String,
    snapshot_href: String,
    health: &'static str,
    health_label: &'static str,
    since: Option<String>,
    since_ms: Option<i64>,
    since_ago: Option<String>,
    latency: String,
    resolution: Option<String>,
    codec: Option<&'a str>,
    uptime_24h: String,
    uptime_7d: String,
    spark: charts::Sparkline,
    reason: Option<&'static str>,
    /// A change the latest probes show that is not confirmed yet: "failing 1/2".
    confirming: Option<String>,
    enabled: bool,
    /// "muted by ann until 14:00", "in maintenance": no notifications now.
    quiet: Option<String>,
    muted: bool,
    /// The mute forms' address (`…/mute`, `…/unmute`), when the store knows the stream.
    mute_href: Option<String>,
    unmute_href: Option<String>,
}

/// What a stream's quiet time says on the pages, if it is quiet now.
pub(super) fn quiet_text(summary: &StreamSummary, tz: &time_tz::Tz) -> Option<String> {
    match (&summary.mute, summary.in_maintenance) {
        (Some(mute), _) => Some(match mute.until_ms {
            Some(until) => format!("muted by {} until {}", mute.muted_by, format_local(until, tz)),
            None => format!("muted by {} until unmuted", mute.muted_by),
        }),
        (None, true) => Some("in maintenance".to_string()),
        (None, false) => None,
    }
}

pub(super) fn dashboard_row<'a>(
    summary: &'a StreamSummary,
    tz: &time_tz::Tz,
    now_ms: i64,
) -> DashboardRow<'a> {
    let status = summary.status.as_ref();
    let since_ms = match summary.state {
        // Stale: since the last heartbeat, which is what went quiet.
        State::Stale => status.and_then(|s| s.last_ts_ms),
        _ => status.and_then(|s| s.since_ms),
    };
    let reason = status
        .and_then(|s| s.reason)
        .filter(|_| matches!(summary.state, State::Down | State::Degraded))
        .map(|r| r.describe());
    DashboardRow {
        name: &summary.name,
        href: links::stream_href(&summary.name),
        snapshot_href: format!("{}/snapshot.jpg", links::stream_api_href(&summary.name)),
        health: summary.state.as_str(),
        health_label: summary.state.label(),
        since: since_ms.map(|ms| format_local(ms, tz)),
        since_ms,
        since_ago: since_ms.map(|ms| human_duration(now_ms - ms)),
        latency: latency_text(status.and_then(|s| s.last_latency_ms)),
        resolution: resolution_text(summary),
        codec: status.and_then(|s| s.codec.as_deref()),
        uptime_24h: fleet::percent(summary.last_24h.uptime),
        uptime_7d: fleet::percent(summary.last_7d.uptime),
        spark: charts::sparkline(&summary.sparkline),
        reason,
        confirming: summary.confirming.map(|c| c.label()),
        enabled: summary.enabled,
        quiet: quiet_text(summary, tz),
        muted: summary.mute.is_some(),
        mute_href: summary
            .stream_id()
            .map(|_| format!("{}/mute", links::stream_href(&summary.name))),
        unmute_href: summary
            .stream_id()
            .map(|_| format!("{}/unmute", links::stream_href(&summary.name))),
    }
}

#[derive(Serialize)]
struct DashboardPage<'a> {
    layout: Layout,
    summary: Vec<SummaryItem>,
    total: usize,
    shown: usize,
    filtered: bool,
    rows: Vec<DashboardRow<'a>>,
    q: &'a str,
    statuses: Vec<StatusOption>,
    updated: String,
    updated_ms: i64,
    timezone: &'a str,
    /// The wall's cards when the wall is shown (the table is not rendered then).
    wall: Option<Vec<WallCard>>,
    view: &'static str,
    table_href: String,
    wall_href: String,
}

/// One count of the summary line ("3 down").
#[derive(Serialize)]
struct SummaryItem {
    health: &'static str,
    count: usize,
    words: &'static str,
}

/// One entry of the state filter.
#[derive(Serialize)]
struct StatusOption {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

fn summary_items(counts: Counts) -> Vec<SummaryItem> {
    let items = [
        (State::Up, counts.up, "up"),
        (State::Down, counts.down, "down"),
        (State::Degraded, counts.degraded, "degraded"),
        (State::Stale, counts.stale, "stale"),
        (State::Unknown, counts.unknown, "not probed yet"),
        (State::Disabled, counts.disabled, "disabled"),
    ];
    items
        .into_iter()
        .filter(|(health, count, _)| *count > 0 || matches!(health, State::Up | State::Down))
        .map(|(health, count, words)| SummaryItem {
            health: health.as_str(),
            count,
            words,
        })
        .collect()
}

pub async fn dashboard(
    principal: Principal,
    state: Arc<WebState>,
    query: DashboardQuery,
    view_cookie: Option<String>,
) -> Response {
    let wall = wall_wanted(&query, view_cookie.as_deref());
    match dashboard_inner(&principal, &state, &query, wall).await {
        Ok(mut response) => {
            if let Some(view) = query.view.as_deref().filter(|v| matches!(*v, "table" | "wall")) {
                crate::web::auth::add_cookie(&mut response, &state, VIEW_COOKIE, view, VIEW_COOKIE_MAX_AGE_S);
            }
            response
        }
        Err(error) => respond::failure_page(&state, Some(&principal), error),
    }
}

async fn dashboard_inner(
    principal: &Principal,
    state: &Arc<WebState>,
    query: &DashboardQuery,
    wall: bool,
) -> Result<Response, WebError> {
    let now_ms = state.now_ms();
    let (config, streams) = state.fleet(true).await?;
    let counts = Counts::of(&streams);
    let text = query
        .q
        .as_deref()
        .map(|q| q.trim().to_lowercase())
        .unwrap_or_default();
    let wanted = query.status.as_deref().and_then(State::parse);
    let shown: Vec<&StreamSummary> = streams
        .iter()
        .filter(|s| text.is_empty() || s.name.to_lowercase().contains(&text))
        .filter(|s| wanted.is_none_or(|state| s.state == state))
        .collect();
    let (rows, wall_cards) = if wall {
        (Vec::new(), Some(wall_cards(state, &config, &shown, now_ms).await))
    } else {
        let rows: Vec<DashboardRow<'_>> = shown
            .iter()
            .map(|s| dashboard_row(s, config.timezone, now_ms))
            .collect();
        (rows, None)
    };
    let statuses: Vec<StatusOption> = State::ALL
        .into_iter()
        .map(|h| StatusOption {
            value: h.as_str(),
            label: h.label(),
            selected: Some(h) == wanted,
        })
        .collect();
    let mut page = respond::layout(state, Some(principal), "Dashboard", "dashboard");
    page.refresh_seconds = Some(DASHBOARD_REFRESH_SECONDS);
    let data = DashboardPage {
        layout: page,
        summary: summary_items(counts),
        total: streams.len(),
        shown: shown.len(),
        filtered: !text.is_empty() || wanted.is_some(),
        rows,
        q: query.q.as_deref().unwrap_or(""),
        statuses,
        updated: format_local(now_ms, config.timezone),
        updated_ms: now_ms,
        timezone: &config.timezone_name,
        wall: wall_cards,
        view: if wall { "wall" } else { "table" },
        table_href: view_href(query, "table"),
        wall_href: view_href(query, "wall"),
    };
    Ok(respond::render(state, "dashboard", StatusCode::OK, &data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn query(q: Option<&str>, status: Option<&str>, view: Option<&str>) -> DashboardQuery {
        DashboardQuery {
            q: q.map(str::to_string),
            status: status.map(str::to_string),
            view: view.map(str::to_string),
        }
    }

    #[test]
    fn the_view_comes_from_the_query_then_the_cookie() {
        assert!(!wall_wanted(&query(None, None, None), None));
        assert!(wall_wanted(&query(None, None, None), Some("wall")));
        assert!(!wall_wanted(&query(None, None, Some("table")), Some("wall")));
        assert!(wall_wanted(&query(None, None, Some("wall")), None));
        assert_eq!(
            view_href(&query(Some("gate 1&2"), Some("down"), None), "wall"),
            "/?view=wall&q=gate%201%262&status=down"
        );
    }

    proptest! {
        #[test]
        fn any_filter_stays_inside_its_query_value(q in "\\PC{0,20}", status in "\\PC{0,10}") {
            let href = view_href(&query(Some(&q), Some(&status), None), "table");
            prop_assert!(href.starts_with("/?view=table"));
            prop_assert_eq!(href.matches('&').count(), usize::from(!q.is_empty()) + usize::from(!status.is_empty()));
            prop_assert!(!href.contains(['"', '<', '>', '#', ' ']));
        }
    }
}
