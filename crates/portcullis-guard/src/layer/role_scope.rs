//! [`RequireRoleLayer`] and [`RequireScopeLayer`]: one kind of names, any or all.

use portcullis_core::DefaultRenderer;

use super::shared::{Rule, Shared};
use crate::{GuardConfigError, Match, RoleHierarchy, RoleSet, ScopeSet, rule::Kind};

macro_rules! one_kind_layer {
    (
        $(#[$doc:meta])*
        $layer:ident, $set:ident, $kind:expr, $what:literal
    ) => {
        $(#[$doc])*
        #[must_use]
        pub struct $layer<R = DefaultRenderer> {
            shared: std::sync::Arc<Shared<R>>,
        }

        impl $layer {
            #[doc = concat!("Requires at least one of the ", $what, "s `names`.")]
            ///
            /// # Panics
            ///
            /// When `names` is empty or a name is invalid (see
            /// [`is_valid_name`](crate::is_valid_name)); use
            #[doc = concat!("[`try_any`](", stringify!($layer), "::try_any)")]
            /// for names read from configuration.
            pub fn any<I, N>(names: I) -> Self
            where
                I: IntoIterator<Item = N>,
                N: Into<Box<str>>,
            {
                Self::try_any(names).unwrap_or_else(|e| panic!("{e}"))
            }

            #[doc = concat!("Requires every one of the ", $what, "s `names`.")]
            ///
            /// # Panics
            ///
            /// When `names` is empty or a name is invalid (see
            /// [`is_valid_name`](crate::is_valid_name)); use
            #[doc = concat!("[`try_all`](", stringify!($layer), "::try_all)")]
            /// for names read from configuration.
            pub fn all<I, N>(names: I) -> Self
            where
                I: IntoIterator<Item = N>,
                N: Into<Box<str>>,
            {
                Self::try_all(names).unwrap_or_else(|e| panic!("{e}"))
            }

            #[doc = concat!("Requires at least one of the ", $what, "s `names`.")]
            ///
            /// # Errors
            ///
            /// When `names` is empty or a name is invalid.
            pub fn try_any<I, N>(names: I) -> Result<Self, GuardConfigError>
            where
                I: IntoIterator<Item = N>,
                N: Into<Box<str>>,
            {
                let rule = Rule::new($kind, Match::Any, names)?;
                Ok(Self { shared: std::sync::Arc::new(Shared::new(rule, None)) })
            }

            #[doc = concat!("Requires every one of the ", $what, "s `names`.")]
            ///
            /// # Errors
            ///
            /// When `names` is empty or a name is invalid.
            pub fn try_all<I, N>(names: I) -> Result<Self, GuardConfigError>
            where
                I: IntoIterator<Item = N>,
                N: Into<Box<str>>,
            {
                let rule = Rule::new($kind, Match::All, names)?;
                Ok(Self { shared: std::sync::Arc::new(Shared::new(rule, None)) })
            }

            #[doc = concat!("Requires the typed ", $what, " set `T`: a marker, `AnyOf<(..)>` or `AllOf<(..)>`.")]
            ///
            /// # Panics
            ///
            #[doc = concat!("When a hand-written `", stringify!($set), "` implementation has an invalid name")]
            /// (markers from the macros are checked at compile time).
            pub fn of<T: $set>() -> Self {
                let rule = Rule::of($kind, T::MATCH, T::NAMES);
                Self { shared: std::sync::Arc::new(Shared::new(rule, None)) }
            }
        }

        impl<R> $layer<R> {
            #[doc = concat!("Whether any or all of the ", $what, "s are required.")]
            pub fn mode(&self) -> Match {
                self.shared.requirement.rule.mode
            }

            #[doc = concat!("The required ", $what, "s.")]
            pub fn names(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
                self.shared.requirement.rule.names()
            }
        }

        guard_layer_common!($layer);
    };
}

one_kind_layer! {
    /// Requires roles of every request's [`Principal`](portcullis_core::Principal);
    /// applies [`Guard`](super::Guard). See the [module docs](super).
    ///
    /// Roles are checked through a [`RoleHierarchy`]: the one given with
    /// [`with_hierarchy`](Self::with_hierarchy), else one found in the request
    /// extensions. A principal lacking them gets `403` `insufficient_role`, naming the
    /// roles.
    ///
    /// ```
    /// use portcullis_guard::{roles, AnyOf, RequireRoleLayer, RoleHierarchy};
    ///
    /// roles! { pub Admin = "admin", pub Editor = "editor" }
    ///
    /// let by_name = RequireRoleLayer::any(["admin", "editor"]);
    /// let typed = RequireRoleLayer::of::<AnyOf<(Admin, Editor)>>();
    /// assert!(by_name.names().eq(typed.names()));
    ///
    /// let with_hierarchy = RequireRoleLayer::any(["viewer"])
    ///     .with_hierarchy(RoleHierarchy::new().grant("editor", ["viewer"]));
    /// # let _ = with_hierarchy;
    ///
    /// assert!(RequireRoleLayer::try_all(Vec::<String>::new()).is_err());
    /// ```
    RequireRoleLayer, RoleSet, Kind::Role, "role"
}

one_kind_layer! {
    /// Requires scopes of every request's [`Principal`](portcullis_core::Principal);
    /// applies [`Guard`](super::Guard). See the [module docs](super).
    ///
    /// A principal lacking them gets `403` `insufficient_scope`, naming the scopes in
    /// the challenge's `scope` attribute.
    ///
    /// ```
    /// use portcullis_guard::{scopes, AllOf, Match, RequireScopeLayer};
    ///
    /// scopes! { pub ReadData = "data:read", pub WriteData = "data:write" }
    ///
    /// let by_name = RequireScopeLayer::all(["data:read", "data:write"]);
    /// let typed = RequireScopeLayer::of::<AllOf<(ReadData, WriteData)>>();
    /// assert!(by_name.names().eq(typed.names()));
    /// assert_eq!(typed.mode(), Match::All);
    ///
    /// assert!(RequireScopeLayer::try_any(["two words"]).is_err());
    /// ```
    RequireScopeLayer, ScopeSet, Kind::Scope, "scope"
}

impl<R> RequireRoleLayer<R> {
    /// Checks roles through `hierarchy`, whatever the request extensions hold.
    pub fn with_hierarchy(mut self, hierarchy: RoleHierarchy) -> Self {
        std::sync::Arc::make_mut(&mut self.shared).hierarchy = Some(hierarchy);
        self
    }
}
