//! The `moqt` claim's scopes (draft-ietf-moq-c4m §2): which MoQT actions a
//! token allows, on which namespaces and tracks.
//!
//! ```text
//! moqt  = [+ scope]
//! scope = [actions, ?[+ ns-match], ?track-match]
//! ns-match = bin-match / nil        ; nil only last: the namespace has exactly that many fields
//! bin-match = bstr (exact) / [1, bstr] (prefix) / [2, bstr] (suffix)
//! ```
//!
//! A scope without namespace matches covers every namespace and track; one
//! without a track match covers every track. Namespace matcher i applies to
//! field i; a namespace with fewer fields than matchers does not match.
//! Matching is bytewise (c4m §2: no normalisation).

use crate::Refusal;
use ciborium::value::Value;

/// MoQT actions (c4m §2, "moqt actions").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Action {
    ClientSetup = 0,
    ServerSetup = 1,
    PublishNamespace = 2,
    SubscribeNamespace = 3,
    Subscribe = 4,
    RequestUpdate = 5,
    Publish = 6,
    Fetch = 7,
    TrackStatus = 8,
}

impl Action {
    const ALL: [Action; 9] = [
        Action::ClientSetup,
        Action::ServerSetup,
        Action::PublishNamespace,
        Action::SubscribeNamespace,
        Action::Subscribe,
        Action::RequestUpdate,
        Action::Publish,
        Action::Fetch,
        Action::TrackStatus,
    ];

    fn from_code(c: u64) -> Option<Action> {
        Action::ALL.get(usize::try_from(c).ok()?).copied()
    }

    /// Actions on a namespace as a whole, where a scope's track match does
    /// not apply.
    pub fn is_namespace_level(self) -> bool {
        matches!(self, Action::PublishNamespace | Action::SubscribeNamespace)
    }
}

/// A binary match (c4m §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BinMatch {
    Exact(Vec<u8>),
    Prefix(Vec<u8>),
    Suffix(Vec<u8>),
}

impl BinMatch {
    pub fn matches(&self, v: &[u8]) -> bool {
        match self {
            BinMatch::Exact(x) => v == x.as_slice(),
            BinMatch::Prefix(x) => v.starts_with(x),
            BinMatch::Suffix(x) => v.ends_with(x),
        }
    }

    fn encode(&self) -> Value {
        match self {
            BinMatch::Exact(x) => Value::Bytes(x.clone()),
            BinMatch::Prefix(x) => Value::Array(vec![Value::Integer(1.into()), Value::Bytes(x.clone())]),
            BinMatch::Suffix(x) => Value::Array(vec![Value::Integer(2.into()), Value::Bytes(x.clone())]),
        }
    }

    fn decode(v: &Value) -> Result<BinMatch, Refusal> {
        match v {
            Value::Bytes(b) => Ok(BinMatch::Exact(b.clone())),
            Value::Array(a) if a.len() == 2 => {
                let Value::Bytes(b) = &a[1] else { return Err(Refusal::Malformed("match pattern is not a byte string")) };
                // moq-relay-ietf's cat-token refuses empty patterns; so do
                // we, so that a token one relay accepts the other does too.
                if b.is_empty() {
                    return Err(Refusal::Malformed("empty prefix or suffix pattern"));
                }
                match int(&a[0]) {
                    Some(1) => Ok(BinMatch::Prefix(b.clone())),
                    Some(2) => Ok(BinMatch::Suffix(b.clone())),
                    _ => Err(Refusal::Malformed("unknown match type")),
                }
            }
            _ => Err(Refusal::Malformed("bad binary match")),
        }
    }
}

pub(crate) fn int(v: &Value) -> Option<i128> {
    match v {
        Value::Integer(i) => Some(i128::from(*i)),
        _ => None,
    }
}

/// One scope of the `moqt` claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Bit i set: action i allowed.
    actions: u16,
    /// `None`: every namespace (and track).
    namespace: Option<Vec<BinMatch>>,
    /// The namespace has exactly as many fields as `namespace` matchers.
    exact_len: bool,
    /// `None`: every track.
    track: Option<BinMatch>,
}

impl Scope {
    /// `actions` on namespaces whose leading fields match `namespace`
    /// (longer namespaces too), any track.
    pub fn new(actions: &[Action], namespace: Vec<BinMatch>) -> Self {
        let actions = actions.iter().fold(0u16, |a, x| a | 1 << (*x as u8));
        Self { actions, namespace: Some(namespace), exact_len: false, track: None }
    }

    /// `actions` everywhere.
    pub fn everywhere(actions: &[Action]) -> Self {
        Self { namespace: None, ..Self::new(actions, Vec::new()) }
    }

    /// Only tracks matching `track`.
    pub fn with_track(mut self, track: BinMatch) -> Self {
        self.track = Some(track);
        self
    }

    pub fn allows_action(&self, a: Action) -> bool {
        self.actions & (1 << a as u8) != 0
    }

    /// Whether `action` on namespace `ns` (its fields) and `track` (none for
    /// namespace-level actions) falls in this scope.
    pub fn allows(&self, action: Action, ns: &[&[u8]], track: Option<&[u8]>) -> bool {
        if !self.allows_action(action) {
            return false;
        }
        let Some(matchers) = &self.namespace else { return true };
        if ns.len() < matchers.len() || (self.exact_len && ns.len() != matchers.len()) {
            return false;
        }
        if !matchers.iter().zip(ns).all(|(m, f)| m.matches(f)) {
            return false;
        }
        match (&self.track, track) {
            (Some(m), Some(t)) if !action.is_namespace_level() => m.matches(t),
            _ => true,
        }
    }

    pub(crate) fn encode(&self) -> Value {
        let actions = (0..9u8).filter(|i| self.actions & (1 << i) != 0).map(|i| Value::Integer(i.into())).collect();
        let mut v = vec![Value::Array(actions)];
        if let Some(ns) = &self.namespace {
            let mut m: Vec<Value> = ns.iter().map(BinMatch::encode).collect();
            if self.exact_len {
                m.push(Value::Null);
            }
            v.push(Value::Array(m));
            if let Some(t) = &self.track {
                v.push(t.encode());
            }
        }
        Value::Array(v)
    }

    pub(crate) fn decode(v: &Value) -> Result<Scope, Refusal> {
        let Value::Array(parts) = v else { return Err(Refusal::Malformed("scope is not an array")) };
        if parts.is_empty() || parts.len() > 3 {
            return Err(Refusal::Malformed("scope has 1 to 3 elements"));
        }
        let Value::Array(acts) = &parts[0] else { return Err(Refusal::Malformed("scope actions are not an array")) };
        let mut actions = 0u16;
        for a in acts {
            let code = int(a).and_then(|c| u64::try_from(c).ok()).and_then(Action::from_code);
            let code = code.ok_or(Refusal::Malformed("unknown action"))?;
            actions |= 1 << code as u8;
        }
        if actions == 0 {
            return Err(Refusal::Malformed("scope without actions"));
        }
        let mut scope = Scope { actions, namespace: None, exact_len: false, track: None };
        if let Some(ns) = parts.get(1) {
            let Value::Array(ms) = ns else { return Err(Refusal::Malformed("namespace matches are not an array")) };
            let mut matchers = Vec::with_capacity(ms.len());
            for (i, m) in ms.iter().enumerate() {
                if *m == Value::Null {
                    if i + 1 != ms.len() {
                        return Err(Refusal::Malformed("nil before the last namespace match"));
                    }
                    scope.exact_len = true;
                } else {
                    matchers.push(BinMatch::decode(m)?);
                }
            }
            scope.namespace = Some(matchers);
        }
        if let Some(t) = parts.get(2) {
            scope.track = Some(BinMatch::decode(t)?);
        }
        Ok(scope)
    }
}

/// The scopes a phone user gets (docs/CALLS.md §2), under namespace root
/// `root` (e.g. `["moq-phone"]`). Tail-wildcard only — moq-relay-ietf's
/// token parser refuses empty patterns, so the call model's middle wildcards
/// (`…/ring/*/*/U`) are narrowed by [`crate::policy`] on our relay instead.
pub fn call_scopes(root: &[&str], user: &str) -> Vec<Scope> {
    let path = |rest: &[&str]| -> Vec<BinMatch> { root.iter().chain(rest).map(|f| BinMatch::Exact(f.as_bytes().to_vec())).collect() };
    use Action::*;
    let announce = [PublishNamespace, Publish];
    let follow = [SubscribeNamespace, Subscribe, RequestUpdate, Fetch, TrackStatus];
    vec![
        Scope::everywhere(&[ClientSetup]),
        // Registration and presence: its own devices.
        Scope::new(&announce, path(&["users", user])),
        // Ringing others and taking part in calls (narrowed by the call policy).
        Scope::new(&announce, path(&["ring"])),
        Scope::new(&announce, path(&["call"])),
        // Presence of others, and their profile track.
        Scope::new(&[SubscribeNamespace, Subscribe, Fetch], path(&["users"])),
        // Its own ringing, and the calls it is party to.
        Scope::new(&follow, path(&["ring", user])),
        Scope::new(&follow, path(&["call"])),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(p: &str) -> Vec<&[u8]> {
        p.split('/').map(str::as_bytes).collect()
    }

    #[test]
    fn namespace_matchers_apply_field_by_field() {
        let s = Scope::new(&[Action::Subscribe], vec![BinMatch::Exact(b"a".to_vec()), BinMatch::Prefix(b"b".to_vec())]);
        assert!(s.allows(Action::Subscribe, &ns("a/bx"), Some(b"t")));
        assert!(s.allows(Action::Subscribe, &ns("a/b/c/d"), Some(b"t")), "longer namespaces match without nil");
        assert!(!s.allows(Action::Subscribe, &ns("a"), Some(b"t")), "shorter namespaces do not");
        assert!(!s.allows(Action::Subscribe, &ns("x/b"), Some(b"t")));
        assert!(!s.allows(Action::Publish, &ns("a/b"), Some(b"t")));
        let sfx = Scope::new(&[Action::Fetch], vec![BinMatch::Suffix(b".cam".to_vec())]).with_track(BinMatch::Exact(b"video".to_vec()));
        assert!(sfx.allows(Action::Fetch, &ns("front.cam"), Some(b"video")));
        assert!(!sfx.allows(Action::Fetch, &ns("front.cam"), Some(b"audio")));
    }

    #[test]
    fn scopes_round_trip_and_bad_ones_are_malformed() {
        let mut s = Scope::new(&[Action::PublishNamespace, Action::TrackStatus], vec![BinMatch::Exact(b"x".to_vec())]);
        s.exact_len = true;
        let s = s.with_track(BinMatch::Prefix(b"a".to_vec()));
        assert_eq!(Scope::decode(&s.encode()).unwrap(), s);
        assert!(s.allows(Action::PublishNamespace, &ns("x"), None));
        assert!(!s.allows(Action::PublishNamespace, &ns("x/y"), None), "nil pins the length");
        let bad = |v: Value| Scope::decode(&v).unwrap_err();
        let arr = Value::Array;
        let i = |n: i64| Value::Integer(n.into());
        assert_eq!(bad(arr(vec![arr(vec![i(9)])])), Refusal::Malformed("unknown action"));
        assert_eq!(bad(arr(vec![arr(vec![])])), Refusal::Malformed("scope without actions"));
        assert_eq!(
            bad(arr(vec![arr(vec![i(4)]), arr(vec![Value::Null, Value::Bytes(b"a".to_vec())])])),
            Refusal::Malformed("nil before the last namespace match")
        );
        assert_eq!(
            bad(arr(vec![arr(vec![i(4)]), arr(vec![arr(vec![i(1), Value::Bytes(vec![])])])])),
            Refusal::Malformed("empty prefix or suffix pattern")
        );
    }

    #[test]
    fn call_scopes_cover_a_users_own_namespaces() {
        let s = call_scopes(&["moq-phone"], "alice");
        let any = |a, p: &str, t: Option<&[u8]>| s.iter().any(|x| x.allows(a, &ns(p), t));
        assert!(any(Action::ClientSetup, "x", None));
        assert!(any(Action::PublishNamespace, "moq-phone/users/alice/laptop", None));
        assert!(!any(Action::PublishNamespace, "moq-phone/users/bob/laptop", None), "cannot register as bob");
        assert!(any(Action::SubscribeNamespace, "moq-phone/ring/alice", None));
        assert!(!any(Action::SubscribeNamespace, "moq-phone/ring/bob", None), "cannot watch bob's ringing");
        assert!(!any(Action::Subscribe, "moq-phone/ring/bob/0123/carol", Some(b"audio")));
        assert!(any(Action::SubscribeNamespace, "moq-phone/users", None));
        assert!(!any(Action::PublishNamespace, "other/users/alice", None));
    }
}
