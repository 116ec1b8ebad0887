//! A `DPoP` proof header as a token endpoint receives it: the compact-JWS split, the
//! header with its embedded JWK, the claims, the `htm`/`htu`/`iat` checks and the
//! signature. No proof the fuzzer made (it holds no key of a seed) may pass.

#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::LazyLock;

use http::Method;
use libfuzzer_sys::fuzz_target;
use portcullis_core::MaybeReady;
use portcullis_jwt::dpop::Dpop;

static DPOP: LazyLock<Dpop> =
    LazyLock::new(|| Dpop::new().public_url("https://as.example").expect("public URL"));

fuzz_target!(|data: &[u8]| {
    let Some(mut parts) = common::parts_with("dpop", data) else {
        return;
    };
    parts.method = Method::POST;
    parts.uri = http::Uri::from_static("/token");
    let answer = common::within_budget(|| match DPOP.verify_proof(&parts) {
        MaybeReady::Ready(answer) => answer,
        MaybeReady::Pending(_) => panic!("the in-memory replay cache awaited"),
    });
    // The seeds' signatures are over a stale `iat`; a fresh one needs the key.
    assert!(
        !matches!(answer, Ok(Some(_))),
        "a proof without a fresh signature was accepted"
    );
});
