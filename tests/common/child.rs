//! Running one test again in a child process of the same test binary, for what a test cannot do
//! in its own process: an environment read when GLib loads (`G_DEBUG=fatal-criticals`), a body
//! that may abort or spin, or output that must be counted.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Set (to the test's name) in the child's environment.
pub const CHILD_MARKER: &str = "STREAMPULSE_TEST_CHILD";
/// Bytes of each output stream kept for messages; the rest is only counted.
const KEPT_BYTES: usize = 64 * 1024;

/// True inside the child that [`rerun`] started for `test_name`.
pub fn is_child(test_name: &str) -> bool {
    std::env::var(CHILD_MARKER).is_ok_and(|name| name == test_name)
}

/// What the child did.
#[derive(Debug)]
pub struct ChildRun {
    /// `None` when it was still running at the timeout (it was killed).
    pub status: Option<ExitStatus>,
    pub elapsed: Duration,
    pub stdout: Output,
    pub stderr: Output,
}

/// One output stream: its line count and its first [`KEPT_BYTES`].
#[derive(Debug, Default)]
pub struct Output {
    pub lines: u64,
    pub head: String,
}

impl ChildRun {
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|status| status.success())
    }

    /// The signal that ended the child, if one did (SIGABRT for a fatal GLib critical).
    pub fn signal(&self) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        self.status.and_then(|status| status.signal())
    }
}

/// Runs the test `test_name` of the current test binary in a child process with `envs` set, and
/// kills it if it runs longer than `timeout`.
pub fn rerun(test_name: &str, envs: &[(&str, &str)], timeout: Duration) -> ChildRun {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut command = Command::new(exe);
    command
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_MARKER, test_name)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in envs {
        command.env(key, value);
    }
    let started = Instant::now();
    let mut child = command.spawn().expect("start the test binary again");
    let stdout = child.stdout.take().map(count_lines);
    let stderr = child.stderr.take().map(count_lines);
    let deadline = started + timeout;
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    let join = |handle: Option<std::thread::JoinHandle<Output>>| {
        handle.map(|h| h.join().unwrap_or_default()).unwrap_or_default()
    };
    ChildRun {
        status,
        elapsed,
        stdout: join(stdout),
        stderr: join(stderr),
    }
}

fn count_lines(pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Output> {
    std::thread::spawn(move || {
        let mut output = Output::default();
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        while let Ok(read) = reader.read_until(b'\n', &mut line) {
            if read == 0 {
                break;
            }
            output.lines += 1;
            if output.head.len() < KEPT_BYTES {
                output.head.push_str(&String::from_utf8_lossy(&line));
            }
            line.clear();
        }
        output
    })
}
