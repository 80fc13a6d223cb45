//! The phone facing a hostile relay (issue 20, "hostile peers at every
//! endpoint"): a fake relay on raw QUIC (ALPN `moqt-18`) that misbehaves in
//! one way per test, against pub-sub-audio's `Phone` (the session library
//! that moq-phone and chan_moq share). Each time the phone gives a clear
//! error or closes the session with the draft's code, or stops only the
//! offending stream — it never panics, hangs or buffers without bound.
//!
//! No sleeps: each step waits for what the other side does; the deadline
//! only turns a hang into a failure.

use bytes::BytesMut;
use moq_wire::control::{take_frame, Response};
use pub_sub_audio::call::Timers;
use pub_sub_audio::phone::{Phone, PhoneConfig, PhoneError};
use std::sync::Arc;
use std::time::Duration;

/// A hang guard per step.
const STEP: Duration = Duration::from_secs(30);
const PROTOCOL_VIOLATION: u32 = 0x3;
const CONTROL_MESSAGE_TIMEOUT: u32 = 0x11;
const EXCESSIVE_LOAD: u32 = 0x9;

/// A QUIC server speaking the `moqt-18` ALPN with a throwaway certificate.
struct FakeRelay {
    endpoint: quinn::Endpoint,
    url: url::Url,
}

impl FakeRelay {
    fn start() -> FakeRelay {
        let bundle = moq_certs::generate_dev_leaf(Duration::from_secs(86_400)).expect("a dev certificate");
        let tls = moq_certs::server_config(Arc::new(moq_certs::CertStore::new(bundle)), &[b"moqt-18"]);
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).expect("a QUIC TLS config");
        let endpoint = quinn::Endpoint::server(quinn::ServerConfig::with_crypto(Arc::new(crypto)), "127.0.0.1:0".parse().unwrap())
            .expect("bind the fake relay");
        let port = endpoint.local_addr().unwrap().port();
        FakeRelay { endpoint, url: format!("moqt://127.0.0.1:{port}").parse().unwrap() }
    }

    async fn accept(&self) -> quinn::Connection {
        let incoming = tokio::time::timeout(STEP, self.endpoint.accept()).await.expect("the phone connects").expect("endpoint open");
        incoming.await.expect("QUIC handshake")
    }

    fn config(&self) -> PhoneConfig {
        PhoneConfig {
            url: self.url.clone(),
            tls: moq_client::Tls::DisableVerify,
            user: "alice".into(),
            device: "a1".into(),
            display: "alice".into(),
            timers: Timers::default(),
            token: None,
        }
    }
}

/// The application code the phone closed `conn` with.
async fn closed_with(conn: &quinn::Connection) -> u32 {
    match tokio::time::timeout(STEP, conn.closed()).await.expect("the phone closes the session") {
        quinn::ConnectionError::ApplicationClosed(c) => u32::try_from(c.error_code.into_inner()).unwrap(),
        other => panic!("expected the phone to close with a code, got {other:?}"),
    }
}

/// Reads the phone's control stream up to its SETUP.
async fn read_setup(conn: &quinn::Connection) -> quinn::RecvStream {
    let mut recv = tokio::time::timeout(STEP, conn.accept_uni()).await.expect("the phone's control stream").unwrap();
    let mut buf = BytesMut::new();
    loop {
        if let Some(f) = take_frame(&mut buf).unwrap() {
            assert_eq!(f.kind, moq_wire::SETUP, "the control stream starts with SETUP");
            return recv;
        }
        let chunk = recv.read_chunk(65536, true).await.unwrap().expect("SETUP before FIN");
        buf.extend_from_slice(&chunk.bytes);
    }
}

fn setup_bytes() -> Vec<u8> {
    let mut b = BytesMut::new();
    moq_wire::setup::Setup { params: Default::default() }.encode_full(&mut b).unwrap();
    b.to_vec()
}

/// Plays a relay that takes every request (REQUEST_OK) until the session ends.
fn answer_requests(conn: quinn::Connection) {
    tokio::spawn(async move {
        while let Ok((mut send, mut recv)) = conn.accept_bi().await {
            tokio::spawn(async move {
                let mut buf = BytesMut::new();
                while take_frame(&mut buf).ok().flatten().is_none() {
                    match recv.read_chunk(65536, true).await {
                        Ok(Some(c)) => buf.extend_from_slice(&c.bytes),
                        _ => return,
                    }
                }
                let _ = send.write_all(&Response::RequestOk(Default::default()).encode()).await;
                // Keep the request open for the session's life (a registration is).
                let _ = recv.read_to_end(1 << 16).await;
            });
        }
    });
}

/// A fake relay with the phone registered on it: SETUP both ways, every
/// request taken. Holds what must live as long as the session: the relay,
/// both control streams (a FIN on ours would be a violation), the phone.
struct Registered {
    conn: quinn::Connection,
    phone: Phone,
    _keep: (FakeRelay, quinn::RecvStream, quinn::SendStream, tokio::sync::mpsc::UnboundedReceiver<pub_sub_audio::phone::Incoming>),
}

async fn registered() -> Registered {
    let relay = FakeRelay::start();
    let phone = tokio::spawn(Phone::register(relay.config()));
    let conn = relay.accept().await;
    let their_control = read_setup(&conn).await;
    let mut control = conn.open_uni().await.unwrap();
    control.write_all(&setup_bytes()).await.unwrap();
    answer_requests(conn.clone());
    let (phone, rings) = tokio::time::timeout(STEP, phone).await.expect("register returns").unwrap().expect("registered");
    Registered { conn, phone, _keep: (relay, their_control, control, rings) }
}

/// The start of a data stream: a SUBGROUP_HEADER (alias 1, group 0), then
/// object 0 announcing `len` payload bytes.
fn object_head(len: u64) -> Vec<u8> {
    let mut head = Vec::new();
    moq_wire::subgroup::SubgroupHeader::new(1, 0, 0, Some(128), 0).encode(&mut head);
    moq_wire::varint::write(&mut head, 0);
    moq_wire::varint::write(&mut head, len);
    head
}

/// A relay that completes the QUIC handshake and never sends SETUP: the
/// phone gives up with an error that names SETUP, and tells the relay why
/// (CONTROL_MESSAGE_TIMEOUT, §3.5) instead of waiting for ever.
#[tokio::test]
async fn a_relay_that_never_sends_setup_is_left_with_a_clear_error() {
    let relay = FakeRelay::start();
    let phone = tokio::spawn(Phone::register(relay.config()));
    let conn = relay.accept().await;
    let _their_control = read_setup(&conn).await;
    assert_eq!(closed_with(&conn).await, CONTROL_MESSAGE_TIMEOUT);
    let err = tokio::time::timeout(STEP, phone).await.expect("register returns").unwrap().err().expect("no registration");
    assert!(matches!(err, PhoneError::Connect { .. }), "{err}");
    assert!(err.to_string().contains("SETUP"), "the error says what was missing: {err}");
}

/// A message that does not exist on the relay's control stream right after
/// its SETUP: the phone closes the session as a PROTOCOL_VIOLATION (§3.5)
/// and registering fails with an error, not a panic or a hang.
#[tokio::test]
async fn garbage_on_the_relays_control_stream_is_a_protocol_violation() {
    let relay = FakeRelay::start();
    let phone = tokio::spawn(Phone::register(relay.config()));
    let conn = relay.accept().await;
    let _their_control = read_setup(&conn).await;
    let mut ours = conn.open_uni().await.unwrap();
    let mut bytes = setup_bytes();
    // A whole message of a type that does not exist (§10): 0x3f, length 1, one byte.
    bytes.extend_from_slice(&[0x3f, 0x00, 0x01, 0x00]);
    ours.write_all(&bytes).await.unwrap();
    assert_eq!(closed_with(&conn).await, PROTOCOL_VIOLATION);
    let res = tokio::time::timeout(STEP, phone).await.expect("register returns").unwrap();
    assert!(res.is_err(), "a session the phone closed does not register");
}

/// Once registered, the relay opens a data stream whose object claims more
/// than the phone takes (§11.4: 16 MiB here) and keeps writing: the phone
/// closes the session as a PROTOCOL_VIOLATION instead of buffering it.
#[tokio::test]
async fn an_oversize_object_closes_the_session() {
    let r = registered().await;
    let conn = &r.conn;
    let mut data = conn.open_uni().await.unwrap();
    data.write_all(&object_head(1 << 30)).await.unwrap(); // payload length: 1 GiB
    let writer = tokio::spawn(async move {
        let chunk = vec![0u8; 64 * 1024];
        while data.write_all(&chunk).await.is_ok() {}
    });
    assert_eq!(closed_with(conn).await, PROTOCOL_VIOLATION);
    writer.await.unwrap();
}

/// Once registered, the relay opens many data streams, each with an object
/// just under the size limit that it never finishes: the phone holds at
/// most its session budget (`moq_client::session::PARTIAL_BUDGET`) of
/// unfinished objects, stops the streams past it with EXCESSIVE_LOAD
/// (§3.3.3) and stays registered.
#[tokio::test]
async fn unfinished_objects_on_many_streams_are_stopped_past_the_budget() {
    let r = registered().await;
    let conn = &r.conn;
    let object = (15 << 20) as u64; // under MAX_OBJECT_SIZE (16 MiB)
    let streams = 2 * moq_client::session::PARTIAL_BUDGET / (object as usize) + 2;
    // Each writer reports how its stream ended, if it does: held streams never do.
    let (tx, mut ends) = tokio::sync::mpsc::unbounded_channel::<Result<u64, String>>();
    for _ in 0..streams {
        let mut data = conn.open_uni().await.unwrap();
        let tx = tx.clone();
        tokio::spawn(async move {
            // All but the last byte: the object never completes.
            let chunk = vec![0u8; 64 * 1024];
            let mut left = object as usize - 1;
            let mut res = data.write_all(&object_head(object)).await;
            while res.is_ok() && left > 0 {
                let n = left.min(chunk.len());
                res = data.write_all(&chunk[..n]).await;
                left -= n;
            }
            let end = match res {
                Err(quinn::WriteError::Stopped(code)) => Ok(code.into_inner()),
                Err(e) => Err(e.to_string()),
                // Written in full: it ends only if the phone stops it.
                Ok(()) => match data.stopped().await {
                    Ok(Some(code)) => Ok(code.into_inner()),
                    other => Err(format!("{other:?}")),
                },
            };
            let _ = tx.send(end);
        });
    }
    drop(tx);
    let end = tokio::time::timeout(STEP, ends.recv()).await.expect("a stream past the budget is stopped").expect("a writer reports");
    assert_eq!(end, Ok(u64::from(EXCESSIVE_LOAD)), "stopped with EXCESSIVE_LOAD");
    assert!(conn.close_reason().is_none(), "the session lives on: {:?}", conn.close_reason());
    assert!(r.phone.session_ended().is_none(), "the phone is still registered");
}
