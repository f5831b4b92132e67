//! The dashboard's wall: a grid of every shown camera's last picture with its name, state, the
//! picture's age and the verdict's reason, so a camera that is up but pointing at a wall, fogged
//! or knocked over shows at a glance. Pictures come from the monitor's folder beside the
//! database (`crate::pictures`); their metadata is read off the async workers.

use std::sync::Arc;

use serde::Serialize;

use crate::clock::{format_local, human_duration};
use crate::config::Config;
use crate::fleet::{State, StreamSummary};
use crate::pictures::PictureKind;
use crate::web::links;
use crate::web::pictures::{self, PictureInfo};
use crate::web::WebState;

/// One card of the wall.
#[derive(Serialize)]
pub(super) struct WallCard {
    name: String,
    href: String,
    health: &'static str,
    health_label: &'static str,
    reason: Option<&'static str>,
    picture: Option<WallPicture>,
    /// Down or stale: the picture is an old one, shown dimmed with its time.
    dimmed: bool,
    /// Why there is no picture yet.
    placeholder: Option<String>,
}

#[derive(Serialize)]
struct WallPicture {
    url: String,
    width: u32,
    height: u32,
    taken: String,
    taken_ms: i64,
    ago: String,
}

/// The cards for `shown`, in their order.
pub(super) async fn wall_cards(
    state: &Arc<WebState>,
    config: &Config,
    shown: &[&StreamSummary],
    now_ms: i64,
) -> Vec<WallCard> {
    let wanted: Vec<(Option<i64>, String)> = shown.iter().map(|s| (s.stream_id(), s.name.clone())).collect();
    let dir = pictures::dir(state);
    let infos = tokio::task::spawn_blocking(move || {
        wanted
            .iter()
            .map(|(id, name)| pictures::info(&dir, *id, name, PictureKind::Last))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    shown
        .iter()
        .enumerate()
        .map(|(index, summary)| card(summary, infos.get(index).cloned().flatten(), config, now_ms))
        .collect()
}

fn card(summary: &StreamSummary, picture: Option<PictureInfo>, config: &Config, now_ms: i64) -> WallCard {
    let reason = summary
        .status
        .as_ref()
        .and_then(|s| s.reason)
        .filter(|_| matches!(summary.state, State::Down | State::Degraded))
        .map(|r| r.describe());
    let placeholder = picture.is_none().then(|| placeholder(summary, config));
    WallCard {
        name: summary.name.clone(),
        href: links::stream_href(&summary.name),
        health: summary.state.as_str(),
        health_label: summary.state.label(),
        reason,
        dimmed: matches!(summary.state, State::Down | State::Stale | State::Disabled),
        picture: picture.map(|p| WallPicture {
            taken: format_local(p.ts_ms, config.timezone),
            ago: human_duration(now_ms - p.ts_ms),
            taken_ms: p.ts_ms,
            url: p.url,
            width: p.width,
            height: p.height,
        }),
        placeholder,
    }
}

/// Why a camera has no picture yet, in words.
fn placeholder(summary: &StreamSummary, config: &Config) -> String {
    if !config.pictures.enabled {
        return "Pictures are turned off (pictures.enabled in the configuration).".into();
    }
    match summary.state {
        State::Disabled => "Disabled: not probed, so no picture.".into(),
        State::Unknown => "Not probed yet.".into(),
        State::Down | State::Stale => {
            "No picture: the camera has not sent a clean frame since the monitor started keeping them.".into()
        }
        State::Up | State::Degraded => {
            "No picture yet: the next picture check (at the next keyframe) brings one.".into()
        }
    }
}
