//! What each method needs: the one table the server is protected by.

use std::num::NonZeroU32;

use portcullis::{
    guard::{Access, PolicyLayer},
    jwt::JwtAuthenticator,
    ratelimit::Quota,
};

/// `inventory.Inventory`'s policy, with the health service open.
///
/// Methods the table does not name (a method added to the `.proto` later) fall to the
/// service-wide entry, and paths of other services to the fallback: both require
/// authentication.
pub fn policy(authenticator: JwtAuthenticator) -> PolicyLayer<JwtAuthenticator> {
    PolicyLayer::new(authenticator)
        .route("/inventory.Inventory/*", Access::authenticated())
        .route(
            "/inventory.Inventory/List",
            Access::anonymous().rate_limit(per_minute(20)),
        )
        .route(
            "/inventory.Inventory/Add",
            Access::scope("inventory:write").rate_limit(per_minute(3)),
        )
        .route("/inventory.Inventory/Purge", Access::role("admin"))
        .route("/grpc.health.v1.Health/*", Access::open())
        .realm("inventory")
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n).expect("a quota is at least 1"))
}
