//! [`MemoryRefreshStore`]: refresh-token families in one process.

use std::{
    collections::{HashMap, HashSet},
    fmt,
    sync::{Arc, Mutex},
    time::SystemTime,
};

use super::{
    RefreshRecord, RefreshStore, RotateOutcome, Rotation, SealedToken, SessionStamp, TokenHash,
};
use crate::{Error, ErrorKind};

/// The default cap on live families per subject; a new login past it ends the
/// subject's oldest session.
pub const DEFAULT_MAX_FAMILIES_PER_SUBJECT: usize = 100;
/// The default cap on families in one [`MemoryRefreshStore`].
pub const DEFAULT_MAX_FAMILIES: usize = 1_000_000;

struct TokenEntry {
    family: Arc<str>,
    issued_at: SystemTime,
    expires_at: SystemTime,
    /// When it was used, and the successor it was rotated to.
    used: Option<(SystemTime, TokenHash, SealedToken)>,
}

struct Family {
    subject: Arc<str>,
    client_id: Arc<str>,
    expires_at: SystemTime,
    revoked: bool,
    tokens: Vec<TokenHash>,
}

struct MemState {
    tokens: HashMap<TokenHash, TokenEntry>,
    families: HashMap<Arc<str>, Family>,
    subjects: HashMap<Arc<str>, HashSet<Arc<str>>>,
    /// Subjects that ended their sessions at least once. One integer per such
    /// subject, kept for the life of the store.
    stamps: HashMap<Arc<str>, u64>,
    sweep_at: usize,
    max_families: usize,
    max_per_subject: usize,
}

impl Default for MemState {
    fn default() -> Self {
        Self {
            tokens: HashMap::new(),
            families: HashMap::new(),
            subjects: HashMap::new(),
            stamps: HashMap::new(),
            sweep_at: 0,
            max_families: DEFAULT_MAX_FAMILIES,
            max_per_subject: DEFAULT_MAX_FAMILIES_PER_SUBJECT,
        }
    }
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
            self.remove_family(&id);
        }
    }

    fn remove_family(&mut self, id: &str) {
        if let Some(family) = self.families.remove(id) {
            for hash in &family.tokens {
                self.tokens.remove(hash);
            }
            if let Some(set) = self.subjects.get_mut(&family.subject) {
                set.remove(id);
                if set.is_empty() {
                    self.subjects.remove(&family.subject);
                }
            }
        }
    }

    /// Makes room for one more family of `subject`: its oldest family goes when it is
    /// at its cap; the store refuses when it is full of live families.
    fn make_room(&mut self, subject: &str, now: SystemTime) -> Result<(), Error> {
        if self.families.len() >= self.sweep_at {
            self.purge(now);
            self.sweep_at = (self.families.len() * 2).max(1024);
        }
        if let Some(set) = self.subjects.get(subject)
            && set.len() >= self.max_per_subject
        {
            let oldest = set
                .iter()
                .min_by_key(|id| self.families.get(*id).map(|f| f.expires_at))
                .cloned();
            if let Some(oldest) = oldest {
                self.remove_family(&oldest);
            }
        }
        if self.families.len() >= self.max_families {
            self.purge(now);
            if self.families.len() >= self.max_families {
                return Err(Error::new(ErrorKind::Store, "refresh store full"));
            }
        }
        Ok(())
    }
}

/// An in-memory [`RefreshStore`]: one mutex over the whole state, never held across
/// an await, which makes every operation trivially atomic. Expired families are
/// swept as the store grows (and by [`purge_expired`](Self::purge_expired)), so
/// memory follows the number of live families.
///
/// Memory is bounded: a subject holds at most [`DEFAULT_MAX_FAMILIES_PER_SUBJECT`]
/// families (a login past that ends its oldest session), and the store at most
/// [`DEFAULT_MAX_FAMILIES`] (past that, after sweeping the expired, a login fails
/// with a store error rather than ending someone else's session). Both are
/// configurable.
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

    /// Caps the families one subject may hold (default
    /// [`DEFAULT_MAX_FAMILIES_PER_SUBJECT`], at least 1).
    #[must_use]
    pub fn max_families_per_subject(self, max: usize) -> Self {
        self.lock().max_per_subject = max.max(1);
        self
    }

    /// Caps the families the store holds (default [`DEFAULT_MAX_FAMILIES`], at least 1).
    #[must_use]
    pub fn max_families(self, max: usize) -> Self {
        self.lock().max_families = max.max(1);
        self
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
    async fn stamp(&self, subject: &str) -> Result<SessionStamp, Error> {
        Ok(SessionStamp(
            self.lock().stamps.get(subject).copied().unwrap_or(0),
        ))
    }

    async fn create(&self, record: RefreshRecord, stamp: SessionStamp) -> Result<(), Error> {
        let mut state = self.lock();
        if state.stamps.get(&*record.subject).copied().unwrap_or(0) != stamp.0 {
            return Err(Error::new(
                ErrorKind::SessionsEnded,
                "the subject's sessions were ended while this login was under way",
            ));
        }
        state.make_room(&record.subject, record.issued_at)?;
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
                used: None,
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
        if let Some((used_at, successor, sealed)) = entry.used {
            let repeat = !rotation.reuse_interval.is_zero()
                && rotation.now < used_at + rotation.reuse_interval
                && *family.client_id == *rotation.client_id;
            if repeat && let Some(successor) = state.record(&successor) {
                return Ok(RotateOutcome::Repeated { successor, sealed });
            }
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
            entry.used = Some((
                rotation.now,
                *rotation.successor,
                *rotation.sealed_successor,
            ));
        }
        state.tokens.insert(
            *rotation.successor,
            TokenEntry {
                family: family_id.clone(),
                issued_at: rotation.now,
                expires_at,
                used: None,
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

    async fn end_sessions(&self, subject: &str) -> Result<Vec<String>, Error> {
        let mut state = self.lock();
        *state.stamps.entry(subject.into()).or_insert(0) += 1;
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
