//! `streampulse demo`: a living installation on loopback for a newcomer — demo cameras (RTSP,
//! MJPEG, one behind credentials, one that flaps, one that never answers, one frozen under a
//! ticking clock, one dark but live), a local SNTP server,
//! the monitor and the web server, on a throw-away database.

use crate::demo::{
    MjpegTestServer, RtspTestServer, SilentTcpServer, SntpTestServer, DEMO_PASSWORD, DEMO_USER,
};
use crate::monitor::{Monitor, MonitorOptions};
use crate::store::accounts::{random_hex, Accounts};
use crate::store::Store;
use crate::web::{self, WebOptions, WebState};
use anyhow::Context;
use std::path::PathBuf;
use std::time::Duration;

/// Fixed loopback ports, the same as the repository's config.yaml, so both describe one fleet.
const RTSP_PORT: u16 = 8554;
const SILENT_PORT: u16 = 8555;
const MJPEG_PORT: u16 = 8081;
const FLAPPING_PORT: u16 = 8082;
const SNTP_PORT: u16 = 1123;
/// The demo's web login.
const DEMO_WEB_USER: &str = "demo";
/// The flapping camera changes state this often.
const FLAP_PERIOD: Duration = Duration::from_secs(45);

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Folder for the demo's config.yaml and database (default: a new temporary folder)
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Seconds between probes of each demo camera
    #[arg(long, default_value_t = 5)]
    pub heartbeat_seconds: u64,
    /// Address of the web server
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub listen: String,
    /// Password of the demo login `demo` (default: a new random one, printed at start)
    #[arg(long, env = "STREAMPULSE_DEMO_PASSWORD")]
    pub web_password: Option<String>,
}

pub fn run(args: DemoArgs) -> anyhow::Result<i32> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: DemoArgs) -> anyhow::Result<i32> {
    let (dir, _temp) = match args.dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            (dir, None)
        }
        None => {
            let temp = tempfile::Builder::new().prefix("streampulse-demo-").tempdir()?;
            (temp.path().to_path_buf(), Some(temp))
        }
    };
    // The usual ports when free (they match the repository's config.yaml), any free port else:
    // the demo writes its own config with whatever it got.
    // With the calibration scenes: a frozen picture under a ticking clock, a dark live yard.
    let rtsp = RtspTestServer::builder()
        .port(RTSP_PORT)
        .scenes()
        .start()
        .or_else(|_| RtspTestServer::builder().scenes().start())
        .context("demo RTSP camera")?;
    let silent = SilentTcpServer::start_on(SILENT_PORT)
        .or_else(|_| SilentTcpServer::start())
        .context("demo silent camera")?;
    let mjpeg = MjpegTestServer::start_on(MJPEG_PORT)
        .or_else(|_| MjpegTestServer::start())
        .context("demo MJPEG camera")?;
    let flapping = MjpegTestServer::start_on(FLAPPING_PORT)
        .or_else(|_| MjpegTestServer::start())
        .context("demo flapping camera")?;
    let sntp = SntpTestServer::start_on(SNTP_PORT, 0)
        .or_else(|_| SntpTestServer::start(0))
        .context("demo SNTP server")?;

    let config_path = dir.join("config.yaml");
    std::fs::write(
        &config_path,
        demo_config(
            args.heartbeat_seconds,
            rtsp.port(),
            silent.port(),
            mjpeg.port(),
            flapping.port(),
            sntp.port(),
        ),
    )
    .with_context(|| format!("cannot write {}", config_path.display()))?;
    let db_path = dir.join("streams.db");
    // The store must exist (migrated) before the demo login goes in.
    drop(Store::open(&db_path)?);
    let web_password = args.web_password.unwrap_or_else(|| random_hex(8));
    Accounts::open(&db_path)?.add_user(DEMO_WEB_USER, &web_password, crate::clock::system_now_ms())?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let web_url = format!("http://{}/", listener.local_addr()?);

    println!("StreamPulse demo");
    println!("  dashboard: {web_url}");
    println!("  login:     {DEMO_WEB_USER} / {web_password}");
    println!("  config:    {}", config_path.display());
    println!("  database:  {}", db_path.display());
    println!("  cameras:   {} (RTSP), {} (MJPEG), one with credentials, one with a wrong password, one flapping, one silent", rtsp.url("/test"), mjpeg.url("/"));
    println!("  Ctrl-C stops everything.");

    let shutdown = super::shutdown_signal()?;
    let flapper = tokio::spawn(flap(flapping, shutdown.clone()));
    let web_state = WebState::new(WebOptions::new(&config_path))?;
    let mut web_stop = shutdown.clone();
    let web = tokio::spawn(web::serve(listener, web_state, async move {
        let _ = web_stop.wait_for(|stop| *stop).await;
    }));
    let monitor = Monitor::new(MonitorOptions::new(&config_path));
    monitor.run(shutdown).await?;
    let _ = web.await;
    flapper.abort();
    drop((rtsp, silent, mjpeg, sntp));
    Ok(0)
}

/// Stops and restarts a camera, so the dashboard shows a stream going down and coming back.
async fn flap(mut camera: MjpegTestServer, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(FLAP_PERIOD) => {}
            _ = shutdown.changed() => return,
        }
        if camera.is_running() {
            camera.stop();
        } else if let Err(e) = camera.restart() {
            tracing::warn!("demo flapping camera could not restart: {e}");
        }
    }
}

fn demo_config(heartbeat: u64, rtsp: u16, silent: u16, mjpeg: u16, flapping: u16, sntp: u16) -> String {
    let timeout = (heartbeat as f64 * 0.6).clamp(1.0, 5.0);
    format!(
        "# Written by `streampulse demo`: loopback demo cameras only.
heartbeat_seconds: {heartbeat}
timezone: UTC
ntp_server: 127.0.0.1:{sntp}
probe_timeout_seconds: {timeout}
database: streams.db
# Last pictures for the wall: refreshed more often than the default 60 s, for the demo.
pictures:
  every_seconds: 10
streams:
  - name: Lobby RTSP
    url: rtsp://127.0.0.1:{rtsp}/test
  - name: Garage MJPEG
    url: http://127.0.0.1:{mjpeg}/
  - name: Office (credentials)
    url: rtsp://{DEMO_USER}:{DEMO_PASSWORD}@127.0.0.1:{rtsp}/auth
  - name: Backyard (wrong password)
    url: rtsp://intruder:wrong@127.0.0.1:{rtsp}/auth
  - name: Warehouse (flapping)
    url: http://127.0.0.1:{flapping}/
  - name: Gate (never answers)
    url: rtsp://127.0.0.1:{silent}/stream1
  - name: Parking (frozen, clock ticking)
    url: rtsp://127.0.0.1:{rtsp}/scene/frozen-clock
  - name: Yard at night (dark, live)
    url: rtsp://127.0.0.1:{rtsp}/scene/dark
"
    )
}
