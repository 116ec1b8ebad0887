//! Comparing secrets without leaking where they differ.

/// Whether `a` and `b` are equal, in time that depends on their lengths only, not on
/// where they differ: for comparing secrets, digests of secrets and stored tokens.
///
/// Compares eight bytes per step, so it costs about as much as an ordinary
/// comparison.
///
/// ```
/// use portcullis_core::constant_time_eq;
///
/// assert!(constant_time_eq(b"same secret", b"same secret"));
/// assert!(!constant_time_eq(b"same secret", b"same secreT"));
/// assert!(!constant_time_eq(b"short", b"longer"));
/// ```
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (a_words, a_tail) = a.as_chunks::<8>();
    let (b_words, b_tail) = b.as_chunks::<8>();
    let mut diff = 0u64;
    for (x, y) in a_words.iter().zip(b_words) {
        diff |= u64::from_ne_bytes(*x) ^ u64::from_ne_bytes(*y);
    }
    for (x, y) in a_tail.iter().zip(b_tail) {
        diff |= u64::from(x ^ y);
    }
    // Keeps the compiler from turning the accumulation into an early exit.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn every_differing_byte_is_seen() {
        let a = *b"0123456789abcdefXYZ";
        assert!(constant_time_eq(&a, &a));
        for i in 0..a.len() {
            for bit in 0..8 {
                let mut b = a;
                b[i] ^= 1 << bit;
                assert!(!constant_time_eq(&a, &b), "byte {i} bit {bit}");
            }
        }
        assert!(!constant_time_eq(&a, &a[..18]));
        assert!(constant_time_eq(b"", b""));
    }
}
