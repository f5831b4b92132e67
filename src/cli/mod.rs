//! Command-line interface: argument definitions and one function per subcommand. `main.rs` only
//! parses and maps the result to an exit code.

mod check;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "streampulse", version, about = "Tells whether every camera really delivers video")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Probe one camera now and print the result (exit 0 when up, 1 when down)
    Check(check::CheckArgs),
}

/// Exit codes: 0 ok / up, 1 down or invalid, 2 usage or runtime error.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Check(args) => check::run(args),
    }
}

pub(crate) fn default_config_path() -> PathBuf {
    PathBuf::from("config.yaml")
}
