//! The WebRTC gateway end to end (issue 14, docs/design/webrtc.md §5): a
//! real `moq-relay` process and str0m as the browser, over loopback UDP.
//! POST an offer, get the answer, ICE + DTLS + SCTP come up, SETUP on a
//! `moq-uni` channel, a SUBSCRIBE on `moq-bi` answered; the signalling's
//! refusals; a browser that never does ICE is dropped.
#![cfg(feature = "webrtc")]

mod common;

use common::Relay;
use moq_wire::control::{take_frame, Frame};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::channel::{ChannelConfig, ChannelId, Reliability};
use str0m::media::{Direction, MediaKind};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

const WAIT: Duration = Duration::from_secs(10);

/// An HTTP exchange on the relay's TCP side: (status, headers, body).
fn http(relay: &Relay, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, HashMap<String, String>, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", relay.port)).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|c| c.parse().ok()).unwrap_or(0);
    let headers = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned())).collect();
    (status, headers, body.to_owned())
}

/// str0m playing the page (`webapp/src/session/rtc.ts`): Opus sendrecv,
/// `moq-gw` and `moq-dgram` made before the offer.
struct Browser {
    rtc: Rtc,
    sock: tokio::net::UdpSocket,
    local: SocketAddr,
    /// Channel labels by id, and what arrived on each.
    labels: HashMap<ChannelId, String>,
    data: HashMap<ChannelId, Vec<u8>>,
}

impl Browser {
    async fn new() -> (Browser, String, SdpPendingOffer) {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let local = sock.local_addr().unwrap();
        let mut rtc = Rtc::builder().clear_codecs().enable_opus(true, false).build(Instant::now());
        rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
        let mut api = rtc.sdp_api();
        api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        api.add_channel_with_config(chan("moq-gw", true));
        api.add_channel_with_config(ChannelConfig {
            ordered: false,
            reliability: Reliability::MaxRetransmits { retransmits: 0 },
            ..chan("moq-dgram", true)
        });
        let (offer, pending) = api.apply().unwrap();
        (Browser { rtc, sock, local, labels: HashMap::new(), data: HashMap::new() }, offer.to_sdp_string(), pending)
    }

    /// Drives str0m until `want` matches an event (others are recorded).
    async fn until(&mut self, what: &str, want: impl Fn(&Event) -> bool) -> Event {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut buf = vec![0u8; 2048];
        loop {
            match self.rtc.poll_output().unwrap() {
                Output::Transmit(t) => {
                    self.sock.send_to(&t.contents, t.destination).await.unwrap();
                }
                Output::Event(e) => {
                    match &e {
                        Event::ChannelOpen(id, label) => {
                            self.labels.insert(*id, label.clone());
                        }
                        Event::ChannelData(d) => self.data.entry(d.id).or_default().extend_from_slice(&d.data),
                        _ => {}
                    }
                    if want(&e) {
                        return e;
                    }
                }
                Output::Timeout(t) => {
                    let wake = tokio::time::Instant::from_std(t).min(deadline);
                    tokio::select! {
                        r = self.sock.recv_from(&mut buf) => {
                            let (n, from) = r.unwrap();
                            let input = Receive::new(Protocol::Udp, from, self.local, &buf[..n]).unwrap();
                            self.rtc.handle_input(Input::Receive(Instant::now(), input)).unwrap();
                        }
                        _ = tokio::time::sleep_until(wake) => {
                            assert!(tokio::time::Instant::now() < deadline, "no {what} within {WAIT:?}");
                            self.rtc.handle_input(Input::Timeout(Instant::now())).unwrap();
                        }
                    }
                }
            }
        }
    }

    /// Opens a channel of ours and waits until it is open.
    async fn open(&mut self, label: &str) -> ChannelId {
        let id = self.rtc.direct_api().create_data_channel(chan(label, true));
        self.until(label, |e| matches!(e, Event::ChannelOpen(i, _) if *i == id)).await;
        id
    }

    /// A channel labelled `label` that is not one of `ours`, once open (it
    /// may have opened while we waited for something else).
    async fn theirs(&mut self, label: &str, ours: &[ChannelId]) -> ChannelId {
        loop {
            if let Some((id, _)) = self.labels.iter().find(|(id, l)| *l == label && !ours.contains(id)) {
                return *id;
            }
            self.until(label, |e| matches!(e, Event::ChannelOpen(..))).await;
        }
    }

    fn send(&mut self, id: ChannelId, binary: bool, bytes: &[u8]) {
        assert!(self.rtc.channel(id).unwrap().write(binary, bytes).unwrap());
    }

    /// The next control message the relay sent on channel `id`.
    async fn frame(&mut self, id: ChannelId) -> Frame {
        loop {
            let mut buf = bytes::BytesMut::from(&self.data.get(&id).cloned().unwrap_or_default()[..]);
            if let Some(f) = take_frame(&mut buf).unwrap() {
                self.data.insert(id, buf.to_vec());
                return f;
            }
            self.until("a message", |e| matches!(e, Event::ChannelData(d) if d.id == id)).await;
        }
    }
}

fn chan(label: &str, ordered: bool) -> ChannelConfig {
    ChannelConfig { label: label.into(), ordered, protocol: "moqt-18".into(), ..Default::default() }
}

/// POSTs the browser's offer; the answer goes into its `Rtc`.
async fn connect(relay: &Relay) -> Browser {
    let (mut b, offer, pending) = Browser::new().await;
    let (status, headers, answer) = http(relay, "POST", "/webrtc", &[("Content-Type", "application/sdp")], &offer);
    assert_eq!(status, 201, "{answer}");
    assert!(headers["location"].starts_with("/webrtc/"), "{headers:?}");
    assert_eq!(headers["content-type"], "application/sdp");
    assert!(answer.contains("a=ice-lite"), "ICE-lite answer:\n{answer}");
    assert!(answer.contains("a=ptime:20"), "20 ms frames pinned:\n{answer}");
    assert!(answer.contains("typ host"), "host candidates:\n{answer}");
    b.rtc.sdp_api().accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap()).unwrap();
    b.until("moq-gw open", |e| matches!(e, Event::ChannelOpen(_, l) if l == "moq-gw")).await;
    b
}

#[tokio::test]
async fn setup_and_a_subscribe_over_data_channels() {
    let relay = Relay::start(&["--webrtc-bind", "127.0.0.1:0"]);
    let mut b = connect(&relay).await;

    // SETUP on the first moq-uni, as draft-18's control stream (§3.3).
    let ctl = b.open("moq-uni").await;
    b.send(ctl, true, &common::setup_bytes());
    // The relay's control stream: a moq-uni of its own, starting with SETUP.
    let theirs = b.theirs("moq-uni", &[ctl]).await;
    assert_eq!(b.frame(theirs).await.kind, moq_wire::SETUP);

    // A request on moq-bi is answered (nobody publishes the track).
    let req = b.open("moq-bi").await;
    let msg = moq_wire::message::Message::Subscribe(moq_wire::message::Subscribe {
        id: 0,
        track_namespace: moq_wire::coding::TrackNamespace::from_utf8_path("probe/none"),
        track_name: "t".into(),
        params: Default::default(),
    });
    b.send(req, true, &moq_wire::control::encode_request(&msg).unwrap());
    let answer = b.frame(req).await;
    assert!(answer.response().is_ok(), "a response to SUBSCRIBE: {:#x}", answer.kind);
    assert_eq!(relay.metric("moq_relay_webrtc_peers"), Some(1.0));
    assert_eq!(relay.metric("moq_relay_webrtc_sessions_total"), Some(1.0));

    // Garbage on a stream channel: the session is closed with
    // PROTOCOL_VIOLATION, and the page is told so on moq-gw first.
    let gw = b.theirs("moq-gw", &[]).await;
    let junk = b.open("moq-uni").await;
    b.send(junk, false, b"nonsense");
    b.until("the close on moq-gw", |e| matches!(e, Event::ChannelData(d) if d.id == gw)).await;
    let text = String::from_utf8(b.data[&gw].clone()).unwrap();
    assert!(text.starts_with(r#"{"t":"close","code":3,"#), "{text}");
}

#[tokio::test]
async fn refusals_are_one_line_with_the_right_status() {
    let relay = Relay::start(&["--webrtc-bind", "127.0.0.1:0"]);
    let (_, offer, _) = Browser::new().await;
    let sdp = [("Content-Type", "application/sdp")];
    let (s, _, body) = http(&relay, "POST", "/webrtc", &[("Content-Type", "text/plain")], &offer);
    assert_eq!((s, body.lines().count()), (415, 1), "{body}");
    let (s, _, body) = http(&relay, "POST", "/webrtc", &sdp, "v=0\r\nnot sdp at all\r\n");
    assert_eq!(s, 400, "{body}");
    let (s, _, body) = http(&relay, "POST", "/webrtc", &sdp, &offer.replace("m=application", "m=video"));
    assert_eq!(s, 400);
    assert!(body.contains("m=application"), "{body}");
    let (s, _, _) = http(&relay, "POST", "/webrtc", &sdp, &"a".repeat(20_000));
    assert_eq!(s, 413);
    let (s, _, _) = http(&relay, "DELETE", "/webrtc/nope", &[], "");
    assert_eq!(s, 404);
    let (s, h, _) = http(&relay, "OPTIONS", "/webrtc", &[], "");
    assert_eq!(s, 204);
    assert!(h["access-control-allow-headers"].contains("Authorization"));
    assert!(relay.metric("moq_relay_webrtc_offers_total{result=\"bad_sdp\"}").unwrap_or(0.0) >= 2.0);

    // With tokens required: none, or a bad one, is 401 with WWW-Authenticate.
    let (_, public) = common::tokens::keygen(&relay.dir, "issuer");
    let locked = Relay::start(&["--webrtc-bind", "127.0.0.1:0", "--auth-key", &public]);
    let (s, h, body) = http(&locked, "POST", "/webrtc", &sdp, &offer);
    assert_eq!(s, 401, "{body}");
    assert_eq!(h["www-authenticate"], "Bearer");
    let (s, _, body) = http(&locked, "POST", "/webrtc", &[sdp[0], ("Authorization", "Bearer AAAA")], &offer);
    assert_eq!(s, 401);
    assert!(body.contains("token"), "{body}");
}

#[tokio::test]
async fn a_browser_that_never_does_ice_is_dropped() {
    let relay = Relay::start(&["--webrtc-bind", "127.0.0.1:0", "--webrtc-ice-timeout-secs", "1"]);
    let (_, offer, _) = Browser::new().await;
    let (s, headers, _) = http(&relay, "POST", "/webrtc", &[("Content-Type", "application/sdp")], &offer);
    assert_eq!(s, 201);
    assert_eq!(relay.metric("moq_relay_webrtc_peers"), Some(1.0));
    relay.wait_log("ICE and DTLS not up in time");
    let deadline = Instant::now() + WAIT;
    while relay.metric("moq_relay_webrtc_peers") != Some(0.0) {
        assert!(Instant::now() < deadline, "the peer is still counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(relay.metric("moq_relay_webrtc_ice_timeouts_total"), Some(1.0));
    let (s, _, _) = http(&relay, "DELETE", &headers["location"], &[], "");
    assert_eq!(s, 404, "gone already");
}
