//! `streampulse user add|passwd|list|remove`: web accounts, managed on the server itself.
//!
//! Passwords are read from standard input when it is not a terminal (one line, for scripts),
//! otherwise prompted for twice without echo. They never appear in arguments, where `ps` and
//! shell history would show them.

use crate::config;
use crate::web::accounts::{check_password, Accounts};
use anyhow::{bail, Context};
use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct UserArgs {
    #[command(subcommand)]
    pub action: UserAction,
    /// Configuration file (to find the database)
    #[arg(
        long,
        short,
        global = true,
        default_value = "config.yaml",
        env = "STREAMPULSE_CONFIG"
    )]
    pub config: PathBuf,
    /// SQLite database (default: the config's `database`)
    #[arg(long, global = true, env = "STREAMPULSE_DB")]
    pub db: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
pub enum UserAction {
    /// Create a user; the password comes from stdin or a prompt
    Add { name: String },
    /// Change a user's password (and end their sessions)
    Passwd { name: String },
    /// List users
    List,
    /// Delete a user (and end their sessions)
    Remove { name: String },
}

/// The database named by `--db`, or by the config file.
pub(crate) fn database_path(config_path: &Path, db: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match db {
        Some(db) => Ok(db),
        None => Ok(config::load(config_path)
            .with_context(|| "the database is named in the config file (or pass --db)")?
            .database),
    }
}

fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// A new password: one line from a pipe, or typed twice at a prompt.
pub(crate) fn read_new_password(prompt: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        let first = rpassword::prompt_password(prompt).context("cannot read the password")?;
        let second = rpassword::prompt_password("Again: ").context("cannot read the password")?;
        if first != second {
            bail!("the two passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        line.trim_end_matches(['\n', '\r']).to_string()
    };
    check_password(&password)?;
    Ok(password)
}

pub fn run(args: UserArgs) -> anyhow::Result<i32> {
    let db = database_path(&args.config, args.db)?;
    let accounts = Accounts::open(&db).with_context(|| format!("cannot open {}", db.display()))?;
    match args.action {
        UserAction::Add { name } => {
            crate::web::accounts::check_user_name(&name)?;
            let password = read_new_password(&format!("Password for {name}: "))?;
            accounts.add_user(&name, &password, now_ms())?;
            eprintln!("user {name} created");
        }
        UserAction::Passwd { name } => {
            let password = read_new_password(&format!("New password for {name}: "))?;
            accounts.set_password(&name, &password, now_ms())?;
            eprintln!("password of {name} changed; their sessions were ended");
        }
        UserAction::List => {
            for name in accounts.user_names()? {
                println!("{name}");
            }
        }
        UserAction::Remove { name } => {
            accounts.remove_user(&name)?;
            eprintln!("user {name} removed");
        }
    }
    Ok(0)
}
