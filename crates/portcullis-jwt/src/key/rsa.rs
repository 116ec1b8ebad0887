//! Just enough DER to read an RSA public key's modulus size and exponent, and to
//! write a PKCS#1 `RSAPublicKey` from JWK components.

use super::{KeyError, KeyErrorKind, err};

pub(super) struct Info {
    pub(super) modulus_bits: usize,
    pub(super) exponent_ok: bool,
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OID: u8 = 0x06;
/// 1.2.840.113549.1.1.1, rsaEncryption.
const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

fn malformed() -> KeyError {
    err(KeyErrorKind::Malformed, "the RSA public key does not parse")
}

/// Reads one TLV; returns (tag, contents, rest).
fn tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), KeyError> {
    let (&tag, rest) = input.split_first().ok_or_else(malformed)?;
    let (&first, mut rest) = rest.split_first().ok_or_else(malformed)?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return Err(malformed());
        }
        let mut len = 0usize;
        for &b in &rest[..n] {
            len = (len << 8) | usize::from(b);
        }
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return Err(malformed());
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

fn strip(int: &[u8]) -> &[u8] {
    let zeros = int.iter().take_while(|&&b| b == 0).count();
    &int[zeros..]
}

/// Reads `RSAPublicKey` (PKCS#1) or a SubjectPublicKeyInfo holding one.
pub(super) fn inspect(der: &[u8]) -> Result<Info, KeyError> {
    let (tag, body, rest) = tlv(der)?;
    if tag != SEQUENCE || !rest.is_empty() {
        return Err(malformed());
    }
    let (tag, first, after) = tlv(body)?;
    match tag {
        INTEGER => {
            let (tag, e, rest) = tlv(after)?;
            if tag != INTEGER || !rest.is_empty() {
                return Err(malformed());
            }
            let n = strip(first);
            let e = strip(e);
            let Some(&top) = n.first() else {
                return Err(malformed());
            };
            let bits = n.len() * 8 - top.leading_zeros() as usize;
            let exponent_ok = e.last().is_some_and(|&b| b & 1 == 1) && e != [1];
            Ok(Info {
                modulus_bits: bits,
                exponent_ok,
            })
        }
        SEQUENCE => {
            let (tag, oid, _) = tlv(first)?;
            if tag != OID || oid != RSA_ENCRYPTION {
                return Err(malformed());
            }
            let (tag, bits, rest) = tlv(after)?;
            if tag != BIT_STRING || !rest.is_empty() {
                return Err(malformed());
            }
            match bits.split_first() {
                Some((0, key)) => inspect(key),
                _ => Err(malformed()),
            }
        }
        _ => Err(malformed()),
    }
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn push_uint(out: &mut Vec<u8>, value: &[u8]) {
    let value = strip(value);
    let pad = value.first().is_none_or(|&b| b & 0x80 != 0);
    out.push(INTEGER);
    push_len(out, value.len() + usize::from(pad));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(value);
}

/// Encodes PKCS#1 `RSAPublicKey { n, e }`.
pub(super) fn encode_public_key(n: &[u8], e: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(n.len() + e.len() + 16);
    push_uint(&mut body, n);
    push_uint(&mut body, e);
    let mut out = Vec::with_capacity(body.len() + 6);
    out.push(SEQUENCE);
    push_len(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}
