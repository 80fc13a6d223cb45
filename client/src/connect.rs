//! Establishing a session (draft-ietf-moq-transport-18 §3.1, §3.3): QUIC
//! with ALPN `moqt-18` for `moqt://` URLs (§3.1.4), WebTransport with the
//! `moqt-18` subprotocol for `https://` URLs (§3.1.3); then each side opens
//! a control stream starting with SETUP (§10.3).

use crate::dispatch;
use crate::error::{Error, Result};
use crate::session::{Inner, Session, Shared, Transport};
use crate::tls::{random_bytes, Tls};
use bytes::BytesMut;
use moq_wire::coding::KeyValuePairs;
use moq_wire::setup::Setup;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use url::Url;
use web_transport_quinn::proto::ConnectRequest;

/// ALPN for native QUIC and WebTransport subprotocol of draft-18 (§3.1).
pub const MOQT_ALPN: &str = moq_wire::Version::Draft18.protocol();

use moq_wire::Version;

/// A token as `moq-relay token` prints it: base64url, padding tolerated.
pub fn token_from_text(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text.trim().trim_end_matches('=')).ok().filter(|t| !t.is_empty())
}

/// Setup Option types (§10.3.1).
pub mod setup_option {
    pub const PATH: u64 = 0x01;
    pub const AUTHORITY: u64 = 0x05;
    pub const MOQT_IMPLEMENTATION: u64 = 0x07;
}

/// Connection settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Limit for the QUIC (and WebTransport) handshake.
    pub handshake_timeout: Duration,
    /// Limit for the peer's SETUP to arrive.
    pub setup_timeout: Duration,
    /// Default limit for responses to requests (see [`Session::set_timeout`]).
    pub response_timeout: Duration,
    /// Sent as MOQT_IMPLEMENTATION (§10.3.1.5).
    pub implementation: String,
    /// QUIC idle timeout (RFC 9000 §10.1): the session ends after this long
    /// without a packet from the peer. The smaller of both ends' values applies.
    pub idle_timeout: Duration,
    /// Send a PING after this long without sending anything, so an idle but
    /// healthy session outlives `idle_timeout`.
    pub keep_alive: Duration,
    /// An access token (a CAT, draft-ietf-moq-c4m) sent in SETUP's
    /// AUTHORIZATION TOKEN option (§10.3.1.4, USE_VALUE). A token can also
    /// ride in the URL (`?token=…`), which needs nothing here.
    pub token: Option<Vec<u8>>,
    /// The drafts offered (ALPN on native QUIC, WT-Available-Protocols on
    /// WebTransport), most preferred first; the relay picks one. Draft-18
    /// alone by default: every relay here speaks it.
    pub versions: Vec<Version>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            // Below the runner's shortest test budget (2 s), so an
            // unreachable relay is reported as such, not as a test timeout.
            handshake_timeout: Duration::from_millis(1500),
            setup_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(2),
            implementation: format!("moq-phone-interop/{}", env!("CARGO_PKG_VERSION")),
            idle_timeout: Duration::from_secs(30),
            keep_alive: Duration::from_secs(4),
            token: None,
            versions: vec![Version::Draft18],
        }
    }
}

/// Opens sessions to a relay.
pub struct Client;

impl Client {
    /// Connects to `url` (`moqt://` or `https://`) and completes the SETUP
    /// exchange with default [`Options`].
    pub async fn connect(url: &Url, tls: &Tls) -> Result<Session> {
        Self::connect_with(url, tls, &Options::default()).await
    }

    pub async fn connect_with(url: &Url, tls: &Tls, opts: &Options) -> Result<Session> {
        let transport = match url.scheme() {
            "moqt" => Transport::Quic,
            "https" => Transport::WebTransport,
            other => return Err(Error::Connect(format!("URL scheme {other:?} is neither moqt:// nor https://"))),
        };
        let host = url.host_str().ok_or_else(|| Error::Connect("URL has no host".into()))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let port = url.port().unwrap_or(443);
        let addrs: Vec<SocketAddr> =
            tokio::net::lookup_host((host.as_str(), port)).await.map_err(|e| Error::Connect(format!("resolving {host}: {e}")))?.collect();
        // Prefer IPv4: "localhost" often resolves to ::1 first, while relays
        // in containers frequently listen on IPv4 only.
        let addr = addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or_else(|| addrs.first())
            .copied()
            .ok_or_else(|| Error::Connect(format!("{host} has no address")))?;

        if opts.versions.is_empty() {
            return Err(Error::Connect("no draft version to offer".into()));
        }
        let alpns: Vec<&[u8]> = match transport {
            Transport::Quic => opts.versions.iter().map(|v| v.protocol().as_bytes()).collect(),
            Transport::WebTransport => vec![web_transport_quinn::ALPN.as_bytes()],
        };
        let crypto = tls.client_config_offering(&alpns).map_err(|e| Error::Connect(format!("TLS setup: {e:#}")))?;
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(crypto).map_err(|e| Error::Connect(format!("TLS setup: {e}")))?;
        let mut config = quinn::ClientConfig::new(Arc::new(crypto));
        let mut transport_config = quinn::TransportConfig::default();
        transport_config
            .max_idle_timeout(Some(opts.idle_timeout.try_into().map_err(|_| Error::Connect("idle timeout out of range".into()))?))
            .keep_alive_interval(Some(opts.keep_alive))
            .max_concurrent_bidi_streams(256u32.into())
            .max_concurrent_uni_streams(1024u32.into())
            .datagram_receive_buffer_size(Some(1 << 20))
            // After an outage the first audio frame must leave at once, not
            // wait for a backed-off probe (congestion.rs; quality.md §3.6).
            .congestion_controller_factory(crate::congestion::FloorFactory::for_calls());
        config.transport_config(Arc::new(transport_config));
        // Choose the Initial Destination Connection ID ourselves so it can be
        // reported: relays name their qlog/mlog traces after it.
        let cid: Arc<Mutex<Option<quinn::ConnectionId>>> = Arc::default();
        let captured = cid.clone();
        config.initial_dst_cid_provider(Arc::new(move || {
            let id = quinn::ConnectionId::new(&random_bytes::<16>());
            *captured.lock().unwrap_or_else(|e| e.into_inner()) = Some(id);
            id
        }));

        let bind: SocketAddr = if addr.is_ipv6() { "[::]:0".parse() } else { "0.0.0.0:0".parse() }.expect("valid bind address");
        let endpoint = quinn::Endpoint::client(bind).map_err(|e| Error::Connect(format!("binding UDP: {e}")))?;
        let connecting = endpoint.connect_with(config, addr, &host).map_err(|e| Error::Connect(e.to_string()))?;
        let conn = tokio::time::timeout(opts.handshake_timeout, connecting)
            .await
            .map_err(|_| Error::Connect(format!("QUIC handshake with {addr} timed out")))?
            .map_err(|e| Error::Connect(format!("QUIC handshake with {addr}: {e}")))?;
        let connection_id =
            cid.lock().unwrap_or_else(|e| e.into_inner()).map(|c| hex::encode(&c[..])).unwrap_or_else(|| format!("{:x}", conn.stable_id()));

        // The draft the relay picked: its ALPN on native QUIC (§3.1.4).
        let alpn = conn
            .handshake_data()
            .and_then(|h| h.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
            .and_then(|h| h.protocol)
            .unwrap_or_default();
        let wt = match transport {
            Transport::Quic => web_transport_quinn::Session::raw(conn),
            Transport::WebTransport => {
                let mut request = ConnectRequest::new(url.clone());
                for v in &opts.versions {
                    request = request.with_protocol(v.protocol().to_string());
                }
                tokio::time::timeout(opts.handshake_timeout, web_transport_quinn::Session::connect(conn, request))
                    .await
                    .map_err(|_| Error::Connect("WebTransport CONNECT timed out".into()))?
                    .map_err(|e| Error::Connect(format!("WebTransport CONNECT: {e}")))?
            }
        };
        // WebTransport: the WT-Protocol the relay confirmed; a relay that
        // confirms none is taken to speak the first draft offered.
        let version = match transport {
            Transport::Quic => Version::from_protocol(&alpn),
            Transport::WebTransport => match wt.protocol() {
                Some(p) => Version::from_protocol(p.as_bytes()),
                None => {
                    tracing::warn!("relay confirmed no WebTransport subprotocol; assuming {}", opts.versions[0].protocol());
                    Some(opts.versions[0])
                }
            },
        }
        .filter(|v| opts.versions.contains(v))
        .ok_or_else(|| Error::Connect("the relay chose no draft version this client offered".into()))?;
        tracing::debug!(%version, "negotiated");

        // Our control stream and SETUP (§3.3, §10.3). Native QUIC carries the
        // URI's authority and path as Setup Options (§3.1.4).
        let mut params = KeyValuePairs::new();
        if transport == Transport::Quic {
            if let Some(authority) = authority(url) {
                params.set_bytesvalue(setup_option::AUTHORITY, authority.into_bytes());
            }
            let mut path = url.path().to_string();
            if let Some(q) = url.query() {
                path = format!("{path}?{q}");
            }
            if !path.is_empty() && path != "/" {
                params.set_bytesvalue(setup_option::PATH, path.into_bytes());
            }
        }
        params.set_bytesvalue(setup_option::MOQT_IMPLEMENTATION, opts.implementation.clone().into_bytes());
        if let Some(token) = &opts.token {
            let t = moq_wire::auth_token::Token::UseValue { kind: moq_wire::auth_token::CAT, value: token.clone() };
            params.set_bytesvalue(moq_wire::auth_token::PARAMETER, t.encode());
        }
        let mut setup = BytesMut::new();
        Setup { params }.encode_full(&mut setup)?;
        let mut control = wt.open_uni().await.map_err(|e| Error::Connect(format!("opening the control stream: {e}")))?;
        control.write_all(&setup).await?;

        let (incoming_tx, incoming_rx) = tokio::sync::mpsc::unbounded_channel();
        let shared = Arc::new(Shared::new(wt.clone(), version, incoming_tx));
        let (setup_tx, setup_rx) = tokio::sync::oneshot::channel();
        let tasks = vec![
            tokio::spawn(dispatch::accept_uni(shared.clone(), setup_tx)),
            tokio::spawn(dispatch::accept_bi(shared.clone())),
            tokio::spawn(dispatch::datagrams(shared.clone())),
        ];
        let abort = |tasks: &[tokio::task::JoinHandle<()>]| tasks.iter().for_each(|t| t.abort());
        let peer_setup = match tokio::time::timeout(opts.setup_timeout, setup_rx).await {
            Ok(Ok(p)) => p,
            Ok(Err(_)) => {
                abort(&tasks);
                let why = shared.violations.lock().unwrap_or_else(|e| e.into_inner()).first().cloned();
                let closed = wt.close_reason();
                return Err(match (why, closed) {
                    (Some(v), _) => Error::Protocol(v),
                    (None, Some(r)) => r.into(),
                    (None, None) => Error::Closed("session ended before SETUP".into()),
                });
            }
            Err(_) => {
                abort(&tasks);
                wt.close(0x11, b"no SETUP received");
                return Err(Error::Timeout("the peer's SETUP".into()));
            }
        };
        tracing::debug!(%connection_id, ?transport, "session established");
        Ok(Session {
            inner: Arc::new(Inner {
                shared,
                endpoint,
                connection_id,
                transport,
                peer_setup,
                next_request: AtomicU64::new(0),
                timeout_ms: AtomicU64::new(opts.response_timeout.as_millis() as u64),
                control: tokio::sync::Mutex::new(Some(control)),
                incoming: tokio::sync::Mutex::new(incoming_rx),
                tasks,
            }),
        })
    }
}

/// The `authority` component of a URI (§10.3.1.1): host, and port if given.
fn authority(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    Some(match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    })
}
