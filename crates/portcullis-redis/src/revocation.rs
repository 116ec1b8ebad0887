//! [`RedisRevocation`]: access-token revocation shared by every instance, checked in a
//! local view that Redis keeps fresh.

use std::{
    collections::HashMap,
    fmt,
    future::Future,
    pin::Pin,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime},
};

use futures_util::StreamExt;
use portcullis_core::{
    AuthError, MaybeReady, Revocation, RevocationQuery,
    internal::{from_unix_micros, unix_micros, unix_secs},
};
use portcullis_tokens::{
    Clock, DEFAULT_CUTOFF_RETENTION, DEFAULT_MAX_DENYLIST, Error as TokenError, MemoryRevocation,
    RevocationStore, RevokedToken, SystemClock,
};
use redis::Script;
use tokio::{sync::Notify, task::JoinHandle, time::Instant};

use crate::{Error, ErrorKind, FailurePolicy, Redis, client::duration_micros};

/// How stale the local view may be by default before checks fail closed: one second.
pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(1);

// Layout, every key under the hash tag `{rev}` (one slot on Redis Cluster):
//   {prefix}{rev}:e  hash    entry -> "<a> <keep until, Unix ms> <rest>"
//   {prefix}{rev}:x  zset    entry, scored by its keep-until (ms), to forget old ones
//   {prefix}{rev}:n  string  the sequence number of the last write
// and the pub/sub channel {prefix}{rev}:c, on which every write is announced as
// "<seq> <entry length> <entry><value>".
//
// Entries: `j<scope><jti>` a denied token (a = its exp in Unix ms, rest = subject),
// `s<scope><subject>` a cut-off (a = the last refused second, rest empty), where the
// scope is `-` (every issuer) or `<issuer length>:<issuer>`.

/// Writes one entry, merged with what is there (each number only moves forward),
/// forgets a few entries whose time is over, and announces the write under the next
/// sequence number, which it returns (-1: the entry's time is over already).
///
/// KEYS: entries, times, sequence. ARGV: entry, a, keep until (ms), rest, channel.
/// A sequence starts at the server's clock in µs, so one that a restart without
/// persistence lost restarts above every number it handed out before.
const WRITE: &str = r"
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now_ms, 'LIMIT', 0, 64)
if #gone > 0 then
  redis.call('HDEL', KEYS[1], unpack(gone))
  redis.call('ZREM', KEYS[2], unpack(gone))
end
local a, keep = tonumber(ARGV[2]), tonumber(ARGV[3])
if keep <= now_ms then return -1 end
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local ca, ck = string.match(current, '^(%-?%d+) (%d+) ')
  if ca and tonumber(ca) > a then a = tonumber(ca) end
  if ck and tonumber(ck) > keep then keep = tonumber(ck) end
end
if redis.call('EXISTS', KEYS[3]) == 0 then
  redis.call('SET', KEYS[3], clock[1] .. string.format('%06d', tonumber(clock[2])))
end
local seq = redis.call('INCR', KEYS[3])
local value = string.format('%.0f %.0f ', a, keep) .. ARGV[4]
redis.call('HSET', KEYS[1], ARGV[1], value)
redis.call('ZADD', KEYS[2], keep, ARGV[1])
redis.call('PUBLISH', ARGV[5], seq .. ' ' .. #ARGV[1] .. ' ' .. ARGV[1] .. value)
return seq
";

/// Every entry and the sequence number they are current at, read at one instant.
/// KEYS: entries, sequence.
const SNAPSHOT: &str = r"
return {redis.call('GET', KEYS[2]) or '0', redis.call('HGETALL', KEYS[1])}
";

/// The smallest size of the view's copy of the entries at which it drops old ones.
const SWEEP_FLOOR: usize = 1024;

/// One entry as the view keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    a: i64,
    keep_ms: i64,
    rest: Box<str>,
}

impl Entry {
    fn parse(value: &str) -> Option<Self> {
        let mut parts = value.splitn(3, ' ');
        Some(Self {
            a: parts.next()?.parse().ok()?,
            keep_ms: parts.next()?.parse().ok()?,
            rest: parts.next()?.into(),
        })
    }

    fn merge(&mut self, other: &Self) {
        self.a = self.a.max(other.a);
        self.keep_ms = self.keep_ms.max(other.keep_ms);
    }
}

/// What an entry's name says: kind, issuer (`None`: every issuer) and the `jti` or
/// subject.
fn parse_name(name: &str) -> Option<(u8, Option<&str>, &str)> {
    let kind = *name.as_bytes().first()?;
    let rest = &name[1..];
    if let Some(id) = rest.strip_prefix('-') {
        return Some((kind, None, id));
    }
    let (len, rest) = rest.split_once(':')?;
    let len: usize = len.parse().ok()?;
    Some((kind, Some(rest.get(..len)?), rest.get(len..)?))
}

/// `<kind><scope><id>`: the length makes the (issuer, id) pair unambiguous whatever
/// bytes either holds.
fn entry_name(kind: char, issuer: Option<&str>, id: &str) -> String {
    match issuer {
        None => format!("{kind}-{id}"),
        Some(issuer) => format!("{kind}{}:{issuer}{id}", issuer.len()),
    }
}

/// One revocation, as handed to a durable store.
enum Write<'a> {
    Token(RevokedToken<'a>),
    Subject(Option<&'a str>, &'a str, SystemTime),
}

type WriteFuture<'a> = Pin<Box<dyn Future<Output = Result<(), TokenError>> + Send + 'a>>;

/// A durable store behind the view (see [`RedisRevocation::durable_store`]).
trait Durable: Send + Sync + 'static {
    fn write<'a>(&'a self, write: Write<'a>) -> WriteFuture<'a>;
    fn check_durably(&self, query: &RevocationQuery<'_>) -> MaybeReady<Result<(), AuthError>>;
}

impl<S: RevocationStore + Revocation> Durable for S {
    fn write<'a>(&'a self, write: Write<'a>) -> WriteFuture<'a> {
        match write {
            Write::Token(token) => Box::pin(self.revoke_token(token)),
            Write::Subject(None, subject, cutoff) => Box::pin(self.revoke_subject(subject, cutoff)),
            Write::Subject(Some(issuer), subject, cutoff) => {
                Box::pin(self.revoke_issuer_subject(issuer, subject, cutoff))
            }
        }
    }

    fn check_durably(&self, query: &RevocationQuery<'_>) -> MaybeReady<Result<(), AuthError>> {
        self.check(query)
    }
}

/// Where a message stands against what the view applied.
enum Arrival {
    /// The next write: applied.
    Next(u64),
    /// Already in the view.
    Old,
    /// One or more writes were missed: resync.
    Gap,
}

struct Inner {
    settings: Settings,
    entries: Vec<u8>,
    times: Vec<u8>,
    sequence: Vec<u8>,
    channel: Vec<u8>,
    write: Script,
    snapshot: Script,
    /// The view the checks read.
    memory: MemoryRevocation,
    /// The same entries by name, as Redis holds them, to write back what Redis lost.
    known: Mutex<HashMap<String, Entry>>,
    /// The size of `known` at which entries whose time is over are dropped.
    sweep_at: AtomicUsize,
    /// Until when (µs after `origin`) the view is fresh enough; 0 before the first sync.
    fresh_until: AtomicU64,
    origin: Instant,
    /// The background task, once started (started again if its runtime ended it).
    task: Mutex<Option<JoinHandle<()>>>,
    synced: Notify,
}

/// Access-token revocation shared through Redis and checked **in memory**, with the
/// semantics of [`MemoryRevocation`], by every instance:
///
/// - **`jti` denylist**: [`revoke_token`](RevocationStore::revoke_token) refuses one
///   token (by `jti`, and by `iss` when both the entry and the token have one; a check
///   that knows no issuer is refused, failing closed) until its `exp`.
/// - **Subject cut-off**: [`revoke_subject`](RevocationStore::revoke_subject) refuses
///   every token of the subject issued at or before the cut-off second, at every
///   issuer; [`revoke_issuer_subject`](RevocationStore::revoke_issuer_subject) at one
///   issuer only (a token without `iat` for such a subject is refused too). Cut-offs
///   only ever move forward and are kept for the retention (default
///   [`DEFAULT_CUTOFF_RETENTION`]).
///
/// # How it stays fresh
///
/// [`check`](Revocation::check) never does I/O: it reads a local view and answers
/// [`MaybeReady::Ready`]. A background task (started on first use, ended when the
/// last clone is dropped) keeps the view current:
///
/// - each revocation is one Lua script that writes the entry (all entries live in one
///   Redis hash under the hash tag `{rev}`), numbers the write and publishes it on a
///   pub/sub channel; the instance that revoked applies it to its own view at once,
///   the others when the message arrives (normally within milliseconds);
/// - on every (re)connection the task subscribes, then reads every entry (a **full
///   resync**), so nothing published while it was away is missed;
/// - every quarter of the staleness bound it reads the last write's number: when the
///   view holds every write up to it, the view counts as fresh for the bound from the
///   moment of that read. A missed message (a gap in the numbers, or a view still
///   behind one period later) triggers a full resync.
///
/// # Staleness and outages
///
/// A revocation committed at time *t* is honoured by every instance whose checks
/// still pass at *t* + [`max_staleness`](Self::max_staleness) (default
/// [`DEFAULT_MAX_STALENESS`], one second): a view that could not confirm it is current
/// within the bound stops answering from memory. While Redis is unreachable the view
/// keeps answering until the bound runs out; then the [`FailurePolicy`] decides:
/// **closed** by default (the request gets `503`, `AuthError::unavailable`), or
/// [open](FailurePolicy::Open) (keep answering from the last view, which then misses
/// revocations made meanwhile). Before the first sync the view is not fresh either;
/// [`synced`](Self::synced) waits for it at start-up.
///
/// # Durability
///
/// Every view holds every live entry. After a resync, an instance writes back the
/// entries it knows and Redis lost (Redis restarted without persistence, a failover
/// to a replica that missed writes): as long as one instance stays up across the
/// Redis restart, no revocation is lost and a new instance loads them all. To survive
/// Redis *and* every instance restarting together, give the view a
/// [durable store](Self::durable_store) (`portcullis-sql`'s `SqlRevocation`: the
/// database is then the source of truth and Redis the fast path between instances),
/// or run Redis with AOF persistence.
///
/// # Memory
///
/// Denied `jti`s are kept until the token's `exp`, cut-offs for the retention, in
/// Redis and in each view (twice there: the view and its copy to write back). The
/// view's denylist is capped like [`MemoryRevocation`]'s
/// ([`max_denylist`](Self::max_denylist), default [`DEFAULT_MAX_DENYLIST`]): when full,
/// a further revocation refuses the whole subject, failing closed.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use portcullis_core::{MaybeReady, Revocation, RevocationQuery};
/// use portcullis_redis::{Redis, RedisRevocation};
/// use portcullis_tokens::RevocationStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let Ok(url) = std::env::var("REDIS_URL") else {
/// #     assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "REDIS_URL must be set in CI");
/// #     return Ok(());
/// # };
/// # let prefix = format!("doctest:{}:", rand::random::<u64>());
/// let redis = Redis::open(&url)?.with_prefix(&prefix);
/// let revocation = RedisRevocation::new(&redis);
/// revocation.synced(Duration::from_secs(5)).await?;
///
/// revocation.revoke_subject("alice", SystemTime::now()).await?;
/// let query = RevocationQuery {
///     issuer: None,
///     subject: "alice",
///     token_id: Some("t1"),
///     issued_at: Some(SystemTime::now() - Duration::from_secs(60)),
/// };
/// assert!(matches!(revocation.check(&query), MaybeReady::Ready(Err(_))));
/// # Ok(()) }
/// ```
///
/// Cloning shares the view, the configuration and the connection.
#[derive(Clone)]
pub struct RedisRevocation {
    inner: Arc<Inner>,
}

/// The settings a view is built from.
#[derive(Clone)]
struct Settings {
    redis: Redis,
    timeout: Duration,
    policy: FailurePolicy,
    retention: Duration,
    staleness: Duration,
    max_denylist: usize,
    clock: Arc<dyn Clock>,
    durable: Option<Arc<dyn Durable>>,
}

impl RedisRevocation {
    /// Revocation on `redis`, failing closed after [`DEFAULT_MAX_STALENESS`], with the
    /// system clock. The background task starts on first use, inside a Tokio runtime.
    pub fn new(redis: &Redis) -> Self {
        Self::build(Settings {
            redis: redis.clone(),
            timeout: redis.timeout(),
            policy: FailurePolicy::Closed,
            retention: DEFAULT_CUTOFF_RETENTION,
            staleness: DEFAULT_MAX_STALENESS,
            max_denylist: DEFAULT_MAX_DENYLIST,
            clock: Arc::new(SystemClock),
            durable: None,
        })
    }

    fn build(s: Settings) -> Self {
        let clock = Arc::clone(&s.clock);
        let memory = MemoryRevocation::with_clock(move || clock.now())
            .max_denylist(s.max_denylist)
            .cutoff_retention(s.retention);
        let key = |suffix: &[u8]| s.redis.key(&[b"{rev}:", suffix]);
        Self {
            inner: Arc::new(Inner {
                entries: key(b"e"),
                times: key(b"x"),
                sequence: key(b"n"),
                channel: key(b"c"),
                write: Script::new(WRITE),
                snapshot: Script::new(SNAPSHOT),
                memory,
                known: Mutex::new(HashMap::new()),
                sweep_at: AtomicUsize::new(SWEEP_FLOOR),
                fresh_until: AtomicU64::new(0),
                origin: Instant::now(),
                task: Mutex::new(None),
                synced: Notify::new(),
                settings: s,
            }),
        }
    }

    /// A new, empty view with changed settings (configure before first use).
    fn configure(self, change: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = self.inner.settings.clone();
        change(&mut settings);
        Self::build(settings)
    }

    /// Sets the time limit of one call to Redis (default: the [`Redis`] handle's,
    /// 250 ms).
    #[must_use]
    pub fn timeout(self, timeout: Duration) -> Self {
        self.configure(|s| s.timeout = timeout)
    }

    /// Sets what a check answers once the view is staler than
    /// [`max_staleness`](Self::max_staleness) (default [`FailurePolicy::Closed`]: `503`).
    ///
    /// # Security
    ///
    /// [`FailurePolicy::Open`] keeps answering from the last view while Redis is down,
    /// so a token revoked meanwhile (through another instance) passes here.
    #[must_use]
    pub fn failure_policy(self, policy: FailurePolicy) -> Self {
        self.configure(|s| s.policy = policy)
    }

    /// Sets how stale the view may be before the [`FailurePolicy`] applies (default
    /// [`DEFAULT_MAX_STALENESS`]): the longest time between a revocation and the
    /// moment every instance honours it. The view confirms it is current four times
    /// per bound (one `GET` each).
    ///
    /// # Panics
    ///
    /// When `bound` is under 20 ms: the view could not confirm itself in time.
    #[must_use]
    pub fn max_staleness(self, bound: Duration) -> Self {
        assert!(
            bound >= Duration::from_millis(20),
            "max_staleness must be at least 20 ms"
        );
        self.configure(|s| s.staleness = bound)
    }

    /// Sets how long subject cut-offs are kept: longer than the longest access-token
    /// lifetime plus leeway (default [`DEFAULT_CUTOFF_RETENTION`], one day and five
    /// minutes).
    #[must_use]
    pub fn cutoff_retention(self, retention: Duration) -> Self {
        self.configure(|s| s.retention = retention)
    }

    /// Sets the view's denylist cap (default [`DEFAULT_MAX_DENYLIST`]); see
    /// [`MemoryRevocation`] for what happens when it is full (it fails closed).
    #[must_use]
    pub fn max_denylist(self, max: usize) -> Self {
        self.configure(|s| s.max_denylist = max)
    }

    /// Keeps revocations in `store` too, a durable one such as `portcullis-sql`'s
    /// `SqlRevocation` (loaded at start-up): every revocation is written there first
    /// (a failure there fails the revocation and changes nothing), then to Redis; and
    /// every check that the view passes also asks `store`. Redis then only carries
    /// revocations between instances within the staleness bound, and the store keeps
    /// them when Redis *and* every instance restart together.
    ///
    /// Checks stay free of round trips when `store` answers from memory, as
    /// `SqlRevocation` does.
    #[must_use]
    pub fn durable_store<S: RevocationStore + Revocation>(self, store: S) -> Self {
        self.configure(|s| s.durable = Some(Arc::new(store)))
    }

    /// Uses `clock` for token expiry and cut-off retention (tests).
    #[must_use]
    pub fn with_clock(self, clock: impl Clock) -> Self {
        self.configure(|s| s.clock = Arc::new(clock))
    }

    /// The staleness bound.
    pub fn staleness_bound(&self) -> Duration {
        self.inner.settings.staleness
    }

    /// Starts the background task if it is not running, and waits until the view is
    /// fresh (synced with Redis), for at most `within`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Timeout`] when the view is not fresh within `within` (Redis
    /// unreachable, say); the view keeps trying.
    pub async fn synced(&self, within: Duration) -> Result<(), Error> {
        self.inner.start();
        let deadline = Instant::now() + within;
        loop {
            let notified = self.inner.synced.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.inner.is_fresh() {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(Error::new(ErrorKind::Timeout));
            }
        }
    }

    async fn write(
        &self,
        kind: char,
        issuer: Option<&str>,
        id: &str,
        entry: Entry,
    ) -> Result<(), TokenError> {
        self.inner.start();
        let name = entry_name(kind, issuer, id);
        match self.inner.send(&name, &entry).await {
            Ok(_) => {
                self.inner.apply(name, entry).await;
                Ok(())
            }
            Err(e) => {
                self.inner
                    .settings
                    .redis
                    .report("revocation", FailurePolicy::Closed, &e);
                Err(TokenError::store(e))
            }
        }
    }

    async fn set_cutoff(
        &self,
        issuer: Option<&str>,
        subject: &str,
        cutoff: SystemTime,
    ) -> Result<(), TokenError> {
        if let Some(durable) = &self.inner.settings.durable {
            durable
                .write(Write::Subject(issuer, subject, cutoff))
                .await?;
        }
        let keep_ms = unix_micros(cutoff)
            .saturating_add(duration_micros(self.inner.settings.retention))
            .div_euclid(1000);
        let entry = Entry {
            // Not below 0, like the memory store's seconds.
            a: unix_secs(cutoff).max(0),
            keep_ms,
            rest: "".into(),
        };
        self.write('s', issuer, subject, entry).await
    }
}

impl Inner {
    fn now_us(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn is_fresh(&self) -> bool {
        self.now_us() < self.fresh_until.load(Ordering::Acquire)
    }

    /// The view held every write made before `confirmed_at` (µs after `origin`).
    fn confirm(&self, confirmed_at: u64) {
        let until =
            confirmed_at.saturating_add(duration_micros(self.settings.staleness).unsigned_abs());
        self.fresh_until.fetch_max(until, Ordering::AcqRel);
        self.synced.notify_waiters();
    }

    /// Starts the background task unless it runs. Outside a Tokio runtime it does
    /// nothing: the next use tries again, and checks fail closed meanwhile.
    fn start(self: &Arc<Self>) {
        let mut task = self.task.lock().unwrap_or_else(|e| e.into_inner());
        if task.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            *task = Some(runtime.spawn(maintain(Arc::downgrade(self))));
        }
    }

    /// Writes one entry to Redis (merged with what is there, and announced).
    async fn send(&self, name: &str, entry: &Entry) -> Result<i64, Error> {
        let mut invocation = self.write.prepare_invoke();
        invocation
            .key(&self.entries)
            .key(&self.times)
            .key(&self.sequence)
            .arg(name)
            .arg(entry.a)
            .arg(entry.keep_ms)
            .arg(&*entry.rest)
            .arg(&self.channel);
        let mut conn = self.settings.redis.conn();
        self.settings
            .redis
            .call(self.settings.timeout, async move {
                invocation.invoke_async(&mut conn).await
            })
            .await
    }

    /// Applies one entry to the view.
    async fn apply(&self, name: String, entry: Entry) {
        let Some((kind, issuer, id)) = parse_name(&name) else {
            tracing::warn!(target: "portcullis::redis", "skipping a malformed revocation entry");
            return;
        };
        let applied = match kind {
            b'j' => {
                let token = RevokedToken {
                    issuer,
                    token_id: id,
                    subject: &entry.rest,
                    expires_at: from_unix_micros(entry.a.saturating_mul(1000)),
                };
                self.memory.revoke_token(token).await
            }
            b's' => {
                let cutoff = from_unix_micros(entry.a.saturating_mul(1_000_000));
                match issuer {
                    None => self.memory.revoke_subject(id, cutoff).await,
                    Some(issuer) => self.memory.revoke_issuer_subject(issuer, id, cutoff).await,
                }
            }
            _ => {
                tracing::warn!(target: "portcullis::redis", "skipping a revocation entry of an unknown kind");
                return;
            }
        };
        // The memory store cannot fail; a failure would leave the entry out.
        debug_assert!(applied.is_ok());
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known
            .entry(name)
            .and_modify(|e| e.merge(&entry))
            .or_insert(entry);
        // Amortised: drop what is over once the map doubled since the last sweep.
        if known.len() >= self.sweep_at.load(Ordering::Relaxed) {
            let now_ms = unix_micros(self.settings.clock.now()).div_euclid(1000);
            known.retain(|_, e| e.keep_ms > now_ms);
            let next = known.len().saturating_mul(2).max(SWEEP_FLOOR);
            self.sweep_at.store(next, Ordering::Relaxed);
        }
    }

    /// Applies one pub/sub message given the last sequence number applied.
    async fn arrive(&self, payload: &[u8], applied: u64) -> Arrival {
        let parsed = std::str::from_utf8(payload).ok().and_then(|text| {
            let (seq, rest) = text.split_once(' ')?;
            let (len, rest) = rest.split_once(' ')?;
            let len: usize = len.parse().ok()?;
            let name = rest.get(..len)?;
            Some((
                seq.parse::<u64>().ok()?,
                name,
                Entry::parse(rest.get(len..)?)?,
            ))
        });
        let Some((seq, name, entry)) = parsed else {
            tracing::warn!(target: "portcullis::redis", "malformed revocation message; resyncing");
            return Arrival::Gap;
        };
        if seq <= applied {
            Arrival::Old
        } else if seq == applied + 1 {
            self.apply(name.to_owned(), entry).await;
            Arrival::Next(seq)
        } else {
            Arrival::Gap
        }
    }

    /// The last write's sequence number (0: none since Redis started empty).
    async fn last_write(&self) -> Result<u64, Error> {
        let mut conn = self.settings.redis.conn();
        let key = self.sequence.clone();
        let seq: Option<u64> = self
            .settings
            .redis
            .call(self.settings.timeout, async move {
                redis::cmd("GET").arg(key).query_async(&mut conn).await
            })
            .await?;
        Ok(seq.unwrap_or(0))
    }

    /// Reads every entry into the view, writes back the ones Redis lost, and returns
    /// the sequence number the view is now current at.
    async fn resync(&self) -> Result<u64, Error> {
        let asked_at = self.now_us();
        let mut invocation = self.snapshot.prepare_invoke();
        invocation.key(&self.entries).key(&self.sequence);
        let mut conn = self.settings.redis.conn();
        let (seq, pairs): (u64, Vec<String>) = self
            .settings
            .redis
            .call(self.settings.timeout.saturating_mul(4), async move {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
        let mut in_redis = HashMap::with_capacity(pairs.len() / 2);
        for pair in pairs.chunks_exact(2) {
            match Entry::parse(&pair[1]) {
                Some(entry) => {
                    in_redis.insert(pair[0].clone(), entry.clone());
                    self.apply(pair[0].clone(), entry).await;
                }
                None => {
                    tracing::warn!(target: "portcullis::redis", "skipping a malformed revocation entry")
                }
            }
        }
        // What this view knows and Redis lost (or holds older): write it back.
        let now_ms = unix_micros(self.settings.clock.now()).div_euclid(1000);
        let lost: Vec<(String, Entry)> = {
            let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
            known.retain(|_, e| e.keep_ms > now_ms);
            known
                .iter()
                .filter(|(name, entry)| in_redis.get(*name) != Some(entry))
                .map(|(name, entry)| (name.clone(), entry.clone()))
                .collect()
        };
        if !lost.is_empty() {
            tracing::warn!(
                target: "portcullis::redis",
                entries = lost.len(),
                "redis lost revocations this instance knows; writing them back"
            );
            for chunk in lost.chunks(128) {
                let writes = chunk.iter().map(|(name, entry)| self.send(name, entry));
                futures_util::future::try_join_all(writes).await?;
            }
        }
        self.confirm(asked_at);
        Ok(seq)
    }
}

/// The background task: keeps the view of `inner` fresh until it is dropped.
async fn maintain(inner: Weak<Inner>) {
    let mut node = 0;
    let mut backoff = Duration::from_millis(50);
    loop {
        match session(&inner, node).await {
            Ok(()) => return,
            Err(error) => {
                let Some(strong) = inner.upgrade() else {
                    return;
                };
                strong
                    .settings
                    .redis
                    .report("revocation", strong.settings.policy, &error);
                drop(strong);
                node += 1;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// One subscription: subscribe, resync, then apply messages and confirm freshness
/// until the connection fails (`Err`) or the view is dropped (`Ok`).
async fn session(weak: &Weak<Inner>, node: usize) -> Result<(), Error> {
    let (client, channel, timeout, period) = {
        let Some(inner) = weak.upgrade() else {
            return Ok(());
        };
        let nodes = &inner.settings.redis.inner.nodes;
        let client = nodes[node % nodes.len()].clone();
        let period = (inner.settings.staleness / 4).max(Duration::from_millis(5));
        (
            client,
            inner.channel.clone(),
            inner.settings.timeout,
            period,
        )
    };
    let connect = timeout.max(Duration::from_secs(1));
    let pubsub = tokio::time::timeout(connect, client.get_async_pubsub())
        .await
        .map_err(|_| Error::new(ErrorKind::Timeout))?
        .map_err(Error::from_redis)?;
    let (mut sink, mut stream) = pubsub.split();
    tokio::time::timeout(connect, sink.subscribe(&channel))
        .await
        .map_err(|_| Error::new(ErrorKind::Timeout))?
        .map_err(Error::from_redis)?;
    let mut applied = {
        let Some(inner) = weak.upgrade() else {
            return Ok(());
        };
        inner.resync().await?
    };
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The sequence number the view was behind at the last tick.
    let mut behind: Option<u64> = None;
    loop {
        tokio::select! {
            message = stream.next() => {
                let Some(message) = message else {
                    return Err(Error::new(ErrorKind::Connection));
                };
                let Some(inner) = weak.upgrade() else { return Ok(()) };
                match inner.arrive(message.get_payload_bytes(), applied).await {
                    Arrival::Next(seq) => applied = seq,
                    Arrival::Old => {}
                    Arrival::Gap => applied = inner.resync().await?,
                }
            }
            _ = ticks.tick() => {
                let Some(inner) = weak.upgrade() else { return Ok(()) };
                let asked_at = inner.now_us();
                let last = inner.last_write().await?;
                if last == applied {
                    behind = None;
                    inner.confirm(asked_at);
                } else if last < applied || behind.is_some_and(|target| applied < target) {
                    // Redis restarted empty, or messages went missing.
                    behind = None;
                    applied = inner.resync().await?;
                } else {
                    // Messages on their way; they must be in by the next tick.
                    behind = Some(last);
                }
            }
        }
    }
}

impl Revocation for RedisRevocation {
    fn check(&self, query: &RevocationQuery<'_>) -> MaybeReady<Result<(), AuthError>> {
        if !self.inner.is_fresh() {
            self.inner.start();
            if self.inner.settings.policy == FailurePolicy::Closed {
                return MaybeReady::Ready(Err(AuthError::unavailable("revocation_unavailable")
                    .with_description("the revocation list is temporarily unavailable")));
            }
        }
        match (&self.inner.settings.durable, self.inner.memory.check(query)) {
            (Some(durable), MaybeReady::Ready(Ok(()))) => durable.check_durably(query),
            (_, answer) => answer,
        }
    }
}

impl RevocationStore for RedisRevocation {
    async fn revoke_token(&self, token: RevokedToken<'_>) -> Result<(), TokenError> {
        if token.expires_at <= self.inner.settings.clock.now() {
            // Expired already: the verifier refuses it anyway.
            return Ok(());
        }
        if let Some(durable) = &self.inner.settings.durable {
            durable.write(Write::Token(token)).await?;
        }
        let expires_ms = unix_micros(token.expires_at).div_euclid(1000);
        let entry = Entry {
            a: expires_ms,
            keep_ms: expires_ms,
            rest: token.subject.into(),
        };
        self.write('j', token.issuer, token.token_id, entry).await
    }

    async fn revoke_subject(&self, subject: &str, cutoff: SystemTime) -> Result<(), TokenError> {
        self.set_cutoff(None, subject, cutoff).await
    }

    async fn revoke_issuer_subject(
        &self,
        issuer: &str,
        subject: &str,
        cutoff: SystemTime,
    ) -> Result<(), TokenError> {
        self.set_cutoff(Some(issuer), subject, cutoff).await
    }
}

impl fmt::Debug for RedisRevocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRevocation")
            .field("redis", &self.inner.settings.redis)
            .field("timeout", &self.inner.settings.timeout)
            .field("policy", &self.inner.settings.policy)
            .field("max_staleness", &self.inner.settings.staleness)
            .field("cutoff_retention", &self.inner.settings.retention)
            .field("durable_store", &self.inner.settings.durable.is_some())
            .field("fresh", &self.inner.is_fresh())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_round_trip_whatever_the_bytes() {
        for (issuer, id) in [
            (None, "a"),
            (Some("https://iss"), "x:y"),
            (Some("1:2"), "-3"),
            (Some(""), "é"),
            (None, "-"),
        ] {
            let name = entry_name('j', issuer, id);
            assert_eq!(parse_name(&name), Some((b'j', issuer, id)), "{name}");
        }
        assert_eq!(parse_name("s9:short"), None);
        assert_eq!(parse_name(""), None);
    }

    #[tokio::test]
    async fn the_copy_kept_for_write_back_forgets_entries_whose_time_is_over() {
        let clock = portcullis_tokens::ManualClock::new(SystemTime::now());
        let redis = Redis::open("redis://127.0.0.1:1").unwrap();
        let revocation = RedisRevocation::new(&redis).with_clock(clock.clone());
        let inner = &revocation.inner;
        let expires = unix_micros(clock.now() + Duration::from_secs(10)).div_euclid(1000);
        for i in 0..SWEEP_FLOOR - 1 {
            let entry = Entry {
                a: expires,
                keep_ms: expires,
                rest: "alice".into(),
            };
            inner
                .apply(entry_name('j', None, &format!("t{i}")), entry)
                .await;
        }
        clock.advance(Duration::from_secs(20));
        let later = expires + 60_000;
        let entry = Entry {
            a: later,
            keep_ms: later,
            rest: "bob".into(),
        };
        inner.apply(entry_name('j', None, "last"), entry).await;
        let known = inner.known.lock().unwrap();
        assert_eq!(known.keys().collect::<Vec<_>>(), ["j-last"]);
    }

    #[test]
    fn entries_merge_forward_only() {
        let mut entry = Entry::parse("10 2000 alice bob").unwrap();
        assert_eq!(&*entry.rest, "alice bob");
        entry.merge(&Entry::parse("5 3000 ").unwrap());
        assert_eq!((entry.a, entry.keep_ms), (10, 3000));
        assert!(Entry::parse("x 1 a").is_none());
        assert!(Entry::parse("1 2").is_none());
    }
}
