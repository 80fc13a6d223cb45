//! Key-Value-Pairs as used for Object Properties (draft-ietf-moq-transport-18
//! §1.4.3, §11.2.1.2): types are delta-coded from the previous type; even
//! types carry one vi64, odd types a length (≤ 65535) and bytes.

use super::{varint, WireError};

/// One property value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(u64),
    Bytes(Vec<u8>),
}

/// Encodes properties (sorted by type, as delta coding requires).
pub fn encode(props: &[(u64, Value)], out: &mut Vec<u8>) {
    let mut sorted: Vec<&(u64, Value)> = props.iter().collect();
    sorted.sort_by_key(|(t, _)| *t);
    let mut prev = 0;
    for (t, v) in sorted {
        varint::write(out, t - prev);
        prev = *t;
        match v {
            Value::Int(i) => varint::write(out, *i),
            Value::Bytes(b) => {
                varint::write(out, b.len() as u64);
                out.extend_from_slice(b);
            }
        }
    }
}

/// Decodes a whole properties block (its length is known from the object).
pub fn decode(mut b: &[u8]) -> Result<Vec<(u64, Value)>, WireError> {
    let bad = |why: &str| WireError::Malformed("properties", why.into());
    let mut out = Vec::new();
    let mut prev: u64 = 0;
    while !b.is_empty() {
        let (delta, n) = varint::read(b).ok_or_else(|| bad("truncated type"))?;
        b = &b[n..];
        let t = prev.checked_add(delta).ok_or_else(|| bad("type overflow"))?;
        prev = t;
        if t % 2 == 0 {
            let (v, n) = varint::read(b).ok_or_else(|| bad("truncated value"))?;
            b = &b[n..];
            out.push((t, Value::Int(v)));
        } else {
            let (len, n) = varint::read(b).ok_or_else(|| bad("truncated length"))?;
            b = &b[n..];
            if len > u16::MAX as u64 || len as usize > b.len() {
                return Err(bad("bad length"));
            }
            out.push((t, Value::Bytes(b[..len as usize].to_vec())));
            b = &b[len as usize..];
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_coded_round_trip() {
        let props = vec![(0x10, Value::Int(1_700_000_000_000_000)), (0x0b, Value::Bytes(vec![1, 2])), (0x08, Value::Int(48_000))];
        let mut out = Vec::new();
        encode(&props, &mut out);
        // 0x08 first (delta 8), then 0x0b (delta 3), then 0x10 (delta 5).
        assert_eq!(out[0], 0x08);
        let back = decode(&out).unwrap();
        assert_eq!(back, vec![(0x08, Value::Int(48_000)), (0x0b, Value::Bytes(vec![1, 2])), (0x10, Value::Int(1_700_000_000_000_000))]);
    }

    #[test]
    fn malformed_is_an_error() {
        assert!(decode(&[0x01, 0x05, 0x00]).is_err());
        assert!(decode(&[0x10]).is_err());
    }
}
