//! A tonic service on generated code, protected method by method with one Portcullis
//! [`PolicyLayer`](portcullis::guard::PolicyLayer).
//!
//! `inventory.Inventory` (see `proto/inventory.proto`) has three methods that need
//! different things:
//!
//! | method | needs | rate limit |
//! |---|---|---|
//! | `List` | nothing (a credential, if sent, must be valid) | 20 a minute per client IP when anonymous, per subject otherwise |
//! | `Add` | scope `inventory:write` (and `inventory:bulk` above 100 units, checked in the handler) | 3 a minute per subject |
//! | `Purge` | role `admin` | |
//!
//! and the server also hosts the standard health service (`grpc.health.v1.Health`),
//! open to all. The whole table is [`policy::policy`]; no tower code is written by hand.
//!
//! ```text
//! cargo run -p tonic-inventory
//! ```

use std::{error::Error, future::Future, net::SocketAddr};

use tokio::net::TcpListener;
use tonic::transport::{Channel, Server, server::TcpIncoming};

pub mod policy;
pub mod store;
pub mod tokens;

/// The code `tonic-prost-build` generates from `proto/inventory.proto`.
#[allow(missing_docs, unreachable_pub, missing_debug_implementations)]
pub mod pb {
    tonic::include_proto!("inventory");
}

use crate::pb::inventory_server::InventoryServer;

/// Serves `inventory.Inventory` and the health service on `listener`, behind the
/// policy, until `shutdown` completes.
///
/// # Errors
///
/// When the authenticator cannot be built or the server fails.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Box<dyn Error + Send + Sync>> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<InventoryServer<store::Store>>().await;
    Server::builder()
        // One layer for every service the server hosts; each method's entry decides.
        .layer(policy::policy(tokens::authenticator()?))
        .add_service(health_service)
        .add_service(InventoryServer::new(store::Store::default()))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
        .await?;
    Ok(())
}

/// Connects a channel to the server at `addr`.
///
/// # Errors
///
/// When the connection fails.
pub async fn connect(addr: SocketAddr) -> Result<Channel, tonic::transport::Error> {
    Channel::from_shared(format!("http://{addr}"))
        .expect("a socket address makes a valid URI")
        .connect()
        .await
}

/// `message` as a request carrying `authorization: Bearer <token>`, or no credential.
///
/// # Panics
///
/// When `token` is no valid metadata value (a JWT always is).
pub fn request<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        let value = format!("Bearer {token}")
            .parse()
            .expect("a token is a valid metadata value");
        request.metadata_mut().insert("authorization", value);
    }
    request
}
