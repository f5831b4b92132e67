//! Helpers shared by the integration tests: config files in a temporary folder, the built
//! `streampulse` binary as a child process, and waiting for heartbeats with a deadline instead of
//! fixed sleeps.
//!
//! Every config written here points only at loopback servers, and always names a loopback
//! `ntp_server` (a local `SntpTestServer` or a closed port), never a real NTP pool.
// Each test binary compiles this module on its own and uses only part of it.
#![allow(dead_code)]

pub mod child;
pub mod running_monitor;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use streampulse::heartbeat::Heartbeat;
use streampulse::store::Store;

/// The camera password the demo servers accept; it must never be printed.
pub const SECRET: &str = streampulse::demo::DEMO_PASSWORD;

/// One stream in a test config.
#[derive(Debug, Clone)]
pub struct TestStream {
    pub name: String,
    pub url: String,
    pub heartbeat_seconds: Option<u64>,
    pub probe_timeout_seconds: Option<f64>,
    pub id: Option<String>,
}

impl TestStream {
    pub fn new(name: &str, url: &str) -> TestStream {
        TestStream {
            name: name.to_string(),
            url: url.to_string(),
            heartbeat_seconds: None,
            probe_timeout_seconds: None,
            id: None,
        }
    }

    pub fn heartbeat_seconds(mut self, seconds: u64) -> TestStream {
        self.heartbeat_seconds = Some(seconds);
        self
    }

    pub fn probe_timeout_seconds(mut self, seconds: f64) -> TestStream {
        self.probe_timeout_seconds = Some(seconds);
        self
    }
}

/// A whole test config: global settings plus streams, rendered as YAML.
#[derive(Debug, Clone)]
pub struct TestConfig {
    pub heartbeat_seconds: u64,
    pub probe_timeout_seconds: f64,
    /// `127.0.0.1:PORT` of a local SNTP server or a closed port. Never a real server.
    pub ntp_server: String,
    pub ntp_interval_seconds: Option<u64>,
    pub max_concurrent_probes: usize,
    pub streams: Vec<TestStream>,
}

impl TestConfig {
    pub fn new(heartbeat_seconds: u64, probe_timeout_seconds: f64, ntp_port: u16) -> TestConfig {
        TestConfig {
            heartbeat_seconds,
            probe_timeout_seconds,
            ntp_server: format!("127.0.0.1:{ntp_port}"),
            ntp_interval_seconds: None,
            max_concurrent_probes: 16,
            streams: Vec::new(),
        }
    }

    pub fn stream(mut self, stream: TestStream) -> TestConfig {
        self.streams.push(stream);
        self
    }

    pub fn to_yaml(&self) -> String {
        assert!(
            self.ntp_server.starts_with("127.0.0.1:"),
            "tests must never reach a real NTP server"
        );
        let mut yaml = format!(
            "# Written by a StreamPulse integration test: loopback servers only.\n\
             heartbeat_seconds: {}\n\
             probe_timeout_seconds: {}\n\
             timezone: UTC\n\
             ntp_server: \"{}\"\n\
             max_concurrent_probes: {}\n\
             database: streams.db\n",
            self.heartbeat_seconds, self.probe_timeout_seconds, self.ntp_server, self.max_concurrent_probes
        );
        if let Some(interval) = self.ntp_interval_seconds {
            yaml.push_str(&format!("ntp_interval_seconds: {interval}\n"));
        }
        yaml.push_str("streams:\n");
        for stream in &self.streams {
            yaml.push_str(&format!(
                "  - name: \"{}\"\n    url: \"{}\"\n",
                stream.name, stream.url
            ));
            if let Some(id) = &stream.id {
                yaml.push_str(&format!("    id: \"{id}\"\n"));
            }
            if let Some(seconds) = stream.heartbeat_seconds {
                yaml.push_str(&format!("    heartbeat_seconds: {seconds}\n"));
            }
            if let Some(seconds) = stream.probe_timeout_seconds {
                yaml.push_str(&format!("    probe_timeout_seconds: {seconds}\n"));
            }
        }
        yaml
    }
}

/// A temporary folder holding `config.yaml` and `streams.db`.
pub struct TestDir {
    dir: tempfile::TempDir,
}

impl TestDir {
    pub fn new() -> TestDir {
        TestDir {
            dir: tempfile::Builder::new()
                .prefix("streampulse-test-")
                .tempdir()
                .expect("create a temporary folder"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.yaml")
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("streams.db")
    }

    pub fn write_config(&self, config: &TestConfig) -> PathBuf {
        self.write_config_text(&config.to_yaml())
    }

    /// Replaces `config.yaml` atomically (write beside it, then rename), the way editors save, so
    /// a watcher never reads half a file.
    pub fn write_config_text(&self, text: &str) -> PathBuf {
        let path = self.config_path();
        let temporary = self.dir.path().join(".config.yaml.tmp");
        std::fs::write(&temporary, text).expect("write the config");
        std::fs::rename(&temporary, &path).expect("move the config into place");
        path
    }
}

impl Default for TestDir {
    fn default() -> Self {
        Self::new()
    }
}

/// Polls `check` every 50 ms until it gives a value or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// [`wait_for`] for async tests: polls without blocking the runtime's worker.
pub async fn wait_for_async<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every stored heartbeat of the stream called `name`, oldest first; empty while the database or
/// the stream does not exist yet.
pub fn heartbeats(db: &Path, name: &str) -> Vec<Heartbeat> {
    let Ok(store) = Store::open_read_only(db) else {
        return Vec::new();
    };
    let Ok(Some(id)) = store.stream_id_by_name(name) else {
        return Vec::new();
    };
    let mut rows = store
        .heartbeats(id, i64::MIN, i64::MAX, 100_000)
        .unwrap_or_default();
    rows.reverse();
    rows
}

/// Waits until the stream called `name` has at least `count` heartbeats; returns them all.
pub async fn wait_for_heartbeats(db: &Path, name: &str, count: usize, timeout: Duration) -> Vec<Heartbeat> {
    match wait_for_async(timeout, || {
        Some(heartbeats(db, name)).filter(|rows| rows.len() >= count)
    })
    .await
    {
        Some(rows) => rows,
        None => panic!(
            "{name}: expected {count} heartbeat(s) within {timeout:?}, found {:?}",
            heartbeats(db, name)
        ),
    }
}

/// Waits until a heartbeat of `name` after the first `after` ones satisfies `wanted`; returns it.
pub async fn wait_for_heartbeat_where(
    db: &Path,
    name: &str,
    after: usize,
    timeout: Duration,
    wanted: impl Fn(&Heartbeat) -> bool,
) -> Heartbeat {
    let found = wait_for_async(timeout, || {
        heartbeats(db, name).into_iter().skip(after).find(&wanted)
    })
    .await;
    match found {
        Some(heartbeat) => heartbeat,
        None => panic!(
            "{name}: no matching heartbeat after the first {after} within {timeout:?}; stored: {:#?}",
            heartbeats(db, name)
        ),
    }
}

/// Milliseconds since the epoch by the system clock.
pub fn system_now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the system clock is after 1970");
    i64::try_from(now.as_millis()).expect("a time in range")
}

// ---------------------------------------------------------------------------------------------
// The binary

/// The `streampulse` binary with a quiet, predictable environment.
pub fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_streampulse"));
    command
        .args(args)
        .env_remove("STREAMPULSE_CONFIG")
        .env_remove("STREAMPULSE_DB")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// What a finished run of the binary printed, and how long it took.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Finished {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// stdout then stderr, for "never printed" checks.
    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }
}

/// Runs the binary to completion; kills it and fails the test if it runs longer than `timeout`.
pub fn run(args: &[&str], timeout: Duration) -> Finished {
    let started = Instant::now();
    let child = command(args).spawn().expect("start the streampulse binary");
    let mut running = RunningChild::new(child);
    let status = running
        .wait_timeout(timeout)
        .unwrap_or_else(|| panic!("`streampulse {}` still running after {timeout:?}", args.join(" ")));
    let (stdout, stderr) = running.output();
    Finished {
        status,
        stdout,
        stderr,
        elapsed: started.elapsed(),
    }
}

/// A child process whose output is read on background threads (so a full pipe never blocks it)
/// and which is killed if the test ends first.
pub struct RunningChild {
    child: Child,
    stdout: Option<std::thread::JoinHandle<String>>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl RunningChild {
    pub fn new(mut child: Child) -> RunningChild {
        let stdout = child.stdout.take().map(drain);
        let stderr = child.stderr.take().map(drain);
        RunningChild {
            child,
            stdout,
            stderr,
        }
    }

    pub fn spawn(args: &[&str]) -> RunningChild {
        RunningChild::new(command(args).spawn().expect("start the streampulse binary"))
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) to this child only.
    pub fn signal(&self, signal: i32) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {} failed", self.child.id());
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything printed on stdout and stderr; call after the process has exited.
    pub fn output(&mut self) -> (String, String) {
        let join = |handle: Option<std::thread::JoinHandle<String>>| {
            handle.map(|h| h.join().unwrap_or_default()).unwrap_or_default()
        };
        (join(self.stdout.take()), join(self.stderr.take()))
    }
}

impl Drop for RunningChild {
    fn drop(&mut self) {
        if self.is_running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}
