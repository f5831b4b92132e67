//! Web accounts in the store's SQLite file: users with argon2 password hashes, server-side login
//! sessions and API tokens (in `tokens`).
//!
//! Only hashes of session ids and API tokens are stored: the secret lives in the client's cookie
//! or script, so a copy of the database cannot be replayed as a login. Used by the web server and
//! by the `user` and `token` commands, which work while `streampulse web` runs.

use std::path::Path;
use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use crate::store::{Store, StoreError, BUSY_TIMEOUT};

mod mutes;
mod tokens;
mod users;

pub use tokens::{TokenInfo, TokenScope};
pub use users::{generated_password, Role, TimeDisplay, UserInfo};

/// Shortest password accepted: long enough that the login throttle makes guessing hopeless.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest user name, in characters.
pub const MAX_USER_NAME_CHARS: usize = 64;
/// Prefix of API tokens, so a leaked one is recognisable in logs and secret scanners.
pub const TOKEN_PREFIX: &str = "sp_";

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("user {0:?} already exists")]
    UserExists(String),
    #[error("no user named {0:?}")]
    NoSuchUser(String),
    #[error("an API token named {0:?} already exists")]
    TokenExists(String),
    #[error("no API token named {0:?}")]
    NoSuchToken(String),
    #[error("user name must be 1 to {MAX_USER_NAME_CHARS} letters, digits, '.', '_', '-' or '@'")]
    BadUserName,
    #[error("token name must be 1 to {MAX_USER_NAME_CHARS} printable characters")]
    BadTokenName,
    #[error("token scope must be `read` or `admin`, not {0:?}")]
    BadTokenScope(String),
    #[error("the password must be at least {MIN_PASSWORD_CHARS} characters long")]
    PasswordTooShort,
    #[error("role must be `admin` or `viewer`, not {0:?}")]
    BadRole(String),
    #[error("this is the last administrator: make another user an admin first")]
    LastAdmin,
    #[error("no stream named {0:?} has been monitored yet")]
    NoSuchStream(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// A logged-in user as a request sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub user_id: i64,
    pub user_name: String,
    pub csrf_token: String,
    pub created_ms: i64,
    pub last_seen_ms: i64,
    /// When the user last confirmed their password in this session (to see camera passwords).
    pub confirmed_ms: Option<i64>,
    pub role: Role,
    pub time_display: TimeDisplay,
}

/// Session lifetimes, from the config's `web:` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    pub idle_ms: i64,
    pub max_ms: i64,
}

/// A connection for account reads and writes. The database is created and migrated by
/// [`Store::open`] first, so the account tables always exist.
pub struct Accounts {
    conn: Connection,
    hasher: Argon2<'static>,
    dummy: OnceLock<String>,
}

/// A stored password hash to check a login against (a dummy one for unknown users).
#[derive(Debug, Clone)]
pub struct PasswordCheck {
    user_id: Option<i64>,
    stored: String,
}

impl PasswordCheck {
    /// The user's id when `password` matches. Costs one argon2 hash either way.
    pub fn verify(&self, password: &str) -> Result<Option<i64>, AccountError> {
        let parsed = PasswordHash::new(&self.stored).map_err(|e| AccountError::Hash(e.to_string()))?;
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(self.user_id.filter(|_| matches))
    }
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts").finish_non_exhaustive()
    }
}

/// `count` random bytes as lower-case hex.
pub fn random_hex(count: usize) -> String {
    let mut bytes = vec![0u8; count];
    // ThreadRng is a CSPRNG seeded from the operating system.
    rand::rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// SHA-256 of a high-entropy secret (session id, API token), as stored.
pub fn secret_hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

pub fn check_user_name(name: &str) -> Result<(), AccountError> {
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_USER_NAME_CHARS
        && name.chars().all(|c| c.is_alphanumeric() || "._-@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(AccountError::BadUserName)
    }
}

pub fn check_password(password: &str) -> Result<(), AccountError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AccountError::PasswordTooShort);
    }
    Ok(())
}

impl Accounts {
    /// Opens (creating and migrating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Accounts, AccountError> {
        // Store::open applies every migration, the account tables included.
        drop(Store::open(path)?);
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "foreign_keys", true)?;
        Ok(Accounts {
            conn,
            hasher: Argon2::default(),
            dummy: OnceLock::new(),
        })
    }

    /// Uses cheaper argon2 parameters for new hashes. Verification always follows the parameters
    /// stored in each hash, so this only matters for tests, where the default cost would dominate.
    pub fn with_hasher(mut self, hasher: Argon2<'static>) -> Accounts {
        self.set_hasher(hasher);
        self
    }

    pub fn set_hasher(&mut self, hasher: Argon2<'static>) {
        self.hasher = hasher;
        self.dummy = OnceLock::new();
    }

    fn hash_password(&self, password: &str) -> Result<String, AccountError> {
        check_password(password)?;
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|e| AccountError::Hash(e.to_string()))?;
        let hash = self
            .hasher
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| AccountError::Hash(e.to_string()))?;
        Ok(hash.to_string())
    }

    pub fn user_count(&self) -> Result<i64, AccountError> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM web_users", [], |row| row.get(0))?)
    }

    pub fn user_names(&self) -> Result<Vec<String>, AccountError> {
        let mut select = self.conn.prepare("SELECT name FROM web_users ORDER BY name")?;
        let names = select
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(names)
    }

    /// Creates an admin; fails if the name is taken.
    pub fn add_user(&self, name: &str, password: &str, now_ms: i64) -> Result<i64, AccountError> {
        self.add_user_with_role(name, password, Role::Admin, now_ms)
    }

    /// Creates the first user, only while there is none: the setup link must not be usable to
    /// add a second administrator once someone got there first.
    pub fn add_first_user(
        &self,
        name: &str,
        password: &str,
        now_ms: i64,
    ) -> Result<Option<i64>, AccountError> {
        check_user_name(name)?;
        let hash = self.hash_password(password)?;
        let inserted = self.conn.execute(
            "INSERT INTO web_users (name, password_hash, created_ms, password_changed_ms)
             SELECT ?1, ?2, ?3, ?3 WHERE NOT EXISTS (SELECT 1 FROM web_users)",
            params![name, hash, now_ms],
        )?;
        Ok((inserted > 0).then(|| self.conn.last_insert_rowid()))
    }

    /// Changes a password and ends every session of that user.
    pub fn set_password(&self, name: &str, password: &str, now_ms: i64) -> Result<(), AccountError> {
        let hash = self.hash_password(password)?;
        let tx = self.conn.unchecked_transaction()?;
        let updated = tx.execute(
            "UPDATE web_users SET password_hash = ?2, password_changed_ms = ?3 WHERE name = ?1",
            params![name, hash, now_ms],
        )?;
        if updated == 0 {
            return Err(AccountError::NoSuchUser(name.to_string()));
        }
        tx.execute(
            "DELETE FROM web_sessions WHERE user_id = (SELECT id FROM web_users WHERE name = ?1)",
            [name],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The user's id when `password` is right. Unknown users cost a hash check too, so timing
    /// does not tell which names exist.
    pub fn verify_password(&self, name: &str, password: &str) -> Result<Option<i64>, AccountError> {
        self.password_hash_of(name)?.verify(password)
    }

    /// What [`PasswordCheck::verify`] needs, read without the slow part, so the web server can
    /// run argon2 without holding the accounts connection.
    pub fn password_hash_of(&self, name: &str) -> Result<PasswordCheck, AccountError> {
        let row: Option<(i64, String)> = self
            .conn
            .query_row(
                "SELECT id, password_hash FROM web_users WHERE name = ?1",
                [name],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        Ok(match row {
            Some((id, stored)) => PasswordCheck {
                user_id: Some(id),
                stored,
            },
            None => PasswordCheck {
                user_id: None,
                stored: self.dummy_hash()?,
            },
        })
    }

    /// A hash of nothing anyone knows, with the current parameters, checked against for unknown
    /// user names.
    fn dummy_hash(&self) -> Result<String, AccountError> {
        if let Some(hash) = self.dummy.get() {
            return Ok(hash.clone());
        }
        let hash = self.hash_password(&random_hex(16))?;
        Ok(self.dummy.get_or_init(|| hash).clone())
    }

    /// Starts a session; returns the secret for the cookie.
    pub fn create_session(&self, user_id: i64, now_ms: i64) -> Result<String, AccountError> {
        let secret = random_hex(32);
        self.conn.execute(
            "INSERT INTO web_sessions (id_hash, user_id, csrf_token, created_ms, last_seen_ms)
             VALUES (?1, ?2, ?3, ?4, ?4)",
            params![secret_hash(&secret), user_id, random_hex(32), now_ms],
        )?;
        Ok(secret)
    }

    /// The live session for a cookie secret, refreshing its idle timer; an expired one is
    /// deleted and reads as absent.
    pub fn session(
        &self,
        secret: &str,
        now_ms: i64,
        limits: SessionLimits,
    ) -> Result<Option<SessionInfo>, AccountError> {
        let id_hash = secret_hash(secret);
        let session = self
            .conn
            .query_row(
                "SELECT s.user_id, u.name, s.csrf_token, s.created_ms, s.last_seen_ms, s.confirmed_ms,
                        u.role, u.time_display
                 FROM web_sessions AS s JOIN web_users AS u ON u.id = s.user_id WHERE s.id_hash = ?1",
                [&id_hash],
                |row| {
                    Ok(SessionInfo {
                        user_id: row.get(0)?,
                        user_name: row.get(1)?,
                        csrf_token: row.get(2)?,
                        created_ms: row.get(3)?,
                        last_seen_ms: row.get(4)?,
                        confirmed_ms: row.get(5)?,
                        // An unknown role (a newer version's) reads as the least one.
                        role: row.get::<_, String>(6)?.parse().unwrap_or(Role::Viewer),
                        time_display: TimeDisplay::parse(&row.get::<_, String>(7)?),
                    })
                },
            )
            .optional()?;
        let Some(mut session) = session else {
            return Ok(None);
        };
        let idle_expired = now_ms.saturating_sub(session.last_seen_ms) > limits.idle_ms;
        let max_expired = now_ms.saturating_sub(session.created_ms) > limits.max_ms;
        if idle_expired || max_expired {
            self.conn
                .execute("DELETE FROM web_sessions WHERE id_hash = ?1", [&id_hash])?;
            return Ok(None);
        }
        // Writing on every request would make each page view a write transaction; a few seconds
        // of idle-timer precision is plenty.
        if now_ms - session.last_seen_ms >= 5_000 {
            self.conn.execute(
                "UPDATE web_sessions SET last_seen_ms = ?2 WHERE id_hash = ?1",
                params![id_hash, now_ms],
            )?;
            session.last_seen_ms = now_ms;
        }
        Ok(Some(session))
    }

    /// Marks the session's password as confirmed at `now_ms` (see `web::auth::may_reveal`).
    pub fn confirm_session(&self, secret: &str, now_ms: i64) -> Result<(), AccountError> {
        self.conn.execute(
            "UPDATE web_sessions SET confirmed_ms = ?2 WHERE id_hash = ?1",
            params![secret_hash(secret), now_ms],
        )?;
        Ok(())
    }

    pub fn delete_session(&self, secret: &str) -> Result<(), AccountError> {
        self.conn.execute(
            "DELETE FROM web_sessions WHERE id_hash = ?1",
            [secret_hash(secret)],
        )?;
        Ok(())
    }

    /// Deletes sessions past either limit, so the table does not grow with abandoned logins.
    pub fn purge_sessions(&self, now_ms: i64, limits: SessionLimits) -> Result<usize, AccountError> {
        Ok(self.conn.execute(
            "DELETE FROM web_sessions WHERE last_seen_ms < ?1 OR created_ms < ?2",
            params![
                now_ms.saturating_sub(limits.idle_ms),
                now_ms.saturating_sub(limits.max_ms)
            ],
        )?)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use argon2::{Algorithm, Params, Version};

    const HOUR: i64 = 3_600_000;

    fn cheap() -> Argon2<'static> {
        Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, None).expect("valid params"),
        )
    }

    pub(super) fn open(dir: &tempfile::TempDir) -> Accounts {
        Accounts::open(&dir.path().join("s.db"))
            .expect("open")
            .with_hasher(cheap())
    }

    #[test]
    fn passwords_are_hashed_and_verified() {
        let dir = tempfile::tempdir().expect("tempdir");
        let accounts = open(&dir);
        let id = accounts.add_user("alice", "correct horse", 0).expect("add");
        let stored: String = accounts
            .conn
            .query_row("SELECT password_hash FROM web_users", [], |row| row.get(0))
            .expect("row");
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(!stored.contains("correct horse"));
        assert_eq!(
            accounts
                .verify_password("alice", "correct horse")
                .expect("verify"),
            Some(id)
        );
        assert_eq!(
            accounts.verify_password("alice", "wrong horse").expect("verify"),
            None
        );
        assert_eq!(
            accounts.verify_password("bob", "correct horse").expect("verify"),
            None
        );
        assert!(matches!(
            accounts.add_user("alice", "another one", 0),
            Err(AccountError::UserExists(_))
        ));
        assert!(matches!(
            accounts.add_user("carol", "short", 0),
            Err(AccountError::PasswordTooShort)
        ));
        assert!(matches!(
            accounts.add_user("<script>", "long enough", 0),
            Err(AccountError::BadUserName)
        ));
    }

    #[test]
    fn first_user_only_while_none_exists() {
        let dir = tempfile::tempdir().expect("tempdir");
        let accounts = open(&dir);
        assert!(accounts
            .add_first_user("admin", "long enough", 0)
            .expect("first")
            .is_some());
        assert!(accounts
            .add_first_user("mallory", "long enough", 0)
            .expect("second")
            .is_none());
        assert_eq!(accounts.user_names().expect("names"), ["admin"]);
    }

    #[test]
    fn sessions_expire_when_idle_or_old_and_on_password_change() {
        let dir = tempfile::tempdir().expect("tempdir");
        let accounts = open(&dir);
        let limits = SessionLimits {
            idle_ms: HOUR,
            max_ms: 3 * HOUR,
        };
        let id = accounts.add_user("alice", "correct horse", 0).expect("add");
        let secret = accounts.create_session(id, 0).expect("session");
        let stored: String = accounts
            .conn
            .query_row("SELECT id_hash FROM web_sessions", [], |row| row.get(0))
            .expect("row");
        assert_ne!(stored, secret, "only the hash is stored");
        // Activity keeps it alive past the idle limit, but not past the absolute one.
        for step in 1..=5 {
            let at = step * HOUR / 2;
            assert!(
                accounts.session(&secret, at, limits).expect("read").is_some(),
                "{step}"
            );
        }
        assert!(accounts
            .session(&secret, 3 * HOUR + 1, limits)
            .expect("read")
            .is_none());
        let secret = accounts.create_session(id, 0).expect("session");
        assert!(accounts
            .session(&secret, HOUR + 1, limits)
            .expect("read")
            .is_none());
        let secret = accounts.create_session(id, 0).expect("session");
        accounts
            .set_password("alice", "battery staple", 1)
            .expect("passwd");
        assert!(accounts.session(&secret, 2, limits).expect("read").is_none());
    }

    #[test]
    fn a_confirmation_belongs_to_its_session() {
        let dir = tempfile::tempdir().expect("tempdir");
        let accounts = open(&dir);
        let limits = SessionLimits {
            idle_ms: HOUR,
            max_ms: 3 * HOUR,
        };
        let id = accounts.add_user("alice", "correct horse", 0).expect("add");
        let confirmed = accounts.create_session(id, 0).expect("session");
        let other = accounts.create_session(id, 0).expect("session");
        accounts.confirm_session(&confirmed, 10).expect("confirm");
        let read = |secret: &str| accounts.session(secret, 20, limits).expect("read").expect("live");
        assert_eq!(read(&confirmed).confirmed_ms, Some(10));
        assert_eq!(read(&other).confirmed_ms, None);
    }
}
