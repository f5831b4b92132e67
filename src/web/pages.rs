//! Page handlers: login and first-run setup, the dashboard, a stream's history, and the config
//! editor. Each gathers data, shapes it for a template and renders; errors become an error page
//! with the right status.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Value};
use warp::http::{HeaderMap, HeaderValue, StatusCode};
use warp::reply::Response;

use super::charts::{self, LatencySample, Period};
use super::filters::{cookie, Principal, SESSION_COOKIE};
use super::{accounts, csrf, editor, pct, WebError, WebState};
use crate::clock::format_local;
use crate::clock::{human_duration, HOUR_MS};
use crate::config::{self, ConfigError};
use crate::fleet::{self, Counts, State, StreamSummary};
use crate::heartbeat::Heartbeat;
use crate::pipeline::TemplateLibrary;
use crate::probe::Health;
use crate::store::{HourlyPoint, Outage};
use crate::url::redact_text;

/// Seconds between automatic reloads of the dashboard.
pub const DASHBOARD_REFRESH_SECONDS: u32 = 30;
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

/// What every page's layout needs.
#[derive(Debug, Serialize)]
struct Layout {
    title: String,
    user: Option<String>,
    csrf: Option<String>,
    /// Which navigation entry is current.
    nav: &'static str,
    /// The config file on disk is invalid (the last valid one is in use).
    config_problem: Option<String>,
    /// The monitor reports a full disk: heartbeats held in memory, some perhaps lost.
    store_problem: Option<String>,
    refresh_seconds: Option<u32>,
}

fn layout(
    state: &WebState,
    principal: Option<&Principal>,
    title: impl Into<String>,
    nav: &'static str,
) -> Layout {
    Layout {
        title: title.into(),
        user: principal.map(Principal::display_name),
        csrf: principal.and_then(|p| p.csrf_token().map(str::to_string)),
        nav,
        config_problem: principal.and_then(|_| state.config_problem()),
        store_problem: principal.and_then(|_| state.store_health().banner(state.config().timezone)),
        refresh_seconds: None,
    }
}

fn html_response(status: StatusCode, body: String) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

fn see_other(location: &str) -> Response {
    let mut response = Response::new(String::new().into());
    *response.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert("location", value);
    }
    response
}

/// Only same-site paths are followed after login (no `//host` or `https://…`).
fn safe_next(next: Option<&String>) -> String {
    match next {
        Some(next) if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') => {
            next.clone()
        }
        _ => "/".to_string(),
    }
}

pub fn redirect_to_login(next: &str) -> Response {
    if next == "/" {
        return see_other("/login");
    }
    see_other(&format!("/login?next={}", pct::encode(next)))
}

fn render(state: &WebState, template: &str, status: StatusCode, data: &impl Serialize) -> Response {
    match state.views().render(template, data) {
        Ok(body) => html_response(status, body),
        Err(error) => {
            tracing::error!("cannot render {template}: {}", redact_text(&error.to_string()));
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
        }
    }
}

fn plain(status: StatusCode, message: &str) -> Response {
    let mut response = Response::new(message.to_string().into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// An error page; the message is shown escaped and redacted.
pub fn error_page(
    state: &WebState,
    principal: Option<&Principal>,
    status: StatusCode,
    message: &str,
) -> Response {
    let data = json!({
        "layout": layout(state, principal, format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("Error")), ""),
        "status": status.as_u16(),
        "reason": status.canonical_reason().unwrap_or("Error"),
        "message": redact_text(message),
    });
    render(state, "error", status, &data)
}

pub fn not_found_page(state: &WebState, principal: &Principal) -> Response {
    error_page(state, Some(principal), StatusCode::NOT_FOUND, "no such page")
}

fn failure_page(state: &WebState, principal: Option<&Principal>, error: WebError) -> Response {
    if error.status().is_server_error() {
        tracing::error!("request failed: {}", error.public_message());
    }
    let mut response = error_page(state, principal, error.status(), &error.public_message());
    if let WebError::TooManyRequests { retry_after_s, .. } = error {
        if let Ok(value) = HeaderValue::from_str(&retry_after_s.to_string()) {
            response.headers_mut().insert("retry-after", value);
        }
    }
    response
}

/// `Set-Cookie` text: always HttpOnly and SameSite=Strict; Secure behind TLS.
fn set_cookie(state: &WebState, name: &str, value: &str, max_age_s: i64) -> String {
    let secure = if state.config().web.behind_tls {
        "; Secure"
    } else {
        ""
    };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}")
}

fn add_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append("set-cookie", value);
    }
}

/// Checks the origin and the form's CSRF token for a cookie-authenticated POST.
fn check_csrf(
    principal: &Principal,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<(), WebError> {
    match principal.csrf_token() {
        Some(expected) => {
            csrf::check_origin(headers)?;
            csrf::check_token(expected, form.get(csrf::FIELD).map(String::as_str))
        }
        // API tokens carry no ambient authority for a forger to borrow.
        None => Ok(()),
    }
}

// ---- Login, logout, setup ----

/// The pre-login CSRF value: the existing cookie's, or a new one.
fn login_csrf(headers: Option<&HeaderMap>) -> (String, bool) {
    match headers.and_then(|h| cookie(h, csrf::LOGIN_COOKIE)) {
        Some(value) if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) => (value, false),
        _ => (accounts::random_hex(32), true),
    }
}

fn login_page(
    state: &WebState,
    status: StatusCode,
    headers: Option<&HeaderMap>,
    next: &str,
    user: &str,
    error: Option<String>,
) -> Response {
    let (token, fresh) = login_csrf(headers);
    let data = json!({
        "layout": layout(state, None, "Log in", "login"),
        "csrf_field": token,
        "next": next,
        "user": user,
        "error": error,
        "setup_pending": state.setup_token().is_some(),
    });
    let mut response = render(state, "login", status, &data);
    if fresh {
        add_cookie(
            &mut response,
            &set_cookie(state, csrf::LOGIN_COOKIE, &token, 3600),
        );
    }
    response
}

pub async fn login_form(state: Arc<WebState>, query: HashMap<String, String>) -> Response {
    login_page(
        &state,
        StatusCode::OK,
        None,
        &safe_next(query.get("next")),
        "",
        None,
    )
}

pub async fn login(
    state: Arc<WebState>,
    headers: HeaderMap,
    remote: Option<SocketAddr>,
    form: HashMap<String, String>,
) -> Response {
    let next = safe_next(form.get("next"));
    let user = form.get("user").map(|u| u.trim().to_string()).unwrap_or_default();
    let password = form.get("password").cloned().unwrap_or_default();
    let expected = cookie(&headers, csrf::LOGIN_COOKIE).unwrap_or_default();
    let csrf_ok = csrf::check_origin(&headers).is_ok()
        && csrf::check_token(&expected, form.get(csrf::FIELD).map(String::as_str)).is_ok();
    if !csrf_ok {
        let message = csrf::forbidden().public_message();
        return login_page(&state, StatusCode::FORBIDDEN, None, &next, &user, Some(message));
    }
    let client = super::throttle::client_address(
        remote.map(|addr| addr.ip()),
        &headers,
        &state.config().web.trusted_proxies,
    );
    let now_ms = state.now_ms();
    if let Some(wait_ms) = state.throttle().blocked(client, &user, now_ms) {
        let minutes = (wait_ms + 59_999) / 60_000;
        tracing::warn!(client = ?client, "login refused: too many failed attempts");
        let message = format!("Too many failed logins. Try again in {minutes} min.");
        let mut response = login_page(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            Some(&headers),
            &next,
            &user,
            Some(message),
        );
        if let Ok(value) = HeaderValue::from_str(&(wait_ms / 1000).max(1).to_string()) {
            response.headers_mut().insert("retry-after", value);
        }
        return response;
    }
    // Argon2 runs outside the accounts connection's lock, so one login does not stall every
    // other request's session lookup.
    let name = user.clone();
    let checked = match state
        .accounts(move |accounts| Ok(accounts.password_hash_of(&name)?))
        .await
    {
        Ok(check) => {
            let verified = tokio::task::spawn_blocking(move || check.verify(&password)).await;
            match verified {
                Ok(Ok(Some(user_id))) => state
                    .accounts(move |accounts| Ok(accounts.create_session(user_id, now_ms)?))
                    .await
                    .map(Some),
                Ok(Ok(None)) => Ok(None),
                Ok(Err(error)) => Err(WebError::from(error)),
                Err(error) => Err(WebError::Internal(format!("password check failed: {error}"))),
            }
        }
        Err(error) => Err(error),
    };
    match checked {
        Ok(Some(secret)) => {
            state.throttle().record_success(&user);
            tracing::info!(user = %user, "logged in");
            let max_age_s = state.session_limits().max_ms / 1000;
            let mut response = see_other(&next);
            add_cookie(
                &mut response,
                &set_cookie(&state, SESSION_COOKIE, &secret, max_age_s),
            );
            add_cookie(&mut response, &set_cookie(&state, csrf::LOGIN_COOKIE, "", 0));
            response
        }
        Ok(None) => {
            state.throttle().record_failure(client, &user, now_ms);
            tracing::warn!(client = ?client, "failed login");
            let message = "Wrong user name or password.".to_string();
            login_page(
                &state,
                StatusCode::UNAUTHORIZED,
                Some(&headers),
                &next,
                &user,
                Some(message),
            )
        }
        Err(error) => failure_page(&state, None, error),
    }
}

pub async fn logout(
    principal: Principal,
    state: Arc<WebState>,
    headers: HeaderMap,
    form: HashMap<String, String>,
) -> Response {
    if let Err(error) = check_csrf(&principal, &headers, &form) {
        return failure_page(&state, Some(&principal), error);
    }
    if let Principal::Session { secret, .. } = principal {
        if let Err(error) = state
            .accounts(move |accounts| Ok(accounts.delete_session(&secret)?))
            .await
        {
            return failure_page(&state, None, error);
        }
    }
    let mut response = see_other("/login");
    add_cookie(&mut response, &set_cookie(&state, SESSION_COOKIE, "", 0));
    response
}

fn setup_page(
    state: &WebState,
    status: StatusCode,
    headers: Option<&HeaderMap>,
    token: &str,
    user: &str,
    error: Option<String>,
) -> Response {
    let (csrf_value, fresh) = login_csrf(headers);
    let data = json!({
        "layout": layout(state, None, "Create the administrator", "login"),
        "csrf_field": csrf_value,
        "token": token,
        "user": user,
        "error": error,
        "min_password": accounts::MIN_PASSWORD_CHARS,
    });
    let mut response = render(state, "setup", status, &data);
    if fresh {
        add_cookie(
            &mut response,
            &set_cookie(state, csrf::LOGIN_COOKIE, &csrf_value, 3600),
        );
    }
    response
}

pub async fn setup_form(state: Arc<WebState>, query: HashMap<String, String>) -> Response {
    let token = query.get("token").cloned().unwrap_or_default();
    if !state.setup_token_matches(&token) {
        return error_page(
            &state,
            None,
            StatusCode::NOT_FOUND,
            "This setup link is not valid (it works once, and only while no user exists). Log in instead.",
        );
    }
    setup_page(&state, StatusCode::OK, None, &token, "admin", None)
}

pub async fn setup(state: Arc<WebState>, headers: HeaderMap, form: HashMap<String, String>) -> Response {
    let token = form.get("token").cloned().unwrap_or_default();
    let user = form.get("user").map(|u| u.trim().to_string()).unwrap_or_default();
    let expected = cookie(&headers, csrf::LOGIN_COOKIE).unwrap_or_default();
    let csrf_ok = csrf::check_origin(&headers).is_ok()
        && csrf::check_token(&expected, form.get(csrf::FIELD).map(String::as_str)).is_ok();
    if !state.setup_token_matches(&token) {
        return error_page(
            &state,
            None,
            StatusCode::NOT_FOUND,
            "This setup link is not valid any more. Log in instead.",
        );
    }
    if !csrf_ok {
        let message = csrf::forbidden().public_message();
        return setup_page(&state, StatusCode::FORBIDDEN, None, &token, &user, Some(message));
    }
    let password = form.get("password").cloned().unwrap_or_default();
    if form.get("password2") != Some(&password) {
        let message = "The two passwords differ.".to_string();
        return setup_page(
            &state,
            StatusCode::BAD_REQUEST,
            Some(&headers),
            &token,
            &user,
            Some(message),
        );
    }
    let now_ms = state.now_ms();
    let name = user.clone();
    let created = state
        .accounts(move |accounts| {
            Ok(match accounts.add_first_user(&name, &password, now_ms)? {
                Some(user_id) => Some(accounts.create_session(user_id, now_ms)?),
                None => None,
            })
        })
        .await;
    match created {
        Ok(Some(secret)) => {
            state.take_setup_token(&token);
            tracing::info!(user = %user, "first administrator created through the setup link");
            let mut response = see_other("/");
            add_cookie(
                &mut response,
                &set_cookie(
                    &state,
                    SESSION_COOKIE,
                    &secret,
                    state.session_limits().max_ms / 1000,
                ),
            );
            add_cookie(&mut response, &set_cookie(&state, csrf::LOGIN_COOKIE, "", 0));
            response
        }
        Ok(None) => {
            state.take_setup_token(&token);
            error_page(
                &state,
                None,
                StatusCode::CONFLICT,
                "A user already exists. Log in instead.",
            )
        }
        Err(WebError::Accounts(error))
            if !matches!(
                error,
                accounts::AccountError::Sqlite(_) | accounts::AccountError::Store(_)
            ) =>
        {
            setup_page(
                &state,
                StatusCode::BAD_REQUEST,
                Some(&headers),
                &token,
                &user,
                Some(error.to_string()),
            )
        }
        Err(error) => failure_page(&state, None, error),
    }
}

// ---- Dashboard ----

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
struct DashboardRow<'a> {
    name: &'a str,
    href: String,
    snapshot_href: String,
    health: &'static str,
    health_label: &'static str,
    since: Option<String>,
    since_ago: Option<String>,
    latency: String,
    resolution: Option<String>,
    codec: Option<&'a str>,
    uptime_24h: String,
    uptime_7d: String,
    spark: charts::Sparkline,
    reason: Option<&'static str>,
    enabled: bool,
}

fn dashboard_row<'a>(summary: &'a StreamSummary, tz: &time_tz::Tz, now_ms: i64) -> DashboardRow<'a> {
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
        href: pct::stream_href(&summary.name),
        snapshot_href: format!("{}/snapshot.jpg", pct::stream_api_href(&summary.name)),
        health: summary.state.as_str(),
        health_label: summary.state.label(),
        since: since_ms.map(|ms| format_local(ms, tz)),
        since_ago: since_ms.map(|ms| human_duration(now_ms - ms)),
        latency: latency_text(status.and_then(|s| s.last_latency_ms)),
        resolution: resolution_text(summary),
        codec: status.and_then(|s| s.codec.as_deref()),
        uptime_24h: fleet::percent(summary.last_24h.uptime),
        uptime_7d: fleet::percent(summary.last_7d.uptime),
        spark: charts::sparkline(&summary.sparkline),
        reason,
        enabled: summary.enabled,
    }
}

#[derive(Serialize)]
struct DashboardPage<'a> {
    layout: Layout,
    summary: Vec<Value>,
    total: usize,
    shown: usize,
    filtered: bool,
    rows: Vec<DashboardRow<'a>>,
    q: &'a str,
    statuses: Vec<Value>,
    updated: String,
    timezone: &'a str,
}

fn summary_items(counts: Counts) -> Vec<Value> {
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
        .map(|(health, count, words)| json!({"health": health.as_str(), "count": count, "words": words}))
        .collect()
}

pub async fn dashboard(
    principal: Principal,
    state: Arc<WebState>,
    query: HashMap<String, String>,
) -> Response {
    match dashboard_inner(&principal, &state, &query).await {
        Ok(response) => response,
        Err(error) => failure_page(&state, Some(&principal), error),
    }
}

async fn dashboard_inner(
    principal: &Principal,
    state: &Arc<WebState>,
    query: &HashMap<String, String>,
) -> Result<Response, WebError> {
    let now_ms = state.now_ms();
    let (config, streams) = state.fleet(true).await?;
    let counts = Counts::of(&streams);
    let text = query
        .get("q")
        .map(|q| q.trim().to_lowercase())
        .unwrap_or_default();
    let wanted = query.get("status").and_then(|s| State::parse(s));
    let rows: Vec<DashboardRow<'_>> = streams
        .iter()
        .filter(|s| text.is_empty() || s.name.to_lowercase().contains(&text))
        .filter(|s| wanted.is_none_or(|state| s.state == state))
        .map(|s| dashboard_row(s, config.timezone, now_ms))
        .collect();
    let statuses: Vec<Value> = State::ALL
        .into_iter()
        .map(|h| json!({"value": h.as_str(), "label": h.label(), "selected": Some(h) == wanted}))
        .collect();
    let mut page = layout(state, Some(principal), "Dashboard", "dashboard");
    page.refresh_seconds = Some(DASHBOARD_REFRESH_SECONDS);
    let data = DashboardPage {
        layout: page,
        summary: summary_items(counts),
        total: streams.len(),
        shown: rows.len(),
        filtered: !text.is_empty() || wanted.is_some(),
        rows,
        q: query.get("q").map_or("", String::as_str),
        statuses,
        updated: format_local(now_ms, config.timezone),
        timezone: &config.timezone_name,
    };
    Ok(render(state, "dashboard", StatusCode::OK, &data))
}

// ---- Stream page ----

/// What the stream page reads from the store for one range.
struct History {
    heartbeats: Vec<Heartbeat>,
    hourly: Vec<HourlyPoint>,
    outages: Vec<Outage>,
    /// The latest heartbeats that were not plainly up.
    problems: Vec<Heartbeat>,
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
    query: HashMap<String, String>,
) -> Response {
    match stream_page_inner(name, &principal, &state, &query).await {
        Ok(response) => response,
        Err(error) => failure_page(&state, Some(&principal), error),
    }
}

async fn stream_page_inner(
    name: String,
    principal: &Principal,
    state: &Arc<WebState>,
    query: &HashMap<String, String>,
) -> Result<Response, WebError> {
    let config = state.config();
    let tz = config.timezone;
    let now_ms = state.now_ms();
    let range_key = query.get("range").map(String::as_str).unwrap_or("24h");
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
                    health: health_class(h.outcome.health),
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
                health: if p.up + p.degraded == 0 {
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
    // Outages are exact; draw them over the hourly colours.
    let outage_periods: Vec<Period> = history
        .outages
        .iter()
        .map(|o| Period {
            start_ms: o.start_ms,
            end_ms: o.end_ms.unwrap_or(to_ms),
            health: "down",
        })
        .collect();
    if !history.hourly.is_empty() {
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
                "end": o.end_ms.map(|ms| format_local(ms, tz)),
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
        .filter(|h| seen.insert((h.outcome.reason.map(|r| r.code()), h.outcome.message.clone())))
        .take(5)
        .map(|h| {
            json!({
                "at": format_local(h.ts_ms, tz),
                "health": h.outcome.health.as_str(),
                "reason": h.outcome.reason.map(|r| r.describe()).unwrap_or("problem"),
                "message": redact_text(&h.outcome.message),
            })
        })
        .collect();
    let ranges: Vec<Value> = RANGES
        .iter()
        .map(|(key, label, _)| {
            json!({
                "key": key,
                "label": label,
                "href": format!("{}?range={key}", pct::stream_href(&summary.name)),
                "current": *key == range_key,
            })
        })
        .collect();
    let data = json!({
        "layout": layout(state, Some(principal), summary.name.clone(), "dashboard"),
        "stream": dashboard_row(&summary, tz, now_ms),
        "url": summary.url,
        "pipeline": summary.pipeline,
        "heartbeat_seconds": summary.heartbeat_ms / 1000,
        "last_heartbeat": summary.status.as_ref().and_then(|s| s.last_ts_ms).map(|ms| format_local(ms, tz)),
        "ranges": ranges,
        "range_label": RANGES.iter().find(|(k, _, _)| *k == range_key).map(|(_, l, _)| *l),
        "hourly": !history.hourly.is_empty(),
        "bucketed": history.heartbeats.len() > MAX_CHART_POINTS,
        "chart": chart,
        "timeline": timeline,
        "outages": outages,
        "outages_more": outages_more,
        "outages_href": format!("{}/outages", pct::stream_api_href(&summary.name)),
        "reasons": reasons,
        "timezone": config.timezone_name,
    });
    Ok(render(state, "stream", StatusCode::OK, &data))
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

// ---- Config editor ----

/// Which editor form was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    Raw,
    Add,
    Remove,
    Rename,
}

/// Which stream names a form edit must leave present and absent.
struct Expected {
    present: Option<String>,
    absent: Option<String>,
}

impl Expected {
    fn present(name: &str) -> Expected {
        Expected {
            present: Some(name.to_string()),
            absent: None,
        }
    }

    fn absent(name: &str) -> Expected {
        Expected {
            present: None,
            absent: Some(name.to_string()),
        }
    }

    fn renamed(old: &str, new: &str) -> Expected {
        Expected {
            present: Some(new.to_string()),
            absent: Some(old.to_string()),
        }
    }
}

struct EditorView<'a> {
    /// The text shown in the editor.
    text: String,
    version: String,
    reveal: bool,
    problems: Vec<String>,
    notice: Option<&'a str>,
    /// A value to keep in the add form after a refused add.
    add: HashMap<String, String>,
}

async fn read_config_text(state: &WebState) -> Result<String, WebError> {
    tokio::fs::read_to_string(state.config_path())
        .await
        .map_err(|source| WebError::Io {
            context: format!("cannot read {}", state.config_path().display()),
            source,
        })
}

fn editor_page(
    state: &WebState,
    principal: &Principal,
    status: StatusCode,
    view: EditorView<'_>,
) -> Response {
    let config = state.config();
    let line_count = view.text.lines().count().max(1);
    let templates: Vec<String> = TemplateLibrary::new(config.pipelines_dir.as_deref())
        .list()
        .into_iter()
        .map(|t| t.name)
        .collect();
    let streams: Vec<&str> = config.streams.iter().map(|s| s.name.as_str()).collect();
    let data = json!({
        "layout": layout(state, Some(principal), "Configuration", "config"),
        "path": state.config_path().display().to_string(),
        "text": view.text,
        "version": view.version,
        "reveal": view.reveal,
        "line_numbers": (1..=line_count).collect::<Vec<_>>(),
        "rows": line_count.clamp(12, 40),
        "problem_count": view.problems.len(),
        "one_problem": view.problems.len() == 1,
        "problems": view.problems,
        "notice": view.notice,
        "streams": streams,
        "templates": templates,
        "add": view.add,
    });
    render(state, "config", status, &data)
}

pub async fn config_form(
    principal: Principal,
    state: Arc<WebState>,
    query: HashMap<String, String>,
) -> Response {
    let text = match read_config_text(&state).await {
        Ok(text) => text,
        Err(error) => return failure_page(&state, Some(&principal), error),
    };
    let reveal = query.get("reveal").is_some_and(|v| v == "1");
    let notice = match query.get("saved").map(String::as_str) {
        Some("1") => Some("Saved. The previous version is kept as a .bak file beside it; the monitor picks up the change by itself."),
        _ => None,
    };
    let view = EditorView {
        version: editor::version(&text),
        text: if reveal { text } else { editor::mask(&text) },
        reveal,
        problems: Vec::new(),
        notice,
        add: HashMap::new(),
    };
    editor_page(&state, &principal, StatusCode::OK, view)
}

fn field<'a>(form: &'a HashMap<String, String>, name: &str) -> &'a str {
    form.get(name).map(|v| v.trim()).unwrap_or("")
}

/// Applies one editor form to the file: refuse with every problem, or validate and write.
pub async fn config_edit(
    principal: Principal,
    state: Arc<WebState>,
    headers: HeaderMap,
    form: HashMap<String, String>,
    edit: Edit,
) -> Response {
    if let Err(error) = check_csrf(&principal, &headers, &form) {
        return failure_page(&state, Some(&principal), error);
    }
    let current = match read_config_text(&state).await {
        Ok(text) => text,
        Err(error) => return failure_page(&state, Some(&principal), error),
    };
    let reveal = form.get("reveal").is_some_and(|v| v == "1");
    // Browsers send textarea lines ending in CRLF.
    let submitted = form
        .get("text")
        .map(|t| t.replace("\r\n", "\n"))
        .unwrap_or_default();
    let refuse = |status: StatusCode, problems: Vec<String>, shown: String| {
        let add = if edit == Edit::Add {
            ["name", "url", "pipeline"]
                .into_iter()
                .map(|k| (k.to_string(), editor::mask(field(&form, k))))
                .collect()
        } else {
            HashMap::new()
        };
        let view = EditorView {
            version: editor::version(&current),
            text: shown,
            reveal,
            problems: problems.iter().map(|p| redact_text(p)).collect(),
            notice: None,
            add,
        };
        editor_page(&state, &principal, status, view)
    };
    let shown_current = if reveal {
        current.clone()
    } else {
        editor::mask(&current)
    };
    let (candidate, expect): (String, Option<Expected>) = match edit {
        Edit::Raw => {
            if form.get("version").map(String::as_str) != Some(editor::version(&current).as_str()) {
                return refuse(
                    StatusCode::CONFLICT,
                    vec![
                        "the file changed on disk since this editor was opened; your text is below, \
                          the file was not written. Copy your changes, reload and apply them again"
                            .into(),
                    ],
                    submitted,
                );
            }
            match editor::unmask(&current, &submitted) {
                Ok(text) => (text, None),
                Err(problems) => return refuse(StatusCode::BAD_REQUEST, problems, submitted),
            }
        }
        Edit::Add => {
            let name = field(&form, "name");
            let pipeline = Some(field(&form, "pipeline")).filter(|p| !p.is_empty());
            match editor::add_stream(&current, name, field(&form, "url"), pipeline) {
                Ok(text) => (text, Some(Expected::present(name))),
                Err(problem) => return refuse(StatusCode::BAD_REQUEST, vec![problem], shown_current),
            }
        }
        Edit::Remove => {
            let name = field(&form, "name");
            match editor::remove_stream(&current, name) {
                Ok(text) => (text, Some(Expected::absent(name))),
                Err(problem) => return refuse(StatusCode::BAD_REQUEST, vec![problem], shown_current),
            }
        }
        Edit::Rename => {
            let (old, new) = (field(&form, "name"), field(&form, "new_name"));
            match editor::rename_stream(&current, old, new) {
                Ok(text) => (text, Some(Expected::renamed(old, new))),
                Err(problem) => return refuse(StatusCode::BAD_REQUEST, vec![problem], shown_current),
            }
        }
    };
    let parsed = config::parse(&candidate, state.config_path());
    let shown = if edit == Edit::Raw {
        submitted.clone()
    } else {
        shown_current.clone()
    };
    let parsed = match parsed {
        Ok(parsed) => parsed,
        Err(ConfigError::Invalid { problems, .. }) => {
            let problems = problems.iter().map(ToString::to_string).collect();
            return refuse(StatusCode::BAD_REQUEST, problems, shown);
        }
        Err(error) => return refuse(StatusCode::BAD_REQUEST, vec![error.to_string()], shown),
    };
    // A form edit must have done exactly what it said, whatever the file's layout.
    if let Some(expected) = expect {
        let has = |name: &str| parsed.streams.iter().any(|s| s.name == name);
        let done =
            expected.present.as_deref().is_none_or(has) && !expected.absent.as_deref().is_some_and(has);
        if !done {
            let problem = "the form could not make this change in this file's layout; edit the YAML directly"
                .to_string();
            return refuse(StatusCode::BAD_REQUEST, vec![problem], shown);
        }
    }
    let path = state.config_path().to_path_buf();
    let saved = tokio::task::spawn_blocking(move || editor::save(&path, &candidate)).await;
    match saved {
        Ok(Ok(backup)) => {
            tracing::info!(user = %principal.display_name(), backup = %backup.display(), "configuration saved from the web editor");
            let target = if reveal {
                "/config?saved=1&reveal=1"
            } else {
                "/config?saved=1"
            };
            see_other(target)
        }
        Ok(Err(error)) => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            vec![format!(
                "the file could not be written ({error}); nothing was changed"
            )],
            shown,
        ),
        Err(error) => failure_page(&state, Some(&principal), WebError::Internal(error.to_string())),
    }
}

// ---- Static files ----

pub fn static_file(name: String, state: Arc<WebState>) -> Response {
    match state.views().static_file(&name) {
        Some((body, content_type)) => {
            let mut response = Response::new(body.into());
            response
                .headers_mut()
                .insert("content-type", HeaderValue::from_static(content_type));
            response
                .headers_mut()
                .insert("cache-control", HeaderValue::from_static("public, max-age=300"));
            response
        }
        None => plain(StatusCode::NOT_FOUND, "no such file"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_login() {
        let some = |s: &str| Some(s.to_string());
        assert_eq!(safe_next(some("/streams/a").as_ref()), "/streams/a");
        assert_eq!(safe_next(some("//evil.example/").as_ref()), "/");
        assert_eq!(safe_next(some("https://evil.example/").as_ref()), "/");
        assert_eq!(safe_next(some("/\\evil.example").as_ref()), "/");
        assert_eq!(safe_next(None), "/");
    }
}
