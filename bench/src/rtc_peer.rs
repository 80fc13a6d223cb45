//! A WebRTC fallback party for the bench: str0m playing the page
//! (`webapp/src/session/rtc.ts`) against our relay's gateway
//! (docs/design/webrtc.md §2.3, §3). It POSTs its offer to `/webrtc`, sets
//! up its MoQ session over data channels (SETUP on the first `moq-uni`,
//! requests on `moq-bi`), answers the SUBSCRIBE the relay forwards for its
//! `audio` track and binds it with `audio-out`, binds its own subscription
//! with `audio-in`, and then sends and receives Opus-shaped RTP.
//!
//! Why not `relay/tests/webrtc.rs`'s `Browser`: that one asserts as it goes
//! and lives in the relay's tests; here a failed step is an error (a load
//! step counts the calls that came up), the forwarded SUBSCRIBE is answered
//! whenever it arrives (the two parties set up concurrently), and media has
//! a callback instead of a growing list. Same str0m calls otherwise.
//!
//! Sans-IO as str0m wants it: one owner per `Rtc`, one mutation, then
//! `poll_output` drained to `Timeout`; [`RtcPeer::run`] does both and
//! sleeps on the socket, str0m's timeout or the caller's deadline.

use anyhow::{bail, Context};
use bytes::BytesMut;
use moq_wire::coding::{KeyValuePairs, TrackNamespace};
use moq_wire::control::{encode_request, take_frame, Frame, Response};
use moq_wire::message::{Message, PublishNamespace, Subscribe};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use str0m::change::SdpAnswer;
use str0m::channel::{ChannelConfig, ChannelId, Reliability};
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;

/// How long one setup step (ICE + DTLS + SCTP, a request's answer) may take.
const STEP: Duration = Duration::from_secs(15);

/// One fallback party: its `Rtc`, socket and the MoQ state a call needs.
pub struct RtcPeer {
    rtc: Rtc,
    audio: Mid,
    pt: Option<Pt>,
    sock: UdpSocket,
    local: SocketAddr,
    /// Channel labels by id; those we opened.
    labels: HashMap<ChannelId, String>,
    ours: Vec<ChannelId>,
    /// Bytes of stream channels not yet a whole control message.
    pending: HashMap<ChannelId, BytesMut>,
    /// Control messages on channels we opened, for the requests waiting.
    frames: VecDeque<(ChannelId, Frame)>,
    gw: Option<ChannelId>,
    /// The relay's SETUP arrived.
    setup_seen: bool,
    next_request: u64,
    next_alias: u64,
    /// The alias we gave the relay's SUBSCRIBE and bound with `audio-out`.
    pub audio_out: Option<u64>,
    /// Why the relay closed us (`moq-gw` close, ICE gone).
    closed: Option<String>,
}

fn chan(label: &str) -> ChannelConfig {
    ChannelConfig { label: label.into(), ordered: true, protocol: "moqt-18".into(), ..Default::default() }
}

impl RtcPeer {
    /// Offer (Opus sendrecv, `moq-gw` and `moq-dgram` as the page makes
    /// them), POST to `http` (the relay's TCP address), answer, ICE and DTLS
    /// up until `moq-gw` opens, then SETUP both ways.
    pub async fn connect(http: SocketAddr) -> anyhow::Result<RtcPeer> {
        let sock = UdpSocket::bind("127.0.0.1:0").await?;
        let local = sock.local_addr()?;
        let mut rtc = Rtc::builder().clear_codecs().enable_opus(true, false).build(Instant::now());
        rtc.add_local_candidate(Candidate::host(local, "udp")?);
        let mut api = rtc.sdp_api();
        let audio = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        api.add_channel_with_config(chan("moq-gw"));
        api.add_channel_with_config(ChannelConfig {
            ordered: false,
            reliability: Reliability::MaxRetransmits { retransmits: 0 },
            ..chan("moq-dgram")
        });
        let (offer, pending) = api.apply().context("no offer")?;
        let answer = post_offer(http, &offer.to_sdp_string()).await?;
        rtc.sdp_api().accept_answer(pending, SdpAnswer::from_sdp_string(&answer)?)?;
        let mut p = RtcPeer {
            rtc,
            audio,
            pt: None,
            sock,
            local,
            labels: HashMap::new(),
            ours: Vec::new(),
            pending: HashMap::new(),
            frames: VecDeque::new(),
            gw: None,
            setup_seen: false,
            next_request: 0,
            next_alias: 1,
            audio_out: None,
            closed: None,
        };
        p.wait("moq-gw open", |p| p.gw.is_some()).await?;
        let ctl = p.open("moq-uni").await?;
        let mut setup = BytesMut::new();
        moq_wire::setup::Setup { params: Default::default() }.encode_full(&mut setup)?;
        p.send(ctl, &setup)?;
        p.wait("the relay's SETUP", |p| p.setup_seen).await?;
        Ok(p)
    }

    /// PUBLISH_NAMESPACE on a `moq-bi` of ours; Ok once REQUEST_OK.
    pub async fn publish_namespace(&mut self, ns: &TrackNamespace) -> anyhow::Result<()> {
        let id = self.request_id();
        let m = Message::PublishNamespace(PublishNamespace { id, track_namespace: ns.clone(), params: KeyValuePairs::new() });
        match self.request(&m).await? {
            Response::RequestOk(_) => Ok(()),
            r => bail!("PUBLISH_NAMESPACE answered {r:?}"),
        }
    }

    /// SUBSCRIBE to `ns`/`track` and bind its alias with `audio-in`, so the
    /// gateway turns its datagrams into RTP for us. Returns the alias.
    pub async fn subscribe_audio(&mut self, ns: &TrackNamespace, track: &str) -> anyhow::Result<u64> {
        let id = self.request_id();
        let m = Message::Subscribe(Subscribe { id, track_namespace: ns.clone(), track_name: track.into(), params: KeyValuePairs::new() });
        match self.request(&m).await? {
            Response::SubscribeOk { alias, .. } => {
                self.gw(&format!(r#"{{"t":"audio-in","alias":{alias}}}"#))?;
                Ok(alias)
            }
            r => bail!("SUBSCRIBE answered {r:?}"),
        }
    }

    /// One Opus packet as RTP at `rtp_time` (48 kHz ticks). The next
    /// [`run`](Self::run) sends it (str0m's output is drained there).
    pub fn send_audio(&mut self, rtp_time: u64, payload: &[u8]) -> anyhow::Result<()> {
        let w = self.rtc.writer(self.audio).context("no audio writer")?;
        let pt = match self.pt {
            Some(pt) => pt,
            None => {
                let pt = w.payload_params().next().context("no Opus payload type")?.pt();
                self.pt = Some(pt);
                pt
            }
        };
        w.write(pt, Instant::now(), MediaTime::new(rtp_time, Frequency::FORTY_EIGHT_KHZ), payload)?;
        Ok(())
    }

    /// Drives the peer until `deadline`, handing every RTP payload that
    /// arrives to `audio`.
    pub async fn run_until(&mut self, deadline: tokio::time::Instant, audio: &mut impl FnMut(&[u8])) -> anyhow::Result<()> {
        self.run(deadline, audio, |_| false).await.map(|_| ())
    }

    /// Drives the peer until `done` holds (true) or `deadline` (false).
    pub async fn wait_for(&mut self, within: Duration, done: impl Fn(&RtcPeer) -> bool) -> anyhow::Result<bool> {
        self.run(tokio::time::Instant::now() + within, &mut |_| {}, done).await
    }

    async fn wait(&mut self, what: &str, done: impl Fn(&RtcPeer) -> bool) -> anyhow::Result<()> {
        if !self.wait_for(STEP, done).await? {
            bail!("no {what} within {STEP:?}");
        }
        Ok(())
    }

    /// The loop: drain str0m's output (packets out, events handled), then
    /// sleep until a packet arrives, str0m's timeout or `deadline`.
    async fn run(
        &mut self,
        deadline: tokio::time::Instant,
        audio: &mut impl FnMut(&[u8]),
        done: impl Fn(&RtcPeer) -> bool,
    ) -> anyhow::Result<bool> {
        let mut buf = [0u8; 2048];
        loop {
            if done(self) {
                return Ok(true);
            }
            if let Some(why) = &self.closed {
                bail!("closed: {why}");
            }
            match self.rtc.poll_output()? {
                Output::Transmit(t) => {
                    // A full socket buffer is a lost packet, as for a browser.
                    let _ = self.sock.send_to(&t.contents, t.destination).await;
                }
                Output::Event(e) => self.event(e, audio)?,
                // str0m asks for a timeout that is already due after every
                // RTP frame written (it packetizes on a timeout, then its null
                // pacer wants another): handled at once, not through a tokio
                // sleep, which rounds its deadline up to the next whole ms.
                Output::Timeout(t) if t <= Instant::now() => {
                    self.rtc.handle_input(Input::Timeout(Instant::now()))?;
                }
                Output::Timeout(t) => {
                    let wake = tokio::time::Instant::from_std(t).min(deadline);
                    tokio::select! {
                        r = self.sock.recv_from(&mut buf) => {
                            let (n, from) = r?;
                            if let Ok(input) = Receive::new(Protocol::Udp, from, self.local, &buf[..n]) {
                                self.rtc.handle_input(Input::Receive(Instant::now(), input))?;
                            }
                        }
                        _ = tokio::time::sleep_until(wake) => {
                            if tokio::time::Instant::now() >= deadline {
                                return Ok(false);
                            }
                            self.rtc.handle_input(Input::Timeout(Instant::now()))?;
                        }
                    }
                }
            }
        }
    }

    fn event(&mut self, e: Event, audio: &mut impl FnMut(&[u8])) -> anyhow::Result<()> {
        match e {
            Event::MediaData(m) => audio(&m.data),
            Event::ChannelOpen(id, label) => {
                if label == "moq-gw" && self.gw.is_none() {
                    self.gw = Some(id);
                }
                self.labels.insert(id, label);
            }
            Event::ChannelData(d) if Some(d.id) == self.gw => {
                let text = String::from_utf8_lossy(&d.data);
                if text.starts_with(r#"{"t":"close""#) {
                    self.closed = Some(text.into_owned());
                }
            }
            // Text on a stream channel is a signal (fin, reset, stop): a call
            // in progress ignores them.
            Event::ChannelData(d) if d.binary => {
                let buf = self.pending.entry(d.id).or_default();
                buf.extend_from_slice(&d.data);
                let mut got = Vec::new();
                // A data stream (not control messages) is dropped unparsed.
                while let Ok(Some(f)) = take_frame(buf) {
                    got.push(f);
                }
                for f in got {
                    self.frame(d.id, f)?;
                }
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => self.closed = Some("ICE disconnected".into()),
            Event::Closed => self.closed = Some("peer connection closed".into()),
            _ => {}
        }
        Ok(())
    }

    /// A control message: the answer to one of our requests is kept for
    /// its waiter; the relay's SETUP noted; the relay's SUBSCRIBE for our
    /// `audio` answered with an alias that `audio-out` then binds.
    fn frame(&mut self, id: ChannelId, f: Frame) -> anyhow::Result<()> {
        if self.ours.contains(&id) {
            self.frames.push_back((id, f));
            return Ok(());
        }
        if f.kind == moq_wire::SETUP {
            self.setup_seen = true;
            return Ok(());
        }
        if self.labels.get(&id).map(String::as_str) == Some("moq-bi") {
            if let Ok(Message::Subscribe(_)) = f.request() {
                let alias = self.next_alias;
                self.next_alias += 1;
                let ok = Response::SubscribeOk { alias, params: KeyValuePairs::new(), properties: Default::default() };
                self.send(id, &ok.encode())?;
                self.gw(&format!(r#"{{"t":"audio-out","alias":{alias},"priority":128}}"#))?;
                self.audio_out = Some(alias);
            }
        }
        Ok(())
    }

    fn request_id(&mut self) -> u64 {
        let id = self.next_request;
        self.next_request += 2;
        id
    }

    /// A request on a fresh `moq-bi` of ours; its first answer.
    async fn request(&mut self, m: &Message) -> anyhow::Result<Response> {
        let ch = self.open("moq-bi").await?;
        self.send(ch, &encode_request(m)?)?;
        self.wait("an answer", |p| p.frames.iter().any(|(c, _)| *c == ch)).await?;
        let i = self.frames.iter().position(|(c, _)| *c == ch).context("answer gone")?;
        let (_, f) = self.frames.remove(i).context("answer gone")?;
        Ok(f.response()?)
    }

    /// Opens a channel of ours; Ok once it is open (DCEP done).
    async fn open(&mut self, label: &str) -> anyhow::Result<ChannelId> {
        let id = self.rtc.direct_api().create_data_channel(chan(label));
        self.ours.push(id);
        self.wait(label, |p| p.labels.contains_key(&id)).await?;
        Ok(id)
    }

    fn send(&mut self, id: ChannelId, bytes: &[u8]) -> anyhow::Result<()> {
        let mut ch = self.rtc.channel(id).context("channel not open")?;
        if !ch.write(true, bytes)? {
            bail!("SCTP send buffer full");
        }
        Ok(())
    }

    fn gw(&mut self, json: &str) -> anyhow::Result<()> {
        let id = self.gw.context("no moq-gw")?;
        let mut ch = self.rtc.channel(id).context("moq-gw not open")?;
        if !ch.write(false, json.as_bytes())? {
            bail!("SCTP send buffer full");
        }
        Ok(())
    }
}

/// `POST /webrtc` (application/sdp) on the relay's TCP port; the answer.
async fn post_offer(http: SocketAddr, offer: &str) -> anyhow::Result<String> {
    let mut s = tokio::net::TcpStream::connect(http).await.with_context(|| format!("POST /webrtc to {http}"))?;
    let req = format!(
        "POST /webrtc HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}",
        offer.len()
    );
    s.write_all(req.as_bytes()).await?;
    let mut reply = Vec::new();
    tokio::time::timeout(STEP, s.read_to_end(&mut reply)).await.context("POST /webrtc: no reply")??;
    let reply = String::from_utf8_lossy(&reply);
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    let status = head.split(' ').nth(1).unwrap_or("?");
    if status != "201" {
        bail!("POST /webrtc: {status} {}", body.trim());
    }
    Ok(body.to_owned())
}
