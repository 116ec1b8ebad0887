//! [`RedisRefreshStore`]: refresh-token families in Redis, rotated by Lua scripts.

mod layout;
mod scripts;

use std::{fmt, sync::Arc, time::Duration};

use portcullis_core::internal::{from_hex, hex, unix_micros};
use portcullis_tokens::{
    Error as TokenError, ErrorKind as TokenErrorKind, RefreshRecord, RefreshStore, RotateOutcome,
    Rotation, SessionStamp, TokenHash,
    refresh::{DEFAULT_ABSOLUTE_LIFETIME, DEFAULT_MAX_FAMILIES_PER_SUBJECT},
};
use redis::{RedisError, Script};

use self::layout::{SubjectKeys, expiry_ms, find_record, rotate_outcome, set_index, tag};
use crate::{Error, ErrorKind, FailurePolicy, Redis, client::duration_micros};

// Layout. `T` is the subject's tag: hex of the first 16 bytes of SHA-256(subject).
//   {prefix}rt:{T}:n         string  the session stamp (absent = 0)
//   {prefix}rt:{T}:f         hash    family -> "R FEXP CLIENT" (see scripts.rs)
//   {prefix}rt:{T}:t:{hash}  hash    f=family s=subject i=issued e=expires,
//                                    once used: u=used_at n=successor z=sealed (hex)
//   {prefix}rt:tok:{hash}    string  T: which subject's slot holds the token
//   {prefix}rt:fam:{family}  string  T: which subject's slot holds the family
// Everything expires with the family (the families hash and the stamp with the
// subject's longest family, the stamp at the earliest after the stamp retention).
// The two index entries are written once and never change; every decision runs in
// one script over the `{T}` keys.

struct Scripts {
    create: Script,
    rotate: Script,
    find: Script,
    revoke_family: Script,
    end_sessions: Script,
}

#[derive(Clone)]
struct Inner {
    redis: Redis,
    timeout: Duration,
    max_per_subject: usize,
    stamp_retention: Duration,
    scripts: Arc<Scripts>,
}

/// A [`RefreshStore`] in Redis: families and session stamps shared by every
/// instance.
///
/// Every decision is one Lua script, so it runs as one atomic step on the server:
///
/// - of many concurrent rotations presenting one token, exactly one sees it live;
///   the others see it used and either get the same successor back (same client,
///   within the reuse interval) or revoke the family (reuse detection), as the
///   [`RefreshStore`] contract requires;
/// - [`create`](RefreshStore::create) compares the subject's [`SessionStamp`] and
///   writes the family in the same script, and
///   [`end_sessions`](RefreshStore::end_sessions) moves the stamp and revokes every
///   family of the subject in one script: a login that read the stamp before the
///   sessions ended never gets a family.
///
/// Only token hashes are stored, and the successor kept for a repeat is sealed for
/// the holder of its predecessor ([`SealedToken`](portcullis_tokens::SealedToken)):
/// Redis cannot open it.
///
/// # Memory
///
/// Every key expires: tokens and families with the family's absolute lifetime
/// (`PEXPIREAT`), a subject's stamp no sooner than [`stamp_retention`] after it last
/// moved and never before the families it admitted. A new login forgets the
/// subject's families past their lifetime, and at [`max_families_per_subject`] (100
/// by default) its oldest one, so no purge task is needed.
///
/// # Session stamps
///
/// Ending the sessions sets the stamp to `max(stamp + 1, server time in µs)` rather
/// than incrementing it, so a stamp that expired (and reads as 0 again) can never
/// come back to a value some login read before: a login that reads 0 after the
/// expiry can only race a later end of sessions, which makes it non-zero and refuses
/// that login. Keep the stamp retention at least as long as the absolute family
/// lifetime (the default is [`DEFAULT_ABSOLUTE_LIFETIME`]).
///
/// # Failures
///
/// Every call has a timeout (default 250 ms) and fails closed: a Redis failure is an
/// [`ErrorKind::Store`](portcullis_tokens::ErrorKind::Store) error, which a token
/// endpoint answers with a server error, never with a token. A rotation whose answer
/// was lost can be retried within the reuse interval and gets the same successor.
///
/// # Redis Cluster
///
/// The keys a decision touches carry the subject's hash tag `{…}`, so each script
/// runs in one slot. A token or family is found through a small index entry (its
/// subject's tag, written once) read before the script. One key is not passed in
/// `KEYS`: the successor a repeat hands back, named by the used token; it shares the
/// tag, so it lives in the same slot. The connection here is to one server (or a
/// primary): running on a cluster also needs a cluster connection.
///
/// ```no_run
/// use portcullis_redis::{Redis, RedisRefreshStore};
/// use portcullis_tokens::RefreshTokens;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let redis = Redis::open("redis://127.0.0.1:6379")?;
/// let refresh = RefreshTokens::new(RedisRefreshStore::new(&redis));
/// let first = refresh.issue("alice", "web", refresh.stamp("alice").await?).await?;
/// let second = refresh.rotate(first.token.as_str(), "web").await?;
/// assert_eq!(first.record.family, second.record.family);
/// # Ok(()) }
/// ```
///
/// Cloning shares the connection.
///
/// [`stamp_retention`]: Self::stamp_retention
/// [`max_families_per_subject`]: Self::max_families_per_subject
#[derive(Clone)]
pub struct RedisRefreshStore {
    inner: Arc<Inner>,
}

impl RedisRefreshStore {
    /// A store on `redis`, under `{prefix}rt:`.
    pub fn new(redis: &Redis) -> Self {
        Self {
            inner: Arc::new(Inner {
                redis: redis.clone(),
                timeout: redis.timeout(),
                max_per_subject: DEFAULT_MAX_FAMILIES_PER_SUBJECT,
                stamp_retention: DEFAULT_ABSOLUTE_LIFETIME,
                scripts: Arc::new(Scripts {
                    create: Script::new(scripts::CREATE),
                    rotate: Script::new(scripts::ROTATE),
                    find: Script::new(scripts::FIND),
                    revoke_family: Script::new(scripts::REVOKE_FAMILY),
                    end_sessions: Script::new(scripts::END_SESSIONS),
                }),
            }),
        }
    }

    fn configure(mut self, change: impl FnOnce(&mut Inner)) -> Self {
        change(Arc::make_mut(&mut self.inner));
        self
    }

    /// Sets the time limit of one call (default: the [`Redis`] handle's).
    #[must_use]
    pub fn timeout(self, timeout: Duration) -> Self {
        self.configure(|i| i.timeout = timeout)
    }

    /// Caps the families one subject holds (default
    /// [`DEFAULT_MAX_FAMILIES_PER_SUBJECT`], at least 1): a login past it ends the
    /// subject's oldest session, as the memory store does.
    #[must_use]
    pub fn max_families_per_subject(self, max: usize) -> Self {
        self.configure(|i| i.max_per_subject = max.max(1))
    }

    /// How long a subject's stamp is kept after its sessions were last ended
    /// (default [`DEFAULT_ABSOLUTE_LIFETIME`], 30 days). Set it to at least the
    /// absolute family lifetime of the [`RefreshTokens`](portcullis_tokens::RefreshTokens)
    /// using this store.
    #[must_use]
    pub fn stamp_retention(self, retention: Duration) -> Self {
        self.configure(|i| i.stamp_retention = retention)
    }

    fn subject_keys(&self, subject: &str) -> SubjectKeys {
        SubjectKeys::new(&self.inner.redis, &tag(subject))
    }

    fn token_index(&self, hash: &TokenHash) -> Vec<u8> {
        self.inner.redis.key(&[b"rt:tok:", hex(&hash.0).as_bytes()])
    }

    fn family_index(&self, family: &str) -> Vec<u8> {
        self.inner.redis.key(&[b"rt:fam:", family.as_bytes()])
    }

    /// Runs `call` (one or more round trips) within the timeout.
    async fn call<T>(
        &self,
        call: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, TokenError> {
        match self.inner.redis.call(self.inner.timeout, call).await {
            Ok(value) => Ok(value),
            Err(e) => Err(self.failed(e)),
        }
    }

    fn failed(&self, e: Error) -> TokenError {
        self.inner
            .redis
            .report("refresh_tokens", FailurePolicy::Closed, &e);
        TokenError::store(e)
    }

    fn bad_reply(&self) -> TokenError {
        self.failed(Error::new(ErrorKind::Reply))
    }
}

impl RefreshStore for RedisRefreshStore {
    async fn stamp(&self, subject: &str) -> Result<SessionStamp, TokenError> {
        let key = self.subject_keys(subject).stamp;
        let mut conn = self.inner.redis.conn();
        let stamp: Option<String> = self
            .call(async move { redis::cmd("GET").arg(key).query_async(&mut conn).await })
            .await?;
        match stamp {
            None => Ok(SessionStamp::default()),
            Some(s) => s.parse().map(SessionStamp).map_err(|_| self.bad_reply()),
        }
    }

    async fn create(&self, record: RefreshRecord, stamp: SessionStamp) -> Result<(), TokenError> {
        let keys = self.subject_keys(&record.subject);
        let family_exp = unix_micros(record.family_expires_at);
        let mut invocation = self.inner.scripts.create.prepare_invoke();
        invocation
            .key(&keys.stamp)
            .key(&keys.families)
            .key(keys.token(&record.hash))
            .arg(stamp.0)
            .arg(&record.family)
            .arg(&record.subject)
            .arg(&record.client_id)
            .arg(unix_micros(record.issued_at))
            .arg(unix_micros(record.expires_at))
            .arg(family_exp)
            .arg(expiry_ms(family_exp))
            .arg(self.inner.max_per_subject);
        let fexp = family_exp.to_string();
        let token_index = self.token_index(&record.hash);
        let writes = [
            set_index(&token_index, &keys.tag, &fexp),
            set_index(&self.family_index(&record.family), &keys.tag, &fexp),
        ];
        let mut conn = self.inner.redis.conn();
        // The two index entries live in other slots than the subject's keys (and than
        // each other, on a cluster): sent side by side, not as one pipeline.
        let sets = writes.into_iter().flatten().map(|cmd| {
            let mut conn = conn.clone();
            async move { cmd.query_async::<redis::Value>(&mut conn).await }
        });
        let sets = futures_util::future::try_join_all(sets);
        let outcome: String = self
            .call(async move {
                let outcome: String = invocation.invoke_async(&mut conn).await?;
                if outcome != "created" {
                    // A refused login leaves no index entry behind.
                    return Ok(outcome);
                }
                let written = sets.await?;
                // A token hash or family id already indexed for another subject: the
                // token is never handed out, the orphan expires with its family, and
                // its own index entry goes.
                let collided = written.len() != 2 || written.contains(&redis::Value::Nil);
                if collided && written.first() != Some(&redis::Value::Nil) {
                    redis::cmd("DEL")
                        .arg(&token_index)
                        .query_async::<()>(&mut conn)
                        .await?;
                }
                Ok(if collided { "duplicate" } else { "created" }.to_owned())
            })
            .await?;
        match outcome.as_str() {
            "created" => Ok(()),
            "ended" => Err(TokenError::new(
                TokenErrorKind::SessionsEnded,
                "the subject's sessions were ended while this login was under way",
            )),
            "duplicate" => Err(TokenError::new(
                TokenErrorKind::Store,
                "duplicate refresh token or family",
            )),
            _ => Err(self.bad_reply()),
        }
    }

    async fn rotate(&self, rotation: Rotation<'_>) -> Result<RotateOutcome, TokenError> {
        let index = self.token_index(rotation.presented);
        let successor_index = self.token_index(rotation.successor);
        let redis = self.inner.redis.clone();
        let script = self.inner.scripts.rotate.clone();
        let args = (
            rotation.client_id.to_owned(),
            unix_micros(rotation.now),
            duration_micros(rotation.idle_timeout),
            duration_micros(rotation.reuse_interval),
            hex(&rotation.successor.0),
            hex(&rotation.sealed_successor.0),
        );
        let (presented, successor) = (*rotation.presented, *rotation.successor);
        let mut conn = self.inner.redis.conn();
        let reply: Vec<String> = self
            .call(async move {
                let tag: Option<String> =
                    redis::cmd("GET").arg(&index).query_async(&mut conn).await?;
                let Some(tag) = tag else {
                    return Ok(vec!["unknown".to_owned()]);
                };
                let keys = SubjectKeys::new(&redis, &tag);
                let reply: Vec<String> = script
                    .key(keys.token(&presented))
                    .key(&keys.families)
                    .key(keys.token(&successor))
                    .arg(&args.0)
                    .arg(args.1)
                    .arg(args.2)
                    .arg(args.3)
                    .arg(&args.4)
                    .arg(&args.5)
                    .arg(&keys.token_prefix)
                    .invoke_async(&mut conn)
                    .await?;
                // Index the successor: a new one, or (on a repeat) again, in case the
                // first rotation's answer and index write were lost.
                let index = match &reply[..] {
                    [kind, .., fexp] if kind == "rotated" => {
                        set_index(&successor_index, &tag, fexp)
                    }
                    [kind, _, _, _, _, _, fexp, next, _] if kind == "repeated" => {
                        from_hex::<32>(next).and_then(|next| {
                            let index = redis.key(&[b"rt:tok:", hex(&next).as_bytes()]);
                            set_index(&index, &tag, fexp)
                        })
                    }
                    _ => None,
                };
                if let Some(cmd) = index {
                    cmd.query_async::<()>(&mut conn).await?;
                }
                Ok(reply)
            })
            .await?;
        rotate_outcome(&rotation, &reply).map_err(|e| e.unwrap_or_else(|| self.bad_reply()))
    }

    async fn find(&self, hash: &TokenHash) -> Result<Option<RefreshRecord>, TokenError> {
        let index = self.token_index(hash);
        let (redis, script, hash) = (
            self.inner.redis.clone(),
            self.inner.scripts.find.clone(),
            *hash,
        );
        let mut conn = self.inner.redis.conn();
        let reply: Vec<String> = self
            .call(async move {
                let tag: Option<String> =
                    redis::cmd("GET").arg(&index).query_async(&mut conn).await?;
                let Some(tag) = tag else {
                    return Ok(Vec::new());
                };
                let keys = SubjectKeys::new(&redis, &tag);
                script
                    .key(keys.token(&hash))
                    .key(&keys.families)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        match find_record(hash, &reply) {
            Some(record) => Ok(record),
            None => Err(self.bad_reply()),
        }
    }

    async fn revoke_family(&self, family: &str) -> Result<bool, TokenError> {
        let index = self.family_index(family);
        let (redis, script, family) = (
            self.inner.redis.clone(),
            self.inner.scripts.revoke_family.clone(),
            family.to_owned(),
        );
        let mut conn = self.inner.redis.conn();
        let revoked: i64 = self
            .call(async move {
                let tag: Option<String> =
                    redis::cmd("GET").arg(&index).query_async(&mut conn).await?;
                let Some(tag) = tag else { return Ok(0) };
                script
                    .key(SubjectKeys::new(&redis, &tag).families)
                    .arg(family)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        Ok(revoked == 1)
    }

    async fn end_sessions(&self, subject: &str) -> Result<Vec<String>, TokenError> {
        let keys = self.subject_keys(subject);
        let retention_ms = duration_micros(self.inner.stamp_retention) / 1000;
        let mut invocation = self.inner.scripts.end_sessions.prepare_invoke();
        invocation
            .key(&keys.stamp)
            .key(&keys.families)
            .arg(retention_ms);
        let mut conn = self.inner.redis.conn();
        self.call(async move { invocation.invoke_async(&mut conn).await })
            .await
    }
}

impl fmt::Debug for RedisRefreshStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRefreshStore")
            .field("redis", &self.inner.redis)
            .field("timeout", &self.inner.timeout)
            .field("max_families_per_subject", &self.inner.max_per_subject)
            .field("stamp_retention", &self.inner.stamp_retention)
            .finish()
    }
}
