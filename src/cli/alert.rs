//! `streampulse alert test [CHANNEL]`: sends one test notification through each configured
//! channel (or the named one) and prints what each receiver said; exit 1 when any failed.

use std::path::PathBuf;

use anyhow::Context;

use crate::alert::trial;
use crate::config;

#[derive(Debug, clap::Args)]
pub struct AlertArgs {
    #[command(subcommand)]
    pub command: AlertCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum AlertCommand {
    /// Send a test notification through every channel, or the one named
    Test {
        /// A channel's `name:` under `alerts.channels`
        channel: Option<String>,
        /// Configuration file
        #[arg(long, short, default_value = "config.yaml", env = "STREAMPULSE_CONFIG")]
        config: PathBuf,
    },
}

pub fn run(args: AlertArgs) -> anyhow::Result<i32> {
    let AlertCommand::Test { channel, config } = args.command;
    let config = config::load(&config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let tests = match runtime.block_on(trial::send_tests(&config, channel.as_deref())) {
        Ok(tests) => tests,
        Err(error) => {
            eprintln!("{error}");
            return Ok(1);
        }
    };
    for test in &tests {
        let what = format!("{} ({}, {})", test.channel, test.kind, test.target);
        match &test.result {
            Ok(delivered) => println!("ok      {what}: {delivered}"),
            Err(error) => println!("FAILED  {what}: {error}"),
        }
    }
    Ok(if tests.iter().all(trial::ChannelTest::delivered) {
        0
    } else {
        1
    })
}
