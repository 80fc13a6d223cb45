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

/// What a phone plays into the call and whether it records.
#[derive(Debug, Clone, Default)]
pub struct MediaConfig {
    /// 48 kHz mono samples to send; silence after the end.
    pub play: Vec<i16>,
    pub record: bool,
    pub mapping: AudioMapping,
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
}

pub fn now_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

impl Media {
    pub fn new(cfg: MediaConfig) -> Result<Self, crate::audio::codec::CodecError> {
        Ok(Self {
            cfg,
            enc: OpusEncoder::new(5)?,
            dec: OpusDecoder::new()?,
            jb: JitterBuffer::new(2, 15),
            sent: 0,
            pos: 0,
            rec: Recording::default(),
            stamps: Default::default(),
        })
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
        let n = self.sent;
        self.sent += 1;
        Some((n, Bytes::from(loc::properties(now_us())), Bytes::from(opus)))
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
        let pcm = match self.jb.pop() {
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
