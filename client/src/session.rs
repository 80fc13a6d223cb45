//! An established MoQT session (draft-ietf-moq-transport-18 §3) and the
//! state its background tasks share: where received objects go (by Track
//! Alias, §11.1), where fetch streams go (by Request ID, §11.4.4), and the
//! queue of requests the peer opened towards us.

use crate::error::{Error, Result};
use crate::fetch::FetchItem;
use crate::object::{Object, SubgroupSpec, SubgroupWriter};
use crate::stream::RequestStream;
use moq_wire::coding::KeyValuePairs;
use moq_wire::message::Message;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use web_transport_quinn::SendStream;

/// Largest object or fetch item the client accepts.
pub const MAX_OBJECT_SIZE: usize = 16 << 20;

/// The most a peer may make us hold in partly received objects at once,
/// over all its data streams. Each object may be up to [`MAX_OBJECT_SIZE`]
/// and a relay may open 1,024 streams, so without a session-wide bound a
/// hostile relay could make a phone (or chan_moq inside a PBX) buffer
/// 16 GiB; past this budget the stream that asks for more is stopped with
/// EXCESSIVE_LOAD (draft-ietf-moq-transport-18 §3.3.3) and the session
/// goes on. A call's objects are a few hundred bytes and arrive whole.
pub const PARTIAL_BUDGET: usize = 64 << 20;

/// Objects kept for Track Aliases whose SUBSCRIBE_OK / PUBLISH has not been
/// processed yet (§11.4.2 allows buffering such streams briefly).
const EARLY_OBJECT_LIMIT: usize = 8192;

/// Which transport carries the session (§3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Native QUIC, ALPN `moqt-18` (§3.1.4).
    Quic,
    /// WebTransport over HTTP/3, subprotocol `moqt-18` (§3.1.3).
    WebTransport,
}

/// A GOAWAY received from the peer (§10.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoAway {
    pub uri: String,
    pub timeout_ms: u64,
}

/// A request the peer opened on a new bidi stream: a SUBSCRIBE forwarded by
/// a relay to us as publisher, a PUBLISH (after SUBSCRIBE_TRACKS), a FETCH…
pub struct IncomingRequest {
    pub message: Message,
    pub stream: RequestStream,
}

/// Events of one fetch stream, in order.
pub(crate) enum FetchEvent {
    Item(FetchItem),
    /// FIN after a complete object.
    End,
    Failed(Error),
}

#[derive(Default)]
struct Tracks {
    sinks: HashMap<u64, mpsc::UnboundedSender<Object>>,
    early: HashMap<u64, Vec<Object>>,
    early_total: usize,
    retired: HashSet<u64>,
}

/// State shared between the [`Session`] handles and its background tasks.
pub(crate) struct Shared {
    pub wt: web_transport_quinn::Session,
    /// The negotiated draft: how control messages are read and written.
    pub version: moq_wire::Version,
    tracks: Mutex<Tracks>,
    fetches: Mutex<HashMap<u64, mpsc::UnboundedSender<FetchEvent>>>,
    pub incoming: mpsc::UnboundedSender<IncomingRequest>,
    pub goaway: Mutex<Option<GoAway>>,
    /// Problems the background tasks found in what the peer sent.
    pub violations: Mutex<Vec<String>>,
    pub stream_seq: AtomicU64,
    /// One past the largest Request ID the server used (odd, §10.1): the
    /// Request ID of our GOAWAY (§10.4), 1 when it sent none.
    pub peer_requests: AtomicU64,
    /// Bytes held in partly received objects over all of the peer's data
    /// streams (see [`PARTIAL_BUDGET`]).
    pub partial: crate::budget::Budget,
}

impl Shared {
    pub fn new(wt: web_transport_quinn::Session, version: moq_wire::Version, incoming: mpsc::UnboundedSender<IncomingRequest>) -> Self {
        Self {
            wt,
            version,
            tracks: Mutex::new(Tracks::default()),
            fetches: Mutex::new(HashMap::new()),
            incoming,
            goaway: Mutex::new(None),
            violations: Mutex::new(Vec::new()),
            stream_seq: AtomicU64::new(0),
            peer_requests: AtomicU64::new(1),
            partial: crate::budget::Budget::new(PARTIAL_BUDGET),
        }
    }

    fn tracks(&self) -> std::sync::MutexGuard<'_, Tracks> {
        self.tracks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Routes a received object to the subscription using its Track Alias,
    /// or keeps it until that alias is registered.
    pub fn deliver(&self, obj: Object) {
        let mut t = self.tracks();
        if let Some(tx) = t.sinks.get(&obj.track_alias) {
            let _ = tx.send(obj);
        } else if t.retired.contains(&obj.track_alias) {
            // Late objects of an ended subscription (§11.1): dropped.
        } else if t.early_total < EARLY_OBJECT_LIMIT {
            t.early_total += 1;
            t.early.entry(obj.track_alias).or_default().push(obj);
        }
    }

    /// Starts receiving objects for `alias`, including any that arrived early.
    pub fn register(&self, alias: u64) -> mpsc::UnboundedReceiver<Object> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut t = self.tracks();
        if let Some(early) = t.early.remove(&alias) {
            t.early_total -= early.len();
            for o in early {
                let _ = tx.send(o);
            }
        }
        t.retired.remove(&alias);
        t.sinks.insert(alias, tx);
        rx
    }

    /// Stops receiving objects for `alias`; later ones are discarded.
    pub fn retire(&self, alias: u64) {
        let mut t = self.tracks();
        t.sinks.remove(&alias);
        t.retired.insert(alias);
    }

    pub fn add_fetch(&self, request_id: u64) -> mpsc::UnboundedReceiver<FetchEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.fetches.lock().unwrap_or_else(|e| e.into_inner()).insert(request_id, tx);
        rx
    }

    pub fn fetch_sink(&self, request_id: u64) -> Option<mpsc::UnboundedSender<FetchEvent>> {
        self.fetches.lock().unwrap_or_else(|e| e.into_inner()).get(&request_id).cloned()
    }

    pub fn remove_fetch(&self, request_id: u64) {
        self.fetches.lock().unwrap_or_else(|e| e.into_inner()).remove(&request_id);
    }

    /// Records a protocol violation by the peer and closes the session with
    /// the given §3.5 code.
    pub fn violation(&self, code: u32, why: String) {
        tracing::warn!(code, %why, "peer protocol violation");
        self.violations.lock().unwrap_or_else(|e| e.into_inner()).push(why.clone());
        self.wt.close(code, why.as_bytes());
    }
}

pub(crate) struct Inner {
    pub shared: Arc<Shared>,
    pub endpoint: quinn::Endpoint,
    pub connection_id: String,
    pub transport: Transport,
    pub peer_setup: KeyValuePairs,
    pub next_request: AtomicU64,
    pub timeout_ms: AtomicU64,
    /// Our control stream: it must stay open for the session's life (§3.3).
    pub control: tokio::sync::Mutex<Option<SendStream>>,
    pub incoming: tokio::sync::Mutex<mpsc::UnboundedReceiver<IncomingRequest>>,
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        self.shared.wt.close(0, b"");
        // Dropping the control stream would FIN it, and a peer may see that
        // before the close (a WebTransport close capsule travels on another
        // stream): a closed control stream is a PROTOCOL_VIOLATION (§3.3).
        // Keep it until the session is gone.
        if let (Some(ctl), Ok(rt)) = (self.control.get_mut().take(), tokio::runtime::Handle::try_current()) {
            let wt = self.shared.wt.clone();
            rt.spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(2), wt.closed()).await;
                drop(ctl);
            });
        }
    }
}

/// A MoQT session with a relay. Cheap to clone; the session closes when the
/// last clone is dropped or [`Session::close`] is called.
#[derive(Clone)]
pub struct Session {
    pub(crate) inner: Arc<Inner>,
}

impl Session {
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    pub(crate) fn wt(&self) -> &web_transport_quinn::Session {
        &self.inner.shared.wt
    }

    /// The draft the relay picked (see [`crate::Options::versions`]).
    pub fn version(&self) -> moq_wire::Version {
        self.inner.shared.version
    }

    /// Hex of the Initial Destination Connection ID this client chose: the
    /// ID a relay's qlog/mlog names the connection by.
    pub fn connection_id(&self) -> &str {
        &self.inner.connection_id
    }

    pub fn transport(&self) -> Transport {
        self.inner.transport
    }

    /// The Setup Options of the peer's SETUP (§10.3).
    pub fn peer_setup(&self) -> &KeyValuePairs {
        &self.inner.peer_setup
    }

    /// The peer's MOQT_IMPLEMENTATION option (§10.3.1.5), if it sent one.
    pub fn peer_implementation(&self) -> Option<String> {
        match &self.inner.peer_setup.get(0x7)?.value {
            moq_wire::coding::Value::BytesValue(b) => Some(String::from_utf8_lossy(b).into_owned()),
            moq_wire::coding::Value::IntValue(v) => Some(v.to_string()),
        }
    }

    /// The GOAWAY the peer sent, if any (§10.4).
    pub fn goaway(&self) -> Option<GoAway> {
        self.shared().goaway.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Protocol violations the background tasks detected.
    pub fn violations(&self) -> Vec<String> {
        self.shared().violations.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// How long request methods wait for a response.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.inner.timeout_ms.load(Ordering::Relaxed))
    }

    pub fn set_timeout(&self, t: Duration) {
        self.inner.timeout_ms.store(t.as_millis() as u64, Ordering::Relaxed);
    }

    /// The next client Request ID: even, from 0, in steps of 2 (§10.1).
    pub fn next_request_id(&self) -> u64 {
        self.inner.next_request.fetch_add(2, Ordering::Relaxed)
    }

    /// Opens a request stream carrying `msg` (built with `id`).
    pub(crate) async fn open_request(&self, id: u64, msg: &Message) -> Result<RequestStream> {
        RequestStream::open(self.wt(), self.version(), id, msg).await
    }

    /// Why the session ended, if it has.
    pub fn close_reason(&self) -> Option<String> {
        self.wt().close_reason().map(|e| e.to_string())
    }

    /// Fails if the session was closed or the peer misbehaved so far.
    pub fn check_alive(&self) -> Result<()> {
        if let Some(v) = self.violations().first() {
            return Err(Error::Protocol(v.clone()));
        }
        match self.wt().close_reason() {
            Some(r) => Err(r.into()),
            None => Ok(()),
        }
    }

    /// The next request the peer opened towards us.
    pub async fn next_request(&self, timeout: Duration) -> Result<IncomingRequest> {
        let mut rx = self.inner.incoming.lock().await;
        match tokio::time::timeout(timeout, rx.recv()).await {
            Ok(Some(r)) => Ok(r),
            Ok(None) => Err(Error::Closed("session ended".into())),
            Err(_) => Err(Error::Timeout("a request from the peer".into())),
        }
    }

    /// Opens a SUBGROUP stream for the track the peer knows as `alias`
    /// (§11.4.2). `opened` counts streams for PUBLISH_DONE (§10.11).
    pub(crate) async fn open_subgroup(&self, alias: u64, spec: SubgroupSpec, opened: &Arc<AtomicU64>) -> Result<SubgroupWriter> {
        SubgroupWriter::open(self.wt(), alias, spec, opened).await
    }

    /// Sends an OBJECT_DATAGRAM (§11.3.1). Datagrams larger than the path
    /// allows fail here rather than being silently dropped.
    pub fn send_datagram(&self, alias: u64, spec: &crate::object::DatagramSpec) -> Result<()> {
        self.wt().send_datagram(spec.encode(alias)).map_err(|e| Error::Transport(format!("datagram: {e}")))
    }

    /// Sends GOAWAY on our control stream (§10.4); a client's New Session
    /// URI is always empty.
    pub async fn go_away(&self) -> Result<()> {
        // On the control stream GOAWAY carries the smallest peer Request ID
        // not processed (§10.4); every request received so far was handed on.
        let request_id = self.inner.shared.peer_requests.load(std::sync::atomic::Ordering::Relaxed);
        let msg = moq_wire::control::GoAway { uri: String::new(), timeout_ms: 0, request_id: Some(request_id) }.encode_as(self.version());
        match self.inner.control.lock().await.as_mut() {
            Some(ctl) => ctl.write_all(&msg).await?,
            None => return Err(Error::Closed("session closed".into())),
        }
        Ok(())
    }

    /// Closes the session gracefully with NO_ERROR (§3.5) and waits briefly
    /// for the close to reach the peer. Returns an error if the peer had
    /// already closed the session or violated the protocol.
    pub async fn close(self) -> Result<()> {
        let already = self.check_alive();
        self.wt().close(0, b"");
        let _ = tokio::time::timeout(Duration::from_millis(500), self.wt().closed()).await;
        let endpoint = self.inner.endpoint.clone();
        drop(self);
        let _ = tokio::time::timeout(Duration::from_millis(300), endpoint.wait_idle()).await;
        already
    }
}
