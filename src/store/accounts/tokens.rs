//! API tokens: their scopes, creating, checking, listing and revoking them. Only a hash of each
//! token is stored; the token itself is printed once, at creation.

use rusqlite::{params, OptionalExtension};

use super::{random_hex, secret_hash, AccountError, Accounts, MAX_USER_NAME_CHARS, TOKEN_PREFIX};

/// What an API token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenScope {
    /// Read the API, pages and metrics; nothing else.
    #[default]
    Read,
    /// What a logged-in user may do, except see camera passwords.
    Admin,
}

impl TokenScope {
    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Read => "read",
            TokenScope::Admin => "admin",
        }
    }
}

impl std::fmt::Display for TokenScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TokenScope {
    type Err = AccountError;

    fn from_str(text: &str) -> Result<TokenScope, AccountError> {
        match text {
            "read" => Ok(TokenScope::Read),
            "admin" => Ok(TokenScope::Admin),
            other => Err(AccountError::BadTokenScope(other.to_string())),
        }
    }
}

/// A listed or checked API token (never the token itself, which is shown once at creation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub name: String,
    pub scope: TokenScope,
    pub created_ms: i64,
    pub last_used_ms: Option<i64>,
}

const TOKEN_COLUMNS: &str = "SELECT name, scope, created_ms, last_used_ms FROM web_api_tokens";

/// A [`TOKEN_COLUMNS`] row; an unknown scope (written by a newer version) is an error, never
/// a guess.
fn token_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<TokenInfo, AccountError>> {
    let scope: String = row.get(1)?;
    let name: String = row.get(0)?;
    let created_ms = row.get(2)?;
    let last_used_ms = row.get(3)?;
    Ok(scope.parse().map(|scope| TokenInfo {
        name,
        scope,
        created_ms,
        last_used_ms,
    }))
}

impl Accounts {
    /// Creates an API token; returns the secret, which is never stored and cannot be shown again.
    pub fn create_token(&self, name: &str, scope: TokenScope, now_ms: i64) -> Result<String, AccountError> {
        if name.is_empty() || name.chars().count() > MAX_USER_NAME_CHARS || name.chars().any(char::is_control)
        {
            return Err(AccountError::BadTokenName);
        }
        let secret = format!("{TOKEN_PREFIX}{}", random_hex(32));
        let inserted = self.conn.execute(
            "INSERT INTO web_api_tokens (name, token_hash, created_ms, scope) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO NOTHING",
            params![name, secret_hash(&secret), now_ms, scope.as_str()],
        )?;
        if inserted == 0 {
            return Err(AccountError::TokenExists(name.to_string()));
        }
        Ok(secret)
    }

    /// The token when the secret is a live one.
    pub fn check_token(&self, secret: &str, now_ms: i64) -> Result<Option<TokenInfo>, AccountError> {
        let hash = secret_hash(secret);
        let token = self
            .conn
            .query_row(
                &format!("{TOKEN_COLUMNS} WHERE token_hash = ?1"),
                [&hash],
                token_row,
            )
            .optional()?;
        let Some(token) = token else {
            return Ok(None);
        };
        let token = token?;
        // As with sessions, a minute of precision keeps scrapers from writing on every request.
        if token.last_used_ms.is_none_or(|last| now_ms - last >= 60_000) {
            self.conn.execute(
                "UPDATE web_api_tokens SET last_used_ms = ?2 WHERE token_hash = ?1",
                params![hash, now_ms],
            )?;
        }
        Ok(Some(token))
    }

    pub fn tokens(&self) -> Result<Vec<TokenInfo>, AccountError> {
        let mut select = self.conn.prepare(&format!("{TOKEN_COLUMNS} ORDER BY name"))?;
        let rows = select.query_map([], token_row)?.collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().collect()
    }

    pub fn revoke_token(&self, name: &str) -> Result<(), AccountError> {
        let deleted = self
            .conn
            .execute("DELETE FROM web_api_tokens WHERE name = ?1", [name])?;
        if deleted == 0 {
            return Err(AccountError::NoSuchToken(name.to_string()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    fn open(dir: &tempfile::TempDir) -> Accounts {
        Accounts::open(&dir.path().join("s.db")).expect("open")
    }

    #[test]
    fn tokens_made_before_scopes_become_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.db");
        {
            // A database as version 3 left it, with a token in it.
            let conn = Connection::open(&path).expect("open");
            for sql in &crate::store::schema::MIGRATIONS[..3] {
                conn.execute_batch(sql).expect("old migration");
            }
            conn.pragma_update(None, "user_version", 3).expect("version");
            conn.execute(
                "INSERT INTO web_api_tokens (name, token_hash, created_ms) VALUES ('old', ?1, 0)",
                [secret_hash("sp_old")],
            )
            .expect("old token");
        }
        let accounts = Accounts::open(&path).expect("migrate");
        let old = accounts.check_token("sp_old", 1).expect("check").expect("kept");
        assert_eq!((old.name.as_str(), old.scope), ("old", TokenScope::Read));
        // The column refuses anything but the two scopes.
        assert!(accounts
            .conn
            .execute("UPDATE web_api_tokens SET scope = 'root'", [])
            .is_err());
    }

    #[test]
    fn tokens_are_shown_once_and_revocable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let accounts = open(&dir);
        let token = accounts
            .create_token("grafana", TokenScope::Read, 0)
            .expect("create");
        assert!(token.starts_with(TOKEN_PREFIX));
        let checked = accounts.check_token(&token, 1).expect("check").expect("live");
        assert_eq!(
            (checked.name.as_str(), checked.scope),
            ("grafana", TokenScope::Read)
        );
        let admin = accounts
            .create_token("deploy", TokenScope::Admin, 0)
            .expect("create");
        assert_eq!(
            accounts.check_token(&admin, 1).expect("check").map(|t| t.scope),
            Some(TokenScope::Admin)
        );
        assert_eq!(accounts.check_token("sp_nope", 1).expect("check"), None);
        let listed = accounts.tokens().expect("list");
        assert_eq!(listed[1].name, "grafana");
        assert_eq!(
            (listed[1].scope, listed[1].last_used_ms),
            (TokenScope::Read, Some(1))
        );
        assert_eq!(listed[0].scope, TokenScope::Admin);
        accounts.revoke_token("grafana").expect("revoke");
        assert_eq!(accounts.check_token(&token, 2).expect("check"), None);
    }
}
