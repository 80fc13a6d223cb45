//! MoQT variable-length integers, `vi64` (draft-ietf-moq-transport-18 §1.4.1):
//! the count of leading 1 bits in the first byte gives the length (1–9
//! bytes); this is not the QUIC varint of RFC 9000.
//!
//! moq-transport's `Decode` for `u64` consumes from a `Buf` and reports
//! `More(n)` on a short read. The data plane needs something different: peek
//! at a partially received stream buffer without consuming it and without
//! building an error value for every incomplete read, so the object parser can
//! retry cheaply when the next chunk arrives. That is all this module does.

/// Reads a vi64 at the start of `buf`. Returns the value and its encoded
/// length, or `None` when `buf` holds too few bytes.
#[inline]
pub fn read(buf: &[u8]) -> Option<(u64, usize)> {
    let first = *buf.first()?;
    let ones = first.leading_ones() as usize;
    let len = ones + 1;
    if buf.len() < len.min(9) {
        return None;
    }
    if ones >= 8 {
        let mut v = [0u8; 8];
        v.copy_from_slice(&buf[1..9]);
        return Some((u64::from_be_bytes(v), 9));
    }
    let mut value = u64::from(first & (0xffu16 >> len) as u8);
    for b in &buf[1..len] {
        value = (value << 8) | u64::from(*b);
    }
    Some((value, len))
}

/// Encoded length of `v` in the shortest form.
#[inline]
pub fn len(v: u64) -> usize {
    // n bytes carry 7n bits (n <= 8); 9 bytes carry all 64.
    let bits = 64 - v.leading_zeros() as usize;
    if bits > 56 {
        9
    } else {
        (bits.max(1)).div_ceil(7)
    }
}

/// Appends `v` to `out` in the shortest encoding.
#[inline]
pub fn write(out: &mut Vec<u8>, v: u64) {
    let n = len(v);
    if n == 9 {
        out.push(0xff);
        out.extend_from_slice(&v.to_be_bytes());
        return;
    }
    let bytes = v.to_be_bytes();
    let start = out.len();
    out.extend_from_slice(&bytes[8 - n..]);
    // n-1 leading ones, then a zero bit.
    let tag = !((0xffu16 >> (n - 1)) as u8);
    out[start] |= tag;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draft18_example_vectors() {
        // §1.4.1 "Example Integer Encodings".
        let cases: &[(&[u8], u64)] = &[
            (&[0x25], 37),
            (&[0x80, 0x25], 37),
            (&[0xbb, 0xbd], 15_293),
            (&[0xed, 0x7f, 0x3e, 0x7d], 226_442_877),
            (&[0xfa, 0xa1, 0xa0, 0xe4, 0x03, 0xd8], 2_893_212_287_960),
            (&[0xfc, 0x89, 0x98, 0xab, 0xc6, 0x6b, 0xc0], 151_288_809_941_952),
            (&[0xfe, 0xfa, 0x31, 0x8f, 0xa8, 0xe3, 0xca, 0x11], 70_423_237_261_249_041),
            (&[0xff; 9], u64::MAX),
        ];
        for (bytes, v) in cases {
            assert_eq!(read(bytes), Some((*v, bytes.len())), "{bytes:02x?}");
        }
    }

    #[test]
    fn short_input_is_none() {
        assert_eq!(read(&[]), None);
        assert_eq!(read(&[0xbb]), None);
        assert_eq!(read(&[0xff, 0, 0]), None);
    }

    #[test]
    fn round_trip_and_agrees_with_moq_transport() {
        use moq_transport::coding::Encode;
        for v in [0, 1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, 1 << 40, (1 << 56) - 1, 1 << 56, u64::MAX] {
            let mut out = Vec::new();
            write(&mut out, v);
            assert_eq!(out.len(), len(v), "{v}");
            assert_eq!(read(&out), Some((v, out.len())));
            let mut theirs = Vec::new();
            v.encode(&mut theirs).unwrap();
            assert_eq!(out, theirs, "{v}");
        }
    }
}
