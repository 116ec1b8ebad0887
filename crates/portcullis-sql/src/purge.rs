//! Deleting expired rows in bounded batches, once or periodically.

use std::time::{Duration, SystemTime};

use portcullis_core::internal::unix_micros;
use tokio::{task::JoinHandle, time::MissedTickBehavior};

use crate::{SqlDatabase, db::on_pool};

/// The most rows one purge statement deletes.
pub const PURGE_BATCH_SIZE: u64 = 1_000;

/// The most statements one purge pass runs per table: a pass deletes at most
/// `PURGE_BATCH_SIZE * PURGE_MAX_BATCHES` rows of a table, and the next pass goes on
/// where it stopped.
pub const PURGE_MAX_BATCHES: u32 = 10;

/// Refresh tokens whose family's absolute lifetime is over. A family's tokens never
/// outlive it, and used tokens must stay until then (or reuse goes unnoticed).
const DEAD_TOKENS: &str = "DELETE FROM portcullis_refresh_tokens WHERE hash IN (\
     SELECT t.hash FROM portcullis_refresh_tokens t \
     JOIN portcullis_refresh_families f ON f.family = t.family \
     WHERE f.expires_at <= $1 LIMIT $2)";

/// Expired families whose tokens are gone.
const DEAD_FAMILIES: &str = "DELETE FROM portcullis_refresh_families WHERE family IN (\
     SELECT f.family FROM portcullis_refresh_families f WHERE f.expires_at <= $1 \
     AND NOT EXISTS (SELECT 1 FROM portcullis_refresh_tokens t WHERE t.family = f.family) \
     LIMIT $2)";

const DEAD_ONE_TIME_TOKENS: &str = "DELETE FROM portcullis_one_time_tokens WHERE hash IN (\
     SELECT hash FROM portcullis_one_time_tokens WHERE expires_at <= $1 LIMIT $2)";

const DEAD_REVOCATIONS: &str = "DELETE FROM portcullis_revocations WHERE id IN (\
     SELECT id FROM portcullis_revocations WHERE keep_until <= $1 LIMIT $2)";

/// Runs `statement` (which deletes at most `$2` rows expired at `$1`) until it deletes
/// fewer than a batch, at most [`PURGE_MAX_BATCHES`] times. Each statement commits on
/// its own, so no lock is held between batches. Returns the rows deleted.
async fn in_batches(
    db: &SqlDatabase,
    statement: &'static str,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let mut deleted = 0;
    for _ in 0..PURGE_MAX_BATCHES {
        let batch = on_pool!(db, |pool, dialect| {
            sqlx::query(statement)
                .bind(now)
                .bind(PURGE_BATCH_SIZE as i64)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        deleted += batch;
        if batch < PURGE_BATCH_SIZE {
            break;
        }
    }
    Ok(deleted)
}

/// Deletes the tokens, then the families, whose absolute lifetime ended by `now`.
/// Returns the families deleted.
pub(crate) async fn refresh_families(
    db: &SqlDatabase,
    now: SystemTime,
) -> Result<u64, sqlx::Error> {
    let now = unix_micros(now);
    in_batches(db, DEAD_TOKENS, now).await?;
    in_batches(db, DEAD_FAMILIES, now).await
}

pub(crate) async fn one_time_tokens(db: &SqlDatabase, now: SystemTime) -> Result<u64, sqlx::Error> {
    in_batches(db, DEAD_ONE_TIME_TOKENS, unix_micros(now)).await
}

pub(crate) async fn revocations(db: &SqlDatabase, now: SystemTime) -> Result<u64, sqlx::Error> {
    in_batches(db, DEAD_REVOCATIONS, unix_micros(now)).await
}

impl SqlDatabase {
    /// One purge pass over every store's table: refresh families past their absolute
    /// lifetime (with their tokens), expired one-time tokens, and revocation rows past
    /// their keep-until time. Each table loses at most
    /// [`PURGE_BATCH_SIZE`]` * `[`PURGE_MAX_BATCHES`] rows per pass, in statements of
    /// at most [`PURGE_BATCH_SIZE`] rows; whatever remains goes in the next pass.
    /// Returns how many refresh families, one-time tokens and revocation rows were
    /// deleted, together.
    ///
    /// Session stamps are never purged: a stamp must outlive every family of its
    /// subject and every stamp read before it, and it is one small row per subject
    /// that ever ended its sessions.
    ///
    /// # Errors
    ///
    /// When the database fails (what was deleted before stays deleted).
    pub async fn purge_expired(&self, now: SystemTime) -> Result<u64, sqlx::Error> {
        let families = refresh_families(self, now).await?;
        let one_time = one_time_tokens(self, now).await?;
        let revocations = revocations(self, now).await?;
        Ok(families + one_time + revocations)
    }

    /// Spawns a task on the current Tokio runtime that calls
    /// [`purge_expired`](Self::purge_expired) with the system time every `period`,
    /// the first time at once. Failures are logged (target `portcullis::sql`) and the
    /// next tick tries again; the task never ends by itself.
    ///
    /// Keep the handle and [`abort`](JoinHandle::abort) it to stop purging (dropping
    /// the handle detaches the task, which then runs as long as the runtime does).
    /// With several instances on one database, running the purger on every instance is
    /// harmless (deletes are idempotent) but one is enough.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # use portcullis_sql::SqlDatabase;
    /// # async fn start(db: SqlDatabase) {
    /// let purger = db.spawn_purger(Duration::from_secs(600));
    /// // … at shutdown:
    /// purger.abort();
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// When called outside a Tokio runtime, or if `period` is zero.
    pub fn spawn_purger(&self, period: Duration) -> JoinHandle<()> {
        assert!(!period.is_zero(), "the purge period must not be zero");
        let db = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                match db.purge_expired(SystemTime::now()).await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::debug!(
                        target: "portcullis::sql",
                        deleted,
                        "purged expired rows"
                    ),
                    Err(error) => tracing::warn!(
                        target: "portcullis::sql",
                        %error,
                        "purging expired rows failed"
                    ),
                }
            }
        })
    }
}
