//! The WebRTC gateway end to end (issue 14, docs/design/webrtc.md §5): a
//! real `moq-relay` process and str0m as the browser, over loopback UDP.
//! POST an offer, get the answer, ICE + DTLS + SCTP come up, SETUP on a
//! `moq-uni` channel, a SUBSCRIBE on `moq-bi` answered, garbage closes only
//! that session (told on `moq-gw`); RTP from the browser reaches a QUIC
//! subscriber as LOC datagrams and a QUIC publisher's datagrams reach the
//! browser as RTP; the signalling's refusals; a browser that never does ICE
//! is dropped.
#![cfg(feature = "webrtc")]

mod common;

use common::Relay;
use moq_wire::coding::{KeyValuePairs, TrackNamespace};
use moq_wire::control::Response;
use moq_wire::control::{take_frame, Frame};
use moq_wire::message::{Message, PublishNamespace};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::channel::{ChannelConfig, ChannelId, Reliability};
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
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
    audio: Mid,
    sock: tokio::net::UdpSocket,
    local: SocketAddr,
    /// Channel labels by id, and what arrived on each.
    labels: HashMap<ChannelId, String>,
    data: HashMap<ChannelId, Vec<u8>>,
    /// RTP that arrived: (RTP time, payload).
    media: Vec<(u64, Vec<u8>)>,
}

impl Browser {
    async fn new() -> (Browser, String, SdpPendingOffer) {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let local = sock.local_addr().unwrap();
        let mut rtc = Rtc::builder().clear_codecs().enable_opus(true, false).build(Instant::now());
        rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
        let mut api = rtc.sdp_api();
        let audio = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        api.add_channel_with_config(chan("moq-gw", true));
        api.add_channel_with_config(ChannelConfig {
            ordered: false,
            reliability: Reliability::MaxRetransmits { retransmits: 0 },
            ..chan("moq-dgram", true)
        });
        let (offer, pending) = api.apply().unwrap();
        (
            Browser { rtc, audio, sock, local, labels: HashMap::new(), data: HashMap::new(), media: Vec::new() },
            offer.to_sdp_string(),
            pending,
        )
    }

    /// Drives str0m until `want` matches an event (others are recorded).
    async fn until(&mut self, what: &str, want: impl Fn(&Event) -> bool) -> Event {
        let deadline = tokio::time::Instant::now() + WAIT;
        self.drive(what, deadline, want).await.unwrap_or_else(|| panic!("no {what} within {WAIT:?}"))
    }

    /// Drives str0m for `d`, recording what arrives.
    async fn run_for(&mut self, d: Duration) {
        self.drive("", tokio::time::Instant::now() + d, |_| false).await;
    }

    async fn drive(&mut self, what: &str, deadline: tokio::time::Instant, want: impl Fn(&Event) -> bool) -> Option<Event> {
        let _ = what;
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
                        Event::MediaData(m) => self.media.push((m.time.numer(), m.data.to_vec())),
                        _ => {}
                    }
                    if want(&e) {
                        return Some(e);
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
                            if tokio::time::Instant::now() >= deadline {
                                return None;
                            }
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
/// A browser whose MoQ session is set up: SETUP on its first moq-uni, as
/// draft-18's control stream (§3.3), answered by the relay's SETUP on a
/// moq-uni of its own.
async fn set_up(relay: &Relay) -> Browser {
    let mut b = connect(relay).await;
    let ctl = b.open("moq-uni").await;
    b.send(ctl, true, &common::setup_bytes());
    let theirs = b.theirs("moq-uni", &[ctl]).await;
    assert_eq!(b.frame(theirs).await.kind, moq_wire::SETUP);
    b
}

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
    let mut b = set_up(&relay).await;

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
    // Nothing else is disturbed: a QUIC session is served as before, and the
    // broken peer is gone once its close went out.
    let (conn, _c, _r) = common::session(&relay).await;
    assert!(matches!(common::probe(&conn, 0).await, moq_wire::control::Response::RequestError { .. }));
    let deadline = Instant::now() + WAIT;
    while relay.metric("moq_relay_webrtc_peers") != Some(0.0) {
        assert!(Instant::now() < deadline, "the broken peer is still counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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

/// The browser publishes; its RTP reaches a QUIC subscriber as the
/// OBJECT_DATAGRAMs a WebTransport phone would send (design §3): the alias of
/// the subscription, Group n / 50, Object n % 50, priority 128, a LOC
/// TIMESTAMP, the Opus packet as payload.
#[tokio::test]
async fn rtp_in_reaches_a_quic_subscriber_as_datagrams() {
    let relay = Relay::start(&["--webrtc-bind", "127.0.0.1:0"]);
    let mut b = set_up(&relay).await;

    // PUBLISH_NAMESPACE on a moq-bi of ours.
    let ann = b.open("moq-bi").await;
    let m = Message::PublishNamespace(PublishNamespace {
        id: 0,
        track_namespace: TrackNamespace::from_utf8_path("rtc/alice"),
        params: KeyValuePairs::new(),
    });
    b.send(ann, true, &moq_wire::control::encode_request(&m).unwrap());
    assert!(matches!(b.frame(ann).await.response().unwrap(), Response::RequestOk(_)));

    // A QUIC subscriber; the relay forwards its SUBSCRIBE on a moq-bi of its own.
    let (sub, _c, _r) = common::session(&relay).await;
    let pending = tokio::spawn({
        let sub = sub.clone();
        async move {
            let (mut s, mut r) = sub.open_bi().await.unwrap();
            let m = Message::Subscribe(moq_wire::message::Subscribe {
                id: 0,
                track_namespace: TrackNamespace::from_utf8_path("rtc/alice"),
                track_name: "audio".into(),
                params: KeyValuePairs::new(),
            });
            s.write_all(&moq_wire::control::encode_request(&m).unwrap()).await.unwrap();
            let resp = common::read_frame(&mut r).await.unwrap().response().unwrap();
            (s, r, resp)
        }
    });
    let up = b.theirs("moq-bi", &[ann]).await;
    assert!(matches!(b.frame(up).await.request().unwrap(), Message::Subscribe(_)));
    b.send(up, true, &Response::SubscribeOk { alias: 7, params: KeyValuePairs::new(), properties: Default::default() }.encode());
    b.run_for(Duration::from_millis(100)).await;
    let (_s, _r, resp) = pending.await.unwrap();
    let Response::SubscribeOk { alias, .. } = resp else { panic!("{resp:?}") };

    // audio-out binds alias 7; then RTP, 20 ms apart.
    let gw = b.theirs("moq-gw", &[]).await;
    b.send(gw, false, br#"{"t":"audio-out","alias":7,"priority":128}"#);
    b.run_for(Duration::from_millis(100)).await;
    let opus = [0xf8u8, 0xff, 0xfe];
    let pt = b.rtc.writer(b.audio).unwrap().payload_params().next().unwrap().pt();
    for n in 0..5u64 {
        let time = MediaTime::new(48_000 + n * 960, Frequency::FORTY_EIGHT_KHZ);
        b.rtc.writer(b.audio).unwrap().write(pt, Instant::now(), time, &opus[..]).unwrap();
        b.run_for(Duration::from_millis(20)).await;
    }
    let got = tokio::time::timeout(WAIT, sub.read_datagram()).await.expect("a datagram within 10 s").unwrap();
    let d = moq_wire::datagram::Datagram::parse(got).unwrap();
    assert_eq!((d.track_alias, d.group_id, d.object_id, d.publisher_priority), (alias, 0, 0, Some(128)));
    assert_eq!(&d.payload()[..], &opus);
    let now_us = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as u64;
    let ts = moq_wire::loc::decode(&d.properties(), &d.payload()).unwrap().capture_us.unwrap();
    assert!(ts <= now_us && ts + 10_000_000 > now_us, "LOC TIMESTAMP {ts} near now {now_us}");
    let next = tokio::time::timeout(WAIT, sub.read_datagram()).await.unwrap().unwrap();
    assert_eq!(moq_wire::datagram::Datagram::parse(next).unwrap().object_id, 1);
    assert!(relay.metric("moq_relay_webrtc_rtp_frames_total{dir=\"in\"}").unwrap_or(0.0) >= 2.0);
}

/// The browser subscribes; a QUIC publisher's datagrams of the subscription
/// bound with `audio-in` reach it as Opus RTP, 960 ticks apart (RFC 7587 §4.1).
#[tokio::test]
async fn datagrams_of_the_audio_in_alias_reach_the_browser_as_rtp() {
    let relay = Relay::start(&["--webrtc-bind", "127.0.0.1:0"]);
    let (publ, _c0, _r0) = common::session(&relay).await;
    let (mut ann_s, mut ann_r) = publ.open_bi().await.unwrap();
    let m = Message::PublishNamespace(PublishNamespace {
        id: 0,
        track_namespace: TrackNamespace::from_utf8_path("rtc/bob"),
        params: KeyValuePairs::new(),
    });
    ann_s.write_all(&moq_wire::control::encode_request(&m).unwrap()).await.unwrap();
    assert!(matches!(common::read_frame(&mut ann_r).await.unwrap().response().unwrap(), Response::RequestOk(_)));

    let mut b = set_up(&relay).await;
    let req = b.open("moq-bi").await;
    let m = Message::Subscribe(moq_wire::message::Subscribe {
        id: 0,
        track_namespace: TrackNamespace::from_utf8_path("rtc/bob"),
        track_name: "audio".into(),
        params: KeyValuePairs::new(),
    });
    b.send(req, true, &moq_wire::control::encode_request(&m).unwrap());
    // The publisher answers the relay's SUBSCRIBE with alias 9 (meanwhile the browser's side waits).
    let answer = tokio::spawn(async move {
        let (mut s, mut r) = publ.accept_bi().await.unwrap();
        assert!(matches!(common::read_frame(&mut r).await.unwrap().request().unwrap(), Message::Subscribe(_)));
        s.write_all(&Response::SubscribeOk { alias: 9, params: KeyValuePairs::new(), properties: Default::default() }.encode())
            .await
            .unwrap();
        (publ, s, r)
    });
    let Response::SubscribeOk { alias, .. } = b.frame(req).await.response().unwrap() else { panic!("SUBSCRIBE_OK") };
    let (publ, _s, _r) = answer.await.unwrap();
    let gw = b.theirs("moq-gw", &[]).await;
    b.send(gw, false, format!(r#"{{"t":"audio-in","alias":{alias}}}"#).as_bytes());
    b.run_for(Duration::from_millis(100)).await;

    let opus = [0xf8u8, 0x01, 0x02, 0x03];
    for n in 0..5u64 {
        let mut d = Vec::new();
        let props = moq_wire::loc::properties(1_800_000_000_000_000 + n * 20_000);
        let f = moq_wire::datagram::Fields {
            track_alias: 9,
            group_id: 0,
            object_id: n,
            publisher_priority: Some(128),
            end_of_group: false,
            properties: &props,
            status: None,
            payload: &opus,
        };
        moq_wire::datagram::encode(&f, &mut d);
        publ.send_datagram(d.into()).unwrap();
        b.run_for(Duration::from_millis(20)).await;
    }
    while b.media.len() < 2 {
        b.until("RTP from the gateway", |e| matches!(e, Event::MediaData(_))).await;
    }
    assert!(b.media.iter().all(|(_, p)| p[..] == opus), "the Opus packets as sent");
    let times: Vec<u64> = b.media.iter().map(|(t, _)| *t).collect();
    assert!(times.windows(2).all(|w| w[1] - w[0] == 960), "one 20 ms frame apart: {times:?}");
    assert!(relay.metric("moq_relay_webrtc_rtp_frames_total{dir=\"out\"}").unwrap_or(0.0) >= 2.0);
}

/// `GET /webrtc`: the STUN/TURN servers for the page, TURN with TURN REST
/// API credentials (`webrtc/ice_servers.rs`); with tokens required, only for
/// a good token, and the credential names its subject.
#[tokio::test]
async fn ice_servers_with_turn_credentials_for_a_token() {
    let open = Relay::start(&["--webrtc-bind", "127.0.0.1:0"]);
    let (s, h, body) = http(&open, "GET", "/webrtc", &[], "");
    assert_eq!((s, body.as_str()), (200, r#"{"iceServers":[]}"#), "no servers configured");
    assert_eq!(h["cache-control"], "no-store");

    let dir = open.dir.clone();
    let secret = dir.join("turn.secret");
    std::fs::write(&secret, "north\n").unwrap();
    let (key, public) = common::tokens::keygen(&dir, "issuer");
    let servers = "stun:stun.example.org,turns:turn.example.org:443?transport=tcp";
    let args = [
        "--webrtc-bind",
        "127.0.0.1:0",
        "--auth-key",
        &public,
        "--webrtc-ice-server",
        servers,
        "--webrtc-turn-secret-file",
        secret.to_str().unwrap(),
    ];
    let locked = Relay::start(&args);
    let (s, h, _) = http(&locked, "GET", "/webrtc", &[], "");
    assert_eq!(s, 401, "TURN credentials only with a token");
    assert_eq!(h["www-authenticate"], "Bearer");
    let token = common::tokens::relay_cmd(&["token", "--key", &key, "--user", "alice", "--ttl", "1h"]);
    let bearer = format!("Bearer {}", token.trim());
    let (s, _, body) = http(&locked, "GET", "/webrtc", &[("Authorization", &bearer)], "");
    assert_eq!(s, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["iceServers"][0]["urls"], serde_json::json!(["stun:stun.example.org"]));
    let turn = &v["iceServers"][1];
    assert_eq!(turn["urls"], serde_json::json!(["turns:turn.example.org:443?transport=tcp"]));
    let username = turn["username"].as_str().unwrap();
    let (expires, user) = username.split_once(':').unwrap();
    assert_eq!(user, "alice");
    let expires: u64 = expires.parse().unwrap();
    assert_eq!(turn["credential"], moq_relay::webrtc::ice_servers::turn_credentials(b"north", "alice", expires).1);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(expires > now, "credentials good from now on");
}
