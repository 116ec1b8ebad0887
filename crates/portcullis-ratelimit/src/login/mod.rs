//! The login throttle: [`LoginRateLimitLayer`] → [`LoginRateLimit`] →
//! [`ResponseFuture`](portcullis_core::auth::ResponseFuture).
//!
//! Put it on the login route; the handler stays as it is. For each attempt:
//!
//! 1. the client IP ([`ClientIpResolver`](portcullis_core::ClientIpResolver)) spends
//!    one unit of the per-IP **attempt** quota (default 20 per minute);
//! 2. the body is read, up to a limit (default 16 KiB; more is `413`), and the account
//!    is found in it: the JSON or `application/x-www-form-urlencoded` field `email` or
//!    `username` by default, or a closure; trimmed and lowercased. The same bytes are
//!    handed on to the handler;
//! 3. the attempt is counted, provisionally, as a failure of the IP (default: 20 free
//!    per 15 min) and of the **account** (default: 5 free per 15 min, from any IP);
//!    past the free failures each failure doubles the wait, from 1 s up to 15 min;
//! 4. the handler runs; its status decides: `401`/`403` (or your predicate) keep the
//!    failure; `2xx` clears the account's failures (not the IP's); anything else
//!    refunds it.
//!
//! A refused attempt gets the same `429` (problem+json naming the wait, `Retry-After`,
//! `RateLimit-Policy`, `RateLimit`) whichever bucket refused it and whether or not the
//! account exists; the layer never knows which accounts exist. Counting before the
//! handler runs means parallel guesses are counted at once, not after they finish.
//!
//! # Security
//!
//! - Accounts are kept and logged only as a salted SHA-256 (the salt is random per
//!   layer); events carry no account and no password.
//! - An attempt without a recognisable account counts against one shared "no account"
//!   bucket, so a mismatch between the handler's field and the layer's never turns the
//!   account limit off.
//! - Memory is capped (default 100,000 IPs and 100,000 accounts); beyond, new keys
//!   share one overflow bucket (limited together, never unlimited, and no tracked
//!   key is evicted early, so spraying keys cannot reset a victim's count).

mod backoff;
mod layer;
mod service;

pub use self::{
    backoff::Backoff,
    layer::{DEFAULT_BODY_LIMIT, LoginRateLimitLayer},
    service::LoginRateLimit,
};
