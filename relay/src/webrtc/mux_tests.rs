//! Tests of `mux.rs`: the routing table with forged, signed STUN Binding
//! requests, and the socket over loopback (dual-stack, IPv4 canonicalised).

use super::*;
use str0m::ice::{StunMessage, TransId};

/// HMAC-SHA1 for MESSAGE-INTEGRITY (RFC 8489 §14.5), as str0m signs with.
fn sha1_hmac(key: &[u8], payloads: &[&[u8]]) -> [u8; 20] {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
    let mut ctx = ring::hmac::Context::with_key(&key);
    for p in payloads {
        ctx.update(p);
    }
    let mut out = [0u8; 20];
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

/// The Binding request a browser opens ICE with (RFC 8445 §7.2.2): USERNAME
/// `<ours>:<theirs>`, signed with our password.
fn binding(ours: &str) -> Vec<u8> {
    let username = format!("{ours}:brws");
    let msg = StunMessage::binding_request(&username, TransId::new(), true, 7, 1_000, true);
    let mut buf = vec![0u8; 512];
    let n = msg.to_bytes(Some(b"password-of-the-peer-22"), &mut buf, sha1_hmac).unwrap();
    buf.truncate(n);
    buf
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Whose (ufrag) a datagram from `from` is.
fn who(t: &mut Table, data: &[u8], from: &str) -> Option<String> {
    t.route(data, addr(from)).map(|(u, _)| u.to_owned())
}

#[test]
fn stun_by_ufrag_then_everything_by_address() {
    let mut t = Table::default();
    let (a_tx, _a) = mpsc::channel(8);
    let (b_tx, _b) = mpsc::channel(8);
    assert!(t.register("AAAA", a_tx));
    assert!(t.register("BBBB", b_tx.clone()));
    assert!(!t.register("AAAA", b_tx), "a ufrag is one peer's");

    // DTLS from a source no check came from: nobody's.
    let dtls = [22u8, 0xfe, 0xfd, 0, 0];
    assert_eq!(who(&mut t, &dtls, "10.0.0.1:5000"), None);
    // A's check teaches its address; then DTLS from there is A's.
    assert_eq!(who(&mut t, &binding("AAAA"), "10.0.0.1:5000"), Some("AAAA".into()));
    assert_eq!(who(&mut t, &dtls, "10.0.0.1:5000"), Some("AAAA".into()));
    assert_eq!(who(&mut t, &dtls, "10.0.0.1:5001"), None);
    // An unknown ufrag teaches nothing.
    assert_eq!(who(&mut t, &binding("ZZZZ"), "10.0.0.9:1"), None);
    assert_eq!(who(&mut t, &dtls, "10.0.0.9:1"), None);
    // The ufrag wins over the address: the same source checking for B moves to B.
    assert_eq!(who(&mut t, &binding("BBBB"), "10.0.0.1:5000"), Some("BBBB".into()));
    assert_eq!(who(&mut t, &dtls, "10.0.0.1:5000"), Some("BBBB".into()));
    // Garbage that looks like STUN is routed by address, never parsed into a panic.
    assert_eq!(who(&mut t, &[0, 1, 0, 200, 1, 2], "10.0.0.1:5000"), Some("BBBB".into()));
    assert_eq!(who(&mut t, &[], "10.0.0.1:5000"), Some("BBBB".into()));

    t.unregister("BBBB");
    assert_eq!(who(&mut t, &dtls, "10.0.0.1:5000"), None, "its addresses go with it");
    assert_eq!(t.len(), 1);
}

#[test]
fn addresses_per_peer_are_capped() {
    let mut t = Table::default();
    let (tx, _rx) = mpsc::channel(64);
    t.register("AAAA", tx);
    for port in 0..10 {
        t.route(&binding("AAAA"), addr(&format!("10.0.0.1:{}", 6000 + port)));
    }
    let dtls = [22u8, 0xfe, 0xfd];
    let routed = (0..10).filter(|p| t.route(&dtls, addr(&format!("10.0.0.1:{}", 6000 + p))).is_some()).count();
    assert_eq!(routed, MAX_ADDRS);
    assert!(t.route(&dtls, addr("10.0.0.1:6009")).is_some(), "the newest are kept");
    assert_eq!(t.by_addr.len(), MAX_ADDRS);
}

#[tokio::test]
async fn dual_stack_socket_routes_ipv4_as_ipv4_and_answers_it() {
    let mux = Mux::bind(addr("[::]:0")).unwrap();
    let port = mux.local_addr().unwrap().port();
    let (mut inbox, reg) = mux.register("CCCC").unwrap();
    assert!(mux.register("CCCC").is_none());

    let browser = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = browser.local_addr().unwrap();
    browser.send_to(&binding("CCCC"), ("127.0.0.1", port)).await.unwrap();
    let p = tokio::time::timeout(std::time::Duration::from_secs(5), inbox.recv()).await.unwrap().unwrap();
    assert_eq!(p.source, me, "v4-mapped source canonicalised to IPv4");
    assert!(p.source.is_ipv4());

    // Then by address; and the answer reaches the IPv4 browser.
    browser.send_to(&[23, 0xfe, 0xfd, 1], ("127.0.0.1", port)).await.unwrap();
    let p = tokio::time::timeout(std::time::Duration::from_secs(5), inbox.recv()).await.unwrap().unwrap();
    assert_eq!(&p.data[..], &[23, 0xfe, 0xfd, 1]);
    mux.send(me, b"hello").await.unwrap();
    let mut buf = [0u8; 16];
    let (n, _) = tokio::time::timeout(std::time::Duration::from_secs(5), browser.recv_from(&mut buf)).await.unwrap().unwrap();
    assert_eq!(&buf[..n], b"hello");

    // Unregistered on drop: the same browser is nobody's now.
    drop(reg);
    assert!(mux.table().is_empty());
}

#[tokio::test]
async fn full_inbox_drops_instead_of_growing() {
    let mux = Mux::bind(addr("127.0.0.1:0")).unwrap();
    let port = mux.local_addr().unwrap().port();
    let (mut inbox, _reg) = mux.register("DDDD").unwrap();
    let browser = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for _ in 0..INBOX + 100 {
        browser.send_to(&binding("DDDD"), ("127.0.0.1", port)).await.unwrap();
    }
    // A last, different datagram: wait until the reader handled it (or dropped it).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while inbox.len() < INBOX && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(inbox.len(), INBOX, "bounded like a socket buffer");
    while inbox.try_recv().is_ok() {}
}
