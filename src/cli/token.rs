//! `streampulse token create|list|revoke`: API tokens for scripts and Prometheus, sent as
//! `Authorization: Bearer …`. A token is printed once at creation; only its hash is stored.

use crate::clock::iso_utc;
use crate::store::accounts::Accounts;
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
    Create { name: String },
    /// List tokens with when they were created and last used
    List,
    /// Delete a token; clients using it get 401 from then on
    Revoke { name: String },
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
        TokenAction::Create { name } => {
            let token = accounts.create_token(&name, now_ms)?;
            println!("{token}");
            eprintln!(
                "token {name} created; it is shown only now. Send it as `Authorization: Bearer <token>`."
            );
        }
        TokenAction::List => {
            for token in accounts.tokens()? {
                let last = token.last_used_ms.map_or("never".to_string(), iso_utc);
                println!(
                    "{}\tcreated {}\tlast used {last}",
                    token.name,
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
