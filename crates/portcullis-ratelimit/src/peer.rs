//! Where the socket peer's address is found in a request.

use std::net::SocketAddr;

use http::Extensions;
use portcullis_core::PeerAddr;

/// The socket peer of a request: a [`PeerAddr`] extension, or (with the `axum`
/// feature) axum's `ConnectInfo<SocketAddr>`, which
/// `into_make_service_with_connect_info::<SocketAddr>()` inserts.
pub fn peer_addr(extensions: &Extensions) -> Option<SocketAddr> {
    if let Some(PeerAddr(addr)) = extensions.get::<PeerAddr>() {
        return Some(*addr);
    }
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(addr)) =
        extensions.get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        return Some(*addr);
    }
    None
}
