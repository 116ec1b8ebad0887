//! [`GuardConfigError`]: a guard layer built from bad names.

use std::fmt;

/// Why a [`RequireRoleLayer`](crate::RequireRoleLayer),
/// [`RequireScopeLayer`](crate::RequireScopeLayer) or
/// [`RequireRoleOrScopeLayer`](crate::RequireRoleOrScopeLayer) could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardConfigError {
    kind: GuardConfigErrorKind,
    index: usize,
}

/// The class of a [`GuardConfigError`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GuardConfigErrorKind {
    /// No name was given (for a role-or-scope guard: no role, or no scope): a guard
    /// must require something.
    Empty,
    /// A name is empty, or holds a space, a control or non-ASCII character, `"` or `\`
    /// (see [`is_valid_name`](crate::is_valid_name)).
    InvalidName,
}

impl GuardConfigError {
    pub(crate) fn empty() -> Self {
        Self {
            kind: GuardConfigErrorKind::Empty,
            index: 0,
        }
    }

    pub(crate) fn invalid_name(index: usize) -> Self {
        Self {
            kind: GuardConfigErrorKind::InvalidName,
            index,
        }
    }

    /// The same error, for a list that follows `count` other names.
    pub(crate) fn after(self, count: usize) -> Self {
        match self.kind {
            GuardConfigErrorKind::Empty => self,
            GuardConfigErrorKind::InvalidName => Self::invalid_name(self.index + count),
        }
    }

    /// The class of error.
    pub fn kind(&self) -> GuardConfigErrorKind {
        self.kind
    }

    /// The position of the offending name in the list (`0` for [`Empty`](GuardConfigErrorKind::Empty));
    /// for [`RequireRoleOrScopeLayer`](crate::RequireRoleOrScopeLayer), scopes count
    /// after the roles.
    pub fn index(&self) -> usize {
        self.index
    }
}

impl fmt::Display for GuardConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            GuardConfigErrorKind::Empty => f.write_str("a guard needs at least one role or scope"),
            GuardConfigErrorKind::InvalidName => write!(
                f,
                "role or scope name #{} is invalid: it must be non-empty visible ASCII \
                 without spaces, quotes or backslashes",
                self.index
            ),
        }
    }
}

impl std::error::Error for GuardConfigError {}
