//! Checks inside tonic handlers (feature `tonic`): [`RequestExt`] gives the
//! [`Principal`] that a Portcullis layer put into a `tonic::Request`, and checks its
//! scopes and roles as `Result<_, Status>`.
//!
//! For checks that depend on the message (the owner of the record being changed, say)
//! or on more than a table can say. Refusals are the layers' own, through
//! `From<AuthError> for Status`: `UNAUTHENTICATED` or `PERMISSION_DENIED`, the message
//! and the `required-scope` / `required-role` metadata naming what is missing.
//!
//! ```
//! use portcullis_core::{Principal, PrincipalKind};
//! use portcullis_guard::grpc::RequestExt;
//! use tonic::{Code, Request, Status};
//!
//! fn purge(request: Request<()>) -> Result<String, Status> {
//!     let admin = request.require_role("admin")?;
//!     Ok(format!("purged by {}", admin.subject()))
//! }
//!
//! // As the layer leaves it: the principal in the extensions.
//! let mut request = Request::new(());
//! request.extensions_mut().insert(Principal::builder("alice", PrincipalKind::User).build());
//! let status = purge(request).unwrap_err();
//! assert_eq!(status.code(), Code::PermissionDenied);
//! assert_eq!(status.message(), "the credential lacks a required role: admin");
//! assert_eq!(status.metadata().get("required-role").unwrap(), "admin");
//! ```

use portcullis_core::{AuthContext, AuthError, Principal};
use tonic::Status;

use crate::RoleHierarchy;

/// The principal and its checks on a `tonic::Request`. See the
/// [module docs](self).
///
/// This trait is sealed: it is implemented for `tonic::Request<T>` only.
pub trait RequestExt: sealed::Sealed {
    /// The principal that authenticated the call.
    ///
    /// # Errors
    ///
    /// `UNAUTHENTICATED` when the call was let through without one (an anonymous or
    /// open method); `INTERNAL` when no Portcullis layer runs in front of the service
    /// (a misconfiguration, logged at `ERROR`).
    fn principal(&self) -> Result<&Principal, Status>;

    /// The principal, if it holds `scope`.
    ///
    /// # Errors
    ///
    /// As [`principal`](Self::principal), and `PERMISSION_DENIED` naming `scope` when
    /// the principal lacks it.
    fn require_scope(&self, scope: &str) -> Result<&Principal, Status>;

    /// The principal, if it holds `role`, directly or through a
    /// [`RoleHierarchy`] in the request extensions (as a
    /// [`PolicyLayer`](crate::policy::PolicyLayer) given one leaves it).
    ///
    /// # Errors
    ///
    /// As [`principal`](Self::principal), and `PERMISSION_DENIED` naming `role` when
    /// the principal lacks it.
    fn require_role(&self, role: &str) -> Result<&Principal, Status>;
}

impl<T> RequestExt for tonic::Request<T> {
    fn principal(&self) -> Result<&Principal, Status> {
        let extensions = self.extensions();
        if let Some(principal) = extensions.get::<Principal>() {
            return Ok(principal);
        }
        if extensions.get::<AuthContext>().is_some() {
            return Err(AuthError::missing_credentials().into());
        }
        tracing::error!(
            target: "portcullis::rejection",
            "a handler asked for the principal, but no Portcullis layer runs in front of \
             the service: add an AuthLayer or a PolicyLayer with Server::builder().layer(..)"
        );
        Err(AuthError::internal("missing_auth_layer")
            .with_description("no authentication layer protects this method")
            .into())
    }

    fn require_scope(&self, scope: &str) -> Result<&Principal, Status> {
        let principal = self.principal()?;
        if principal.has_scope(scope) {
            Ok(principal)
        } else {
            Err(AuthError::insufficient_scope(scope.to_owned()).into())
        }
    }

    fn require_role(&self, role: &str) -> Result<&Principal, Status> {
        let principal = self.principal()?;
        let held = match self.extensions().get::<RoleHierarchy>() {
            Some(hierarchy) => hierarchy.has_role(principal, role),
            None => principal.has_role(role),
        };
        if held {
            Ok(principal)
        } else {
            Err(AuthError::insufficient_role(role.to_owned()).into())
        }
    }
}

mod sealed {
    pub trait Sealed {}

    impl<T> Sealed for tonic::Request<T> {}
}

#[cfg(test)]
mod tests {
    use portcullis_core::PrincipalKind;
    use tonic::{Code, Request};

    use super::*;

    fn request(principal: Option<Principal>, context: bool) -> Request<()> {
        let mut request = Request::new(());
        if let Some(principal) = principal {
            request.extensions_mut().insert(principal);
        }
        if context {
            request.extensions_mut().insert(AuthContext::new("api"));
        }
        request
    }

    fn alice() -> Principal {
        Principal::builder("alice", PrincipalKind::User)
            .roles(["admin"])
            .scopes(["inventory:read"])
            .build()
    }

    #[test]
    fn the_principal_is_read_from_the_extensions() {
        let request = request(Some(alice()), false);
        assert_eq!(request.principal().unwrap().subject(), "alice");
        assert_eq!(
            request.require_scope("inventory:read").unwrap().subject(),
            "alice"
        );
        assert_eq!(request.require_role("admin").unwrap().subject(), "alice");
    }

    #[test]
    fn an_anonymous_call_is_unauthenticated() {
        let status = request(None, true).require_scope("x").unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
        assert_eq!(status.message(), "authentication is required");
    }

    #[test]
    fn no_layer_in_front_is_internal() {
        let status = request(None, false).principal().unwrap_err();
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(
            status.message(),
            "no authentication layer protects this method"
        );
    }

    #[test]
    fn a_missing_scope_is_named() {
        let status = request(Some(alice()), false)
            .require_scope("inventory:write")
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied);
        assert_eq!(
            status.message(),
            "the credential lacks a required scope: inventory:write"
        );
        assert_eq!(
            status.metadata().get("required-scope").unwrap(),
            "inventory:write"
        );
    }

    #[test]
    fn roles_are_checked_through_a_hierarchy_in_the_extensions() {
        let mut request = request(Some(alice()), false);
        assert_eq!(
            request.require_role("editor").unwrap_err().code(),
            Code::PermissionDenied
        );
        request
            .extensions_mut()
            .insert(RoleHierarchy::new().grant("admin", ["editor"]));
        assert!(request.require_role("editor").is_ok());
        let status = request.require_role("owner").unwrap_err();
        assert_eq!(status.metadata().get("required-role").unwrap(), "owner");
    }
}
