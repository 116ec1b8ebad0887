//! Parsers for the forwarding headers: `X-Forwarded-For` entries and RFC 7239
//! `Forwarded` elements.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use http::HeaderValue;

/// One `X-Forwarded-For` entry: an address, optionally with a port (`1.2.3.4:80`,
/// `[2001:db8::1]:80`) or in brackets. `None` when malformed.
pub(crate) fn parse_xff_entry(entry: &str) -> Option<IpAddr> {
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
pub(crate) fn forwarded_for_values(line: &HeaderValue, out: &mut Vec<Option<IpAddr>>) {
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
