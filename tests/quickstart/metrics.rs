//! `GET /metrics` on the running quickstart: every counter moves by exactly what a
//! scripted mix of requests sent, and forged credentials from thousands of addresses
//! add no series.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use portcullis_apikey::KeyFormat;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::{
    ADMIN, ADMIN_PW, Pair,
    harness::{Http, Options, Server},
    login, post_refresh, register,
};

/// One scrape: each series (name and sorted labels) and its value.
#[derive(Debug)]
struct Scrape(BTreeMap<String, f64>);

impl Scrape {
    async fn take(s: &Server) -> Self {
        let r = s.get("/metrics").go().await;
        r.expect(200);
        let mut series = BTreeMap::new();
        for line in r.text().lines() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line.rsplit_once(' ').expect("a sample line");
            series.insert(canonical(key), value.parse().expect("a number"));
        }
        Self(series)
    }

    fn get(&self, key: &str) -> f64 {
        self.0.get(&canonical(key)).copied().unwrap_or(0.0)
    }
}

/// `name{b="2",a="1"}` as `name{a="1",b="2"}`: label order is the exporter's choice.
fn canonical(key: &str) -> String {
    let Some((name, labels)) = key.split_once('{') else {
        return key.to_owned();
    };
    let mut labels: Vec<&str> = labels.trim_end_matches('}').split(',').collect();
    labels.sort_unstable();
    format!("{name}{{{}}}", labels.join(","))
}

/// How far each of `keys` moved between two scrapes.
fn moved(before: &Scrape, after: &Scrape, key: &str) -> f64 {
    after.get(key) - before.get(key)
}

/// A token like `access` but with `claims` changed and `kid` in the header, signed
/// with the quickstart's own key (read from its data directory).
fn forge(s: &Server, access: &str, kid: &str, claims: impl FnOnce(&mut Value)) -> String {
    let pem = std::fs::read(s.data_dir.path().join("signing-key.pem")).expect("signing key");
    let key = EncodingKey::from_ed_pem(&pem).expect("an Ed25519 key");
    let payload = access.split('.').nth(1).expect("a JWS");
    let mut body: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims(&mut body);
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, &body, &key).expect("signed")
}

const DECISIONS: &str = "portcullis_auth_decisions_total";

fn decision(outcome: &str, code: &str, reason: &str) -> String {
    format!(r#"{DECISIONS}{{layer="auth",outcome="{outcome}",code="{code}",reason="{reason}"}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_move_by_exactly_what_was_sent() {
    // A zero reuse interval: a second use of a refresh token is reuse at once.
    let s = Server::start(Options::default().env("REFRESH_REUSE_SECONDS", "0")).await;
    register(&s, ADMIN, ADMIN_PW, None).await;
    let session: Pair = login(&s, ADMIN, ADMIN_PW).await;
    let jwks = s.get("/.well-known/jwks.json").go().await.json();
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_owned();
    let expired = forge(&s, &session.access, &kid, |c| {
        c["iat"] = 1_000_000_000.into();
        c["exp"] = 1_000_000_900.into();
    });
    let unknown_kid = forge(&s, &session.access, "no-such-kid", |_| {});
    let before = Scrape::take(&s).await;

    // Valid token: three reads and one API key made with it.
    for _ in 0..3 {
        s.get("/me").bearer(&session.access).go().await.expect(200);
    }
    let r = s
        .post("/api-keys")
        .bearer(&session.access)
        .json(&json!({ "name": "metrics", "scopes": ["data:read"] }))
        .go()
        .await;
    r.expect(201);
    let api_key = r.json()["key"].as_str().unwrap().to_owned();
    // Expired token, unknown kid: twice each.
    for token in [&expired, &expired, &unknown_kid, &unknown_kid] {
        s.get("/me").bearer(token).go().await.expect(401);
    }
    // The API key twice, and a well-formed key nobody issued once.
    for _ in 0..2 {
        let r = s.get("/api/data").header("x-api-key", &api_key).go().await;
        r.expect(200);
    }
    let stranger = KeyFormat::new("qs_").unwrap().generate().unwrap();
    let r = s
        .get("/api/data")
        .header("x-api-key", stranger.expose_secret())
        .go()
        .await;
    r.expect(401);
    // Refresh once, then present the spent token again: reuse, the family revoked.
    post_refresh(&s, &session.refresh).await.expect(200);
    post_refresh(&s, &session.refresh)
        .await
        .problem(401, "invalid_grant");
    // Refreshes until the per-IP session limit answers 429 five times.
    let (mut refused, mut throttled) = (0, 0);
    while throttled < 5 {
        match post_refresh(&s, &"A".repeat(43)).await.status.as_u16() {
            401 => refused += 1,
            429 => throttled += 1,
            other => panic!("unexpected {other}"),
        }
        assert!(refused < 200, "no 429 after {refused} refreshes");
    }
    let after = Scrape::take(&s).await;
    let m = |key: &str| moved(&before, &after, key);

    assert_eq!(m(&decision("allowed", "none", "none")), 3.0 + 1.0 + 2.0);
    assert_eq!(
        m(&decision("rejected", "invalid_token", "token_expired")),
        2.0
    );
    assert_eq!(
        m(&decision("rejected", "invalid_token", "unknown_kid")),
        2.0
    );
    assert_eq!(
        m(&decision("rejected", "invalid_token", "api_key_unknown")),
        1.0
    );
    assert_eq!(
        m(r#"portcullis_api_key_lookups_total{result="valid"}"#),
        2.0
    );
    assert_eq!(
        m(r#"portcullis_api_key_lookups_total{result="unknown"}"#),
        1.0
    );
    // One token seen four times (the first a miss), four forged ones never cached.
    assert_eq!(
        m(r#"portcullis_jwt_cache_lookups_total{result="hit"}"#),
        3.0
    );
    assert_eq!(
        m(r#"portcullis_jwt_cache_lookups_total{result="miss"}"#),
        5.0
    );
    let sessions = |outcome| {
        m(&format!(
            r#"portcullis_rate_limit_decisions_total{{limiter="sessions",outcome="{outcome}"}}"#
        ))
    };
    assert_eq!(sessions("throttled"), f64::from(throttled));
    assert_eq!(sessions("allowed"), f64::from(2 + refused));
    assert_eq!(m("portcullis_refresh_rotations_total"), 1.0);
    assert_eq!(m("portcullis_refresh_reuse_detected_total"), 1.0);
    assert_eq!(m(r#"portcullis_tokens_issued_total{kind="access"}"#), 1.0);
    assert_eq!(m(r#"portcullis_tokens_issued_total{kind="refresh"}"#), 1.0);
    // Whatever else moved, it is one of these; nothing went backwards.
    for (key, value) in &after.0 {
        assert!(*value >= before.get(key), "{key} went down");
    }
}

/// What a flood of forged credentials from many addresses sends: a token with its own
/// `kid`, an API key with its own id, a refresh token, each from its own address.
async fn forged(base: String, i: u32) {
    let ip = IpAddr::V4(Ipv4Addr::new(
        127,
        1 + (i >> 16) as u8,
        (i >> 8) as u8,
        i as u8,
    ));
    let http = Http::from_ip(base, ip);
    let r = match i % 3 {
        0 => {
            let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"EdDSA","kid":"kid-{i}"}}"#));
            let token = format!("{header}.eyJzdWIiOiJ4In0.c2ln{i}");
            http.get("/me").bearer(&token).go().await
        }
        1 => {
            let key = KeyFormat::new("qs_").unwrap().generate().unwrap();
            let key = key.expose_secret().to_owned();
            http.get("/api/data").header("x-api-key", &key).go().await
        }
        _ => {
            let body = json!({ "refresh_token": format!("{:A>43}", i) });
            http.post("/auth/refresh").json(&body).go().await
        }
    };
    assert_eq!(r.status.as_u16(), 401, "request {i}");
}

async fn flood(s: &Server, range: std::ops::Range<u32>) {
    let mut tasks = JoinSet::new();
    for i in range {
        if tasks.len() >= 32 {
            tasks.join_next().await.unwrap().unwrap();
        }
        tasks.spawn(forged(s.base.clone(), i));
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_credentials_from_many_addresses_add_no_series() {
    let s = Server::start(Options::default()).await;
    flood(&s, 0..300).await;
    let first = Scrape::take(&s).await;
    flood(&s, 300..10_000).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = Scrape::take(&s).await;

    let names = |scrape: &Scrape| scrape.0.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&first), names(&second), "the set of series changed");
    let rejected = |scrape: &Scrape| {
        scrape
            .0
            .iter()
            .filter(|(k, _)| k.starts_with(DECISIONS) && k.contains(r#"outcome="rejected""#))
            .map(|(_, v)| v)
            .sum::<f64>()
    };
    // Two in three requests reach an auth layer and are refused.
    assert_eq!(rejected(&first), 200.0);
    assert_eq!(rejected(&second), 6_667.0);
    let text = s.get("/metrics").go().await.text();
    for forged in ["kid-9999", "127.1.39.15", "qs_"] {
        assert!(!text.contains(forged), "{forged} reached a label");
    }
}
