//! Shared set-up for the web handler tests: a config file and database in a temp folder, the
//! route tree driven in-process with `warp::test`, and a logged-in browser session.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, Version};
use bytes::Bytes;
use streampulse::heartbeat::{Health, Heartbeat, ProbeOutcome, Reason, TimeoutStage};
use streampulse::store::accounts::{Accounts, TokenScope};
use streampulse::store::{Store, StreamIdentity};
use streampulse::web::router::routes;
use streampulse::web::{links, WebOptions, WebState};
use warp::filters::BoxedFilter;
use warp::http::Response;

pub const PASSWORD: &str = "correct horse battery";
pub const CAMERA_PASSWORD: &str = "hunter2-camera";
pub const SECOND: i64 = 1_000;
pub const MINUTE: i64 = 60 * SECOND;

/// Argon2 at its smallest: the default cost makes each unoptimised test login take seconds.
pub fn cheap_hasher() -> Argon2<'static> {
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(256, 1, 1, None).expect("valid argon2 parameters"),
    )
}

/// A config with cameras whose URLs carry the password [`CAMERA_PASSWORD`].
pub fn standard_config() -> String {
    format!(
        "# test fleet\nheartbeat_seconds: 15\ntimezone: Asia/Kolkata\ndatabase: streams.db\nstreams:\n  \
         - name: Gate\n    url: rtsp://admin:{CAMERA_PASSWORD}@192.0.2.10:554/stream1\n  \
         - name: Yard\n    url: rtsp://admin:{CAMERA_PASSWORD}@192.0.2.11/live\n  \
         - name: Dock\n    url: http://viewer:{CAMERA_PASSWORD}@192.0.2.12:8080/video\n  \
         - name: Lobby\n    url: rtsp://192.0.2.13/s\n  \
         - name: Old\n    url: rtsp://192.0.2.14/s\n    enabled: false\n"
    )
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub state: Arc<WebState>,
    pub routes: BoxedFilter<(warp::reply::Response,)>,
    pub config_path: PathBuf,
    pub db_path: PathBuf,
}

/// A browser that logged in.
#[derive(Debug, Clone)]
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

pub fn body(response: &Response<Bytes>) -> String {
    String::from_utf8_lossy(response.body()).into_owned()
}

pub fn set_cookies(response: &Response<Bytes>) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect()
}

/// `name=value` of the cookie called `name` among the response's `Set-Cookie` headers.
pub fn cookie_pair(response: &Response<Bytes>, name: &str) -> Option<String> {
    set_cookies(response)
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .and_then(|c| c.split(';').next().map(str::to_string))
}

pub fn location(response: &Response<Bytes>) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// The value of the first `name="csrf" value="…"` hidden field in a page.
pub fn csrf_field(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    Some(html[at..].split('"').next()?.to_string())
}

pub fn form_body(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", links::encode(k), links::encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub fn heartbeat(stream_id: i64, ts_ms: i64, health: Health) -> Heartbeat {
    let video = health != Health::Down;
    Heartbeat {
        stream_id,
        ts_ms,
        ntp_synced: true,
        outcome: ProbeOutcome {
            health,
            latency_ms: video.then_some(420),
            reason: match health {
                Health::Up => None,
                Health::Degraded => Some(Reason::Frozen),
                Health::Down => Some(Reason::Timeout(TimeoutStage::Connect)),
            },
            message: match health {
                Health::Up => String::new(),
                Health::Degraded => "picture frozen for 12 s".into(),
                // Lower layers redact, but the web must not rely on it.
                Health::Down => {
                    format!("could not connect to rtsp://admin:{CAMERA_PASSWORD}@192.0.2.10:554/stream1")
                }
            },
            codec: video.then(|| "h264".into()),
            width: video.then_some(1920),
            height: video.then_some(1080),
            fps: video.then_some(25.0),
            bitrate_kbps: video.then_some(4000),
            picture: None,
        },
    }
}

impl Fixture {
    pub fn new(config: &str) -> Fixture {
        Fixture::with_options(config, |_| {})
    }

    pub fn with_options(config: &str, adjust: impl FnOnce(&mut WebOptions)) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = dir.path().join("config.yaml");
        std::fs::write(&config_path, config).expect("write config");
        let mut options = WebOptions::new(&config_path);
        adjust(&mut options);
        let state = WebState::new(options).expect("web state");
        state.set_password_hasher(cheap_hasher());
        let routes = routes(Arc::clone(&state));
        let db_path = state.db_path().to_path_buf();
        Fixture {
            dir,
            state,
            routes,
            config_path,
            db_path,
        }
    }

    pub fn now_ms(&self) -> i64 {
        self.state.now_ms()
    }

    /// Sets the state's clock to read `at_ms` now (it runs on from there with the system clock):
    /// call it before each request whose timing matters, so a slow test machine adds nothing.
    pub fn set_now(&self, at_ms: i64) {
        let offset = at_ms - streampulse::clock::system_now_ms();
        self.state.clock().set_offset(offset);
    }

    /// Registers streams in the store (as the monitor would) and records heartbeats made by
    /// `make` from their ids, in name order of `names`.
    pub fn seed(&self, names: &[&str], make: impl FnOnce(&[i64]) -> Vec<Heartbeat>) {
        let mut store = Store::open(&self.db_path).expect("open store");
        let identities: Vec<StreamIdentity> = names
            .iter()
            .map(|name| StreamIdentity {
                config_id: None,
                name: name.to_string(),
                url_redacted: Some(format!("rtsp://admin:***@192.0.2.10/{name}")),
                url_fingerprint: Some(format!("fp-{name}")),
            })
            .collect();
        let ids = store
            .resolve_streams(&identities, self.now_ms() - 40 * 86_400_000)
            .expect("resolve");
        let mut beats = make(&ids);
        beats.sort_by_key(|h| h.ts_ms);
        store.record(&beats).expect("record");
    }

    /// Like [`Fixture::seed`], with the config's alert rules applied as the monitor's writer
    /// applies them: the confirmed state and the changes still being confirmed.
    pub fn seed_with_alert_plan(&self, names: &[&str], make: impl FnOnce(&[i64]) -> Vec<Heartbeat>) {
        let config = streampulse::config::load(&self.config_path).expect("the fixture's config");
        let mut store = Store::open(&self.db_path).expect("open store");
        store.set_alert_plan(Arc::new(streampulse::alert::AlertPlan::from_config(&config)));
        let identities: Vec<StreamIdentity> = config
            .streams
            .iter()
            .filter(|stream| names.contains(&stream.name.as_str()))
            .map(|stream| StreamIdentity {
                config_id: stream.id.clone(),
                name: stream.name.clone(),
                url_redacted: stream.url.as_ref().map(|url| url.redacted()),
                url_fingerprint: stream
                    .url
                    .as_ref()
                    .map(streampulse::config::stream_identity_fingerprint),
            })
            .collect();
        let ids = store
            .resolve_streams(&identities, self.now_ms() - 40 * 86_400_000)
            .expect("resolve");
        let mut beats = make(&ids);
        beats.sort_by_key(|h| h.ts_ms);
        store.record(&beats).expect("record");
    }

    pub fn add_user(&self, name: &str, password: &str) {
        let accounts = Accounts::open(&self.db_path)
            .expect("accounts")
            .with_hasher(cheap_hasher());
        accounts
            .add_user(name, password, self.now_ms())
            .expect("add user");
    }

    /// A `read` API token, as `streampulse token create NAME` makes.
    pub fn token(&self, name: &str) -> String {
        self.token_with_scope(name, TokenScope::Read)
    }

    pub fn token_with_scope(&self, name: &str, scope: TokenScope) -> String {
        let accounts = Accounts::open(&self.db_path).expect("accounts");
        accounts.create_token(name, scope, self.now_ms()).expect("token")
    }

    /// Re-enters the session's password on the confirm page, as the editor's "Show passwords"
    /// asks before revealing camera passwords.
    pub async fn confirm_password(&self, session: &Session, password: &str) -> Response<Bytes> {
        self.post(
            "/config/confirm",
            Some(&session.cookie),
            &[
                ("csrf", &session.csrf),
                ("password", password),
                ("next", "/config?reveal=1"),
            ],
        )
        .await
    }

    pub async fn get(&self, path: &str, session: Option<&Session>) -> Response<Bytes> {
        let mut request = warp::test::request().method("GET").path(path);
        if let Some(session) = session {
            request = request.header("cookie", &session.cookie);
        }
        request.reply(&self.routes).await
    }

    pub async fn get_with_token(&self, path: &str, token: &str) -> Response<Bytes> {
        warp::test::request()
            .method("GET")
            .path(path)
            .header("authorization", format!("Bearer {token}"))
            .reply(&self.routes)
            .await
    }

    /// A form POST as a browser on this site sends it (same-origin `Origin`).
    pub async fn post(&self, path: &str, cookie: Option<&str>, fields: &[(&str, &str)]) -> Response<Bytes> {
        self.post_with_headers(path, cookie, fields, &[]).await
    }

    /// [`Fixture::post`] with extra request headers (e.g. a proxy's `X-Forwarded-For`).
    pub async fn post_with_headers(
        &self,
        path: &str,
        cookie: Option<&str>,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Response<Bytes> {
        let mut request = warp::test::request()
            .method("POST")
            .path(path)
            .header("host", "127.0.0.1:8000")
            .header("origin", "http://127.0.0.1:8000")
            .header("content-type", "application/x-www-form-urlencoded")
            .remote_addr(([127, 0, 0, 1], 40000).into())
            .body(form_body(fields));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.reply(&self.routes).await
    }

    /// Logs in through the form: fetch it (for the pre-login CSRF cookie), then post it.
    pub async fn try_login(&self, user: &str, password: &str) -> Response<Bytes> {
        self.try_login_with_headers(user, password, &[]).await
    }

    /// [`Fixture::try_login`] with extra headers on the POST.
    pub async fn try_login_with_headers(
        &self,
        user: &str,
        password: &str,
        headers: &[(&str, &str)],
    ) -> Response<Bytes> {
        let form = self.get("/login", None).await;
        let login_cookie = cookie_pair(&form, "sp_login_csrf").expect("login csrf cookie");
        let token = csrf_field(&body(&form)).expect("csrf field");
        self.post_with_headers(
            "/login",
            Some(&login_cookie),
            &[
                ("csrf", &token),
                ("user", user),
                ("password", password),
                ("next", "/"),
            ],
            headers,
        )
        .await
    }

    pub async fn login(&self, user: &str, password: &str) -> Session {
        let response = self.try_login(user, password).await;
        assert_eq!(response.status(), 303, "login failed: {}", body(&response));
        let cookie = cookie_pair(&response, "sp_session").expect("session cookie");
        let mut session = Session {
            cookie,
            csrf: String::new(),
        };
        let page = self.get("/config", Some(&session)).await;
        session.csrf = csrf_field(&body(&page)).expect("csrf on the config page");
        session
    }

    /// A fixture with user `admin` logged in.
    pub async fn logged_in(config: &str) -> (Fixture, Session) {
        let fixture = Fixture::new(config);
        fixture.add_user("admin", PASSWORD);
        let session = fixture.login("admin", PASSWORD).await;
        (fixture, session)
    }
}

/// The real web server (the accept loop, not `warp::test`) on an ephemeral loopback port, for
/// tests that need a real connection; it stops when dropped.
pub struct LoopbackServer {
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl LoopbackServer {
    pub async fn start(fixture: &Fixture) -> LoopbackServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(streampulse::web::serve(
            listener,
            fixture.state.clone(),
            async move {
                let _ = stopped.await;
            },
        ));
        LoopbackServer {
            addr,
            stop: Some(stop),
        }
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
