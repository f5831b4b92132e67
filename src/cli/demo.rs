//! `streampulse demo`: a living installation on loopback for a newcomer — demo cameras (RTSP,
//! MJPEG, one behind credentials, one that flaps, one that never answers), a local SNTP server,
//! the monitor and the web server, on a throw-away database.

use crate::demo::{MjpegTestServer, RtspTestServer, SilentTcpServer, SntpTestServer, DEMO_PASSWORD, DEMO_USER};
use crate::monitor::{Monitor, MonitorOptions};
use anyhow::Context;
use std::path::PathBuf;
use std::time::Duration;

/// Fixed loopback ports, the same as the repository's config.yaml, so both describe one fleet.
const RTSP_PORT: u16 = 8554;
const SILENT_PORT: u16 = 8555;
const MJPEG_PORT: u16 = 8081;
const FLAPPING_PORT: u16 = 8082;
const SNTP_PORT: u16 = 1123;
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
    let rtsp = RtspTestServer::builder().port(RTSP_PORT).start().context("demo RTSP camera")?;
    let silent = SilentTcpServer::start_on(SILENT_PORT).context("demo silent camera")?;
    let mjpeg = MjpegTestServer::start_on(MJPEG_PORT).context("demo MJPEG camera")?;
    let flapping = MjpegTestServer::start_on(FLAPPING_PORT).context("demo flapping camera")?;
    let sntp = SntpTestServer::start_on(SNTP_PORT, 0).context("demo SNTP server")?;

    let config_path = dir.join("config.yaml");
    std::fs::write(&config_path, demo_config(args.heartbeat_seconds, rtsp.port(), silent.port(), mjpeg.port(), flapping.port(), sntp.port()))
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    println!("StreamPulse demo");
    println!("  config:   {}", config_path.display());
    println!("  database: {}", dir.join("streams.db").display());
    println!("  cameras:  {} (RTSP), {} (MJPEG), one with credentials, one flapping, one silent", rtsp.url("/test"), mjpeg.url("/"));
    println!("  Ctrl-C stops everything.");

    let shutdown = super::shutdown_signal()?;
    let flapper = tokio::spawn(flap(flapping, shutdown.clone()));
    let monitor = Monitor::new(MonitorOptions::new(&config_path));
    monitor.run(shutdown).await?;
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
streams:
  - name: Lobby RTSP
    url: rtsp://127.0.0.1:{rtsp}/test
  - name: Garage MJPEG
    url: http://127.0.0.1:{mjpeg}/
  - name: Office (credentials)
    url: rtsp://{DEMO_USER}:{DEMO_PASSWORD}@127.0.0.1:{rtsp}/auth
  - name: Backyard (wrong password)
    url: rtsp://{DEMO_USER}:wrong@127.0.0.1:{rtsp}/auth
  - name: Warehouse (flapping)
    url: http://127.0.0.1:{flapping}/
  - name: Gate (never answers)
    url: rtsp://127.0.0.1:{silent}/stream1
"
    )
}
