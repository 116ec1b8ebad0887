//! The JWT contenders as HTTP servers (an axum hello-world on `$BENCH_ADDR`, one
//! single-threaded runtime), and the token files the load generator sends.
//!
//! ```text
//! jwt_server serve CONTENDER ALG      # on $BENCH_ADDR (default 127.0.0.1:38123)
//! jwt_server tokens ALG SHAPE N PREFIX
//! ```
//!
//! CONTENDER: `bare`; `noop` (a `route_layer` doing nothing: axum's own price for a
//! layer on the route); `portcullis` (the JWT layer as the README puts it,
//! `route_layer(AuthLayer::new(jwt))`, verified-token cache on); `portcullis-nocache`;
//! `portcullis-outer` (the same layer around the whole router); with the `peers`
//! feature `axum-jwt-auth`, `jwt-authorizer` and `jwt-authorizer-bare` (its axum 0.7
//! bare route). ALG: `HS256`, `ES256`, `EdDSA`, `RS256`.
//!
//! `tokens` writes `PREFIX.tokens` (the distinct tokens, one a line) and `PREFIX.seq`
//! (for each of N requests, the 1-based line of its token), for `bench/load.lua`.

use std::io::{BufWriter, Write};

use axum::{Router, ServiceExt, extract::Request};
use portcullis_bench::{
    contenders::{self, hello},
    keys::Alg,
    shapes::Shape,
};
use portcullis_core::AuthLayer;
use tower::Layer;

fn usage() -> ! {
    eprintln!("usage: jwt_server serve CONTENDER ALG | jwt_server tokens ALG SHAPE N PREFIX");
    std::process::exit(2);
}

fn alg(name: Option<String>) -> Alg {
    name.as_deref()
        .and_then(Alg::parse)
        .unwrap_or_else(|| usage())
}

fn main() {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("serve") => {
            let contender = args.next().unwrap_or_else(|| usage());
            serve(&contender, alg(args.next()));
        }
        Some("tokens") => {
            let alg = alg(args.next());
            let shape = args
                .next()
                .as_deref()
                .and_then(Shape::parse)
                .unwrap_or_else(|| usage());
            let n: usize = args
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| usage());
            let prefix = args.next().unwrap_or_else(|| usage());
            let traffic = shape.traffic(&alg.signer(), n, 3);
            let mut out =
                BufWriter::new(std::fs::File::create(format!("{prefix}.tokens")).unwrap());
            for token in traffic.tokens() {
                writeln!(out, "{token}").unwrap();
            }
            out.flush().unwrap();
            let mut out = BufWriter::new(std::fs::File::create(format!("{prefix}.seq")).unwrap());
            for i in traffic.indices() {
                writeln!(out, "{}", i + 1).unwrap();
            }
            out.flush().unwrap();
            eprintln!(
                "{prefix}: {} requests, {} distinct tokens",
                traffic.len(),
                traffic.tokens().len()
            );
        }
        _ => usage(),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn serve(contender: &str, alg: Alg) {
    let addr = std::env::var("BENCH_ADDR").unwrap_or_else(|_| "127.0.0.1:38123".into());
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    eprintln!("{contender} {} listening on {addr}", alg.name());
    let app: Router = match contender {
        "bare" => hello(),
        "noop" => hello().route_layer(tower::util::MapRequestLayer::new(|r: Request| r)),
        "portcullis" => contenders::portcullis(alg, true),
        "portcullis-nocache" => contenders::portcullis(alg, false),
        "portcullis-outer" => {
            let app = AuthLayer::new(contenders::jwt(alg, true)).layer(hello());
            let make = ServiceExt::<Request>::into_make_service(app);
            return axum::serve(listener, make).await.expect("serve");
        }
        #[cfg(feature = "peers")]
        "axum-jwt-auth" => contenders::peers::axum_jwt_auth(alg),
        #[cfg(feature = "peers")]
        "jwt-authorizer" | "jwt-authorizer-bare" => {
            let app = if contender == "jwt-authorizer" {
                contenders::peers::jwt_authorizer(alg).await
            } else {
                contenders::peers::axum07_hello()
            };
            return axum07::serve(listener, app).await.expect("serve");
        }
        other => {
            eprintln!("unknown contender {other:?} (peers need the `peers` feature)");
            std::process::exit(2);
        }
    };
    axum::serve(listener, app).await.expect("serve");
}
