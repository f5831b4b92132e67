//! `/users`, for administrators: list users, add one, remove one, change a role, reset a
//! password. New and reset passwords are generated here and shown once, on the answer to the
//! form, never stored in clear nor put in a URL (which logs and history keep).
//!
//! The store refuses to remove or demote the last administrator ([`AccountError::LastAdmin`]).
//! API tokens, even `admin` ones, cannot manage users: a reset password is a login, and a login
//! may see camera passwords, which no token may.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use warp::http::{HeaderMap, StatusCode};
use warp::reply::Response;

use crate::clock::format_local;
use crate::store::accounts::{generated_password, AccountError, Role};
use crate::web::auth::{self, Principal};
use crate::web::respond::{self, Layout};
use crate::web::{api, WebError, WebState};

/// Tokens are scripts: the API's JSON error.
fn token_refused() -> Response {
    api::failure(WebError::Forbidden(
        "API tokens cannot manage users (a new password is a login, which may see camera passwords); \
         log in with a browser as an administrator"
            .into(),
    ))
}

/// `GET /users?done=`
#[derive(Debug, Default, Deserialize)]
pub struct UsersQuery {
    pub done: Option<String>,
}

/// Every `/users/*` form: the user it is about, and a role when it sets one.
#[derive(Debug, Default, Deserialize)]
pub struct UserForm {
    pub csrf: Option<String>,
    #[serde(default)]
    pub name: String,
    pub role: Option<String>,
}

/// What a `/users/*` form does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserAction {
    Add,
    Remove,
    Reset,
    Role,
}

impl UserAction {
    /// The action named by the path's last segment.
    pub fn from_path(segment: &str) -> Option<UserAction> {
        match segment {
            "add" => Some(UserAction::Add),
            "remove" => Some(UserAction::Remove),
            "reset" => Some(UserAction::Reset),
            "role" => Some(UserAction::Role),
            _ => None,
        }
    }
}

#[derive(Serialize)]
struct UserRow {
    name: String,
    role: &'static str,
    admin: bool,
    created: String,
    created_ms: i64,
    password_changed: String,
    password_changed_ms: i64,
    is_me: bool,
}

/// A password shown once, with whose it is.
#[derive(Serialize)]
struct Shown {
    user: String,
    password: String,
}

#[derive(Serialize)]
struct UsersPage {
    layout: Layout,
    users: Vec<UserRow>,
    notice: Option<String>,
    error: Option<String>,
    shown: Option<Shown>,
}

async fn users_page(
    state: &Arc<WebState>,
    principal: &Principal,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
    shown: Option<Shown>,
) -> Response {
    let users = match state.accounts(|accounts| Ok(accounts.users()?)).await {
        Ok(users) => users,
        Err(error) => return respond::failure_page(state, Some(principal), error),
    };
    let tz = state.config().timezone;
    let me = match principal {
        Principal::Session { info, .. } => Some(info.user_name.clone()),
        Principal::Token { .. } => None,
    };
    let data = UsersPage {
        layout: respond::layout(state, Some(principal), "Users", "users"),
        users: users
            .into_iter()
            .map(|user| UserRow {
                is_me: me.as_deref() == Some(user.name.as_str()),
                role: user.role.as_str(),
                admin: user.role == Role::Admin,
                created: format_local(user.created_ms, tz),
                created_ms: user.created_ms,
                password_changed: format_local(user.password_changed_ms, tz),
                password_changed_ms: user.password_changed_ms,
                name: user.name,
            })
            .collect(),
        notice,
        error,
        shown,
    };
    respond::render(state, "users", status, &data)
}

pub async fn users_list(principal: Principal, state: Arc<WebState>, query: UsersQuery) -> Response {
    if matches!(principal, Principal::Token { .. }) {
        return token_refused();
    }
    let notice = query.done.map(|done| match done.as_str() {
        "removed" => "User removed; their sessions were ended.".to_string(),
        "role" => "Role changed.".to_string(),
        _ => "Done.".to_string(),
    });
    users_page(&state, &principal, StatusCode::OK, notice, None, None).await
}

pub async fn user_action(
    action: UserAction,
    principal: Principal,
    state: Arc<WebState>,
    headers: HeaderMap,
    form: UserForm,
) -> Response {
    if matches!(principal, Principal::Token { .. }) {
        return token_refused();
    }
    if let Err(error) = auth::check_csrf(&principal, &headers, form.csrf.as_deref()) {
        return respond::failure_page(&state, Some(&principal), error);
    }
    let name = form.name.trim().to_string();
    // Only adding and changing a role read the role; a new user is a viewer unless asked.
    let role = match action {
        UserAction::Add | UserAction::Role => {
            match form.role.as_deref().unwrap_or("viewer").parse::<Role>() {
                Ok(role) => role,
                Err(error) => return refused(&state, &principal, WebError::from(error)).await,
            }
        }
        UserAction::Remove | UserAction::Reset => Role::Viewer,
    };
    let now_ms = state.now_ms();
    let by = principal.display_name();
    let target = name.clone();
    let done = state
        .accounts(move |accounts| {
            Ok(match action {
                UserAction::Add => {
                    let password = generated_password();
                    accounts.add_user_with_role(&target, &password, role, now_ms)?;
                    Some(password)
                }
                UserAction::Reset => {
                    let password = generated_password();
                    accounts.set_password(&target, &password, now_ms)?;
                    Some(password)
                }
                UserAction::Remove => {
                    accounts.remove_user(&target)?;
                    None
                }
                UserAction::Role => {
                    accounts.set_role(&target, role)?;
                    None
                }
            })
        })
        .await;
    match done {
        Ok(password) => {
            tracing::info!(user = %name, by = %by, action = ?action, "user changed in the browser");
            match (action, password) {
                (action, Some(password)) => {
                    // Added or reset: either way the new password is shown once, here.
                    let notice = if matches!(action, UserAction::Add) {
                        format!(
                            "User {name} created as {role}. Give them this password; it is shown only now."
                        )
                    } else {
                        format!(
                            "The password of {name} was reset and their sessions ended. Give them this password; it is shown only now."
                        )
                    };
                    let shown = Shown { user: name, password };
                    users_page(
                        &state,
                        &principal,
                        StatusCode::OK,
                        Some(notice),
                        None,
                        Some(shown),
                    )
                    .await
                }
                (UserAction::Remove, None) => respond::see_other("/users?done=removed"),
                (_, None) => respond::see_other("/users?done=role"),
            }
        }
        Err(error) => refused(&state, &principal, error).await,
    }
}

/// The users page again with what was wrong (a taken name, the last admin…), or an error page
/// for a server failure.
async fn refused(state: &Arc<WebState>, principal: &Principal, error: WebError) -> Response {
    match &error {
        WebError::Accounts(AccountError::Sqlite(_) | AccountError::Store(_) | AccountError::Hash(_)) => {
            respond::failure_page(state, Some(principal), error)
        }
        _ => {
            users_page(
                state,
                principal,
                error.status(),
                None,
                Some(error.public_message()),
                None,
            )
            .await
        }
    }
}
