//! The users table: registration (with the first-user-is-admin claim), look-ups and
//! updates.

use std::{fmt, time::SystemTime};

use portcullis_sql::sqlx;

use super::{Db, is_unique_violation, micros, new_id};

/// A registered user.
#[derive(Clone)]
pub(crate) struct User {
    pub(crate) id: String,
    pub(crate) email: String,
    pub(crate) name: Option<String>,
    pub(crate) password_hash: String,
    pub(crate) roles: Vec<String>,
    pub(crate) email_verified: bool,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("roles", &self.roles)
            .field("email_verified", &self.email_verified)
            .finish_non_exhaustive()
    }
}

/// What registering found.
#[derive(Debug)]
pub(crate) enum Registered {
    /// A new account.
    Created(User),
    /// The address was taken; the existing account is returned (to notify its owner).
    Duplicate(User),
}

/// The users table.
#[derive(Clone, Debug)]
pub(crate) struct Users {
    db: Db,
}

const USER_COLUMNS: &str = "id, email, name, password_hash, roles, email_verified";

impl Users {
    pub(crate) fn new(db: Db) -> Self {
        Self { db }
    }

    /// Inserts a user. Without `admin_email`, the first user ever registered gets the
    /// `admin` role (the claim "first user" is a row in `quickstart_meta` inserted in
    /// the same transaction, so two concurrent first registrations cannot both become
    /// admin). With it, nobody becomes admin here: the owner of that address does
    /// when they verify it ([`set_email_verified`](Self::set_email_verified)).
    pub(crate) async fn register(
        &self,
        email: &str,
        name: Option<&str>,
        password_hash: &str,
        admin_email: Option<&str>,
    ) -> Result<Registered, sqlx::Error> {
        let id = new_id("usr_");
        let key = email.to_lowercase();
        let created = SystemTime::now();
        let inserted: Result<bool, sqlx::Error> = on_db!(&self.db, |pool| async {
            let begin = match &self.db {
                Db::Sqlite(_) => "BEGIN IMMEDIATE",
                Db::Postgres(_) => "BEGIN",
            };
            let mut tx = pool.begin_with(begin).await?;
            let result = sqlx::query(
                "INSERT INTO quickstart_users \
                 (id, email, email_key, name, password_hash, roles, email_verified, created) \
                 VALUES ($1, $2, $3, $4, $5, 'user', 0, $6)",
            )
            .bind(&id)
            .bind(email)
            .bind(&key)
            .bind(name)
            .bind(password_hash)
            .bind(micros(created))
            .execute(&mut *tx)
            .await;
            match result {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => return Ok(false),
                Err(e) => return Err(e),
            }
            let first = admin_email.is_none()
                && sqlx::query(
                    "INSERT INTO quickstart_meta (key, value) VALUES ('first_user', $1) \
                 ON CONFLICT (key) DO NOTHING",
                )
                .bind(&id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
            if first {
                sqlx::query("UPDATE quickstart_users SET roles = 'admin user' WHERE id = $1")
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(true)
        }
        .await);
        if inserted? {
            let user = self.find_by_id(&id).await?;
            user.map(Registered::Created)
                .ok_or_else(|| sqlx::Error::RowNotFound)
        } else {
            let user = self.find_by_email(email).await?;
            user.map(Registered::Duplicate)
                .ok_or_else(|| sqlx::Error::RowNotFound)
        }
    }

    /// The user with this address, case-insensitively.
    pub(crate) async fn find_by_email(&self, email: &str) -> Result<Option<User>, sqlx::Error> {
        let key = email.to_lowercase();
        let row: Option<UserRow> = on_db!(&self.db, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {USER_COLUMNS} FROM quickstart_users WHERE email_key = $1"
            )))
            .bind(&key)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row.map(user_from))
    }

    /// The user with this id.
    pub(crate) async fn find_by_id(&self, id: &str) -> Result<Option<User>, sqlx::Error> {
        let row: Option<UserRow> = on_db!(&self.db, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {USER_COLUMNS} FROM quickstart_users WHERE id = $1"
            )))
            .bind(id)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row.map(user_from))
    }

    /// Replaces the password hash (after a reset).
    pub(crate) async fn set_password(&self, id: &str, hash: &str) -> Result<(), sqlx::Error> {
        on_db!(&self.db, |pool| {
            sqlx::query("UPDATE quickstart_users SET password_hash = $2 WHERE id = $1")
                .bind(id)
                .bind(hash)
                .execute(pool)
                .await
                .map(drop)
        })
    }

    /// Replaces the hash only if it is still `old` (a rehash at login must never write
    /// an old password's hash over one a reset just stored).
    pub(crate) async fn rehash(&self, id: &str, old: &str, new: &str) -> Result<bool, sqlx::Error> {
        on_db!(&self.db, |pool| {
            sqlx::query(
                "UPDATE quickstart_users SET password_hash = $3 \
                 WHERE id = $1 AND password_hash = $2",
            )
            .bind(id)
            .bind(old)
            .bind(new)
            .execute(pool)
            .await
            .map(|r| r.rows_affected() == 1)
        })
    }

    /// Marks the address as verified, and makes its owner admin if it is
    /// `admin_email` (compared as stored: trimmed and lowercased), in one statement.
    pub(crate) async fn set_email_verified(
        &self,
        id: &str,
        admin_email: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        on_db!(&self.db, |pool| {
            sqlx::query(
                "UPDATE quickstart_users SET email_verified = 1, \
                 roles = CASE WHEN email_key = $2 THEN 'admin user' ELSE roles END \
                 WHERE id = $1",
            )
            .bind(id)
            .bind(admin_email)
            .execute(pool)
            .await
            .map(drop)
        })
    }

    /// How many users there are.
    pub(crate) async fn count(&self) -> Result<i64, sqlx::Error> {
        on_db!(&self.db, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM quickstart_users")
                .fetch_one(pool)
                .await
        })
    }
}

type UserRow = (String, String, Option<String>, String, String, i64);

fn user_from(row: UserRow) -> User {
    let (id, email, name, password_hash, roles, email_verified) = row;
    User {
        id,
        email,
        name,
        password_hash,
        roles: roles.split_whitespace().map(str::to_owned).collect(),
        email_verified: email_verified != 0,
    }
}
