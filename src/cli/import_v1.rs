//! `streampulse import-v1 PATH`: imports a StreamPulse v1 database's heartbeats into the
//! configured database. The v1 file is read from a private copy and never changed; importing the
//! same file again adds nothing. (The monitor does the same by itself when it finds a v1 file at
//! its own database path.)

use crate::config;
use crate::upgrade;
use anyhow::Context;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct ImportV1Args {
    /// The v1 database (v1's `streams.db`); its `-wal` beside it is read too
    pub path: PathBuf,
    /// Configuration file (v1 tables go to the configured stream of the same name)
    #[arg(long, short, default_value = "config.yaml", env = "STREAMPULSE_CONFIG")]
    pub config: PathBuf,
    /// SQLite database to import into (default: the config's `database`)
    #[arg(long, env = "STREAMPULSE_DB")]
    pub db: Option<PathBuf>,
}

pub fn run(args: ImportV1Args) -> anyhow::Result<i32> {
    let config = config::load(&args.config)?;
    let db = args.db.clone().unwrap_or_else(|| config.database.clone());
    let report = upgrade::import_file(&config, &db, &args.path, crate::clock::system_now_ms())
        .with_context(|| format!("cannot import {}", args.path.display()))?;
    if report.already_imported {
        println!(
            "{} was imported before; nothing added to {}",
            args.path.display(),
            db.display()
        );
    } else {
        println!(
            "imported {} new heartbeat(s) of {} v1 row(s) from {} table(s) ({} for streams no longer configured, kept in the history) into {}{}",
            report.imported,
            report.rows,
            report.tables,
            report.unconfigured_tables,
            db.display(),
            upgrade::skipped_note(&report),
        );
    }
    println!("{} is unchanged.", args.path.display());
    println!("{}.", upgrade::users_note(&report));
    Ok(0)
}
