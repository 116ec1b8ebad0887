use http::HeaderValue;

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
    // The fix is operator advice: it goes to the log, not to the client.
    assert!(
        !err.description()
            .contains("into_make_service_with_connect_info"),
        "{}",
        err.description()
    );
}

#[cfg(feature = "tonic")]
#[test]
fn tonic_connect_info_is_the_peer_under_the_same_proxy_rules() {
    use tonic::transport::server::TcpConnectInfo;

    let request = |peer: &str| {
        let mut request = http::Request::new(());
        request.extensions_mut().insert(TcpConnectInfo {
            local_addr: None,
            remote_addr: Some(SocketAddr::new(ip(peer), 4711)),
        });
        request
            .headers_mut()
            .insert("x-forwarded-for", "198.51.100.1".parse().unwrap());
        request.into_parts().0
    };
    // From a trusted proxy, the forwarded client; from anyone else, the peer itself.
    let resolved = proxied().resolve_parts(&request("10.0.0.1")).unwrap();
    assert_eq!(resolved.ip(), ip("198.51.100.1"));
    let resolved = proxied().resolve_parts(&request("203.0.113.7")).unwrap();
    assert_eq!(resolved.ip(), ip("203.0.113.7"));
}

#[test]
fn a_peer_addr_extension_wins_over_anything_else() {
    let mut request = http::Request::new(());
    let peer = SocketAddr::new(ip("203.0.113.9"), 1);
    request.extensions_mut().insert(PeerAddr(peer));
    let parts = request.into_parts().0;
    assert_eq!(peer_addr(&parts.extensions), Some(peer));
}

/// Property tests for the forwarding-header parsers.
mod properties {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use http::{HeaderMap, HeaderValue};
    use proptest::prelude::*;

    use super::super::{
        ClientIpResolver, ForwardedHeader,
        forwarded::{forwarded_for_values, parse_xff_entry},
    };

    fn resolver() -> ClientIpResolver {
        ClientIpResolver::new()
            .trust_proxies(["10.0.0.0/8"])
            .unwrap()
    }

    fn any_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<u32>().prop_map(|n| IpAddr::V4(Ipv4Addr::from(n))),
            any::<u128>().prop_map(|n| IpAddr::V6(Ipv6Addr::from(n))),
        ]
    }

    fn public_v4() -> impl Strategy<Value = IpAddr> {
        (1u8..=9, any::<[u8; 3]>())
            .prop_map(|(a, r)| IpAddr::V4(Ipv4Addr::new(a, r[0], r[1], r[2])))
    }

    fn trusted_v4() -> impl Strategy<Value = IpAddr> {
        any::<[u8; 3]>().prop_map(|r| IpAddr::V4(Ipv4Addr::new(10, r[0], r[1], r[2])))
    }

    proptest! {
        #[test]
        fn xff_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(v) = HeaderValue::from_bytes(&raw) {
                let mut h = HeaderMap::new();
                h.insert("x-forwarded-for", v);
                let _ = resolver().resolve("10.0.0.1".parse().unwrap(), &h);
            }
            let _ = parse_xff_entry(&String::from_utf8_lossy(&raw));
        }

        #[test]
        fn forwarded_never_panics(raw in "[ -~]{0,200}") {
            if let Ok(v) = HeaderValue::from_str(&raw) {
                let mut out = Vec::new();
                forwarded_for_values(&v, &mut out);
                prop_assert!(out.len() <= raw.len() + 1);
                let mut h = HeaderMap::new();
                h.insert("forwarded", v);
                let _ = resolver().header(ForwardedHeader::Forwarded).resolve("10.0.0.1".parse().unwrap(), &h);
            }
        }

        #[test]
        fn xff_entry_round_trips(ip in any_ip(), port in proptest::option::of(any::<u16>())) {
            let text = match (ip, port) {
                (IpAddr::V4(v4), Some(p)) => format!("{v4}:{p}"),
                (IpAddr::V6(v6), Some(p)) => format!("[{v6}]:{p}"),
                (ip, None) => ip.to_string(),
            };
            prop_assert_eq!(parse_xff_entry(&format!(" {text} ")), Some(ip));
        }

        #[test]
        fn forwarded_node_round_trips(ip in any_ip(), port in proptest::option::of(any::<u16>())) {
            let node = match (ip, port) {
                (IpAddr::V4(v4), None) => v4.to_string(),
                (IpAddr::V4(v4), Some(p)) => format!("\"{v4}:{p}\""),
                (IpAddr::V6(v6), None) => format!("\"[{v6}]\""),
                (IpAddr::V6(v6), Some(p)) => format!("\"[{v6}]:{p}\""),
            };
            let v = HeaderValue::from_str(&format!("proto=https;For={node};by=x")).unwrap();
            let mut out = Vec::new();
            forwarded_for_values(&v, &mut out);
            prop_assert_eq!(out, vec![Some(ip)]);
        }

        /// Whatever a client writes to the left, the client is the rightmost untrusted hop.
        #[test]
        fn client_is_rightmost_untrusted_hop(
            spoofed in proptest::collection::vec("[ -~]{0,20}", 0..5),
            client in public_v4(),
            proxies in proptest::collection::vec(trusted_v4(), 0..4),
        ) {
            let mut chain: Vec<String> = spoofed.iter().map(|s| s.replace(',', "")).collect();
            chain.push(client.to_string());
            chain.extend(proxies.iter().map(ToString::to_string));
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&chain.join(", ")) {
                h.insert("x-forwarded-for", v);
                let got = resolver().resolve("10.0.0.1".parse().unwrap(), &h).ip();
                prop_assert_eq!(got, client);
                // From an untrusted peer, nothing in the header matters.
                let peer: IpAddr = "192.0.2.1".parse().unwrap();
                prop_assert_eq!(resolver().resolve(peer, &h).ip(), peer);
            }
        }
    }
}
