//! The STUN/TURN servers a page's `RTCPeerConnection` is given (`GET /webrtc`,
//! design §2.4). The gateway itself is ICE-lite with host candidates only
//! (RFC 8445 §2.5), so it needs no STUN server; but a browser on a network
//! that blocks UDP, or lets it out only through a proxy, reaches the gateway
//! only through a TURN server (RFC 8656) over TCP or TLS, and the page must
//! be told which, with credentials.
//!
//! Credentials are the "TURN REST API" kind (draft-uberti-behave-turn-rest-00
//! §2.2), which coturn (`use-auth-secret` + `static-auth-secret`), eturnal
//! and the hosted TURN services take: username `"<expiry unix time>:<user>"`,
//! password `base64(HMAC-SHA1(shared secret, username))`. The relay and the
//! TURN server share only the secret; credentials expire by themselves, so a
//! page's leaked credential is not a standing open TURN relay. SHA-1 is what
//! that scheme (and every TURN server implementing it) specifies; HMAC-SHA-1
//! is not weakened by SHA-1's collisions.
//!
//! Sans-IO: the time and the user come in, JSON for `RTCConfiguration.iceServers`
//! (W3C webrtc-pc §4.2.1, `RTCIceServer`) comes out.

use base64::Engine;
use serde_json::{json, Value};

/// How long TURN credentials handed to a page stay good: longer than a
/// working day of calls on one sign-in (the page asks again at every
/// connect), short enough that a leaked one soon stops working.
pub const CREDENTIAL_TTL_SECS: u64 = 24 * 3600;

/// The configured servers (`--webrtc-ice-server`, `--webrtc-turn-secret-file`).
#[derive(Clone, Default)]
pub struct IceServers {
    /// `stun:` URLs (RFC 7064), given to the page without credentials.
    stun: Vec<String>,
    /// `turn:` / `turns:` URLs (RFC 7065), given with credentials.
    turn: Vec<String>,
    secret: Vec<u8>,
}

impl std::fmt::Debug for IceServers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("IceServers").field("stun", &self.stun).field("turn", &self.turn).finish_non_exhaustive()
    }
}

impl IceServers {
    /// Checks the URLs' schemes; a `turn:` URL needs the shared secret
    /// (browsers refuse a TURN server without credentials).
    pub fn new(urls: &[String], secret: Option<Vec<u8>>) -> anyhow::Result<Self> {
        let mut s = Self { secret: secret.unwrap_or_default(), ..Self::default() };
        for u in urls {
            let scheme = u.split_once(':').map(|(s, _)| s.to_ascii_lowercase()).unwrap_or_default();
            match scheme.as_str() {
                "stun" | "stuns" => s.stun.push(u.clone()),
                "turn" | "turns" => s.turn.push(u.clone()),
                _ => anyhow::bail!("webrtc_ice_server {u}: not a stun:, turn: or turns: URL (RFC 7064, RFC 7065), e.g. turns:turn.example.org:443?transport=tcp"),
            }
        }
        if !s.turn.is_empty() && s.secret.is_empty() {
            anyhow::bail!("a turn: server needs --webrtc-turn-secret-file (the TURN server's shared secret: coturn's static-auth-secret with use-auth-secret)");
        }
        Ok(s)
    }

    /// `{"iceServers": [...]}` for `user` at `now` (unix seconds).
    pub fn answer(&self, user: &str, now: u64) -> Value {
        let mut servers = Vec::new();
        if !self.stun.is_empty() {
            servers.push(json!({ "urls": self.stun }));
        }
        if !self.turn.is_empty() {
            let (username, credential) = turn_credentials(&self.secret, user, now + CREDENTIAL_TTL_SECS);
            servers.push(json!({ "urls": self.turn, "username": username, "credential": credential }));
        }
        json!({ "iceServers": servers })
    }
}

/// The TURN REST API credentials (draft-uberti-behave-turn-rest-00 §2.2)
/// good until `expires`. The user part has no `:` (it separates the fields).
pub fn turn_credentials(secret: &[u8], user: &str, expires: u64) -> (String, String) {
    let user: String = user.chars().filter(|c| *c != ':').collect();
    let username = if user.is_empty() { expires.to_string() } else { format!("{expires}:{user}") };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = ring::hmac::sign(&key, username.as_bytes());
    (username, base64::engine::general_purpose::STANDARD.encode(tag.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_the_turn_rest_api_kind() {
        // python3: base64.b64encode(hmac.new(b"north", b"1700000000:alice", hashlib.sha1).digest())
        let (u, p) = turn_credentials(b"north", "alice", 1_700_000_000);
        assert_eq!(u, "1700000000:alice");
        assert_eq!(p, "Cd/49soE35ICqcJF/bCTn8Z4OyE=");
        assert_eq!(turn_credentials(b"north", "a:b", 5).0, "5:ab");
        assert_eq!(turn_credentials(b"north", "", 5).0, "5");
    }

    #[test]
    fn stun_goes_bare_turn_with_credentials() {
        let urls = ["stun:stun.example.org".to_owned(), "turns:turn.example.org:443?transport=tcp".to_owned()];
        let s = IceServers::new(&urls, Some(b"north".to_vec())).unwrap();
        let v = s.answer("alice", 1_699_913_600);
        assert_eq!(v["iceServers"][0], json!({ "urls": ["stun:stun.example.org"] }));
        assert_eq!(v["iceServers"][1]["urls"], json!(["turns:turn.example.org:443?transport=tcp"]));
        assert_eq!(v["iceServers"][1]["username"], "1700000000:alice");
        assert_eq!(v["iceServers"][1]["credential"], "Cd/49soE35ICqcJF/bCTn8Z4OyE=");
        assert!(!format!("{s:?}").contains("north"), "the secret stays out of logs");
        assert_eq!(IceServers::default().answer("x", 0), json!({ "iceServers": [] }));
    }

    #[test]
    fn bad_configurations_say_what_to_do() {
        let e = IceServers::new(&["turn:t.example.org".to_owned()], None).unwrap_err().to_string();
        assert!(e.contains("--webrtc-turn-secret-file"), "{e}");
        let e = IceServers::new(&["http://t.example.org".to_owned()], None).unwrap_err().to_string();
        assert!(e.contains("turns:"), "{e}");
    }
}
