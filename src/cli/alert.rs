//! `streampulse alert test [CHANNEL]`: sends one test notification through each configured
//! channel (or the named one) and prints what each receiver said; exit 1 when any failed.

use std::path::PathBuf;

use anyhow::Context;

use crate::alert::{outbox, AlertPlan, Notification};
use crate::clock::system_now_ms;
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
    let channels: Vec<_> = config
        .alerts
        .channels
        .iter()
        .filter(|candidate| channel.as_ref().is_none_or(|name| &candidate.name == name))
        .collect();
    if channels.is_empty() {
        match channel {
            Some(name) => {
                let known: Vec<&str> = config.alerts.channels.iter().map(|c| c.name.as_str()).collect();
                eprintln!(
                    "no channel named {name:?} under alerts.channels (configured: {})",
                    known.join(", ")
                );
            }
            None => eprintln!("no channels configured under alerts.channels"),
        }
        return Ok(1);
    }
    let notification = Notification::test(&AlertPlan::from_config(&config), system_now_ms());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut failed = 0;
    for channel in channels {
        let result = runtime.block_on(outbox::send(channel, &notification, config.alerts.timeout));
        let what = format!(
            "{} ({}, {})",
            channel.name,
            channel.kind_label(),
            channel.redacted_url()
        );
        match result {
            Ok(delivered) => println!("ok      {what}: {delivered}"),
            Err(error) => {
                failed += 1;
                println!("FAILED  {what}: {error}");
            }
        }
    }
    Ok(if failed == 0 { 0 } else { 1 })
}
