//! The cost of one argon2id hash and verify at the default parameters, with the raw
//! argon2 call over the same input as the floor.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::time::Duration;

use argon2::{Algorithm, Argon2, Params, Version};
use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_password::{Password, PasswordHasher};

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let hasher = PasswordHasher::builder().niceness(None).build().unwrap();
    let password = Password::new("correct horse battery staple");
    let hash = runtime.block_on(hasher.hash(&password)).unwrap();

    let mut group = c.benchmark_group("argon2id_default");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("floor_raw_argon2_hash_into", |b| {
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default());
        let mut out = [0u8; 32];
        b.iter(|| {
            argon2
                .hash_password_into(
                    b"correct horse battery staple",
                    b"0123456789abcdef",
                    &mut out,
                )
                .unwrap()
        });
    });
    group.bench_function("hash", |b| {
        b.iter(|| runtime.block_on(hasher.hash(&password)).unwrap())
    });
    group.bench_function("verify_known_account", |b| {
        b.iter(|| runtime.block_on(hasher.verify(&password, &hash)).unwrap())
    });
    group.bench_function("verify_dummy_unknown_account", |b| {
        b.iter(|| runtime.block_on(hasher.verify_dummy(&password)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
