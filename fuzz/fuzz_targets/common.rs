//! What the targets share: a JWT verifier with a known HMAC key, and a time limit
//! per input.

#![allow(dead_code)] // Each target uses a part.

use std::{
    alloc::System,
    time::{Duration, Instant},
};

use cap::Cap;

use http::{HeaderValue, Request, request::Parts};
use portcullis_core::{AuthResult, Authenticator, MaybeReady};
use portcullis_jwt::{Algorithm, JwtAuthenticator, Key};

/// The HMAC secret the verifier trusts (and `signed_parts` signs with).
pub const SECRET: &[u8] = b"fuzzing secret, 32 bytes or more!!";

/// No single input may take longer than this.
pub const SLOW: Duration = Duration::from_millis(10);

/// The Rust heap may never hold more than this: an allocation past it fails, which
/// aborts the process and makes libFuzzer keep the input as a crash. (libFuzzer's own
/// `-malloc_limit_mb` needs a sanitizer's malloc hooks, which stable Rust lacks.)
pub const HEAP_CAP: usize = 32 * 1024 * 1024;

#[global_allocator]
static HEAP: Cap<System> = Cap::new(System, HEAP_CAP);

pub fn verifier() -> JwtAuthenticator {
    JwtAuthenticator::builder()
        .key(Key::hmac(Algorithm::HS256, SECRET).expect("key"))
        .issuer("https://issuer.example")
        .audience("fuzz")
        .build()
        .expect("verifier")
}

/// A GET request's parts with `name: value`, if `value` is a valid header value.
pub fn parts_with(name: &'static str, value: &[u8]) -> Option<Parts> {
    let value = HeaderValue::from_bytes(value).ok()?;
    let (mut parts, ()) = Request::get("/").body(()).ok()?.into_parts();
    parts.headers.insert(name, value);
    Some(parts)
}

/// Runs `f` and checks it took less than [`SLOW`]. On a shared machine a thread can
/// be preempted mid-input, so a slow run is timed twice more and only the fastest of
/// the three counts.
pub fn within_budget<T>(mut f: impl FnMut() -> T) -> T {
    let mut fastest = Duration::MAX;
    let mut result;
    let mut tries = 0;
    loop {
        let started = Instant::now();
        result = f();
        fastest = fastest.min(started.elapsed());
        tries += 1;
        if fastest < SLOW || tries == 3 {
            break;
        }
    }
    assert!(fastest < SLOW, "one input took {fastest:?} at best");
    result
}

/// Runs `authenticator` on `parts`: it must answer at once (no I/O is configured), and
/// within the budget.
pub fn authenticate(authenticator: &impl Authenticator, parts: &Parts) -> AuthResult {
    within_budget(|| match authenticator.authenticate(parts) {
        MaybeReady::Ready(result) => result,
        MaybeReady::Pending(_) => panic!("an in-memory authenticator awaited"),
    })
}
