//! The per-call audio pump, driven by the call's 20 ms tick: encode the next
//! frame of what we play and send it; play out what arrived.
//!
//! Playout is the shell of the sans-IO [`Controller`]
//! (docs/design/quality.md §3.3): an arriving object goes to the controller
//! with its arrival time (read here, from a monotonic clock) and its packet
//! is kept by frame number while the controller holds it; each 20 ms pull
//! asks the controller for ops until the FIFO of decoded PCM holds a pull's
//! worth, carries them out with libopus (decode, FEC from the next packet,
//! PLC) and the [`Stretcher`] (accelerate / expand), and plays 960 samples.
//! An Opus-passthrough sink (chan_moq) gets packets instead of PCM:
//! decodes pass through, and a stretch is only done on a silent packet
//! (≤ 12 bytes), by dropping it or sending it twice (§3.4).
//!
//! Feedback and adaptation (§4): every arriving frame number feeds the
//! [`LossMeter`], whose report the call's keepalives carry ([`Media::rx_report`]);
//! the peer's report sets the encoder ([`Media::peer_report`], the pure
//! policy [`adapt`]) and how far back a whole older frame rides along in
//! each object as REDUNDANT_FRAME. Received copies go to the controller's
//! redundant-frame input and are decoded when it says `DecodeRedundant`.

use crate::audio::adapt::{adapt, AdaptState, EncoderSettings};
use crate::audio::codec::{OpusDecoder, OpusEncoder};
use crate::audio::feedback::{LossMeter, Report};
pub use crate::audio::playout::Stats;
use crate::audio::playout::{Controller, Op};
use crate::audio::stretch::{Kind, Stretcher};
use crate::audio::{loc, FRAME};
use bytes::Bytes;
use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

/// How audio frames map to MoQ objects (docs/CALLS.md §6, §8). Both ends
/// of a call must use the same one; datagrams are the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AudioMapping {
    /// One OBJECT_DATAGRAM per frame; group = frame / 50, object = frame % 50.
    #[default]
    Datagram,
    /// One group per `n` frames, each group on its own subgroup stream
    /// (`n` = 1: a stream per frame).
    Streams(u64),
}

impl AudioMapping {
    /// Frames per group.
    pub fn per_group(self) -> u64 {
        match self {
            AudioMapping::Datagram => 50,
            AudioMapping::Streams(n) => n.max(1),
        }
    }
}

/// One 20 ms frame exchanged with a live audio endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioFrame {
    /// 48 kHz mono samples (any length; re-framed to 20 ms for Opus).
    Pcm(Vec<i16>),
    /// An Opus packet, passed through without transcoding.
    Opus(Bytes),
}

/// Live audio instead of a file: a gateway (chan_moq) hands the call what
/// its own side captures and takes what the peer says, at its own pace.
/// Sending is driven by `from_user` (no 20 ms tick), so the gateway's clock
/// paces the stream and no drift builds up between two clocks.
#[derive(Debug)]
pub struct LivePort {
    pub from_user: tokio::sync::mpsc::Receiver<AudioFrame>,
    /// Played-out frames; dropped when the gateway falls behind.
    pub to_user: tokio::sync::mpsc::Sender<AudioFrame>,
    /// Both directions carry Opus packets (the gateway speaks Opus).
    pub opus: bool,
}

/// What a phone plays into the call and whether it records.
#[derive(Debug, Default)]
pub struct MediaConfig {
    /// 48 kHz mono samples to send; silence after the end (ignored with `live`).
    pub play: Vec<i16>,
    pub record: bool,
    pub mapping: AudioMapping,
    pub live: Option<LivePort>,
}

/// What the sender did with the peer's reports (quality.md §4.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SenderStats {
    /// Reports heard from the peer.
    pub reports: u64,
    /// The encoder's expected loss % at the end, and the highest it reached.
    pub loss_perc: u8,
    pub max_loss_perc: u8,
    /// Highest REDUNDANT_FRAME distance used.
    pub max_k: u8,
    /// Objects sent carrying a REDUNDANT_FRAME.
    pub redundant_sent: u64,
}

/// Result of the audio path of one call.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    pub samples: Vec<i16>,
    pub stats: Stats,
    pub sender: SenderStats,
    /// Mouth-to-ear latency samples in ms (capture timestamp to playout).
    pub latency_ms: Vec<f64>,
}

/// An Opus packet of at most this many bytes is silence (or comfort noise):
/// the only packets an Opus passthrough may drop or repeat (§3.4).
const SILENT_PACKET: usize = 12;

/// Packets sent lately, for REDUNDANT_FRAME (the largest distance used).
const SENT_KEPT: usize = 2;

/// A received packet kept for the controller, with its LOC capture time.
struct Packet {
    opus: Bytes,
    capture_us: Option<u64>,
}

pub struct Media {
    cfg: MediaConfig,
    enc: OpusEncoder,
    dec: OpusDecoder,
    ctl: Controller,
    /// Packets by frame number, while the controller holds them.
    packets: BTreeMap<u64, Packet>,
    /// REDUNDANT_FRAME copies by frame number, while the controller holds them.
    copies: BTreeMap<u64, Bytes>,
    meter: LossMeter,
    adapt: AdaptState,
    settings: EncoderSettings,
    /// The last packets sent, newest last, by frame number.
    sent_packets: VecDeque<(u64, Bytes)>,
    stretcher: Stretcher,
    /// Decoded PCM not yet played.
    fifo: VecDeque<i16>,
    /// The controller's clock origin (arrival times are ms since).
    origin: Instant,
    /// Opus passthrough: a silent packet to send again (an expand).
    repeat: Option<Bytes>,
    sent: u64,
    pos: usize,
    rec: Recording,
    /// Live endpoint's playout side and whether it speaks Opus.
    sink: Option<(tokio::sync::mpsc::Sender<AudioFrame>, bool)>,
    /// Live PCM not yet making a whole 20 ms frame.
    pending_pcm: Vec<i16>,
}

pub fn now_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

fn to_f32(pcm: &[i16]) -> Vec<f32> {
    pcm.iter().map(|&s| s as f32 / 32768.0).collect()
}

fn to_i16(pcm: &[f32]) -> impl Iterator<Item = i16> + '_ {
    pcm.iter().map(|&v| (v * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
}

impl Media {
    /// Builds the pump; a live port's capture side is returned for the
    /// caller's event loop to poll.
    pub fn new(mut cfg: MediaConfig) -> Result<(Self, Option<tokio::sync::mpsc::Receiver<AudioFrame>>), crate::audio::codec::CodecError> {
        let (sink, source) = match cfg.live.take() {
            Some(l) => (Some((l.to_user, l.opus)), Some(l.from_user)),
            None => (None, None),
        };
        let media = Self {
            cfg,
            enc: OpusEncoder::new(EncoderSettings::default().loss_perc)?,
            dec: OpusDecoder::new()?,
            ctl: Controller::default(),
            packets: BTreeMap::new(),
            copies: BTreeMap::new(),
            meter: LossMeter::new(),
            adapt: AdaptState::default(),
            settings: EncoderSettings::default(),
            sent_packets: VecDeque::with_capacity(SENT_KEPT + 1),
            stretcher: Stretcher::new(),
            fifo: VecDeque::with_capacity(4 * FRAME),
            origin: Instant::now(),
            repeat: None,
            sent: 0,
            pos: 0,
            rec: Recording::default(),
            sink,
            pending_pcm: Vec::new(),
        };
        Ok((media, source))
    }

    pub fn is_live(&self) -> bool {
        self.sink.is_some()
    }

    /// Frames to send for what a live endpoint captured: Opus passes
    /// through; PCM is re-framed to 20 ms and encoded.
    pub fn live_outgoing(&mut self, frame: AudioFrame) -> Vec<(u64, Bytes, Bytes)> {
        let mut out = Vec::new();
        match frame {
            AudioFrame::Opus(p) => out.push(self.stamp(p)),
            AudioFrame::Pcm(pcm) => {
                self.pending_pcm.extend_from_slice(&pcm);
                while self.pending_pcm.len() >= FRAME {
                    let rest = self.pending_pcm.split_off(FRAME);
                    let frame = std::mem::replace(&mut self.pending_pcm, rest);
                    match self.enc.encode(&frame) {
                        Ok(p) => out.push(self.stamp(Bytes::from(p))),
                        Err(e) => tracing::warn!(error = %e, "encode failed; frame skipped"),
                    }
                }
            }
        }
        out
    }

    fn stamp(&mut self, opus: Bytes) -> (u64, Bytes, Bytes) {
        let n = self.sent;
        self.sent += 1;
        let k = self.settings.k as u64;
        let copy = (k > 0).then(|| self.sent_packets.iter().find(|(m, _)| *m + k == n)).flatten();
        let props = loc::properties_with(now_us(), copy.map(|(_, p)| (k, &p[..])));
        self.rec.sender.redundant_sent += copy.is_some() as u64;
        self.sent_packets.push_back((n, opus.clone()));
        if self.sent_packets.len() > SENT_KEPT {
            self.sent_packets.pop_front();
        }
        (n, Bytes::from(props), opus)
    }

    /// Milliseconds on the controller's clock.
    fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    /// What our keepalives tell the peer about its audio (quality.md §4.1);
    /// `None` before its first frame.
    pub fn rx_report(&mut self) -> Option<Report> {
        let now = self.now_ms();
        self.meter.report(&self.ctl.stats(), now)
    }

    /// The peer's report on our audio: re-tunes the encoder and the
    /// redundancy from the next frame (quality.md §4.2).
    pub fn peer_report(&mut self, rx: &Report) {
        let now = self.now_ms();
        let s = adapt(rx, &mut self.adapt, now);
        if s.loss_perc != self.settings.loss_perc {
            if let Err(e) = self.enc.set_expected_loss(s.loss_perc) {
                tracing::warn!(error = %e, "cannot set the expected loss");
            }
        }
        if s.bitrate != self.settings.bitrate {
            if let Err(e) = self.enc.set_bitrate(s.bitrate) {
                tracing::warn!(error = %e, "cannot set the bitrate");
            }
        }
        if s != self.settings {
            tracing::debug!(loss = rx.loss, burst = rx.burst, loss_perc = s.loss_perc, bitrate = s.bitrate, k = s.k, "encoder adapted");
        }
        self.settings = s;
        let st = &mut self.rec.sender;
        st.reports += 1;
        st.loss_perc = s.loss_perc;
        st.max_loss_perc = st.max_loss_perc.max(s.loss_perc);
        st.max_k = st.max_k.max(s.k);
    }

    /// The encoder settings in force.
    pub fn settings(&self) -> EncoderSettings {
        self.settings
    }

    /// The next frame to send: (frame number, LOC properties, Opus packet).
    pub fn next_outgoing(&mut self) -> Option<(u64, Bytes, Bytes)> {
        let mut pcm = vec![0i16; FRAME];
        if self.pos < self.cfg.play.len() {
            let end = (self.pos + FRAME).min(self.cfg.play.len());
            pcm[..end - self.pos].copy_from_slice(&self.cfg.play[self.pos..end]);
            self.pos = end;
        }
        let opus = match self.enc.encode(&pcm) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "encode failed; frame skipped");
                return None;
            }
        };
        Some(self.stamp(Bytes::from(opus)))
    }

    /// A received audio object (arrival time: now). Malformed objects are
    /// logged and dropped. Returns true when playout was idle and this
    /// object can start it: the caller may pull at once instead of at its
    /// next tick (quality.md §3.3 "Shells").
    pub fn incoming(&mut self, group: u64, object: u64, properties: &[u8], payload: &[u8]) -> bool {
        let f = match loc::decode(properties, payload) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "dropping malformed audio object");
                return false;
            }
        };
        let Some(n) = group.checked_mul(self.cfg.mapping.per_group()).and_then(|g| g.checked_add(object)) else {
            tracing::debug!(group, object, "audio object number out of range; dropped");
            return false;
        };
        let now_ms = self.now_ms();
        self.meter.on_arrival(n, now_ms);
        let idle = self.ctl.is_idle();
        let keep = self.ctl.on_object(n, f.capture_us, now_ms);
        if keep {
            self.packets.insert(n, Packet { opus: Bytes::copy_from_slice(&f.opus), capture_us: f.capture_us });
        }
        if let Some(r) = f.redundant {
            if let Some(m) = n.checked_sub(r.k) {
                if self.ctl.on_redundant(m, now_ms) {
                    self.copies.insert(m, Bytes::from(r.opus));
                }
            }
        }
        self.forget();
        idle && keep
    }

    /// Drops the packets and copies the controller no longer holds (bounded by it).
    fn forget(&mut self) {
        if self.packets.len() > self.ctl.held_len() {
            let ctl = &self.ctl;
            self.packets.retain(|n, _| ctl.holds(*n));
        }
        if self.copies.len() > self.ctl.redundant_len() {
            let ctl = &self.ctl;
            self.copies.retain(|n, _| ctl.holds_redundant(*n));
        }
    }

    /// One 20 ms playout step.
    pub fn playout(&mut self) {
        if let Some((sink, true)) = self.sink.clone() {
            self.playout_opus(&sink);
            return;
        }
        let mut idle = false;
        while (self.fifo.len() as u64) < FRAME as u64 && self.ctl.fifo_samples() < FRAME as u64 {
            let op = self.ctl.next();
            if op == Op::Idle {
                idle = self.fifo.is_empty();
                break;
            }
            self.run(op);
        }
        self.forget();
        let mut pcm: Vec<i16> = self.fifo.drain(..FRAME.min(self.fifo.len())).collect();
        pcm.resize(FRAME, 0);
        self.ctl.pulled(FRAME as u64);
        if self.cfg.record {
            self.rec.samples.extend_from_slice(&pcm);
        }
        if let Some((sink, _)) = &self.sink {
            if !idle {
                let _ = sink.try_send(AudioFrame::Pcm(pcm));
            }
        }
    }

    /// Carries out one op into the FIFO.
    fn run(&mut self, op: Op) {
        let ahead = self.fifo.len();
        let pcm = match op {
            Op::Idle => return,
            Op::Decode(n) | Op::Accelerate { n, .. } | Op::Expand(n) => {
                let Some(p) = self.packets.remove(&n) else {
                    // The controller and the store disagree (cannot happen): conceal.
                    self.fifo.extend(self.dec.conceal().unwrap_or_else(|_| vec![0; FRAME]));
                    if !matches!(op, Op::Decode(_)) {
                        self.ctl.stretched(n, 0);
                    }
                    return;
                };
                self.note_latency(p.capture_us, ahead);
                let pcm = self.dec.decode(&p.opus).or_else(|_| self.dec.conceal()).unwrap_or_else(|_| vec![0; FRAME]);
                let kind = match op {
                    Op::Accelerate { fast: true, .. } => Kind::FastAccelerate,
                    Op::Accelerate { .. } => Kind::Accelerate,
                    Op::Expand(_) => Kind::Expand,
                    _ => {
                        self.stretcher.observe(&to_f32(&pcm));
                        self.fifo.extend(pcm);
                        return;
                    }
                };
                let (out, o) = self.stretcher.stretch(&to_f32(&pcm), kind);
                self.ctl.stretched(n, o.delta as i64);
                self.fifo.extend(to_i16(&out));
                return;
            }
            Op::DecodeFec { from, .. } => match self.packets.get(&from) {
                Some(p) => self.dec.recover_sized(&p.opus, FRAME).or_else(|_| self.dec.conceal()),
                None => self.dec.conceal(),
            },
            Op::DecodeRedundant(n) => match self.copies.remove(&n) {
                Some(p) => self.dec.decode(&p).or_else(|_| self.dec.conceal()),
                None => self.dec.conceal(),
            },
            Op::Conceal(_) => self.dec.conceal(),
        };
        self.fifo.extend(pcm.unwrap_or_else(|_| vec![0; FRAME]));
    }

    /// Opus passthrough: one packet per pull — a REDUNDANT_FRAME copy as it
    /// came — none for a FEC/PLC slot (the gateway's decoder conceals);
    /// stretches only on silent packets.
    fn playout_opus(&mut self, sink: &tokio::sync::mpsc::Sender<AudioFrame>) {
        if self.ctl.fifo_samples() >= FRAME as u64 {
            if let Some(p) = self.repeat.take() {
                let _ = sink.try_send(AudioFrame::Opus(p));
            }
            self.ctl.pulled(FRAME as u64);
            return;
        }
        loop {
            let op = self.ctl.next();
            let n = match op {
                Op::Idle => break,
                Op::Decode(n) | Op::Accelerate { n, .. } | Op::Expand(n) => n,
                Op::DecodeRedundant(n) => {
                    if let Some(p) = self.copies.remove(&n) {
                        let _ = sink.try_send(AudioFrame::Opus(p));
                    }
                    break;
                }
                _ => break,
            };
            let Some(p) = self.packets.remove(&n) else { break };
            self.note_latency(p.capture_us, 0);
            let silent = p.opus.len() <= SILENT_PACKET;
            match op {
                Op::Accelerate { .. } if silent => {
                    self.ctl.stretched(n, -(FRAME as i64));
                    continue;
                }
                Op::Expand(_) if silent => {
                    self.ctl.stretched(n, FRAME as i64);
                    self.repeat = Some(p.opus.clone());
                }
                Op::Accelerate { .. } | Op::Expand(_) => self.ctl.stretched(n, 0),
                _ => {}
            }
            let _ = sink.try_send(AudioFrame::Opus(p.opus));
            break;
        }
        self.forget();
        self.ctl.pulled(FRAME as u64);
    }

    /// Records the mouth-to-ear latency of a frame about to play after
    /// `ahead` samples already in the FIFO (best effort: same host clock).
    fn note_latency(&mut self, capture_us: Option<u64>, ahead: usize) {
        if let Some(ts) = capture_us {
            let ms = now_us().saturating_sub(ts) as f64 / 1000.0 + ahead as f64 / 48.0;
            self.rec.latency_ms.push(ms);
        }
    }

    pub fn mapping(&self) -> AudioMapping {
        self.cfg.mapping
    }

    pub fn finish(mut self) -> Recording {
        self.rec.stats = self.ctl.stats();
        self.rec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1 s of a 220 Hz tone at 48 kHz.
    fn tone() -> Vec<i16> {
        (0..48_000).map(|i| ((i as f64 * 220.0 * std::f64::consts::TAU / 48_000.0).sin() * 8_000.0) as i16).collect()
    }

    #[test]
    fn a_burst_of_two_is_played_from_redundant_copies_and_reported_as_loss() {
        let (mut tx, _) = Media::new(MediaConfig { play: tone(), ..Default::default() }).unwrap();
        let (mut rx, _) = Media::new(MediaConfig::default()).unwrap();
        // The listener reports bursty loss.
        tx.peer_report(&Report { loss: 50, burst: 30, ..Report::default() });
        assert_eq!(tx.settings(), EncoderSettings { loss_perc: 8, bitrate: 64_000, fec: true, k: 2 });
        let frames: Vec<_> = std::iter::from_fn(|| tx.next_outgoing()).take(40).collect();
        let lost = [20, 21];
        let mut deliver = frames.iter().filter(|(n, _, _)| !lost.contains(n));
        // Three frames ahead of playout, then one per pull.
        for (n, props, opus) in deliver.by_ref().take(3) {
            rx.incoming(n / 50, n % 50, props, opus);
        }
        for (n, props, opus) in deliver {
            rx.incoming(n / 50, n % 50, props, opus);
            rx.playout();
        }
        let st = rx.ctl.stats();
        assert_eq!((st.redundant, st.concealed), (2, 0), "{st:?}");
        let report = rx.rx_report().unwrap();
        assert_eq!((report.n, report.loss, report.burst, report.red), (39, 50, 20, 2));
        let sent = tx.finish().sender;
        assert_eq!((sent.reports, sent.max_k, sent.max_loss_perc, sent.redundant_sent), (1, 2, 8, 38));
    }

    #[test]
    fn no_redundancy_until_a_report_asks_for_it() {
        let (mut tx, _) = Media::new(MediaConfig { play: tone(), ..Default::default() }).unwrap();
        for _ in 0..5 {
            let (_, props, opus) = tx.next_outgoing().unwrap();
            assert_eq!(loc::decode(&props, &opus).unwrap().redundant, None);
        }
        assert_eq!(tx.settings(), EncoderSettings::default());
    }
}
