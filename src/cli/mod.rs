//! Command-line interface: argument definitions and one function per subcommand. `main.rs` only
//! parses and maps the result to an exit code.

mod alert;
mod check;
mod demo;
mod discover;
mod import_v1;
mod monitor;
mod status;
mod templates;
mod token;
mod user;
mod validate;
mod web;

use crate::logging::LogFormat;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "streampulse",
    version,
    about = "Tells whether every camera really delivers video"
)]
pub struct Cli {
    /// Log lines on stderr: `text` for people, `json` (one object per line) for log shippers
    /// such as Loki or Elasticsearch
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = LogFormat::Text,
        env = "STREAMPULSE_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Notifications: `alert test [CHANNEL]` sends a test through each channel
    Alert(alert::AlertArgs),
    /// Probe one camera now and print the result (exit 0 up, 1 down, 3 degraded)
    Check(check::CheckArgs),
    /// Run demo cameras, the monitor and the web server on loopback, on a temporary database
    Demo(demo::DemoArgs),
    /// Find ONVIF cameras on the local network (WS-Discovery) and print them as `streams:` config
    Discover(discover::DiscoverArgs),
    /// Import the history of a StreamPulse v1 database (never modified; importing twice adds nothing)
    #[command(name = "import-v1")]
    ImportV1(import_v1::ImportV1Args),
    /// Probe every configured stream on its heartbeat and write heartbeats to SQLite
    Monitor(monitor::MonitorArgs),
    /// Show each stream's state from the database
    Status(status::StatusArgs),
    /// List pipeline templates, where each comes from and whether its elements are installed
    Templates(templates::TemplatesArgs),
    /// Check a configuration file and print every problem (exit 1 when invalid)
    Validate(validate::ValidateArgs),
    /// Serve the dashboard, config editor, JSON API and metrics over HTTP
    Web(web::WebArgs),
    /// Manage web users: add, passwd, list, remove
    User(user::UserArgs),
    /// Manage API tokens for scripts: create, list, revoke
    Token(token::TokenArgs),
}

/// Exit codes: 0 ok / up, 1 down or invalid, 2 usage or runtime error.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Alert(args) => alert::run(args),
        Command::Check(args) => check::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Discover(args) => discover::run(args),
        Command::ImportV1(args) => import_v1::run(args),
        Command::Monitor(args) => monitor::run(args),
        Command::Status(args) => status::run(args),
        Command::Templates(args) => templates::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Web(args) => web::run(args),
        Command::User(args) => user::run(args),
        Command::Token(args) => token::run(args),
    }
}

/// A receiver that turns true on SIGINT or SIGTERM. Must be called inside a tokio runtime.
pub(crate) fn shutdown_signal() -> anyhow::Result<tokio::sync::watch::Receiver<bool>> {
    use tokio::signal::unix::{signal, SignalKind};
    let (sender, receiver) = tokio::sync::watch::channel(false);
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM received"),
            _ = interrupt.recv() => tracing::info!("SIGINT received"),
        }
        let _ = sender.send(true);
    });
    Ok(receiver)
}
