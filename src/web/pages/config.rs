//! The config editor: the YAML as text (passwords masked unless revealed) and small forms to
//! add, rename or remove a stream. Every change is validated as `streampulse validate` would
//! before the file is written (atomically, with a `.bak` copy); a refused change is shown again
//! with every problem.
//!
//! Camera passwords are shown only to a session that confirmed its password within the last few
//! minutes ([`auth::may_reveal`], [`super::confirm`]); API tokens never see them.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;
use warp::http::{HeaderMap, StatusCode};
use warp::reply::Response;

use super::confirm;
use crate::config::{self, ConfigError};
use crate::pipeline::TemplateLibrary;
use crate::url::redact_text;
use crate::web::auth::{self, Principal, RevealRefused};
use crate::web::editor;
use crate::web::respond;
use crate::web::{api, WebError, WebState};

/// `GET /config?reveal=1&saved=1`
#[derive(Debug, Default, Deserialize)]
pub struct ConfigQuery {
    /// `1`: show camera passwords.
    pub reveal: Option<String>,
    /// `1`: the previous edit was saved.
    pub saved: Option<String>,
}

/// `POST /config` (the whole text) and `POST /config/streams/{add,remove,rename}` (one stream).
#[derive(Debug, Default, Deserialize)]
pub struct EditorForm {
    pub csrf: Option<String>,
    /// `1`: passwords were shown in the editor.
    pub reveal: Option<String>,
    /// The whole YAML (raw edit).
    pub text: Option<String>,
    /// [`editor::version`] of the file when the editor was opened (raw edit).
    pub version: Option<String>,
    /// The stream added, removed or renamed.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub pipeline: String,
    #[serde(default)]
    pub new_name: String,
}

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
    /// The values to keep in the add form after a refused add.
    add: AddValues,
}

/// The add form's fields, passwords masked.
#[derive(Debug, Default, Serialize)]
struct AddValues {
    name: String,
    url: String,
    pipeline: String,
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
        "layout": respond::layout(state, Some(principal), "Configuration", "config"),
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
    respond::render(state, "config", status, &data)
}

pub async fn config_form(principal: Principal, state: Arc<WebState>, query: ConfigQuery) -> Response {
    let reveal = query.reveal.as_deref() == Some("1");
    let saved = query.saved.as_deref() == Some("1");
    if reveal {
        match auth::may_reveal(&principal, state.now_ms()) {
            Ok(()) => {}
            // Tokens are scripts: the API's JSON error, not a page.
            Err(refused @ RevealRefused::Token) => return api::failure(refused.error()),
            Err(RevealRefused::NeedsConfirmation) => {
                let back = if saved {
                    "/config?saved=1&reveal=1"
                } else {
                    "/config?reveal=1"
                };
                return respond::see_other(&confirm::link(back));
            }
        }
    }
    let text = match read_config_text(&state).await {
        Ok(text) => text,
        Err(error) => return respond::failure_page(&state, Some(&principal), error),
    };
    let notice = saved.then_some(
        "Saved. The previous version is kept as a .bak file beside it; the monitor picks up the change by itself.",
    );
    let view = EditorView {
        version: editor::version(&text),
        text: if reveal { text } else { editor::mask(&text) },
        reveal,
        problems: Vec::new(),
        notice,
        add: AddValues::default(),
    };
    editor_page(&state, &principal, StatusCode::OK, view)
}

/// Applies one editor form to the file: refuse with every problem, or validate and write.
pub async fn config_edit(
    principal: Principal,
    state: Arc<WebState>,
    headers: HeaderMap,
    form: EditorForm,
    edit: Edit,
) -> Response {
    if let Err(error) = auth::check_csrf(&principal, &headers, form.csrf.as_deref()) {
        return respond::failure_page(&state, Some(&principal), error);
    }
    let current = match read_config_text(&state).await {
        Ok(text) => text,
        Err(error) => return respond::failure_page(&state, Some(&principal), error),
    };
    let asked_reveal = form.reveal.as_deref() == Some("1");
    let reveal = asked_reveal
        && match auth::may_reveal(&principal, state.now_ms()) {
            Ok(()) => true,
            Err(refused @ RevealRefused::Token) => return api::failure(refused.error()),
            // The confirmation ran out while the editor was open: the edit still goes through
            // (losing typed work would be worse), but what is shown back stays masked.
            Err(RevealRefused::NeedsConfirmation) => false,
        };
    // Browsers send textarea lines ending in CRLF.
    let submitted = form
        .text
        .as_deref()
        .map(|t| t.replace("\r\n", "\n"))
        .unwrap_or_default();
    let (name, url, pipeline, new_name) = (
        form.name.trim(),
        form.url.trim(),
        form.pipeline.trim(),
        form.new_name.trim(),
    );
    let refuse = |status: StatusCode, problems: Vec<String>, shown: String| {
        let add = if edit == Edit::Add {
            AddValues {
                // A bare `***`: the add form's URL is not part of the file, so the file's
                // numbered markers would point at other cameras' passwords.
                name: redact_text(name),
                url: redact_text(url),
                pipeline: redact_text(pipeline),
            }
        } else {
            AddValues::default()
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
            if form.version.as_deref() != Some(editor::version(&current).as_str()) {
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
            // The form decoder turns bytes that are not UTF-8 into U+FFFD: saving that would
            // silently change the file.
            if submitted.contains('\u{FFFD}') && !current.contains('\u{FFFD}') {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    vec![
                        "the text holds bytes that are not UTF-8 (shown as \u{FFFD}); retype those \
                          characters, the file was not written"
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
            if [url, pipeline].into_iter().any(editor::hides_a_password) {
                let problem = format!(
                    "the new stream's URL shows its password as {}: type the camera's password again",
                    editor::HIDDEN
                );
                return refuse(StatusCode::BAD_REQUEST, vec![problem], shown_current);
            }
            let pipeline = Some(pipeline).filter(|p| !p.is_empty());
            match editor::add_stream(&current, name, url, pipeline) {
                Ok(text) => (text, Some(Expected::present(name))),
                Err(problem) => return refuse(StatusCode::BAD_REQUEST, vec![problem], shown_current),
            }
        }
        Edit::Remove => match editor::remove_stream(&current, name) {
            Ok(text) => (text, Some(Expected::absent(name))),
            Err(problem) => return refuse(StatusCode::BAD_REQUEST, vec![problem], shown_current),
        },
        Edit::Rename => {
            let (old, new) = (name, new_name);
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
            // The revealed view again if asked for; its GET checks the confirmation.
            let target = if asked_reveal {
                "/config?saved=1&reveal=1"
            } else {
                "/config?saved=1"
            };
            respond::see_other(target)
        }
        Ok(Err(error)) => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            vec![format!(
                "the file could not be written ({error}); nothing was changed"
            )],
            shown,
        ),
        Err(error) => respond::failure_page(&state, Some(&principal), WebError::Internal(error.to_string())),
    }
}
