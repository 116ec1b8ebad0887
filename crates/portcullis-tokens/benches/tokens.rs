//! Issuing access tokens (with the raw `jsonwebtoken::encode` of the same claims as the
//! floor), revocation checks (fast path and with entries), and refresh rotation.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::time::{Duration, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_core::{Revocation, RevocationQuery};
use portcullis_tokens::{
    Grant, MemoryRefreshStore, MemoryRevocation, RefreshTokens, RevocationStore, RevokedToken,
    SigningAlgorithm, SigningKey, TokenIssuer,
};

fn issue(c: &mut Criterion) {
    let mut group = c.benchmark_group("issue");
    let grant = Grant::new("user-42", "web")
        .roles(["user"])
        .scopes(["read", "write"]);
    for alg in [
        SigningAlgorithm::EdDsa,
        SigningAlgorithm::Es256,
        SigningAlgorithm::Hs256,
    ] {
        let key = SigningKey::generate(alg).unwrap();
        let pem = key.to_pkcs8_pem().ok();
        let issuer = TokenIssuer::builder("https://auth.example.com", "api", key).build();
        group.bench_function(format!("{alg}"), |b| {
            b.iter(|| issuer.issue(&grant).unwrap())
        });
        // Floor: jsonwebtoken::encode of a comparable claims set with the same key.
        let encoding = match (&pem, alg) {
            (Some(pem), SigningAlgorithm::EdDsa) => {
                jsonwebtoken::EncodingKey::from_ed_pem(pem.as_bytes()).unwrap()
            }
            (Some(pem), _) => jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
            (None, _) => jsonwebtoken::EncodingKey::from_secret(&[7u8; 32]),
        };
        let claims = serde_json::json!({
            "iss": "https://auth.example.com", "sub": "user-42", "aud": "api",
            "exp": 2_000_000_000u64, "iat": 1_999_999_100u64, "jti": "AAAAAAAAAAAAAAAAAAAAAA",
            "client_id": "web", "roles": ["user"], "scope": "read write",
        });
        let header = jsonwebtoken::Header::new(alg.to_jsonwebtoken());
        group.bench_function(format!("{alg}_floor_jsonwebtoken_encode"), |b| {
            b.iter(|| jsonwebtoken::encode(&header, &claims, &encoding).unwrap())
        });
    }
    group.finish();
}

fn revocation(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("revocation_check");
    let query = RevocationQuery {
        issuer: Some("https://auth.example.com"),
        subject: "user-42",
        token_id: Some("AAAAAAAAAAAAAAAAAAAAAA"),
        issued_at: Some(SystemTime::now()),
    };
    let empty = MemoryRevocation::new();
    group.bench_function("nothing_revoked", |b| b.iter(|| empty.check(&query)));
    let busy = MemoryRevocation::new();
    runtime.block_on(async {
        for i in 0..10_000 {
            busy.revoke_token(RevokedToken {
                issuer: None,
                token_id: &format!("jti-{i}"),
                subject: &format!("user-{i}"),
                expires_at: SystemTime::now() + Duration::from_secs(900),
            })
            .await
            .unwrap();
        }
        busy.revoke_subject("someone-else", SystemTime::now())
            .await
            .unwrap();
    });
    group.bench_function("10k_denied_not_this_one", |b| b.iter(|| busy.check(&query)));
    group.finish();
}

fn refresh(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let tokens = RefreshTokens::new(MemoryRefreshStore::new());
    let mut current = runtime
        .block_on(tokens.issue("user-42", "web", portcullis_tokens::SessionStamp::default()))
        .unwrap();
    c.bench_function("refresh_rotate_memory_store", |b| {
        b.iter(|| {
            current = runtime
                .block_on(tokens.rotate(current.token.as_str(), "web"))
                .unwrap();
        })
    });
}

criterion_group!(benches, issue, revocation, refresh);
criterion_main!(benches);
