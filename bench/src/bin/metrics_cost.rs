//! What recording metrics costs the HS256 layer and the rate-limit layer, in process.
//! Built twice by `bench/metrics.sh`: once with the `metrics` feature (and a Prometheus
//! recorder installed here), once without; the script runs the two binaries in turn
//! and sets their figures side by side.
//!
//! Prints one line: `hs256=NS ratelimit=NS bare=NS hs256/bare=R ratelimit/bare=R`,
//! medians over `ROUNDS` rounds (default 7) of `N` requests (default 20,000), the
//! contenders alternating within each round (a ratio is the median of the rounds'
//! ratios, each from one round); with the feature, then `series=N` (series the
//! recorder rendered, proof that it counted).
//!
//! `metrics_cost serve LAYER` (`bare`, `hs256`, `ratelimit`) only serves 100 warm-up
//! requests and then `N` through that layer in `served`, for counting instructions
//! under `valgrind --tool=callgrind --collect-atstart=no
//! --toggle-collect=metrics_cost::served`, which the noise of a shared machine does not
//! reach.

use std::{net::SocketAddr, num::NonZeroU32};

use axum::{Router, extract::ConnectInfo};
use http::Request;
use portcullis_bench::{
    contenders::{self, hello},
    harness::{Axum, Contender, Rt, Target, run_row},
    keys::Alg,
};
use portcullis_ratelimit::{ClientIpKey, Quota, RateLimitLayer};

const LAYERS: [&str; 3] = ["bare", "hs256", "ratelimit"];

/// The hello route bare, behind the HS256 layer (`route_layer`, cache on), or behind
/// the rate limit (`Router::layer`, one hot key, a quota never reached).
fn router(layer: &str) -> Router {
    match layer {
        "bare" => hello().with_state(()),
        "hs256" => contenders::portcullis(Alg::Hs256, true),
        "ratelimit" => {
            let never = Quota::per_second(NonZeroU32::new(1_000_000_000).unwrap());
            hello().layer(RateLimitLayer::new(ClientIpKey::new(), never))
        }
        other => panic!("no layer {other:?}: one of {LAYERS:?}"),
    }
}

/// Serves `requests`: what `valgrind --toggle-collect=metrics_cost::served` counts.
#[inline(never)]
fn served(target: &mut Axum<Router>, rt: &Rt, requests: Vec<Request<()>>) {
    target.serve(rt, requests);
}

fn main() {
    let rounds = std::env::var("ROUNDS").map_or(7, |r| r.parse().expect("ROUNDS is a count"));
    let per_round = std::env::var("N").map_or(20_000, |n| n.parse().expect("N is a count"));
    #[cfg(feature = "metrics")]
    let prometheus = {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).expect("the only recorder");
        portcullis_core::metrics::describe();
        handle
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let token = Alg::Hs256.signer().token();
    let peer: SocketAddr = "203.0.113.7:40000".parse().unwrap();
    let request = |_: usize| {
        Request::get("/")
            .header("authorization", format!("Bearer {token}"))
            .extension(ConnectInfo(peer))
            .body(())
            .unwrap()
    };

    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [serve, layer] = args.as_slice() {
        assert_eq!(serve, "serve", "usage: metrics_cost [serve LAYER]");
        let mut target = Axum(router(layer));
        target.serve(&rt, (0..100).map(request).collect());
        let requests = (0..per_round).map(request).collect();
        served(&mut target, &rt, requests);
        return;
    }

    let contenders = LAYERS
        .iter()
        .map(|&layer| Contender::new(layer, Axum(router(layer))))
        .collect();
    let row = run_row(&rt, rounds, contenders, per_round, per_round / 10, &request);
    let median = |column| row.median(column).expect("a column");
    let to_bare = |column| {
        row.per_round(column, "bare", |a, b| a / b)
            .expect("a column")
    };
    print!(
        "hs256={:.1} ratelimit={:.1} bare={:.1} hs256/bare={:.4} ratelimit/bare={:.4}",
        median("hs256"),
        median("ratelimit"),
        median("bare"),
        to_bare("hs256"),
        to_bare("ratelimit"),
    );
    #[cfg(feature = "metrics")]
    {
        let text = prometheus.render();
        let series = text.lines().filter(|l| !l.starts_with('#')).count();
        assert!(
            text.contains(r#"outcome="allowed""#),
            "nothing was recorded:\n{text}"
        );
        print!(" series={series}");
    }
    println!();
}
