//! What `/proc` says about the processes a benchmark measures (the monitor, the web, ffmpeg, the
//! benchmark itself) and the machine it runs on, read through the `procfs` crate. Every reading
//! is `None` (or a neutral value) once the process is gone: a benchmark reports what it could read.

use procfs::process::Process;
use procfs::{CpuInfo, Current, LoadAverage};
use std::collections::BTreeMap;

/// Memory and threads from `/proc/<pid>/status`.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcStatus {
    pub rss_kb: u64,
    pub peak_rss_kb: u64,
    pub threads: u64,
}

fn process(pid: u32) -> Option<Process> {
    Process::new(i32::try_from(pid).ok()?).ok()
}

/// `VmRSS`, `VmHWM` and `Threads` of a live process; `None` once it is gone or a zombie (which
/// has no memory lines left).
pub fn proc_status(pid: u32) -> Option<ProcStatus> {
    let status = process(pid)?.status().ok()?;
    let peak_rss_kb = status.vmhwm.filter(|kb| *kb > 0)?;
    Some(ProcStatus {
        rss_kb: status.vmrss.unwrap_or(0),
        peak_rss_kb,
        threads: status.threads,
    })
}

/// `Anonymous:` of `/proc/<pid>/smaps_rollup`: heap, thread stacks and other private memory, as
/// opposed to the pages of mapped libraries (GStreamer plugins, libav) that RSS also counts.
pub fn anonymous_memory_kb(pid: u32) -> Option<u64> {
    let rollup = process(pid)?.smaps_rollup().ok()?;
    let bytes = rollup
        .memory_map_rollup
        .0
        .iter()
        .find_map(|map| map.extension.map.get("Anonymous").copied())?;
    Some(bytes / 1024)
}

/// Open file descriptors of a process (entries of `/proc/<pid>/fd`).
pub fn open_fds(pid: u32) -> Option<u64> {
    Some(process(pid)?.fd_count().ok()? as u64)
}

/// utime + stime of a process, all its threads, in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = process(pid)?.stat().ok()?;
    Some(stat.utime + stat.stime)
}

/// utime + stime of this process (for `fleet`: the RTSP server, its encoder and the keeper
/// client), in clock ticks.
pub fn own_cpu_ticks() -> u64 {
    Process::myself()
        .and_then(|me| me.stat())
        .map_or(0, |stat| stat.utime + stat.stime)
}

/// CPU of this process's waited-for children, in clock ticks (cutime + cstime): how ffmpeg's CPU
/// is counted without `getrusage`.
pub fn children_cpu_ticks() -> u64 {
    Process::myself()
        .and_then(|me| me.stat())
        .map_or(0, |stat| u64::try_from(stat.cutime + stat.cstime).unwrap_or(0))
}

/// Clock ticks per second of the CPU times above (USER_HZ).
pub fn ticks_per_second() -> f64 {
    procfs::ticks_per_second() as f64
}

/// Threads of a process by name, digits folded (`udpsrc12:src` → `udpsrc#:src`).
pub fn thread_kinds(pid: u32) -> BTreeMap<String, usize> {
    let mut kinds = BTreeMap::new();
    let Some(tasks) = process(pid).and_then(|p| p.tasks().ok()) else {
        return kinds;
    };
    for task in tasks.flatten() {
        let Ok(stat) = task.stat() else {
            continue;
        };
        *kinds.entry(fold_digits(&stat.comm)).or_insert(0) += 1;
    }
    kinds
}

fn fold_digits(name: &str) -> String {
    let mut folded = String::new();
    for c in name.trim().chars() {
        if !c.is_ascii_digit() {
            folded.push(c);
        } else if !folded.ends_with('#') {
            folded.push('#');
        }
    }
    folded
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> String {
    LoadAverage::current().map_or_else(
        |_| "?".into(),
        |load| format!("{:.2} {:.2} {:.2}", load.one, load.five, load.fifteen),
    )
}

/// The CPU's model name.
pub fn cpu_model() -> String {
    CpuInfo::current()
        .ok()
        .and_then(|info| info.model_name(0).map(str::to_string))
        .unwrap_or_else(|| "unknown CPU".into())
}
