//! The conformance tests. The first six follow the moq-interop-runner test
//! case specification (`setup-only` … `subscribe-before-announce`); the rest
//! exercise the data plane through the relay.
//!
//! Every test uses a namespace unique to this run, so relays that cache
//! tracks or namespaces across sessions cannot make a test pass (or fail)
//! with leftovers of an earlier run.

mod control;
mod data;
mod flows;

use moq_client::{Client, Error, Session, Tls};
use moq_wire::coding::{TrackNamespace, TrackNamespacePrefix};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use url::Url;

/// The track name the runner's test cases use.
pub const TRACK: &str = "test-track";

/// Application-specific property types (§2.5: the 2-byte range
/// 0x3800-0x3FFF is never allocated): relays must forward them unchanged.
pub const APP_INT_PROPERTY: u64 = 0x3A00;
pub const APP_BYTES_PROPERTY: u64 = 0x3A01;

/// Key-Value-Pairs (§1.4.3) with our two application properties.
pub fn app_properties(int: u64, bytes: &[u8]) -> bytes::Bytes {
    let mut p = moq_wire::message::TrackExtensions::new();
    p.set_int_extension(APP_INT_PROPERTY, int);
    p.set_bytes_extension(APP_BYTES_PROPERTY, bytes.to_vec());
    let mut out = Vec::new();
    moq_wire::coding::Encode::encode(&p, &mut out).expect("properties encode");
    out.into()
}

/// The value of [`APP_INT_PROPERTY`] among raw Track Properties, if present.
pub fn app_int_property(raw: &[u8]) -> Option<u64> {
    let mut b = raw;
    let p: moq_wire::message::TrackExtensions = moq_wire::coding::Decode::decode(&mut b).ok()?;
    p.0.iter().find(|kvp| kvp.key == APP_INT_PROPERTY).and_then(|kvp| match kvp.value {
        moq_wire::coding::Value::IntValue(v) => Some(v),
        _ => None,
    })
}

/// A running test.
pub type TestFuture = Pin<Box<dyn Future<Output = Result<(), Failure>> + Send>>;

/// A test case: identifier, overall timeout, and what it does.
pub struct Case {
    pub name: &'static str,
    pub timeout: Duration,
    pub run: fn(Ctx) -> TestFuture,
}

macro_rules! case {
    ($name:literal, $ms:literal, $f:path) => {
        Case { name: $name, timeout: Duration::from_millis($ms), run: |ctx| Box::pin($f(ctx)) }
    };
}

/// All tests, in the order they run.
pub fn all() -> Vec<Case> {
    vec![
        // Timeouts from the runner's test-case specification.
        case!("setup-only", 2000, control::setup_only),
        case!("announce-only", 4000, control::announce_only),
        case!("publish-namespace-done", 4000, control::publish_namespace_done),
        case!("subscribe-error", 2000, control::subscribe_error),
        case!("announce-subscribe", 3000, control::announce_subscribe),
        case!("subscribe-before-announce", 3500, control::subscribe_before_announce),
        // Data flow: 5 s each, the interface's default.
        case!("single-object", 5000, data::single_object),
        case!("multiple-groups", 5000, data::multiple_groups),
        case!("late-subscriber", 5000, data::late_subscriber),
        case!("fetch", 5000, data::fetch),
        case!("joining-fetch", 5000, data::joining_fetch),
        case!("datagrams", 5000, data::datagrams),
        case!("subscribe-namespace", 5000, flows::subscribe_namespace),
        case!("publish-direct", 5000, flows::publish_direct),
    ]
}

/// Why a test failed, for the TAP YAML block.
#[derive(Debug, Clone)]
pub struct Failure {
    pub expected: Option<String>,
    pub received: Option<String>,
    pub message: String,
    /// True when the relay could not be reached at all.
    pub unreachable: bool,
}

impl Failure {
    pub fn new(expected: impl Into<String>, received: impl Into<String>, message: impl Into<String>) -> Self {
        Self { expected: Some(expected.into()), received: Some(received.into()), message: message.into(), unreachable: false }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let expected = match &e {
            Error::Unexpected { expected, .. } => Some(expected.clone()),
            _ => None,
        };
        Self { expected, received: Some(e.received()), message: e.to_string(), unreachable: matches!(e, Error::Connect(_)) }
    }
}

/// Adds what was expected to an error.
pub trait Expecting<T> {
    fn expecting(self, what: &str) -> Result<T, Failure>;
}

impl<T> Expecting<T> for Result<T, Error> {
    fn expecting(self, what: &str) -> Result<T, Failure> {
        self.map_err(|e| {
            let mut f = Failure::from(e);
            f.expected = Some(what.to_string());
            f
        })
    }
}

/// Fails with `expected` / `received` unless `cond` holds.
pub fn check(cond: bool, expected: impl Into<String>, received: impl Into<String>) -> Result<(), Failure> {
    if cond {
        Ok(())
    } else {
        let (e, r) = (expected.into(), received.into());
        Err(Failure::new(e.clone(), r.clone(), format!("expected {e}, received {r}")))
    }
}

/// What a test records while it runs: connection IDs by role and extra
/// YAML fields. Kept outside the test future so a timeout still reports them.
#[derive(Default)]
pub struct Diag {
    pub connections: Vec<(String, String)>,
    pub fields: Vec<(String, String)>,
    pub steps: Vec<String>,
}

/// Per-test context.
#[derive(Clone)]
pub struct Ctx {
    pub url: Url,
    pub tls: Tls,
    /// Unique to this run of the client.
    pub run: String,
    pub test: &'static str,
    pub diag: Arc<Mutex<Diag>>,
    /// Pause between a subscriber's SUBSCRIBE_OK and the first object the
    /// test publishes (see [`SETTLE`]); zero with `--strict-timing`.
    pub settle: Duration,
    /// The draft every connection offers (`--draft`).
    pub version: moq_wire::Version,
}

/// Default pause before publishing to a fresh subscription. A relay must
/// forward every object that passes the filter once it has sent SUBSCRIBE_OK
/// (§5.1); a relay that attaches the subscriber to the track only after
/// writing SUBSCRIBE_OK loses objects arriving in between (moq-phone's relay
/// did, see the interop README). The pause keeps the data-plane tests about
/// the data plane; `--strict-timing` removes it to expose that race.
pub const SETTLE: Duration = Duration::from_millis(100);

impl Ctx {
    fn diag(&self) -> std::sync::MutexGuard<'_, Diag> {
        self.diag.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connects in `role` (`publisher`, `subscriber`, `subscriber_2`, or ""
    /// for a single-connection test) and records its connection ID.
    pub async fn connect(&self, role: &str) -> Result<Session, Failure> {
        let what = if role.is_empty() { "SETUP".to_string() } else { format!("{role} SETUP") };
        let opts = moq_client::Options { versions: vec![self.version], ..Default::default() };
        let s = Client::connect_with(&self.url, &self.tls, &opts).await.expecting(&what)?;
        let key = if role.is_empty() { "connection_id".to_string() } else { format!("{role}_connection_id") };
        self.diag().connections.push((key, s.connection_id().to_string()));
        self.step(format!("{} connected ({})", if role.is_empty() { "client" } else { role }, s.connection_id()));
        Ok(s)
    }

    /// Waits [`Ctx::settle`] before publishing to a new subscription.
    pub async fn settle(&self) {
        if !self.settle.is_zero() {
            tokio::time::sleep(self.settle).await;
        }
    }

    /// Records an extra YAML field.
    pub fn field(&self, key: &str, value: impl Into<String>) {
        self.diag().fields.push((key.to_string(), value.into()));
    }

    /// Records a step (printed as a TAP comment with -v).
    pub fn step(&self, s: impl Into<String>) {
        let s = s.into();
        tracing::trace!(test = self.test, "{s}");
        self.diag().steps.push(s);
    }

    /// The test's namespace: `moq-test/interop-<run>-<test>` (the runner's
    /// `moq-test/interop`, made unique per run).
    pub fn namespace(&self) -> TrackNamespace {
        TrackNamespace::from_utf8_path(&format!("moq-test/interop-{}-{}", self.run, self.test))
    }

    pub fn prefix(&self) -> TrackNamespacePrefix {
        TrackNamespacePrefix::from_utf8_path(&format!("moq-test/interop-{}-{}", self.run, self.test))
    }

    /// A deterministic payload for object `(group, object)`: recognizable
    /// text, then a byte pattern up to `len` bytes.
    pub fn payload(&self, group: u64, object: u64, len: usize) -> bytes::Bytes {
        let mut p = format!("moq-interop {} {} g{group} o{object} ", self.run, self.test).into_bytes();
        let mut x = (group.wrapping_mul(0x9E37_79B9) ^ object.wrapping_mul(0x85EB_CA6B)) as u32 | 1;
        while p.len() < len {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            p.push(x as u8);
        }
        p.truncate(len.max(1));
        p.into()
    }
}

/// Closes sessions gracefully, failing if any had been closed by the peer
/// or saw a protocol violation.
pub async fn close_all(sessions: Vec<(&str, Session)>) -> Result<(), Failure> {
    let mut first_err = None;
    for (role, s) in sessions {
        if let Err(e) = s.close().await {
            if first_err.is_none() {
                first_err = Some(Failure::new("clean close", e.received(), format!("{role}: {e}")));
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}
