//! The access token the layer benchmarks and bench servers present: one realistic
//! claims set (409 bytes once signed with HS256), valid until 2100 so one minted token
//! serves every run. Included with `#[path]` by `jwt_bench_server`, `bench_jwks_server`
//! and the workspace's `benches/layer.rs`.

use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

/// The audience the bench tokens name and the bench layers require.
pub(crate) const AUDIENCE: &str = "https://api.example.com";

/// The bench claims for `issuer`, signed with `key` under `header`.
pub(crate) fn sign(header: &Header, key: &EncodingKey, issuer: &str) -> String {
    let claims = json!({
        "iss": issuer,
        "sub": "user-7f3a9c2e-41d8-4b9a-a7e3-2c1d5f8e9b04",
        "aud": AUDIENCE,
        "exp": 4_102_444_800u64,
        "iat": 1_700_000_000u64,
        "jti": "9f1c2b7e4d3a8f6e5c1b0a9d8e7f6a5b",
        "scope": "openid profile orders:read",
        "roles": ["user"],
    });
    jsonwebtoken::encode(header, &claims, key).expect("sign")
}
