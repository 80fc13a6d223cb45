//! Users, addresses and the namespaces of a call (docs/CALLS.md §1–§2).

use serde::{Deserialize, Serialize};
use std::fmt;

/// First two fields of every moq-phone namespace.
pub const ROOT: [&str; 2] = ["moq-phone", "v1"];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AddressError {
    #[error("'{0}' is not a valid name: use 1-64 characters of a-z, 0-9, '.', '_' or '-'")]
    BadName(String),
    #[error("'{0}' is not an address: use user or user/extension")]
    BadAddress(String),
}

/// Checks a user, device or extension name (CALLS.md §1).
pub fn check_name(s: &str) -> Result<(), AddressError> {
    let ok = !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(AddressError::BadName(s.into()))
    }
}

/// A callee: a user, or an extension behind a gateway user (`pbx/100`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Address {
    pub user: String,
    pub ext: Option<String>,
}

impl Address {
    pub fn parse(s: &str) -> Result<Self, AddressError> {
        let mut parts = s.split('/');
        let user = parts.next().unwrap_or_default();
        let ext = parts.next();
        if parts.next().is_some() {
            return Err(AddressError::BadAddress(s.into()));
        }
        check_name(user)?;
        if let Some(e) = ext {
            check_name(e)?;
        }
        Ok(Self { user: user.into(), ext: ext.map(Into::into) })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.ext {
            Some(e) => write!(f, "{}/{}", self.user, e),
            None => f.write_str(&self.user),
        }
    }
}

impl TryFrom<String> for Address {
    type Error = AddressError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Address> for String {
    fn from(a: Address) -> String {
        a.to_string()
    }
}

/// Namespace tuples of CALLS.md §2, as lists of fields.
pub struct Namespaces;

impl Namespaces {
    fn with(fields: &[&str]) -> Vec<String> {
        ROOT.iter().chain(fields.iter()).map(|s| s.to_string()).collect()
    }
    /// `…/users/<user>/<device>`: a registered device.
    pub fn device(user: &str, device: &str) -> Vec<String> {
        Self::with(&["users", user, device])
    }
    /// `…/users`: the presence prefix.
    pub fn presence() -> Vec<String> {
        Self::with(&["users"])
    }
    /// `…/ring/<user>`: where a user's devices watch for calls.
    pub fn ring_prefix(user: &str) -> Vec<String> {
        Self::with(&["ring", user])
    }
    /// `…/ring/<callee>/<sid>/<caller>`: the caller's namespace.
    pub fn caller(callee: &str, sid: &str, caller: &str) -> Vec<String> {
        Self::with(&["ring", callee, sid, caller])
    }
    /// `…/call/<sid>`: where the caller watches callee devices.
    pub fn call_prefix(sid: &str) -> Vec<String> {
        Self::with(&["call", sid])
    }
    /// `…/call/<sid>/<callee>/<device>`: a callee device's namespace.
    pub fn callee(sid: &str, callee: &str, device: &str) -> Vec<String> {
        Self::with(&["call", sid, callee, device])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(Address::parse("alice").unwrap(), Address { user: "alice".into(), ext: None });
        assert_eq!(Address::parse("pbx/100").unwrap().to_string(), "pbx/100");
        for bad in ["", "Alice", "a/b/c", "a b", "pbx/", &"x".repeat(65)] {
            assert!(Address::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn namespaces() {
        assert_eq!(Namespaces::caller("bob", "ab12", "alice"), ["moq-phone", "v1", "ring", "bob", "ab12", "alice"]);
        assert_eq!(Namespaces::callee("ab12", "bob", "d1"), ["moq-phone", "v1", "call", "ab12", "bob", "d1"]);
        assert_eq!(Namespaces::presence(), ["moq-phone", "v1", "users"]);
    }
}
