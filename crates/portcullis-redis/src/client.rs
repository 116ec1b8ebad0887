//! [`Redis`]: the shared, auto-reconnecting connection every backend of this crate
//! runs on, with the key prefix, timeouts and outage logging they share.

use std::{
    error::Error as StdError,
    fmt,
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use redis::{
    Client, Cmd, Pipeline, RedisError, RedisFuture, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::{ClusterClient, ClusterClientBuilder},
    cluster_async::ClusterConnection,
};
use tokio::sync::OnceCell;

use crate::FailurePolicy;

/// The default key prefix: `portcullis:`.
pub const DEFAULT_PREFIX: &str = "portcullis:";

/// The default time limit of one call (one round trip): 250 ms.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_millis(250);

/// A handle on Redis, shared by the backends of this crate: one server (standalone, or
/// a primary) or a Redis Cluster.
///
/// On one server it holds a redis-rs [`ConnectionManager`]: one multiplexed
/// connection that every clone and every backend shares, which **reconnects by
/// itself** when the server restarts or the connection drops (the first calls after
/// the loss fail, within their timeout, and the backends apply their
/// [`FailurePolicy`]; once the server is back the next calls succeed, without
/// restarting the application). On a cluster it holds redis-rs's cluster connection,
/// which routes each call to the primary of its key's hash slot and follows `MOVED`
/// and `ASK` redirections and failovers by itself.
///
/// [`Redis::open`] does not wait for the server: an application starts while Redis is
/// still down and connects on first use.
///
/// Every key the backends write starts with the [prefix](Self::with_prefix)
/// (`portcullis:` by default), so one Redis can serve several applications.
///
/// # Redis Cluster
///
/// A URL `redis+cluster://host:port,host:port,...` (the seed nodes, at least one;
/// user and password, if any, before the first host as in `redis://`) or
/// [`Redis::open_cluster`] connect to a cluster. The keys that one script or one
/// decision touches share a hash tag (`{...}`), so nothing fails with `CROSSSLOT`;
/// the [prefix](Self::with_prefix) must then hold no `{` or `}`, which would change
/// the tags.
///
/// Cloning is cheap and shares the connection.
#[derive(Clone)]
pub struct Redis {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) conn: Conn,
    /// Where a subscriber connects: the server, or each seed node of a cluster in turn
    /// (a message published on any node of a cluster reaches subscribers on all).
    pub(crate) nodes: Arc<[Client]>,
    pub(crate) prefix: Box<str>,
    pub(crate) timeout: Duration,
    health: Health,
}

impl Redis {
    /// A handle on the server at `url` (`redis://host:port/db`), with the default
    /// prefix and timeout. Connects lazily, on first use, and reconnects after
    /// failures (backing off from 50 ms up to 1 s between attempts).
    ///
    /// Must be called inside a Tokio runtime.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when `url` is not a valid Redis URL (the error never
    /// repeats the URL, which may hold a password).
    pub fn open(url: &str) -> Result<Self, Error> {
        if let Some(rest) = url.strip_prefix(CLUSTER_SCHEME) {
            return Self::open_cluster(cluster_nodes(rest)?);
        }
        let client = Client::open(url).map_err(|e| Error::new(ErrorKind::Config).with_redis(e))?;
        let config = ConnectionManagerConfig::new()
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1))
            .set_number_of_retries(2)
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| Error::new(ErrorKind::Config).with_redis(e))?;
        Ok(Self::with_conn(Conn::Single(conn), Arc::new([client])))
    }

    /// A handle on the Redis Cluster reachable through `nodes` (`redis://host:port`
    /// URLs of some of its nodes; the others are discovered), with the default prefix
    /// and timeout. Connects lazily, on first use; `MOVED`/`ASK` redirections, slot
    /// migrations and failovers are followed by redis-rs's cluster client.
    ///
    /// The same as [`Redis::open`] with a `redis+cluster://host:port,host:port` URL.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when `nodes` is empty or one is not a valid Redis URL.
    pub fn open_cluster<I, S>(nodes: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let urls: Vec<String> = nodes.into_iter().map(|n| n.as_ref().to_owned()).collect();
        let config = |e| Error::new(ErrorKind::Config).with_redis(e);
        let clients = urls
            .iter()
            .map(|url| Client::open(url.as_str()).map_err(config))
            .collect::<Result<Vec<_>, _>>()?;
        if clients.is_empty() {
            return Err(Error::new(ErrorKind::Config));
        }
        let client = ClusterClientBuilder::new(urls)
            .connection_timeout(Duration::from_secs(1))
            .response_timeout(Duration::from_secs(2))
            .retries(2)
            .min_retry_wait(50)
            .max_retry_wait(1000)
            .build()
            .map_err(config)?;
        let conn = Conn::Cluster(Arc::new(LazyCluster {
            client,
            conn: OnceCell::new(),
        }));
        Ok(Self::with_conn(conn, clients.into()))
    }

    fn with_conn(conn: Conn, nodes: Arc<[Client]>) -> Self {
        Self {
            inner: Arc::new(Inner {
                conn,
                nodes,
                prefix: DEFAULT_PREFIX.into(),
                timeout: DEFAULT_CALL_TIMEOUT,
                health: Health::new(),
            }),
        }
    }

    /// Whether this handle is on a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.inner.conn, Conn::Cluster(_))
    }

    /// Returns a handle on the same connection whose backends write keys under
    /// `prefix` (say `"myapp:"`) instead of `portcullis:`.
    #[must_use]
    pub fn with_prefix(&self, prefix: &str) -> Self {
        self.derive(|inner| inner.prefix = prefix.into())
    }

    /// Returns a handle on the same connection whose backends give each call at most
    /// `timeout` (default [`DEFAULT_CALL_TIMEOUT`]) unless they set their own.
    #[must_use]
    pub fn with_timeout(&self, timeout: Duration) -> Self {
        self.derive(|inner| inner.timeout = timeout)
    }

    fn derive(&self, change: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Inner {
            conn: self.inner.conn.clone(),
            nodes: Arc::clone(&self.inner.nodes),
            prefix: self.inner.prefix.clone(),
            timeout: self.inner.timeout,
            health: Health::new(),
        };
        change(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The default per-call timeout.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// Sends `PING` and waits for the answer (within the timeout): a readiness probe.
    ///
    /// # Errors
    ///
    /// When the server does not answer in time or answers with an error.
    pub async fn ping(&self) -> Result<(), Error> {
        let mut conn = self.inner.conn.clone();
        let pong: String = self
            .call(self.inner.timeout, async move {
                redis::cmd("PING").query_async(&mut conn).await
            })
            .await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(Error::new(ErrorKind::Reply))
        }
    }

    pub(crate) fn key(&self, parts: &[&[u8]]) -> Vec<u8> {
        let len = self.inner.prefix.len() + parts.iter().map(|p| p.len()).sum::<usize>();
        let mut key = Vec::with_capacity(len);
        key.extend_from_slice(self.inner.prefix.as_bytes());
        for part in parts {
            key.extend_from_slice(part);
        }
        key
    }

    pub(crate) fn conn(&self) -> Conn {
        self.inner.conn.clone()
    }

    /// Runs one call within `timeout`, and records whether Redis answered.
    pub(crate) async fn call<T>(
        &self,
        timeout: Duration,
        call: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(timeout, call).await {
            Ok(Ok(value)) => {
                self.inner.health.up();
                Ok(value)
            }
            Ok(Err(e)) => Err(Error::from_redis(e)),
            Err(_) => Err(Error::new(ErrorKind::Timeout)),
        }
    }

    /// Logs a failed call of `usage` (at most one line a second while Redis is down;
    /// the count of calls in between is in the next line).
    pub(crate) fn report(&self, usage: &'static str, policy: FailurePolicy, error: &Error) {
        self.inner.health.down(usage, policy, error);
    }
}

impl fmt::Debug for Redis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The connection's Debug would print the server address; say less.
        f.debug_struct("Redis")
            .field("prefix", &self.inner.prefix)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

const CLUSTER_SCHEME: &str = "redis+cluster://";

/// The node URLs of `[user[:password]@]host:port,host:port[/]` (after the scheme).
fn cluster_nodes(rest: &str) -> Result<Vec<String>, Error> {
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (userinfo, hosts) = match rest.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, rest),
    };
    let nodes: Vec<String> = hosts
        .split(',')
        .map(|host| match userinfo {
            Some(userinfo) => format!("redis://{userinfo}@{host}"),
            None => format!("redis://{host}"),
        })
        .collect();
    if hosts
        .split(',')
        .any(|host| host.is_empty() || host.contains('/'))
    {
        return Err(Error::new(ErrorKind::Config));
    }
    Ok(nodes)
}

/// The connection the backends send their calls on: a [`ConnectionManager`] on one
/// server, or a cluster connection made on first use.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(Arc<LazyCluster>),
}

pub(crate) struct LazyCluster {
    client: ClusterClient,
    conn: OnceCell<ClusterConnection>,
}

impl LazyCluster {
    /// The cluster connection, made now if no call made it yet (a failed attempt is
    /// tried again by the next call).
    async fn get(&self) -> Result<ClusterConnection, RedisError> {
        self.conn
            .get_or_try_init(|| self.client.get_async_connection())
            .await
            .cloned()
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(conn) => conn.req_packed_command(cmd),
            Self::Cluster(lazy) => Box::pin(async move {
                let mut conn = lazy.get().await?;
                conn.req_packed_command(cmd).await
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(lazy) => Box::pin(async move {
                let mut conn = lazy.get().await?;
                conn.req_packed_commands(pipeline, offset, count).await
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(conn) => conn.get_db(),
            Self::Cluster(_) => 0,
        }
    }
}

/// Tracks whether the last calls failed, to log outages and recoveries clearly
/// without a line per request.
struct Health {
    down: AtomicBool,
    origin: Instant,
    /// Milliseconds since `origin` of the last outage line, plus one (0 = never).
    last_line: AtomicU64,
    suppressed: AtomicU64,
}

impl Health {
    fn new() -> Self {
        Self {
            down: AtomicBool::new(false),
            origin: Instant::now(),
            last_line: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    fn up(&self) {
        if self.down.load(Ordering::Relaxed) && self.down.swap(false, Ordering::AcqRel) {
            let failed = self.suppressed.swap(0, Ordering::AcqRel);
            tracing::info!(
                target: "portcullis::redis",
                failed_calls_not_logged = failed,
                "redis answers again; shared state is back in use"
            );
        }
    }

    fn down(&self, usage: &'static str, policy: FailurePolicy, error: &Error) {
        self.down.store(true, Ordering::Release);
        let now = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX) + 1;
        let last = self.last_line.load(Ordering::Acquire);
        let due = last == 0 || now.saturating_sub(last) >= 1000;
        if !due
            || self
                .last_line
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let not_logged = self.suppressed.swap(0, Ordering::AcqRel);
        match policy {
            FailurePolicy::Open => tracing::warn!(
                target: "portcullis::redis",
                usage,
                error = %error,
                not_logged,
                "redis unavailable: failing open, request allowed without the shared check"
            ),
            FailurePolicy::Closed => tracing::warn!(
                target: "portcullis::redis",
                usage,
                error = %error,
                not_logged,
                "redis unavailable: failing closed, request refused with 503"
            ),
        }
    }
}

/// Why a Redis call failed.
///
/// Carries the redis-rs error as its [`source`](StdError::source) when there is one.
/// Never contains a key, token or the server URL's password.
pub struct Error {
    kind: ErrorKind,
    source: Option<RedisError>,
}

/// The class of an [`Error`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The server did not answer within the call's timeout.
    Timeout,
    /// The connection failed or dropped (the server is down or restarting).
    Connection,
    /// The server answered with an error.
    Server,
    /// The answer did not have the expected shape (another program's data under our
    /// prefix, say).
    Reply,
    /// Invalid configuration (a bad URL).
    Config,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Self { kind, source: None }
    }

    fn with_redis(mut self, source: RedisError) -> Self {
        self.source = Some(source);
        self
    }

    pub(crate) fn from_redis(e: RedisError) -> Self {
        let kind = if e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_timeout()
            || e.is_unrecoverable_error()
        {
            ErrorKind::Connection
        } else if matches!(
            e.kind(),
            redis::ErrorKind::Parse | redis::ErrorKind::UnexpectedReturnType
        ) {
            ErrorKind::Reply
        } else {
            ErrorKind::Server
        };
        Self::new(kind).with_redis(e)
    }

    /// The class of error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            ErrorKind::Timeout => "redis call timed out",
            ErrorKind::Connection => "redis connection failed",
            ErrorKind::Server => "redis answered with an error",
            ErrorKind::Reply => "unexpected reply from redis",
            ErrorKind::Config => "invalid redis configuration",
        })?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_ref().map(|e| e as &(dyn StdError + 'static))
    }
}

/// A duration in microseconds, capped so that sums with a timestamp stay exact in the
/// doubles Lua computes with (about 100 years).
pub(crate) fn duration_micros(d: Duration) -> i64 {
    const CAP: u128 = 100 * 365 * 86_400 * 1_000_000;
    i64::try_from(d.as_micros().min(CAP)).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bad_url_is_a_config_error_without_the_url() {
        let err = Redis::open("http://user:hunter2@example.com").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(!format!("{err} {err:?}").contains("hunter2"));
    }

    #[tokio::test]
    async fn cluster_urls_name_every_seed_node() {
        let nodes = cluster_nodes("u:p@127.0.0.1:7001,127.0.0.1:7002/").unwrap();
        assert_eq!(
            nodes,
            ["redis://u:p@127.0.0.1:7001", "redis://u:p@127.0.0.1:7002"]
        );
        assert!(
            Redis::open("redis+cluster://127.0.0.1:7001")
                .unwrap()
                .is_cluster()
        );
        assert!(!Redis::open("redis://127.0.0.1:6379").unwrap().is_cluster());
    }

    #[tokio::test]
    async fn bad_cluster_urls_are_config_errors_without_the_password() {
        for url in [
            "redis+cluster://",
            "redis+cluster://a:1,,b:2",
            "redis+cluster://u:hunter2@h:1/0",
        ] {
            let err = Redis::open(url).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{url}");
            assert!(!format!("{err} {err:?}").contains("hunter2"));
        }
        let none: [&str; 0] = [];
        assert_eq!(
            Redis::open_cluster(none).unwrap_err().kind(),
            ErrorKind::Config
        );
    }

    #[tokio::test]
    async fn keys_carry_the_prefix() {
        let redis = Redis::open("redis://127.0.0.1:1")
            .unwrap()
            .with_prefix("app:");
        assert_eq!(redis.key(&[b"rl:", b"x"]), b"app:rl:x");
        assert_eq!(redis.prefix(), "app:");
    }
}
