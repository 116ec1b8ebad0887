//! The bounded wait for a hashing permit.

use std::sync::atomic::{AtomicUsize, Ordering};

use portcullis_core::internal::metrics;

use crate::{HashError, HashErrorKind};

/// A place in the queue for a permit, given back when dropped (a permit was taken, or
/// the waiting caller went away).
pub(crate) struct Queued<'a>(&'a AtomicUsize);

impl<'a> Queued<'a> {
    /// Takes a place among `waiting`, unless `max` already wait.
    pub(crate) fn join(waiting: &'a AtomicUsize, max: usize) -> Result<Self, HashError> {
        let joined = waiting.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        });
        if joined.is_err() {
            metrics::password_rejected();
            return Err(HashError::new(
                HashErrorKind::Overloaded,
                "too many password hashes waiting",
            ));
        }
        metrics::password_queue(1);
        Ok(Self(waiting))
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
        metrics::password_queue(-1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_refuses_and_a_dropped_place_frees_one() {
        let waiting = AtomicUsize::new(0);
        let first = Queued::join(&waiting, 1).unwrap();
        let refused = Queued::join(&waiting, 1).err().unwrap();
        assert_eq!(refused.kind(), HashErrorKind::Overloaded);
        drop(first);
        assert_eq!(waiting.load(Ordering::Relaxed), 0);
        assert!(Queued::join(&waiting, 1).is_ok());
    }
}
