#![allow(dead_code, unreachable_pub)]

use std::{
    collections::BTreeMap,
    io,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use portcullis_core::PeerAddr;

/// The peer extension a server would insert, for a client at `ip`.
pub fn peer(ip: &str) -> PeerAddr {
    PeerAddr(SocketAddr::new(ip.parse().unwrap(), 5000))
}

/// Log lines written while the guard lives, on this thread.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// Captures every event of this thread (a current-thread test runtime) until the
    /// guard drops.
    pub fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Self::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One parsed Item of a Structured Field List (RFC 9651 §3.1): a string bare item
/// with integer parameters, the only shapes the RateLimit draft uses.
#[derive(Debug, PartialEq, Eq)]
pub struct SfItem {
    pub name: String,
    pub params: BTreeMap<String, i64>,
}

/// A strict parser for `"name";key=int;key=int, ...`, refusing anything else.
pub fn parse_sf_list(input: &str) -> Result<Vec<SfItem>, String> {
    let b = input.as_bytes();
    let mut i = 0;
    let mut items = Vec::new();
    let skip_sp = |i: &mut usize| {
        while *i < b.len() && b[*i] == b' ' {
            *i += 1;
        }
    };
    skip_sp(&mut i);
    loop {
        // sf-string
        if b.get(i) != Some(&b'"') {
            return Err(format!("expected string at {i}"));
        }
        i += 1;
        let mut name = String::new();
        loop {
            match b.get(i) {
                None => return Err("unterminated string".into()),
                Some(b'\\') => {
                    match b.get(i + 1) {
                        Some(c @ (b'"' | b'\\')) => name.push(*c as char),
                        _ => return Err("bad escape".into()),
                    }
                    i += 2;
                }
                Some(b'"') => {
                    i += 1;
                    break;
                }
                Some(&c) if (0x20..0x7f).contains(&c) => {
                    name.push(c as char);
                    i += 1;
                }
                Some(_) => return Err("non-visible char in string".into()),
            }
        }
        let mut params = BTreeMap::new();
        while b.get(i) == Some(&b';') {
            i += 1;
            skip_sp(&mut i);
            let start = i;
            // key = ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" )
            match b.get(i) {
                Some(c) if c.is_ascii_lowercase() || *c == b'*' => i += 1,
                _ => return Err(format!("bad key at {i}")),
            }
            while let Some(c) = b.get(i) {
                if c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-.*".contains(c) {
                    i += 1;
                } else {
                    break;
                }
            }
            let key = input[start..i].to_owned();
            if b.get(i) != Some(&b'=') {
                return Err("parameter without integer value".into());
            }
            i += 1;
            let vstart = i;
            if b.get(i) == Some(&b'-') {
                i += 1;
            }
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            let digits = &input[vstart..i];
            if digits.is_empty() || digits == "-" || digits.trim_start_matches('-').len() > 15 {
                return Err("bad integer".into());
            }
            if params.insert(key, digits.parse().unwrap()).is_some() {
                return Err("duplicate parameter".into());
            }
        }
        items.push(SfItem { name, params });
        skip_sp(&mut i);
        if i == b.len() {
            return Ok(items);
        }
        if b[i] != b',' {
            return Err(format!("expected comma at {i}"));
        }
        i += 1;
        skip_sp(&mut i);
    }
}

#[test]
fn parser_accepts_draft_examples_and_refuses_old_syntax() {
    let items = parse_sf_list(r#""burst";q=100;w=60,"daily";q=1000;w=86400"#).unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[1].params["w"], 86400);
    assert!(parse_sf_list("limit=100, remaining=50").is_err());
    assert!(parse_sf_list("100;w=60").is_err());
    assert!(parse_sf_list(r#""a";q="5""#).is_err());
}
