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

use std::{
    convert::Infallible,
    hint::black_box,
    net::SocketAddr,
    num::NonZeroU32,
    time::{Duration, Instant},
};

use axum::{body::Body, extract::ConnectInfo, http::request::Parts};
use base64::Engine as _;
use http::{Request, Response};
use http_body_util::BodyExt;
use portcullis_apikey::{ApiKeyStore, ApiKeys, KeyFormat, MemoryStore, NewApiKey};
use portcullis_bench::{
    apikey,
    contenders::{self, hello},
    keys::{Alg, SECRET},
    shapes::{Shape, Traffic},
    stats::{median, thousands},
};
use portcullis_core::{AuthLayer, AuthResult, Authenticator, MaybeReady, Principal, PrincipalKind};
use portcullis_ratelimit::{ClientIpKey, Quota, RateLimitLayer};
use tower::{Service, ServiceExt, util::MapRequestLayer};

type Rt = tokio::runtime::Runtime;

/// Serves requests and says how long that took.
trait Target {
    /// Serves `requests` one after the other; the time excludes building them.
    fn serve(&mut self, rt: &Rt, requests: Vec<Request<()>>) -> Duration;
}

/// An axum 0.8 router (or any service answering in its body type).
struct Axum<S>(S);

impl<S> Target for Axum<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
{
    fn serve(&mut self, rt: &Rt, requests: Vec<Request<()>>) -> Duration {
        let requests: Vec<_> = requests
            .into_iter()
            .map(|r| r.map(|()| Body::empty()))
            .collect();
        rt.block_on(async {
            let mut refused = 0;
            let start = Instant::now();
            for request in requests {
                let svc = self.0.ready().await.unwrap();
                let response = svc.call(request).await.unwrap();
                refused += usize::from(response.status() != 200);
                black_box(response.into_body().collect().await.unwrap());
            }
            let time = start.elapsed();
            assert_eq!(refused, 0, "a contender refused requests");
            time
        })
    }
}

/// An axum 0.7 router, for jwt-authorizer.
#[cfg(feature = "peers")]
struct Axum07(axum07::Router);

#[cfg(feature = "peers")]
impl Target for Axum07 {
    fn serve(&mut self, rt: &Rt, requests: Vec<Request<()>>) -> Duration {
        use axum07::body::Body;
        let requests: Vec<_> = requests
            .into_iter()
            .map(|r| r.map(|()| Body::empty()))
            .collect();
        rt.block_on(async {
            let mut refused = 0;
            let start = Instant::now();
            for request in requests {
                let svc = ServiceExt::<Request<Body>>::ready(&mut self.0)
                    .await
                    .unwrap();
                let response = svc.call(request).await.unwrap();
                refused += usize::from(response.status() != 200);
                black_box(response.into_body().collect().await.unwrap());
            }
            let time = start.elapsed();
            assert_eq!(refused, 0, "a contender refused requests");
            time
        })
    }
}

/// A function of the request head, outside any service: the floors.
struct Direct<F>(F);

impl<F: FnMut(&Parts) -> bool> Target for Direct<F> {
    fn serve(&mut self, _: &Rt, requests: Vec<Request<()>>) -> Duration {
        let heads: Vec<Parts> = requests.into_iter().map(|r| r.into_parts().0).collect();
        let mut failed = 0;
        let start = Instant::now();
        for head in &heads {
            failed += usize::from(!(self.0)(black_box(head)));
        }
        let time = start.elapsed();
        assert_eq!(failed, 0, "a floor failed");
        time
    }
}

/// A contender of a row: its column and what it serves.
struct Contender {
    column: &'static str,
    target: Box<dyn Target>,
    /// Warm-up requests before the first round (the cache's capacity for a cache).
    warm: usize,
}

impl Contender {
    fn new(column: &'static str, target: impl Target + 'static) -> Self {
        Contender {
            column,
            target: Box::new(target),
            warm: 0,
        }
    }

    fn warm(mut self, warm: usize) -> Self {
        self.warm = warm;
        self
    }
}

struct Settings {
    rounds: usize,
    scale: f64,
}

/// Runs the contenders of one row over `traffic`: warm-up from its start, then
/// `rounds` slices of `per_round` requests, each slice served by every contender.
/// Returns each column's ns per request, round by round.
fn run_row(
    rt: &Rt,
    settings: &Settings,
    mut contenders: Vec<Contender>,
    per_round: usize,
    warm: usize,
    request: &dyn Fn(usize) -> Request<()>,
) -> Row {
    for c in &mut contenders {
        // A cache is filled; anything else is only warmed.
        let n = if c.warm > 0 {
            c.warm
        } else {
            per_round / 10 + 1
        };
        let n = n.min(warm);
        c.target.serve(rt, (warm - n..warm).map(request).collect());
    }
    let mut samples = vec![Vec::new(); contenders.len()];
    for round in 0..settings.rounds {
        let first = warm + round * per_round;
        let mut order: Vec<usize> = (0..contenders.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let requests = (first..first + per_round).map(request).collect();
            let time = contenders[i].target.serve(rt, requests);
            samples[i].push(time.as_nanos() as f64 / per_round as f64);
        }
    }
    Row(contenders.iter().map(|c| c.column).zip(samples).collect())
}

/// Each column's ns per request, round by round.
struct Row(Vec<(&'static str, Vec<f64>)>);

impl Row {
    fn samples(&self, column: &str) -> Option<&[f64]> {
        self.0
            .iter()
            .find(|(c, _)| *c == column)
            .map(|(_, s)| s.as_slice())
    }

    /// The column's median.
    fn median(&self, column: &str) -> Option<f64> {
        self.samples(column).map(median)
    }

    /// The median over the rounds of `f(a, b)`, each pair from the same round (which
    /// cancels a slow phase of the machine that spans a round).
    fn per_round(&self, a: &str, b: &str, f: impl Fn(f64, f64) -> f64) -> Option<f64> {
        let (a, b) = (self.samples(a)?, self.samples(b)?);
        let values: Vec<f64> = a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect();
        Some(median(&values))
    }

    /// `a` against the faster of `bs` in each round (the median of those ratios).
    fn ratio_to_best(&self, a: &str, bs: &[&str]) -> Option<f64> {
        let a = self.samples(a)?;
        let bs: Vec<&[f64]> = bs.iter().filter_map(|b| self.samples(b)).collect();
        if bs.is_empty() {
            return None;
        }
        let values: Vec<f64> = (0..a.len())
            .map(|r| a[r] / bs.iter().map(|b| b[r]).fold(f64::INFINITY, f64::min))
            .collect();
        Some(median(&values))
    }
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
            let row = run_row(rt, settings, contenders, per_round, warm, &|i| {
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
        let row = run_row(rt, settings, contenders, per_round, warm, &|i| {
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
        settings,
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
