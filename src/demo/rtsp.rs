//! An RTSP camera on `127.0.0.1`, built on gst-rtsp-server, with its own glib main loop on a
//! dedicated thread; client connections are served on that loop too (no client thread pool).
//!
//! Mounts (H.264 from `x264enc tune=zerolatency speed-preset=ultrafast`, keyframe every 2 s,
//! live `videotestsrc`, 320x240 at 15 fps unless configured):
//!
//! | path | picture | transports |
//! | --- | --- | --- |
//! | `/test` | moving ball | UDP and TCP |
//! | `/auth` | moving ball, Basic or Digest auth `demo` / `s3cret!` | UDP and TCP |
//! | `/udp` | moving ball | UDP only |
//! | `/tcp` | moving ball | TCP (interleaved) only |
//! | `/black` | black | UDP and TCP |
//! | `/frozen` | one solid colour that never changes | UDP and TCP |
//! | `/slow5fps` | moving ball at 5 fps | UDP and TCP |
//! | `/shared` | one shared encoder, 640x360 at 15 fps, keyframe every 30 frames | UDP and TCP |
//!
//! plus, when built with [`RtspTestServerBuilder::scenes`], the calibration scenes under
//! `/scene/…` (see [`super::scenes`]), and any [`CustomMount`]s. Every other path answers 404.
//! With [`RtspTestServerBuilder::tls`] every mount is served over TLS (`rtsps://`).

use super::scenes::{WarmClients, SCENE_MOUNTS};
use super::{gst_init, userinfo, DemoError, DEMO_PASSWORD, DEMO_USER, LOOPBACK};
use gstreamer as gst;
use gstreamer::glib;
use gstreamer::glib::translate::IntoGlib;
use gstreamer_rtsp_server as rtsp_server;
use gstreamer_rtsp_server::prelude::*;
use rtsp_server::gst_rtsp::{RTSPAuthMethod, RTSPLowerTrans};
use rtsp_server::{RTSPAuth, RTSPFilterResult, RTSPMediaFactory, RTSPServer, RTSPThreadPool, RTSPToken};
use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

pub const DEFAULT_WIDTH: u32 = 320;
pub const DEFAULT_HEIGHT: u32 = 240;
pub const DEFAULT_FPS: u32 = 15;
/// Bit rate of the standard mounts; low, since a demo may run hundreds of streams.
pub const DEFAULT_BITRATE_KBPS: u32 = 256;
/// Realm announced in 401 challenges.
pub const REALM: &str = "StreamPulse demo";
/// Pending connections the kernel may queue: the benchmark connects a thousand clients at once.
const LISTEN_BACKLOG: i32 = 1024;
/// How often sessions whose client vanished without TEARDOWN are reaped.
const SESSION_CLEANUP_INTERVAL: Duration = Duration::from_secs(2);
/// Role given to requests without credentials, and to authenticated ones.
const ROLE_ANONYMOUS: &str = "anonymous";
const ROLE_USER: &str = "user";
/// Elements the standard mounts need; checked at start so a missing plugin is an error, not a
/// DESCRIBE that never gets an answer.
const REQUIRED_ELEMENTS: &[&str] = &["videotestsrc", "x264enc", "rtph264pay"];

/// Which lower transports a mount accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountTransport {
    /// UDP unicast and TCP interleaved (gst-rtsp-server's default, plus multicast).
    Any,
    UdpOnly,
    TcpOnly,
}

impl MountTransport {
    fn lower_trans(self) -> RTSPLowerTrans {
        match self {
            MountTransport::Any => RTSPLowerTrans::UDP | RTSPLowerTrans::UDP_MCAST | RTSPLowerTrans::TCP,
            MountTransport::UdpOnly => RTSPLowerTrans::UDP,
            MountTransport::TcpOnly => RTSPLowerTrans::TCP,
        }
    }
}

/// Authentication schemes `/auth` (and custom mounts that require auth) offer in their 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RtspAuthMethods {
    Basic,
    Digest,
    #[default]
    BasicAndDigest,
}

impl RtspAuthMethods {
    fn to_gst(self) -> RTSPAuthMethod {
        match self {
            RtspAuthMethods::Basic => RTSPAuthMethod::Basic,
            RtspAuthMethods::Digest => RTSPAuthMethod::Digest,
            // GstRTSPAuthMethod is a bit set in C (BASIC = 1, DIGEST = 2), but the Rust binding
            // generates it as an enum; its catch-all variant is the only safe way to pass both.
            RtspAuthMethods::BasicAndDigest => RTSPAuthMethod::__Unknown(
                RTSPAuthMethod::Basic.into_glib() | RTSPAuthMethod::Digest.into_glib(),
            ),
        }
    }
}

/// The one-encoder-many-clients mount used by the benchmark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedMount {
    pub path: String,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub key_int_max: u32,
    pub bitrate_kbps: u32,
}

impl Default for SharedMount {
    fn default() -> Self {
        SharedMount {
            path: "/shared".to_string(),
            width: 640,
            height: 360,
            fps: 15,
            key_int_max: 30,
            bitrate_kbps: 500,
        }
    }
}

/// A mount given by a gst-launch description, like gst-rtsp-server's `test-launch`: it must be a
/// bin in `( … )` with payloaders named `pay0`, `pay1`, …
///
/// Raw JPEG payloading (`rtpjpegpay`) needs caps with a `format` such as `I420`, else DESCRIBE never
/// gets an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomMount {
    pub path: String,
    pub launch: String,
    pub transport: MountTransport,
    /// One media for every client instead of one per client.
    pub shared: bool,
    /// Requires the demo credentials, like `/auth`.
    pub requires_auth: bool,
}

impl CustomMount {
    pub fn new(path: &str, launch: &str) -> CustomMount {
        CustomMount {
            path: path.to_string(),
            launch: launch.to_string(),
            transport: MountTransport::Any,
            shared: false,
            requires_auth: false,
        }
    }
}

/// Configures an [`RtspTestServer`]; `RtspTestServer::builder().start()` gives the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtspTestServerBuilder {
    port: u16,
    width: u32,
    height: u32,
    fps: u32,
    shared: Option<SharedMount>,
    custom: Vec<CustomMount>,
    auth_methods: RtspAuthMethods,
    scenes: bool,
    /// Certificate and key (PEM): the server speaks RTSP over TLS (`rtsps://`).
    tls_pem: Option<String>,
}

impl Default for RtspTestServerBuilder {
    fn default() -> Self {
        RtspTestServerBuilder {
            port: 0,
            width: DEFAULT_WIDTH,
            height: DEFAULT_HEIGHT,
            fps: DEFAULT_FPS,
            shared: Some(SharedMount::default()),
            custom: Vec::new(),
            auth_methods: RtspAuthMethods::default(),
            scenes: false,
            tls_pem: None,
        }
    }
}

impl RtspTestServerBuilder {
    /// Port to listen on; 0 (the default) picks an ephemeral one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Picture size of the standard mounts (not `/shared`).
    pub fn resolution(mut self, width: u32, height: u32) -> Self {
        self.width = width;
        self.height = height;
        self
    }

    /// Frame rate of the standard mounts (not `/slow5fps` nor `/shared`); keyframes every 2 s.
    pub fn fps(mut self, fps: u32) -> Self {
        self.fps = fps.max(1);
        self
    }

    /// Replaces the `/shared` mount, or removes it with `None`.
    pub fn shared(mut self, shared: Option<SharedMount>) -> Self {
        self.shared = shared;
        self
    }

    /// Which schemes the authenticated mounts accept (default: Basic and Digest).
    pub fn auth_methods(mut self, methods: RtspAuthMethods) -> Self {
        self.auth_methods = methods;
        self
    }

    /// Adds the calibration scenes under `/scene/…`, each encoder kept running by a client of
    /// the server's own (five small encoders: off by default).
    pub fn scenes(mut self) -> Self {
        self.scenes = true;
        self
    }

    /// Serves `rtsps://` with this certificate and key (one PEM text), like a camera with a
    /// self-signed certificate.
    pub fn tls(mut self, cert_and_key_pem: &str) -> Self {
        self.tls_pem = Some(cert_and_key_pem.to_string());
        self
    }

    /// Adds a mount from a gst-launch description (see [`CustomMount`]).
    pub fn mount(mut self, path: &str, launch: &str) -> Self {
        self.custom.push(CustomMount::new(path, launch));
        self
    }

    /// Adds a fully described custom mount.
    pub fn custom_mount(mut self, mount: CustomMount) -> Self {
        self.custom.push(mount);
        self
    }

    pub fn start(self) -> Result<RtspTestServer, DemoError> {
        RtspTestServer::from_builder(self)
    }
}

/// An RTSP server on `127.0.0.1`. See the module documentation for its mounts.
#[derive(Debug)]
pub struct RtspTestServer {
    config: RtspTestServerBuilder,
    port: u16,
    running: Option<Running>,
}

/// The parts of a serving instance; a restart builds new ones.
#[derive(Debug)]
struct Running {
    server: RTSPServer,
    context: glib::MainContext,
    main_loop: glib::MainLoop,
    listener: glib::Source,
    session_cleanup: glib::Source,
    thread: Option<JoinHandle<()>>,
    warm: Option<WarmClients>,
}

impl RtspTestServer {
    /// RTSP sessions the server holds now. A client that sends TEARDOWN leaves none behind; one
    /// that just disconnects leaves its session until the session timeout.
    pub fn active_sessions(&self) -> u32 {
        self.running
            .as_ref()
            .and_then(|running| running.server.session_pool())
            .map_or(0, |pool| pool.n_sessions())
    }

    /// Starts with the default mounts on an ephemeral port.
    pub fn start() -> Result<RtspTestServer, DemoError> {
        RtspTestServer::builder().start()
    }

    pub fn builder() -> RtspTestServerBuilder {
        RtspTestServerBuilder::default()
    }

    fn from_builder(config: RtspTestServerBuilder) -> Result<RtspTestServer, DemoError> {
        gst_init()?;
        for name in REQUIRED_ELEMENTS {
            if gst::ElementFactory::find(name).is_none() {
                return Err(DemoError::Gst(format!(
                    "GStreamer element '{name}' is not installed"
                )));
            }
        }
        let mut server = RtspTestServer {
            port: config.port,
            config,
            running: None,
        };
        server.serve()?;
        Ok(server)
    }

    fn serve(&mut self) -> Result<(), DemoError> {
        let server = RTSPServer::new();
        server.set_address(&LOOPBACK.to_string());
        server.set_service(&self.port.to_string());
        server.set_backlog(LISTEN_BACKLOG);
        // Clients on the server's own loop, not on gst-rtsp-server's client thread pool: `stop()`
        // closes them from this loop, and a pool thread mid-read when its connection is closed
        // spins forever in GStreamer 1.22 (`g_pollable_input_stream_read_nonblocking` criticals).
        // Clients are non-blocking sources, so one loop serves a thousand of them.
        let client_threads = RTSPThreadPool::new();
        client_threads.set_max_threads(0);
        server.set_thread_pool(Some(&client_threads));
        configure_mounts(&server, &self.config)?;

        let context = glib::MainContext::new();
        // Not `RTSPServer::attach`: its source id could only be removed from the default context.
        let listener = server.create_source(None::<&rtsp_server::gio::Cancellable>)?;
        listener.attach(Some(&context));
        let port = u16::try_from(server.bound_port())
            .map_err(|_| DemoError::Gst(format!("RTSP server bound port {}", server.bound_port())))?;

        let pool = server.session_pool();
        let session_cleanup = glib::timeout_source_new(
            SESSION_CLEANUP_INTERVAL,
            None,
            glib::Priority::DEFAULT,
            move || {
                if let Some(pool) = &pool {
                    pool.cleanup();
                }
                glib::ControlFlow::Continue
            },
        );
        session_cleanup.attach(Some(&context));

        let main_loop = glib::MainLoop::new(Some(&context), false);
        let thread = {
            let context = context.clone();
            let main_loop = main_loop.clone();
            std::thread::Builder::new()
                .name("rtsp-test-server".into())
                .spawn(move || {
                    if let Err(err) = context.with_thread_default(|| main_loop.run()) {
                        tracing::error!("RTSP test server cannot run its main loop: {err}");
                    }
                })?
        };
        self.port = port;
        self.running = Some(Running {
            server,
            context,
            main_loop,
            listener,
            session_cleanup,
            thread: Some(thread),
            warm: None,
        });
        if self.config.scenes {
            let urls: Vec<String> = SCENE_MOUNTS.iter().map(|(path, _)| self.url(path)).collect();
            let warm = WarmClients::start(&urls)?;
            if let Some(running) = self.running.as_mut() {
                running.warm = Some(warm);
            }
        }
        Ok(())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((LOOPBACK, self.port))
    }

    /// `rtsp://127.0.0.1:PORT/path` (`rtsps://` when serving TLS).
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{}", self.scheme(), self.addr(), normalize_path(path))
    }

    fn scheme(&self) -> &'static str {
        if self.config.tls_pem.is_some() {
            "rtsps"
        } else {
            "rtsp"
        }
    }

    /// Serves again on the same port with another certificate, as a camera given a new one.
    pub fn replace_tls(&mut self, cert_and_key_pem: &str) -> Result<(), DemoError> {
        self.config.tls_pem = Some(cert_and_key_pem.to_string());
        self.restart()
    }

    /// `rtsp://user:pass@127.0.0.1:PORT/path`, with the credentials percent-encoded as needed.
    pub fn url_with_credentials(&self, path: &str, user: &str, password: &str) -> String {
        format!(
            "{}://{}{}{}",
            self.scheme(),
            userinfo(user, password),
            self.addr(),
            normalize_path(path)
        )
    }

    /// Paths this server answers, standard ones first.
    pub fn mount_paths(&self) -> Vec<String> {
        mount_specs(&self.config)
            .into_iter()
            .map(|spec| spec.path)
            .collect()
    }

    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Closes the listening socket and every client connection, and drops every session: to a
    /// client this looks like a camera that died mid-stream. Idempotent.
    pub fn stop(&mut self) {
        let Some(mut running) = self.running.take() else {
            return;
        };
        // Its own clients first, while the loop still answers their TEARDOWN.
        drop(running.warm.take());
        let server = running.server.clone();
        let listener = running.listener.clone();
        let session_cleanup = running.session_cleanup.clone();
        let main_loop = running.main_loop.clone();
        // On the loop's own thread, so no client is being dispatched while it is closed.
        running.context.invoke(move || {
            listener.destroy();
            session_cleanup.destroy();
            server.client_filter(Some(&mut |_, _| RTSPFilterResult::Remove));
            if let Some(pool) = server.session_pool() {
                pool.filter(Some(&mut |_, _| RTSPFilterResult::Remove));
            }
            main_loop.quit();
        });
        if let Some(thread) = running.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the RTSP test server thread panicked");
            }
        }
    }

    /// Serves again on the same port (stopping first if still running).
    pub fn restart(&mut self) -> Result<(), DemoError> {
        self.stop();
        self.serve()
    }
}

impl Drop for RtspTestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn normalize_path(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

/// One mount as the server sets it up.
#[derive(Debug, Clone)]
struct MountSpec {
    path: String,
    launch: String,
    transport: MountTransport,
    shared: bool,
    requires_auth: bool,
}

/// A live test picture encoded to H.264 and payloaded as `pay0`.
///
/// The ball follows the wall clock, not the frame count: each client gets its own media, and like
/// a real camera every connection must show the picture of now, not the same first frame (which
/// the monitor rightly calls frozen when two probes see it).
fn h264_launch(
    pattern: &str,
    width: u32,
    height: u32,
    fps: u32,
    key_int_max: u32,
    bitrate_kbps: u32,
) -> String {
    format!(
        "( videotestsrc is-live=true pattern={pattern} animation-mode=wall-time \
         ! video/x-raw,format=I420,width={width},height={height},framerate={fps}/1 \
         ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={key_int_max} bitrate={bitrate_kbps} \
         ! rtph264pay name=pay0 pt=96 config-interval=-1 )"
    )
}

fn mount_specs(config: &RtspTestServerBuilder) -> Vec<MountSpec> {
    let (width, height, fps) = (config.width, config.height, config.fps);
    let standard =
        |path: &str, pattern: &str, fps: u32, transport: MountTransport, requires_auth: bool| MountSpec {
            path: path.to_string(),
            launch: h264_launch(pattern, width, height, fps, fps * 2, DEFAULT_BITRATE_KBPS),
            transport,
            shared: false,
            requires_auth,
        };
    let mut specs = vec![
        standard("/test", "ball", fps, MountTransport::Any, false),
        standard("/auth", "ball", fps, MountTransport::Any, true),
        standard("/udp", "ball", fps, MountTransport::UdpOnly, false),
        standard("/tcp", "ball", fps, MountTransport::TcpOnly, false),
        standard("/black", "black", fps, MountTransport::Any, false),
        standard("/frozen", "solid-color", fps, MountTransport::Any, false),
        standard("/slow5fps", "ball", 5, MountTransport::Any, false),
    ];
    if config.scenes {
        specs.extend(SCENE_MOUNTS.iter().map(|(path, scene)| MountSpec {
            path: path.to_string(),
            launch: scene.rtsp_launch(width, height, fps, DEFAULT_BITRATE_KBPS),
            transport: MountTransport::Any,
            shared: true,
            requires_auth: false,
        }));
    }
    if let Some(shared) = &config.shared {
        specs.push(MountSpec {
            path: shared.path.clone(),
            launch: h264_launch(
                "ball",
                shared.width,
                shared.height,
                shared.fps,
                shared.key_int_max,
                shared.bitrate_kbps,
            ),
            transport: MountTransport::Any,
            shared: true,
            requires_auth: false,
        });
    }
    specs.extend(config.custom.iter().map(|mount| MountSpec {
        path: mount.path.clone(),
        launch: mount.launch.clone(),
        transport: mount.transport,
        shared: mount.shared,
        requires_auth: mount.requires_auth,
    }));
    specs
}

fn configure_mounts(server: &RTSPServer, config: &RtspTestServerBuilder) -> Result<(), DemoError> {
    let mounts = server
        .mount_points()
        .ok_or_else(|| DemoError::Gst("RTSP server without mount points".into()))?;

    // Everyone gets a token: anonymous requests the default one, the demo user its own. Each
    // factory then says which roles may use it, so only `/auth` turns anonymous requests away.
    let auth = RTSPAuth::new();
    auth.set_supported_methods(config.auth_methods.to_gst());
    auth.set_realm(Some(REALM));
    let user_token = RTSPToken::builder()
        .field(rtsp_server::RTSP_TOKEN_MEDIA_FACTORY_ROLE, ROLE_USER)
        .build();
    auth.add_basic(&RTSPAuth::make_basic(DEMO_USER, DEMO_PASSWORD), &user_token);
    auth.add_digest(DEMO_USER, DEMO_PASSWORD, &user_token);
    let mut anonymous_token = RTSPToken::builder()
        .field(rtsp_server::RTSP_TOKEN_MEDIA_FACTORY_ROLE, ROLE_ANONYMOUS)
        .build();
    auth.set_default_token(Some(&mut anonymous_token));
    if let Some(pem) = &config.tls_pem {
        // With a certificate, every connection starts with a TLS handshake (RTSPS).
        let certificate = rtsp_server::gio::TlsCertificate::from_pem(pem)?;
        auth.set_tls_certificate(Some(&certificate));
    }
    server.set_auth(Some(&auth));

    for spec in mount_specs(config) {
        if !spec.path.starts_with('/') {
            return Err(DemoError::MountPath(spec.path));
        }
        let factory = RTSPMediaFactory::new();
        factory.set_launch(&spec.launch);
        factory.set_shared(spec.shared);
        factory.set_protocols(spec.transport.lower_trans());
        // gst-rtsp-server answers 404 when a role lacks the ACCESS permission and 401 (with the
        // challenge) when it lacks CONSTRUCT: anonymous clients may "see" an authenticated mount
        // so that they are asked for credentials, like a real camera does.
        let anonymous_may_construct = !spec.requires_auth;
        for (role, may_construct) in [(ROLE_ANONYMOUS, anonymous_may_construct), (ROLE_USER, true)] {
            let permissions = gst::Structure::builder(role)
                .field(rtsp_server::RTSP_PERM_MEDIA_FACTORY_ACCESS, true)
                .field(rtsp_server::RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, may_construct)
                .build();
            factory.add_role_from_structure(&permissions);
        }
        mounts.add_factory(&spec.path, factory);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_mounts_and_custom_ones() {
        let config = RtspTestServer::builder().mount("/extra", "( videotestsrc ! fakesink )");
        let paths: Vec<String> = mount_specs(&config).into_iter().map(|spec| spec.path).collect();
        assert_eq!(
            paths,
            [
                "/test",
                "/auth",
                "/udp",
                "/tcp",
                "/black",
                "/frozen",
                "/slow5fps",
                "/shared",
                "/extra"
            ]
        );
        let no_shared = RtspTestServer::builder().shared(None);
        assert!(!mount_specs(&no_shared).iter().any(|spec| spec.shared));
    }

    #[test]
    fn keyframe_interval_is_twice_the_frame_rate() {
        let config = RtspTestServer::builder().fps(10);
        let test = mount_specs(&config).into_iter().next().expect("the /test mount");
        assert!(test.launch.contains("framerate=10/1"), "{}", test.launch);
        assert!(test.launch.contains("key-int-max=20"), "{}", test.launch);
    }
}
