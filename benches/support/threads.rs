//! Threads a process creates, counted by the kernel: `perf stat` on the `task:task_newtask`
//! tracepoint, attached to a running process. Sampling `/proc/PID/task` cannot do this: a probe's
//! threads live for tens of milliseconds. Needs `perf` (Debian: linux-perf) and permission to
//! read tracepoints (root, or perf_event_paranoid ≤ -1); without them the count is `None`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running count of the threads (and processes) `pid` creates.
pub struct ThreadCreations {
    perf: Child,
    output: PathBuf,
}

impl ThreadCreations {
    /// Starts counting; `None` when perf cannot be started. `scratch` holds perf's output file.
    pub fn start(pid: u32, scratch: &Path) -> Option<ThreadCreations> {
        let output = scratch.join(format!("perf-newtask-{pid}.csv"));
        let perf = Command::new("perf")
            .args(["stat", "-x", ",", "-e", "task:task_newtask", "-p"])
            .arg(pid.to_string())
            .arg("-o")
            .arg(&output)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        Some(ThreadCreations { perf, output })
    }

    /// Stops counting (SIGINT makes perf write its count) and returns the count.
    pub fn finish(mut self) -> Option<u64> {
        let interrupted = Command::new("kill")
            .arg("-INT")
            .arg(self.perf.id().to_string())
            .status()
            .is_ok_and(|status| status.success());
        if !interrupted {
            let _ = self.perf.kill();
        }
        let _ = self.perf.wait();
        let text = std::fs::read_to_string(&self.output).ok()?;
        parse_count(&text)
    }
}

/// The count from `perf stat -x ,` output: `<count>,,task:task_newtask,...`.
fn parse_count(text: &str) -> Option<u64> {
    text.lines()
        .filter(|line| line.contains("task:task_newtask"))
        .find_map(|line| line.split(',').next()?.trim().parse().ok())
}
