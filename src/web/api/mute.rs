//! `POST /api/v1/streams/{name}/mute?minutes=` and `POST …/unmute`, for an admin session or an
//! `admin` token: a muted stream's heartbeats are recorded, flagged and left out of uptime, and
//! no notification is sent for it (`alert::quiet`).

use std::sync::Arc;

use warp::http::HeaderMap;
use warp::reply::Response;

use super::answer;
use super::types::{MuteAnswer, MuteInfo, MuteQuery};
use crate::alert::quiet::MAX_MUTE_MINUTES;
use crate::web::auth::{self, Principal};
use crate::web::{WebError, WebState};

/// When a mute asked for with `minutes` ends (`None`: until unmuted).
fn until_ms(minutes: Option<&str>, now_ms: i64) -> Result<Option<i64>, WebError> {
    let Some(text) = minutes.map(str::trim).filter(|text| !text.is_empty()) else {
        return Ok(None);
    };
    match text.parse::<u64>() {
        Ok(minutes @ 1..=MAX_MUTE_MINUTES) => Ok(Some(now_ms + minutes as i64 * 60_000)),
        _ => Err(WebError::BadRequest(format!(
            "minutes must be a whole number from 1 to {MAX_MUTE_MINUTES}; leave it out to mute until unmuted"
        ))),
    }
}

/// Mutes (`mute` true) or unmutes a configured stream as `principal`; its mute afterwards.
pub async fn set_mute(
    state: &Arc<WebState>,
    principal: &Principal,
    name: String,
    mute: bool,
    until_ms: Option<i64>,
) -> Result<MuteAnswer, WebError> {
    if !state.config().streams.iter().any(|stream| stream.name == name) {
        return Err(WebError::NotFound(format!(
            "no stream named {name:?} in the configuration"
        )));
    }
    let now_ms = state.now_ms();
    let by = principal.display_name();
    let stream = name.clone();
    let who = by.clone();
    let made = state
        .accounts(move |accounts| {
            Ok(if mute {
                Some(accounts.mute(&stream, &who, now_ms, until_ms)?)
            } else {
                accounts.unmute(&stream)?;
                None
            })
        })
        .await?;
    tracing::info!(stream = %name, by = %by, muted = mute, until_ms, "mute changed");
    Ok(MuteAnswer {
        stream: name,
        mute: made.as_ref().map(MuteInfo::of),
    })
}

/// A browser session must send its CSRF token in `X-CSRF-Token` (cookies ride along on a
/// forged request; the token does not). Tokens carry no ambient authority.
fn check_csrf(principal: &Principal, headers: &HeaderMap) -> Result<(), WebError> {
    let submitted = headers.get("x-csrf-token").and_then(|value| value.to_str().ok());
    auth::check_csrf(principal, headers, submitted)
}

pub async fn mute(
    name: String,
    principal: Principal,
    state: Arc<WebState>,
    headers: HeaderMap,
    query: MuteQuery,
) -> Response {
    let result = match check_csrf(&principal, &headers)
        .and_then(|()| until_ms(query.minutes.as_deref(), state.now_ms()))
    {
        Ok(until) => set_mute(&state, &principal, name, true, until).await,
        Err(error) => Err(error),
    };
    answer(result)
}

pub async fn unmute(
    name: String,
    principal: Principal,
    state: Arc<WebState>,
    headers: HeaderMap,
) -> Response {
    let result = match check_csrf(&principal, &headers) {
        Ok(()) => set_mute(&state, &principal, name, false, None).await,
        Err(error) => Err(error),
    };
    answer(result)
}
