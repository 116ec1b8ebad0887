//! Injectable time, shared with the other Portcullis crates: see
//! [`portcullis_core::clock`].

use std::time::SystemTime;

pub use portcullis_core::clock::{Clock, ManualClock, SystemClock};

/// Seconds since the Unix epoch (0 for times before it).
pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
