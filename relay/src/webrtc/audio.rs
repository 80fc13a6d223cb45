//! RTP Opus ↔ LOC OBJECT_DATAGRAMs (docs/design/webrtc.md §3), sans-IO: the
//! shell passes str0m's `MediaData` fields as plain values and writes what
//! comes back with `rtc.writer(mid)`. No clock: arrival times are inputs.
//!
//! [`Ingress`] makes, from the browser's RTP, the bytes a WebTransport phone
//! sends for the same frames (docs/CALLS.md §6; `webapp/src/media/loc.ts`
//! `encodeAudioDatagram`, lines 73-83, called from `phone/callrun.ts` line
//! 265): frame counter n, one OBJECT_DATAGRAM (draft-ietf-moq-transport-18
//! §11.3.1) per 20 ms frame with Group n / 50, Object n mod 50, publisher
//! priority 128, the LOC Timestamp property (draft-ietf-moq-loc, 0x10,
//! µs since the Unix epoch) and the Opus packet (RFC 7587 §4.2: one RTP
//! payload is one Opus packet) as payload, on the alias the page bound with
//! `audio-out`. The other party cannot tell the browser is on WebRTC.
//!
//! [`Egress`] turns the datagrams of the subscription the page bound with
//! `audio-in` back into RTP: time = n · 960 on a 48 kHz clock (RFC 7587 §4.1:
//! the Opus RTP clock is always 48 kHz) that keeps running across binds.
//! Holes stay holes: Chromium's NetEQ conceals them (FEC, PLC) and is the
//! jitter buffer; the gateway keeps none.

use bytes::Bytes;
use moq_wire::datagram::{self, Datagram};
use moq_wire::loc;
use std::collections::VecDeque;

/// RTP clock rate of Opus (RFC 7587 §4.1).
pub const RATE: u64 = 48_000;
/// RTP ticks per 20 ms frame.
pub const FRAME: u64 = 960;
/// Frames per group on the `audio` track: a group per second (CALLS.md §6).
pub const FRAMES_PER_GROUP: u64 = 50;
/// Publisher priority of audio datagrams (loc.ts `AUDIO_PRIORITY`).
pub const AUDIO_PRIORITY: u8 = 128;
/// A jump of the frame number larger than this (5 s) is not loss but a new
/// stream (an RTP timestamp reset, a publisher restarting its counter): it is
/// numbered on from the last frame instead of leaving a hole of that size.
pub const MAX_GAP: u64 = 250;
/// Frames behind the newest that a late RTP packet may still fill in.
const REORDER_WINDOW: u64 = 64;
/// Aliases whose next frame number is remembered across binds.
const REMEMBERED: usize = 16;

/// Group and Object ID of frame `n` (CALLS.md §6; loc.ts `audioLocation`).
pub fn location(n: u64) -> (u64, u64) {
    (n / FRAMES_PER_GROUP, n % FRAMES_PER_GROUP)
}

/// The frame number of an audio object, if it is on the mapping.
pub fn frame(group: u64, object: u64) -> Option<u64> {
    if object >= FRAMES_PER_GROUP {
        return None;
    }
    group.checked_mul(FRAMES_PER_GROUP)?.checked_add(object)
}

/// One RTP packet from the browser, as str0m reports it (`MediaData`).
#[derive(Debug, Clone, Copy)]
pub struct RtpIn<'a> {
    /// RTP time on the 48 kHz clock, extended past the 32-bit wrap.
    pub rtp_time: u64,
    /// The Opus packet.
    pub payload: &'a [u8],
    /// When it arrived, µs since the Unix epoch.
    pub arrival_unix_micros: u64,
    /// The latest Sender Report (RFC 3550 §6.4.1), as (NTP time in µs since
    /// the Unix epoch, RTP time of that instant), once one arrived.
    pub sender_report: Option<(u64, u64)>,
}

/// Where frame numbers and capture times of the current bind are counted from.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    rtp: u64,
    n: u64,
    arrival_us: u64,
}

/// RTP in → OBJECT_DATAGRAMs out, for the alias bound with `audio-out`.
#[derive(Debug, Default)]
pub struct Ingress {
    alias: Option<u64>,
    priority: u8,
    anchor: Option<Anchor>,
    /// Highest frame number sent in this bind, and which of the
    /// REORDER_WINDOW below it were sent (bit i: newest − i).
    newest: Option<u64>,
    sent: u64,
    /// (alias, next frame number) of earlier binds, newest last: the
    /// counter is kept across hold, as the WebTransport phone keeps it.
    next: VecDeque<(u64, u64)>,
}

impl Ingress {
    pub fn new() -> Self {
        Self { priority: AUDIO_PRIORITY, ..Self::default() }
    }

    /// `{"t":"audio-out","alias":A|null,"priority":P}`. Rebinding the same
    /// alias only changes the priority; another alias (or after null) starts
    /// from the next frame number that alias had, else 0, anchored on the
    /// first RTP packet that follows.
    pub fn bind(&mut self, alias: Option<u64>, priority: u8) {
        self.priority = priority;
        if alias == self.alias {
            return;
        }
        if let (Some(old), Some(newest)) = (self.alias, self.newest) {
            self.next.retain(|(a, _)| *a != old);
            self.next.push_back((old, newest + 1));
            if self.next.len() > REMEMBERED {
                self.next.pop_front();
            }
        }
        self.alias = alias;
        self.anchor = None;
        self.newest = None;
        self.sent = 0;
    }

    /// The bound alias, if any.
    pub fn alias(&self) -> Option<u64> {
        self.alias
    }

    /// One RTP packet → the OBJECT_DATAGRAM to hand to the session's datagram
    /// inbox, or `None` (nothing bound, empty payload, late or duplicate).
    pub fn packet(&mut self, p: RtpIn<'_>) -> Option<Bytes> {
        let alias = self.alias?;
        if p.payload.is_empty() {
            return None;
        }
        let n = self.number(alias, &p)?;
        let anchor = self.anchor?;
        let capture_us = match p.sender_report {
            Some((ntp_us, sr_rtp)) => shift(ntp_us, ticks_between(sr_rtp, p.rtp_time)),
            None => shift(anchor.arrival_us, i64::try_from(i128::from(p.rtp_time) - i128::from(anchor.rtp)).unwrap_or(0)),
        };
        let (group_id, object_id) = location(n);
        let props = loc::properties(capture_us);
        let mut out = Vec::with_capacity(p.payload.len() + 24);
        let f = datagram::Fields {
            track_alias: alias,
            group_id,
            object_id,
            publisher_priority: Some(self.priority),
            end_of_group: false,
            properties: &props,
            status: None,
            payload: p.payload,
        };
        datagram::encode(&f, &mut out);
        Some(out.into())
    }

    /// The frame number of `p` in this bind, or `None` for one already sent
    /// or too late. Re-anchors when RTP time does not count in whole frames
    /// (other ptime, a timestamp jump), or jumps more than [`MAX_GAP`].
    fn number(&mut self, alias: u64, p: &RtpIn<'_>) -> Option<u64> {
        let Some(a) = self.anchor else {
            let n = self.next.iter().find(|(x, _)| *x == alias).map_or(0, |(_, n)| *n);
            return self.anchor_at(n, p);
        };
        let newest = self.newest.unwrap_or(a.n);
        let d = i128::from(p.rtp_time) - i128::from(a.rtp);
        let n = i128::from(a.n) + d / i128::from(FRAME);
        if d % i128::from(FRAME) != 0 || n > i128::from(newest) + i128::from(MAX_GAP) || n < i128::from(newest) - i128::from(MAX_GAP) {
            tracing::debug!(rtp_time = p.rtp_time, anchor = a.rtp, "RTP time off the 20 ms grid or jumped: numbered by arrival");
            return self.anchor_at(newest + 1, p);
        }
        let n = u64::try_from(n).ok()?;
        if n > newest {
            let shift = n - newest;
            self.sent = if shift >= 64 { 0 } else { self.sent << shift };
            self.sent |= 1;
            self.newest = Some(n);
            return Some(n);
        }
        let back = newest - n;
        if back >= REORDER_WINDOW || self.sent & (1 << back) != 0 {
            return None;
        }
        self.sent |= 1 << back;
        Some(n)
    }

    fn anchor_at(&mut self, n: u64, p: &RtpIn<'_>) -> Option<u64> {
        self.anchor = Some(Anchor { rtp: p.rtp_time, n, arrival_us: p.arrival_unix_micros });
        self.newest = Some(n);
        self.sent = 1;
        Some(n)
    }
}

/// RTP ticks from `from` to `to`, taken modulo 2³² as a signed 32-bit
/// difference, so that a Sender Report's RTP time compares correctly with an
/// extended packet time whether or not the shell extended it.
fn ticks_between(from: u64, to: u64) -> i64 {
    i64::from(to.wrapping_sub(from) as u32 as i32)
}

/// `us` moved by `ticks` of the 48 kHz clock, not below 0.
fn shift(us: u64, ticks: i64) -> u64 {
    let d = ticks.saturating_mul(1_000_000) / RATE as i64;
    us.saturating_add_signed(d)
}

/// One RTP packet for str0m's writer (`.start_of_talkspurt(..).write(pt,
/// now, MediaTime::new(rtp_time, 48 kHz), payload)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpOut {
    pub rtp_time: u64,
    pub payload: Bytes,
    /// Sets the RTP marker bit (RFC 3551 §4.1): the first packet after a bind
    /// or a jump, so the browser's jitter buffer resynchronises.
    pub start_of_talkspurt: bool,
}

/// Datagrams of the alias bound with `audio-in` → RTP.
#[derive(Debug, Default)]
pub struct Egress {
    alias: Option<u64>,
    /// (frame number, RTP time) of the first frame written in this bind.
    base: Option<(u64, u64)>,
    last_n: Option<u64>,
    /// RTP time of the last packet written, over all binds.
    last_rtp: Option<u64>,
}

impl Egress {
    pub fn new() -> Self {
        Self::default()
    }

    /// `{"t":"audio-in","alias":M|null}`. The same alias again changes nothing.
    pub fn bind(&mut self, alias: Option<u64>) {
        if alias != self.alias {
            self.alias = alias;
            self.base = None;
            self.last_n = None;
        }
    }

    /// The bound alias: the shell's datagram sink sends datagrams of this
    /// alias here and all others to `moq-dgram`.
    pub fn alias(&self) -> Option<u64> {
        self.alias
    }

    /// One datagram for the session → an RTP packet, or `None` (another
    /// alias, unparsable, a status, not on the frame mapping, late or
    /// duplicate).
    pub fn datagram(&mut self, raw: Bytes) -> Option<RtpOut> {
        let d = Datagram::parse(raw).ok()?;
        if Some(d.track_alias) != self.alias || d.datagram_type & datagram::STATUS != 0 {
            return None;
        }
        let payload = d.payload();
        if payload.is_empty() {
            return None;
        }
        let n = frame(d.group_id, d.object_id)?;
        let rebase = match self.last_n {
            None => true,
            Some(last) if n <= last => {
                if last - n <= MAX_GAP {
                    return None; // late or duplicate: NetEQ has concealed it already
                }
                true // the publisher counts from a lower number now
            }
            Some(last) => n - last > MAX_GAP,
        };
        if rebase {
            self.base = None;
        }
        let (n0, rtp0) = *self.base.get_or_insert((n, self.last_rtp.map_or(0, |r| r + FRAME)));
        let rtp_time = rtp0 + (n - n0) * FRAME;
        self.last_n = Some(n);
        self.last_rtp = Some(rtp_time);
        Some(RtpOut { rtp_time, payload, start_of_talkspurt: rebase })
    }
}

#[cfg(test)]
#[path = "audio_tests.rs"]
mod tests;
