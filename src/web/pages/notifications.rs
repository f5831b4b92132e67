//! `/config/notifications`: the configured notification channels (where each sends, secrets
//! masked) and a "Send a test" button that sends one test notification through every channel,
//! or the one chosen, and shows for each "delivered" or exactly what failed: the same code as
//! `streampulse alert test` ([`crate::alert::trial`]). Admins only; the button is a CSRF-checked
//! form like every other change.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use warp::http::{HeaderMap, StatusCode};
use warp::reply::Response;

use crate::alert::trial::{self, ChannelTest};
use crate::web::auth::{self, Principal};
use crate::web::respond::{self, Layout};
use crate::web::WebState;

/// `POST /config/notifications/test`
#[derive(Debug, Default, Deserialize)]
pub struct TestForm {
    pub csrf: Option<String>,
    /// A channel's name; empty for all.
    #[serde(default)]
    pub channel: String,
}

#[derive(Serialize)]
struct ChannelRow {
    name: String,
    kind: &'static str,
    target: String,
}

#[derive(Serialize)]
struct ResultRow {
    name: String,
    kind: &'static str,
    target: String,
    delivered: bool,
    outcome: String,
}

impl From<ChannelTest> for ResultRow {
    fn from(test: ChannelTest) -> ResultRow {
        ResultRow {
            delivered: test.delivered(),
            outcome: test.outcome(),
            name: test.channel,
            kind: test.kind,
            target: test.target,
        }
    }
}

#[derive(Serialize)]
struct NotificationsPage {
    layout: Layout,
    channels: Vec<ChannelRow>,
    chosen: String,
    results: Vec<ResultRow>,
    error: Option<String>,
}

fn page(
    state: &WebState,
    principal: &Principal,
    status: StatusCode,
    chosen: String,
    results: Vec<ResultRow>,
    error: Option<String>,
) -> Response {
    let config = state.config();
    let channels = config
        .alerts
        .channels
        .iter()
        .map(|channel| ChannelRow {
            name: channel.name.clone(),
            kind: channel.kind_label(),
            target: channel.redacted_url(),
        })
        .collect();
    let data = NotificationsPage {
        layout: respond::layout(state, Some(principal), "Notifications", "config"),
        channels,
        chosen,
        results,
        error,
    };
    respond::render(state, "notifications", status, &data)
}

/// `GET /config/notifications`
pub async fn notifications_page(principal: Principal, state: Arc<WebState>) -> Response {
    page(
        &state,
        &principal,
        StatusCode::OK,
        String::new(),
        Vec::new(),
        None,
    )
}

/// `POST /config/notifications/test`: sends and shows each channel's result.
pub async fn send_test(
    principal: Principal,
    state: Arc<WebState>,
    headers: HeaderMap,
    form: TestForm,
) -> Response {
    if let Err(error) = auth::check_csrf(&principal, &headers, form.csrf.as_deref()) {
        return respond::failure_page(&state, Some(&principal), error);
    }
    let config = state.config();
    let chosen = form.channel.trim().to_string();
    let only = Some(chosen.as_str()).filter(|name| !name.is_empty());
    match trial::send_tests(&config, only).await {
        Ok(tests) => {
            let delivered = tests.iter().filter(|test| test.delivered()).count();
            tracing::info!(user = %principal.display_name(), delivered, failed = tests.len() - delivered, "test notification sent from the web");
            let results = tests.into_iter().map(ResultRow::from).collect();
            page(&state, &principal, StatusCode::OK, chosen, results, None)
        }
        Err(error) => page(
            &state,
            &principal,
            StatusCode::BAD_REQUEST,
            chosen,
            Vec::new(),
            Some(error.to_string()),
        ),
    }
}
