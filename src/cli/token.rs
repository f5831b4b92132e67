//! `streampulse token create|list|revoke`: API tokens for scripts and Prometheus, sent as
//! `Authorization: Bearer …`. A token is printed once at creation; only its hash is stored.
//! Tokens are `read` unless created with `--scope admin`.

use crate::clock::iso_utc;
use crate::store::accounts::{Accounts, TokenScope};
use anyhow::Context;

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub action: TokenAction,
    #[command(flatten)]
    pub database: super::user::DatabaseArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum TokenAction {
    /// Create a token and print it (the only time it is shown)
    #[command(visible_alias = "add")]
    Create {
        name: String,
        /// What the token may do
        #[arg(long, value_enum, default_value_t = ScopeArg::Read)]
        scope: ScopeArg,
    },
    /// List tokens with their scope and when they were created and last used
    List,
    /// Delete a token; clients using it get 401 from then on
    Revoke { name: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScopeArg {
    /// Read the API, pages and /metrics; never the config file, never change anything
    Read,
    /// Also read and change the config and everything else a logged-in user may (never shown
    /// camera passwords: only a browser session that re-entered its password sees those)
    Admin,
}

impl From<ScopeArg> for TokenScope {
    fn from(scope: ScopeArg) -> TokenScope {
        match scope {
            ScopeArg::Read => TokenScope::Read,
            ScopeArg::Admin => TokenScope::Admin,
        }
    }
}

pub fn run(args: TokenArgs) -> anyhow::Result<i32> {
    let db = args.database.path()?;
    let result = run_on(&db, args.action);
    super::user::restore_database_ownership(&db);
    result
}

fn run_on(db: &std::path::Path, action: TokenAction) -> anyhow::Result<i32> {
    let accounts = Accounts::open(db).with_context(|| format!("cannot open {}", db.display()))?;
    let now_ms = crate::clock::system_now_ms();
    match action {
        TokenAction::Create { name, scope } => {
            let scope = TokenScope::from(scope);
            let token = accounts.create_token(&name, scope, now_ms)?;
            println!("{token}");
            eprintln!(
                "token {name} (scope {scope}) created; it is shown only now. Send it as `Authorization: Bearer <token>`."
            );
        }
        TokenAction::List => {
            for token in accounts.tokens()? {
                let last = token.last_used_ms.map_or("never".to_string(), iso_utc);
                println!(
                    "{}\tscope {}\tcreated {}\tlast used {last}",
                    token.name,
                    token.scope,
                    iso_utc(token.created_ms)
                );
            }
        }
        TokenAction::Revoke { name } => {
            accounts.revoke_token(&name)?;
            eprintln!("token {name} revoked");
        }
    }
    Ok(0)
}
