//! Roles and the user list: who may change things (`admin`) and who may only look (`viewer`),
//! listing users, changing a role, removing a user, and each user's time display choice.
//!
//! The last administrator can be neither removed nor demoted: the check and the change are one
//! SQL statement, so two administrators demoting each other at once cannot both succeed.

use rusqlite::params;

use super::{check_user_name, AccountError, Accounts};

/// What a logged-in user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// Everything: the config editor, camera passwords (after confirming), users.
    #[default]
    Admin,
    /// Sees every page and the API, except camera passwords and the config editor; changes
    /// nothing but their own password and time display.
    Viewer,
}

impl Role {
    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = AccountError;

    fn from_str(text: &str) -> Result<Role, AccountError> {
        match text {
            "admin" => Ok(Role::Admin),
            "viewer" => Ok(Role::Viewer),
            other => Err(AccountError::BadRole(other.to_string())),
        }
    }
}

/// Where pages show times for a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeDisplay {
    /// In the config's `timezone` (rendered by the server).
    #[default]
    Server,
    /// In the browser's own timezone (converted by the page's script).
    Browser,
}

impl TimeDisplay {
    pub fn as_str(self) -> &'static str {
        match self {
            TimeDisplay::Server => "server",
            TimeDisplay::Browser => "browser",
        }
    }

    /// A stored value; anything unknown reads as the default.
    pub fn parse(text: &str) -> TimeDisplay {
        match text {
            "browser" => TimeDisplay::Browser,
            _ => TimeDisplay::Server,
        }
    }
}

/// A listed user (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub role: Role,
    pub created_ms: i64,
    pub password_changed_ms: i64,
}

/// Leaves at least one admin: the row may change only if it is not an admin, or another admin
/// exists. Bound to the user's name as `?1`.
const KEEPS_AN_ADMIN: &str =
    "(role <> 'admin' OR (SELECT count(*) FROM web_users WHERE role = 'admin' AND name <> ?1) > 0)";

impl Accounts {
    /// Creates a user with `role`; fails if the name is taken.
    pub fn add_user_with_role(
        &self,
        name: &str,
        password: &str,
        role: Role,
        now_ms: i64,
    ) -> Result<i64, AccountError> {
        check_user_name(name)?;
        let hash = self.hash_password(password)?;
        let inserted = self.conn.execute(
            "INSERT INTO web_users (name, password_hash, created_ms, password_changed_ms, role)
             VALUES (?1, ?2, ?3, ?3, ?4) ON CONFLICT (name) DO NOTHING",
            params![name, hash, now_ms, role.as_str()],
        )?;
        if inserted == 0 {
            return Err(AccountError::UserExists(name.to_string()));
        }
        Ok(self.conn.last_insert_rowid())
    }

    /// Every user, by name.
    pub fn users(&self) -> Result<Vec<UserInfo>, AccountError> {
        let mut select = self
            .conn
            .prepare("SELECT name, role, created_ms, password_changed_ms FROM web_users ORDER BY name")?;
        let rows = select.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
            ))
        })?;
        let mut users = Vec::new();
        for row in rows {
            let (name, role, created_ms, password_changed_ms) = row?;
            users.push(UserInfo {
                name,
                role: role.parse()?,
                created_ms,
                password_changed_ms,
            });
        }
        Ok(users)
    }

    fn user_exists(&self, name: &str) -> Result<bool, AccountError> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM web_users WHERE name = ?1)",
            [name],
            |row| row.get(0),
        )?)
    }

    /// Changes a user's role. Demoting the last admin is refused; the user's sessions keep
    /// going with the new role from their next request.
    pub fn set_role(&self, name: &str, role: Role) -> Result<(), AccountError> {
        let updated = self.conn.execute(
            &format!("UPDATE web_users SET role = ?2 WHERE name = ?1 AND (?2 = 'admin' OR {KEEPS_AN_ADMIN})"),
            params![name, role.as_str()],
        )?;
        if updated == 0 {
            return Err(if self.user_exists(name)? {
                AccountError::LastAdmin
            } else {
                AccountError::NoSuchUser(name.to_string())
            });
        }
        Ok(())
    }

    /// Deletes a user and ends their sessions; the last admin cannot be removed.
    pub fn remove_user(&self, name: &str) -> Result<(), AccountError> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            &format!(
                "DELETE FROM web_sessions WHERE user_id = (SELECT id FROM web_users WHERE name = ?1 AND {KEEPS_AN_ADMIN})"
            ),
            [name],
        )?;
        let deleted = tx.execute(
            &format!("DELETE FROM web_users WHERE name = ?1 AND {KEEPS_AN_ADMIN}"),
            [name],
        )?;
        if deleted == 0 {
            return Err(if self.user_exists(name)? {
                AccountError::LastAdmin
            } else {
                AccountError::NoSuchUser(name.to_string())
            });
        }
        tx.commit()?;
        Ok(())
    }

    /// Changes a user's password and ends every session of theirs except `keep_session` (the
    /// browser that changed it, by its secret).
    pub fn change_password_keeping(
        &self,
        user_id: i64,
        password: &str,
        keep_session: &str,
        now_ms: i64,
    ) -> Result<(), AccountError> {
        let hash = self.hash_password(password)?;
        let tx = self.conn.unchecked_transaction()?;
        let updated = tx.execute(
            "UPDATE web_users SET password_hash = ?2, password_changed_ms = ?3 WHERE id = ?1",
            params![user_id, hash, now_ms],
        )?;
        if updated == 0 {
            return Err(AccountError::NoSuchUser(format!("#{user_id}")));
        }
        tx.execute(
            "DELETE FROM web_sessions WHERE user_id = ?1 AND id_hash <> ?2",
            params![user_id, super::secret_hash(keep_session)],
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn set_time_display(&self, user_id: i64, display: TimeDisplay) -> Result<(), AccountError> {
        self.conn.execute(
            "UPDATE web_users SET time_display = ?2 WHERE id = ?1",
            params![user_id, display.as_str()],
        )?;
        Ok(())
    }
}

/// A password for a reset by an administrator, shown to them once: 20 characters from an
/// alphabet without look-alikes (0/O, 1/l/I), about 110 bits.
pub fn generated_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::tests::open;
    use super::*;

    #[test]
    fn the_last_admin_can_be_neither_removed_nor_demoted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let accounts = open(&dir);
        accounts.add_user("root", "long enough", 0).expect("add");
        accounts
            .add_user_with_role("eve", "long enough", Role::Viewer, 0)
            .expect("add");
        assert!(matches!(
            accounts.set_role("root", Role::Viewer),
            Err(AccountError::LastAdmin)
        ));
        assert!(matches!(
            accounts.remove_user("root"),
            Err(AccountError::LastAdmin)
        ));
        assert!(matches!(
            accounts.remove_user("nobody"),
            Err(AccountError::NoSuchUser(_))
        ));
        accounts.set_role("eve", Role::Admin).expect("promote");
        accounts
            .set_role("root", Role::Viewer)
            .expect("demote, another admin exists");
        accounts.remove_user("root").expect("remove a viewer");
        let users = accounts.users().expect("list");
        assert_eq!(users.len(), 1);
        assert_eq!((users[0].name.as_str(), users[0].role), ("eve", Role::Admin));
    }

    #[test]
    fn users_made_before_roles_become_admins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("old.db");
        {
            // A database at schema version 4, as the previous release left it.
            let conn = rusqlite::Connection::open(&path).expect("open");
            for sql in &crate::store::schema::MIGRATIONS[..4] {
                conn.execute_batch(sql).expect("migration");
            }
            conn.pragma_update(None, "user_version", 4).expect("version");
            conn.execute(
                "INSERT INTO web_users (name, password_hash, created_ms, password_changed_ms) VALUES ('old', 'x', 0, 0)",
                [],
            )
            .expect("user");
        }
        let accounts = Accounts::open(&path).expect("migrates");
        let users = accounts.users().expect("list");
        assert_eq!((users[0].name.as_str(), users[0].role), ("old", Role::Admin));
    }

    #[test]
    fn generated_passwords_are_long_and_differ() {
        let one = generated_password();
        assert_eq!(one.chars().count(), 20);
        assert_ne!(one, generated_password());
    }
}
