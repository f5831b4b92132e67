//! `make bench`: what the monitor costs for a fleet of 10 to 1,000 RTSP streams, next to the
//! alternative a user would script, one `ffmpeg -frames:v 1` process per probe (issue 2), and what
//! the picture checks add to a probe's CPU (issue 4).
//!
//! This process runs the loopback servers (one shared 640x360 H.264 encoder on `/shared`, an SNTP
//! responder) and the ffmpeg baseline; the monitor runs as a child process, the release binary
//! `streampulse monitor`, so its CPU, memory and threads are read from `/proc/<pid>` alone. Figures
//! per run, and ratios against the baseline measured in the same run, go to stdout as a markdown
//! table and to `target/bench-results.md`. Method and interpretation: `docs/benchmarks.md`.
//!
//! Environment (all optional):
//! - `BENCH_STREAMS=10,100,500,1000`: fleet sizes for the monitor.
//! - `BENCH_HEARTBEATS=4`: heartbeats per monitor run; the first is warm-up, the rest are measured.
//! - `BENCH_HEARTBEAT_SECONDS=15`.
//! - `BENCH_MAX_CONCURRENT=32`: the monitor's `max_concurrent_probes` (the product default).
//! - `BENCH_VARIANT_STREAMS=100`: fleet size for the issue-4 variants (`rtsp-nodecode`,
//!   `sample_seconds: 1`); 0 skips them.
//! - `BENCH_FFMPEG_SEQUENTIAL=30`, `BENCH_FFMPEG_CONCURRENT=20`: ffmpeg probes run one after the
//!   other, then all at once.
//! - `BENCH_FFMPEG_FLEET=100`: fleet sizes scheduled like the monitor but with one ffmpeg process
//!   per probe (same phases, same pool size); empty skips it.
//! - `BENCH_MONITOR_BIN`: the `streampulse` binary to measure (default: the one cargo built).
//! - `BENCH_TEMPLATE=rtsp`, `BENCH_PIPELINES_DIR`: the template of the main runs, and a directory
//!   of extra templates, to measure a pipeline change without touching the shipped ones.
//! - `BENCH_PICTURES_STREAMS=1000`: the fleet size at which the last pictures (issue 15) are
//!   measured: the default run (pictures on, the product default) and one more run of the same
//!   size with `pictures: {enabled: false}`, reported as a CPU-per-probe ratio; 0 skips it.
//! - `BENCH_LARGE_DECODE=2000`, `BENCH_LARGE_NODECODE=5000` (issue 16): one more run of that
//!   many streams with the default template, and one with `rtsp-nodecode`; 0 skips it.
//! - `BENCH_PICTURES_EVERY_SECONDS=60`: `pictures.every_seconds` of every run (5 makes the worst
//!   case: a picture on every clean frame that changed).

#[path = "fleet/report.rs"]
mod report;
mod support;

use anyhow::{bail, Context, Result};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use report::{Environment, Report};
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use streampulse::config::{Expectation, QualityConfig};
use streampulse::demo::{RtspTestServer, SharedMount, SntpTestServer};
use streampulse::heartbeat::Health;
use streampulse::monitor::phase_for;
use streampulse::probe::quality::{self, Observation};
use support::proc::{
    anonymous_memory_kb, children_cpu_ticks, cpu_ticks, own_cpu_ticks, proc_status, thread_kinds,
    ticks_per_second, ProcStatus,
};
use support::threads::ThreadCreations;
use support::{env_number, load_average, log_tail, now_unix_ms, percentile, stop_child, target_dir};

/// Path of the one mount every probe reads.
const SHARED_PATH: &str = "/shared";
/// How often the monitor's `/proc` entry is read.
const SAMPLE_EVERY: Duration = Duration::from_millis(200);
/// How often a running ffmpeg's `/proc` entry is read (it lives about two seconds here).
const FFMPEG_POLL_EVERY: Duration = Duration::from_millis(2);
/// Time the monitor gets after SIGTERM to finish its probes and write them.
const STOP_GRACE: Duration = Duration::from_secs(30);
/// A monitor run measures from one heartbeat plus this after start (start-up is excluded).
const START_MARGIN: Duration = Duration::from_secs(1);
/// Targets from the issues.
const TARGET_STREAMS: usize = 1000;
const TARGET_MAX_CORES: f64 = 1.0;
const TARGET_MAX_RSS_MB: f64 = 200.0;
const TARGET_MAX_LAG_P99_MS: f64 = 1000.0;
const TARGET_MAX_CPU_RATIO: f64 = 0.2;
const TARGET_MAX_CHECKS_OVERHEAD: f64 = 0.2;
/// Issue 15: the last pictures may raise the CPU per probe by at most 10%.
const TARGET_MAX_PICTURES_RATIO: f64 = 1.10;
/// Issue 16: twice the fleet on the same machine.
const TARGET_MAX_DECODE_PROBE_MS: f64 = 5.0;
const TARGET_MAX_NODECODE_PROBE_MS: f64 = 2.0;
const TARGET_MAX_DECODE_FFMPEG_RATIO: f64 = 0.05;

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` (make test) runs this program too,
    // without it, and must not start a ten-minute benchmark on a debug build.
    if !std::env::args().any(|arg| arg == "--bench") {
        eprintln!("fleet: a benchmark, run by `make bench` (cargo bench --bench fleet); skipped");
        return Ok(());
    }
    let settings = Settings::from_env()?;
    let bench_started = Instant::now();
    let environment = Environment::now();
    eprintln!("fleet bench: {settings:?}");

    let servers = Servers::start()?;
    let url = servers.rtsp.url(SHARED_PATH);
    eprintln!("RTSP server {url}, SNTP 127.0.0.1:{}", servers.sntp.port());

    let checks = measure_checks(&url).context("measuring the picture checks in-process")?;
    eprintln!(
        "picture checks on a {}x{} frame: summarize {:.1} µs, judge {:.2} µs",
        checks.width, checks.height, checks.summarize_us, checks.judge_us
    );

    let mut ffmpeg = Vec::new();
    if settings.ffmpeg_sequential > 0 {
        ffmpeg.push(ffmpeg_batch(&url, settings.ffmpeg_sequential, 1)?);
    }
    if settings.ffmpeg_concurrent > 0 {
        ffmpeg.push(ffmpeg_batch(
            &url,
            settings.ffmpeg_concurrent,
            settings.ffmpeg_concurrent,
        )?);
    }
    for &streams in &settings.ffmpeg_fleet {
        ffmpeg.push(ffmpeg_fleet(&url, streams, &settings)?);
    }
    for run in &ffmpeg {
        eprintln!("{}", run.one_line());
    }

    let binary = monitor_binary();
    let mut monitor = Vec::new();
    for scenario in settings.scenarios() {
        let run = run_monitor(&binary, &servers, &scenario, &settings)
            .with_context(|| format!("monitor run {}", scenario.label()))?;
        eprintln!("{}", run.one_line());
        monitor.push(run);
    }

    let report = Report {
        settings: &settings,
        environment,
        checks,
        ffmpeg,
        monitor,
    };
    let mut text = report.render();
    let _ = writeln!(
        text,
        "\nWhole bench: {:.0} s wall; load average after: {}.",
        bench_started.elapsed().as_secs_f64(),
        load_average()
    );
    println!("{text}");
    let results = target_dir().join("bench-results.md");
    std::fs::write(&results, &text).with_context(|| format!("writing {}", results.display()))?;
    eprintln!("written to {}", results.display());
    // The live test stream is fine: a probe of it that is not up is a wrong verdict, whatever
    // the figures say.
    let wrong: Vec<String> = report
        .monitor
        .iter()
        .filter(|run| run.probes_up < run.probes)
        .map(|run| format!("{}: {} of {} up", run.scenario.label(), run.probes_up, run.probes))
        .collect();
    if !wrong.is_empty() {
        bail!("probes of a healthy stream were not up: {}", wrong.join("; "));
    }
    Ok(())
}

/// What to run, from `BENCH_*` variables.
#[derive(Debug, Clone)]
struct Settings {
    stream_counts: Vec<usize>,
    heartbeats: u32,
    heartbeat: Duration,
    max_concurrent_probes: usize,
    variant_streams: usize,
    ffmpeg_sequential: usize,
    ffmpeg_concurrent: usize,
    ffmpeg_fleet: Vec<usize>,
    template: String,
    pipelines_dir: Option<PathBuf>,
    pictures_streams: usize,
    pictures_every_seconds: usize,
    large_decode: usize,
    large_nodecode: usize,
}

impl Settings {
    fn from_env() -> Result<Settings> {
        let heartbeats = env_number("BENCH_HEARTBEATS", 4)?;
        if heartbeats < 2 {
            bail!("BENCH_HEARTBEATS must be at least 2: the first heartbeat is warm-up");
        }
        let heartbeat_seconds = env_number("BENCH_HEARTBEAT_SECONDS", 15)?;
        if heartbeat_seconds < 2 {
            bail!("BENCH_HEARTBEAT_SECONDS must be at least 2");
        }
        Ok(Settings {
            stream_counts: env_list("BENCH_STREAMS", &[10, 100, 500, 1000])?,
            heartbeats: u32::try_from(heartbeats).context("BENCH_HEARTBEATS")?,
            heartbeat: Duration::from_secs(heartbeat_seconds as u64),
            max_concurrent_probes: env_number("BENCH_MAX_CONCURRENT", 32)?.max(1),
            variant_streams: env_number("BENCH_VARIANT_STREAMS", 100)?,
            ffmpeg_sequential: env_number("BENCH_FFMPEG_SEQUENTIAL", 30)?,
            ffmpeg_concurrent: env_number("BENCH_FFMPEG_CONCURRENT", 20)?,
            ffmpeg_fleet: env_list("BENCH_FFMPEG_FLEET", &[100])?,
            template: std::env::var("BENCH_TEMPLATE")
                .ok()
                .filter(|name| !name.trim().is_empty())
                .unwrap_or_else(|| "rtsp".into()),
            pipelines_dir: std::env::var_os("BENCH_PIPELINES_DIR")
                .filter(|dir| !dir.is_empty())
                .map(|dir| std::fs::canonicalize(&dir).unwrap_or_else(|_| PathBuf::from(dir))),
            pictures_streams: env_number("BENCH_PICTURES_STREAMS", 1000)?,
            pictures_every_seconds: env_number("BENCH_PICTURES_EVERY_SECONDS", 60)?.max(5),
            large_decode: env_number("BENCH_LARGE_DECODE", 2000)?,
            large_nodecode: env_number("BENCH_LARGE_NODECODE", 5000)?,
        })
    }

    /// Every fleet size with the default template, then the issue-4 variants; a variant's size
    /// gets a default run too when the list lacks it, so the ratio is measured in this bench.
    fn scenarios(&self) -> Vec<Scenario> {
        let mut scenarios: Vec<Scenario> = self
            .stream_counts
            .iter()
            .map(|&streams| self.default_run(streams))
            .collect();
        if self.variant_streams > 0 {
            let streams = self.variant_streams;
            self.ensure_default_run(&mut scenarios, streams);
            scenarios.push(Scenario {
                template: "rtsp-nodecode".into(),
                variant: true,
                ..self.default_run(streams)
            });
            scenarios.push(Scenario {
                sample_seconds: 1.0,
                variant: true,
                ..self.default_run(streams)
            });
        }
        if self.pictures_streams > 0 {
            // Pictures on is the default run of that size; off is the variant it is compared to.
            let streams = self.pictures_streams;
            self.ensure_default_run(&mut scenarios, streams);
            scenarios.push(Scenario {
                pictures: false,
                variant: true,
                ..self.default_run(streams)
            });
        }
        if self.large_decode > 0 {
            self.ensure_default_run(&mut scenarios, self.large_decode);
        }
        if self.large_nodecode > 0 {
            // Compared with nothing of its size: a variant only so it is not taken for a default.
            scenarios.push(Scenario {
                template: "rtsp-nodecode".into(),
                variant: true,
                ..self.default_run(self.large_nodecode)
            });
        }
        scenarios
    }

    /// The run a variant of `streams` streams is compared with: the default template, no sample
    /// window, pictures on.
    fn default_run(&self, streams: usize) -> Scenario {
        Scenario {
            streams,
            template: self.template.clone(),
            sample_seconds: 0.0,
            pictures: true,
            variant: false,
        }
    }

    fn ensure_default_run(&self, scenarios: &mut Vec<Scenario>, streams: usize) {
        if !scenarios.iter().any(|s| s.streams == streams && s.is_default()) {
            scenarios.push(self.default_run(streams));
        }
    }
}

/// A comma-separated list of whole numbers; set but empty means none.
fn env_list(name: &str, default: &[usize]) -> Result<Vec<usize>> {
    let Ok(text) = std::env::var(name) else {
        return Ok(default.to_vec());
    };
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty() && *item != "0")
        .map(|item| {
            item.parse()
                .with_context(|| format!("{name}: {item:?} is not a whole number"))
        })
        .collect()
}

/// One monitor run: a fleet size, a template and a sample window.
#[derive(Debug, Clone, PartialEq)]
struct Scenario {
    streams: usize,
    template: String,
    sample_seconds: f64,
    /// `pictures.enabled` (issue 15): off only in the run the default is compared with.
    pictures: bool,
    /// A variant (issue 4, or pictures off), compared with the default run of the same size.
    variant: bool,
}

impl Scenario {
    fn label(&self) -> String {
        format!(
            "{} streams, {}, sample_seconds {}{}",
            self.streams,
            self.template,
            self.sample_seconds,
            if self.pictures { "" } else { ", pictures off" }
        )
    }

    fn is_default(&self) -> bool {
        !self.variant
    }
}

/// The loopback servers and one client that keeps the shared media playing, as a camera's encoder
/// runs whether anyone watches or not (else gst-rtsp-server would stop the encoder whenever no
/// probe happens to be connected, and the next probe would wait for a new one).
struct Servers {
    rtsp: RtspTestServer,
    sntp: SntpTestServer,
    keeper: gst::Element,
}

impl Servers {
    fn start() -> Result<Servers> {
        let shared = SharedMount::default();
        // The stream: 640x360 H.264 at 15 fps, a keyframe every 2 s.
        if (shared.width, shared.height, shared.fps, shared.key_int_max) != (640, 360, 15, 30) {
            bail!("the /shared mount's defaults changed: {shared:?}");
        }
        let rtsp = RtspTestServer::builder().shared(Some(shared)).start()?;
        let sntp = SntpTestServer::start(0)?;
        let keeper = gst::parse::launch(&format!(
            "rtspsrc location={} protocols=tcp latency=0 ! fakesink sync=false",
            rtsp.url(SHARED_PATH)
        ))?;
        keeper.set_state(gst::State::Playing)?;
        Ok(Servers { rtsp, sntp, keeper })
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        let _ = self.keeper.set_state(gst::State::Null);
    }
}

/// The cost of the first-frame picture checks, measured in this process on a real decoded frame
/// of the shared stream: the work every decoding probe does on top of getting its frame.
struct CheckCost {
    width: u32,
    height: u32,
    summarize_us: f64,
    judge_us: f64,
}

impl CheckCost {
    fn total_ms(&self) -> f64 {
        (self.summarize_us + self.judge_us) / 1000.0
    }
}

fn measure_checks(url: &str) -> Result<CheckCost> {
    let pipeline = gst::parse::launch(&format!(
        "rtspsrc location={url} protocols=tcp latency=0 ! decodebin ! appsink name=sink sync=false"
    ))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    let sink = pipeline
        .by_name("sink")
        .and_then(|element| element.downcast::<gst_app::AppSink>().ok())
        .context("no appsink")?;
    pipeline.set_state(gst::State::Playing)?;
    let sample = sink.try_pull_sample(gst::ClockTime::from_seconds(10));
    let _ = pipeline.set_state(gst::State::Null);
    let sample = sample.context("no decoded frame from the shared mount within 10 s")?;
    let first = quality::summarize(&sample).context("the decoded frame has no luma plane")?;
    let (width, height) = sample
        .caps()
        .and_then(|caps| caps.structure(0))
        .map(|s| {
            (
                s.get::<i32>("width").unwrap_or(0),
                s.get::<i32>("height").unwrap_or(0),
            )
        })
        .unwrap_or((0, 0));

    const ROUNDS: usize = 5;
    const CALLS: usize = 400;
    let mut summarize_us = f64::MAX;
    let mut judge_us = f64::MAX;
    let observation = Observation {
        first: Some(first.clone()),
        width: u32::try_from(width).ok(),
        height: u32::try_from(height).ok(),
        fps: Some(15.0),
        ..Observation::default()
    };
    let (checks, expect) = (QualityConfig::default(), Expectation::default());
    for _ in 0..ROUNDS {
        let started = Instant::now();
        for _ in 0..CALLS {
            std::hint::black_box(quality::summarize(std::hint::black_box(&sample)));
        }
        summarize_us = summarize_us.min(started.elapsed().as_secs_f64() * 1e6 / CALLS as f64);
        let started = Instant::now();
        for _ in 0..CALLS {
            std::hint::black_box(quality::judge(&observation, Some(&first), 15.0, &checks, &expect));
        }
        judge_us = judge_us.min(started.elapsed().as_secs_f64() * 1e6 / CALLS as f64);
    }
    Ok(CheckCost {
        width: u32::try_from(width).unwrap_or(0),
        height: u32::try_from(height).unwrap_or(0),
        summarize_us,
        judge_us,
    })
}

// ---------------------------------------------------------------------------------------------
// The ffmpeg baseline

/// One ffmpeg measurement: a batch or a scheduled fleet.
struct FfmpegRun {
    label: String,
    probes: usize,
    ok: usize,
    cpu_ms_per_probe: f64,
    /// CPU over wall time of the run, in cores.
    cores: f64,
    /// Largest VmHWM of one process.
    process_peak_rss_mb: f64,
    /// Largest sum of VmRSS of the processes alive at once (sampled).
    total_peak_rss_mb: f64,
    process_threads: u64,
    total_threads: u64,
    wall_p50_ms: f64,
    wall_p99_ms: f64,
    /// Only for a scheduled fleet.
    lag_p50_ms: Option<f64>,
    lag_p99_ms: Option<f64>,
}

impl FfmpegRun {
    fn one_line(&self) -> String {
        format!(
            "ffmpeg {}: {}/{} ok, {:.1} ms CPU/probe, {:.2} cores, {:.1} MB/process, wall p50 {:.0} ms p99 {:.0} ms",
            self.label,
            self.ok,
            self.probes,
            self.cpu_ms_per_probe,
            self.cores,
            self.process_peak_rss_mb,
            self.wall_p50_ms,
            self.wall_p99_ms
        )
    }
}

fn ffmpeg_command(url: &str) -> Command {
    let mut command = Command::new("ffmpeg");
    command
        .args([
            "-nostdin",
            "-loglevel",
            "error",
            "-rtsp_transport",
            "tcp",
            "-i",
            url,
        ])
        .args(["-frames:v", "1", "-f", "null", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// One ffmpeg probe being watched: its peak memory and threads are read while it lives.
struct Watched {
    child: Child,
    started: Instant,
    status: ProcStatus,
}

/// `count` probes, `at_once` at a time, each started as soon as a slot frees.
fn ffmpeg_batch(url: &str, count: usize, at_once: usize) -> Result<FfmpegRun> {
    let label = if at_once == 1 {
        format!("{count} sequential")
    } else {
        format!("{count} at once")
    };
    eprintln!("ffmpeg baseline: {label}");
    let ticks = ticks_per_second();
    let cpu_before = children_cpu_ticks();
    let started = Instant::now();
    let (mut launched, mut ok) = (0, 0);
    let mut walls = Vec::new();
    let (mut peak_rss_kb, mut peak_threads, mut total_rss_kb, mut total_threads) = (0, 0, 0, 0);
    let mut running: Vec<Watched> = Vec::new();
    while launched < count || !running.is_empty() {
        while launched < count && running.len() < at_once {
            let child = ffmpeg_command(url)
                .spawn()
                .context("starting ffmpeg (make deps installs it)")?;
            running.push(Watched {
                child,
                started: Instant::now(),
                status: ProcStatus::default(),
            });
            launched += 1;
        }
        let (mut rss_now, mut threads_now) = (0, 0);
        let mut index = 0;
        while index < running.len() {
            let watched = &mut running[index];
            if let Some(exit) = watched.child.try_wait()? {
                walls.push(watched.started.elapsed().as_secs_f64() * 1000.0);
                ok += usize::from(exit.success());
                peak_rss_kb = peak_rss_kb.max(watched.status.peak_rss_kb);
                peak_threads = peak_threads.max(watched.status.threads);
                running.swap_remove(index);
                continue;
            }
            if let Some(status) = proc_status(watched.child.id()) {
                watched.status.peak_rss_kb = watched.status.peak_rss_kb.max(status.peak_rss_kb);
                watched.status.threads = watched.status.threads.max(status.threads);
                rss_now += status.rss_kb;
                threads_now += status.threads;
            }
            index += 1;
        }
        total_rss_kb = total_rss_kb.max(rss_now);
        total_threads = total_threads.max(threads_now);
        std::thread::sleep(FFMPEG_POLL_EVERY);
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu_ms = (children_cpu_ticks() - cpu_before) as f64 / ticks * 1000.0;
    Ok(FfmpegRun {
        label,
        probes: count,
        ok,
        cpu_ms_per_probe: cpu_ms / count.max(1) as f64,
        cores: cpu_ms / 1000.0 / wall,
        process_peak_rss_mb: peak_rss_kb as f64 / 1024.0,
        total_peak_rss_mb: total_rss_kb as f64 / 1024.0,
        process_threads: peak_threads,
        total_threads,
        wall_p50_ms: percentile(&walls, 50.0),
        wall_p99_ms: percentile(&walls, 99.0),
        lag_p50_ms: None,
        lag_p99_ms: None,
    })
}

/// What a fleet worker reports for one probe.
struct FleetProbe {
    lag_ms: f64,
    wall_ms: f64,
    ok: bool,
    peak_rss_kb: u64,
    threads: u64,
}

/// A user's script done well: every stream on the monitor's schedule (same phases, same
/// heartbeat, same pool size), one ffmpeg process per probe.
fn ffmpeg_fleet(url: &str, streams: usize, settings: &Settings) -> Result<FfmpegRun> {
    let heartbeats = settings.heartbeats;
    eprintln!(
        "ffmpeg baseline: {streams} streams on a {} s heartbeat, {heartbeats} heartbeats",
        settings.heartbeat.as_secs()
    );
    let ticks = ticks_per_second();
    let cpu_before = children_cpu_ticks();
    let start = Instant::now() + Duration::from_millis(200);
    let mut due: Vec<Instant> = (0..streams)
        .flat_map(|index| {
            let phase = phase_for(&stream_name(index), settings.heartbeat);
            (0..heartbeats).map(move |k| start + phase + settings.heartbeat * k)
        })
        .collect();
    due.sort();
    let probes = due.len();

    let (jobs, job_queue) = mpsc::channel::<Instant>();
    let job_queue = Arc::new(Mutex::new(job_queue));
    let live: Arc<Mutex<HashSet<u32>>> = Arc::default();
    let results: Arc<Mutex<Vec<FleetProbe>>> = Arc::default();
    let mut workers = Vec::new();
    for _ in 0..settings.max_concurrent_probes {
        let (job_queue, live, results, url) = (
            Arc::clone(&job_queue),
            Arc::clone(&live),
            Arc::clone(&results),
            url.to_string(),
        );
        workers.push(std::thread::spawn(move || loop {
            let next = job_queue.lock().ok().and_then(|queue| queue.recv().ok());
            let Some(due) = next else { return };
            let lag_ms = Instant::now().saturating_duration_since(due).as_secs_f64() * 1000.0;
            let started = Instant::now();
            let Ok(mut child) = ffmpeg_command(&url).spawn() else {
                push_result(
                    &results,
                    FleetProbe {
                        lag_ms,
                        wall_ms: 0.0,
                        ok: false,
                        peak_rss_kb: 0,
                        threads: 0,
                    },
                );
                continue;
            };
            let pid = child.id();
            if let Ok(mut live) = live.lock() {
                live.insert(pid);
            }
            let mut status = ProcStatus::default();
            let ok = loop {
                match child.try_wait() {
                    Ok(Some(exit)) => break exit.success(),
                    Ok(None) => {}
                    Err(_) => break false,
                }
                if let Some(now) = proc_status(pid) {
                    status.peak_rss_kb = status.peak_rss_kb.max(now.peak_rss_kb);
                    status.threads = status.threads.max(now.threads);
                }
                std::thread::sleep(FFMPEG_POLL_EVERY * 5);
            };
            if let Ok(mut live) = live.lock() {
                live.remove(&pid);
            }
            let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
            push_result(
                &results,
                FleetProbe {
                    lag_ms,
                    wall_ms,
                    ok,
                    peak_rss_kb: status.peak_rss_kb,
                    threads: status.threads,
                },
            );
        }));
    }
    // Sums what all live ffmpeg processes hold at once.
    let (stop_sampler, sampler_stopped) = mpsc::channel::<()>();
    let sampler = {
        let live = Arc::clone(&live);
        std::thread::spawn(move || {
            let (mut rss_kb, mut threads) = (0u64, 0u64);
            while sampler_stopped.recv_timeout(Duration::from_millis(50)).is_err() {
                let pids: Vec<u32> = live
                    .lock()
                    .map(|live| live.iter().copied().collect())
                    .unwrap_or_default();
                let statuses: Vec<ProcStatus> = pids.into_iter().filter_map(proc_status).collect();
                rss_kb = rss_kb.max(statuses.iter().map(|s| s.rss_kb).sum());
                threads = threads.max(statuses.iter().map(|s| s.threads).sum());
            }
            (rss_kb, threads)
        })
    };
    for at in due {
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
        jobs.send(at).context("fleet workers gone")?;
    }
    drop(jobs);
    for worker in workers {
        let _ = worker.join();
    }
    let _ = stop_sampler.send(());
    let (total_rss_kb, total_threads) = sampler.join().unwrap_or((0, 0));
    let wall = start.elapsed().as_secs_f64();
    let cpu_ms = (children_cpu_ticks() - cpu_before) as f64 / ticks * 1000.0;
    let results = std::mem::take(&mut *results.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    let walls: Vec<f64> = results.iter().map(|r| r.wall_ms).collect();
    let lags: Vec<f64> = results.iter().map(|r| r.lag_ms).collect();
    Ok(FfmpegRun {
        label: format!("fleet of {streams} at {} s", settings.heartbeat.as_secs()),
        probes,
        ok: results.iter().filter(|r| r.ok).count(),
        cpu_ms_per_probe: cpu_ms / probes.max(1) as f64,
        cores: cpu_ms / 1000.0 / wall,
        process_peak_rss_mb: results.iter().map(|r| r.peak_rss_kb).max().unwrap_or(0) as f64 / 1024.0,
        total_peak_rss_mb: total_rss_kb as f64 / 1024.0,
        process_threads: results.iter().map(|r| r.threads).max().unwrap_or(0),
        total_threads,
        wall_p50_ms: percentile(&walls, 50.0),
        wall_p99_ms: percentile(&walls, 99.0),
        lag_p50_ms: Some(percentile(&lags, 50.0)),
        lag_p99_ms: Some(percentile(&lags, 99.0)),
    })
}

fn push_result(results: &Mutex<Vec<FleetProbe>>, probe: FleetProbe) {
    if let Ok(mut results) = results.lock() {
        results.push(probe);
    }
}

fn stream_name(index: usize) -> String {
    format!("cam{index:04}")
}

// ---------------------------------------------------------------------------------------------
// The monitor

/// The binary under test: `BENCH_MONITOR_BIN`, else the release build cargo made for this bench.
fn monitor_binary() -> PathBuf {
    std::env::var_os("BENCH_MONITOR_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_streampulse")))
}

struct MonitorRun {
    scenario: Scenario,
    /// Probes written, and of those up, over the whole run.
    probes: usize,
    probes_up: usize,
    /// Probes without a decoded frame (degraded ones did decode one).
    probes_down: usize,
    /// Streams × heartbeats: what a monitor that keeps up makes.
    probes_expected: usize,
    /// Outcome → (count, one message), for probes that were not up.
    failures: BTreeMap<String, (usize, String)>,
    /// Over the measured window (after the warm-up heartbeat).
    window_probes: usize,
    cpu_ms_per_probe: f64,
    cores: f64,
    /// CPU of this process (the RTSP server and its encoder) over the same window.
    server_cores: f64,
    /// CPU of start-up plus the first heartbeat.
    warmup_cpu_ms: f64,
    peak_rss_mb: f64,
    end_rss_mb: f64,
    /// Of the RSS at the end: anonymous memory (heap, stacks) in MB; the rest is mapped files.
    end_anon_mb: f64,
    peak_threads: u64,
    median_threads: f64,
    /// Threads the monitor created over the measured window, per probe (perf; `None` without it).
    threads_created_per_probe: Option<f64>,
    /// Thread names (digits folded to `#`) and their counts when the thread count peaked: which
    /// pipelines' threads were alive then.
    threads_at_peak: BTreeMap<String, usize>,
    ttff_p50_ms: f64,
    ttff_p99_ms: f64,
    /// From the monitor's own summary line: slot to probe start.
    lag_p50_ms: Option<f64>,
    lag_p99_ms: Option<f64>,
    lag_max_ms: Option<f64>,
    /// From the monitor's summary line: a probe's pool slot (the camera's connection) from taken
    /// to given back after teardown.
    slot_hold_p50_ms: Option<f64>,
    slot_hold_p99_ms: Option<f64>,
    /// Probes that were picture checks (waited for a keyframe after a corrupt first frame).
    picture_checks: Option<f64>,
    /// From the database: p99 of |gap between a stream's heartbeats − heartbeat|.
    gap_jitter_p99_ms: f64,
    wall_seconds: f64,
    /// A monitor that did not stop cleanly on SIGTERM.
    stop_problem: Option<String>,
}

impl MonitorRun {
    fn one_line(&self) -> String {
        format!(
            "monitor {}: {}/{} up ({} expected), {:.1} ms CPU/probe, {:.2} cores, {:.0} MB peak RSS, \
             {} threads, TTFF p50 {:.0} p99 {:.0} ms, lag p99 {} ms",
            self.scenario.label(),
            self.probes_up,
            self.probes,
            self.probes_expected,
            self.cpu_ms_per_probe,
            self.cores,
            self.peak_rss_mb,
            self.peak_threads,
            self.ttff_p50_ms,
            self.ttff_p99_ms,
            self.lag_p99_ms.map_or("?".into(), |ms| format!("{ms:.0}"))
        )
    }
}

fn write_config(path: &Path, scenario: &Scenario, settings: &Settings, servers: &Servers) -> Result<()> {
    let mut yaml = String::new();
    let _ = writeln!(yaml, "heartbeat_seconds: {}", settings.heartbeat.as_secs());
    let _ = writeln!(yaml, "ntp_server: 127.0.0.1:{}", servers.sntp.port());
    let _ = writeln!(yaml, "max_concurrent_probes: {}", settings.max_concurrent_probes);
    let _ = writeln!(yaml, "sample_seconds: {}", scenario.sample_seconds);
    let _ = writeln!(
        yaml,
        "pictures:\n  enabled: {}\n  every_seconds: {}",
        scenario.pictures, settings.pictures_every_seconds
    );
    if let Some(dir) = &settings.pipelines_dir {
        let _ = writeln!(yaml, "pipelines_dir: {}", dir.display());
    }
    let _ = writeln!(yaml, "streams:");
    // Every stream reads the same mount (a query string would give each its own encoder: the
    // server keys shared media by the whole URL); distinct names make them distinct streams.
    let url = servers.rtsp.url(SHARED_PATH);
    for index in 0..scenario.streams {
        let _ = writeln!(
            yaml,
            "  - name: {}\n    url: {url}\n    pipeline: {}",
            stream_name(index),
            scenario.template
        );
    }
    std::fs::write(path, yaml).with_context(|| format!("writing {}", path.display()))
}

fn run_monitor(
    binary: &Path,
    servers: &Servers,
    scenario: &Scenario,
    settings: &Settings,
) -> Result<MonitorRun> {
    eprintln!(
        "monitor: {} for {} heartbeats",
        scenario.label(),
        settings.heartbeats
    );
    let dir = tempfile::tempdir()?;
    let (config, db, log) = (
        dir.path().join("config.yaml"),
        dir.path().join("bench.db"),
        dir.path().join("monitor.log"),
    );
    write_config(&config, scenario, settings, servers)?;
    let ticks = ticks_per_second();
    let started = Instant::now();
    let mut child = Command::new(binary)
        .arg("monitor")
        .arg("--config")
        .arg(&config)
        .arg("--db")
        .arg(&db)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let pid = child.id();

    let window_start = started + settings.heartbeat + START_MARGIN;
    let window_end = started + settings.heartbeat * settings.heartbeats + START_MARGIN;
    let mut window_cpu_start: Option<(u64, i64, Instant)> = None;
    let mut bench_cpu_start = 0;
    let mut peak_threads = 0;
    let mut threads_at_peak = BTreeMap::new();
    let mut thread_samples = Vec::new();
    let mut last = ProcStatus::default();
    let mut thread_creations: Option<ThreadCreations> = None;
    loop {
        if let Some(exit) = child.try_wait()? {
            bail!("the monitor exited early ({exit}); log:\n{}", log_tail(&log, 20));
        }
        if let Some(status) = proc_status(pid) {
            if status.threads > peak_threads {
                threads_at_peak = thread_kinds(pid);
            }
            peak_threads = peak_threads.max(status.threads);
            thread_samples.push(status.threads as f64);
            last = status;
        }
        let now = Instant::now();
        if window_cpu_start.is_none() && now >= window_start {
            window_cpu_start = Some((cpu_ticks(pid).unwrap_or(0), now_unix_ms(), now));
            bench_cpu_start = own_cpu_ticks();
            thread_creations = ThreadCreations::start(pid, dir.path());
        }
        if now >= window_end {
            break;
        }
        std::thread::sleep(SAMPLE_EVERY.min(window_end.saturating_duration_since(now)));
    }
    let (cpu_start, window_start_ms, window_started) = window_cpu_start.context("no window start")?;
    let cpu_end = cpu_ticks(pid).context("monitor vanished")?;
    let window_end_ms = now_unix_ms();
    let threads_created = thread_creations.and_then(ThreadCreations::finish);
    let bench_cpu_ms = (own_cpu_ticks() - bench_cpu_start) as f64 / ticks * 1000.0;
    let window_seconds = window_started.elapsed().as_secs_f64();
    if let Some(status) = proc_status(pid) {
        last = status;
        peak_threads = peak_threads.max(status.threads);
    }
    let anonymous_kb = anonymous_memory_kb(pid).unwrap_or(0);

    let stop_problem = stop_child(&mut child, "the monitor", STOP_GRACE)?;
    let wall_seconds = started.elapsed().as_secs_f64();
    let summary = read_summary(&log);
    if stop_problem.is_some() || summary.is_empty() {
        eprintln!(
            "{}; the monitor's last log lines:\n{}",
            stop_problem.as_deref().unwrap_or("no probe summary in the log"),
            log_tail(&log, 20)
        );
    }
    let heartbeats = read_heartbeats(&db)?;

    let window: Vec<&Beat> = heartbeats
        .iter()
        .filter(|b| b.ts_ms >= window_start_ms && b.ts_ms < window_end_ms)
        .collect();
    let window_cpu_ms = (cpu_end - cpu_start) as f64 / ticks * 1000.0;
    let latencies: Vec<f64> = window
        .iter()
        .filter(|b| b.up)
        .filter_map(|b| b.latency_ms)
        .collect();
    let mut failures = BTreeMap::new();
    for beat in heartbeats.iter().filter(|b| !b.up) {
        failures
            .entry(beat.outcome.clone())
            .or_insert_with(|| (0, beat.message.clone()))
            .0 += 1;
    }
    let interval_ms = settings.heartbeat.as_millis() as f64;
    let mut gaps = Vec::new();
    for pair in heartbeats.windows(2) {
        if pair[0].stream == pair[1].stream {
            gaps.push(((pair[1].ts_ms - pair[0].ts_ms) as f64 - interval_ms).abs());
        }
    }
    Ok(MonitorRun {
        scenario: scenario.clone(),
        probes: heartbeats.len(),
        probes_up: heartbeats.iter().filter(|b| b.up).count(),
        probes_down: heartbeats.iter().filter(|b| b.down).count(),
        probes_expected: scenario.streams * settings.heartbeats as usize,
        failures,
        window_probes: window.len(),
        cpu_ms_per_probe: window_cpu_ms / window.len().max(1) as f64,
        cores: window_cpu_ms / 1000.0 / window_seconds,
        server_cores: bench_cpu_ms / 1000.0 / window_seconds,
        warmup_cpu_ms: cpu_start as f64 / ticks * 1000.0,
        peak_rss_mb: last.peak_rss_kb as f64 / 1024.0,
        end_rss_mb: last.rss_kb as f64 / 1024.0,
        end_anon_mb: anonymous_kb as f64 / 1024.0,
        peak_threads,
        median_threads: percentile(&thread_samples, 50.0),
        threads_created_per_probe: threads_created.map(|n| n as f64 / window.len().max(1) as f64),
        threads_at_peak,
        ttff_p50_ms: percentile(&latencies, 50.0),
        ttff_p99_ms: percentile(&latencies, 99.0),
        lag_p50_ms: summary.get("lag_p50_ms").copied(),
        lag_p99_ms: summary.get("lag_p99_ms").copied(),
        lag_max_ms: summary.get("lag_max_ms").copied(),
        slot_hold_p50_ms: summary.get("slot_hold_p50_ms").copied(),
        slot_hold_p99_ms: summary.get("slot_hold_p99_ms").copied(),
        picture_checks: summary.get("picture_checks").copied(),
        gap_jitter_p99_ms: percentile(&gaps, 99.0),
        wall_seconds,
        stop_problem,
    })
}

/// The `key=value` numbers of the monitor's "probe summary" line.
fn read_summary(log: &Path) -> BTreeMap<String, f64> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let Some(line) = text.lines().rev().find(|line| line.contains("probe summary")) else {
        return BTreeMap::new();
    };
    line.split_whitespace()
        .filter_map(|token| token.split_once('='))
        .filter_map(|(key, value)| Some((key.to_string(), value.parse().ok()?)))
        .collect()
}

/// One heartbeat row.
struct Beat {
    stream: String,
    ts_ms: i64,
    up: bool,
    down: bool,
    latency_ms: Option<f64>,
    /// `up`, `degraded: <reason>` or the down reason.
    outcome: String,
    message: String,
}

fn read_heartbeats(db: &Path) -> Result<Vec<Beat>> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut select = conn.prepare(
        "SELECT s.name, h.ts_ms, h.health, h.latency_ms, h.reason, h.message FROM heartbeats h \
         JOIN streams s ON s.id = h.stream_id ORDER BY s.name, h.ts_ms",
    )?;
    let rows = select.query_map([], |row| {
        let health = Health::from_code(row.get(2)?);
        let reason: Option<String> = row.get(4)?;
        Ok(Beat {
            stream: row.get(0)?,
            ts_ms: row.get(1)?,
            up: health == Some(Health::Up),
            down: health == Some(Health::Down),
            latency_ms: row.get::<_, Option<i64>>(3)?.map(|ms| ms as f64),
            outcome: match (health, reason) {
                (Some(Health::Up), _) => "up".into(),
                (Some(health), Some(reason)) => format!("{health}: {reason}"),
                (Some(health), None) => health.to_string(),
                (None, _) => "unknown".into(),
            },
            message: row.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
