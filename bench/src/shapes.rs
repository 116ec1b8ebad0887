//! The three traffic shapes of every JWT figure: one token repeated, every request a
//! distinct token, and a Zipf-like mix of users each repeating their own token.

use std::collections::HashMap;

use crate::keys::Signer;

/// Users in the Zipf mix.
pub const ZIPF_USERS: u64 = 100_000;
/// The Zipf exponent: user `k` (from 1) sends in proportion to `1 / k^1.1`.
pub const ZIPF_EXPONENT: f64 = 1.1;
/// Requests in one token lifetime: tokens are refreshed every 15 minutes, at 1,000
/// requests per second over all users. Each user's refreshes are staggered.
pub const REFRESH_EVERY: u64 = 900_000;

/// A traffic shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The same token on every request.
    One,
    /// A token never seen before on every request.
    Distinct,
    /// Users drawn from a Zipf law over [`ZIPF_USERS`], each with its own token.
    Zipf,
}

impl Shape {
    /// Every shape, in table order.
    pub const ALL: [Shape; 3] = [Shape::One, Shape::Distinct, Shape::Zipf];

    /// The shape's name in commands and tables.
    pub fn name(self) -> &'static str {
        match self {
            Shape::One => "one",
            Shape::Distinct => "distinct",
            Shape::Zipf => "zipf",
        }
    }

    /// The shape named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Shape::ALL.into_iter().find(|s| s.name() == name)
    }

    /// `len` requests of this shape signed by `signer`; `seed` picks the users of
    /// the distinct and Zipf shapes (two seeds give disjoint distinct tokens).
    pub fn traffic(self, signer: &Signer, len: usize, seed: u64) -> Traffic {
        match self {
            Shape::One => Traffic {
                tokens: vec![signer.token()],
                seq: Some(vec![0; len]),
            },
            Shape::Distinct => {
                let users: Vec<(u64, u64)> =
                    (0..len as u64).map(|i| ((seed << 32) | i, 0)).collect();
                Traffic {
                    tokens: sign_all(signer, &users),
                    seq: None,
                }
            }
            Shape::Zipf => {
                let zipf = Zipf::new(ZIPF_USERS, ZIPF_EXPONENT);
                let mut rng = SplitMix(seed ^ 0x5eed);
                let mut index: HashMap<(u64, u64), u32> = HashMap::new();
                let mut users = Vec::new();
                let seq = (0..len as u64)
                    .map(|i| {
                        let user = zipf.sample(rng.next_f64());
                        let offset = SplitMix(user).next() % REFRESH_EVERY;
                        let key = (user, (i + offset) / REFRESH_EVERY);
                        *index.entry(key).or_insert_with(|| {
                            users.push(key);
                            (users.len() - 1) as u32
                        })
                    })
                    .collect();
                Traffic {
                    tokens: sign_all(signer, &users),
                    seq: Some(seq),
                }
            }
        }
    }
}

/// A request stream: its distinct tokens and which one each request carries.
#[derive(Debug, Clone)]
pub struct Traffic {
    tokens: Vec<String>,
    seq: Option<Vec<u32>>,
}

impl Traffic {
    /// The number of requests.
    pub fn len(&self) -> usize {
        self.seq.as_ref().map_or(self.tokens.len(), Vec::len)
    }

    /// Whether there is no request.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The token of request `i`.
    pub fn get(&self, i: usize) -> &str {
        match &self.seq {
            Some(seq) => &self.tokens[seq[i] as usize],
            None => &self.tokens[i],
        }
    }

    /// The distinct tokens.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// For each request, the index of its token in [`Traffic::tokens`].
    pub fn indices(&self) -> Vec<u32> {
        match &self.seq {
            Some(seq) => seq.clone(),
            None => (0..self.tokens.len() as u32).collect(),
        }
    }
}

/// Signs the tokens of `(user, generation)` pairs on every core.
fn sign_all(signer: &Signer, users: &[(u64, u64)]) -> Vec<String> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = users.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let parts: Vec<_> = users
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|&(user, generation)| signer.user_token(user, generation))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|part| part.join().expect("signing thread"))
            .collect()
    })
}

/// Inverse-CDF sampling of a Zipf law over `1..=n`.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: u64, exponent: f64) -> Self {
        let mut total = 0.0;
        let mut cdf: Vec<f64> = (1..=n)
            .map(|k| {
                total += (k as f64).powf(-exponent);
                total
            })
            .collect();
        for c in &mut cdf {
            *c /= total;
        }
        Zipf { cdf }
    }

    /// The user (from 0) at quantile `u` in `[0, 1)`.
    fn sample(&self, u: f64) -> u64 {
        self.cdf.partition_point(|&c| c < u) as u64
    }
}

/// SplitMix64: a small seeded generator, the same on every machine.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn next_f64(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}
