//! An API key as sent in `X-API-Key` or `Authorization: Bearer`: the format check
//! (prefix, alphabet, checksum), then the store look-up. Unknown keys never pass.

#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use portcullis_apikey::{ApiKeyAuthenticator, KeyFormat, MemoryStore};

static KEYS: LazyLock<ApiKeyAuthenticator<MemoryStore>> = LazyLock::new(|| {
    ApiKeyAuthenticator::new(MemoryStore::new(), KeyFormat::new("pk_").expect("format"))
});

fuzz_target!(|data: &[u8]| {
    let _ = KeyFormat::new("pk_").expect("format").parse_bytes(data);
    let mut bearer = b"Bearer ".to_vec();
    bearer.extend_from_slice(data);
    for (name, value) in [("x-api-key", data), ("authorization", &bearer[..])] {
        if let Some(parts) = common::parts_with(name, value) {
            assert!(
                !matches!(common::authenticate(&*KEYS, &parts), Ok(Some(_))),
                "a key that was never issued authenticated"
            );
        }
    }
});
