//! [`MemoryRefreshStore`]: refresh-token families in one process.

use std::{
    collections::{HashMap, HashSet},
    fmt,
    sync::{Arc, Mutex},
    time::SystemTime,
};

use super::{RefreshRecord, RefreshStore, RotateOutcome, Rotation, TokenHash};
use crate::{Error, ErrorKind};

struct TokenEntry {
    family: Arc<str>,
    issued_at: SystemTime,
    expires_at: SystemTime,
    used: bool,
}

struct Family {
    subject: Arc<str>,
    client_id: Arc<str>,
    expires_at: SystemTime,
    revoked: bool,
    tokens: Vec<TokenHash>,
}

#[derive(Default)]
struct MemState {
    tokens: HashMap<TokenHash, TokenEntry>,
    families: HashMap<Arc<str>, Family>,
    subjects: HashMap<Arc<str>, HashSet<Arc<str>>>,
    sweep_at: usize,
}

impl MemState {
    fn record(&self, hash: &TokenHash) -> Option<RefreshRecord> {
        let entry = self.tokens.get(hash)?;
        let family = self.families.get(&entry.family)?;
        Some(RefreshRecord {
            hash: *hash,
            family: entry.family.to_string(),
            subject: family.subject.to_string(),
            client_id: family.client_id.to_string(),
            issued_at: entry.issued_at,
            expires_at: entry.expires_at,
            family_expires_at: family.expires_at,
        })
    }

    fn revoke(&mut self, family: &str) -> bool {
        match self.families.get_mut(family) {
            Some(f) if !f.revoked => {
                f.revoked = true;
                true
            }
            _ => false,
        }
    }

    fn purge(&mut self, now: SystemTime) {
        let dead: Vec<Arc<str>> = self
            .families
            .iter()
            .filter(|(_, f)| f.expires_at <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in dead {
            if let Some(family) = self.families.remove(&id) {
                for hash in &family.tokens {
                    self.tokens.remove(hash);
                }
                if let Some(set) = self.subjects.get_mut(&family.subject) {
                    set.remove(&id);
                    if set.is_empty() {
                        self.subjects.remove(&family.subject);
                    }
                }
            }
        }
    }
}

/// An in-memory [`RefreshStore`]: one mutex over the whole state, never held across
/// an await, which makes every operation trivially atomic. Expired families are
/// swept as the store grows (and by [`purge_expired`](Self::purge_expired)), so
/// memory follows the number of live families.
///
/// For one process; use the SQL or Redis store to share families between instances.
#[derive(Clone, Default)]
pub struct MemoryRefreshStore {
    state: Arc<Mutex<MemState>>,
}

impl MemoryRefreshStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Drops every family whose absolute lifetime has passed.
    pub fn purge_expired(&self, now: SystemTime) {
        self.lock().purge(now);
    }

    /// How many families the store holds (live, revoked or not yet swept).
    pub fn family_count(&self) -> usize {
        self.lock().families.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Debug for MemoryRefreshStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryRefreshStore")
            .field("families", &self.family_count())
            .finish()
    }
}

impl RefreshStore for MemoryRefreshStore {
    async fn create(&self, record: RefreshRecord) -> Result<(), Error> {
        let mut state = self.lock();
        if state.families.len() >= state.sweep_at {
            state.purge(record.issued_at);
            state.sweep_at = (state.families.len() * 2).max(1024);
        }
        if state.tokens.contains_key(&record.hash) || state.families.contains_key(&*record.family) {
            return Err(Error::new(
                ErrorKind::Store,
                "duplicate refresh token or family",
            ));
        }
        let family: Arc<str> = record.family.into();
        let subject: Arc<str> = record.subject.into();
        state.tokens.insert(
            record.hash,
            TokenEntry {
                family: family.clone(),
                issued_at: record.issued_at,
                expires_at: record.expires_at,
                used: false,
            },
        );
        state.families.insert(
            family.clone(),
            Family {
                subject: subject.clone(),
                client_id: record.client_id.into(),
                expires_at: record.family_expires_at,
                revoked: false,
                tokens: vec![record.hash],
            },
        );
        state.subjects.entry(subject).or_default().insert(family);
        Ok(())
    }

    async fn rotate(&self, rotation: Rotation<'_>) -> Result<RotateOutcome, Error> {
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(entry) = state.tokens.get(rotation.presented) else {
            return Ok(RotateOutcome::Unknown);
        };
        let family_id = entry.family.clone();
        let Some(family) = state.families.get(&family_id) else {
            return Ok(RotateOutcome::Unknown);
        };
        if family.revoked {
            return Ok(RotateOutcome::FamilyRevoked);
        }
        if entry.used {
            let subject = family.subject.to_string();
            state.revoke(&family_id);
            return Ok(RotateOutcome::Reused {
                subject,
                family: family_id.to_string(),
            });
        }
        if *family.client_id != *rotation.client_id {
            return Ok(RotateOutcome::ClientMismatch);
        }
        if rotation.now >= entry.expires_at || rotation.now >= family.expires_at {
            return Ok(RotateOutcome::Expired);
        }
        if state.tokens.contains_key(rotation.successor) {
            return Err(Error::new(ErrorKind::Store, "duplicate refresh token"));
        }
        let family_expires_at = family.expires_at;
        let expires_at = (rotation.now + rotation.idle_timeout).min(family_expires_at);
        if let Some(entry) = state.tokens.get_mut(rotation.presented) {
            entry.used = true;
        }
        state.tokens.insert(
            *rotation.successor,
            TokenEntry {
                family: family_id.clone(),
                issued_at: rotation.now,
                expires_at,
                used: false,
            },
        );
        let Some(family) = state.families.get_mut(&family_id) else {
            return Ok(RotateOutcome::Unknown);
        };
        family.tokens.push(*rotation.successor);
        Ok(RotateOutcome::Rotated(RefreshRecord {
            hash: *rotation.successor,
            family: family_id.to_string(),
            subject: family.subject.to_string(),
            client_id: family.client_id.to_string(),
            issued_at: rotation.now,
            expires_at,
            family_expires_at,
        }))
    }

    async fn find(&self, hash: &TokenHash) -> Result<Option<RefreshRecord>, Error> {
        Ok(self.lock().record(hash))
    }

    async fn revoke_family(&self, family: &str) -> Result<bool, Error> {
        Ok(self.lock().revoke(family))
    }

    async fn revoke_subject(&self, subject: &str) -> Result<Vec<String>, Error> {
        let mut state = self.lock();
        let families: Vec<Arc<str>> = state
            .subjects
            .get(subject)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default();
        Ok(families
            .into_iter()
            .filter(|f| state.revoke(f))
            .map(|f| f.to_string())
            .collect())
    }
}
