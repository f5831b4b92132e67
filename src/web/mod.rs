//! The web service (`streampulse web`): the dashboard, stream pages, config editor, live
//! snapshots and the live view, the JSON API and Prometheus metrics.
//!
//! It reads the store and writes the config file; it never talks to the monitor process, so it
//! works whether or not the monitor runs. Layout (dependencies point down this list, never up):
//! [`router`] says which request goes where; [`pages`] (one file per page) and [`api`] (typed
//! JSON answers) answer; [`respond`] builds responses (pages in [`views`]' templates, JSON,
//! redirects, errors, gzip); [`auth`] says who is asking and may they (sessions, tokens, CSRF,
//! throttling). Helpers: [`charts`] shapes store data for the pages, [`editor`] edits the
//! config file safely, [`metrics`] and [`snapshot`] serve the monitoring integrations, [`live`]
//! runs the live view (one shared pipeline per watched camera), [`store_health`] reads the monitor's report of a full disk, [`links`] builds stream URLs.
//! [`server`] owns the accept loop (TLS, header timeout, connection caps).

pub mod api;
pub mod auth;
pub mod charts;
pub mod editor;
pub mod links;
pub mod live;
pub mod metrics;
pub mod metrics_v1;
pub mod pages;
pub mod pictures;
pub mod respond;
pub mod router;
pub mod server;
pub mod snapshot;
pub mod store_health;
pub mod views;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use warp::http::StatusCode;

use crate::clock::Clock;
use crate::config::{self, Config, ConfigError, WebTls};
use crate::fleet;
use crate::store::accounts::{self, AccountError, Accounts, SessionLimits};
use crate::store::{Store, StoreError};
use crate::tls::{self, TlsError};
use crate::url::redact_text;

/// Read connections kept open between requests.
const MAX_IDLE_READERS: usize = 4;
/// Cached uptimes younger than this are served as they are; older ones are still served while a
/// refresh runs in the background (up to [`UPTIME_MAX_STALE_MS`]), so no request waits for the
/// week-long aggregate once the server is warm.
const UPTIME_FRESH_MS: i64 = 15_000;
/// Beyond this age cached uptimes are recomputed before answering.
const UPTIME_MAX_STALE_MS: i64 = 5 * 60_000;

/// Why a request (or the server's start) failed. Every message shown to a user passes through
/// [`redact_text`], so a camera password quoted by a lower layer never reaches a page.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("{0}")]
    BadRequest(String),
    #[error("log in first (session cookie or `Authorization: Bearer` API token)")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{message}")]
    TooManyRequests { message: String, retry_after_s: i64 },
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Accounts(#[from] AccountError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot render the page: {0}")]
    Render(#[from] handlebars::RenderError),
    #[error("cannot load the page templates: {0}")]
    Template(#[from] Box<handlebars::TemplateError>),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

impl WebError {
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Unauthorized => StatusCode::UNAUTHORIZED,
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::Conflict(_) => StatusCode::CONFLICT,
            WebError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            WebError::Unavailable(_) | WebError::Store(StoreError::NotFound { .. }) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            WebError::Config(ConfigError::Invalid { .. }) => StatusCode::BAD_REQUEST,
            WebError::Accounts(AccountError::LastAdmin | AccountError::UserExists(_)) => StatusCode::CONFLICT,
            WebError::Accounts(AccountError::NoSuchUser(_) | AccountError::NoSuchStream(_)) => {
                StatusCode::NOT_FOUND
            }
            WebError::Accounts(
                AccountError::BadUserName | AccountError::BadRole(_) | AccountError::PasswordTooShort,
            ) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message for the client, credentials masked.
    pub fn public_message(&self) -> String {
        redact_text(&self.to_string())
    }
}

/// What `streampulse web` was started with.
#[derive(Debug, Clone)]
pub struct WebOptions {
    pub config_path: PathBuf,
    /// Overrides the config's `database:`.
    pub db_path: Option<PathBuf>,
    /// Serve `templates/` and `static/` from this folder instead of the copies built into the
    /// binary, re-read on every request (for working on the pages without rebuilding).
    pub assets_dir: Option<PathBuf>,
    /// Snapshot limits: at most this many at once over all cameras.
    pub max_concurrent_snapshots: usize,
}

impl WebOptions {
    pub fn new(config_path: impl Into<PathBuf>) -> WebOptions {
        WebOptions {
            config_path: config_path.into(),
            db_path: None,
            assets_dir: None,
            max_concurrent_snapshots: snapshot::DEFAULT_MAX_CONCURRENT_SNAPSHOTS,
        }
    }
}

/// The config as last read from disk, re-read when the file changes.
struct ConfigCache {
    config: Arc<Config>,
    watcher: config::Watcher,
    /// Why the file on disk could not be used, when it is invalid (the last valid config stays
    /// in use meanwhile).
    disk_problem: Option<String>,
}

/// Everything the handlers share.
pub struct WebState {
    config_path: PathBuf,
    config: Mutex<ConfigCache>,
    db_path: PathBuf,
    readers: Mutex<Vec<Store>>,
    accounts: Mutex<Accounts>,
    views: views::Views,
    throttle: auth::throttle::LoginThrottle,
    setup_token: Mutex<Option<String>>,
    snapshots: snapshot::SnapshotGate,
    live: Arc<live::LiveHub>,
    clock: Arc<Clock>,
    started: SystemTime,
    uptimes: Mutex<UptimeCache>,
    /// Served over built-in TLS: cookies get `Secure` (set by [`serve_with`]).
    over_tls: AtomicBool,
}

/// The last computed [`fleet::Uptimes`] and when.
#[derive(Default)]
struct UptimeCache {
    value: Option<(i64, Arc<fleet::Uptimes>)>,
    refreshing: bool,
}

impl std::fmt::Debug for WebState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebState")
            .field("config_path", &self.config_path)
            .field("db_path", &self.db_path)
            .finish_non_exhaustive()
    }
}

impl WebState {
    /// Loads the config, opens (creating or migrating) the database and the templates. When no
    /// user exists yet, a one-time setup token is made; [`serve`] logs the link.
    pub fn new(options: WebOptions) -> Result<Arc<WebState>, WebError> {
        let (watcher, config) = config::Watcher::load(&options.config_path)?;
        let db_path = options.db_path.clone().unwrap_or_else(|| config.database.clone());
        let accounts = Accounts::open(&db_path)?;
        let setup_token = (accounts.user_count()? == 0).then(|| accounts::random_hex(24));
        let views = views::Views::new(options.assets_dir.clone())?;
        Ok(Arc::new(WebState {
            config_path: options.config_path.clone(),
            config: Mutex::new(ConfigCache {
                watcher,
                config: Arc::new(config),
                disk_problem: None,
            }),
            db_path,
            readers: Mutex::new(Vec::new()),
            accounts: Mutex::new(accounts),
            views,
            throttle: auth::throttle::LoginThrottle::default(),
            setup_token: Mutex::new(setup_token),
            snapshots: snapshot::SnapshotGate::new(options.max_concurrent_snapshots),
            live: live::LiveHub::new(),
            clock: Clock::new(),
            started: SystemTime::now(),
            uptimes: Mutex::new(UptimeCache::default()),
            over_tls: AtomicBool::new(false),
        }))
    }

    /// Replaces the password hasher (tests use cheap parameters; see [`Accounts::with_hasher`]).
    pub fn set_password_hasher(&self, hasher: argon2::Argon2<'static>) {
        lock(&self.accounts).set_hasher(hasher);
    }

    /// The clock every expiry is measured with; tests move it forward.
    pub fn clock(&self) -> &Arc<Clock> {
        &self.clock
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The one-time setup token while no user exists.
    pub fn setup_token(&self) -> Option<String> {
        lock(&self.setup_token).clone()
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    /// The current config: re-read when the file changed; an invalid file leaves the last valid
    /// one in use (and is reported by [`WebState::config_problem`]).
    pub fn config(&self) -> Arc<Config> {
        let mut cache = lock(&self.config);
        match cache.watcher.changed() {
            Some(Ok(config)) => {
                cache.config = Arc::new(config);
                cache.disk_problem = None;
            }
            Some(Err(error)) => {
                tracing::warn!(
                    "config file changed but is not valid; keeping the last valid one: {}",
                    redact_text(&error.to_string())
                );
                cache.disk_problem = Some(redact_text(&error.to_string()));
            }
            None => {}
        }
        Arc::clone(&cache.config)
    }

    /// Why the config file on disk is not the one in use, if it is not: re-reads the file first
    /// when it changed, so `/healthz` never reports a stale verdict.
    pub fn config_problem(&self) -> Option<String> {
        let _ = self.config();
        lock(&self.config).disk_problem.clone()
    }

    /// The monitor's report on the store (a full disk) and the database's free space; a small
    /// file read and a `statvfs`, cheap enough for every request.
    pub fn store_health(&self) -> store_health::StoreHealth {
        store_health::StoreHealth::read(&self.db_path, self.now_ms())
    }

    pub fn session_limits(&self) -> SessionLimits {
        let web = &self.config().web;
        SessionLimits {
            idle_ms: i64::try_from(web.session_idle.as_millis()).unwrap_or(i64::MAX),
            max_ms: i64::try_from(web.session_max.as_millis()).unwrap_or(i64::MAX),
        }
    }

    pub(crate) fn views(&self) -> &views::Views {
        &self.views
    }

    pub(crate) fn throttle(&self) -> &auth::throttle::LoginThrottle {
        &self.throttle
    }

    pub(crate) fn snapshots(&self) -> &snapshot::SnapshotGate {
        &self.snapshots
    }

    /// The live view's sessions (tests read its counts).
    pub fn live(&self) -> &Arc<live::LiveHub> {
        &self.live
    }

    pub(crate) fn started(&self) -> SystemTime {
        self.started
    }

    /// Whether this server speaks TLS itself (`web.tls`), so cookies can be `Secure`.
    pub fn over_tls(&self) -> bool {
        self.over_tls.load(Ordering::Relaxed)
    }

    pub(crate) fn take_setup_token(&self, offered: &str) -> bool {
        let mut token = lock(&self.setup_token);
        match token.as_deref() {
            Some(expected) if auth::secrets_match(expected, offered) => {
                *token = None;
                true
            }
            _ => false,
        }
    }

    pub(crate) fn setup_token_matches(&self, offered: &str) -> bool {
        lock(&self.setup_token)
            .as_deref()
            .is_some_and(|expected| auth::secrets_match(expected, offered))
    }

    /// Runs a read on a pooled read-only store connection, off the async workers.
    pub async fn read<T, F>(self: &Arc<Self>, read: F) -> Result<T, WebError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, WebError> + Send + 'static,
    {
        let state = Arc::clone(self);
        run_blocking(move || {
            let pooled = lock(&state.readers).pop();
            let store = match pooled {
                Some(store) => store,
                None => Store::open_read_only(&state.db_path)?,
            };
            let result = read(&store);
            let mut readers = lock(&state.readers);
            if readers.len() < MAX_IDLE_READERS {
                readers.push(store);
            }
            result
        })
        .await
    }

    /// Every configured stream with its status, uptimes and (when asked) sparklines, for the
    /// dashboard, the API and the metrics. Uptimes come from a cache kept warm in the background.
    pub async fn fleet(
        self: &Arc<Self>,
        sparklines: bool,
    ) -> Result<(Arc<Config>, Vec<fleet::StreamSummary>), WebError> {
        let config = self.config();
        let now_ms = self.now_ms();
        let (cached, refresh) = {
            let mut cache = lock(&self.uptimes);
            match cache.value.clone() {
                Some((at, uptimes)) if (0..=UPTIME_FRESH_MS).contains(&(now_ms - at)) => {
                    (Some(uptimes), false)
                }
                Some((at, uptimes)) if (0..=UPTIME_MAX_STALE_MS).contains(&(now_ms - at)) => {
                    let refresh = !cache.refreshing;
                    cache.refreshing = true;
                    (Some(uptimes), refresh)
                }
                _ => (None, false),
            }
        };
        if refresh {
            let state = Arc::clone(self);
            tokio::spawn(async move {
                let fresh = state
                    .read(move |store| Ok(fleet::Uptimes::query(store, now_ms)?))
                    .await;
                let mut cache = lock(&state.uptimes);
                cache.refreshing = false;
                match fresh {
                    Ok(uptimes) => cache.value = Some((now_ms, Arc::new(uptimes))),
                    Err(error) => tracing::warn!("cannot refresh uptimes: {}", error.public_message()),
                }
            });
        }
        let state = Arc::clone(self);
        let for_read = Arc::clone(&config);
        let streams = self
            .read(move |store| {
                let uptimes = match cached {
                    Some(uptimes) => uptimes,
                    None => {
                        let uptimes = Arc::new(fleet::Uptimes::query(store, now_ms)?);
                        lock(&state.uptimes).value = Some((now_ms, Arc::clone(&uptimes)));
                        uptimes
                    }
                };
                Ok(fleet::load_with(&for_read, store, now_ms, sparklines, &uptimes)?)
            })
            .await?;
        Ok((config, streams))
    }

    /// Runs account work (SQLite writes, argon2) off the async workers.
    pub async fn accounts<T, F>(self: &Arc<Self>, work: F) -> Result<T, WebError>
    where
        T: Send + 'static,
        F: FnOnce(&Accounts) -> Result<T, WebError> + Send + 'static,
    {
        let state = Arc::clone(self);
        run_blocking(move || work(&lock(&state.accounts))).await
    }
}

async fn run_blocking<T, F>(work: F) -> Result<T, WebError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, WebError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| WebError::Internal(format!("background task failed: {e}")))?
}

/// Locks a mutex, recovering from a panic in another holder: every value kept behind these locks
/// (caches, counters, idle connections) stays valid even if a request panicked mid-way.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How the server listens, decided before it starts: TLS (from `web.tls`) and connection limits.
pub struct ServerSettings {
    tls: Option<(tokio_rustls::TlsAcceptor, String)>,
    limits: server::Limits,
}

impl ServerSettings {
    /// Reads `web.tls` and the limits from the config. `self_signed` makes its pair on first
    /// start, next to the database, for the host's names and `local` (the address listened on).
    pub fn new(state: &WebState, local: std::net::SocketAddr) -> Result<ServerSettings, WebError> {
        let web = state.config().web.clone();
        let limits = server::Limits {
            max_connections: web.max_connections,
            max_per_client: web.max_connections_per_client,
            header_timeout: web.header_timeout,
        };
        let files = match &web.tls {
            WebTls::Off => return Ok(ServerSettings { tls: None, limits }),
            WebTls::Files { cert, key } => (cert.clone(), key.clone(), None),
            WebTls::SelfSigned => {
                let names = tls::self_signed::host_names(Some(local.ip()));
                let made = tls::self_signed::ensure(&state.db_path, &names)?;
                let note = if made.created {
                    format!("self-signed certificate made for {}", names.join(", "))
                } else {
                    "self-signed certificate kept from an earlier start".to_string()
                };
                (made.cert_path, made.key_path, Some(note))
            }
        };
        let (cert, key, note) = files;
        let resolver = Arc::new(tls::ReloadingResolver::new(&cert, &key)?);
        let about = format!(
            "{}: {} (SHA-256 fingerprint {})",
            note.unwrap_or_else(|| "certificate".to_string()),
            cert.display(),
            resolver.fingerprint()
        );
        let config = tls::server_config(resolver)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        Ok(ServerSettings {
            tls: Some((acceptor, about)),
            limits,
        })
    }
}

/// Serves until `shutdown` completes, then lets requests in flight finish, with the settings
/// the config gives; a TLS set-up that fails is logged and nothing is served (`streampulse web`
/// uses [`ServerSettings::new`] and [`serve_with`] to fail instead). Tests bind `127.0.0.1:0` and
/// pass a oneshot receiver.
pub async fn serve<F>(listener: tokio::net::TcpListener, state: Arc<WebState>, shutdown: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let local = match listener.local_addr() {
        Ok(local) => local,
        Err(error) => return tracing::error!("web server not started: {error}"),
    };
    match ServerSettings::new(&state, local) {
        Ok(settings) => serve_with(listener, state, settings, shutdown).await,
        Err(error) => tracing::error!("web server not started: {}", error.public_message()),
    }
}

/// [`serve`] with settings made beforehand.
pub async fn serve_with<F>(
    listener: tokio::net::TcpListener,
    state: Arc<WebState>,
    settings: ServerSettings,
    shutdown: F,
) where
    F: Future<Output = ()> + Send + 'static,
{
    let scheme = if settings.tls.is_some() { "https" } else { "http" };
    state.over_tls.store(settings.tls.is_some(), Ordering::Relaxed);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!("web server listening on {scheme}://{addr}");
        if let Some((_, about)) = &settings.tls {
            tracing::info!("TLS {about}");
        }
        if let Some(token) = state.setup_token() {
            tracing::warn!(
                "no user exists yet: open {scheme}://{addr}/setup?token={token} to create the first administrator \
                 (the link works once), or run `streampulse user add NAME`"
            );
        }
    }
    // Abandoned sessions expire on their own; this only keeps the table small.
    let purger = Arc::clone(&state);
    let purge = tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            every.tick().await;
            let (now_ms, limits) = (purger.now_ms(), purger.session_limits());
            match purger
                .accounts(move |a| Ok(a.purge_sessions(now_ms, limits)?))
                .await
            {
                Ok(0) => {}
                Ok(purged) => tracing::debug!(purged, "expired sessions deleted"),
                Err(error) => tracing::warn!("cannot delete expired sessions: {}", error.public_message()),
            }
        }
    });
    let routes = router::routes(Arc::clone(&state));
    let tls = settings.tls.map(|(acceptor, _)| acceptor);
    // Live views would hold the drain for up to `web.live_seconds`: they end at shutdown.
    let live = Arc::clone(&state.live);
    let shutdown = async move {
        shutdown.await;
        live.stop();
    };
    server::run(listener, routes, tls, settings.limits, shutdown).await;
    purge.abort();
    tracing::info!("web server stopped");
}
