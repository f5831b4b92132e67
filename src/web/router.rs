//! Which request goes where: the warp filter tree, and nothing else. Who is asking is
//! [`super::auth`]'s business, the answers are [`super::pages`]' and [`super::api`]'s.
//!
//! Only `/healthz`, `/static/*`, the login and setup forms (and `/metrics` when the config says
//! `metrics_public: true`, `/status` when it says `public_status: true`, `/status/{name}/picture.jpg`
//! when it also says `public_pictures: true`) answer without a session
//! cookie or an API token. Every route that changes something needs [`Access::Admin`] (which a
//! viewer's session lacks), except logging out and a user's own password and time display. Authentication runs
//! before any body is read, so an anonymous client learns nothing from validation errors.
//! `/api/v1` answers errors as JSON, everything else as a page.

use std::convert::Infallible;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use warp::filters::BoxedFilter;
use warp::http::{HeaderMap, HeaderValue, StatusCode};
use warp::reject::Reject;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use super::auth::{self, csrf, Access, Credentials, Principal};
use super::pages::{
    self, account, config, confirm, dashboard, mute, notifications, profile, status, stream, users,
};
use super::respond::{self, compress};
use super::{api, links, pictures, WebError, WebState};

mod body;

/// Largest form body accepted: a config file of a few thousand cameras.
const MAX_FORM_BYTES: u64 = 4 * 1024 * 1024;

/// No credentials, or expired ones. Pages redirect to the login form, the API answers 401.
#[derive(Debug)]
struct NeedLogin {
    /// Where to come back to after logging in.
    next: String,
}

impl Reject for NeedLogin {}

/// A failure inside a filter, already reduced to what the client may see.
#[derive(Debug)]
struct Failure {
    status: StatusCode,
    message: String,
}

impl Reject for Failure {}

/// Authenticated, but not allowed (a `read` token or a viewer changing the config). Scripts
/// get JSON, browsers an error page.
#[derive(Debug)]
struct Refused {
    message: String,
    browser: Option<Box<Principal>>,
}

impl Reject for Refused {}

impl From<WebError> for Failure {
    fn from(error: WebError) -> Failure {
        Failure {
            status: error.status(),
            message: error.public_message(),
        }
    }
}

fn with_state(state: Arc<WebState>) -> impl Filter<Extract = (Arc<WebState>,), Error = Infallible> + Clone {
    warp::any().map(move || Arc::clone(&state))
}

/// Requires a session or an API token allowed `access`.
fn authenticated(
    state: Arc<WebState>,
    access: Access,
) -> impl Filter<Extract = (Principal,), Error = Rejection> + Clone {
    with_state(state)
        .and(auth::credentials())
        .and(warp::path::full())
        .and_then(
            move |state: Arc<WebState>, credentials: Credentials, path: warp::path::FullPath| async move {
                match auth::authenticate(&state, credentials).await {
                    Ok(Some(principal)) => match auth::authorize(&principal, access) {
                        Ok(()) => Ok(principal),
                        Err(error) => Err(warp::reject::custom(Refused {
                            message: error.public_message(),
                            browser: for_error_page(principal),
                        })),
                    },
                    Ok(None) => Err(warp::reject::custom(NeedLogin {
                        next: path.as_str().to_string(),
                    })),
                    Err(error) => Err(warp::reject::custom(Failure::from(error))),
                }
            },
        )
}

/// What a refused browser's error page needs (its name and CSRF token for the layout); the
/// session secret stays out of the rejection, which may be logged.
fn for_error_page(principal: Principal) -> Option<Box<Principal>> {
    match principal {
        Principal::Session { info, .. } => Some(Box::new(Principal::Session {
            info,
            secret: String::new(),
        })),
        Principal::Token { .. } => None,
    }
}

/// A form body (URL-encoded) as `T`, bounded in size, declared or chunked.
fn form<T: DeserializeOwned + Send + 'static>() -> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    body::form::<T>(MAX_FORM_BYTES)
}

/// 413 for a body declared over the limit on any route, before anything is read or
/// authenticated (a 100 MB upload never waits on a login check, nor loses to a 405).
fn declared_too_large(state: Arc<WebState>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    body::declared_over(MAX_FORM_BYTES)
        .and(warp::path::full())
        .and(with_state(state))
        .map(|path: warp::path::FullPath, state: Arc<WebState>| {
            let status = StatusCode::PAYLOAD_TOO_LARGE;
            if path.as_str().starts_with("/api/v1/") {
                api::error_response(status, body::TOO_LARGE)
            } else {
                respond::error_page(&state, None, status, body::TOO_LARGE)
            }
        })
}

/// The query string as `T` (no query string: every field absent).
fn query<T: DeserializeOwned + Send + 'static>() -> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    warp::query::<T>()
}

/// The pre-login CSRF cookie of the login and setup forms.
fn login_cookie() -> impl Filter<Extract = (Option<String>,), Error = Infallible> + Clone {
    warp::cookie::optional::<String>(csrf::LOGIN_COOKIE)
}

/// One decoded path segment (a stream name).
fn name_segment() -> impl Filter<Extract = (String,), Error = Rejection> + Clone {
    warp::path::param::<String>()
        .and_then(|raw: String| async move { links::decode(&raw).ok_or_else(warp::reject::not_found) })
}

/// The whole route tree.
pub fn routes(state: Arc<WebState>) -> BoxedFilter<(Response,)> {
    let open = open_routes(Arc::clone(&state));
    let api = warp::path("api")
        .and(warp::path("v1"))
        .and(api_routes(Arc::clone(&state)).recover(recover_api))
        .map(Reply::into_response);
    // v1's status answer, for scripts written against v1: the same auth and errors as /api/v1.
    let v1_status = warp::path!("api" / "status")
        .and(warp::get())
        .and(
            authenticated(Arc::clone(&state), Access::Read)
                .and(with_state(Arc::clone(&state)))
                .then(api::export::v1_status)
                .recover(recover_api),
        )
        .map(Reply::into_response);
    let api = v1_status.or(api).unify();
    let pages = page_routes(Arc::clone(&state));
    let recover_state = Arc::clone(&state);
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; \
             object-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    let routes = declared_too_large(Arc::clone(&state))
        .or(open)
        .unify()
        .or(api)
        .unify()
        .or(pages)
        .unify()
        .recover(move |rejection| recover_page(Arc::clone(&recover_state), rejection))
        .map(Reply::into_response);
    warp::header::headers_cloned()
        .and(routes)
        .then(compress::negotiate)
        .with(warp::reply::with::headers(headers))
        // Path only: query strings may hold the one-time setup token.
        .with(warp::log::custom(|info| {
            tracing::debug!(
                method = %info.method(),
                path = %info.path(),
                status = info.status().as_u16(),
                elapsed_ms = info.elapsed().as_millis() as u64,
                "request"
            );
        }))
        .with(warp::reply::with::default_header("cache-control", "no-store"))
        .map(Reply::into_response)
        .boxed()
}

fn open_routes(state: Arc<WebState>) -> BoxedFilter<(Response,)> {
    // HEAD too: load balancers and uptime checkers probe with it.
    let healthz = warp::path!("healthz")
        .and(warp::get().or(warp::head()).unify())
        .and(with_state(Arc::clone(&state)))
        .then(api::healthz);
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(with_state(Arc::clone(&state)))
        .and(auth::credentials())
        .then(api::metrics);
    let statics = warp::path("static")
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::get())
        .and(with_state(Arc::clone(&state)))
        .map(pages::static_file);
    let login_form = warp::path!("login")
        .and(warp::get())
        .and(with_state(Arc::clone(&state)))
        .and(query())
        .then(account::login_form);
    let login = warp::path!("login")
        .and(warp::post())
        .and(with_state(Arc::clone(&state)))
        .and(warp::header::headers_cloned())
        .and(super::server::remote_addr())
        .and(login_cookie())
        .and(form())
        .then(account::login);
    let setup_form = warp::path!("setup")
        .and(warp::get())
        .and(with_state(Arc::clone(&state)))
        .and(query())
        .then(account::setup_form);
    let setup = warp::path!("setup")
        .and(warp::post())
        .and(with_state(Arc::clone(&state)))
        .and(warp::header::headers_cloned())
        .and(login_cookie())
        .and(form())
        .then(account::setup);
    let public_status = warp::path!("status")
        .and(warp::get())
        .and(with_state(Arc::clone(&state)))
        .then(status::public_status);
    let public_picture = warp::path("status")
        .and(name_segment())
        .and(warp::path("picture.jpg"))
        .and(warp::path::end())
        .and(warp::get())
        .and(with_state(Arc::clone(&state)))
        .and(warp::header::headers_cloned())
        .then(pictures::public_picture);
    healthz
        .or(metrics)
        .unify()
        .or(public_status)
        .unify()
        .or(public_picture)
        .unify()
        .or(statics)
        .unify()
        .or(login_form)
        .unify()
        .or(login)
        .unify()
        .or(setup_form)
        .unify()
        .or(setup)
        .unify()
        .boxed()
}

fn page_routes(state: Arc<WebState>) -> BoxedFilter<(Response,)> {
    let auth = || authenticated(Arc::clone(&state), Access::Read);
    let admin = || authenticated(Arc::clone(&state), Access::Admin);
    let st = || with_state(Arc::clone(&state));
    let dashboard = warp::path::end()
        .and(warp::get())
        .and(auth())
        .and(st())
        .and(query())
        .and(warp::cookie::optional::<String>(dashboard::VIEW_COOKIE))
        .then(dashboard::dashboard);
    let stream = warp::path("streams")
        .and(name_segment())
        .and(warp::path::end())
        .and(warp::get())
        .and(auth())
        .and(st())
        .and(query())
        .then(stream::stream_page);
    // The last picture the monitor kept: the same access as the pages (viewers included).
    let picture = warp::path("streams")
        .and(name_segment())
        .and(warp::path("picture.jpg"))
        .and(warp::path::end())
        .and(warp::get())
        .and(auth())
        .and(st())
        .and(warp::header::headers_cloned())
        .and(query())
        .then(
            |name: String,
             _: Principal,
             state: Arc<WebState>,
             headers: HeaderMap,
             query: pictures::PictureQuery| { pictures::picture(name, state, headers, query) },
        );
    // The live view: any signed-in user may watch; it changes nothing.
    let live = warp::path("streams")
        .and(name_segment())
        .and(warp::path("live.mjpg"))
        .and(warp::path::end())
        .and(warp::get())
        .and(auth())
        .and(st())
        .then(pages::live::live_view);
    let logout = warp::path!("logout")
        .and(warp::post())
        .and(auth())
        .and(st())
        .and(warp::header::headers_cloned())
        .and(form())
        .then(account::logout);
    let config_form = warp::path!("config")
        .and(warp::get())
        .and(admin())
        .and(st())
        .and(query())
        .then(config::config_form);
    let config_save = warp::path!("config")
        .and(warp::post())
        .and(admin())
        .and(st())
        .and(warp::header::headers_cloned())
        .and(form())
        .then(
            |principal: Principal, state: Arc<WebState>, headers: HeaderMap, form: config::EditorForm| {
                config::config_edit(principal, state, headers, form, config::Edit::Raw)
            },
        );
    let config_stream = warp::path!("config" / "streams" / String)
        .and(warp::post())
        .and(admin())
        .and(st())
        .and(warp::header::headers_cloned())
        .and(form())
        .then(
            |action: String,
             principal: Principal,
             state: Arc<WebState>,
             headers: HeaderMap,
             form: config::EditorForm| async move {
                let edit = match action.as_str() {
                    "add" => config::Edit::Add,
                    "remove" => config::Edit::Remove,
                    "rename" => config::Edit::Rename,
                    _ => return respond::not_found_page(&state, &principal),
                };
                config::config_edit(principal, state, headers, form, edit).await
            },
        );
    let notifications_page = warp::path!("config" / "notifications")
        .and(warp::get())
        .and(admin())
        .and(st())
        .then(notifications::notifications_page);
    let notifications_test = warp::path!("config" / "notifications" / "test")
        .and(warp::post())
        .and(admin())
        .and(st())
        .and(warp::header::headers_cloned())
        .and(form())
        .then(notifications::send_test);
    let confirm_form = warp::path!("config" / "confirm")
        .and(warp::get())
        .and(admin())
        .and(st())
        .and(query())
        .then(confirm::confirm_form);
    let confirm = warp::path!("config" / "confirm")
        .and(warp::post())
        .and(admin())
        .and(st())
        .and(warp::header::headers_cloned())
        .and(super::server::remote_addr())
        .and(form())
        .then(confirm::confirm);
    let account_form = warp::path!("account")
        .and(warp::get())
        .and(auth())
        .and(st())
        .and(query())
        .then(profile::account_form);
    let password = warp::path!("account" / "password")
        .and(warp::post())
        .and(auth())
        .and(st())
        .and(warp::header::headers_cloned())
        .and(super::server::remote_addr())
        .and(form())
        .then(profile::change_password);
    let times = warp::path!("account" / "times")
        .and(warp::post())
        .and(auth())
        .and(st())
        .and(warp::header::headers_cloned())
        .and(form())
        .then(profile::set_times);
    let users_list = warp::path!("users")
        .and(warp::get())
        .and(admin())
        .and(st())
        .and(query())
        .then(users::users_list);
    let user_action = warp::path!("users" / String)
        .and(warp::post())
        .and(admin())
        .and(st())
        .and(warp::header::headers_cloned())
        .and(form())
        .then(
            |action: String,
             principal: Principal,
             state: Arc<WebState>,
             headers: HeaderMap,
             form: users::UserForm| async move {
                match users::UserAction::from_path(&action) {
                    Some(action) => users::user_action(action, principal, state, headers, form).await,
                    None => respond::not_found_page(&state, &principal),
                }
            },
        );
    let stream_action = warp::path!("streams" / String / String)
        .and(warp::post())
        .and(admin())
        .and(st())
        .and(warp::header::headers_cloned())
        .and(form())
        .then(
            |raw_name: String,
             action: String,
             principal: Principal,
             state: Arc<WebState>,
             headers: HeaderMap,
             form: mute::MuteForm| async move {
                let name = links::decode(&raw_name);
                match (name, action.as_str()) {
                    (Some(name), "mute") => mute::mute(name, true, principal, state, headers, form).await,
                    (Some(name), "unmute") => mute::mute(name, false, principal, state, headers, form).await,
                    _ => respond::not_found_page(&state, &principal),
                }
            },
        );
    let people = account_form
        .or(password)
        .unify()
        .or(times)
        .unify()
        .or(users_list)
        .unify()
        .or(user_action)
        .unify()
        .boxed();
    dashboard
        .or(stream)
        .unify()
        .or(picture)
        .unify()
        .or(live)
        .unify()
        .or(stream_action)
        .unify()
        .or(people)
        .unify()
        .or(logout)
        .unify()
        .or(confirm_form)
        .unify()
        .or(confirm)
        .unify()
        .or(config_form)
        .unify()
        .or(config_save)
        .unify()
        .or(config_stream)
        .unify()
        .or(notifications_page)
        .unify()
        .or(notifications_test)
        .unify()
        .boxed()
}

fn api_routes(state: Arc<WebState>) -> BoxedFilter<(Response,)> {
    let auth = || authenticated(Arc::clone(&state), Access::Read);
    let admin = || authenticated(Arc::clone(&state), Access::Admin);
    let st = || with_state(Arc::clone(&state));
    let streams = warp::path!("streams")
        .and(warp::get())
        .and(auth())
        .and(st())
        .then(api::streams::streams);
    let stream_path = || warp::path("streams").and(name_segment());
    let stream = stream_path()
        .and(warp::path::end())
        .and(warp::get())
        .and(auth())
        .and(st())
        .then(api::streams::stream);
    let heartbeats = stream_path()
        .and(warp::path("heartbeats"))
        .and(warp::path::end())
        .and(warp::get())
        .and(auth())
        .and(st())
        .and(query())
        .then(api::streams::heartbeats);
    let outages = stream_path()
        .and(warp::path("outages"))
        .and(warp::path::end())
        .and(warp::get())
        .and(auth())
        .and(st())
        .and(query())
        .then(api::streams::outages);
    let mute = stream_path()
        .and(warp::path("mute"))
        .and(warp::path::end())
        .and(warp::post())
        .and(admin())
        .and(st())
        .and(warp::header::headers_cloned())
        .and(query())
        .then(api::mute::mute);
    let unmute = stream_path()
        .and(warp::path("unmute"))
        .and(warp::path::end())
        .and(warp::post())
        .and(admin())
        .and(st())
        .and(warp::header::headers_cloned())
        .then(api::mute::unmute);
    let snapshot = stream_path()
        .and(warp::path("snapshot.jpg"))
        .and(warp::path::end())
        .and(warp::get())
        .and(auth())
        .and(st())
        .then(api::streams::snapshot);
    let export = |file: &'static str, export: api::export::Export| {
        warp::path(file)
            .and(warp::path::end())
            .and(warp::get())
            .and(auth())
            .and(st())
            .and(query())
            .then(move |principal, state, query| api::export::export(export, principal, state, query))
    };
    streams
        .or(export("heartbeats.csv", api::export::Export::HeartbeatsCsv))
        .unify()
        .or(export(
            "heartbeats.jsonl",
            api::export::Export::HeartbeatsJsonLines,
        ))
        .unify()
        .or(export("outages.csv", api::export::Export::OutagesCsv))
        .unify()
        .or(stream)
        .unify()
        .or(heartbeats)
        .unify()
        .or(outages)
        .unify()
        .or(snapshot)
        .unify()
        .or(mute)
        .unify()
        .or(unmute)
        .unify()
        // Anything else under /api/v1: 401 without credentials (so anonymous clients cannot map
        // the API), 404 with them.
        .or(auth().and_then(|_: Principal| async { Err::<Response, Rejection>(warp::reject::not_found()) }))
        .unify()
        .boxed()
}

/// The status and message of a rejection that is not one of ours. A rejection from a route that
/// matched the path and method (a body too large, a bad form or query) outranks "no such page"
/// and "method not allowed" from the routes that did not.
fn known_rejection(rejection: &Rejection) -> (StatusCode, String) {
    if let Some(known) = body::known(rejection) {
        known
    } else if rejection.find::<warp::reject::InvalidQuery>().is_some() {
        (StatusCode::BAD_REQUEST, "invalid query string".into())
    } else if rejection.is_not_found() {
        (StatusCode::NOT_FOUND, "no such page".into())
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        (StatusCode::METHOD_NOT_ALLOWED, "method not allowed here".into())
    } else {
        (StatusCode::BAD_REQUEST, "bad request".into())
    }
}

async fn recover_api(rejection: Rejection) -> Result<Response, Infallible> {
    let (status, message) = if rejection.find::<NeedLogin>().is_some() {
        (StatusCode::UNAUTHORIZED, WebError::Unauthorized.public_message())
    } else if let Some(Refused { message, .. }) = rejection.find() {
        (StatusCode::FORBIDDEN, message.clone())
    } else if let Some(failure) = rejection.find::<Failure>() {
        (failure.status, failure.message.clone())
    } else {
        known_rejection(&rejection)
    };
    Ok(api::error_response(status, &message))
}

async fn recover_page(state: Arc<WebState>, rejection: Rejection) -> Result<Response, Infallible> {
    if let Some(need) = rejection.find::<NeedLogin>() {
        return Ok(respond::redirect_to_login(&need.next));
    }
    if let Some(Refused { message, browser }) = rejection.find() {
        return Ok(match browser {
            Some(principal) => respond::error_page(&state, Some(principal), StatusCode::FORBIDDEN, message),
            None => api::error_response(StatusCode::FORBIDDEN, message),
        });
    }
    let (status, message) = match rejection.find::<Failure>() {
        Some(failure) => (failure.status, failure.message.clone()),
        None => known_rejection(&rejection),
    };
    Ok(respond::error_page(&state, None, status, &message))
}
