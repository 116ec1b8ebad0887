//! The JWT layer (HS256, one token, a verified-token cache hit) with revocation
//! checked four ways, alternated in one run: none (bare layer), in process
//! (`MemoryRevocation`), Redis with one round trip per request (an `MGET` of the
//! subject's cut-offs and the `jti`'s entries, as `RedisRevocation` did before its
//! local view), and `RedisRevocation` (the view kept fresh by pub/sub).
//!
//! ```text
//! cargo run --release -p portcullis-bench --bin revocation_bench -- [ROUNDS] [PER_ROUND]
//! ```
//!
//! Reads `REDIS_URL` (default `redis://127.0.0.1:6379`); keys live under a random
//! prefix and are deleted at the end. Prints a Markdown table.

use std::{sync::Arc, time::Duration};

use axum::Router;
use http::Request;
use portcullis_bench::{
    contenders::{hello, jwt},
    harness::{Axum, Contender, Rt, run_row},
    keys::{Alg, ISSUER},
    stats::thousands,
};
use portcullis_core::{AuthError, AuthLayer, MaybeReady, Revocation, RevocationQuery};
use portcullis_jwt::JwtAuthenticator;
use portcullis_redis::{Redis, RedisRevocation};
use portcullis_tokens::{MemoryRevocation, RevocationStore};
use redis::aio::ConnectionManager;

/// Revocation as `RedisRevocation` checked it before: one `MGET` per request.
struct RoundTrip {
    conn: ConnectionManager,
    prefix: String,
}

impl Revocation for RoundTrip {
    fn check(&self, query: &RevocationQuery<'_>) -> MaybeReady<Result<(), AuthError>> {
        let mut keys = vec![format!("{}rev:sub:{}", self.prefix, query.subject)];
        if let Some(issuer) = query.issuer {
            let scoped = format!(
                "{}rev:isub:{}:{issuer}{}",
                self.prefix,
                issuer.len(),
                query.subject
            );
            keys.push(scoped);
        }
        if let Some(jti) = query.token_id {
            keys.push(format!("{}rev:jti:{jti}", self.prefix));
            if let Some(issuer) = query.issuer {
                keys.push(format!(
                    "{}rev:ijti:{}:{issuer}{jti}",
                    self.prefix,
                    issuer.len()
                ));
            }
        }
        let mut conn = self.conn.clone();
        MaybeReady::pending(async move {
            let mut cmd = redis::cmd("MGET");
            cmd.arg(&keys);
            let mget = cmd.query_async::<Vec<Option<String>>>(&mut conn);
            match tokio::time::timeout(Duration::from_millis(250), mget).await {
                Ok(Ok(values)) if values.iter().all(Option::is_none) => Ok(()),
                Ok(Ok(_)) => Err(AuthError::revoked()),
                _ => Err(AuthError::unavailable("revocation_unavailable")),
            }
        })
    }
}

fn layer(revocation: Option<Arc<dyn Revocation>>) -> Router {
    let authenticator: JwtAuthenticator = match revocation {
        None => jwt(Alg::Hs256, true),
        Some(revocation) => JwtAuthenticator::builder()
            .key(Alg::Hs256.verifying_key())
            .issuer(ISSUER)
            .audience(portcullis_bench::keys::AUDIENCE)
            .revocation(revocation)
            .build()
            .expect("configuration"),
    };
    hello().route_layer(AuthLayer::new(authenticator))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map_or(Ok(9), |s| s.parse())?;
    let per_round: usize = args.next().map_or(Ok(20_000), |s| s.parse())?;
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    // One worker drives the Redis connections and the view's task between rounds; the
    // requests themselves run one after the other on the bench thread.
    let rt: Rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let prefix = format!("bench:{:x}:", rand::random::<u32>());

    let (round_trip, view, memory) = rt.block_on(async {
        let redis = Redis::open(&url)?.with_prefix(&prefix);
        redis.ping().await?;
        let conn = ConnectionManager::new(redis::Client::open(url.as_str())?).await?;
        let view = RedisRevocation::new(&redis);
        view.synced(Duration::from_secs(5)).await?;
        // Something revoked, as in a running service: another subject's cut-off.
        let now = std::time::SystemTime::now();
        view.revoke_subject("someone-else", now).await?;
        let memory = MemoryRevocation::new();
        memory.revoke_subject("someone-else", now).await?;
        let round_trip = RoundTrip {
            conn,
            prefix: prefix.clone(),
        };
        Ok::<_, Box<dyn std::error::Error>>((round_trip, view, memory))
    })?;

    let token = Alg::Hs256.signer().token();
    let request = |_: usize| {
        Request::get("/")
            .header("authorization", format!("Bearer {token}"))
            .body(())
            .unwrap()
    };
    let contenders = vec![
        Contender::new("no revocation", Axum(layer(None))),
        Contender::new("in process", Axum(layer(Some(Arc::new(memory))))),
        Contender::new("redis, round trip", Axum(layer(Some(Arc::new(round_trip))))),
        Contender::new("redis, local view", Axum(layer(Some(Arc::new(view))))),
    ];
    let warm = per_round;
    let row = run_row(&rt, rounds, contenders, per_round, warm, &request);

    println!(
        "| revocation (HS256, one token, cache hit) | ns per request | ÷ in process |\n|---|---|---|"
    );
    for column in [
        "no revocation",
        "in process",
        "redis, round trip",
        "redis, local view",
    ] {
        let ratio = row
            .per_round(column, "in process", |a, b| a / b)
            .expect("column");
        println!(
            "| {column} | {} | {ratio:.2}× |",
            thousands(row.median(column).expect("column"))
        );
    }
    println!("\n{rounds} rounds of {per_round} requests, medians; ratios per round.");

    rt.block_on(async {
        let mut conn = redis::Client::open(url.as_str())?
            .get_multiplexed_async_connection()
            .await?;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            redis::cmd("DEL")
                .arg(keys)
                .query_async::<()>(&mut conn)
                .await?;
        }
        Ok::<_, redis::RedisError>(())
    })?;
    Ok(())
}
