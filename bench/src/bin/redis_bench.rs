//! Redis rate-limit checks per second and latency percentiles: one task checking
//! sequentially, then many tasks at once, all on one `Redis` handle (one multiplexed
//! connection; concurrent checks are pipelined on it).
//!
//! ```text
//! cargo run --release -p portcullis-bench --bin redis_bench -- [SECONDS] [TASKS]
//! ```
//!
//! Reads `REDIS_URL` (default `redis://127.0.0.1:6379`). Keys live under a random
//! prefix and expire within a millisecond of the last check.

use std::{
    num::NonZeroU32,
    sync::Arc,
    time::{Duration, Instant},
};

use portcullis_ratelimit::Quota;
use portcullis_redis::{Redis, RedisRateLimit};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().map_or(Ok(5), |s| s.parse())?;
    let tasks: usize = args.next().map_or(Ok(64), |s| s.parse())?;
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let redis = Redis::open(&url)?
        .with_prefix(&format!("bench:{:x}:", rand::random::<u32>()))
        .with_timeout(Duration::from_secs(2));
    redis.ping().await?;
    // Never limited: the figures are the cost of the check itself.
    let quota = Quota::per_second(NonZeroU32::MAX);
    let backend = Arc::new(RedisRateLimit::new(&redis, "bench", quota));

    // Warm up: load the script, open the connection.
    run(&backend, 1, Duration::from_millis(500)).await;
    for concurrency in [1, tasks] {
        let (checks, elapsed, mut latencies) =
            run(&backend, concurrency, Duration::from_secs(seconds)).await;
        latencies.sort_unstable();
        let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
        println!(
            "tasks={concurrency:<3} checks={checks:<8} checks/s={:<9.0} p50={}us p99={}us max={}us",
            checks as f64 / elapsed.as_secs_f64(),
            pct(0.50),
            pct(0.99),
            latencies.last().copied().unwrap_or(0),
        );
    }
    Ok(())
}

/// `concurrency` tasks check in a loop for `time`; returns the number of checks, the
/// time taken and every check's latency in microseconds.
async fn run(
    backend: &Arc<RedisRateLimit>,
    concurrency: usize,
    time: Duration,
) -> (usize, Duration, Vec<u32>) {
    let started = Instant::now();
    let deadline = started + time;
    let handles: Vec<_> = (0..concurrency)
        .map(|task| {
            let backend = Arc::clone(backend);
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(100_000);
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let key = format!("client-{}", (task as u64 * 7919 + n) % 1000);
                    let t = Instant::now();
                    let decision = backend
                        .check_key(key.as_str())
                        .await
                        .expect("redis check failed");
                    latencies.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
                    assert!(decision.is_allowed());
                    n += 1;
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for handle in handles {
        all.extend(handle.await.expect("bench task panicked"));
    }
    (all.len(), started.elapsed(), all)
}
