//! The login throttle: [`LoginRateLimitLayer`] → [`LoginRateLimit`] →
//! [`ResponseFuture`](portcullis_core::auth::ResponseFuture), counting in a
//! [`LoginBackend`] ([`MemoryLoginBackend`] by default).
//!
//! Put it on the login route; the handler stays as it is. For each attempt:
//!
//! 1. the body is read, up to a limit (default 16 KiB; more is `413`), and the account
//!    is found in it: the JSON or `application/x-www-form-urlencoded` field `email` or
//!    `username` by default, or a closure; trimmed and lowercased. The same bytes are
//!    handed on to the handler;
//! 2. the backend decides, in one atomic step, on four limits, and counts the attempt
//!    against the first and, provisionally, as a failure against the other three:
//!    - **attempts per IP**, failed or not (default 20 per minute);
//!    - **failures per IP**, on any account (default 100 free a day): one IP guessing
//!      slowly across many accounts;
//!    - **consecutive failures per account and IP** (default 5 free a day), cleared
//!      by a success of that account from that IP: one IP guessing one account;
//!    - **failures per account**, from any IP (default 10 free an hour): many IPs
//!      guessing one account. Its wait binds only the IPs that are themselves in the
//!      account-and-IP count (see below);
//!
//!    past the free failures each failure doubles the key's wait, from 1 s up to
//!    15 min ([`Backoff`]). A window opens at a key's first failure and closes after
//!    its length, whatever happens in between;
//! 3. the handler runs; its status settles the attempt: `401`/`403` (or your
//!    predicate) keep the failure; `2xx` clears the account-and-IP count and refunds
//!    the rest; anything else (a `422` before any password was checked, say) refunds
//!    everything, and removes the entries the attempt created. An attempt whose
//!    request is dropped before the handler answers stays counted as a failure.
//!
//! This is the scheme of rate-limiter-flexible's brute-force protection
//! (`limiterConsecutiveFailsByUsernameAndIP` and `limiterSlowBruteByIP`), with backoff
//! instead of blocking and a guard against distributed guessing added.
//!
//! A refused attempt gets the same `429` (problem+json naming the wait, `Retry-After`,
//! `RateLimit-Policy`, `RateLimit`) whichever limit refused it and whether or not the
//! account exists; the layer never knows which accounts exist. Counting before the
//! handler runs means parallel guesses are counted at once, not after they finish.
//!
//! # Security
//!
//! - **Other IPs' failures never refuse the owner.** A correct password from an IP
//!   that has no failure on the account in its account-and-IP window is refused only
//!   by that IP's own limits (its attempts, its failures). An attacker with a thousand
//!   addresses failing on an account slows down those addresses, not the owner.
//! - **The per-account guard slows attackers, not the owner.** Once an account has
//!   more failures than its free ones, from any mix of IPs, the account's wait
//!   applies to every IP that has failed on the account in its own account-and-IP
//!   window, and to no other; and for such an IP it ends at the latest the longest
//!   delay (15 min) after that IP's own last failure. So an attacker's addresses get
//!   one guess each and then one per 15 minutes at most, however many free
//!   account-and-IP failures they had; an owner who mistyped from an IP waits at most
//!   15 minutes after their own last mistake, whatever the attacker does meanwhile,
//!   and is never refused from an IP where they did not fail.
//! - **Backoff, not lockout**: no wait exceeds its [`Backoff`]'s longest delay, and
//!   every window closes a fixed time after it opened, so a failure now and then
//!   cannot keep a count alive.
//! - **Only failures make entries**: an attempt that ends neither in a failure nor
//!   in a success leaves nothing behind, so a flood of requests refused before any
//!   password check fills no map.
//! - **No shared overflow bucket**: [`MemoryLoginBackend`] keeps at most `max_keys`
//!   entries per map and drops the oldest to make room; a new account or IP always
//!   gets a count of its own.
//! - Accounts are kept and logged only as a salted SHA-256 (the salt is random per
//!   backend, or shared through the store); events carry no account and no password.
//! - An attempt without a recognisable account counts against one "no account"
//!   account, so a mismatch between the handler's field and the layer's never turns
//!   the account limits off (it turns them into per-IP limits).
//! - A backend that fails is answered `503`: the throttle fails closed.
//!
//! # Several instances
//!
//! [`MemoryLoginBackend`] counts per process: `N` instances allow `N` times the
//! budget. `portcullis-redis`'s `RedisLoginThrottle` keeps the same counts in Redis,
//! one Lua script per decision, so every instance shares one budget: build the layer
//! with `LoginRateLimitLayer::with_backend(RedisLoginThrottle::new(&redis, "login"))`
//! and configure it as usual. A [`LoginBackend`] of your own plugs in the same way.

mod backend;
mod backoff;
mod layer;
mod lru;
mod memory;
mod service;

pub use self::{
    backend::{Admission, LoginAttempt, LoginBackend, LoginBucket, LoginLimits, LoginOutcome},
    backoff::Backoff,
    layer::{DEFAULT_BODY_LIMIT, LoginRateLimitLayer},
    memory::{MemoryLoginBackend, MemoryLoginTicket, Tracked},
    service::LoginRateLimit,
};
