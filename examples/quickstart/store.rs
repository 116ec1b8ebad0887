//! The example's own tables, on the same pool as `portcullis-sql`'s: users, one-time
//! tokens (password reset, e-mail verification) and persisted revocations.
//!
//! Plain `sqlx::query` with `$n` parameters (both SQLite and PostgreSQL accept them),
//! no compile-time-checked macros, so building needs no database. Times are
//! microseconds since the Unix epoch in `BIGINT`, as in `portcullis-sql`.

use std::{
    fmt,
    path::Path,
    str::FromStr,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use portcullis_password::{ResetError, ResetRecord, ResetStore};
use portcullis_sql::{
    SqlDatabase,
    sqlx::{
        self, PgPool, SqlitePool,
        postgres::{PgConnectOptions, PgPoolOptions},
        sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions},
    },
};
use rand::RngCore;

/// One pool, SQLite or PostgreSQL. Cloning shares it.
#[derive(Clone)]
pub(crate) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool; compiled once per database.
macro_rules! on_db {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            Db::Sqlite($pool) => $body,
            Db::Postgres($pool) => $body,
        }
    };
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Db {
    /// Opens (creating if needed) the SQLite file at `path`.
    pub(crate) async fn sqlite(path: &Path) -> Result<Self, sqlx::Error> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        Ok(Self::Sqlite(pool))
    }

    /// Connects to PostgreSQL; with `schema`, creates it if missing and puts every
    /// table there (`search_path`).
    pub(crate) async fn postgres(url: &str, schema: Option<&str>) -> Result<Self, sqlx::Error> {
        let mut options = PgConnectOptions::from_str(url)?;
        if let Some(schema) = schema {
            // `schema` is validated as [a-z0-9_]+ by the configuration.
            let admin = PgPoolOptions::new()
                .max_connections(1)
                .connect_with(options.clone())
                .await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS {schema}"
            )))
            .execute(&admin)
            .await?;
            admin.close().await;
            options = options.options([("search_path", schema)]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        Ok(Self::Postgres(pool))
    }

    /// `"sqlite"` or `"postgres"`.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// The same pool for the `portcullis-sql` stores.
    pub(crate) fn portcullis(&self) -> SqlDatabase {
        match self {
            Self::Sqlite(pool) => SqlDatabase::sqlite(pool.clone()),
            Self::Postgres(pool) => SqlDatabase::postgres(pool.clone()),
        }
    }

    /// Creates the example's tables if they are missing. Idempotent; concurrent
    /// start-ups are serialized (advisory lock on PostgreSQL, the write lock on SQLite).
    pub(crate) async fn migrate(&self) -> Result<(), sqlx::Error> {
        on_db!(self, |pool| {
            let begin = match self {
                Self::Sqlite(_) => "BEGIN IMMEDIATE",
                Self::Postgres(_) => "BEGIN",
            };
            let mut tx = pool.begin_with(begin).await?;
            if matches!(self, Self::Postgres(_)) {
                sqlx::query("SELECT pg_advisory_xact_lock(7306216311642396)")
                    .execute(&mut *tx)
                    .await?;
            }
            for statement in SCHEMA {
                sqlx::query(*statement).execute(&mut *tx).await?;
            }
            tx.commit().await
        })
    }
}

const SCHEMA: &[&str] = &[
    // `email_key` is the lowercased address: uniqueness is case-insensitive on both
    // databases without collations or extensions; `email` keeps what the user typed.
    "CREATE TABLE IF NOT EXISTS quickstart_users (\
        id TEXT PRIMARY KEY, \
        email TEXT NOT NULL, \
        email_key TEXT NOT NULL UNIQUE, \
        name TEXT, \
        password_hash TEXT NOT NULL, \
        roles TEXT NOT NULL, \
        email_verified BIGINT NOT NULL DEFAULT 0, \
        created BIGINT NOT NULL)",
    // One-shot claims, such as "the first user became admin".
    "CREATE TABLE IF NOT EXISTS quickstart_meta (\
        key TEXT PRIMARY KEY, \
        value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS quickstart_one_time_tokens (\
        hash TEXT PRIMARY KEY, \
        subject TEXT NOT NULL, \
        purpose TEXT NOT NULL, \
        expires_at BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS quickstart_one_time_tokens_subject \
        ON quickstart_one_time_tokens (subject)",
    // Access-token revocations (denylisted `jti`s and per-subject cut-offs), so that
    // a logout survives a restart when Redis is not used.
    "CREATE TABLE IF NOT EXISTS quickstart_revocations (\
        id TEXT PRIMARY KEY, \
        subject TEXT NOT NULL, \
        issuer TEXT, \
        token_id TEXT, \
        cutoff BIGINT, \
        keep_until BIGINT NOT NULL)",
];

pub(crate) fn micros(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

pub(crate) fn from_micros(us: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(u64::try_from(us).unwrap_or(0))
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

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

    /// Inserts a user. The first user ever registered, or one whose address is
    /// `admin_email`, gets the `admin` role; the claim "first user" is a row in
    /// `quickstart_meta` inserted in the same transaction, so two concurrent first
    /// registrations cannot both become admin.
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
            let first = sqlx::query(
                "INSERT INTO quickstart_meta (key, value) VALUES ('first_user', $1) \
                 ON CONFLICT (key) DO NOTHING",
            )
            .bind(&id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if first || admin_email == Some(key.as_str()) {
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

    /// Replaces the password hash (after a reset, or a rehash at login).
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

    /// Marks the address as verified.
    pub(crate) async fn set_email_verified(&self, id: &str) -> Result<(), sqlx::Error> {
        on_db!(&self.db, |pool| {
            sqlx::query("UPDATE quickstart_users SET email_verified = 1 WHERE id = $1")
                .bind(id)
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

/// A random id with a readable prefix: 128 bits from the OS, base32-ish lowercase.
pub(crate) fn new_id(prefix: &str) -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let mut id = String::with_capacity(prefix.len() + 32);
    id.push_str(prefix);
    for b in bytes {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// Password-reset and e-mail-verification tokens in SQL (hashed; single use through
/// `DELETE … RETURNING`).
#[derive(Clone, Debug)]
pub(crate) struct SqlOneTimeTokens {
    db: Db,
}

impl SqlOneTimeTokens {
    pub(crate) fn new(db: Db) -> Self {
        Self { db }
    }

    /// Drops expired tokens.
    pub(crate) async fn purge_expired(&self) -> Result<u64, sqlx::Error> {
        on_db!(&self.db, |pool| {
            sqlx::query("DELETE FROM quickstart_one_time_tokens WHERE expires_at <= $1")
                .bind(micros(SystemTime::now()))
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        let text = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

fn store_error(e: sqlx::Error) -> ResetError {
    tracing::error!(target: "quickstart::store", error = %e, "one-time token store failed");
    ResetError::store("one-time token store failed")
}

impl ResetStore for SqlOneTimeTokens {
    async fn insert(&self, record: ResetRecord) -> Result<(), ResetError> {
        let result: Result<(), sqlx::Error> = on_db!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO quickstart_one_time_tokens (hash, subject, purpose, expires_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(hex(&record.hash))
            .bind(&record.subject)
            .bind(&record.purpose)
            .bind(micros(record.expires_at))
            .execute(pool)
            .await
            .map(drop)
        });
        result.map_err(store_error)
    }

    async fn take(&self, hash: &[u8; 32]) -> Result<Option<ResetRecord>, ResetError> {
        let row: Result<Option<(String, String, String, i64)>, sqlx::Error> =
            on_db!(&self.db, |pool| {
                sqlx::query_as(
                    "DELETE FROM quickstart_one_time_tokens WHERE hash = $1 \
                     RETURNING hash, subject, purpose, expires_at",
                )
                .bind(hex(hash))
                .fetch_optional(pool)
                .await
            });
        Ok(row
            .map_err(store_error)?
            .and_then(|(h, subject, purpose, exp)| {
                Some(ResetRecord {
                    hash: unhex32(&h)?,
                    subject,
                    purpose,
                    expires_at: from_micros(exp),
                })
            }))
    }

    async fn remove_subject(&self, subject: &str) -> Result<usize, ResetError> {
        let result: Result<u64, sqlx::Error> = on_db!(&self.db, |pool| {
            sqlx::query("DELETE FROM quickstart_one_time_tokens WHERE subject = $1")
                .bind(subject)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        });
        result
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
            .map_err(store_error)
    }
}

/// One persisted revocation.
#[derive(Debug)]
pub(crate) enum StoredRevocation {
    /// One access token, until `keep_until` (its `exp`).
    Token {
        issuer: Option<String>,
        token_id: String,
        subject: String,
        keep_until: SystemTime,
    },
    /// Every token of `subject` issued at or before `cutoff`.
    Subject { subject: String, cutoff: SystemTime },
}

/// The `quickstart_revocations` table.
#[derive(Clone, Debug)]
pub(crate) struct RevocationTable {
    db: Db,
}

impl RevocationTable {
    pub(crate) fn new(db: Db) -> Self {
        Self { db }
    }

    /// Records a denylisted token.
    pub(crate) async fn insert_token(
        &self,
        issuer: Option<&str>,
        token_id: &str,
        subject: &str,
        keep_until: SystemTime,
    ) -> Result<(), sqlx::Error> {
        on_db!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO quickstart_revocations (id, subject, issuer, token_id, cutoff, keep_until) \
                 VALUES ($1, $2, $3, $4, NULL, $5) ON CONFLICT (id) DO NOTHING",
            )
            .bind(format!("jti:{token_id}"))
            .bind(subject)
            .bind(issuer)
            .bind(token_id)
            .bind(micros(keep_until))
            .execute(pool)
            .await
            .map(drop)
        })
    }

    /// Records (or moves forward) a subject's cut-off.
    pub(crate) async fn upsert_cutoff(
        &self,
        subject: &str,
        cutoff: SystemTime,
        keep_until: SystemTime,
    ) -> Result<(), sqlx::Error> {
        on_db!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO quickstart_revocations (id, subject, issuer, token_id, cutoff, keep_until) \
                 VALUES ($1, $2, NULL, NULL, $3, $4) \
                 ON CONFLICT (id) DO UPDATE SET \
                   cutoff = CASE WHEN excluded.cutoff > quickstart_revocations.cutoff \
                                 THEN excluded.cutoff ELSE quickstart_revocations.cutoff END, \
                   keep_until = CASE WHEN excluded.keep_until > quickstart_revocations.keep_until \
                                 THEN excluded.keep_until ELSE quickstart_revocations.keep_until END",
            )
            .bind(format!("sub:{subject}"))
            .bind(subject)
            .bind(micros(cutoff))
            .bind(micros(keep_until))
            .execute(pool)
            .await
            .map(drop)
        })
    }

    /// Drops entries past their keep-until time and returns the rest.
    pub(crate) async fn load_live(&self) -> Result<Vec<StoredRevocation>, sqlx::Error> {
        let now = micros(SystemTime::now());
        type RevocationRow = (String, Option<String>, Option<String>, Option<i64>, i64);
        let rows: Vec<RevocationRow> = on_db!(&self.db, |pool| async {
            sqlx::query("DELETE FROM quickstart_revocations WHERE keep_until <= $1")
                .bind(now)
                .execute(pool)
                .await?;
            sqlx::query_as(
                "SELECT subject, issuer, token_id, cutoff, keep_until FROM quickstart_revocations",
            )
            .fetch_all(pool)
            .await
        }
        .await)?;
        Ok(rows
            .into_iter()
            .filter_map(|(subject, issuer, token_id, cutoff, keep_until)| {
                match (token_id, cutoff) {
                    (Some(token_id), _) => Some(StoredRevocation::Token {
                        issuer,
                        token_id,
                        subject,
                        keep_until: from_micros(keep_until),
                    }),
                    (None, Some(cutoff)) => Some(StoredRevocation::Subject {
                        subject,
                        cutoff: from_micros(cutoff),
                    }),
                    (None, None) => None,
                }
            })
            .collect())
    }
}
