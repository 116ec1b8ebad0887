//! `Forwarded` and `X-Forwarded-For` from a trusted proxy: the client address must be
//! one the headers or the peer name, never a panic. The input is split at its first
//! 0xff byte: `Forwarded`, then `X-Forwarded-For`.

#![no_main]

#[path = "common.rs"]
mod common;

use std::{net::IpAddr, sync::LazyLock};

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use portcullis_core::ClientIpResolver;

static RESOLVER: LazyLock<ClientIpResolver> = LazyLock::new(|| {
    ClientIpResolver::new()
        .trust_proxies(["10.0.0.0/8", "::1/128"])
        .expect("networks")
});

fuzz_target!(|data: &[u8]| {
    let (forwarded, xff) = match data.iter().position(|&b| b == 0xff) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b""[..]),
    };
    let mut headers = HeaderMap::new();
    for (name, value) in [("forwarded", forwarded), ("x-forwarded-for", xff)] {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(name, value);
        }
    }
    for peer in ["10.1.2.3", "::1", "203.0.113.9"] {
        let peer: IpAddr = peer.parse().expect("address");
        let client = common::within_budget(|| RESOLVER.resolve(peer, &headers));
        if peer.to_string() == "203.0.113.9" {
            // An untrusted peer is the client, whatever its headers say.
            assert_eq!(client.ip(), peer);
        }
    }
});
