//! Time, injectable: tests set the clock instead of sleeping. The clock types are
//! shared with the other Portcullis crates: see [`portcullis_core::clock`].

use std::fmt;

pub use portcullis_core::clock::{Clock, ManualClock, SystemClock};

/// Stands in for a clock in `Debug` output.
pub(crate) struct DebugClock;

impl fmt::Debug for DebugClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<clock>")
    }
}
