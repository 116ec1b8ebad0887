//! [`GuardConfigError`]: a guard layer built from bad names.

use std::fmt;

/// Why a [`RequireRoleLayer`](crate::RequireRoleLayer) or
/// [`RequireScopeLayer`](crate::RequireScopeLayer) could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardConfigError {
    kind: GuardConfigErrorKind,
    index: usize,
}

/// The class of a [`GuardConfigError`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GuardConfigErrorKind {
    /// No name was given: a guard must require something.
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

    /// The class of error.
    pub fn kind(&self) -> GuardConfigErrorKind {
        self.kind
    }

    /// The position of the offending name in the list (`0` for [`Empty`](GuardConfigErrorKind::Empty)).
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
