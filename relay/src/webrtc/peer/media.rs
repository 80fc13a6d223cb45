//! A peer's media and gateway messages: `moq-gw` messages from the page
//! (close, the audio bindings of docs/design/webrtc.md §3), datagrams to it,
//! and RTP both ways through `webrtc::audio` (RFC 7587 Opus over RTP).
//! Apart from `peer.rs` so that file keeps to the peer's life and channels.

use super::*;

impl Peer {
    pub(super) fn gateway(&mut self, m: GwMessage) {
        match m {
            GwMessage::Close { code, reason } => {
                tracing::info!(peer = %self.id, code, reason = super::super::signals::clip(&reason), "the page closed its session");
                self.end("the page closed its session");
            }
            GwMessage::AudioOut { alias, priority } => self.ingress.bind(alias, priority),
            GwMessage::AudioIn { alias } => self.egress.bind(alias),
        }
    }

    /// One datagram of the session's: RTP if it is the `audio-in` alias's.
    pub(super) fn datagram_out(&mut self, d: Bytes) {
        if let Some(alias) = self.egress.alias() {
            let theirs = moq_wire::datagram::Datagram::parse(d.clone()).is_ok_and(|p| p.track_alias == alias);
            if theirs {
                if let Some(rtp) = self.egress.datagram(d) {
                    self.rtp_out(rtp);
                }
                return;
            }
        }
        let _ = self.streams.send_datagram(d);
    }

    pub(super) fn rtp_out(&mut self, out: RtpOut) {
        let Some(mid) = self.audio_mid else { return };
        let Some(w) = self.rtc.writer(mid) else { return };
        let Some(pt) = w.payload_params().find(|p| p.spec().codec == Codec::Opus).map(|p| p.pt()) else { return };
        let time = MediaTime::new(self.rtp_offset + out.rtp_time, Frequency::FORTY_EIGHT_KHZ);
        match w.start_of_talkspurt(out.start_of_talkspurt).write(pt, Instant::now(), time, &out.payload[..]) {
            Ok(()) => {
                self.relay.metrics.webrtc_rtp_out.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::debug!(peer = %self.id, error = %e, "RTP write failed"),
        }
    }

    pub(super) fn rtp_in(&mut self, d: MediaData) {
        if Some(d.mid) != self.audio_mid {
            return;
        }
        let ago = Instant::now().saturating_duration_since(d.network_time);
        let p = RtpIn {
            rtp_time: d.time.numer(),
            payload: &d.data[..],
            arrival_unix_micros: unix_micros(SystemTime::now()).saturating_sub(ago.as_micros() as u64),
            sender_report: d.last_sender_info.map(|s| (unix_micros(s.ntp_time), s.rtp_time.numer())),
        };
        if let Some(datagram) = self.ingress.packet(p) {
            self.relay.metrics.webrtc_rtp_in.fetch_add(1, Ordering::Relaxed);
            let _ = self.ends.dgram_in.try_send(datagram);
        }
    }
}

pub(super) fn unix_micros(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

pub(super) fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    u32::from_be_bytes(b)
}
