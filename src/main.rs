//! The `streampulse` binary: parse arguments, run, map the result to an exit code.

use clap::Parser;
use streampulse::cli::Command;

fn main() {
    streampulse::panics::install_hook();
    let cli = streampulse::cli::Cli::parse();
    streampulse::logging::init_with(cli.log_format);
    if matches!(
        cli.command,
        Command::Monitor(_) | Command::Web(_) | Command::Demo(_)
    ) {
        start_allocator_background_thread();
    }
    let code = match streampulse::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            // Errors may quote camera URLs: redact before printing.
            eprintln!(
                "streampulse: {}",
                streampulse::url::redact_text(&format!("{error:#}"))
            );
            2
        }
    };
    // Counts of library messages held back by the rate limit since its last window.
    streampulse::logging::flush_suppressed();
    std::process::exit(code);
}

/// jemalloc serves every allocation of the process, GLib's and GStreamer's too: its `malloc`,
/// `free` and friends are exported unprefixed from this binary, and the shared libraries bind to
/// them instead of glibc's (`tests/cli.rs` checks). glibc's arenas, even with pinned mmap/trim
/// thresholds, two arenas and a `malloc_trim` every 30 s, kept a soaking monitor's RSS rising by
/// 0.09-0.17 MB a minute with a flat live heap; with jemalloc the same hour grew 0.05 MB a minute
/// and met issue 9's target, and a probe costs about a fifth less CPU (docs/benchmarks.md).
#[cfg(all(feature = "jemalloc", target_os = "linux", target_env = "gnu"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// For the long-running commands: jemalloc's background thread returns freed pages to the kernel
/// on their decay schedule (`dirty_decay_ms`, 1 s as built) even while a process is idle, instead
/// of only when an allocating thread happens to pass by.
fn start_allocator_background_thread() {
    #[cfg(all(feature = "jemalloc", target_os = "linux", target_env = "gnu"))]
    if let Err(error) = tikv_jemalloc_ctl::background_thread::write(true) {
        tracing::warn!("cannot start the allocator's background thread: {error}");
    }
}
