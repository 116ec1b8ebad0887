//! Where the socket peer's address is found in a request.

use std::net::SocketAddr;

use http::Extensions;

/// The socket peer of a request: a [`PeerAddr`](portcullis_core::PeerAddr) extension;
/// with the `tonic` feature, the `TcpConnectInfo` that tonic's `Server::builder()`
/// records; or, with the `axum` feature, axum's `ConnectInfo<SocketAddr>`, which
/// `into_make_service_with_connect_info::<SocketAddr>()` inserts.
pub fn peer_addr(extensions: &Extensions) -> Option<SocketAddr> {
    if let Some(addr) = portcullis_core::internal::peer_addr(extensions) {
        return Some(addr);
    }
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(addr)) =
        extensions.get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        return Some(*addr);
    }
    None
}
