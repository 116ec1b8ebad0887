//! Property tests for the forwarding-header parsers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use http::{HeaderMap, HeaderValue};
use portcullis_core::{
    ClientIpResolver, ForwardedHeader,
    client_ip::{forwarded_for_values, parse_xff_entry},
};
use proptest::prelude::*;

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
    (1u8..=9, any::<[u8; 3]>()).prop_map(|(a, r)| IpAddr::V4(Ipv4Addr::new(a, r[0], r[1], r[2])))
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
