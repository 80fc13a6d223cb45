//! Access control at the relay (issue 13): which token a session presents,
//! and what each request asks of it.
//!
//! Tokens are Common Access Tokens (draft-ietf-moq-c4m) verified by
//! `moq-auth`. A session presents one in SETUP's AUTHORIZATION TOKEN option
//! (draft-18 §10.3.1.4, Alias Type USE_VALUE, token type CAT) or as
//! `?token=<base64url>` in its URL — the WebTransport CONNECT URL, or the
//! PATH Setup Option of a raw-QUIC session (§10.3.1.2). SETUP decides whether
//! the session may exist at all (c4m action CLIENT_SETUP); every request is
//! then checked against the token's scopes and, for namespaces under the
//! call model's root, against the call policy (docs/CALLS.md §2).
//!
//! Everything here is plain functions of their inputs; the session shell
//! supplies the time.

use moq_auth::{policy, Action, Grant, Refusal, Verifier};
use moq_wire::auth_token::{self, Token};
use moq_wire::coding::{KeyValuePairs, TrackNamespace};
use moq_wire::message::Message;

/// The relay's token settings.
#[derive(Debug, Clone)]
pub struct Auth {
    pub verifier: Verifier,
    /// Namespace root of the call model (`moq-phone/v1`), where the call
    /// policy applies; `None` turns the policy off.
    pub call_root: Option<Vec<String>>,
}

/// The time tokens are judged at: seconds since the Unix epoch, read here
/// in the shell and passed to moq-auth, which reads no clock.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Setup Option PATH (§10.3.1.2).
const SETUP_PATH: u64 = 0x01;

/// The `token` value of a URL query (`a=b&token=…`), if any.
pub fn query_token(query: &str) -> Option<&str> {
    query.split('&').find_map(|kv| kv.strip_prefix("token="))
}

/// Tokens a session presents, in the order they are tried: SETUP's
/// AUTHORIZATION TOKEN options (CAT, USE_VALUE), then the URL's.
pub fn session_tokens(setup: &KeyValuePairs, url_query: Option<&str>) -> Result<Vec<Vec<u8>>, Refusal> {
    let mut tokens = Vec::new();
    for kv in setup.0.iter().filter(|kv| kv.key == auth_token::PARAMETER) {
        let moq_wire::coding::Value::BytesValue(b) = &kv.value else { return Err(Refusal::Malformed("AUTHORIZATION TOKEN is not bytes")) };
        match Token::decode(b) {
            Ok(Token::UseValue { kind: auth_token::CAT, value }) => tokens.push(value),
            // Other token types are not ours to judge; aliases are not offered
            // (no MAX_AUTH_TOKEN_CACHE_SIZE), so REGISTER acts as USE_VALUE.
            Ok(Token::Register { kind: auth_token::CAT, value, .. }) => tokens.push(value),
            Ok(_) => {}
            Err(_) => return Err(Refusal::Malformed("undecodable AUTHORIZATION TOKEN")),
        }
    }
    let path_query = setup.get(SETUP_PATH).and_then(|kv| match &kv.value {
        moq_wire::coding::Value::BytesValue(p) => std::str::from_utf8(p).ok().and_then(|p| p.split_once('?')).map(|(_, q)| q.to_string()),
        _ => None,
    });
    for q in url_query.into_iter().map(str::to_string).chain(path_query) {
        if let Some(t) = query_token(&q) {
            tokens.push(moq_auth::token::from_url(t)?);
        }
    }
    Ok(tokens)
}

impl Auth {
    /// The session's grant: the first presented token that verifies at `now`.
    pub fn admit(&self, tokens: &[Vec<u8>], now: u64) -> Result<Grant, Refusal> {
        let mut last = Refusal::Missing;
        for t in tokens.iter().take(4) {
            match self.verifier.verify(t, now) {
                Ok(g) => return Ok(g),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Whether `grant` allows request `msg` at `now`. SUBSCRIBE_TRACKS is
    /// judged as SUBSCRIBE_NAMESPACE of its prefix (c4m has no action of its
    /// own for it, and moq-relay-ietf does the same); a joining FETCH is
    /// judged on the subscription it joins, which the caller resolves.
    pub fn check(&self, grant: &Grant, msg: &Message, joined: Option<&(TrackNamespace, Vec<u8>)>, now: u64) -> Result<(), Refusal> {
        let Some((action, ns, track)) = target(msg, joined) else { return Ok(()) };
        let fields: Vec<&[u8]> = ns.fields.iter().map(|f| f.value.as_slice()).collect();
        grant.check(action, &fields, track.as_deref(), now)?;
        if let (Some(root), Some(user)) = (&self.call_root, &grant.subject) {
            let root: Vec<&[u8]> = root.iter().map(|r| r.as_bytes()).collect();
            policy::check(&root, user, action, &fields, track.as_deref())?;
        }
        Ok(())
    }
}

/// The c4m action, namespace and track a request acts on.
fn target(msg: &Message, joined: Option<&(TrackNamespace, Vec<u8>)>) -> Option<(Action, TrackNamespace, Option<Vec<u8>>)> {
    let prefix = |p: &moq_wire::coding::TrackNamespacePrefix| TrackNamespace { fields: p.fields.clone() };
    Some(match msg {
        Message::PublishNamespace(m) => (Action::PublishNamespace, m.track_namespace.clone(), None),
        Message::Publish(m) => (Action::Publish, m.track_namespace.clone(), Some(m.track_name.as_bytes().to_vec())),
        Message::Subscribe(m) => (Action::Subscribe, m.track_namespace.clone(), Some(m.track_name.as_bytes().to_vec())),
        Message::SubscribeNamespace(m) => (Action::SubscribeNamespace, prefix(&m.track_namespace_prefix), None),
        Message::SubscribeTracks(m) => (Action::SubscribeNamespace, prefix(&m.track_namespace_prefix), None),
        Message::TrackStatus(m) => (Action::TrackStatus, m.track_namespace.clone(), Some(m.track_name.as_bytes().to_vec())),
        Message::Fetch(m) => match (&m.standalone_fetch, joined) {
            (Some(s), _) => (Action::Fetch, s.track_namespace.clone(), Some(s.track_name.as_bytes().to_vec())),
            (None, Some((ns, name))) => (Action::Fetch, ns.clone(), Some(name.clone())),
            (None, None) => return None,
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use moq_auth::{Claims, SigningKey};
    use moq_wire::coding::TrackNamespacePrefix;
    use moq_wire::message::{PublishNamespace, Subscribe, SubscribeNamespace};

    const NOW: u64 = 1_800_000_000;

    fn setup() -> (SigningKey, Auth) {
        let rng = ring::rand::SystemRandom::new();
        let key = SigningKey::generate(&rng).unwrap();
        let auth = Auth { verifier: Verifier::new(vec![key.public().clone()]), call_root: Some(vec!["moq-phone".into(), "v1".into()]) };
        (key, auth)
    }

    fn token(key: &SigningKey, user: &str) -> Vec<u8> {
        let c = Claims::new(user, NOW, 600, vec![1; 16], moq_auth::scope::call_scopes(&["moq-phone", "v1"], user));
        c.mint(key, &ring::rand::SystemRandom::new()).unwrap()
    }

    #[test]
    fn tokens_come_from_setup_options_then_the_url() {
        let (key, auth) = setup();
        let t = token(&key, "alice");
        let mut setup = KeyValuePairs::new();
        setup.set_bytesvalue(auth_token::PARAMETER, Token::UseValue { kind: auth_token::CAT, value: t.clone() }.encode());
        assert_eq!(session_tokens(&setup, None).unwrap(), vec![t.clone()]);
        let url = format!("x=1&token={}", moq_auth::token::to_url(&t));
        assert_eq!(session_tokens(&KeyValuePairs::new(), Some(&url)).unwrap(), vec![t.clone()]);
        let mut raw = KeyValuePairs::new();
        raw.set_bytesvalue(SETUP_PATH, format!("/?{url}").into_bytes());
        assert_eq!(session_tokens(&raw, None).unwrap(), vec![t.clone()]);
        assert!(auth.admit(&session_tokens(&raw, None).unwrap(), NOW).is_ok());
        assert_eq!(auth.admit(&[], NOW).unwrap_err(), Refusal::Missing);
        let mut bad = KeyValuePairs::new();
        bad.set_bytesvalue(auth_token::PARAMETER, vec![0x07]);
        assert!(matches!(session_tokens(&bad, None), Err(Refusal::Malformed(_))));
    }

    #[test]
    fn requests_are_judged_by_scope_and_call_policy() {
        let (key, auth) = setup();
        let g = auth.admit(&[token(&key, "alice")], NOW).unwrap();
        let ns = |p: &str| TrackNamespace::from_utf8_path(p);
        let announce =
            |p: &str| Message::PublishNamespace(PublishNamespace { id: 0, track_namespace: ns(p), params: KeyValuePairs::new() });
        let watch = |p: &str| {
            Message::SubscribeNamespace(SubscribeNamespace {
                id: 0,
                track_namespace_prefix: TrackNamespacePrefix::from_utf8_path(p),
                params: KeyValuePairs::new(),
            })
        };
        let sub = |p: &str, t: &str| {
            Message::Subscribe(Subscribe { id: 0, track_namespace: ns(p), track_name: t.into(), params: KeyValuePairs::new() })
        };
        assert_eq!(auth.check(&g, &announce("moq-phone/v1/users/alice/laptop"), None, NOW), Ok(()));
        assert_eq!(auth.check(&g, &announce("moq-phone/v1/users/bob/laptop"), None, NOW), Err(Refusal::OutOfScope));
        assert_eq!(auth.check(&g, &announce("moq-phone/v1/call/5e1d/bob/phone"), None, NOW), Err(Refusal::CallPolicy));
        assert_eq!(auth.check(&g, &watch("moq-phone/v1/ring/bob"), None, NOW), Err(Refusal::OutOfScope));
        assert_eq!(auth.check(&g, &watch("moq-phone/v1/ring/alice"), None, NOW), Ok(()));
        assert_eq!(auth.check(&g, &sub("moq-phone/v1/ring/bob/5e1d/carol", "audio"), None, NOW), Err(Refusal::OutOfScope));
        assert_eq!(auth.check(&g, &sub("moq-phone/v1/ring/alice/5e1d/bob", "audio"), None, NOW), Ok(()));
        assert_eq!(auth.check(&g, &sub("moq-phone/v1/ring/alice/5e1d/bob", "audio"), None, NOW + 661), Err(Refusal::Expired));
    }
}
