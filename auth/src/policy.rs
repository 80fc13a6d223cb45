//! The call model's rules (docs/CALLS.md §2) that a token's scopes cannot
//! express. CAT scopes match namespace fields left to right with tail
//! wildcards only, and moq-relay-ietf refuses the empty patterns a middle
//! wildcard would need, so `call_scopes` grants `…/ring` and `…/call` as a
//! whole; this policy narrows them, on our relay, to what user `U` (the
//! token's subject) may do:
//!
//! | action | namespaces under the root |
//! |---|---|
//! | PUBLISH_NAMESPACE, PUBLISH | `users/U/<device>`, `ring/<callee>/<sid>/U`, `call/<sid>/U/<device>` |
//! | SUBSCRIBE_NAMESPACE | `users`, `ring/U`, `call/<sid>` |
//! | SUBSCRIBE, FETCH, TRACK_STATUS, REQUEST_UPDATE | `users/<user>/<device>` track `profile`, `ring/U/<sid>/<caller>`, `call/<sid>/<callee>/<device>` |
//!
//! Namespaces outside the root are left to the token's scopes alone.

use crate::scope::Action;
use crate::Refusal;

/// Decides for user `user` whether `action` on namespace `ns` (and `track`)
/// is one the call model allows, for namespaces under `root`.
pub fn check(root: &[&[u8]], user: &str, action: Action, ns: &[&[u8]], track: Option<&[u8]>) -> Result<(), Refusal> {
    let Some(rest) = ns.strip_prefix(root) else { return Ok(()) };
    let u = user.as_bytes();
    let ok = match action {
        Action::PublishNamespace | Action::Publish => {
            matches!(
                rest,
                [b"users", x, _] if *x == u
            ) || matches!(rest, [b"ring", _, _, x] if *x == u)
                || matches!(rest, [b"call", _, x, _] if *x == u)
        }
        Action::SubscribeNamespace => matches!(rest, [b"users"]) || matches!(rest, [b"ring", x] if *x == u) || matches!(rest, [b"call", _]),
        Action::Subscribe | Action::Fetch | Action::TrackStatus | Action::RequestUpdate => {
            matches!(rest, [b"users", _, _] if track == Some(b"profile"))
                || matches!(rest, [b"ring", x, _, _] if *x == u)
                || matches!(rest, [b"call", _, _, _])
        }
        Action::ClientSetup | Action::ServerSetup => true,
    };
    if ok {
        Ok(())
    } else {
        Err(Refusal::CallPolicy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(action: Action, path: &str, track: Option<&str>) -> bool {
        let ns: Vec<&[u8]> = path.split('/').map(str::as_bytes).collect();
        check(&[b"moq-phone"], "alice", action, &ns, track.map(str::as_bytes)).is_ok()
    }

    #[test]
    fn alice_announces_only_as_herself() {
        use Action::*;
        assert!(ask(PublishNamespace, "moq-phone/users/alice/laptop", None));
        assert!(!ask(PublishNamespace, "moq-phone/users/bob/laptop", None));
        assert!(ask(PublishNamespace, "moq-phone/ring/bob/5e1d/alice", None), "ringing bob as herself");
        assert!(!ask(PublishNamespace, "moq-phone/ring/bob/5e1d/carol", None), "not ringing bob as carol");
        assert!(ask(PublishNamespace, "moq-phone/call/5e1d/alice/laptop", None), "answering a call to her");
        assert!(!ask(PublishNamespace, "moq-phone/call/5e1d/bob/phone", None), "cannot answer bob's ring");
        assert!(!ask(Publish, "moq-phone/users/alice", None), "wrong depth");
    }

    #[test]
    fn alice_follows_her_own_ringing_and_calls_only() {
        use Action::*;
        assert!(ask(SubscribeNamespace, "moq-phone/users", None));
        assert!(ask(SubscribeNamespace, "moq-phone/ring/alice", None));
        assert!(!ask(SubscribeNamespace, "moq-phone/ring/bob", None), "bob's incoming calls");
        assert!(!ask(SubscribeNamespace, "moq-phone/ring", None), "every incoming call");
        assert!(!ask(SubscribeNamespace, "moq-phone/call", None), "every call");
        assert!(ask(SubscribeNamespace, "moq-phone/call/5e1d", None));
        assert!(ask(Subscribe, "moq-phone/ring/alice/5e1d/bob", Some("events")));
        assert!(!ask(Subscribe, "moq-phone/ring/bob/5e1d/carol", Some("audio")), "a call between bob and carol, ringing");
        assert!(ask(Subscribe, "moq-phone/users/bob/phone", Some("profile")));
        assert!(!ask(Subscribe, "moq-phone/users/bob/phone", Some("audio")));
        assert!(ask(Fetch, "other-app/anything", Some("x")), "outside the root: the token decides");
    }
}
