//! `streampulse user add|passwd|list|remove`: web accounts, managed on the server itself.
//!
//! Passwords are read from standard input when it is not a terminal (one line, for scripts),
//! otherwise prompted for twice without echo. They never appear in arguments, where `ps` and
//! shell history would show them.

use crate::clock::system_now_ms;
use crate::config;
use crate::store::accounts::{check_password, Accounts, Role};
use anyhow::{bail, Context};
use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct UserArgs {
    #[command(subcommand)]
    pub action: UserAction,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// Where the web's accounts live: the database named by `--db`, or by the config file.
#[derive(Debug, clap::Args)]
pub struct DatabaseArgs {
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

impl DatabaseArgs {
    /// The database named by `--db`, or by the config file.
    pub(crate) fn path(self) -> anyhow::Result<PathBuf> {
        match self.db {
            Some(db) => Ok(db),
            None => Ok(config::load(&self.config)
                .with_context(|| "the database is named in the config file (or pass --db)")?
                .database),
        }
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum UserAction {
    /// Create a user; the password comes from stdin or a prompt
    Add {
        name: String,
        /// `admin` may change everything; `viewer` sees everything except camera passwords and
        /// the config editor, and changes nothing
        #[arg(long, default_value = "admin", value_parser = parse_role)]
        role: Role,
    },
    /// Change a user's password (and end their sessions)
    Passwd { name: String },
    /// List users and their roles
    List,
    /// Change a user's role (`admin` or `viewer`); the last admin cannot be demoted
    Role {
        name: String,
        #[arg(value_parser = parse_role)]
        role: Role,
    },
    /// Delete a user (and end their sessions); the last admin cannot be removed
    Remove { name: String },
}

/// Run as root (e.g. `sudo streampulse user add` on a packaged install), SQLite may have created
/// the database, or its -wal/-shm files, owned by root, which the services' own user then cannot
/// write. Hands them to the owner of the database's directory, as if that user had made them.
pub(crate) fn restore_database_ownership(db: &Path) {
    use std::os::unix::fs::MetadataExt;
    let running_as_root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    let Some(dir) = db.parent().map(|p| {
        if p.as_os_str().is_empty() {
            Path::new(".")
        } else {
            p
        }
    }) else {
        return;
    };
    let Ok(dir_meta) = std::fs::metadata(dir) else {
        return;
    };
    if !running_as_root || dir_meta.uid() == 0 {
        return;
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut file = db.as_os_str().to_owned();
        file.push(suffix);
        let file = PathBuf::from(file);
        if std::fs::metadata(&file).is_ok_and(|m| m.uid() == 0) {
            if let Err(e) = std::os::unix::fs::chown(&file, Some(dir_meta.uid()), Some(dir_meta.gid())) {
                eprintln!(
                    "warning: could not give {} to its directory's owner: {e}",
                    file.display()
                );
            }
        }
    }
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

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse()
        .map_err(|error: crate::store::accounts::AccountError| error.to_string())
}

pub fn run(args: UserArgs) -> anyhow::Result<i32> {
    let db = args.database.path()?;
    let result = run_on(&db, args.action);
    restore_database_ownership(&db);
    result
}

fn run_on(db: &Path, action: UserAction) -> anyhow::Result<i32> {
    let accounts = Accounts::open(db).with_context(|| format!("cannot open {}", db.display()))?;
    match action {
        UserAction::Add { name, role } => {
            crate::store::accounts::check_user_name(&name)?;
            let password = read_new_password(&format!("Password for {name}: "))?;
            accounts.add_user_with_role(&name, &password, role, system_now_ms())?;
            eprintln!("user {name} created ({role})");
        }
        UserAction::Role { name, role } => {
            accounts.set_role(&name, role)?;
            eprintln!("{name} is now {role}");
        }
        UserAction::Passwd { name } => {
            let password = read_new_password(&format!("New password for {name}: "))?;
            accounts.set_password(&name, &password, system_now_ms())?;
            eprintln!("password of {name} changed; their sessions were ended");
        }
        UserAction::List => {
            for user in accounts.users()? {
                println!("{}\t{}", user.name, user.role);
            }
        }
        UserAction::Remove { name } => {
            accounts.remove_user(&name)?;
            eprintln!("user {name} removed");
        }
    }
    Ok(0)
}
