//! One MoQT session (draft-ietf-moq-transport-18 §3): the async shell that
//! moves bytes between a connection ([`transport::Conn`]: WebTransport or raw
//! QUIC, §3.1) and the relay's routing core.
//!
//! Layout of a session:
//! - a pair of uni control streams carrying SETUP and GOAWAY (§3.3), here,
//!   with [`setup`] judging the client's Setup Options;
//! - [`handle`]: what the rest of the relay holds of a session, with
//!   [`ids`] keeping the client's Request IDs unique (§10.1);
//! - one task per bidi request stream ([`request`] dispatches to
//!   [`subscribe`], [`publish`], [`namespace`], [`tracks`], [`fetch`]);
//!   [`upstream`] is the relay's own SUBSCRIBE to a publisher;
//! - one task per incoming data stream and one writer task draining the
//!   session's outbound queue ([`data`]);
//! - one task reading datagrams ([`data::datagrams`]);
//! - [`transport`]: the connection and its streams, the only module that
//!   names a transport crate.
//!
//! Modules depend downwards only (request → handlers → upstream → handle →
//! io → transport), never back on this file or on each other in a loop.

pub mod credit;
pub mod data;
pub mod fetch;
pub mod handle;
pub mod ids;
pub mod io;
pub mod namespace;
pub mod publish;
pub mod request;
pub mod setup;
pub mod subscribe;
pub mod tracks;
pub mod transport;
pub mod upstream;
pub mod upstream_fetch;

pub use handle::{AuthState, Established, SessionHandle};
use transport::Dir;

use crate::state::Relay;
use crate::wire::{session_error, varint, PADDING, SETUP};
use bytes::BytesMut;
use moq_wire::coding::KeyValuePairs;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use transport::{Conn, RecvStream};

/// Setup Option MOQT_IMPLEMENTATION (§10.3.1.5).
const MOQT_IMPLEMENTATION: u64 = 0x7;

/// Runs a session until the peer leaves or breaks the protocol.
pub async fn run(relay: Arc<Relay>, wt: Conn, url_query: Option<String>) {
    let id = relay.next_id();
    let mut handle = SessionHandle::new(id, wt.clone(), relay.limits.session_queue_bytes, relay.metrics.evicted.clone());
    handle.url_query = url_query;
    handle.quota = std::sync::Mutex::new(crate::routing::quota::Quota::new(relay.limits.quota));
    let session = Arc::new(handle);
    relay.add_session(session.clone());
    relay.metrics.sessions.fetch_add(1, Ordering::Relaxed);
    relay.metrics.sessions_total.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(session = id, "session started");

    let writer = tokio::spawn(data::writer(relay.clone(), session.clone()));
    let datagrams = tokio::spawn(data::datagrams(relay.clone(), session.clone()));
    let expiry = tokio::spawn(expire(relay.clone(), session.clone()));
    if let Err(e) = open_control(&session).await {
        tracing::debug!(session = id, error = %e, "could not open control stream");
    } else {
        serve(&relay, &session).await;
    }

    if session.wt.timed_out() {
        // A peer that vanished (no CONNECTION_CLOSE): `--idle-timeout-secs`.
        relay.metrics.error("idle_timeout");
        tracing::info!(session = id, "session timed out: its peer went silent");
    }
    session.outbound.close();
    writer.abort();
    datagrams.abort();
    expiry.abort();
    relay.remove_session(id);
    relay.metrics.sessions.fetch_sub(1, Ordering::Relaxed);
    tracing::debug!(session = id, "session ended");
}

/// A session outliving its token (issue 13): at the token's `exp` plus the
/// allowed clock skew it gets GOAWAY (§10.4), so the client reconnects with
/// a fresh token at a moment of its choosing — between calls — and
/// `token_grace` later it is closed with EXPIRED_AUTH_TOKEN (§3.5). Requests
/// after that moment are already refused with REQUEST_ERROR
/// EXPIRED_AUTH_TOKEN (request.rs, through the grant's check).
async fn expire(relay: Arc<Relay>, session: Arc<SessionHandle>) {
    let mut rx = session.auth.subscribe();
    let granted = match rx.wait_for(|s| !matches!(s, AuthState::Pending)).await {
        Ok(s) => match &*s {
            AuthState::Granted(g) => g.clone(),
            _ => return,
        },
        Err(_) => return,
    };
    // The token is good until `exp` plus the allowed clock skew, as at SETUP
    // and for each request: GOAWAY at `exp` itself admitted a token at SETUP
    // only to send it away at once, and the phone came back in a loop.
    // Tokens count whole seconds (`now > exp` is expired), so the moment is
    // the start of the second after: a GOAWAY within the last valid second
    // would send a phone off only to admit it again.
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(granted.valid_until().saturating_add(1));
    tokio::time::sleep(at.duration_since(std::time::SystemTime::now()).unwrap_or_default()).await;
    let grace = relay.limits.token_grace;
    tracing::info!(session = session.id, grace_secs = grace.as_secs(), "access token expired: GOAWAY");
    session.go_away(grace).await;
    tokio::time::sleep(grace).await;
    relay.metrics.error("token_expired");
    session.close(session_error::EXPIRED_AUTH_TOKEN, "access token expired; reconnect with a fresh one");
}

async fn open_control(session: &SessionHandle) -> anyhow::Result<()> {
    let mut send = session.wt.open_uni().await?;
    let mut params = KeyValuePairs::new();
    params.set_bytesvalue(MOQT_IMPLEMENTATION, format!("moq-phone-relay/{}", env!("CARGO_PKG_VERSION")).into_bytes());
    let setup = moq_wire::setup::Setup { params };
    let mut buf = BytesMut::new();
    setup.encode_full(&mut buf)?;
    send.write_all(&buf).await?;
    *session.control.lock().await = Some(send);
    Ok(())
}

async fn serve(relay: &Arc<Relay>, session: &Arc<SessionHandle>) {
    let setup_deadline = tokio::time::sleep(relay.limits.handshake_timeout);
    tokio::pin!(setup_deadline);
    let mut setup_checked = false;
    let wt = session.wt.clone();
    loop {
        tokio::select! {
            res = wt.accept_uni() => match res {
                Ok(recv) => {
                    tracing::trace!(session = session.id, "accepted uni stream");
                    let slot = session.stream_slot(Dir::Uni);
                    let (relay, session) = (relay.clone(), session.clone());
                    tokio::spawn(async move {
                        uni(relay, session, recv).await;
                        drop(slot);
                    });
                }
                Err(_) => return,
            },
            res = wt.accept_bi() => match res {
                Ok((send, recv)) => {
                    let slot = session.stream_slot(Dir::Bi);
                    let (relay, session) = (relay.clone(), session.clone());
                    tokio::spawn(async move {
                        request::run(relay, session, send, recv).await;
                        drop(slot);
                    });
                }
                Err(_) => return,
            },
            _ = &mut setup_deadline, if !setup_checked => {
                // The guard is only evaluated when select! starts, so check again.
                setup_checked = true;
                if !session.setup_done.load(Ordering::Relaxed) {
                    relay.metrics.error("setup_timeout");
                    session.close(session_error::CONTROL_MESSAGE_TIMEOUT, "no SETUP received");
                    return;
                }
            }
        }
    }
}

/// Dispatches an incoming uni stream on its type (§3.4).
///
/// The type is the first field of the stream's header. A stream that never
/// sends a byte is stopped after the handshake timeout (CANCELLED, §3.3.3)
/// and the session kept: QUIC opens every lower-numbered stream with the one
/// written (RFC 9000 §3.2), so an empty stream may only be waiting for a
/// lost packet. A type begun and not finished within the stall timeout is
/// "fields of a stream header" the peer "took too long to send"
/// (§3.5 DATA_STREAM_TIMEOUT): the session closes with that code.
async fn uni(relay: Arc<Relay>, session: Arc<SessionHandle>, mut recv: RecvStream) {
    let mut buf = BytesMut::new();
    let empty_deadline = tokio::time::Instant::now() + relay.limits.handshake_timeout;
    let t = loop {
        if let Some((t, _)) = varint::read(&buf) {
            break t;
        }
        // Empty: the handshake deadline; partial: the stall timeout from the
        // last bytes (a one-byte type arrives whole, so this is rare).
        let at = if buf.is_empty() { empty_deadline } else { tokio::time::Instant::now() + relay.limits.stall_timeout };
        match tokio::time::timeout_at(at, recv.read_chunk(4096)).await {
            Ok(Ok(Some(c))) => buf.extend_from_slice(&c),
            Ok(Ok(None) | Err(_)) => return,
            Err(_) if buf.is_empty() => {
                let _ = recv.stop(crate::wire::stream_error::CANCELLED);
                return;
            }
            Err(_) => return data::stalled(&relay, &session, "stream type"),
        }
    };
    tracing::trace!(session = session.id, stream_type = t, "uni stream");
    match t {
        // Boxed so the task is sized for the stream it turned out to be.
        SETUP => Box::pin(control(relay, session, recv, buf)).await,
        PADDING => while let Ok(Some(_)) = recv.read_chunk(64 * 1024).await {},
        t if crate::wire::subgroup::is_subgroup_type(t) => Box::pin(data::subgroup(relay, session, recv, buf)).await,
        // The answer to a FETCH the relay passed on to this publisher.
        crate::wire::fetch::FETCH_HEADER => Box::pin(upstream_fetch::incoming(relay, session, recv, buf)).await,
        other => {
            relay.metrics.error("unknown_stream_type");
            session.close(session_error::PROTOCOL_VIOLATION, &format!("unknown stream type {other:#x}"));
        }
    }
}

/// The peer's control stream: SETUP, then only GOAWAY (§3.3, §10.4).
async fn control(relay: Arc<Relay>, session: Arc<SessionHandle>, recv: RecvStream, mut buf: BytesMut) {
    if session.setup_done.swap(true, Ordering::Relaxed) {
        session.close(session_error::PROTOCOL_VIOLATION, "second control stream");
        return;
    }
    session.setup_seen.notify_waiters();
    // Re-frame SETUP as a control message: type already identified.
    let mut reader = io::FrameReader::with_buffer(recv, std::mem::take(&mut buf), relay.limits.stall_timeout);
    match reader.next_within(relay.limits.handshake_timeout).await {
        Ok(f) if f.kind == SETUP => {
            let options = match moq_wire::coding::KeyValuePairs::decode_bounded(&mut &f.payload[..], f.payload.len()) {
                Ok(o) => o,
                Err(e) => {
                    relay.metrics.error("malformed_setup");
                    session.close(setup::undecodable(&e), &format!("malformed SETUP options: {e}"));
                    return;
                }
            };
            if let Err((code, why)) = setup::check_options(&options, session.wt.is_native_quic()) {
                relay.metrics.error("setup_option");
                session.close(code, &why);
                return;
            }
            if !admit(&relay, &session, &options) {
                return;
            }
        }
        Ok(_) => unreachable_setup(&session),
        // SETUP begun and not finished: the stall timeout after its last
        // bytes, or the handshake deadline for the whole of it (§3.5).
        Err(io::StreamError::Stalled | io::StreamError::Timeout) => {
            session.message_stalled(&relay.metrics, "control");
            return;
        }
        Err(e) => {
            relay.metrics.error("setup");
            session.close(session_error::PROTOCOL_VIOLATION, &format!("bad SETUP: {e}"));
            return;
        }
    }
    let mut goaways = 0;
    loop {
        // After SETUP only GOAWAY may appear on the control stream (§10).
        match reader.next_if(|k| k == crate::wire::control::kind::GOAWAY).await {
            Ok(f) if f.kind == crate::wire::control::kind::GOAWAY && goaways == 0 => {
                goaways += 1;
                if let Err((code, why)) = client_goaway(&f) {
                    relay.metrics.error("goaway");
                    session.close(code, &why);
                    return;
                }
                tracing::info!(session = session.id, "GOAWAY from the client");
            }
            Ok(f) => {
                relay.metrics.error("control_message");
                session.close(session_error::PROTOCOL_VIOLATION, &format!("unexpected message {:#x} on control stream", f.kind));
                return;
            }
            Err(io::StreamError::Transport(_)) => return,
            Err(io::StreamError::Stalled) => {
                session.message_stalled(&relay.metrics, "control");
                return;
            }
            Err(e) => {
                relay.metrics.error("control_stream");
                session.close(session_error::PROTOCOL_VIOLATION, &format!("control stream: {e}"));
                return;
            }
        }
    }
}

/// Judges the session's token at SETUP (issue 13): the first presented
/// token that verifies now is the session's grant; none closes the session
/// with the draft's code (UNAUTHORIZED, MALFORMED_ or EXPIRED_AUTH_TOKEN).
/// Returns whether the session may go on.
fn admit(relay: &Relay, session: &SessionHandle, options: &moq_wire::coding::KeyValuePairs) -> bool {
    let Some(auth) = &relay.auth else {
        // No key: open to this machine only, unless started with `--auth none`.
        let remote = session.wt.remote_address().ip().to_canonical();
        if relay.access == crate::login::Access::Loopback && !remote.is_loopback() {
            relay.metrics.auth("not_loopback");
            session.close(
                session_error::UNAUTHORIZED,
                "this relay has no --auth-key and takes sessions from its own machine only; start it with --auth-key or --users (README, \"Access tokens\"), or --auth none",
            );
            session.auth.send_replace(AuthState::Refused);
            return false;
        }
        session.auth.send_replace(AuthState::Open);
        return true;
    };
    let now = crate::auth::unix_now();
    let verdict = crate::auth::session_tokens(options, session.url_query.as_deref()).and_then(|t| auth.admit(&t, now));
    match verdict {
        Ok(grant) => {
            tracing::info!(session = session.id, user = grant.subject.as_deref().unwrap_or("-"), "session authorized");
            relay.metrics.auth("granted");
            session.auth.send_replace(AuthState::Granted(Arc::new(grant)));
            true
        }
        Err(refusal) => {
            relay.metrics.auth(refusal.label());
            // Close first: requests waiting for the verdict end when they see
            // it, and a request stream's FIN must not reach the client before
            // the session's code, which says why (EXPIRED_AUTH_TOKEN, …).
            session.close(refusal.session_code(), &refusal.to_string());
            session.auth.send_replace(AuthState::Refused);
            false
        }
    }
}

/// Checks the client's GOAWAY on its control stream (§10.4): "If a server
/// receives a GOAWAY with a non-zero New Session URI Length it MUST close the
/// session with a PROTOCOL_VIOLATION"; its Request ID, present on the control
/// stream, is the smallest of ours (odd, §10.1) it did not process, and "If
/// the parity of the Request ID does not match the receiver's parity, the
/// endpoint MUST close the session with INVALID_REQUEST_ID".
fn client_goaway(f: &crate::wire::control::Frame) -> Result<(), (u32, String)> {
    let g = f.goaway().map_err(|e| (session_error::PROTOCOL_VIOLATION, format!("malformed GOAWAY: {e}")))?;
    if !g.uri.is_empty() {
        return Err((session_error::PROTOCOL_VIOLATION, "a client's GOAWAY carried a New Session URI (§10.4)".into()));
    }
    match g.request_id {
        None => Err((session_error::PROTOCOL_VIOLATION, "a GOAWAY on the control stream without its Request ID (§10.4)".into())),
        Some(id) if id % 2 == 0 => {
            Err((session_error::INVALID_REQUEST_ID, "GOAWAY Request ID of the client's parity, not the server's (§10.4)".into()))
        }
        Some(_) => Ok(()),
    }
}

fn unreachable_setup(session: &SessionHandle) {
    session.close(session_error::PROTOCOL_VIOLATION, "control stream did not start with SETUP");
}
