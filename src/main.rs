//! The `streampulse` binary: parse arguments, run, map the result to an exit code.

use clap::Parser;
use streampulse::cli::Command;

fn main() {
    fix_malloc_thresholds();
    streampulse::panics::install_hook();
    let cli = streampulse::cli::Cli::parse();
    streampulse::logging::init_with(cli.log_format);
    if matches!(
        cli.command,
        Command::Monitor(_) | Command::Web(_) | Command::Demo(_)
    ) {
        start_heap_trimmer();
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

/// How often a long-running process hands the heap's free pages back to the kernel.
const HEAP_TRIM_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

/// Bytes from which glibc serves an allocation with its own `mmap` (and returns it on free).
const MMAP_THRESHOLD_BYTES: libc::c_int = 128 * 1024;
/// Free memory at the top of the heap beyond which glibc gives it back to the system.
const TRIM_THRESHOLD_BYTES: libc::c_int = 128 * 1024;
/// Malloc arenas. glibc's default is 8 per core, and a probe monitor's many short-lived GStreamer
/// threads spread over all of them, each arena keeping its own free slack (16 arenas held 51 MB
/// for 24 MB in use in `make soak`). The packaged unit always set `MALLOC_ARENA_MAX=2`; now every
/// start gets the same.
const ARENA_MAX: libc::c_int = 2;

/// Pins glibc's mmap and trim thresholds, which are otherwise dynamic, and its arena count. A
/// decoded 640x360 frame (~345 KB) starts above the 128 KB mmap threshold; once one is freed glibc
/// raises the threshold past it, so every later frame is carved out of the arenas and fragments
/// them: a monitor's RSS then grows by megabytes a minute with nothing live (issue 9). Set here,
/// it holds however the binary is started; `MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_` and
/// `MALLOC_ARENA_MAX` in the environment still win, for experiments.
fn fix_malloc_thresholds() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    for (variable, parameter, value) in [
        (
            "MALLOC_MMAP_THRESHOLD_",
            libc::M_MMAP_THRESHOLD,
            MMAP_THRESHOLD_BYTES,
        ),
        (
            "MALLOC_TRIM_THRESHOLD_",
            libc::M_TRIM_THRESHOLD,
            TRIM_THRESHOLD_BYTES,
        ),
        ("MALLOC_ARENA_MAX", libc::M_ARENA_MAX, ARENA_MAX),
    ] {
        if std::env::var_os(variable).is_none() {
            // SAFETY: mallopt only changes allocator parameters; it is called before any other
            // thread exists, and a refused value (return 0) leaves the default in place.
            unsafe { libc::mallopt(parameter, value) };
        }
    }
}

/// Every [`HEAP_TRIM_INTERVAL`], `malloc_trim(0)`: glibc keeps freed memory inside its arenas,
/// and the many short-lived buffers of probes (RTP packets, encoded frames, small decoded frames)
/// leave free pages scattered between live ones that it never returns. Measured in `make soak`:
/// one call gave back 15 of the monitor's 61 MB of anonymous memory, and 6 of the web's 20.
/// Pinning the mmap threshold (above) keeps large frames out of the arenas; this returns the rest.
fn start_heap_trimmer() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let spawned = std::thread::Builder::new()
            .name("heap-trim".to_string())
            .spawn(|| loop {
                std::thread::sleep(HEAP_TRIM_INTERVAL);
                // SAFETY: malloc_trim takes glibc's own arena locks and only releases free pages
                // (madvise); it touches no memory this program uses.
                unsafe { libc::malloc_trim(0) };
            });
        if let Err(error) = spawned {
            tracing::warn!("cannot start the heap trimmer thread: {error}");
        }
    }
}
