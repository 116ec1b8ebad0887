//! [`ClientIp`]: the address a request came from, and how far proxies are believed.
//!
//! By default the client is the socket peer. `Forwarded` ([RFC 7239]) or
//! `X-Forwarded-For` is read only when the peer is one of the configured trusted
//! proxies, and then the chain is walked from the right: each hop that is itself a
//! trusted proxy is skipped, and the first untrusted address is the client. Entries to
//! the left of it were written by the client (or by proxies nobody vouches for) and are
//! never believed, so a spoofed `X-Forwarded-For` cannot choose a client's address.
//!
//! Addresses are normalised (an IPv4-mapped IPv6 address is its IPv4 address), and
//! [`ClientIpResolver::key`] groups IPv6 clients by their `/64` by default: one
//! subscriber usually holds a whole `/64`, so keying on single IPv6 addresses would
//! hand every client 2^64 identities.
//!
//! The peer address comes from the request extensions: [`PeerAddr`], which any server
//! can insert; with the `tonic` feature, the `TcpConnectInfo` that tonic's
//! `Server::builder()` records for every call; or (in `portcullis-ratelimit`, with its
//! `axum` feature) axum's `ConnectInfo<SocketAddr>`. A request without one is a
//! configuration error, never a silent pass: the client gets a generic `500` (gRPC
//! `INTERNAL`), and how to fix the server goes to the log.
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr};
//! use http::HeaderMap;
//! use portcullis_core::ClientIpResolver;
//!
//! let resolver = ClientIpResolver::new().trust_proxies(["10.0.0.0/8"]).unwrap();
//! let mut headers = HeaderMap::new();
//! headers.insert("x-forwarded-for", "1.2.3.4, 203.0.113.9, 10.0.0.7".parse().unwrap());
//!
//! // From the trusted load balancer: the rightmost untrusted hop is the client.
//! let peer = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
//! assert_eq!(resolver.resolve(peer, &headers).ip().to_string(), "203.0.113.9");
//!
//! // From anyone else, the header is ignored.
//! let peer = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
//! assert_eq!(resolver.resolve(peer, &headers).ip(), peer);
//! ```
//!
//! [RFC 7239]: https://www.rfc-editor.org/rfc/rfc7239

use std::{
    error::Error as StdError,
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    str::FromStr,
    sync::Arc,
};

use http::{Extensions, HeaderMap, header::FORWARDED, request::Parts};

use crate::AuthError;

mod forwarded;
#[cfg(test)]
mod tests;

use self::forwarded::{forwarded_for_values, parse_xff_entry};

/// The default prefix length IPv6 clients are grouped by.
pub const DEFAULT_IPV6_PREFIX: u8 = 64;

/// The most forwarding hops examined; a longer chain stops at the last one believed.
const MAX_HOPS: usize = 64;

/// A client's IP address, normalised (IPv4-mapped IPv6 addresses become IPv4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientIp(IpAddr);

impl ClientIp {
    /// Wraps `ip`, normalising an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) to IPv4.
    pub fn new(ip: IpAddr) -> Self {
        Self(normalise(ip))
    }

    /// The address.
    pub fn ip(&self) -> IpAddr {
        self.0
    }

    /// The address with its host bits cleared: IPv4 kept to `v4_prefix` bits, IPv6 to
    /// `v6_prefix` bits (prefixes above 32 / 128 are clamped).
    #[inline]
    pub fn masked(&self, v4_prefix: u8, v6_prefix: u8) -> IpAddr {
        mask(self.0, v4_prefix, v6_prefix)
    }
}

impl fmt::Display for ClientIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The socket peer of a request, for servers that record none Portcullis reads: insert
/// it into the request extensions. (axum's `ConnectInfo<SocketAddr>` is read by
/// `portcullis-ratelimit` with its `axum` feature, and tonic's `TcpConnectInfo` with
/// the `tonic` feature.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerAddr(pub SocketAddr);

/// Which forwarding header trusted proxies write. Only one is read: believing both
/// would let a client add the one its proxy does not overwrite.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (the common default).
    #[default]
    XForwardedFor,
    /// `Forwarded: for=client, for="[2001:db8::1]:4711"` ([RFC 7239]).
    ///
    /// [RFC 7239]: https://www.rfc-editor.org/rfc/rfc7239
    Forwarded,
}

/// An IP network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`), or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// The network `addr/prefix`.
    ///
    /// # Errors
    ///
    /// When `prefix` is longer than the address (32 or 128 bits), or `addr` has bits
    /// set beyond the prefix (`10.0.0.1/8` is almost always a typo).
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, ClientIpConfigError> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(ClientIpConfigError("prefix length longer than the address"));
        }
        if mask(addr, prefix, prefix) != addr {
            return Err(ClientIpConfigError(
                "network address has bits set beyond its prefix",
            ));
        }
        // `::ffff:10.0.0.0/104` is the IPv4 network `10.0.0.0/8`.
        if let IpAddr::V6(v6) = addr
            && let (Some(v4), true) = (v6.to_ipv4_mapped(), prefix >= 96)
        {
            return Ok(Self {
                addr: IpAddr::V4(v4),
                prefix: prefix - 96,
            });
        }
        Ok(Self { addr, prefix })
    }

    /// Whether `ip` (normalised) is in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = normalise(ip);
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix, self.prefix) == self.addr
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }
}

impl FromStr for IpNet {
    type Err = ClientIpConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => {
                let prefix = prefix
                    .parse::<u8>()
                    .map_err(|_| ClientIpConfigError("invalid CIDR prefix length"))?;
                (addr, Some(prefix))
            }
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| ClientIpConfigError("invalid IP address in CIDR"))?;
        let prefix = prefix.unwrap_or(if addr.is_ipv4() { 32 } else { 128 });
        Self::new(addr, prefix)
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A bad client-IP configuration value (a malformed CIDR, a prefix out of range).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIpConfigError(&'static str);

impl fmt::Display for ClientIpConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl StdError for ClientIpConfigError {}

/// Finds a request's [`ClientIp`]: the socket peer, or, behind trusted proxies, the
/// rightmost untrusted forwarding hop. See the [module docs](crate::client_ip).
///
/// Cheap to clone (the proxy list is shared).
#[derive(Debug, Clone)]
pub struct ClientIpResolver {
    trusted: Arc<[IpNet]>,
    header: ForwardedHeader,
    v4_prefix: u8,
    v6_prefix: u8,
}

impl Default for ClientIpResolver {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientIpResolver {
    /// The socket peer is the client; no forwarding header is believed. IPv6 clients
    /// are keyed by their `/64`.
    pub fn new() -> Self {
        Self {
            trusted: Arc::from([]),
            header: ForwardedHeader::XForwardedFor,
            v4_prefix: 32,
            v6_prefix: DEFAULT_IPV6_PREFIX,
        }
    }

    /// Believes the forwarding header when the peer (and each hop walked through) is in
    /// one of `networks` (CIDR strings such as `10.0.0.0/8`, `::1`, `fd00::/8`).
    /// Adds to the networks already trusted.
    ///
    /// # Errors
    ///
    /// When an entry is not a valid CIDR or address.
    pub fn trust_proxies<I, S>(self, networks: I) -> Result<Self, ClientIpConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let nets = networks
            .into_iter()
            .map(|s| s.as_ref().parse::<IpNet>())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.trust_networks(nets))
    }

    /// Like [`trust_proxies`](Self::trust_proxies), with parsed networks.
    pub fn trust_networks(mut self, networks: impl IntoIterator<Item = IpNet>) -> Self {
        let mut all = self.trusted.to_vec();
        all.extend(networks);
        self.trusted = all.into();
        self
    }

    /// Which forwarding header the trusted proxies write (default `X-Forwarded-For`).
    pub fn header(mut self, header: ForwardedHeader) -> Self {
        self.header = header;
        self
    }

    /// The prefix length IPv6 clients are grouped by in [`key`](Self::key) (default 64;
    /// 128 keys each address).
    ///
    /// # Errors
    ///
    /// When `prefix` is 0 or above 128.
    pub fn ipv6_prefix(mut self, prefix: u8) -> Result<Self, ClientIpConfigError> {
        if prefix == 0 || prefix > 128 {
            return Err(ClientIpConfigError("IPv6 prefix must be within 1..=128"));
        }
        self.v6_prefix = prefix;
        Ok(self)
    }

    /// The prefix length IPv4 clients are grouped by in [`key`](Self::key) (default 32).
    ///
    /// # Errors
    ///
    /// When `prefix` is 0 or above 32.
    pub fn ipv4_prefix(mut self, prefix: u8) -> Result<Self, ClientIpConfigError> {
        if prefix == 0 || prefix > 32 {
            return Err(ClientIpConfigError("IPv4 prefix must be within 1..=32"));
        }
        self.v4_prefix = prefix;
        Ok(self)
    }

    /// The trusted proxy networks.
    pub fn trusted(&self) -> &[IpNet] {
        &self.trusted
    }

    /// Whether `ip` is a trusted proxy.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(ip))
    }

    /// The client of a request that arrived from `peer` with `headers`.
    ///
    /// A malformed, obfuscated (`_hidden`) or `unknown` hop stops the walk: the client
    /// is then the last address a trusted proxy vouched for (the proxy itself), so
    /// garbage never lets a client pick its own key. At most 64 hops are examined.
    // Inlined so that the common case, no trusted proxies, costs a branch in the
    // caller's crate; the walk behind proxies stays out of line.
    #[inline]
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> ClientIp {
        let peer = normalise(peer);
        if self.trusted.is_empty() {
            return ClientIp(peer);
        }
        self.resolve_behind_proxies(peer, headers)
    }

    fn resolve_behind_proxies(&self, peer: IpAddr, headers: &HeaderMap) -> ClientIp {
        if !self.is_trusted(peer) {
            return ClientIp(peer);
        }
        match self.header {
            ForwardedHeader::XForwardedFor => {
                let hops = headers.get_all("x-forwarded-for").iter().rev().flat_map(
                    |line| -> Box<dyn Iterator<Item = Option<IpAddr>>> {
                        match line.to_str() {
                            Ok(s) => Box::new(s.rsplit(',').map(parse_xff_entry)),
                            Err(_) => Box::new(std::iter::once(None)),
                        }
                    },
                );
                self.walk(peer, hops)
            }
            ForwardedHeader::Forwarded => {
                let mut elements = Vec::new();
                for line in headers.get_all(FORWARDED) {
                    forwarded_for_values(line, &mut elements);
                }
                self.walk(peer, elements.into_iter().rev())
            }
        }
    }

    fn walk(&self, peer: IpAddr, hops: impl Iterator<Item = Option<IpAddr>>) -> ClientIp {
        let mut client = peer;
        for hop in hops.take(MAX_HOPS) {
            let Some(ip) = hop else { break };
            client = normalise(ip);
            if !self.is_trusted(client) {
                break;
            }
        }
        ClientIp(client)
    }

    /// The rate-limit key of `ip`: its address masked to the configured prefixes
    /// (IPv6 `/64` by default).
    #[inline]
    pub fn key(&self, ip: ClientIp) -> IpAddr {
        ip.masked(self.v4_prefix, self.v6_prefix)
    }

    /// The client of the request whose head is `parts`, with the peer taken from a
    /// [`PeerAddr`] extension or, with the `tonic` feature, tonic's `TcpConnectInfo`.
    ///
    /// # Errors
    ///
    /// A `500` [`AuthError`] when the request carries no peer address (a server
    /// misconfiguration: how to fix it is logged at `ERROR`).
    pub fn resolve_parts(&self, parts: &Parts) -> Result<ClientIp, AuthError> {
        match peer_addr(&parts.extensions) {
            Some(addr) => Ok(self.resolve(addr.ip(), &parts.headers)),
            None => Err(missing_peer_error()),
        }
    }
}

/// The socket peer recorded in `extensions`: a [`PeerAddr`], else the remote address
/// of tonic's `TcpConnectInfo` (feature `tonic`).
#[inline]
pub(crate) fn peer_addr(extensions: &Extensions) -> Option<SocketAddr> {
    if let Some(PeerAddr(addr)) = extensions.get::<PeerAddr>() {
        return Some(*addr);
    }
    #[cfg(feature = "tonic")]
    if let Some(info) = extensions.get::<tonic::transport::server::TcpConnectInfo>() {
        return info.remote_addr();
    }
    None
}

/// How to give a server's requests their peer address, for the log.
#[cfg(feature = "tonic")]
const PEER_ADVICE: &str = "serve axum apps with \
    `into_make_service_with_connect_info::<SocketAddr>()` (and the `axum` feature of \
    portcullis-ratelimit); tonic's `Server::builder()` records the peer of plain TCP \
    connections, but over TLS or a custom incoming stream insert \
    `portcullis_core::PeerAddr` into the request extensions yourself";
#[cfg(not(feature = "tonic"))]
const PEER_ADVICE: &str = "serve axum apps with \
    `into_make_service_with_connect_info::<SocketAddr>()` (and the `axum` feature of \
    portcullis-ratelimit); for tonic servers enable the `tonic` feature of Portcullis, \
    which reads the peer tonic records; elsewhere insert `portcullis_core::PeerAddr` \
    into the request extensions";

/// The configuration error for a request without a peer address: a `500` (gRPC
/// `INTERNAL`) with a generic description for the client; how to fix the server goes
/// to the log, at `ERROR`.
pub(crate) fn missing_peer_error() -> AuthError {
    tracing::error!(
        target: "portcullis::config",
        "request has no peer address: {PEER_ADVICE}"
    );
    AuthError::internal("missing_peer_address")
        .with_description("the server cannot determine the client address")
}

#[inline]
fn normalise(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[inline]
fn mask(ip: IpAddr, v4_prefix: u8, v6_prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let p = u32::from(v4_prefix.min(32));
            let bits = u32::from(v4);
            let m = if p == 0 { 0 } else { u32::MAX << (32 - p) };
            IpAddr::V4(Ipv4Addr::from(bits & m))
        }
        IpAddr::V6(v6) => {
            let p = u32::from(v6_prefix.min(128));
            let bits = u128::from(v6);
            let m = if p == 0 { 0 } else { u128::MAX << (128 - p) };
            IpAddr::V6(Ipv6Addr::from(bits & m))
        }
    }
}
