//! Roles and scopes as types: the [`Role`] and [`Scope`] traits, the [`roles!`] and
//! [`scopes!`] macros that declare them, and the [`AnyOf`] / [`AllOf`] sets.
//!
//! ```
//! use portcullis_guard::{roles, scopes, AllOf, AnyOf, Match, Role, RoleSet, Scope, ScopeSet};
//!
//! roles! {
//!     /// People who run the place.
//!     pub Admin = "admin",
//!     pub Editor = "editor",
//! }
//! scopes! {
//!     pub ReadData = "data:read",
//!     pub WriteData = "data:write",
//! }
//!
//! assert_eq!(Admin::NAME, "admin");
//! assert_eq!(ReadData::NAME, "data:read");
//! assert_eq!(<AnyOf<(Admin, Editor)> as RoleSet>::NAMES, ["admin", "editor"]);
//! assert_eq!(<AnyOf<(Admin, Editor)> as RoleSet>::MATCH, Match::Any);
//! assert_eq!(<AllOf<(ReadData, WriteData)> as ScopeSet>::MATCH, Match::All);
//! ```

use std::{fmt, marker::PhantomData};

/// A role, as a type. Declare roles with [`roles!`](crate::roles).
///
/// Roles are read from [`Principal::roles`](portcullis_core::Principal::roles), with
/// the [`RoleHierarchy`](crate::RoleHierarchy) applied when one is configured.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a role",
    label = "not declared with `roles!`",
    note = "declare roles with `portcullis_guard::roles! {{ pub Admin = \"admin\" }}`; a scope marker is not a role"
)]
pub trait Role: Send + Sync + 'static {
    /// The role's name, as it appears in credentials.
    const NAME: &'static str;
}

/// A scope, as a type. Declare scopes with [`scopes!`](crate::scopes).
///
/// Scopes are read from [`Principal::scopes`](portcullis_core::Principal::scopes).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a scope",
    label = "not declared with `scopes!`",
    note = "declare scopes with `portcullis_guard::scopes! {{ pub ReadData = \"data:read\" }}`; a role marker is not a scope"
)]
pub trait Scope: Send + Sync + 'static {
    /// The scope's name, as it appears in credentials.
    const NAME: &'static str;
}

/// How the names of a requirement combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Match {
    /// At least one of the names must be held.
    Any,
    /// Every name must be held.
    All,
}

/// Any one of a tuple of roles or scopes: `RequireRole<AnyOf<(Admin, Editor)>>`.
///
/// A marker type: it is never constructed. Tuples of one to eight markers work.
pub struct AnyOf<T>(PhantomData<fn() -> T>);

/// All of a tuple of roles or scopes: `RequireScope<AllOf<(ReadData, WriteData)>>`.
///
/// A marker type: it is never constructed. Tuples of one to eight markers work.
pub struct AllOf<T>(PhantomData<fn() -> T>);

impl<T> fmt::Debug for AnyOf<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AnyOf<{}>", std::any::type_name::<T>())
    }
}

impl<T> fmt::Debug for AllOf<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AllOf<{}>", std::any::type_name::<T>())
    }
}

/// What [`RequireRole<R>`](crate::RequireRole) requires: a single [`Role`], or an
/// [`AnyOf`] / [`AllOf`] tuple of roles.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a role requirement",
    label = "expected a role, `AnyOf<(..roles)>` or `AllOf<(..roles)>`",
    note = "scopes are checked with `RequireScope`, roles with `RequireRole`"
)]
pub trait RoleSet: Send + Sync + 'static {
    /// The role names, never empty.
    const NAMES: &'static [&'static str];
    /// Whether any or all of [`NAMES`](Self::NAMES) must be held.
    const MATCH: Match;
}

/// What [`RequireScope<S>`](crate::RequireScope) requires: a single [`Scope`], or an
/// [`AnyOf`] / [`AllOf`] tuple of scopes.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a scope requirement",
    label = "expected a scope, `AnyOf<(..scopes)>` or `AllOf<(..scopes)>`",
    note = "roles are checked with `RequireRole`, scopes with `RequireScope`"
)]
pub trait ScopeSet: Send + Sync + 'static {
    /// The scope names, never empty.
    const NAMES: &'static [&'static str];
    /// Whether any or all of [`NAMES`](Self::NAMES) must be held.
    const MATCH: Match;
}

impl<R: Role> RoleSet for R {
    const NAMES: &'static [&'static str] = &[R::NAME];
    const MATCH: Match = Match::All;
}

impl<S: Scope> ScopeSet for S {
    const NAMES: &'static [&'static str] = &[S::NAME];
    const MATCH: Match = Match::All;
}

macro_rules! tuple_sets {
    ($($t:ident),+) => {
        impl<$($t: Role),+> RoleSet for AnyOf<($($t,)+)> {
            const NAMES: &'static [&'static str] = &[$($t::NAME),+];
            const MATCH: Match = Match::Any;
        }
        impl<$($t: Role),+> RoleSet for AllOf<($($t,)+)> {
            const NAMES: &'static [&'static str] = &[$($t::NAME),+];
            const MATCH: Match = Match::All;
        }
        impl<$($t: Scope),+> ScopeSet for AnyOf<($($t,)+)> {
            const NAMES: &'static [&'static str] = &[$($t::NAME),+];
            const MATCH: Match = Match::Any;
        }
        impl<$($t: Scope),+> ScopeSet for AllOf<($($t,)+)> {
            const NAMES: &'static [&'static str] = &[$($t::NAME),+];
            const MATCH: Match = Match::All;
        }
    };
}

tuple_sets!(A);
tuple_sets!(A, B);
tuple_sets!(A, B, C);
tuple_sets!(A, B, C, D);
tuple_sets!(A, B, C, D, E);
tuple_sets!(A, B, C, D, E, F);
tuple_sets!(A, B, C, D, E, F, G);
tuple_sets!(A, B, C, D, E, F, G, H);

/// Whether `name` can be a role or scope name: non-empty, visible ASCII, no `"` or `\`
/// (the `scope-token` of [RFC 6749 §3.3]), so it fits a `WWW-Authenticate` challenge
/// unchanged and cannot be confused with a space-separated list.
///
/// [RFC 6749 §3.3]: https://www.rfc-editor.org/rfc/rfc6749#section-3.3
///
/// ```
/// use portcullis_guard::is_valid_name;
///
/// assert!(is_valid_name("data:read"));
/// assert!(!is_valid_name(""));
/// assert!(!is_valid_name("two words"));
/// assert!(!is_valid_name("quo\"te"));
/// ```
pub const fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    if bytes.is_empty() {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b < 0x21 || b > 0x7e || b == b'"' || b == b'\\' {
            return false;
        }
        i += 1;
    }
    true
}

/// Declares role marker types implementing [`Role`].
///
/// Each entry is `visibility Name = "name"`, optionally with attributes and doc
/// comments; each type gets a generated doc line naming its role. Names are checked at
/// compile time (see [`is_valid_name`]).
///
/// ```
/// use portcullis_guard::{roles, Role};
///
/// roles! {
///     /// Can change anything.
///     pub Admin = "admin",
///     pub(crate) Editor = "editor",
///     Viewer = "viewer",
/// }
///
/// assert_eq!(Admin::NAME, "admin");
/// assert_eq!(Editor::NAME, "editor");
/// assert_eq!(Viewer::NAME, "viewer");
/// ```
///
/// A name with a space (or an empty one) does not compile:
///
/// ```compile_fail
/// portcullis_guard::roles! { pub Bad = "two words" }
/// ```
#[macro_export]
macro_rules! roles {
    ($($(#[$meta:meta])* $vis:vis $ty:ident = $name:literal),* $(,)?) => {
        $(
            #[doc = concat!("The `", $name, "` role.")]
            ///
            $(#[$meta])*
            #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
            $vis struct $ty;

            impl $crate::Role for $ty {
                const NAME: &'static str = $name;
            }

            const _: () = ::core::assert!(
                $crate::is_valid_name($name),
                "a role name must be non-empty visible ASCII without spaces, quotes or backslashes"
            );
        )*
    };
}

/// Declares scope marker types implementing [`Scope`].
///
/// Each entry is `visibility Name = "name"`, optionally with attributes and doc
/// comments; each type gets a generated doc line naming its scope. Names are checked at
/// compile time (see [`is_valid_name`]).
///
/// ```
/// use portcullis_guard::{scopes, Scope};
///
/// scopes! {
///     pub ReadData = "data:read",
///     /// Writes, including deletes.
///     pub WriteData = "data:write",
/// }
///
/// assert_eq!(ReadData::NAME, "data:read");
/// assert_eq!(WriteData::NAME, "data:write");
/// ```
///
/// ```compile_fail
/// portcullis_guard::scopes! { pub Empty = "" }
/// ```
#[macro_export]
macro_rules! scopes {
    ($($(#[$meta:meta])* $vis:vis $ty:ident = $name:literal),* $(,)?) => {
        $(
            #[doc = concat!("The `", $name, "` scope.")]
            ///
            $(#[$meta])*
            #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
            $vis struct $ty;

            impl $crate::Scope for $ty {
                const NAME: &'static str = $name;
            }

            const _: () = ::core::assert!(
                $crate::is_valid_name($name),
                "a scope name must be non-empty visible ASCII without spaces, quotes or backslashes"
            );
        )*
    };
}
