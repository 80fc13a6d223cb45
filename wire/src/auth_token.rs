//! The AUTHORIZATION TOKEN parameter and Setup Option (draft-18 §10.2.2,
//! §10.3.1.4): a Token structure in a length-prefixed parameter value.
//!
//! ```text
//! Token {
//!   Alias Type (vi64),
//!   [Token Alias (vi64),]   // DELETE, REGISTER, USE_ALIAS
//!   [Token Type (vi64),]    // REGISTER, USE_VALUE
//!   [Token Value (..),]     // REGISTER, USE_VALUE: the rest of the parameter
//! }
//! ```

use crate::{varint, WireError};

/// Parameter type and Setup Option key of AUTHORIZATION TOKEN (§10.2.2, §10.3.1.4).
pub const PARAMETER: u64 = 0x03;
/// Token Type of a Common Access Token (draft-ietf-moq-c4m §7.1).
pub const CAT: u64 = 0x01;

/// Alias Types (§10.2.2).
pub mod alias_type {
    pub const DELETE: u64 = 0x0;
    pub const REGISTER: u64 = 0x1;
    pub const USE_ALIAS: u64 = 0x2;
    pub const USE_VALUE: u64 = 0x3;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Delete { alias: u64 },
    Register { alias: u64, kind: u64, value: Vec<u8> },
    UseAlias { alias: u64 },
    UseValue { kind: u64, value: Vec<u8> },
}

impl Token {
    /// The parameter value (without its length prefix).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Token::Delete { alias } => {
                varint::write(&mut out, alias_type::DELETE);
                varint::write(&mut out, *alias);
            }
            Token::Register { alias, kind, value } => {
                varint::write(&mut out, alias_type::REGISTER);
                varint::write(&mut out, *alias);
                varint::write(&mut out, *kind);
                out.extend_from_slice(value);
            }
            Token::UseAlias { alias } => {
                varint::write(&mut out, alias_type::USE_ALIAS);
                varint::write(&mut out, *alias);
            }
            Token::UseValue { kind, value } => {
                varint::write(&mut out, alias_type::USE_VALUE);
                varint::write(&mut out, *kind);
                out.extend_from_slice(value);
            }
        }
        out
    }

    /// Parses a parameter value. An undecodable Token is a
    /// KEY_VALUE_FORMATTING_ERROR for the caller (§10.2.2).
    pub fn decode(mut b: &[u8]) -> Result<Token, WireError> {
        let b = &mut b;
        let token = match take(b, "Alias Type")? {
            alias_type::DELETE => Token::Delete { alias: take(b, "Token Alias")? },
            alias_type::REGISTER => {
                let alias = take(b, "Token Alias")?;
                let kind = take(b, "Token Type")?;
                return Ok(Token::Register { alias, kind, value: b.to_vec() });
            }
            alias_type::USE_ALIAS => Token::UseAlias { alias: take(b, "Token Alias")? },
            alias_type::USE_VALUE => {
                let kind = take(b, "Token Type")?;
                return Ok(Token::UseValue { kind, value: b.to_vec() });
            }
            other => return Err(WireError::Malformed("AUTHORIZATION TOKEN", format!("unknown Alias Type {other}"))),
        };
        if !b.is_empty() {
            return Err(WireError::Malformed("AUTHORIZATION TOKEN", "bytes after the Token Alias".into()));
        }
        Ok(token)
    }
}

fn take(b: &mut &[u8], what: &'static str) -> Result<u64, WireError> {
    let (v, n) = varint::read(b).ok_or(WireError::Malformed("AUTHORIZATION TOKEN", format!("no {what}")))?;
    *b = &b[n..];
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_bad_ones_are_refused() {
        for t in [
            Token::UseValue { kind: CAT, value: vec![0xd2, 0x84] },
            Token::Register { alias: 7, kind: CAT, value: b"abc".to_vec() },
            Token::UseAlias { alias: 7 },
            Token::Delete { alias: 300 },
        ] {
            assert_eq!(Token::decode(&t.encode()).unwrap(), t);
        }
        assert_eq!(Token::UseValue { kind: CAT, value: vec![0xaa] }.encode(), [0x03, 0x01, 0xaa]);
        assert!(Token::decode(&[]).is_err());
        assert!(Token::decode(&[0x04, 0x01]).is_err(), "unknown alias type");
        assert!(Token::decode(&[0x02, 0x01, 0x00]).is_err(), "trailing bytes");
        assert!(Token::decode(&[0x03]).is_err(), "no token type");
    }
}
