//! Shared pieces of the Portcullis benchmarks: keys and tokens, traffic shapes, the
//! API-key record, and the statistics the comparison tables print.
//!
//! This package is not published. Its binaries are the bench servers, the in-process
//! comparison and the load tools that `bench/compare.sh` runs; `BENCH.md` at the
//! workspace root describes the method and holds today's table.
//!
//! ```
//! use portcullis_bench::{keys::Alg, shapes::Shape};
//!
//! let signer = Alg::Hs256.signer();
//! let traffic = Shape::Distinct.traffic(&signer, 3, 1);
//! assert_eq!(traffic.len(), 3);
//! assert_ne!(traffic.get(0), traffic.get(1));
//! ```

pub mod apikey;
pub mod contenders;
pub mod harness;
pub mod keys;
pub mod shapes;
pub mod stats;
