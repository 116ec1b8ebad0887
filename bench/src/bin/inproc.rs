//! The in-process comparison: every contender serves the same requests through tower's
//! `ready` + `call` on a single-threaded tokio runtime, the response body read to the
//! end; contenders alternate (the order reversed every other round) and each cell is
//! the median of the rounds, in nanoseconds per request. Prints Markdown tables.
//!
//! ```text
//! cargo run --release -p portcullis-bench --features peers --bin inproc -- [jwt] [floor] [layers]
//! ```
//!
//! - `jwt`: for each algorithm and traffic shape, bare axum, the JWT layer in its
//!   default configuration and with its cache off, axum-jwt-auth and jwt-authorizer
//!   (the latter on its own axum 0.7 route, whose bare figure is shown beside it);
//! - `floor`: cold HS256 verification against its floor (HMAC-SHA256 of the signing
//!   input, base64url of payload and signature, one parse of the claims into a map);
//! - `layers`: the API-key and rate-limit layers and what they stand on (a layer doing
//!   nothing, the core layer with a ready principal), and tower_governor.
//!
//! Environment: `ROUNDS` (default 7), `SCALE` (requests per round, default 1.0 times
//! each group's base), `ALGS` (default `HS256,ES256,EdDSA,RS256`), `SHAPES` (default
//! `one,distinct,zipf`). Without the `peers` feature the peer columns read "not built".

use std::{hint::black_box, net::SocketAddr, num::NonZeroU32};

use axum::{body::Body, extract::ConnectInfo, http::request::Parts};
use base64::Engine as _;
use http::Request;
use portcullis_apikey::{ApiKeyStore, ApiKeys, KeyFormat, MemoryStore, NewApiKey};
#[cfg(feature = "peers")]
use portcullis_bench::harness::Axum07;
use portcullis_bench::{
    apikey,
    contenders::{self, hello},
    harness::{Axum, Contender, Direct, Rt, run_row},
    keys::{Alg, SECRET},
    shapes::{Shape, Traffic},
    stats::thousands,
};
use portcullis_core::{AuthLayer, AuthResult, Authenticator, MaybeReady, Principal, PrincipalKind};
use portcullis_ratelimit::{ClientIpKey, Quota, RateLimitLayer};
use tower::util::MapRequestLayer;

struct Settings {
    rounds: usize,
    scale: f64,
}

fn ratio_cell(ratio: Option<f64>) -> String {
    ratio.map_or("—".to_owned(), |r| format!("{r:.2}×"))
}

fn bearer(token: &str) -> Request<()> {
    Request::get("/")
        .header("authorization", format!("Bearer {token}"))
        .body(())
        .unwrap()
}

/// Requests per round for `alg`, before `SCALE`.
fn base_per_round(alg: Alg) -> usize {
    match alg {
        Alg::Hs256 => 20_000,
        Alg::Es256 => 1_000,
        Alg::EdDsa => 2_000,
        Alg::Rs256 => 1_000,
    }
}

fn jwt_table(rt: &Rt, settings: &Settings, algs: &[Alg], shapes: &[Shape]) {
    let capacity = portcullis_jwt::DEFAULT_CACHE_CAPACITY.get();
    println!(
        "### JWT layer, in process (ns per request, median of {} rounds)\n",
        settings.rounds
    );
    println!(
        "| alg | shape | bare | Portcullis (default) | Portcullis, cache off | axum-jwt-auth | jwt-authorizer (its bare) | default ÷ best peer | default ÷ cache off |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for &alg in algs {
        let per_round = ((base_per_round(alg) as f64 * settings.scale) as usize).max(50);
        let signer = alg.signer();
        for &shape in shapes {
            let warm = capacity;
            let len = warm + settings.rounds * per_round;
            eprintln!(
                "{} {}: signing {len} requests' tokens",
                alg.name(),
                shape.name()
            );
            let traffic: Traffic = shape.traffic(&signer, len, 1);
            eprintln!(
                "{} {}: {} distinct tokens; measuring",
                alg.name(),
                shape.name(),
                traffic.tokens().len()
            );
            let mut contenders = vec![
                Contender::new("bare", Axum(hello().with_state::<()>(()))),
                Contender::new("default", Axum(contenders::portcullis(alg, true))).warm(capacity),
                Contender::new("cache off", Axum(contenders::portcullis(alg, false))),
            ];
            contenders.extend(peer_contenders(rt, alg));
            let row = run_row(rt, settings.rounds, contenders, per_round, warm, &|i| {
                bearer(traffic.get(i))
            });
            let cell = |name: &str| row.median(name).map_or("not built".to_owned(), thousands);
            let jwt_authorizer = match (
                row.median("jwt-authorizer"),
                row.median("jwt-authorizer bare"),
            ) {
                (Some(a), Some(b)) => format!("{} ({})", thousands(a), thousands(b)),
                _ => "not built".to_owned(),
            };
            println!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                alg.name(),
                shape.name(),
                cell("bare"),
                cell("default"),
                cell("cache off"),
                cell("axum-jwt-auth"),
                jwt_authorizer,
                ratio_cell(row.ratio_to_best("default", &["axum-jwt-auth", "jwt-authorizer"])),
                ratio_cell(row.per_round("default", "cache off", |a, b| a / b)),
            );
        }
    }
    println!();
}

/// The peers' columns (none without the `peers` feature).
#[cfg(feature = "peers")]
fn peer_contenders(rt: &Rt, alg: Alg) -> Vec<Contender> {
    use contenders::peers;
    vec![
        Contender::new("axum-jwt-auth", Axum(peers::axum_jwt_auth(alg))),
        Contender::new(
            "jwt-authorizer",
            Axum07(rt.block_on(peers::jwt_authorizer(alg))),
        ),
        Contender::new("jwt-authorizer bare", Axum07(peers::axum07_hello())),
    ]
}

/// The peers' columns (none without the `peers` feature).
#[cfg(not(feature = "peers"))]
fn peer_contenders(_: &Rt, _: Alg) -> Vec<Contender> {
    Vec::new()
}

/// HMAC-SHA256 of the signing input, base64url of payload and signature, one parse of
/// the claims into a map: what any HS256 verification must do.
fn floor(head: &Parts) -> bool {
    thread_local! {
        static KEY: aws_lc_rs::hmac::Key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, SECRET);
    }
    let token = head.headers["authorization"].to_str().unwrap();
    let token = token.strip_prefix("Bearer ").unwrap();
    let (input, sig) = token.rsplit_once('.').unwrap();
    let payload = input.split_once('.').unwrap().1;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let Ok(sig) = b64.decode(sig) else {
        return false;
    };
    let verified = KEY.with(|key| aws_lc_rs::hmac::verify(key, input.as_bytes(), &sig).is_ok());
    let Ok(payload) = b64.decode(payload) else {
        return false;
    };
    let claims = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&payload);
    verified && black_box(claims).is_ok()
}

fn verifies(auth: impl Authenticator + 'static) -> impl FnMut(&Parts) -> bool + 'static {
    move |head| match auth.authenticate(head) {
        MaybeReady::Ready(Ok(Some(principal))) => !black_box(principal).subject().is_empty(),
        _ => false,
    }
}

fn floor_table(rt: &Rt, settings: &Settings) {
    let per_round = ((20_000.0 * settings.scale) as usize).max(50);
    let signer = Alg::Hs256.signer();
    let rows = [
        ("one token", Shape::One),
        ("a distinct token per request", Shape::Distinct),
    ];
    println!(
        "### Cold HS256 verification against its floor (ns per verification, median of {} rounds)\n",
        settings.rounds
    );
    println!(
        "| tokens | floor (HMAC + base64url + claims parse) | `authenticate`, cache off | ÷ floor | `authenticate`, default (cache) |"
    );
    println!("|---|---|---|---|---|");
    for (label, shape) in rows {
        let warm = portcullis_jwt::DEFAULT_CACHE_CAPACITY.get();
        let traffic = shape.traffic(&signer, warm + settings.rounds * per_round, 2);
        let cold = contenders::jwt(Alg::Hs256, false);
        let cached = contenders::jwt(Alg::Hs256, true);
        let contenders = vec![
            Contender::new("floor", Direct(floor)),
            Contender::new("cold", Direct(verifies(cold))),
            Contender::new("cached", Direct(verifies(cached))).warm(warm),
        ];
        let row = run_row(rt, settings.rounds, contenders, per_round, warm, &|i| {
            bearer(traffic.get(i))
        });
        let ns = |name| thousands(row.median(name).unwrap());
        println!(
            "| {label} | {} | {} | {} | {} |",
            ns("floor"),
            ns("cold"),
            ratio_cell(row.per_round("cold", "floor", |a, b| a / b)),
            ns("cached"),
        );
    }
    println!();
}

const GOVERNOR: &str = "tower_governor, hot key (Router::layer)";

/// Answers one principal whatever the request.
struct Fixed(Principal);

impl Authenticator for Fixed {
    fn authenticate(&self, _: &Parts) -> MaybeReady<AuthResult> {
        MaybeReady::Ready(Ok(Some(self.0.clone())))
    }
}

fn layers_table(rt: &Rt, settings: &Settings) {
    let per_round = ((20_000.0 * settings.scale) as usize).max(50);
    // The API key presented, among 10,000 others in the memory store.
    let format = KeyFormat::new("pk_live_").unwrap();
    let key = format.generate().unwrap().expose_secret().to_owned();
    let store = MemoryStore::new();
    let keys = ApiKeys::new(store.clone(), format.clone());
    rt.block_on(async {
        for i in 0..9_999 {
            keys.issue(NewApiKey::owned_by(format!("owner-{i}")).name("bulk"))
                .await
                .unwrap();
        }
        let parsed = format.parse(&key).unwrap();
        store
            .create(apikey::record(&parsed, "bench"))
            .await
            .unwrap();
    });
    let never = Quota::per_second(NonZeroU32::new(1_000_000_000).unwrap());
    let governor = || {
        let config = tower_governor::governor::GovernorConfigBuilder::default()
            .per_nanosecond(1)
            .burst_size(1_000_000_000)
            .finish()
            .unwrap();
        tower_governor::GovernorLayer::new(config)
    };
    let principal = Principal::builder("svc-bench", PrincipalKind::ApiKey).build();
    let noop = || MapRequestLayer::new(|r: Request<Body>| r);
    let contenders = vec![
        Contender::new("bare", Axum(hello().with_state::<()>(()))),
        Contender::new("noop route_layer", Axum(hello().route_layer(noop()))),
        Contender::new(
            "core AuthLayer, ready principal",
            Axum(hello().route_layer(AuthLayer::new(Fixed(principal)))),
        ),
        Contender::new(
            "API key (route_layer)",
            Axum(hello().route_layer(AuthLayer::new(keys.authenticator()))),
        ),
        Contender::new("noop Router::layer", Axum(hello().layer(noop()))),
        Contender::new(
            "rate limit, hot key (Router::layer)",
            Axum(hello().layer(RateLimitLayer::new(ClientIpKey::new(), never))),
        ),
        Contender::new(GOVERNOR, Axum(hello().layer(governor()))),
    ];
    let peer: SocketAddr = "203.0.113.7:40000".parse().unwrap();
    let request = |_: usize| {
        Request::get("/")
            .header("x-api-key", &key)
            .extension(ConnectInfo(peer))
            .body(())
            .unwrap()
    };
    let row = run_row(
        rt,
        settings.rounds,
        contenders,
        per_round,
        per_round / 10,
        &request,
    );
    println!(
        "### API-key and rate-limit layers, in process (ns per request, median of {} rounds)\n",
        settings.rounds
    );
    println!("| variant | ns per request | over bare | ÷ tower_governor |");
    println!("|---|---|---|---|");
    for (name, _) in &row.0 {
        let vs_governor = if name.contains("Router::layer") && !name.starts_with("noop") {
            ratio_cell(row.per_round(name, GOVERNOR, |a, b| a / b))
        } else {
            String::new()
        };
        println!(
            "| {name} | {} | {:+.0} | {vs_governor} |",
            thousands(row.median(name).unwrap()),
            row.per_round(name, "bare", |a, b| a - b).unwrap(),
        );
    }
    println!();
}

fn env_list<T>(name: &str, default: &[T], parse: impl Fn(&str) -> Option<T>) -> Vec<T>
where
    T: Copy,
{
    match std::env::var(name) {
        Ok(list) => list
            .split([',', ' '])
            .filter(|s| !s.is_empty())
            .map(|s| parse(s).unwrap_or_else(|| panic!("{name}: unknown {s:?}")))
            .collect(),
        Err(_) => default.to_vec(),
    }
}

fn main() {
    let settings = Settings {
        rounds: std::env::var("ROUNDS").map_or(7, |r| r.parse().expect("ROUNDS is a count")),
        scale: std::env::var("SCALE").map_or(1.0, |s| s.parse().expect("SCALE is a number")),
    };
    let algs = env_list("ALGS", &Alg::ALL, Alg::parse);
    let shapes = env_list("SHAPES", &Shape::ALL, Shape::parse);
    let mut groups: Vec<String> = std::env::args().skip(1).collect();
    if groups.is_empty() {
        groups = vec!["jwt".into(), "floor".into(), "layers".into()];
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for group in groups {
        match group.as_str() {
            "jwt" => jwt_table(&rt, &settings, &algs, &shapes),
            "floor" => floor_table(&rt, &settings),
            "layers" => layers_table(&rt, &settings),
            other => panic!("unknown group {other:?}: jwt | floor | layers"),
        }
    }
}
