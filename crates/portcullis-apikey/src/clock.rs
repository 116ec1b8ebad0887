//! Injectable time, shared with the other Portcullis crates: see
//! [`portcullis_core::clock`].

pub use portcullis_core::clock::{Clock, ManualClock, SystemClock};
