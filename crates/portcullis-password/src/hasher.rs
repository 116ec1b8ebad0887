//! [`PasswordHasher`]: argon2id off the async runtime, with bounded concurrency.

use std::{
    error::Error as StdError,
    fmt,
    num::NonZeroUsize,
    sync::{Arc, atomic::AtomicUsize},
    time::Instant,
};

use argon2::{Algorithm, Argon2, Params, PasswordHash, Version};
use portcullis_core::internal::metrics;
use rand::{TryRngCore, rngs::OsRng};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::{
    MAX_INPUT_BYTES, Password,
    memory::{self, BlockPool},
    policy::normalize,
    queue::Queued,
};

/// argon2id cost parameters.
///
/// The default is OWASP's first recommendation, also argon2's own default:
/// m = 19456 KiB (19 MiB), t = 2, p = 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Iterations.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for HashParams {
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl HashParams {
    fn to_argon2(self) -> Result<Params, HashError> {
        Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
            .map_err(|_| HashError::new(HashErrorKind::Config, "invalid argon2 parameters"))
    }
}

/// What went wrong while hashing or verifying.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashErrorKind {
    /// The password input is over [`MAX_INPUT_BYTES`]; refused before hashing.
    InputTooLarge,
    /// The stored hash is not a PHC string this hasher understands.
    MalformedHash,
    /// Parameters or pepper are invalid.
    Config,
    /// The hashing task failed (panicked or was cancelled) or argon2 failed.
    Internal,
    /// More hashes were waiting for a worker than
    /// [`max_queue`](PasswordHasherBuilder::max_queue) allows: refused at once,
    /// without hashing (answer `503` and let the client retry).
    Overloaded,
}

/// An error from [`PasswordHasher`]. Never contains the password or the hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashError {
    kind: HashErrorKind,
    message: &'static str,
}

impl HashError {
    pub(crate) fn new(kind: HashErrorKind, message: &'static str) -> Self {
        Self { kind, message }
    }

    /// What went wrong.
    pub fn kind(&self) -> HashErrorKind {
        self.kind
    }
}

impl fmt::Display for HashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message)
    }
}

impl StdError for HashError {}

/// The outcome of [`PasswordHasher::verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Verification {
    /// The password matches.
    Valid {
        /// The stored hash used other parameters (or another algorithm or version) than
        /// the hasher's current ones: hash the password again and store the new hash.
        needs_rehash: bool,
    },
    /// The password does not match.
    Invalid,
}

impl Verification {
    /// Whether the password matches.
    pub fn is_valid(self) -> bool {
        matches!(self, Self::Valid { .. })
    }

    /// Whether the password matches and should be re-hashed with current parameters.
    pub fn needs_rehash(self) -> bool {
        matches!(self, Self::Valid { needs_rehash: true })
    }
}

struct Inner {
    params: HashParams,
    argon2_params: Params,
    pepper: Option<Zeroizing<Vec<u8>>>,
    permits: Arc<Semaphore>,
    max_concurrency: usize,
    /// Hashes waiting for a permit, and how many may.
    waiting: AtomicUsize,
    max_queue: usize,
    niceness: Option<i32>,
    dummy: String,
    /// Working memory, reused: at most one buffer per permitted concurrent hash.
    blocks: BlockPool,
}

/// Hashes and verifies passwords with argon2id, PHC strings, a random 16-byte salt per
/// hash from the OS CSPRNG, and an optional pepper (argon2's secret input).
///
/// Every hash runs in [`tokio::task::spawn_blocking`], never on an async worker, and at
/// most `max_concurrency` run at once (a semaphore, default: the number of cores), so
/// a login flood queues for hashing instead of taking every core. On Linux, the
/// hashing threads also lower their scheduling priority for the duration of a hash
/// (nice 10 by default, see [`niceness`](PasswordHasherBuilder::niceness)): when CPU
/// is short, request handling wins and logins wait.
///
/// Input over [`MAX_INPUT_BYTES`] is refused before hashing; passwords are
/// NFKC-normalised before hashing (as by [`PasswordPolicy`](crate::PasswordPolicy)).
///
/// Cheap to clone; clones share the semaphore.
///
/// ```
/// use portcullis_password::{HashParams, Password, PasswordHasher};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), portcullis_password::HashError> {
/// # let fast = HashParams { memory_kib: 256, iterations: 1, parallelism: 1 };
/// let hasher = PasswordHasher::builder()
/// #   .params(fast)
///     .build()?;
/// let hash = hasher.hash(&Password::new("correct horse battery staple")).await?;
/// assert!(hash.starts_with("$argon2id$v=19$"));
///
/// let ok = hasher.verify(&Password::new("correct horse battery staple"), &hash).await?;
/// assert!(ok.is_valid() && !ok.needs_rehash());
/// assert!(!hasher.verify(&Password::new("wrong"), &hash).await?.is_valid());
///
/// // Unknown account: same cost, always false.
/// assert!(!hasher.verify_dummy(&Password::new("whatever")).await?);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.inner.params)
            .field("pepper", &self.inner.pepper.as_ref().map(|_| "<redacted>"))
            .field("max_concurrency", &self.inner.max_concurrency)
            .field("max_queue", &self.inner.max_queue)
            .field("niceness", &self.inner.niceness)
            .finish()
    }
}

/// Configures a [`PasswordHasher`].
#[must_use]
pub struct PasswordHasherBuilder {
    params: HashParams,
    pepper: Option<Zeroizing<Vec<u8>>>,
    max_concurrency: Option<NonZeroUsize>,
    max_queue: Option<usize>,
    niceness: Option<i32>,
}

impl fmt::Debug for PasswordHasherBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasherBuilder")
            .field("params", &self.params)
            .field("pepper", &self.pepper.as_ref().map(|_| "<redacted>"))
            .field("max_concurrency", &self.max_concurrency)
            .field("max_queue", &self.max_queue)
            .field("niceness", &self.niceness)
            .finish()
    }
}

impl PasswordHasherBuilder {
    /// The argon2id parameters for new hashes (default m=19456 KiB, t=2, p=1).
    pub fn params(mut self, params: HashParams) -> Self {
        self.params = params;
        self
    }

    /// A pepper: a server-side secret mixed into every hash (argon2's secret input),
    /// kept outside the database. Changing it invalidates every stored hash.
    pub fn pepper(mut self, pepper: impl Into<Vec<u8>>) -> Self {
        self.pepper = Some(Zeroizing::new(pepper.into()));
        self
    }

    /// How many hashes may run at once (default: the number of cores).
    pub fn max_concurrency(mut self, permits: NonZeroUsize) -> Self {
        self.max_concurrency = Some(permits);
        self
    }

    /// How many hashes may wait for a worker (default: no bound). A hash that finds
    /// the queue full fails at once with [`HashErrorKind::Overloaded`], so a login
    /// flood is shed instead of queued for minutes.
    pub fn max_queue(mut self, waiting: usize) -> Self {
        self.max_queue = Some(waiting);
        self
    }

    /// The nice value hashing threads take while hashing (Linux; default `Some(10)`;
    /// `None` leaves the priority alone). A thread restores its previous value after
    /// the hash when the process may (raising priority back needs `CAP_SYS_NICE` or a
    /// `RLIMIT_NICE`); otherwise the blocking-pool thread keeps the lower priority,
    /// which only matters to other blocking tasks when CPU is short.
    pub fn niceness(mut self, nice: Option<i32>) -> Self {
        self.niceness = nice.map(|n| n.clamp(-20, 19));
        self
    }

    /// Builds the hasher. This computes the dummy hash for
    /// [`verify_dummy`](PasswordHasher::verify_dummy) once, synchronously (one hash at
    /// the configured cost): build at start-up.
    ///
    /// # Errors
    ///
    /// [`HashErrorKind::Config`] for invalid parameters or an over-long pepper.
    pub fn build(self) -> Result<PasswordHasher, HashError> {
        let argon2_params = self.params.to_argon2()?;
        let max_concurrency = self
            .max_concurrency
            .or_else(|| std::thread::available_parallelism().ok())
            .map_or(1, NonZeroUsize::get);
        let mut inner = Inner {
            params: self.params,
            argon2_params: argon2_params.clone(),
            pepper: self.pepper,
            permits: Arc::new(Semaphore::new(max_concurrency)),
            max_concurrency,
            waiting: AtomicUsize::new(0),
            max_queue: self.max_queue.unwrap_or(usize::MAX),
            niceness: self.niceness,
            dummy: String::new(),
            blocks: BlockPool::new(argon2_params.block_count(), max_concurrency),
        };
        let random = Zeroizing::new(random_bytes::<32>());
        inner.dummy = hash_blocking(&inner, &random[..])?;
        Ok(PasswordHasher {
            inner: Arc::new(inner),
        })
    }
}

impl PasswordHasher {
    /// Starts configuring a hasher.
    pub fn builder() -> PasswordHasherBuilder {
        PasswordHasherBuilder {
            params: HashParams::default(),
            pepper: None,
            max_concurrency: None,
            max_queue: None,
            niceness: Some(10),
        }
    }

    /// A hasher with the defaults.
    ///
    /// # Errors
    ///
    /// Never with the default parameters; see [`PasswordHasherBuilder::build`].
    pub fn new() -> Result<Self, HashError> {
        Self::builder().build()
    }

    /// The parameters new hashes use.
    pub fn params(&self) -> HashParams {
        self.inner.params
    }

    /// Hashes a password into a PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
    ///
    /// Does not apply a [`PasswordPolicy`](crate::PasswordPolicy): check new passwords
    /// with one first.
    ///
    /// # Errors
    ///
    /// [`HashErrorKind::InputTooLarge`] over [`MAX_INPUT_BYTES`] (before hashing), or
    /// [`HashErrorKind::Internal`].
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let normalized = normalize_input(password)?;
        self.run("hash", move |inner| {
            hash_blocking(inner, normalized.as_bytes())
        })
        .await
    }

    /// Verifies a password against a stored PHC string, and says whether the hash
    /// should be replaced because the parameters changed.
    ///
    /// # Errors
    ///
    /// [`HashErrorKind::InputTooLarge`] (before hashing), [`HashErrorKind::MalformedHash`]
    /// for a stored value that is not an argon2 PHC string, [`HashErrorKind::Internal`].
    pub async fn verify(&self, password: &Password, phc: &str) -> Result<Verification, HashError> {
        let normalized = normalize_input(password)?;
        // Parse before queueing, so a bad stored value costs nothing.
        PasswordHash::new(phc)
            .map_err(|_| HashError::new(HashErrorKind::MalformedHash, "malformed password hash"))?;
        let phc = phc.to_owned();
        self.run("verify", move |inner| {
            verify_blocking(inner, normalized.as_bytes(), &phc)
        })
        .await
    }

    /// Verifies `password` against a hash of a random password made at build time with
    /// the current parameters, and returns `false`: for unknown accounts, so that they
    /// cost the same time as known ones.
    ///
    /// # Errors
    ///
    /// As [`verify`](Self::verify) (an over-large input is refused the same way).
    pub async fn verify_dummy(&self, password: &Password) -> Result<bool, HashError> {
        let normalized = normalize_input(password)?;
        self.run("verify", move |inner| {
            verify_blocking(inner, normalized.as_bytes(), &inner.dummy)
        })
        .await
        .map(|_| false)
    }

    /// Runs `job` on the blocking pool once a permit is free; `operation` names it
    /// in the metrics.
    async fn run<T: Send + 'static>(
        &self,
        operation: &'static str,
        job: impl FnOnce(&Inner) -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let closed = |_| HashError::new(HashErrorKind::Internal, "hasher closed");
        let permits = &self.inner.permits;
        let permit = match Arc::clone(permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let _queued = Queued::join(&self.inner.waiting, self.inner.max_queue)?;
                Arc::clone(permits).acquire_owned().await.map_err(closed)?
            }
        };
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _priority = LowPriority::enter(inner.niceness);
            let started = Instant::now();
            let result = job(&inner);
            metrics::password_hashed(operation, started.elapsed());
            result
        })
        .await
        .map_err(|_| HashError::new(HashErrorKind::Internal, "hashing task failed"))?
    }
}

fn normalize_input(password: &Password) -> Result<Zeroizing<String>, HashError> {
    normalize(password.expose()).map_err(|_| {
        HashError::new(
            HashErrorKind::InputTooLarge,
            "password input over 1024 bytes",
        )
    })
}

fn argon2(inner: &Inner, params: Params) -> Result<Argon2<'_>, HashError> {
    match &inner.pepper {
        Some(pepper) => {
            Argon2::new_with_secret(pepper, Algorithm::Argon2id, Version::V0x13, params)
                .map_err(|_| HashError::new(HashErrorKind::Config, "invalid pepper"))
        }
        None => Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params)),
    }
}

fn hash_blocking(inner: &Inner, password: &[u8]) -> Result<String, HashError> {
    let salt = random_bytes::<16>();
    let argon2 = argon2(inner, inner.argon2_params.clone())?;
    memory::hash_phc(
        &inner.blocks,
        &argon2,
        &inner.argon2_params,
        password,
        &salt,
    )
}

fn verify_blocking(inner: &Inner, password: &[u8], phc: &str) -> Result<Verification, HashError> {
    let malformed = || HashError::new(HashErrorKind::MalformedHash, "malformed password hash");
    let parsed = PasswordHash::new(phc).map_err(|_| malformed())?;
    let stored = Params::try_from(&parsed).map_err(|_| malformed())?;
    // Verify with the stored algorithm and parameters; the pepper is ours.
    let pepper = inner.pepper.as_deref().map(Vec::as_slice);
    match memory::verify_phc(&inner.blocks, pepper, &parsed, stored.clone(), password)? {
        true => {
            let current = &inner.argon2_params;
            let same = parsed.algorithm.as_str() == "argon2id"
                && parsed.version == Some(Version::V0x13 as u32)
                && stored.m_cost() == current.m_cost()
                && stored.t_cost() == current.t_cost()
                && stored.p_cost() == current.p_cost()
                && stored.output_len() == current.output_len();
            Ok(Verification::Valid {
                needs_rehash: !same,
            })
        }
        false => Ok(Verification::Invalid),
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    OsRng
        .try_fill_bytes(&mut out)
        .expect("the operating system's random source failed");
    out
}

/// Lowers the current thread's scheduling priority until dropped (Linux only).
struct LowPriority {
    #[cfg(target_os = "linux")]
    previous: Option<i32>,
}

impl LowPriority {
    #[cfg(target_os = "linux")]
    fn enter(nice: Option<i32>) -> Self {
        use rustix::{process, thread};
        let previous = nice.and_then(|nice| {
            let tid = Some(thread::gettid());
            let before = process::getpriority_process(tid).ok()?;
            if before >= nice {
                return None;
            }
            process::setpriority_process(tid, nice).ok()?;
            Some(before)
        });
        Self { previous }
    }

    #[cfg(not(target_os = "linux"))]
    fn enter(_nice: Option<i32>) -> Self {
        Self {}
    }
}

impl Drop for LowPriority {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        if let Some(previous) = self.previous {
            // Fails without CAP_SYS_NICE / RLIMIT_NICE; the thread then stays lower.
            let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), previous);
        }
    }
}

// The constant is used in docs and errors; keep them in step.
const _: () = assert!(MAX_INPUT_BYTES == 1024);
