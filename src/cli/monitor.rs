//! `streampulse monitor`: the probing process.

use crate::monitor::{Monitor, MonitorOptions};
use anyhow::Context;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct MonitorArgs {
    /// Configuration file
    #[arg(long, short, default_value = "config.yaml", env = "STREAMPULSE_CONFIG")]
    pub config: PathBuf,
    /// SQLite database (default: the config's `database`, else streams.db beside the config)
    #[arg(long, env = "STREAMPULSE_DB")]
    pub db: Option<PathBuf>,
}

/// Threads for the monitor's blocking work: more than two cores can keep busy encoding, with room
/// for a few waiting on SQLite.
const MONITOR_BLOCKING_THREADS: usize = 8;

pub fn run(args: MonitorArgs) -> anyhow::Result<i32> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("sp-monitor")
        // The blocking pool only encodes pictures and waits on the store: a handful of threads
        // keep up with thousands of streams. Tokio's default (512) let bursts leave dozens of idle
        // threads behind, each with its stack and allocator cache, kept alive by a steady trickle
        // of work that always finds one (issue 16).
        .max_blocking_threads(MONITOR_BLOCKING_THREADS)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let shutdown = super::shutdown_signal()?;
        let mut options = MonitorOptions::new(args.config);
        options.db_path = args.db;
        Monitor::new(options).run(shutdown).await?;
        Ok(0)
    })
}
