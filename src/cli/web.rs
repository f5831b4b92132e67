//! `streampulse web`: the dashboard, config editor and API on one HTTP(S) listener.

use crate::web::{self, ServerSettings, WebOptions, WebState};
use anyhow::Context;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct WebArgs {
    /// Configuration file (streams, timezone, `web:` settings); the editor writes to it
    #[arg(long, short, default_value = "config.yaml", env = "STREAMPULSE_CONFIG")]
    pub config: PathBuf,
    /// SQLite database (default: the config's `database`)
    #[arg(long, env = "STREAMPULSE_DB")]
    pub db: Option<PathBuf>,
    /// Address to listen on (default: the config's `web.listen`, 127.0.0.1:8000)
    #[arg(long)]
    pub listen: Option<String>,
    /// Serve templates and static files from DIR/templates and DIR/static instead of the copies
    /// built into the binary, re-read on every request (for working on the pages)
    #[arg(long, value_name = "DIR", env = "STREAMPULSE_WEB_ASSETS")]
    pub assets: Option<PathBuf>,
}

pub fn run(args: WebArgs) -> anyhow::Result<i32> {
    let mut options = WebOptions::new(&args.config);
    options.db_path = args.db;
    options.assets_dir = args.assets;
    let state = WebState::new(options)?;
    let listen = args.listen.unwrap_or_else(|| state.config().web.listen.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        // TLS files (or the self-signed pair) are ready before anything is served, or the
        // command fails saying why.
        let settings = ServerSettings::new(&state, listener.local_addr()?)
            .map_err(|error| anyhow::anyhow!(error.public_message()))?;
        let mut stop = super::shutdown_signal()?;
        let shutdown = async move {
            let _ = stop.wait_for(|stop| *stop).await;
        };
        web::serve_with(listener, state, settings, shutdown).await;
        Ok(0)
    })
}
