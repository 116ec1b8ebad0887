//! A token signed with the verifier's own key around fuzzed header and claims JSON:
//! what the parsers meet after the signature holds (a compromised or careless issuer).
//! The input is split at its first 0xff byte: header JSON, then claims JSON.

#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::LazyLock;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use portcullis_jwt::JwtAuthenticator;
use sha2::Sha256;

static VERIFIER: LazyLock<JwtAuthenticator> = LazyLock::new(common::verifier);

fuzz_target!(|data: &[u8]| {
    let (header, claims) = match data.iter().position(|&b| b == 0xff) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&br#"{"alg":"HS256","typ":"JWT"}"#[..], data),
    };
    let mut token = URL_SAFE_NO_PAD.encode(header);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(claims));
    let mut mac = Hmac::<Sha256>::new_from_slice(common::SECRET).expect("hmac key");
    mac.update(token.as_bytes());
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
    let value = format!("Bearer {token}");
    if let Some(parts) = common::parts_with("authorization", value.as_bytes()) {
        if let Ok(Some(principal)) = common::authenticate(&*VERIFIER, &parts) {
            // Whatever got in carries what the verifier requires.
            assert_eq!(principal.issuer(), Some("https://issuer.example"));
        }
    }
});
