//! The policy table: request paths to the [`Access`] each needs.

use std::{collections::HashMap, fmt, sync::Arc};

use super::access::{Access, Gate};
#[cfg(feature = "ratelimit")]
use super::limit::Limiter;
use crate::rule::Rule;

/// An [`Access`] as the service runs it, with its rate-limit state.
pub(super) struct Entry {
    pub(super) gate: Gate,
    pub(super) roles: Option<Arc<Rule>>,
    pub(super) scopes: Option<Arc<Rule>>,
    #[cfg(feature = "ratelimit")]
    pub(super) limiter: Option<Limiter>,
}

impl Entry {
    fn new(access: Access, pattern: &str) -> Self {
        #[cfg(not(feature = "ratelimit"))]
        let _ = pattern;
        Self {
            gate: access.gate,
            roles: access.roles,
            scopes: access.scopes,
            #[cfg(feature = "ratelimit")]
            limiter: access.quota.map(|quota| Limiter::new(quota, pattern)),
        }
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Entry");
        s.field("gate", &self.gate)
            .field("roles", &self.roles)
            .field("scopes", &self.scopes);
        #[cfg(feature = "ratelimit")]
        s.field("limiter", &self.limiter);
        s.finish()
    }
}

/// Exact paths, then wildcard prefixes from the longest, then the fallback.
#[derive(Clone)]
pub(super) struct Table {
    exact: HashMap<Box<str>, Arc<Entry>>,
    /// `"/pkg.Service/"` for the pattern `"/pkg.Service/*"`.
    prefixes: HashMap<Box<str>, Arc<Entry>>,
    fallback: Arc<Entry>,
}

impl Table {
    pub(super) fn new() -> Self {
        Self {
            exact: HashMap::new(),
            prefixes: HashMap::new(),
            fallback: Arc::new(Entry::new(Access::authenticated(), "fallback")),
        }
    }

    /// Adds `pattern`: an exact path (`/pkg.Service/Method`, `/admin/users`), or a
    /// prefix ending in `/*` (`/pkg.Service/*`, `/admin/*`, `/*`).
    ///
    /// # Panics
    ///
    /// When the pattern does not start with `/`, holds a `*` anywhere but in a final
    /// `/*`, or is already in the table.
    pub(super) fn insert(&mut self, pattern: &str, access: Access) {
        assert!(
            pattern.starts_with('/'),
            "policy pattern {pattern:?} must start with `/`"
        );
        let (map, key) = match pattern.strip_suffix('*') {
            Some(prefix) if prefix.ends_with('/') => (&mut self.prefixes, prefix),
            _ => (&mut self.exact, pattern),
        };
        assert!(
            !key.contains('*'),
            "policy pattern {pattern:?} may hold `*` only as a final `/*`"
        );
        let entry = Arc::new(Entry::new(access, pattern));
        let previous = map.insert(key.into(), entry);
        assert!(
            previous.is_none(),
            "policy pattern {pattern:?} is in the table twice"
        );
    }

    pub(super) fn set_fallback(&mut self, access: Access) {
        self.fallback = Arc::new(Entry::new(access, "fallback"));
    }

    /// The entry for `path`: its exact entry, else the longest wildcard prefix that
    /// covers it, else the fallback.
    pub(super) fn find(&self, path: &str) -> &Arc<Entry> {
        if let Some(entry) = self.exact.get(path) {
            return entry;
        }
        let mut end = path.len();
        while let Some(slash) = path[..end].rfind('/') {
            if let Some(entry) = self.prefixes.get(&path[..=slash]) {
                return entry;
            }
            end = slash;
        }
        &self.fallback
    }

    /// The patterns, sorted, for `Debug`.
    fn patterns(&self) -> Vec<String> {
        let exact = self.exact.keys().map(|k| k.to_string());
        let prefixes = self.prefixes.keys().map(|k| format!("{k}*"));
        let mut all: Vec<String> = exact.chain(prefixes).collect();
        all.sort_unstable();
        all
    }
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("patterns", &self.patterns())
            .field("fallback", &self.fallback)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        let mut table = Table::new();
        table.insert("/inv.Inventory/*", Access::authenticated());
        table.insert("/inv.Inventory/List", Access::anonymous());
        table.insert("/grpc.health.v1.Health/*", Access::open());
        table.insert("/admin/users/*", Access::role("admin"));
        table
    }

    fn gate(table: &Table, path: &str) -> Gate {
        table.find(path).gate
    }

    #[test]
    fn an_exact_path_wins_over_its_wildcard() {
        let table = table();
        assert_eq!(gate(&table, "/inv.Inventory/List"), Gate::Anonymous);
        assert_eq!(gate(&table, "/inv.Inventory/Add"), Gate::Authenticated);
        assert_eq!(gate(&table, "/grpc.health.v1.Health/Watch"), Gate::Open);
    }

    #[test]
    fn unknown_paths_fall_to_the_fallback() {
        let mut table = table();
        assert!(Arc::ptr_eq(table.find("/other.Service/M"), &table.fallback));
        assert!(Arc::ptr_eq(table.find(""), &table.fallback));
        // A service name that merely starts like a known one is another service.
        assert!(Arc::ptr_eq(
            table.find("/inv.InventoryAdmin/List"),
            &table.fallback
        ));
        table.set_fallback(Access::open());
        assert_eq!(gate(&table, "/other.Service/M"), Gate::Open);
    }

    #[test]
    fn the_longest_wildcard_covers_nested_routes() {
        let mut table = table();
        table.insert("/*", Access::anonymous());
        assert!(table.find("/admin/users/7/keys").roles.is_some());
        assert_eq!(gate(&table, "/admin/settings"), Gate::Anonymous);
        assert_eq!(gate(&table, "/"), Gate::Anonymous);
    }

    #[test]
    #[should_panic(expected = "is in the table twice")]
    fn a_duplicate_pattern_is_a_bug() {
        let mut table = table();
        table.insert("/inv.Inventory/List", Access::open());
    }

    #[test]
    #[should_panic(expected = "only as a final `/*`")]
    fn a_star_inside_a_pattern_is_a_bug() {
        Table::new().insert("/inv.*/List", Access::open());
    }

    #[test]
    #[should_panic(expected = "must start with `/`")]
    fn a_relative_pattern_is_a_bug() {
        Table::new().insert("inv.Inventory/List", Access::open());
    }
}
