//! Portcullis: API authentication for any tower service, one `.layer()` each.
//!
//! This facade re-exports the Portcullis crates behind features.
//!
//! | feature | crate | what |
//! |---|---|---|
//! | (always) | [`core`] | `Principal`, `AuthError`, `Authenticator`, `AuthLayer` |
//! | `jwt` (default) | [`jwt`] | bearer-JWT verification layer |
//! | `full` | all of the above | |

#![cfg_attr(docsrs, feature(doc_cfg))]

pub use portcullis_core as core;

/// The names most applications need, in one `use`.
pub mod prelude {
    pub use portcullis_core::{
        AuthError, AuthLayer, Authenticator, Claims, Principal, PrincipalKind,
    };
}
