//! What the authenticator remembers between requests, per key id: the principal made
//! from a record, and when it last wrote the key's last use.
//!
//! Both maps hold an entry only for keys that passed the digest comparison, so a
//! client without a genuine key cannot grow them.

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use dashmap::{DashMap, mapref::entry::Entry};
use portcullis_core::{Principal, PrincipalKind};

use crate::ApiKeyRecord;

/// How many keys' principals are kept at most.
const MAX_PRINCIPALS: usize = 50_000;

/// The principal of each key, reused while the store answers the same record.
///
/// An entry keeps the record it was made from. A store that hands out the same `Arc`
/// again (as [`MemoryStore`](crate::MemoryStore) does while a record is unchanged) is
/// recognised by pointer: the `Arc` held here keeps that record alive and unchanged,
/// so the same pointer means the same content. Any other answer is compared by
/// content, and a record that differs in anything (revocation, expiry, grants, last
/// use) gets a new principal. Stores are asked for nothing.
#[derive(Default)]
pub(crate) struct Principals {
    by_id: DashMap<Box<str>, Made, foldhash::fast::RandomState>,
}

struct Made {
    record: Arc<ApiKeyRecord>,
    principal: Principal,
}

impl Principals {
    /// The principal for `record`, the genuine record of key `id`.
    pub(crate) fn get(&self, id: &str, record: &Arc<ApiKeyRecord>) -> Principal {
        if let Some(made) = self.by_id.get(id)
            && Arc::ptr_eq(&made.record, record)
        {
            return made.principal.clone();
        }
        self.refresh(id, record)
    }

    /// A record not seen before in this `Arc`: reuse the principal if the content is
    /// the same, else make a new one.
    fn refresh(&self, id: &str, record: &Arc<ApiKeyRecord>) -> Principal {
        if let Some(mut made) = self.by_id.get_mut(id) {
            if *made.record != **record {
                made.principal = principal_of(record);
            }
            made.record = Arc::clone(record);
            return made.principal.clone();
        }
        let principal = principal_of(record);
        // A bound on memory with a store of many keys: start over, rarely.
        if self.by_id.len() >= MAX_PRINCIPALS {
            self.by_id.clear();
        }
        self.by_id.insert(
            id.into(),
            Made {
                record: Arc::clone(record),
                principal: principal.clone(),
            },
        );
        principal
    }
}

/// The principal of a key: subject = owner, token id = key id, the key's grants and
/// lifetime.
pub(crate) fn principal_of(record: &ApiKeyRecord) -> Principal {
    let mut builder = Principal::builder(record.owner.as_str(), PrincipalKind::ApiKey)
        .token_id(record.id.as_str())
        .scopes(record.scopes.iter().map(String::as_str))
        .roles(record.roles.iter().map(String::as_str))
        .issued_at(record.created_at);
    if let Some(exp) = record.expires_at {
        builder = builder.expires_at(exp);
    }
    builder.build()
}

/// Per-process guard so that each key's last use is written at most once per interval,
/// whatever the backend and however many requests race.
pub(crate) struct Debounce {
    pub(crate) interval: Duration,
    written: DashMap<Box<str>, SystemTime, foldhash::fast::RandomState>,
}

impl Debounce {
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            interval,
            written: DashMap::default(),
        }
    }

    fn fresh(&self, at: SystemTime, now: SystemTime) -> bool {
        // A time in the future (clock skew) counts as fresh.
        now.duration_since(at)
            .map_or(true, |age| age < self.interval)
    }

    /// Whether the caller should write `now` as the key's last use.
    pub(crate) fn claim(&self, id: &str, recorded: Option<SystemTime>, now: SystemTime) -> bool {
        if recorded.is_some_and(|at| self.fresh(at, now)) {
            return false;
        }
        if let Some(mut at) = self.written.get_mut(id) {
            if self.fresh(*at, now) {
                return false;
            }
            *at = now;
            return true;
        }
        match self.written.entry(id.into()) {
            Entry::Occupied(mut slot) => {
                if self.fresh(*slot.get(), now) {
                    return false;
                }
                slot.insert(now);
                true
            }
            Entry::Vacant(slot) => {
                slot.insert(now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::KeyDigest;

    fn record(id: &str) -> ApiKeyRecord {
        ApiKeyRecord {
            id: id.into(),
            owner: "svc".into(),
            name: String::new(),
            scopes: vec!["read".into()],
            roles: Vec::new(),
            created_at: UNIX_EPOCH,
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
            rotated_to: None,
            session_bound: true,
            digest: KeyDigest::from_bytes([1; 32]),
        }
    }

    #[test]
    fn debounce_writes_once_per_interval() {
        let d = Debounce::new(Duration::from_secs(60));
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000);
        assert!(d.claim("k", None, t0));
        assert!(!d.claim("k", None, t0 + Duration::from_secs(59)));
        assert!(d.claim("k", None, t0 + Duration::from_secs(60)));
        assert!(d.claim("other", None, t0));
        // A recent write recorded by another process also counts.
        assert!(!d.claim("fresh", Some(t0), t0 + Duration::from_secs(1)));
    }

    /// Whether two principals are one (clones share their data).
    fn same(a: &Principal, b: &Principal) -> bool {
        std::ptr::eq(a.subject(), b.subject())
    }

    #[test]
    fn a_principal_is_reused_for_the_same_or_an_equal_record_and_remade_on_change() {
        let principals = Principals::default();
        let first = Arc::new(record("k"));
        let made = principals.get("k", &first);
        assert!(made.has_scope("read"));
        // The same Arc, and an equal record in a new Arc (a network store's answer).
        assert!(same(&principals.get("k", &first), &made));
        let equal = Arc::new(record("k"));
        assert!(same(&principals.get("k", &equal), &made));
        // Any change gives a new principal at once.
        let mut changed = record("k");
        changed.scopes = vec!["write".into()];
        let remade = principals.get("k", &Arc::new(changed));
        assert!(!same(&remade, &made));
        assert!(remade.has_scope("write") && !remade.has_scope("read"));
        let mut expiring = record("k");
        expiring.scopes = vec!["write".into()];
        expiring.expires_at = Some(UNIX_EPOCH + Duration::from_secs(60));
        let expiring = principals.get("k", &Arc::new(expiring));
        assert_eq!(
            expiring.expires_at(),
            Some(UNIX_EPOCH + Duration::from_secs(60))
        );
    }
}
