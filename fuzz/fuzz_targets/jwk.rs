//! One JWK, as a JWKS document or a configuration file holds it.

#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use portcullis_jwt::Key;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        common::within_budget(|| Key::from_jwk(text).is_ok());
    }
});
