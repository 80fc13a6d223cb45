//! The client's SETUP (draft-ietf-moq-transport-18 §10.3): the close code
//! for Setup Options that cannot be read, and the checks on the PATH and
//! AUTHORITY options (§10.3.1.1, §10.3.1.2).

use crate::wire::session_error::{
    INVALID_AUTHORITY, INVALID_PATH, KEY_VALUE_FORMATTING_ERROR, MALFORMED_AUTHORITY, MALFORMED_PATH, PROTOCOL_VIOLATION,
};
use moq_wire::coding::{DecodeError, KeyValuePairs, Value};

/// Setup Option PATH (§10.3.1.2).
pub const PATH: u64 = 0x01;
/// Setup Option AUTHORITY (§10.3.1.1).
pub const AUTHORITY: u64 = 0x05;

/// The close code for Setup Options that could not be decoded: a Length
/// over 2^16-1 or a Type over 2^64-1 is a PROTOCOL_VIOLATION (§1.4.3, both
/// MUSTs); any other malformed Key-Value-Pair a KEY_VALUE_FORMATTING_ERROR.
pub fn undecodable(e: &DecodeError) -> u32 {
    match e {
        DecodeError::KeyValuePairLengthExceeded() | DecodeError::KvpTypeOverflow => PROTOCOL_VIOLATION,
        _ => KEY_VALUE_FORMATTING_ERROR,
    }
}

/// Checks PATH and AUTHORITY. Both MUST NOT be used on WebTransport (nor
/// through the WebRTC gateway, which is no native QUIC either): INVALID_PATH
/// / INVALID_AUTHORITY. On native QUIC each MUST follow RFC 3986 — PATH the
/// `path-abempty ["?" query]`, AUTHORITY the `authority` with a host
/// (§3.1.1) — else MALFORMED_PATH / MALFORMED_AUTHORITY. This relay serves
/// every path and authority, so a well-formed one is never INVALID_*.
pub fn check_options(options: &KeyValuePairs, native_quic: bool) -> Result<(), (u32, String)> {
    /// An option's close codes (not allowed here, malformed), name and syntax check.
    type Rule = (u32, u32, &'static str, fn(&[u8]) -> bool);
    for kv in &options.0 {
        let (invalid, malformed, name, ok): Rule = match kv.key {
            PATH => (INVALID_PATH, MALFORMED_PATH, "PATH", is_path),
            AUTHORITY => (INVALID_AUTHORITY, MALFORMED_AUTHORITY, "AUTHORITY", is_authority),
            _ => continue,
        };
        if !native_quic {
            return Err((invalid, format!("the {name} Setup Option is for native QUIC only, not WebTransport (§10.3.1)")));
        }
        let Value::BytesValue(v) = &kv.value else { continue };
        if !ok(v) {
            return Err((malformed, format!("the {name} Setup Option is not an RFC 3986 {name} (§10.3.1)")));
        }
    }
    Ok(())
}

fn unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

fn sub_delim(c: u8) -> bool {
    matches!(c, b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=')
}

/// True when `s` is made of bytes `plain` accepts and `%XX` escapes.
fn chars(s: &[u8], plain: impl Fn(u8) -> bool) -> bool {
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            if i + 2 >= s.len() || !(s[i + 1].is_ascii_hexdigit() && s[i + 2].is_ascii_hexdigit()) {
                return false;
            }
            i += 3;
        } else if plain(s[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

fn pchar(c: u8) -> bool {
    unreserved(c) || sub_delim(c) || matches!(c, b':' | b'@')
}

/// RFC 3986 `path-abempty [ "?" query ]` (§10.3.1.2).
pub fn is_path(v: &[u8]) -> bool {
    let (path, query) = match v.iter().position(|c| *c == b'?') {
        Some(q) => (&v[..q], Some(&v[q + 1..])),
        None => (v, None),
    };
    (path.is_empty() || path[0] == b'/')
        && chars(path, |c| pchar(c) || c == b'/')
        && query.is_none_or(|q| chars(q, |c| pchar(c) || c == b'/' || c == b'?'))
}

/// RFC 3986 `authority` with a non-empty host (§10.3.1.1, §3.1.1).
pub fn is_authority(v: &[u8]) -> bool {
    let hostport = match v.iter().position(|c| *c == b'@') {
        Some(at) => {
            if !chars(&v[..at], |c| unreserved(c) || sub_delim(c) || c == b':') {
                return false;
            }
            &v[at + 1..]
        }
        None => v,
    };
    let (host, port) = if hostport.first() == Some(&b'[') {
        let Some(end) = hostport.iter().position(|c| *c == b']') else { return false };
        let literal = &hostport[1..end];
        let ok = std::str::from_utf8(literal).is_ok_and(|s| s.parse::<std::net::Ipv6Addr>().is_ok())
            || (literal.first() == Some(&b'v')
                && literal.len() > 1
                && chars(&literal[1..], |c| unreserved(c) || sub_delim(c) || c == b':'));
        if !ok {
            return false;
        }
        match &hostport[end + 1..] {
            [] => (&hostport[..end + 1], None),
            [b':', port @ ..] => (&hostport[..end + 1], Some(port)),
            _ => return false,
        }
    } else {
        match hostport.iter().rposition(|c| *c == b':') {
            Some(c) => (&hostport[..c], Some(&hostport[c + 1..])),
            None => (hostport, None),
        }
    };
    !host.is_empty()
        && (host[0] == b'[' || chars(host, |c| unreserved(c) || sub_delim(c)))
        && port.is_none_or(|p| p.iter().all(u8::is_ascii_digit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_s10_3_1_2() {
        for ok in ["", "/", "/moq", "/moq/relay?token=abc-DEF_123.~", "/a%20b", "?q=1", "/a:b@c!$&'()*+,;=", "/x?a/b?c"] {
            assert!(is_path(ok.as_bytes()), "{ok:?}");
        }
        for bad in ["moq", "/a b", "/%zz", "/%4", "/a#frag", "/é", "/a?b c", "/<>"] {
            assert!(!is_path(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn authorities_s10_3_1_1() {
        for ok in ["relay.example", "relay.example:4443", "127.0.0.1:4443", "[::1]:4443", "[2001:db8::1]", "user:pw@host:1", "h:"] {
            assert!(is_authority(ok.as_bytes()), "{ok:?}");
        }
        for bad in ["", ":4443", "a b", "host:port", "[::1", "[zz]:1", "::1:4443", "a@b@c", "host/path", "[::1]x"] {
            assert!(!is_authority(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn options_per_transport() {
        let mut o = KeyValuePairs::new();
        o.set_bytesvalue(PATH, b"/moq".to_vec());
        assert!(check_options(&o, true).is_ok());
        assert_eq!(check_options(&o, false).unwrap_err().0, INVALID_PATH);
        o.set_bytesvalue(PATH, b"no-slash".to_vec());
        assert_eq!(check_options(&o, true).unwrap_err().0, MALFORMED_PATH);
        let mut o = KeyValuePairs::new();
        o.set_bytesvalue(AUTHORITY, b"relay:1".to_vec());
        assert_eq!(check_options(&o, false).unwrap_err().0, INVALID_AUTHORITY);
        o.set_bytesvalue(AUTHORITY, b":1".to_vec());
        assert_eq!(check_options(&o, true).unwrap_err().0, MALFORMED_AUTHORITY);
    }
}
