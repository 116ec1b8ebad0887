//! Whatever follows `Bearer ` in `Authorization`: the compact-JWS split, base64url,
//! the header and the claims, then the signature check. Nothing unsigned may pass.

#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use portcullis_jwt::JwtAuthenticator;

static VERIFIER: LazyLock<JwtAuthenticator> = LazyLock::new(common::verifier);

fuzz_target!(|data: &[u8]| {
    let mut value = b"Bearer ".to_vec();
    value.extend_from_slice(data);
    for header in [&value[..], data] {
        if let Some(parts) = common::parts_with("authorization", header) {
            // Unsigned bytes never authenticate: the fuzzer has no key.
            assert!(
                !matches!(common::authenticate(&*VERIFIER, &parts), Ok(Some(_))),
                "an unsigned token was accepted"
            );
        }
    }
});
