//! The in-process harness: contenders that serve the same requests, alternated over
//! rounds, and the rows of figures they give.

use std::{
    convert::Infallible,
    hint::black_box,
    time::{Duration, Instant},
};

use axum::{body::Body, http::request::Parts};
use http::{Request, Response};
use http_body_util::BodyExt;
use tower::{Service, ServiceExt};

use crate::stats::median;

/// The runtime every in-process contender runs on (single-threaded).
pub type Rt = tokio::runtime::Runtime;

/// Serves requests and says how long that took.
pub trait Target {
    /// Serves `requests` one after the other; the time excludes building them.
    fn serve(&mut self, rt: &Rt, requests: Vec<Request<()>>) -> Duration;
}

/// An axum 0.8 router (or any service answering in its body type).
pub struct Axum<S>(pub S);

impl<S> std::fmt::Debug for Axum<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Axum")
    }
}

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

/// An axum 0.7 router, for jwt-authorizer (feature `peers`).
#[cfg(feature = "peers")]
pub struct Axum07(pub axum07::Router);

#[cfg(feature = "peers")]
impl std::fmt::Debug for Axum07 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Axum07")
    }
}

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
pub struct Direct<F>(pub F);

impl<F> std::fmt::Debug for Direct<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Direct")
    }
}

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
pub struct Contender {
    column: &'static str,
    target: Box<dyn Target>,
    /// Warm-up requests before the first round (the cache's capacity for a cache).
    warm: usize,
}

impl std::fmt::Debug for Contender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contender")
            .field("column", &self.column)
            .field("warm", &self.warm)
            .finish_non_exhaustive()
    }
}

impl Contender {
    /// A contender in `column` serving with `target`.
    pub fn new(column: &'static str, target: impl Target + 'static) -> Self {
        Contender {
            column,
            target: Box::new(target),
            warm: 0,
        }
    }

    /// Warms with `warm` requests (a cache's capacity, to fill it) instead of a tenth of
    /// a round.
    pub fn warm(mut self, warm: usize) -> Self {
        self.warm = warm;
        self
    }
}

/// Runs the contenders of one row over a request stream (`request(i)` is the `i`-th
/// request): the `warm` requests before the first round warm them, then `rounds`
/// slices of `per_round` requests follow, each served by every contender in turn (the
/// order reversed every other round). Returns each column's ns per request, round by
/// round.
pub fn run_row(
    rt: &Rt,
    rounds: usize,
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
    for round in 0..rounds {
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
#[derive(Debug, Clone)]
pub struct Row(pub Vec<(&'static str, Vec<f64>)>);

impl Row {
    /// The column's figures, round by round.
    pub fn samples(&self, column: &str) -> Option<&[f64]> {
        self.0
            .iter()
            .find(|(c, _)| *c == column)
            .map(|(_, s)| s.as_slice())
    }

    /// The column's median.
    pub fn median(&self, column: &str) -> Option<f64> {
        self.samples(column).map(median)
    }

    /// The median over the rounds of `f(a, b)`, each pair from the same round (which
    /// cancels a slow phase of the machine that spans a round).
    pub fn per_round(&self, a: &str, b: &str, f: impl Fn(f64, f64) -> f64) -> Option<f64> {
        let (a, b) = (self.samples(a)?, self.samples(b)?);
        let values: Vec<f64> = a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect();
        Some(median(&values))
    }

    /// `a` against the faster of `bs` in each round (the median of those ratios).
    pub fn ratio_to_best(&self, a: &str, bs: &[&str]) -> Option<f64> {
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
