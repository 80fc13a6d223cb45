//! The users file: who may sign in at a relay's `POST /login`, and with
//! which password, kept as argon2id hashes (RFC 9106) in PHC string form.
//!
//! ```toml
//! [users.alice]
//! password = "$argon2id$v=19$m=19456,t=2,p=1$…"
//! # scope = "any"    # every action everywhere (tools); default: the call model's scopes
//! ```
//!
//! Why a file of our own and not an identity provider: a PBX or a family
//! relay has a handful of users and no IdP; an operator who has one mints
//! tokens with the relay's key from it instead ("an external issuer signing
//! with the configured key works the same", issue 13).
//!
//! Sans-IO: text in, text out. Hashing takes the salt as an argument, and
//! the cost is argon2's default (19 MiB, 2 passes, 1 lane: OWASP's
//! recommended minimum for argon2id).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A user's entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// argon2id PHC string.
    pub password: String,
    /// `"any"` for every action everywhere; absent: the call model's scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Users {
    #[serde(default)]
    pub users: BTreeMap<String, User>,
}

/// Why a users file or a sign-in failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsersError {
    #[error("users file: {0}")]
    Parse(String),
    #[error("user {0:?}: {1}")]
    BadHash(String, String),
    #[error("invalid user name {0:?}: use 1-64 lower-case letters, digits, '.', '_' or '-' (docs/CALLS.md §1)")]
    BadName(String),
    #[error("wrong user name or password")]
    WrongCredentials,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// A well-formed PHC string for an unknown user's sign-in, so that it costs
/// the same as a known user's wrong password and timing does not tell which
/// names exist. (Its password is random and thrown away.)
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$bW9xLXBob25lLWR1bW15$8f6F0zj9J/xSVbq7dFgdZEtb+vUTm4WNO7wrwhaa1Mw";

/// Whether `name` is a user name of the call model (docs/CALLS.md §1:
/// 1–64 of `a-z 0-9 . _ -`), the same rule the phones apply.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// An argon2id hash of `password` with `salt` (16 random bytes from the caller).
pub fn hash_password(password: &str, salt: &[u8; 16]) -> Result<String, UsersError> {
    let salt = SaltString::encode_b64(salt).map_err(|e| UsersError::Hash(e.to_string()))?;
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| UsersError::Hash(e.to_string()))
}

impl Users {
    /// Reads a users file; every hash must be a PHC string argon2 can check.
    pub fn parse(text: &str) -> Result<Self, UsersError> {
        let users: Users = toml::from_str(text).map_err(|e| UsersError::Parse(e.message().to_string()))?;
        for (name, u) in &users.users {
            if !valid_name(name) {
                return Err(UsersError::BadName(name.clone()));
            }
            PasswordHash::new(&u.password).map_err(|e| UsersError::BadHash(name.clone(), e.to_string()))?;
        }
        Ok(users)
    }

    /// The file's text.
    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self).unwrap_or_default();
        format!("# moq-relay users: `moq-relay user add NAME` adds or changes one (argon2id hashes)\n{body}")
    }

    /// Adds `name`, or changes their password; their scope is kept.
    pub fn set(&mut self, name: &str, password_hash: String) -> Result<(), UsersError> {
        if !valid_name(name) {
            return Err(UsersError::BadName(name.to_string()));
        }
        let scope = self.users.get(name).and_then(|u| u.scope.clone());
        self.users.insert(name.to_string(), User { password: password_hash, scope });
        Ok(())
    }

    /// Checks a sign-in: the user's entry when `password` is theirs. An
    /// unknown name and a wrong password are the same error and take the
    /// same time.
    pub fn check(&self, name: &str, password: &str) -> Result<&User, UsersError> {
        let (hash, user) = match self.users.get(name) {
            Some(u) => (u.password.as_str(), Some(u)),
            None => (DUMMY_HASH, None),
        };
        let parsed = PasswordHash::new(hash).map_err(|e| UsersError::BadHash(name.to_string(), e.to_string()))?;
        let ok = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
        match user {
            Some(u) if ok => Ok(u),
            _ => Err(UsersError::WrongCredentials),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_added_signs_in_with_their_password_only() {
        let mut users = Users::default();
        users.set("alice", hash_password("correct horse", &[7; 16]).unwrap()).unwrap();
        let text = users.to_toml();
        assert!(text.contains("[users.alice]") && text.contains("$argon2id$v=19$m=19456,t=2,p=1$"), "{text}");
        let back = Users::parse(&text).unwrap();
        assert_eq!(back, users);
        assert!(back.check("alice", "correct horse").is_ok());
        assert_eq!(back.check("alice", "Correct horse"), Err(UsersError::WrongCredentials));
        assert_eq!(back.check("bob", "correct horse"), Err(UsersError::WrongCredentials));
    }

    #[test]
    fn the_dummy_hash_is_well_formed() {
        // Else an unknown user would fail fast (and differently) instead of costing a full hash.
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }

    #[test]
    fn changing_a_password_keeps_the_scope() {
        let mut users = Users::parse("[users.pbx]\npassword = \"$argon2id$v=19$m=19456,t=2,p=1$bW9xLXBob25lLWR1bW15$8f6F0zj9J/xSVbq7dFgdZEtb+vUTm4WNO7wrwhaa1Mw\"\nscope = \"any\"\n").unwrap();
        users.set("pbx", hash_password("new", &[1; 16]).unwrap()).unwrap();
        assert_eq!(users.users["pbx"].scope.as_deref(), Some("any"));
        assert!(users.check("pbx", "new").is_ok());
    }

    #[test]
    fn bad_files_and_names_are_refused() {
        assert!(matches!(Users::parse("[users.alice]\npassword = \"plain\"\n"), Err(UsersError::BadHash(..))));
        assert!(matches!(Users::parse("[users.Alice]\npassword = \"x\"\n"), Err(UsersError::BadName(_))));
        assert!(matches!(Users::parse("[users.alice]\npasswd = \"x\"\n"), Err(UsersError::Parse(_))));
        assert!(matches!(Users::default().set("../etc", String::new()), Err(UsersError::BadName(_))));
        assert!(Users::parse("").unwrap().users.is_empty());
    }
}
