//! Draft-18 conformance of the relay where an outside hostile peer found it
//! deviating (issue 20): each test names the section of
//! draft-ietf-moq-transport-18 whose MUST (or SHOULD) it pins, and sends the
//! offending bytes as a peer would, through a real relay process.

mod common;
use common::{probe, read_frame, session, Relay};
use moq_wire::control::{kind, Frame, GoAway, Response};
use moq_wire::varint;
use std::time::Duration;

const PROTOCOL_VIOLATION: u32 = 0x3;
const INVALID_REQUEST_ID: u32 = 0x4;
const MALFORMED_PATH: u32 = 0x9;
const MALFORMED_AUTHORITY: u32 = 0x1A;
/// REQUEST_ERROR DOES_NOT_EXIST (§10.6.2).
const DOES_NOT_EXIST: u64 = 0x10;

/// Waits for the relay to close `conn` and returns the application code.
async fn closed_with(conn: &quinn::Connection) -> u32 {
    match tokio::time::timeout(Duration::from_secs(10), conn.closed()).await.expect("the relay did not close the session") {
        quinn::ConnectionError::ApplicationClosed(c) => u32::try_from(c.error_code.into_inner()).unwrap(),
        other => panic!("expected an application close, got {other:?}"),
    }
}

/// Proves `conn` is open and served: a SUBSCRIBE for nothing gets DOES_NOT_EXIST.
async fn served(conn: &quinn::Connection, id: u64) {
    match probe(conn, id).await {
        Response::RequestError { code, .. } => assert_eq!(code, DOES_NOT_EXIST),
        other => panic!("{other:?}"),
    }
    assert!(conn.close_reason().is_none(), "closed: {:?}", conn.close_reason());
}

/// A control message: type, 16-bit length, payload (§10).
fn message(kind: u64, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    varint::write(&mut b, kind);
    b.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    b.extend_from_slice(payload);
    b
}

/// A Track Namespace (§2.4.1): field count, then each field.
fn namespace(fields: &[&str]) -> Vec<u8> {
    let mut b = Vec::new();
    varint::write(&mut b, fields.len() as u64);
    for f in fields {
        varint::write(&mut b, f.len() as u64);
        b.extend_from_slice(f.as_bytes());
    }
    b
}

/// SUBSCRIBE (§10.7): Request ID, namespace, name, then `params` (with its count).
fn subscribe(id: u64, ns: &[&str], name: &str, params: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    varint::write(&mut p, id);
    p.extend(namespace(ns));
    varint::write(&mut p, name.len() as u64);
    p.extend_from_slice(name.as_bytes());
    p.extend_from_slice(params);
    message(kind::SUBSCRIBE, &p)
}

/// A request whose payload is a Request ID, a namespace and no parameters
/// (PUBLISH_NAMESPACE §10.15, SUBSCRIBE_NAMESPACE §10.18).
fn namespace_request(kind: u64, id: u64, ns: &[&str]) -> Vec<u8> {
    let mut p = Vec::new();
    varint::write(&mut p, id);
    p.extend(namespace(ns));
    p.push(0);
    message(kind, &p)
}

/// Opens a request stream, sends `bytes` and reads the first answer (None
/// if the stream or session ended first). The streams stay open.
async fn ask(conn: &quinn::Connection, bytes: &[u8]) -> (Option<Frame>, quinn::SendStream, quinn::RecvStream) {
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.write_all(bytes).await.unwrap();
    let f = tokio::time::timeout(Duration::from_secs(10), read_frame(&mut recv)).await.unwrap_or(None);
    (f, send, recv)
}

fn error_code(f: Option<Frame>) -> u64 {
    match f.expect("an answer").response().unwrap() {
        Response::RequestError { code, .. } => code,
        other => panic!("expected REQUEST_ERROR, got {other:?}"),
    }
}

/// A session whose SETUP payload (the Setup Options) is `options` as given.
async fn session_with_options(relay: &Relay, options: &[u8]) -> quinn::Connection {
    let conn = common::connect(relay).await;
    let mut ctl = conn.open_uni().await.unwrap();
    ctl.write_all(&message(moq_wire::SETUP, options)).await.unwrap();
    // Keep our control stream open for the session's life (§3.3).
    std::mem::forget(ctl);
    conn
}

/// A Setup Option with a bytes value (odd type, §1.4.3), delta-encoded from `prev`.
fn option(prev: u64, t: u64, v: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    varint::write(&mut b, t - prev);
    varint::write(&mut b, v.len() as u64);
    b.extend_from_slice(v);
    b
}

// (1) §11.5.2 Padding Datagrams: "The receiver MUST discard all data received
// in a padding datagram."
#[tokio::test]
async fn padding_datagrams_are_discarded_s11_5_2() {
    let relay = Relay::start(&[]);
    let (conn, _ctl, _theirs) = session(&relay).await;
    for tail in [&[][..], &[0u8; 64][..], &[1, 2, 3][..]] {
        let mut d = Vec::new();
        varint::write(&mut d, moq_wire::PADDING_DATAGRAM);
        d.extend_from_slice(tail);
        conn.send_datagram(d.into()).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    served(&conn, 0).await;
}

// (2) §10.1 Request ID: "If an endpoint receives … a duplicate Request ID, it
// MUST close the session with INVALID_REQUEST_ID." REQUEST_UPDATE consumes
// a Request ID too.
#[tokio::test]
async fn a_duplicate_request_id_closes_with_invalid_request_id_s10_1() {
    let relay = Relay::start(&[]);
    let (bystander, _c, _t) = session(&relay).await;
    let (conn, _ctl, _theirs) = session(&relay).await;
    served(&conn, 0).await;
    served(&conn, 4).await;
    served(&conn, 2).await;
    let (_, _s, _r) = ask(&conn, &subscribe(4, &["probe", "none"], "t", &[0])).await;
    assert_eq!(closed_with(&conn).await, INVALID_REQUEST_ID);
    served(&bystander, 0).await;
}

#[tokio::test]
async fn a_request_update_reusing_a_request_id_closes_with_invalid_request_id_s10_1() {
    let relay = Relay::start(&[]);
    let (conn, _ctl, _theirs) = session(&relay).await;
    let (ok, mut send, mut recv) = ask(&conn, &namespace_request(kind::SUBSCRIBE_NAMESPACE, 0, &["c18"])).await;
    assert!(matches!(ok.unwrap().response().unwrap(), Response::RequestOk(_)));
    // REQUEST_UPDATE with a fresh ID (2) is answered; one reusing 0 is not.
    send.write_all(&message(kind::REQUEST_UPDATE, &[0x02, 0x00])).await.unwrap();
    assert!(matches!(read_frame(&mut recv).await.unwrap().response().unwrap(), Response::RequestOk(_)));
    send.write_all(&message(kind::REQUEST_UPDATE, &[0x00, 0x00])).await.unwrap();
    assert_eq!(closed_with(&conn).await, INVALID_REQUEST_ID);
}

// (3) §10.4 GOAWAY: "If a server receives a GOAWAY with a non-zero New
// Session URI Length it MUST close the session with a PROTOCOL_VIOLATION";
// "If the parity of the Request ID does not match the receiver's parity, the
// endpoint MUST close the session with INVALID_REQUEST_ID".
#[tokio::test]
async fn a_client_goaway_with_a_uri_is_a_protocol_violation_s10_4() {
    let relay = Relay::start(&[]);
    let (conn, mut ctl, _theirs) = session(&relay).await;
    let g = GoAway { uri: "https://elsewhere.example/moq".into(), timeout_ms: 0, request_id: Some(1) };
    ctl.write_all(&g.encode()).await.unwrap();
    assert_eq!(closed_with(&conn).await, PROTOCOL_VIOLATION);
}

#[tokio::test]
async fn a_client_goaway_with_a_client_parity_request_id_is_invalid_request_id_s10_4() {
    let relay = Relay::start(&[]);
    let (conn, mut ctl, _theirs) = session(&relay).await;
    ctl.write_all(&GoAway { uri: String::new(), timeout_ms: 0, request_id: Some(2) }.encode()).await.unwrap();
    assert_eq!(closed_with(&conn).await, INVALID_REQUEST_ID);
}

#[tokio::test]
async fn a_well_formed_client_goaway_keeps_the_session_s10_4() {
    let relay = Relay::start(&[]);
    let (conn, mut ctl, _theirs) = session(&relay).await;
    // The relay sent no request: the smallest unprocessed server ID is 1.
    ctl.write_all(&GoAway { uri: String::new(), timeout_ms: 0, request_id: Some(1) }.encode()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    served(&conn, 0).await;
}

#[tokio::test]
async fn a_goaway_with_a_uri_on_a_request_stream_is_a_protocol_violation_s10_4() {
    let relay = Relay::start(&[]);
    let (conn, _ctl, _theirs) = session(&relay).await;
    let (ok, mut send, _recv) = ask(&conn, &namespace_request(kind::SUBSCRIBE_NAMESPACE, 0, &["c18"])).await;
    assert!(matches!(ok.unwrap().response().unwrap(), Response::RequestOk(_)));
    // An empty URI, no Request ID: allowed once on a request stream.
    send.write_all(&Response::GoAway { uri: String::new(), timeout_ms: 0 }.encode()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(conn.close_reason().is_none());
    let (ok, mut send, _recv) = ask(&conn, &namespace_request(kind::SUBSCRIBE_NAMESPACE, 2, &["c18b"])).await;
    assert!(matches!(ok.unwrap().response().unwrap(), Response::RequestOk(_)));
    send.write_all(&Response::GoAway { uri: "https://x.example".into(), timeout_ms: 0 }.encode()).await.unwrap();
    assert_eq!(closed_with(&conn).await, PROTOCOL_VIOLATION);
}

// (4) §10.2 "An endpoint that receives an unknown Message Parameter MUST
// close the session with PROTOCOL_VIOLATION"; §10.2.8 GROUP_ORDER outside
// 1–2 and §5.1.2 an unknown filter type: the same.
#[tokio::test]
async fn unknown_parameters_bad_group_order_and_filter_types_are_protocol_violations_s10_2() {
    let relay = Relay::start(&[]);
    let (bystander, _c, _t) = session(&relay).await;
    let cases: [(&str, &[u8]); 5] = [
        ("unknown parameter 0x0C (§10.2)", &[0x01, 0x0c, 0x05]),
        ("GROUP_ORDER 0 (§10.2.8)", &[0x01, 0x22, 0x00]),
        ("GROUP_ORDER 3 (§10.2.8)", &[0x01, 0x22, 0x03]),
        ("filter type 5 (§5.1.2)", &[0x01, 0x21, 0x01, 0x05]),
        ("EXPIRES in SUBSCRIBE (§10.2.1)", &[0x01, 0x08, 0x00]),
    ];
    for (what, params) in cases {
        let (conn, _ctl, _theirs) = session(&relay).await;
        let (_, _s, _r) = ask(&conn, &subscribe(0, &["probe", "none"], "t", params)).await;
        assert_eq!(closed_with(&conn).await, PROTOCOL_VIOLATION, "{what}");
    }
    // The same SUBSCRIBE with GROUP_ORDER 2 and a Largest Object filter is served.
    let (ok, _s, _r) = ask(&bystander, &subscribe(0, &["probe", "none"], "t", &[0x02, 0x21, 0x01, 0x02, 0x01, 0x02])).await;
    assert_eq!(error_code(ok), DOES_NOT_EXIST);
}

// (5) §10.3.1.1 AUTHORITY / §10.3.1.2 PATH (the "§9.3" is draft-12's
// numbering): "If a PATH does not conform to these rules, the session MUST
// be closed with MALFORMED_PATH"; likewise MALFORMED_AUTHORITY.
#[tokio::test]
async fn malformed_path_and_authority_close_with_their_codes_s10_3_1() {
    let relay = Relay::start(&[]);
    let conn = session_with_options(&relay, &option(0, 0x01, b"moq without a slash")).await;
    assert_eq!(closed_with(&conn).await, MALFORMED_PATH);
    let conn = session_with_options(&relay, &option(0, 0x05, b":4443")).await;
    assert_eq!(closed_with(&conn).await, MALFORMED_AUTHORITY);
    // Well-formed ones, as the Rust client sends them on native QUIC.
    let authority = format!("127.0.0.1:{}", relay.port);
    let mut ok = option(0, 0x01, b"/moq?token=abc_DEF-1");
    ok.extend(option(0x01, 0x05, authority.as_bytes()));
    let conn = session_with_options(&relay, &ok).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    served(&conn, 0).await;
}

// (6) §1.4.3 Key-Value-Pair: a Length over 2^16-1 and a Type over 2^64-1
// both "MUST close the session with a PROTOCOL_VIOLATION" (the relay said
// KEY_VALUE_FORMATTING_ERROR in SETUP).
#[tokio::test]
async fn key_value_length_and_type_limits_are_protocol_violations_s1_4_3() {
    let relay = Relay::start(&[]);
    // PATH (0x01) claiming 65,536 bytes.
    let conn = session_with_options(&relay, &[0x01, 0xc1, 0x00, 0x00]).await;
    assert_eq!(closed_with(&conn).await, PROTOCOL_VIOLATION);
    // Type 0x02, then a delta of 2^64-1 on top of it.
    let conn = session_with_options(&relay, &[0x02, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00]).await;
    assert_eq!(closed_with(&conn).await, PROTOCOL_VIOLATION);
    // In a request's parameters too.
    let (conn, _ctl, _theirs) = session(&relay).await;
    let (_, _s, _r) = ask(&conn, &subscribe(0, &["probe", "none"], "t", &[0x01, 0x03, 0xc1, 0x00, 0x00])).await;
    assert_eq!(closed_with(&conn).await, PROTOCOL_VIOLATION);
}

// (7) §2.4.1 Track Naming: "Track Namespace is an ordered set of between 0
// and 32 Track Namespace Fields": an empty namespace is well-formed.
#[tokio::test]
async fn the_empty_namespace_is_well_formed_s2_4_1() {
    let relay = Relay::start(&[]);
    let (publisher, _c1, _t1) = session(&relay).await;
    let (subscriber, _c2, _t2) = session(&relay).await;
    // SUBSCRIBE to ((), "t") before anyone publishes it: DOES_NOT_EXIST, no close.
    let (r, _s, _r) = ask(&subscriber, &subscribe(0, &[], "t", &[0])).await;
    assert_eq!(error_code(r), DOES_NOT_EXIST);
    // PUBLISH_NAMESPACE of the empty namespace is accepted …
    let (ok, _hold, _hr) = ask(&publisher, &namespace_request(kind::PUBLISH_NAMESPACE, 0, &[])).await;
    assert!(matches!(ok.unwrap().response().unwrap(), Response::RequestOk(_)));
    // … and a SUBSCRIBE in it is routed to its publisher.
    let mut sub = subscriber.open_bi().await.unwrap();
    sub.0.write_all(&subscribe(2, &[], "t", &[0])).await.unwrap();
    let (_up_send, mut up_recv) = publisher.accept_bi().await.unwrap();
    let f = read_frame(&mut up_recv).await.unwrap();
    match f.request().unwrap() {
        moq_wire::message::Message::Subscribe(s) => assert!(s.track_namespace.fields.is_empty(), "{s:?}"),
        other => panic!("{other:?}"),
    }
    // A namespace with an empty field is still a PROTOCOL_VIOLATION.
    let (_, _s, _r) = ask(&subscriber, &subscribe(4, &[""], "t", &[0])).await;
    assert_eq!(closed_with(&subscriber).await, PROTOCOL_VIOLATION);
    served(&publisher, 2).await;
}

// (8) §3.2.1: requests referencing the `.` namespace "MUST [be rejected]
// with DOES_NOT_EXIST"; §3.2.2: so MUST requests for unrecognized
// session-level (`.session`) tracks and namespaces, and the empty track name
// there. Other reserved namespaces go to the application (routed as usual).
#[tokio::test]
async fn requests_under_dot_and_dot_session_do_not_exist_s3_2() {
    let relay = Relay::start(&[]);
    let (conn, _ctl, _theirs) = session(&relay).await;
    let mut id = 0;
    let mut next = || {
        id += 2;
        id - 2
    };
    for req in [
        subscribe(next(), &["."], "t", &[0]),
        subscribe(next(), &[".session"], "", &[0]),
        subscribe(next(), &[".session", "x"], "t", &[0]),
        namespace_request(kind::PUBLISH_NAMESPACE, next(), &["."]),
        namespace_request(kind::PUBLISH_NAMESPACE, next(), &[".session", "x"]),
        namespace_request(kind::SUBSCRIBE_NAMESPACE, next(), &[".session"]),
        namespace_request(kind::SUBSCRIBE_NAMESPACE, next(), &["."]),
    ] {
        let (r, _s, _r) = ask(&conn, &req).await;
        assert_eq!(error_code(r), DOES_NOT_EXIST);
    }
    // `.other` is reserved but unrecognized: passed to the application.
    let (ok, _s, _r) = ask(&conn, &namespace_request(kind::PUBLISH_NAMESPACE, next(), &[".other"])).await;
    assert!(matches!(ok.unwrap().response().unwrap(), Response::RequestOk(_)));
    assert!(conn.close_reason().is_none());
}

// (9) §3.3.2: a request rejected without processing gets REQUEST_ERROR and
// FIN; "The application SHOULD use a relevant error code when resetting or
// sending STOP_SENDING on a request stream" (§3.3.3) — CANCELLED, or
// EXCESSIVE_LOAD for a request over the session's limits, not 0
// (INTERNAL_ERROR, quinn's code for a dropped stream).
#[tokio::test]
async fn rejected_requests_get_a_relevant_stop_sending_code_s3_3_2() {
    let relay = Relay::start(&["--max-requests-per-sec", "1", "--request-burst", "1"]);
    let (conn, _ctl, _theirs) = session(&relay).await;
    let (r, send, mut recv) = ask(&conn, &subscribe(0, &["probe", "none"], "t", &[0])).await;
    assert_eq!(error_code(r), DOES_NOT_EXIST);
    assert!(read_frame(&mut recv).await.is_none(), "REQUEST_ERROR then FIN");
    assert_eq!(send.stopped().await.unwrap(), Some(1u32.into()), "CANCELLED");
    let (r, send, _recv) = ask(&conn, &subscribe(2, &["."], "t", &[0])).await;
    assert_eq!(error_code(r), DOES_NOT_EXIST);
    assert_eq!(send.stopped().await.unwrap(), Some(1u32.into()), "CANCELLED");
    // Over the request rate (a burst of 1; the refusal above took none of
    // it): REQUEST_ERROR EXCESSIVE_LOAD, STOP_SENDING EXCESSIVE_LOAD.
    let (r, send, _recv) = ask(&conn, &subscribe(4, &["probe", "none"], "t", &[0])).await;
    assert_eq!(error_code(r), 0x9);
    assert_eq!(send.stopped().await.unwrap(), Some(9u32.into()), "EXCESSIVE_LOAD");
}
