//! `streampulse validate`: check a config file and print every problem (systemd runs it as
//! `ExecStartPre`).

use crate::config;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Configuration file
    #[arg(long, short, default_value = "config.yaml", env = "STREAMPULSE_CONFIG")]
    pub config: PathBuf,
}

pub fn run(args: ValidateArgs) -> anyhow::Result<i32> {
    match config::load(&args.config) {
        Ok(config) => {
            let enabled = config.streams.iter().filter(|s| s.enabled).count();
            println!(
                "{}: ok ({} stream(s), {} enabled, heartbeat {} s, timezone {})",
                args.config.display(),
                config.streams.len(),
                enabled,
                config.heartbeat.as_secs(),
                config.timezone_name
            );
            for notice in &config.notices {
                let line = notice.line.map(|line| format!(":{line}")).unwrap_or_default();
                println!(
                    "{}{line}: {}: notice: {}",
                    args.config.display(),
                    notice.field,
                    notice.message
                );
            }
            Ok(0)
        }
        Err(error) => {
            eprintln!("{error}");
            Ok(1)
        }
    }
}
