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
//! can insert, or (in `portcullis-ratelimit`, with its `axum` feature) axum's
//! `ConnectInfo<SocketAddr>`. A request without one is a configuration error, reported
//! as a `500` that says how to fix it, never a silent pass.
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

use http::{HeaderMap, HeaderValue, header::FORWARDED, request::Parts};

use crate::AuthError;

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

/// The socket peer of a request, for servers that are not axum: insert it into the
/// request extensions (axum's `ConnectInfo<SocketAddr>` is read by
/// `portcullis-ratelimit` directly).
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
    /// [`PeerAddr`] extension.
    ///
    /// # Errors
    ///
    /// A `500` [`AuthError`] when the request carries no peer address (see
    /// [`missing_peer_error`]).
    pub fn resolve_parts(&self, parts: &Parts) -> Result<ClientIp, AuthError> {
        match parts.extensions.get::<PeerAddr>() {
            Some(PeerAddr(addr)) => Ok(self.resolve(addr.ip(), &parts.headers)),
            None => Err(missing_peer_error()),
        }
    }
}

/// The configuration error for a request without a peer address: a `500` whose
/// description says how to fix it. Also logs it at `ERROR`.
pub fn missing_peer_error() -> AuthError {
    tracing::error!(
        target: "portcullis::config",
        "request has no peer address: serve axum apps with \
         `into_make_service_with_connect_info::<SocketAddr>()`, or insert \
         `portcullis_core::PeerAddr` into the request extensions"
    );
    AuthError::internal("missing_peer_address").with_description(
        "the server does not know the client address: serve the app with \
         into_make_service_with_connect_info::<SocketAddr>() or insert PeerAddr",
    )
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

/// One `X-Forwarded-For` entry: an address, optionally with a port (`1.2.3.4:80`,
/// `[2001:db8::1]:80`) or in brackets. `None` when malformed.
pub fn parse_xff_entry(entry: &str) -> Option<IpAddr> {
    parse_node(entry.trim_matches([' ', '\t']))
}

fn parse_node(node: &str) -> Option<IpAddr> {
    if node.is_empty() || node.len() > 64 {
        return None;
    }
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sock) = node.parse::<SocketAddr>() {
        return Some(sock.ip());
    }
    // `[v6]` without a port.
    node.strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .and_then(|n| n.parse::<Ipv6Addr>().ok())
        .map(IpAddr::V6)
}

/// Appends the `for=` node of each element of one `Forwarded` field line ([RFC 7239
/// §4]) to `out`, in order: `Some(ip)`, or `None` for an element whose `for` is
/// missing, `unknown`, obfuscated or malformed.
///
/// [RFC 7239 §4]: https://www.rfc-editor.org/rfc/rfc7239#section-4
pub fn forwarded_for_values(line: &HeaderValue, out: &mut Vec<Option<IpAddr>>) {
    let Ok(line) = line.to_str() else {
        out.push(None);
        return;
    };
    for element in split_unquoted(line, ',') {
        let mut found = None;
        let mut valid = true;
        for pair in split_unquoted(element, ';') {
            let pair = pair.trim_matches([' ', '\t']);
            if pair.is_empty() {
                continue;
            }
            let Some((name, value)) = pair.split_once('=') else {
                valid = false;
                break;
            };
            if !name.trim_matches([' ', '\t']).eq_ignore_ascii_case("for") {
                continue;
            }
            if found.is_some() {
                // Two `for` parameters in one element: ambiguous, refuse.
                valid = false;
                break;
            }
            found = Some(unquote(value.trim_matches([' ', '\t'])).and_then(|v| parse_node(&v)));
        }
        out.push(if valid { found.flatten() } else { None });
    }
}

/// Splits on `sep` outside double quotes (a backslash escapes inside quotes).
fn split_unquoted(s: &str, sep: char) -> impl Iterator<Item = &str> {
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    let mut parts = Vec::new();
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            parts.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&s[start..]);
    parts.into_iter()
}

/// A token, or a quoted-string with its escapes removed; `None` when a quote is
/// unbalanced.
fn unquote(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else {
        return (!value.contains('"')).then(|| value.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(name: &str, values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn proxied() -> ClientIpResolver {
        ClientIpResolver::new()
            .trust_proxies(["10.0.0.0/8", "fd00::/8"])
            .unwrap()
    }

    #[test]
    fn spoofed_xff_from_untrusted_peer_is_ignored() {
        let h = headers("x-forwarded-for", &["1.1.1.1"]);
        let got = proxied().resolve(ip("203.0.113.5"), &h);
        assert_eq!(got.ip(), ip("203.0.113.5"));
        // Without any trusted proxy the header is never read.
        let got = ClientIpResolver::new().resolve(ip("10.0.0.1"), &h);
        assert_eq!(got.ip(), ip("10.0.0.1"));
    }

    #[test]
    fn multi_hop_chain_skips_trusted_hops_from_the_right() {
        let h = headers(
            "x-forwarded-for",
            &["6.6.6.6, 198.51.100.7", "10.1.1.1, 10.2.2.2"],
        );
        let got = proxied().resolve(ip("10.0.0.1"), &h);
        assert_eq!(got.ip(), ip("198.51.100.7"));
    }

    #[test]
    fn all_trusted_chain_yields_leftmost() {
        let h = headers("x-forwarded-for", &["10.9.9.9, 10.2.2.2"]);
        assert_eq!(proxied().resolve(ip("10.0.0.1"), &h).ip(), ip("10.9.9.9"));
    }

    #[test]
    fn malformed_hop_stops_at_last_vouched_address() {
        let h = headers("x-forwarded-for", &["1.2.3.4, garbage, 10.2.2.2"]);
        assert_eq!(proxied().resolve(ip("10.0.0.1"), &h).ip(), ip("10.2.2.2"));
        let h = headers("x-forwarded-for", &["1.2.3.4, "]);
        assert_eq!(proxied().resolve(ip("10.0.0.1"), &h).ip(), ip("10.0.0.1"));
    }

    #[test]
    fn forwarded_header_with_quoted_ipv6_and_ports() {
        let r = proxied().header(ForwardedHeader::Forwarded);
        let h = headers(
            "forwarded",
            &[
                r#"for=192.0.2.60;proto=http;by=203.0.113.43, For="[2001:db8:cafe::17]:4711""#,
                r#"for="10.3.3.3:8080";proto=https"#,
            ],
        );
        assert_eq!(r.resolve(ip("10.0.0.1"), &h).ip(), ip("2001:db8:cafe::17"));
        // X-Forwarded-For is not believed when Forwarded is configured.
        let h = headers("x-forwarded-for", &["1.1.1.1"]);
        assert_eq!(r.resolve(ip("10.0.0.1"), &h).ip(), ip("10.0.0.1"));
    }

    #[test]
    fn forwarded_unknown_and_obfuscated_stop_the_walk() {
        let r = proxied().header(ForwardedHeader::Forwarded);
        for v in [
            "for=unknown",
            "for=_hidden",
            "proto=http",
            "for=1.1.1.1;for=2.2.2.2",
        ] {
            let h = headers("forwarded", &[&format!("for=7.7.7.7, {v}")]);
            assert_eq!(r.resolve(ip("10.0.0.1"), &h).ip(), ip("10.0.0.1"), "{v}");
        }
    }

    #[test]
    fn ipv6_grouped_by_64_and_mapped_v4_normalised() {
        let r = ClientIpResolver::new();
        let a = r.key(ClientIp::new(ip("2001:db8:1:2:aaaa::1")));
        let b = r.key(ClientIp::new(ip("2001:db8:1:2:ffff:1:2:3")));
        let c = r.key(ClientIp::new(ip("2001:db8:1:3::1")));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(ClientIp::new(ip("::ffff:192.0.2.1")).ip(), ip("192.0.2.1"));
        let full = ClientIpResolver::new().ipv6_prefix(128).unwrap();
        assert_ne!(
            full.key(ClientIp::new(ip("2001:db8::1"))),
            full.key(ClientIp::new(ip("2001:db8::2")))
        );
        assert!(ClientIpResolver::new().ipv6_prefix(0).is_err());
        assert!(ClientIpResolver::new().ipv6_prefix(129).is_err());
    }

    #[test]
    fn cidr_parsing_is_strict() {
        assert!("10.0.0.1/8".parse::<IpNet>().is_err());
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
        assert!("nonsense".parse::<IpNet>().is_err());
        let net: IpNet = "::ffff:10.0.0.0/104".parse().unwrap();
        assert_eq!(net.to_string(), "10.0.0.0/8");
        assert!(net.contains(ip("10.200.1.1")));
        assert!(net.contains(ip("::ffff:10.200.1.1")));
        let host: IpNet = "::1".parse().unwrap();
        assert!(host.contains(ip("::1")));
        assert!(!host.contains(ip("::2")));
    }

    #[test]
    fn mapped_peer_matches_v4_trusted_net() {
        let h = headers("x-forwarded-for", &["198.51.100.1"]);
        assert_eq!(
            proxied().resolve(ip("::ffff:10.0.0.1"), &h).ip(),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn missing_peer_is_a_500() {
        let (parts, ()) = http::Request::new(()).into_parts();
        let err = proxied().resolve_parts(&parts).unwrap_err();
        assert_eq!(err.status(), 500);
        assert!(
            err.description()
                .contains("into_make_service_with_connect_info")
        );
    }
}
