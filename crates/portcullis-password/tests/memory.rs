//! Resident memory stays bounded by the hashing concurrency, however many hashes run
//! and however many threads run them. Its own test binary: it reads the process's RSS.

use std::{num::NonZeroUsize, sync::Arc};

use argon2::{PasswordHash, PasswordVerifier};
use portcullis_password::{Password, PasswordHasher};

/// `VmRSS` of this process, in MiB.
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib / 1024.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundreds_of_hashes_keep_memory_within_concurrency_times_the_cost() {
    const CONCURRENCY: usize = 2;
    let hasher = Arc::new(
        PasswordHasher::builder()
            .max_concurrency(NonZeroUsize::new(CONCURRENCY).unwrap())
            .build()
            .unwrap(),
    );
    let cost_mib = f64::from(hasher.params().memory_kib) / 1024.0;
    let before = rss_mib();
    // Hashes and verifications, right and wrong, 64 in flight at a time.
    let mut peak: f64 = 0.0;
    for round in 0..4 {
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let hasher = hasher.clone();
                tokio::spawn(async move {
                    let password = Password::new(format!("passphrase number {round}-{i}"));
                    let hash = hasher.hash(&password).await.unwrap();
                    let wrong = Password::new(format!("another phrase {round}-{i}"));
                    assert!(!hasher.verify(&wrong, &hash).await.unwrap().is_valid());
                    hash
                })
            })
            .collect();
        for task in tasks {
            let hash = task.await.unwrap();
            // Interoperable: the argon2 crate's own verifier accepts what we wrote.
            assert!(PasswordHash::new(&hash).is_ok());
        }
        peak = peak.max(rss_mib());
    }
    let growth = peak - before;
    let bound = CONCURRENCY as f64 * cost_mib + 16.0;
    eprintln!("RSS {before:.1} MiB before, {peak:.1} MiB at peak (+{growth:.1}; bound {bound:.1})");
    assert!(
        growth < bound,
        "RSS grew {growth:.1} MiB, bound {bound:.1} MiB"
    );
}

#[tokio::test]
async fn hashes_verify_with_the_argon2_crate_and_back() {
    let hasher = PasswordHasher::builder()
        .max_concurrency(NonZeroUsize::new(1).unwrap())
        .build()
        .unwrap();
    let password = Password::new("correct horse battery staple".to_owned());
    let ours = hasher.hash(&password).await.unwrap();
    let parsed = PasswordHash::new(&ours).unwrap();
    assert!(
        argon2::Argon2::default()
            .verify_password(b"correct horse battery staple", &parsed)
            .is_ok()
    );
}
