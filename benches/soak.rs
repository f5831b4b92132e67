//! `make soak`: the monitor and the web server left running on a mixed fleet, to show that they
//! can be installed once and forgotten (issue 9): no memory growth after warm-up, flat threads and
//! file descriptors, and every due heartbeat written, while the web answers a dashboard, the API
//! and `/metrics` every second.
//!
//! This process runs loopback cameras of every kind (good RTSP on one shared encoder kept running
//! by a keeper client, good MJPEG, frozen and black pictures, silent sockets, broken servers,
//! closed ports, and a second RTSP and MJPEG server it stops and starts on a timer), starts the
//! release binaries `streampulse monitor` and `streampulse web` as child processes on a config and
//! database in `target/soak/`, logs in to the web like a browser and loads it. Every sample
//! interval it prints one line of RSS, anonymous memory, threads, open fds and database size per
//! process; at the end it checks the heartbeats in the database slot by slot, writes
//! `target/soak-report.md`, prints it, and fails (exit 1) when a target is missed. Method:
//! `docs/benchmarks.md`.
//!
//! Environment (all optional):
//! - `SOAK_MINUTES=10`: how long the fleet runs (the README's figures: `SOAK_MINUTES=60`).
//! - `SOAK_STREAMS=200`: fleet size; the mix below is scaled, good RTSP streams take the rest.
//! - `SOAK_HEARTBEAT_SECONDS=5`, `SOAK_MAX_CONCURRENT=32` (the product default).
//! - `SOAK_SAMPLE_SECONDS=60`: one table row per interval (readings every 5 s within it).
//! - `SOAK_WARMUP_SECONDS`: default the longer of 2 minutes and 20% of the run.
//! - `SOAK_FLAP_UP_SECONDS=40`, `SOAK_FLAP_DOWN_SECONDS=20`: the flapping servers' cycle.
//! - `SOAK_BIN`: the `streampulse` binary to run (default: the release build cargo made).
//!
//! A quick smoke run: `SOAK_MINUTES=2 SOAK_SAMPLE_SECONDS=20 SOAK_WARMUP_SECONDS=40 make soak`.

mod support;

use anyhow::{bail, Context, Result};
use gstreamer as gst;
use gstreamer::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use streampulse::demo::{
    closed_port, MjpegTestServer, RtspTestServer, SharedMount, SilentTcpServer, SntpTestServer,
};
use streampulse::heartbeat::Health;
use streampulse::web::auth::SESSION_COOKIE;
use support::proc::{anonymous_memory_kb, cpu_ticks, open_fds, proc_status, ticks_per_second};
use support::{
    cpu_model, env_number, load_average, log_tail, now_unix_ms, percentile, slope, stop_child, target_dir,
    utc_date,
};

/// The mount every good RTSP stream reads (one encoder for all).
const SHARED_PATH: &str = "/shared";
/// Readings within a sample interval; a row holds their mean (memory) or maximum (threads, fds).
const READ_EVERY: Duration = Duration::from_secs(5);
/// How often the web is loaded (dashboard, API, metrics).
const LOAD_EVERY: Duration = Duration::from_secs(1);
/// Time a child gets after SIGTERM (the monitor finishes and writes its running probes).
const STOP_GRACE: Duration = Duration::from_secs(30);
/// A web request that takes longer than this counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const WEB_USER: &str = "soak";
const WEB_PASSWORD: &str = "soak password 123";
/// Targets (issue 9).
const TARGET_MAX_RSS_GROWTH: f64 = 0.05;
/// Every due heartbeat: the schedule gives each slot a probe whose deadline (80% of the heartbeat)
/// ends before the next slot, so a missing slot is a real five-second gap in a stream's history.
const TARGET_MIN_HEARTBEATS_PCT: f64 = 100.0;
/// Threads and fds are "flat" when their level after warm-up grows by at most this share, or the
/// absolute margin, whichever is larger (see [`flat`]).
const FLAT_TOLERANCE: f64 = 0.10;
const FLAT_MARGIN_THREADS: u64 = 16;
const FLAT_MARGIN_FDS: u64 = 16;

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; anything else must not start a ten-minute run.
    if !std::env::args().any(|arg| arg == "--bench") {
        eprintln!("soak: a long-running check, run by `make soak` (cargo bench --bench soak); skipped");
        return Ok(());
    }
    let settings = Settings::from_env()?;
    eprintln!("soak: {settings:?}");
    let environment = Environment::now();
    let run = run_soak(&settings)?;
    let report = render(&settings, &environment, &run);
    println!("{report}");
    let path = target_dir().join("soak-report.md");
    std::fs::write(&path, &report).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("written to {}", path.display());
    let missed: Vec<&str> = run
        .verdicts
        .iter()
        .filter(|v| !v.met)
        .map(|v| v.target.as_str())
        .collect();
    if !missed.is_empty() {
        bail!("soak targets missed: {}", missed.join("; "));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Settings

#[derive(Debug, Clone)]
struct Settings {
    duration: Duration,
    streams: usize,
    heartbeat: Duration,
    max_concurrent_probes: usize,
    sample_every: Duration,
    warmup: Duration,
    flap_up: Duration,
    flap_down: Duration,
    binary: PathBuf,
}

impl Settings {
    fn from_env() -> Result<Settings> {
        let minutes = env_number("SOAK_MINUTES", 10)?;
        let duration = Duration::from_secs(minutes as u64 * 60);
        let heartbeat_seconds = env_number("SOAK_HEARTBEAT_SECONDS", 5)?;
        if heartbeat_seconds < 2 {
            bail!("SOAK_HEARTBEAT_SECONDS must be at least 2");
        }
        let sample_every = Duration::from_secs(env_number("SOAK_SAMPLE_SECONDS", 60)?.max(5) as u64);
        let default_warmup = (duration / 5).max(Duration::from_secs(120));
        let warmup = match env_number("SOAK_WARMUP_SECONDS", 0)? {
            0 => default_warmup,
            seconds => Duration::from_secs(seconds as u64),
        };
        // The verdicts compare the row at the warm-up's end with at least two later rows.
        if duration < warmup + sample_every * 2 {
            bail!(
                "SOAK_MINUTES={minutes} leaves fewer than two {} s samples after the {} s warm-up: \
                 run longer, or set SOAK_SAMPLE_SECONDS / SOAK_WARMUP_SECONDS for a quick run",
                sample_every.as_secs(),
                warmup.as_secs()
            );
        }
        let streams = env_number("SOAK_STREAMS", 200)?;
        if streams < MIX.len() + 1 {
            bail!(
                "SOAK_STREAMS must be at least {} (one stream of every kind)",
                MIX.len() + 1
            );
        }
        Ok(Settings {
            duration,
            streams,
            heartbeat: Duration::from_secs(heartbeat_seconds as u64),
            max_concurrent_probes: env_number("SOAK_MAX_CONCURRENT", 32)?.max(1),
            sample_every,
            warmup,
            flap_up: Duration::from_secs(env_number("SOAK_FLAP_UP_SECONDS", 40)?.max(1) as u64),
            flap_down: Duration::from_secs(env_number("SOAK_FLAP_DOWN_SECONDS", 20)?.max(1) as u64),
            binary: std::env::var_os("SOAK_BIN")
                .filter(|bin| !bin.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_streampulse"))),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The fleet

/// Which server a stream's URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Rtsp(&'static str),
    RtspNoCredentials(&'static str),
    Mjpeg(&'static str),
    MjpegNoCredentials(&'static str),
    FlapRtsp(&'static str),
    FlapMjpeg(&'static str),
    SilentRtsp,
    SilentHttp,
    ClosedRtsp,
    ClosedHttp,
}

/// What a kind's heartbeats should mostly say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Health(Health),
    /// Up while its server runs, down while it is stopped.
    UpAndDown,
}

/// One kind of stream: its group (good, flapping, frozen, silent, broken), a label, where it points,
/// what its heartbeats should say, and how many of the 200.
struct Kind {
    group: &'static str,
    label: &'static str,
    target: Target,
    expect: Expect,
    count_of_200: usize,
}

const fn kind(
    group: &'static str,
    label: &'static str,
    target: Target,
    expect: Expect,
    count_of_200: usize,
) -> Kind {
    Kind {
        group,
        label,
        target,
        expect,
        count_of_200,
    }
}

const UP: Expect = Expect::Health(Health::Up);
const DEGRADED: Expect = Expect::Health(Health::Degraded);
const DOWN: Expect = Expect::Health(Health::Down);

/// The mix at 200 streams: 150 live (138 good, 12 flapping), 45 misbehaving of 17 kinds, 5 closed
/// ports, as in the measurement. The first kind takes whatever other sizes leave over.
const MIX: &[Kind] = &[
    kind("good", "rtsp-shared", Target::Rtsp(SHARED_PATH), UP, 132),
    kind("good", "mjpeg", Target::Mjpeg("/stream"), UP, 6),
    kind(
        "flapping",
        "rtsp-flap",
        Target::FlapRtsp("/test"),
        Expect::UpAndDown,
        6,
    ),
    kind(
        "flapping",
        "mjpeg-flap",
        Target::FlapMjpeg("/stream"),
        Expect::UpAndDown,
        6,
    ),
    kind("frozen", "rtsp-frozen", Target::Rtsp("/frozen"), DEGRADED, 3),
    kind("frozen", "mjpeg-frozen", Target::Mjpeg("/frozen"), DEGRADED, 3),
    kind("frozen", "rtsp-black", Target::Rtsp("/black"), DEGRADED, 2),
    kind("frozen", "mjpeg-black", Target::Mjpeg("/black"), DEGRADED, 2),
    kind("silent", "rtsp-silent", Target::SilentRtsp, DOWN, 4),
    kind("silent", "http-silent", Target::SilentHttp, DOWN, 3),
    kind("silent", "mjpeg-silent", Target::Mjpeg("/silent"), DOWN, 3),
    kind("silent", "mjpeg-stale", Target::Mjpeg("/stale"), DEGRADED, 3),
    kind(
        "silent",
        "mjpeg-headers-only",
        Target::Mjpeg("/headers-only"),
        DOWN,
        3,
    ),
    kind("broken", "mjpeg-garbage", Target::Mjpeg("/garbage"), DOWN, 3),
    kind("broken", "mjpeg-notjpeg", Target::Mjpeg("/notjpeg"), DOWN, 3),
    kind("broken", "mjpeg-corrupt", Target::Mjpeg("/corrupt"), DOWN, 2),
    kind(
        "broken",
        "mjpeg-401",
        Target::MjpegNoCredentials("/auth"),
        DOWN,
        3,
    ),
    kind("broken", "rtsp-401", Target::RtspNoCredentials("/auth"), DOWN, 3),
    kind("broken", "rtsp-404", Target::Rtsp("/no-such-mount"), DOWN, 3),
    kind("broken", "mjpeg-404", Target::Mjpeg("/no-such-path"), DOWN, 2),
    kind("broken", "rtsp-closed", Target::ClosedRtsp, DOWN, 3),
    kind("broken", "http-closed", Target::ClosedHttp, DOWN, 2),
];

/// Streams per kind for a fleet of `streams`: the mix scaled, at least one of each, the first kind
/// taking the rest.
fn kind_counts(streams: usize) -> Vec<usize> {
    let mut counts: Vec<usize> = MIX
        .iter()
        .map(|kind| ((kind.count_of_200 * streams + 100) / 200).max(1))
        .collect();
    let others: usize = counts[1..].iter().sum();
    counts[0] = streams.saturating_sub(others).max(1);
    counts
}

fn stream_name(kind: &Kind, index: usize) -> String {
    format!("{}-{}-{index:03}", kind.group, kind.label)
}

/// The loopback servers: cameras, the flapping pair, the SNTP responder, and a client that keeps
/// the shared encoder running (as a camera's does whether anyone watches or not).
struct Servers {
    rtsp: RtspTestServer,
    mjpeg: MjpegTestServer,
    flap_rtsp: RtspTestServer,
    flap_mjpeg: MjpegTestServer,
    silent: SilentTcpServer,
    sntp: SntpTestServer,
    keeper: gst::Element,
    closed: u16,
    /// Stop/start cycles of the flapping servers so far.
    flaps: u32,
}

impl Servers {
    fn start() -> Result<Servers> {
        let rtsp = RtspTestServer::builder()
            .shared(Some(SharedMount::default()))
            .start()
            .context("starting the RTSP server")?;
        let keeper = gst::parse::launch(&format!(
            "rtspsrc location={} protocols=tcp latency=0 ! fakesink sync=false",
            rtsp.url(SHARED_PATH)
        ))
        .context("building the keeper client")?;
        keeper
            .set_state(gst::State::Playing)
            .context("starting the keeper client")?;
        Ok(Servers {
            rtsp,
            mjpeg: MjpegTestServer::start().context("starting the MJPEG server")?,
            flap_rtsp: RtspTestServer::start().context("starting the flapping RTSP server")?,
            flap_mjpeg: MjpegTestServer::start().context("starting the flapping MJPEG server")?,
            silent: SilentTcpServer::start().context("starting the silent server")?,
            sntp: SntpTestServer::start(0).context("starting the SNTP server")?,
            keeper,
            closed: closed_port(),
            flaps: 0,
        })
    }

    /// The URL a stream of `target` is configured with (never with credentials: the 401 kinds
    /// are cameras whose password is missing).
    fn url(&self, target: Target) -> String {
        match target {
            Target::Rtsp(path) | Target::RtspNoCredentials(path) => self.rtsp.url(path),
            Target::Mjpeg(path) | Target::MjpegNoCredentials(path) => self.mjpeg.url(path),
            Target::FlapRtsp(path) => self.flap_rtsp.url(path),
            Target::FlapMjpeg(path) => self.flap_mjpeg.url(path),
            Target::SilentRtsp => self.silent.rtsp_url("/stream"),
            Target::SilentHttp => self.silent.http_url("/stream"),
            Target::ClosedRtsp => format!("rtsp://127.0.0.1:{}/stream", self.closed),
            Target::ClosedHttp => format!("http://127.0.0.1:{}/stream", self.closed),
        }
    }

    /// Stops or restarts the flapping servers so they are up for `up`, then down for `down`.
    fn flap(&mut self, elapsed: Duration, up: Duration, down: Duration) -> Result<()> {
        let cycle = (up + down).as_millis().max(1);
        let should_run = elapsed.as_millis() % cycle < up.as_millis();
        if should_run && !self.flap_rtsp.is_running() {
            self.flap_rtsp
                .restart()
                .context("restarting the flapping RTSP server")?;
            self.flap_mjpeg
                .restart()
                .context("restarting the flapping MJPEG server")?;
            self.flaps += 1;
        } else if !should_run && self.flap_rtsp.is_running() {
            self.flap_rtsp.stop();
            self.flap_mjpeg.stop();
        }
        Ok(())
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        let _ = self.keeper.set_state(gst::State::Null);
    }
}

/// The config both processes read; returns each stream's name and kind index.
fn write_config(path: &Path, settings: &Settings, servers: &Servers) -> Result<Vec<(String, usize)>> {
    let mut yaml = String::from("# generated by benches/soak.rs\n");
    let _ = writeln!(yaml, "heartbeat_seconds: {}", settings.heartbeat.as_secs());
    let _ = writeln!(yaml, "ntp_server: 127.0.0.1:{}", servers.sntp.port());
    let _ = writeln!(yaml, "max_concurrent_probes: {}", settings.max_concurrent_probes);
    let _ = writeln!(yaml, "streams:");
    let mut streams = Vec::new();
    for (kind_index, (kind, count)) in MIX.iter().zip(kind_counts(settings.streams)).enumerate() {
        let url = servers.url(kind.target);
        for index in 0..count {
            let name = stream_name(kind, index);
            let _ = writeln!(yaml, "  - name: {name}\n    url: {url}");
            streams.push((name, kind_index));
        }
    }
    std::fs::write(path, yaml).with_context(|| format!("writing {}", path.display()))?;
    Ok(streams)
}

// ---------------------------------------------------------------------------------------------
// The two processes

/// The monitor and web processes; stopped with SIGTERM however the run ends.
struct Processes {
    monitor: Child,
    web: Child,
    stopped: bool,
}

impl Processes {
    /// SIGTERM to both, the web first (it holds no data the monitor needs); what went wrong.
    fn stop(&mut self) -> Vec<String> {
        self.stopped = true;
        let mut problems = Vec::new();
        for (child, what) in [(&mut self.web, "the web"), (&mut self.monitor, "the monitor")] {
            match stop_child(child, what, STOP_GRACE) {
                Ok(Some(problem)) => problems.push(problem),
                Ok(None) => {}
                Err(error) => problems.push(format!("stopping {what}: {error:#}")),
            }
        }
        problems
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        if !self.stopped {
            for problem in self.stop() {
                eprintln!("soak: {problem}");
            }
        }
    }
}

/// Runs `streampulse` with `args` to its end, feeding `stdin`; its standard output.
fn run_cli(binary: &Path, args: &[&str], stdin: &str) -> Result<String> {
    let mut child = Command::new(binary)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {} {}", binary.display(), args.join(" ")))?;
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "streampulse {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn spawn(binary: &Path, args: &[&str], log: &Path) -> Result<Child> {
    Command::new(binary)
        .args(args)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?)
        .spawn()
        .with_context(|| format!("starting {} {}", binary.display(), args.join(" ")))
}

// ---------------------------------------------------------------------------------------------
// Web load

/// One HTTP/1.1 request over a fresh loopback connection (`Connection: close`); status, headers
/// and body.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> Result<(u16, String, Vec<u8>)> {
    let mut socket = TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT)?;
    socket.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    socket.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    let length = if body.is_empty() {
        String::new()
    } else {
        format!("Content-Length: {}\r\n", body.len())
    };
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}{length}Connection: close\r\n\r\n{body}"
    );
    socket.write_all(request.as_bytes())?;
    let mut response = Vec::with_capacity(64 * 1024);
    socket.read_to_end(&mut response)?;
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("response without a header end")?;
    let head = String::from_utf8_lossy(&response[..head_end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line in {head:?}"))?;
    Ok((status, head, response[head_end + 4..].to_vec()))
}

/// The value of cookie `name` among a response's `Set-Cookie` headers.
fn set_cookie(head: &str, name: &str) -> Option<String> {
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(key, _)| key.trim().eq_ignore_ascii_case("set-cookie"))
        .filter_map(|(_, value)| value.trim().split(';').next()?.split_once('='))
        .find(|(key, _)| key.trim() == name)
        .map(|(_, value)| value.trim().to_string())
}

/// Logs in through the form, as a browser does: the login page's CSRF cookie, then the POST.
fn log_in(addr: SocketAddr) -> Result<String> {
    use streampulse::web::auth::csrf;
    let (status, head, _) = http(addr, "GET", "/login", "", "")?;
    if status != 200 {
        bail!("GET /login answered {status}");
    }
    let token = set_cookie(&head, csrf::LOGIN_COOKIE).context("the login page set no CSRF cookie")?;
    let body = format!(
        "user={}&password={}&csrf={}",
        form_encode(WEB_USER),
        form_encode(WEB_PASSWORD),
        form_encode(&token)
    );
    let headers = format!(
        "Cookie: {}={token}\r\nContent-Type: application/x-www-form-urlencoded\r\nOrigin: http://{addr}\r\n",
        csrf::LOGIN_COOKIE
    );
    let (status, head, _) = http(addr, "POST", "/login", &headers, &body)?;
    set_cookie(&head, SESSION_COOKIE)
        .with_context(|| format!("the login answered {status} without a session cookie"))
}

/// `application/x-www-form-urlencoded` for one value.
fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// The endpoints loaded every second.
const ENDPOINTS: [&str; 3] = ["dashboard `/`", "`/api/v1/streams`", "`/metrics`"];

/// Requests made by the load thread: per endpoint, the latencies of those answered 200, and the
/// failures. Taken per sample interval and in total.
#[derive(Debug, Default, Clone)]
struct LoadStats {
    ok_ms: [Vec<f64>; 3],
    failed: [usize; 3],
    /// The first few failures, for the report.
    examples: Vec<String>,
}

impl LoadStats {
    fn requests(&self) -> usize {
        self.ok_ms.iter().map(Vec::len).sum::<usize>() + self.failed.iter().sum::<usize>()
    }

    fn failures(&self) -> usize {
        self.failed.iter().sum()
    }

    fn all_ms(&self) -> Vec<f64> {
        self.ok_ms.iter().flatten().copied().collect()
    }

    fn absorb(&mut self, other: &LoadStats) {
        for i in 0..3 {
            self.ok_ms[i].extend_from_slice(&other.ok_ms[i]);
            self.failed[i] += other.failed[i];
        }
        for example in &other.examples {
            if self.examples.len() < 10 {
                self.examples.push(example.clone());
            }
        }
    }
}

/// Loads the web every second until `stop`: the dashboard with the session, the API and
/// `/metrics` with the token, as a browser tab and a Prometheus scraper would.
fn load_web(
    addr: SocketAddr,
    session: String,
    token: String,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<LoadStats>>,
) {
    let cookie = format!("Cookie: {SESSION_COOKIE}={session}\r\nAccept-Encoding: gzip\r\n");
    let bearer = format!("Authorization: Bearer {token}\r\nAccept-Encoding: gzip\r\n");
    let requests = [
        ("/", cookie.as_str()),
        ("/api/v1/streams", bearer.as_str()),
        ("/metrics", bearer.as_str()),
    ];
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        for (index, (path, headers)) in requests.iter().enumerate() {
            let started = Instant::now();
            let result = http(addr, "GET", path, headers, "");
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            let Ok(mut guard) = stats.lock() else { return };
            match result {
                Ok((200, _, _)) => guard.ok_ms[index].push(ms),
                other => {
                    guard.failed[index] += 1;
                    if guard.examples.len() < 10 {
                        let what = match other {
                            Ok((status, _, _)) => format!("status {status}"),
                            Err(error) => format!("{error:#}"),
                        };
                        guard
                            .examples
                            .push(format!("GET {path}: {what} after {ms:.0} ms"));
                    }
                }
            }
        }
        next += LOAD_EVERY;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            // Behind (the web was slow): do not fire a burst to catch up.
            next = now;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sampling

/// One process over one sample interval.
#[derive(Debug, Default, Clone, Copy)]
struct ProcRow {
    /// Means of the readings in the interval.
    rss_mb: f64,
    anon_mb: f64,
    /// Medians of the readings in the interval (probes in flight make single readings jump).
    threads: u64,
    fds: u64,
    /// Largest readings in the interval.
    threads_max: u64,
    fds_max: u64,
    /// Average CPU over the interval, in cores.
    cores: f64,
}

/// Readings of one process within the current interval.
#[derive(Debug, Default)]
struct ProcReadings {
    rss_kb: Vec<f64>,
    anon_kb: Vec<f64>,
    threads: Vec<f64>,
    fds: Vec<f64>,
    ticks_at_start: u64,
}

impl ProcReadings {
    fn start(pid: u32) -> ProcReadings {
        ProcReadings {
            ticks_at_start: cpu_ticks(pid).unwrap_or(0),
            ..ProcReadings::default()
        }
    }

    fn read(&mut self, pid: u32) {
        if let Some(status) = proc_status(pid) {
            self.rss_kb.push(status.rss_kb as f64);
            self.threads.push(status.threads as f64);
        }
        if let Some(anon) = anonymous_memory_kb(pid) {
            self.anon_kb.push(anon as f64);
        }
        if let Some(fds) = open_fds(pid) {
            self.fds.push(fds as f64);
        }
    }

    /// The row for the interval just ended, and fresh readings for the next one.
    fn finish(&mut self, pid: u32, seconds: f64, ticks_per_second: f64) -> ProcRow {
        let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len().max(1) as f64 / 1024.0;
        let median = |values: &[f64]| percentile(values, 50.0) as u64;
        let max = |values: &[f64]| values.iter().copied().fold(0.0, f64::max) as u64;
        let ticks = cpu_ticks(pid).unwrap_or(self.ticks_at_start);
        let row = ProcRow {
            rss_mb: mean(&self.rss_kb),
            anon_mb: mean(&self.anon_kb),
            threads: median(&self.threads),
            fds: median(&self.fds),
            threads_max: max(&self.threads),
            fds_max: max(&self.fds),
            cores: ticks.saturating_sub(self.ticks_at_start) as f64 / ticks_per_second / seconds.max(1.0),
        };
        *self = ProcReadings::start(pid);
        row
    }
}

/// One table row: the end of a sample interval.
#[derive(Debug, Clone)]
struct Row {
    at: Duration,
    monitor: ProcRow,
    web: ProcRow,
    db_mb: f64,
    wal_mb: f64,
    heartbeats: i64,
    load: LoadStats,
}

impl Row {
    fn one_line(&self) -> String {
        format!(
            "{:>5.1} min | monitor RSS {:6.1} MB anon {:6.1} MB threads {:3} (max {:3}) fds {:3} (max {:3}) \
             {:.2} cores | web RSS {:5.1} MB anon {:5.1} MB threads {:2} fds {:3} | db {:.1} + wal {:.1} MB, \
             {} heartbeats | \
             web {} requests, {} failed, p95 {:.0} ms",
            self.at.as_secs_f64() / 60.0,
            self.monitor.rss_mb,
            self.monitor.anon_mb,
            self.monitor.threads,
            self.monitor.threads_max,
            self.monitor.fds,
            self.monitor.fds_max,
            self.monitor.cores,
            self.web.rss_mb,
            self.web.anon_mb,
            self.web.threads,
            self.web.fds,
            self.db_mb,
            self.wal_mb,
            self.heartbeats,
            self.load.requests(),
            self.load.failures(),
            percentile(&self.load.all_ms(), 95.0)
        )
    }
}

fn file_mb(path: &Path) -> f64 {
    std::fs::metadata(path).map_or(0.0, |m| m.len() as f64 / 1_048_576.0)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn count_heartbeats(db: &Path) -> Result<i64> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    Ok(conn.query_row("SELECT COUNT(*) FROM heartbeats", [], |row| row.get(0))?)
}

// ---------------------------------------------------------------------------------------------
// The run

struct Run {
    streams: Vec<(String, usize)>,
    rows: Vec<Row>,
    warmup_row: usize,
    load_total: LoadStats,
    heartbeats: HeartbeatCheck,
    outcomes: Vec<BTreeMap<String, usize>>,
    flaps: u32,
    stop_problems: Vec<String>,
    verdicts: Vec<Verdict>,
    dir: PathBuf,
}

fn run_soak(settings: &Settings) -> Result<Run> {
    let dir = target_dir().join("soak");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let (config, db) = (dir.join("config.yaml"), dir.join("soak.db"));
    let (monitor_log, web_log) = (dir.join("monitor.log"), dir.join("web.log"));

    let mut servers = Servers::start()?;
    let streams = write_config(&config, settings, &servers)?;
    eprintln!(
        "soak: {} streams, RTSP {}, MJPEG {}, flapping {} + {}, SNTP 127.0.0.1:{}, files in {}",
        streams.len(),
        servers.rtsp.addr(),
        servers.mjpeg.addr(),
        servers.flap_rtsp.addr(),
        servers.flap_mjpeg.addr(),
        servers.sntp.port(),
        dir.display()
    );
    let (config_arg, db_arg) = (config.display().to_string(), db.display().to_string());
    let binary = &settings.binary;
    // `validate` first: a config the monitor refuses is a harness bug, better said now.
    run_cli(binary, &["validate", "--config", &config_arg], "").context("the generated config")?;
    run_cli(
        binary,
        &["user", "add", WEB_USER, "--config", &config_arg, "--db", &db_arg],
        &format!("{WEB_PASSWORD}\n"),
    )?;
    let token = run_cli(
        binary,
        &[
            "token",
            "create",
            "soak-load",
            "--config",
            &config_arg,
            "--db",
            &db_arg,
        ],
        "",
    )?;
    let web_addr = SocketAddr::from(([127, 0, 0, 1], closed_port()));
    let web_listen = web_addr.to_string();

    let started = Instant::now();
    let mut processes = Processes {
        monitor: spawn(
            binary,
            &["monitor", "--config", &config_arg, "--db", &db_arg],
            &monitor_log,
        )?,
        web: spawn(
            binary,
            &[
                "web",
                "--config",
                &config_arg,
                "--db",
                &db_arg,
                "--listen",
                &web_listen,
            ],
            &web_log,
        )?,
        stopped: false,
    };
    let ready_by = Instant::now() + Duration::from_secs(20);
    while !matches!(http(web_addr, "GET", "/healthz", "", ""), Ok((200, _, _))) {
        if let Some(exit) = processes.web.try_wait()? {
            bail!("the web exited at start ({exit}):\n{}", log_tail(&web_log, 20));
        }
        if Instant::now() > ready_by {
            bail!(
                "the web did not answer /healthz within 20 s:\n{}",
                log_tail(&web_log, 20)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let session = log_in(web_addr).context("logging in to the web")?;

    let stop_load = Arc::new(AtomicBool::new(false));
    let load = Arc::new(Mutex::new(LoadStats::default()));
    let loader = {
        let (stop, stats) = (Arc::clone(&stop_load), Arc::clone(&load));
        std::thread::Builder::new()
            .name("soak-web-load".into())
            .spawn(move || load_web(web_addr, session, token, stop, stats))?
    };

    let live = Live {
        settings,
        started,
        db: &db,
        monitor_log: &monitor_log,
        web_log: &web_log,
        load: &load,
    };
    let outcome = live.sample(&mut servers, &mut processes);
    stop_load.store(true, Ordering::Relaxed);
    let _ = loader.join();
    // Slots due before this (less one heartbeat, which may be in flight) must all be written.
    let stop_ms = now_unix_ms();
    let stop_problems = processes.stop();
    for problem in &stop_problems {
        eprintln!("soak: {problem}");
    }
    let rows = outcome?;
    let mut load_total = LoadStats::default();
    for row in &rows {
        load_total.absorb(&row.load);
    }
    if let Ok(rest) = load.lock() {
        load_total.absorb(&rest);
    }

    let beats = read_heartbeats(&db)?;
    let heartbeats = check_heartbeats(&streams, &beats, settings.heartbeat, stop_ms);
    let mut outcomes = vec![BTreeMap::new(); MIX.len()];
    let kind_of: BTreeMap<&str, usize> = streams
        .iter()
        .map(|(name, kind)| (name.as_str(), *kind))
        .collect();
    for beat in &beats {
        if let Some(&kind) = kind_of.get(beat.stream.as_str()) {
            *outcomes[kind].entry(beat.outcome.clone()).or_insert(0) += 1;
        }
    }
    let warmup_row = rows
        .iter()
        .rposition(|row| row.at <= settings.warmup + Duration::from_secs(2))
        .unwrap_or(0);
    let mut run = Run {
        streams,
        rows,
        warmup_row,
        load_total,
        heartbeats,
        outcomes,
        flaps: servers.flaps,
        stop_problems,
        verdicts: Vec::new(),
        dir,
    };
    run.verdicts = verdicts(settings, &run);
    Ok(run)
}

/// What the sampling loop reads and writes besides the servers and processes it drives.
struct Live<'a> {
    settings: &'a Settings,
    started: Instant,
    db: &'a Path,
    monitor_log: &'a Path,
    web_log: &'a Path,
    load: &'a Mutex<LoadStats>,
}

impl Live<'_> {
    /// Until the run's end: flaps the flapping servers, reads both processes every 5 s and
    /// makes a row every sample interval; fails as soon as either process exits.
    fn sample(&self, servers: &mut Servers, processes: &mut Processes) -> Result<Vec<Row>> {
        let settings = self.settings;
        let (monitor_pid, web_pid) = (processes.monitor.id(), processes.web.id());
        let ticks = ticks_per_second();
        let mut monitor_readings = ProcReadings::start(monitor_pid);
        let mut web_readings = ProcReadings::start(web_pid);
        let mut rows = Vec::new();
        let mut interval_started = Instant::now();
        let mut next_read = Instant::now();
        let mut next_row = self.started + settings.sample_every;
        let end = self.started + settings.duration;
        let rows_wanted = (settings.duration.as_secs() / settings.sample_every.as_secs()) as usize;
        loop {
            let now = Instant::now();
            if let Some(exit) = processes.monitor.try_wait()? {
                bail!("the monitor exited ({exit}):\n{}", log_tail(self.monitor_log, 20));
            }
            if let Some(exit) = processes.web.try_wait()? {
                bail!("the web exited ({exit}):\n{}", log_tail(self.web_log, 20));
            }
            servers.flap(now - self.started, settings.flap_up, settings.flap_down)?;
            if now >= next_read {
                monitor_readings.read(monitor_pid);
                web_readings.read(web_pid);
                next_read += READ_EVERY;
            }
            if now >= next_row {
                let seconds = interval_started.elapsed().as_secs_f64();
                interval_started = Instant::now();
                let load = std::mem::take(
                    &mut *self
                        .load
                        .lock()
                        .map_err(|_| anyhow::anyhow!("load stats poisoned"))?,
                );
                let row = Row {
                    at: now - self.started,
                    monitor: monitor_readings.finish(monitor_pid, seconds, ticks),
                    web: web_readings.finish(web_pid, seconds, ticks),
                    db_mb: file_mb(self.db),
                    wal_mb: file_mb(&with_suffix(self.db, "-wal")),
                    heartbeats: count_heartbeats(self.db).unwrap_or(-1),
                    load,
                };
                eprintln!("{}", row.one_line());
                rows.push(row);
                next_row += settings.sample_every;
            }
            if now >= end && rows.len() >= rows_wanted {
                return Ok(rows);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Heartbeats

struct Beat {
    stream: String,
    ts_ms: i64,
    /// `up`, or `<health>: <reason>`.
    outcome: String,
}

fn read_heartbeats(db: &Path) -> Result<Vec<Beat>> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening {}", db.display()))?;
    let mut select = conn.prepare(
        "SELECT s.name, h.ts_ms, h.health, h.reason FROM heartbeats h \
         JOIN streams s ON s.id = h.stream_id ORDER BY s.name, h.ts_ms",
    )?;
    let rows = select.query_map([], |row| {
        let health = Health::from_code(row.get(2)?);
        let reason: Option<String> = row.get(3)?;
        Ok(Beat {
            stream: row.get(0)?,
            ts_ms: row.get(1)?,
            outcome: match (health, reason) {
                (Some(Health::Up), _) => "up".into(),
                (Some(health), Some(reason)) => format!("{health}: {reason}"),
                (Some(health), None) => health.to_string(),
                (None, _) => "unknown".into(),
            },
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Due slots against heartbeats written, per stream.
#[derive(Debug, Default)]
struct HeartbeatCheck {
    due: usize,
    present: usize,
    /// Streams with missing slots: name, missing, due, and the first missing slots' offsets (s).
    gaps: Vec<(String, usize, usize, Vec<f64>)>,
    /// Streams without any heartbeat.
    silent: Vec<String>,
    /// Slots with more than one heartbeat (a probe more than half a heartbeat late).
    doubled: usize,
}

impl HeartbeatCheck {
    fn percent(&self) -> f64 {
        self.present as f64 * 100.0 / self.due.max(1) as f64
    }
}

/// A stream's slots are its first heartbeat plus whole heartbeats (the monitor's fixed grid; a
/// heartbeat's `ts_ms` is its probe's start, a little after the slot). Due: every slot up to one
/// heartbeat before the stop (the last one may still be in flight). A slot is present when a
/// heartbeat rounds to it.
fn check_heartbeats(
    streams: &[(String, usize)],
    beats: &[Beat],
    heartbeat: Duration,
    stop_ms: i64,
) -> HeartbeatCheck {
    let interval_ms = heartbeat.as_millis() as i64;
    let mut by_stream: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for beat in beats {
        by_stream
            .entry(beat.stream.as_str())
            .or_default()
            .push(beat.ts_ms);
    }
    let mut check = HeartbeatCheck::default();
    for (name, _) in streams {
        let Some(times) = by_stream.get(name.as_str()) else {
            check.silent.push(name.clone());
            continue;
        };
        let first = times[0];
        let last_due = (stop_ms - interval_ms - first).div_euclid(interval_ms);
        if last_due < 0 {
            continue;
        }
        let due = last_due as usize + 1;
        let mut slots = BTreeSet::new();
        for &ts in times {
            let slot = ((ts - first) as f64 / interval_ms as f64).round() as i64;
            if slot <= last_due && !slots.insert(slot) {
                check.doubled += 1;
            }
        }
        check.due += due;
        check.present += slots.len();
        if slots.len() < due {
            let missing: Vec<f64> = (0..=last_due)
                .filter(|slot| !slots.contains(slot))
                .take(5)
                .map(|slot| (slot * interval_ms) as f64 / 1000.0)
                .collect();
            check.gaps.push((name.clone(), due - slots.len(), due, missing));
        }
    }
    check
}

// ---------------------------------------------------------------------------------------------
// Verdicts and report

struct Verdict {
    target: String,
    measured: String,
    met: bool,
}

/// Growth of RSS from the warm-up row to the last, two ways: end points, and the least-squares
/// slope over the post-warm-up rows projected over the same span. Both as shares of the warm-up RSS.
/// Also the slope over the second half of those rows alone (MB/min): it tells growth that levels
/// off (allocator fragmentation settling) from growth that keeps going (a leak).
fn growth(rows: &[Row], warmup_row: usize, rss: impl Fn(&Row) -> f64) -> (f64, f64, f64, f64) {
    let base = rss(&rows[warmup_row]);
    let last = rows.last().map_or(base, &rss);
    let post: Vec<(f64, f64)> = rows[warmup_row..]
        .iter()
        .map(|row| (row.at.as_secs_f64() / 60.0, rss(row)))
        .collect();
    let slope_mb_per_min = slope(&post);
    let span_min = post.last().map_or(0.0, |p| p.0) - post.first().map_or(0.0, |p| p.0);
    let second_half = slope(&post[post.len() / 2..]);
    (
        (last - base) / base,
        slope_mb_per_min,
        slope_mb_per_min * span_min / base,
        second_half,
    )
}

/// Rows averaged at each end of the post-warm-up span when judging threads and fds.
const FLAT_ENDS_ROWS: usize = 3;

/// Whether a count (threads, fds) is flat after warm-up. A probe in flight holds a dozen fds and a
/// few threads, and the per-minute medians swing by ±30 fds with the probes in flight, so single
/// rows measure concurrency, not leaks. A leak raises the level: the mean of the last rows against
/// the mean of the first rows after warm-up, and the least-squares slope projected over the span,
/// must both stay within the tolerance. Returns (start level, end level, largest row, projected
/// growth, met).
fn flat(
    rows: &[Row],
    warmup_row: usize,
    value: impl Fn(&Row) -> u64,
    margin: u64,
) -> (f64, f64, u64, f64, bool) {
    let post = &rows[warmup_row..];
    let ends = FLAT_ENDS_ROWS.min(post.len()).max(1);
    let mean =
        |rows: &[Row]| rows.iter().map(|row| value(row) as f64).sum::<f64>() / rows.len().max(1) as f64;
    let start = mean(&post[..ends]);
    let end = mean(&post[post.len() - ends..]);
    let max = post.iter().map(&value).max().unwrap_or(0);
    let points: Vec<(f64, f64)> = post
        .iter()
        .map(|row| (row.at.as_secs_f64() / 60.0, value(row) as f64))
        .collect();
    let span_min = points.last().map_or(0.0, |p| p.0) - points.first().map_or(0.0, |p| p.0);
    let projected = slope(&points) * span_min;
    let allowed = (margin as f64).max(start * FLAT_TOLERANCE);
    let met = end - start <= allowed && (projected.is_nan() || projected <= allowed);
    (start, end, max, projected, met)
}

fn verdicts(settings: &Settings, run: &Run) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    let rows = &run.rows;
    let w = run.warmup_row;
    let warm_min = rows[w].at.as_secs_f64() / 60.0;
    for (what, pick) in [
        ("monitor", (|row: &Row| row.monitor) as fn(&Row) -> ProcRow),
        ("web", |row: &Row| row.web),
    ] {
        let (growth_end, slope_mb, growth_slope, second_half) = growth(rows, w, |row| pick(row).rss_mb);
        let (anon_end, anon_slope, _, _) = growth(rows, w, |row| pick(row).anon_mb);
        verdicts.push(Verdict {
            target: format!("{what}: RSS grows < 5% after warm-up"),
            measured: format!(
                "{:.1} → {:.1} MB ({:+.1}%); slope {:+.2} MB/min ({:+.1}% over the span; second half {:+.2} MB/min); anonymous {:+.1}%, {:+.2} MB/min",
                pick(&rows[w]).rss_mb,
                pick(rows.last().unwrap_or(&rows[w])).rss_mb,
                growth_end * 100.0,
                slope_mb,
                growth_slope * 100.0,
                second_half,
                anon_end * 100.0,
                anon_slope
            ),
            met: growth_end < TARGET_MAX_RSS_GROWTH
                && (growth_slope.is_nan() || growth_slope < TARGET_MAX_RSS_GROWTH),
        });
        for (name, value, margin) in [
            (
                "threads",
                (|row: &ProcRow| row.threads) as fn(&ProcRow) -> u64,
                FLAT_MARGIN_THREADS,
            ),
            ("open fds", |row: &ProcRow| row.fds, FLAT_MARGIN_FDS),
        ] {
            let (start, end, max, projected, met) = flat(rows, w, |row| value(&pick(row)), margin);
            verdicts.push(Verdict {
                target: format!("{what}: {name} flat"),
                measured: format!(
                    "{start:.0} just after warm-up ({warm_min:.1} min) → {end:.0} at the end; slope projected over the span {projected:+.1}; largest row {max}"
                ),
                met,
            });
        }
    }
    let hb = &run.heartbeats;
    verdicts.push(Verdict {
        target: format!("every due heartbeat present (≥ {TARGET_MIN_HEARTBEATS_PCT}%)"),
        measured: format!(
            "{} of {} slots ({:.3}%), {} streams with gaps, {} without any heartbeat",
            hb.present,
            hb.due,
            hb.percent(),
            hb.gaps.len(),
            hb.silent.len()
        ),
        met: hb.percent() >= TARGET_MIN_HEARTBEATS_PCT && hb.silent.is_empty() && hb.due > 0,
    });
    let load = &run.load_total;
    let expected_requests = (settings.duration.as_secs() as usize) * ENDPOINTS.len();
    verdicts.push(Verdict {
        target: "web answers the load (dashboard, API, metrics every second): no failure".into(),
        measured: format!(
            "{} requests (≈{} planned), {} failed, p95 {:.0} ms",
            load.requests(),
            expected_requests,
            load.failures(),
            percentile(&load.all_ms(), 95.0)
        ),
        met: load.failures() == 0 && load.requests() > 0,
    });
    verdicts.push(Verdict {
        target: "both processes stop cleanly on SIGTERM".into(),
        measured: if run.stop_problems.is_empty() {
            "yes".into()
        } else {
            run.stop_problems.join("; ")
        },
        met: run.stop_problems.is_empty(),
    });
    verdicts
}

struct Environment {
    cpu_model: String,
    cores: usize,
    load_before: String,
    date: String,
}

impl Environment {
    fn now() -> Environment {
        Environment {
            cpu_model: cpu_model(),
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            load_before: load_average(),
            date: utc_date(),
        }
    }
}

fn render(settings: &Settings, env: &Environment, run: &Run) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# StreamPulse soak (`make soak`)\n");
    let _ = writeln!(
        out,
        "{} on {} ({} cores), load average before: {}, after: {}. {} streams at a {} s heartbeat for {} min, \
         max_concurrent_probes {}; the web loaded every second (dashboard with a login session, \
         `/api/v1/streams` and `/metrics` with an API token). Warm-up: the first {} s (row at {:.1} min); \
         flapping servers {} s up / {} s down ({} restarts). Binary: `{}`. Files: `{}`.\n",
        env.date,
        env.cpu_model,
        env.cores,
        env.load_before,
        load_average(),
        run.streams.len(),
        settings.heartbeat.as_secs(),
        settings.duration.as_secs() / 60,
        settings.max_concurrent_probes,
        settings.warmup.as_secs(),
        run.rows[run.warmup_row].at.as_secs_f64() / 60.0,
        settings.flap_up.as_secs(),
        settings.flap_down.as_secs(),
        run.flaps,
        settings.binary.display(),
        run.dir.display()
    );

    let _ = writeln!(out, "## Targets\n");
    let _ = writeln!(out, "| target | measured | |");
    let _ = writeln!(out, "|---|---|---|");
    for verdict in &run.verdicts {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            verdict.target,
            verdict.measured,
            if verdict.met { "met" } else { "**missed**" }
        );
    }
    let _ = writeln!(
        out,
        "\nRSS growth: the row at the end against the row at the end of the warm-up, and the least-squares \
         slope over the rows from the warm-up on, projected over the same span; both must stay under 5%. The slope over the second half of \
         those rows is shown, not judged: near zero when the allocator has settled, as steep as the \
         whole when something keeps growing. Threads and fds are flat when neither the mean of the last {} rows against the mean of the first {} \
         rows after warm-up, nor the least-squares slope projected over the span, grows by more than {:.0}% \
         (or {} threads / {} fds, whichever is larger): single rows swing with the probes in flight.\n",
        FLAT_ENDS_ROWS,
        FLAT_ENDS_ROWS,
        FLAT_TOLERANCE * 100.0,
        FLAT_MARGIN_THREADS,
        FLAT_MARGIN_FDS
    );

    let _ = writeln!(out, "## Every {} s\n", settings.sample_every.as_secs());
    let _ = writeln!(
        out,
        "| min | monitor RSS MB | anon MB | threads | fds | cores | web RSS MB | anon MB | threads | fds | \
         DB + WAL MB | heartbeats | web requests / failed | p95 ms |"
    );
    let _ = writeln!(
        out,
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---:|"
    );
    for (index, row) in run.rows.iter().enumerate() {
        let mark = if index == run.warmup_row {
            " (warm-up end)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "| {:.1}{mark} | {:.1} | {:.1} | {} | {} | {:.2} | {:.1} | {:.1} | {} | {} | {:.1} + {:.1} | {} | {} / {} | {:.0} |",
            row.at.as_secs_f64() / 60.0,
            row.monitor.rss_mb,
            row.monitor.anon_mb,
            row.monitor.threads,
            row.monitor.fds,
            row.monitor.cores,
            row.web.rss_mb,
            row.web.anon_mb,
            row.web.threads,
            row.web.fds,
            row.db_mb,
            row.wal_mb,
            row.heartbeats,
            row.load.requests(),
            row.load.failures(),
            percentile(&row.load.all_ms(), 95.0)
        );
    }
    let _ = writeln!(
        out,
        "\nRSS and anonymous memory (`/proc/PID/smaps_rollup`): mean of the readings every {} s in the \
         interval; threads and fds (`/proc/PID/fd`): the median reading (probes in flight make single readings \
         jump; the largest is in the progress lines); cores: CPU time over the interval.\n",
        READ_EVERY.as_secs()
    );

    let _ = writeln!(out, "## Web under load\n");
    let _ = writeln!(
        out,
        "| endpoint | answered 200 | failed | p50 ms | p95 ms | p99 ms | max ms |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
    let load = &run.load_total;
    for (index, name) in ENDPOINTS.iter().enumerate() {
        let ms = &load.ok_ms[index];
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} |",
            ms.len(),
            load.failed[index],
            percentile(ms, 50.0),
            percentile(ms, 95.0),
            percentile(ms, 99.0),
            ms.iter().copied().fold(f64::NAN, f64::max)
        );
    }
    for example in &load.examples {
        let _ = writeln!(out, "- {example}");
    }
    let _ = writeln!(out);

    let hb = &run.heartbeats;
    let _ = writeln!(out, "## Heartbeats\n");
    let _ = writeln!(
        out,
        "{} of {} due slots written ({:.3}%); {} slots with two heartbeats (a probe more than half a \
         heartbeat late). A stream's slots run from its first heartbeat every {} s up to one heartbeat \
         before the stop.\n",
        hb.present,
        hb.due,
        hb.percent(),
        hb.doubled,
        settings.heartbeat.as_secs()
    );
    for name in &hb.silent {
        let _ = writeln!(out, "- **{name}: no heartbeat at all**");
    }
    for (name, missing, due, first) in hb.gaps.iter().take(40) {
        let offsets: Vec<String> = first.iter().map(|s| format!("+{s:.0} s")).collect();
        let _ = writeln!(
            out,
            "- {name}: {missing} of {due} missing (first at {})",
            offsets.join(", ")
        );
    }
    if hb.gaps.len() > 40 {
        let _ = writeln!(out, "- … and {} more streams", hb.gaps.len() - 40);
    }
    let _ = writeln!(out);

    let _ = writeln!(out, "## Outcomes by kind (sanity)\n");
    let _ = writeln!(
        out,
        "| group | kind | streams | expected | heartbeats by outcome | as expected |"
    );
    let _ = writeln!(out, "|---|---|---:|---|---|---|");
    let counts = kind_counts(settings.streams);
    for (index, kind) in MIX.iter().enumerate() {
        let outcomes = &run.outcomes[index];
        let total: usize = outcomes.values().sum();
        let mut sorted: Vec<(&String, &usize)> = outcomes.iter().collect();
        sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let listed: Vec<String> = sorted.iter().map(|(o, n)| format!("{o} × {n}")).collect();
        let health_count = |health: Health| -> usize {
            outcomes
                .iter()
                .filter(|(o, _)| {
                    o.as_str() == health.as_str() || o.starts_with(&format!("{}:", health.as_str()))
                })
                .map(|(_, n)| n)
                .sum()
        };
        let (expected, as_expected) = match kind.expect {
            Expect::Health(health) => {
                let share = health_count(health) as f64 / total.max(1) as f64;
                (health.to_string(), format!("{:.0}%", share * 100.0))
            }
            Expect::UpAndDown => {
                let (up, down) = (health_count(Health::Up), health_count(Health::Down));
                ("up and down".to_string(), format!("{up} up, {down} down"))
            }
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {expected} | {} | {as_expected} |",
            kind.group,
            kind.label,
            counts[index],
            listed.join(", ")
        );
    }
    out
}
