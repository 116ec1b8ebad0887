//! Time, injectable: tests set the clock instead of sleeping. The clock types are
//! shared with the other Portcullis crates: see [`portcullis_core::clock`].

use std::{
    fmt,
    time::{SystemTime, UNIX_EPOCH},
};

pub use portcullis_core::clock::{Clock, ManualClock, SystemClock};

/// Unix seconds of `t` (negative before 1970), saturating.
pub(crate) fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => {
            // Round toward the past: -0.5 s is second -1.
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            -secs - i64::from(d.subsec_nanos() > 0)
        }
    }
}

pub(crate) struct DebugClock;

impl fmt::Debug for DebugClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<clock>")
    }
}
