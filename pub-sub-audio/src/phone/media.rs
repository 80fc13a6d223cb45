//! The per-call audio pump, driven by the call's 20 ms tick: encode the next
//! frame of what we play and send it; pop the jitter buffer, decode, record.

use crate::audio::codec::{OpusDecoder, OpusEncoder};
use crate::audio::jitter::{JitterBuffer, Playout, Stats};
use crate::audio::{loc, FRAME};
use bytes::Bytes;

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

/// Result of the audio path of one call.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    pub samples: Vec<i16>,
    pub stats: Stats,
    /// Mouth-to-ear latency samples in ms (capture timestamp to playout).
    pub latency_ms: Vec<f64>,
}

pub struct Media {
    cfg: MediaConfig,
    enc: OpusEncoder,
    dec: OpusDecoder,
    jb: JitterBuffer,
    sent: u64,
    pos: usize,
    rec: Recording,
    /// Capture timestamps by frame number, to measure mouth-to-ear latency.
    stamps: std::collections::HashMap<u64, u64>,
    /// Live endpoint's playout side and whether it speaks Opus.
    sink: Option<(tokio::sync::mpsc::Sender<AudioFrame>, bool)>,
    /// Live PCM not yet making a whole 20 ms frame.
    pending_pcm: Vec<i16>,
}

pub fn now_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
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
            enc: OpusEncoder::new(5)?,
            dec: OpusDecoder::new()?,
            jb: JitterBuffer::new(2, 15),
            sent: 0,
            pos: 0,
            rec: Recording::default(),
            stamps: Default::default(),
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
        (n, Bytes::from(loc::properties(now_us())), opus)
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

    /// A received audio object. Malformed objects are logged and dropped.
    pub fn incoming(&mut self, group: u64, object: u64, properties: &[u8], payload: &[u8]) {
        match loc::decode(properties, payload) {
            Ok(f) => {
                let seq = group * self.cfg.mapping.per_group() + object;
                if let Some(ts) = f.capture_us {
                    self.stamps.insert(seq, ts);
                }
                self.jb.push(seq, f.opus);
            }
            Err(e) => tracing::warn!(error = %e, "dropping malformed audio object"),
        }
    }

    /// One 20 ms playout step.
    pub fn playout(&mut self) {
        let step = self.jb.pop();
        if let Some((sink, true)) = self.sink.clone() {
            // Opus passthrough: the gateway's own decoder conceals gaps.
            if let Playout::Frame(p) = step {
                if let Some(seq) = self.jb.last_seq() {
                    self.note_latency(seq);
                }
                let _ = sink.try_send(AudioFrame::Opus(Bytes::from(p)));
            }
            return;
        }
        let idle = matches!(step, Playout::Idle);
        let pcm = match step {
            Playout::Idle => vec![0; FRAME],
            Playout::Frame(p) => {
                if let Some(seq) = self.jb.last_seq() {
                    self.note_latency(seq);
                }
                let pcm = self.dec.decode(&p).or_else(|_| self.dec.conceal());
                pcm.unwrap_or_else(|_| vec![0; FRAME])
            }
            Playout::Fec(next) => self.dec.recover(&next).or_else(|_| self.dec.conceal()).unwrap_or_else(|_| vec![0; FRAME]),
            Playout::Conceal => self.dec.conceal().unwrap_or_else(|_| vec![0; FRAME]),
        };
        if self.cfg.record {
            self.rec.samples.extend_from_slice(&pcm);
        }
        if let Some((sink, _)) = &self.sink {
            if !idle {
                let _ = sink.try_send(AudioFrame::Pcm(pcm));
            }
        }
    }

    /// Records the latency of a frame as it is played (best effort).
    pub fn note_latency(&mut self, seq: u64) {
        if let Some(ts) = self.stamps.remove(&seq) {
            self.rec.latency_ms.push(now_us().saturating_sub(ts) as f64 / 1000.0);
        }
    }

    pub fn mapping(&self) -> AudioMapping {
        self.cfg.mapping
    }

    pub fn finish(mut self) -> Recording {
        self.rec.stats = self.jb.stats;
        self.rec
    }
}
