//! The introspection cache: outcomes by a keyed hash of the token (never the token),
//! bounded in size, and one endpoint call per unseen token however many requests
//! carry it at once.

use std::{
    collections::HashMap,
    sync::{Mutex, RwLock},
};

use std::hash::Hasher as _;

use aws_lc_rs::rand;
use siphasher::sip128::{Hasher128 as _, SipHasher24};
use tokio::sync::watch;

use super::response::Outcome;

/// A token's cache key: SipHash-2-4 with 128-bit output (a keyed pseudo-random
/// function) of the token under a per-cache random 128-bit key. Without the key no
/// one can aim a token at another's entry; among the tokens a cache ever sees, a
/// chance collision is below 2^-80.
pub(super) type TokenKey = u128;

/// What waiters of one call receive: the outcome, or that the endpoint failed.
pub(super) type Answer = Result<Outcome, super::IntrospectionError>;

struct Entry {
    outcome: Outcome,
    until: i64,
}

pub(super) struct Cache {
    key: [u8; 16],
    entries: RwLock<HashMap<TokenKey, Entry, foldhash::fast::RandomState>>,
    capacity: usize,
    inflight: Mutex<HashMap<TokenKey, watch::Receiver<Option<Answer>>>>,
}

/// A cache miss: either this request makes the call (and must
/// [`finish`](Cache::finish) it), or it waits for the call in flight.
pub(super) enum Miss {
    Call(watch::Sender<Option<Answer>>),
    Wait(watch::Receiver<Option<Answer>>),
}

impl Cache {
    pub(super) fn new(capacity: usize) -> Self {
        let mut key = [0u8; 16];
        rand::fill(&mut key).expect("the system random generator works");
        Self {
            key,
            entries: RwLock::new(HashMap::with_capacity_and_hasher(
                capacity.min(1024),
                Default::default(),
            )),
            capacity,
            inflight: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn key_of(&self, token: &str) -> TokenKey {
        let mut hasher = SipHasher24::new_with_key(&self.key);
        hasher.write(token.as_bytes());
        hasher.finish128().into()
    }

    /// The live outcome cached for `key` at `now`.
    pub(super) fn get(&self, key: &TokenKey, now: i64) -> Option<Outcome> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(key)?;
        (now < entry.until).then(|| entry.outcome.clone())
    }

    /// How many outcomes are held (live or not yet purged).
    pub(super) fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Joins the call in flight for `key`, or starts one.
    pub(super) fn miss(&self, key: TokenKey) -> Miss {
        let mut inflight = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(rx) = inflight.get(&key) {
            return Miss::Wait(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        inflight.insert(key, rx);
        Miss::Call(tx)
    }

    /// Ends the call for `key`: stores the outcome until `until` (failures are not
    /// stored), then wakes the waiters.
    pub(super) fn finish(
        &self,
        key: TokenKey,
        tx: &watch::Sender<Option<Answer>>,
        answer: Answer,
        until: Option<i64>,
        now: i64,
    ) {
        if let (Ok(outcome), Some(until)) = (&answer, until)
            && until > now
        {
            let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
            if entries.len() >= self.capacity && !entries.contains_key(&key) {
                entries.retain(|_, e| e.until > now);
                if entries.len() >= self.capacity {
                    // Still full of live entries: one goes (any: the hash order is
                    // random per process).
                    let victim = entries.keys().next().copied();
                    if let Some(victim) = victim {
                        entries.remove(&victim);
                    }
                }
            }
            entries.insert(
                key,
                Entry {
                    outcome: outcome.clone(),
                    until,
                },
            );
        }
        self.inflight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
        tx.send_replace(Some(answer));
    }
}

/// Waits for the answer of a call in flight.
pub(super) async fn wait(mut rx: watch::Receiver<Option<Answer>>) -> Option<Answer> {
    loop {
        if let Some(answer) = rx.borrow_and_update().clone() {
            return Some(answer);
        }
        if rx.changed().await.is_err() {
            return rx.borrow().clone();
        }
    }
}
