//! Opus through libopus (`audiopus`): 48 kHz mono, 20 ms frames, in-band FEC
//! so one lost packet can be rebuilt from the next, and PLC beyond that.
//!
//! FEC (LBRR) exists only in SILK and hybrid modes (RFC 6716 §2.1.7); a
//! tone may be coded in CELT, where `decode_fec` degenerates to PLC. So the
//! encoder can be told its signal is voice (`OPUS_SET_SIGNAL`), which keeps
//! it on SILK/hybrid, and tests of FEC use that (quality.md §7).

use super::FRAME;
use audiopus::coder::{Decoder, Encoder};
use audiopus::{packet::Packet, Application, Bitrate, Channels, MutSignals, SampleRate, Signal};

#[derive(Debug, thiserror::Error)]
#[error("opus: {0}")]
pub struct CodecError(#[from] audiopus::Error);

pub struct OpusEncoder {
    enc: Encoder,
    out: Vec<u8>,
}

impl OpusEncoder {
    /// VoIP mode, 56 kbit/s (audio/adapt.rs says why), FEC tuned for `expected_loss_percent`.
    pub fn new(expected_loss_percent: u8) -> Result<Self, CodecError> {
        let mut enc = Encoder::new(SampleRate::Hz48000, Channels::Mono, Application::Voip)?;
        enc.set_bitrate(Bitrate::BitsPerSecond(56_000))?;
        enc.set_inband_fec(true)?;
        enc.set_packet_loss_perc(expected_loss_percent.min(100))?;
        Ok(Self { enc, out: vec![0; 1500] })
    }

    /// As [`Self::new`], telling libopus the input is speech
    /// (`OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE)`): SILK/hybrid, so LBRR is sent.
    pub fn voice(expected_loss_percent: u8) -> Result<Self, CodecError> {
        let mut e = Self::new(expected_loss_percent)?;
        e.enc.set_signal(Signal::Voice)?;
        Ok(e)
    }

    /// Changes `OPUS_SET_PACKET_LOSS_PERC` during the call (the listener's
    /// report drives it, quality.md §4.2): more loss, more LBRR.
    pub fn set_expected_loss(&mut self, percent: u8) -> Result<(), CodecError> {
        self.enc.set_packet_loss_perc(percent.min(100))?;
        Ok(())
    }

    /// Changes the bitrate during the call (quality.md §4.2: more while
    /// LBRR takes a share of it).
    pub fn set_bitrate(&mut self, bits_per_second: u32) -> Result<(), CodecError> {
        self.enc.set_bitrate(Bitrate::BitsPerSecond(bits_per_second.clamp(6_000, 510_000) as i32))?;
        Ok(())
    }

    /// Encodes one 20 ms frame of exactly [`FRAME`] samples.
    pub fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, CodecError> {
        debug_assert_eq!(pcm.len(), FRAME);
        let n = self.enc.encode(pcm, &mut self.out)?;
        Ok(self.out[..n].to_vec())
    }
}

pub struct OpusDecoder {
    dec: Decoder,
}

impl OpusDecoder {
    pub fn new() -> Result<Self, CodecError> {
        Ok(Self { dec: Decoder::new(SampleRate::Hz48000, Channels::Mono)? })
    }

    /// Decodes into `samples` samples: libopus takes the output length as
    /// the frame size, which for FEC and PLC must be the missing duration.
    fn run(&mut self, packet: Option<&[u8]>, fec: bool, samples: usize) -> Result<Vec<i16>, CodecError> {
        let mut pcm = vec![0i16; samples];
        let packet = match packet {
            Some(p) => Some(Packet::try_from(p)?),
            None => None,
        };
        let n = self.dec.decode(packet, MutSignals::try_from(&mut pcm[..])?, fec)?;
        pcm.truncate(n);
        pcm.resize(samples, 0);
        Ok(pcm)
    }

    /// Decodes a received packet.
    pub fn decode(&mut self, packet: &[u8]) -> Result<Vec<i16>, CodecError> {
        self.run(Some(packet), false, FRAME)
    }

    /// Rebuilds the frame before `next` from the FEC data `next` carries.
    pub fn recover(&mut self, next: &[u8]) -> Result<Vec<i16>, CodecError> {
        self.recover_sized(next, FRAME)
    }

    /// FEC for a lost stretch of `samples` (a multiple of 2.5 ms) before `next`.
    pub fn recover_sized(&mut self, next: &[u8], samples: usize) -> Result<Vec<i16>, CodecError> {
        self.run(Some(next), true, samples)
    }

    /// Packet loss concealment: a plausible frame when nothing is available.
    pub fn conceal(&mut self) -> Result<Vec<i16>, CodecError> {
        self.conceal_sized(FRAME)
    }

    /// PLC for `samples` samples (a multiple of 2.5 ms).
    pub fn conceal_sized(&mut self, samples: usize) -> Result<Vec<i16>, CodecError> {
        self.run(None, false, samples)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f32, frames: usize) -> Vec<i16> {
        (0..frames * FRAME).map(|i| ((i as f32 * freq * 2.0 * std::f32::consts::PI / 48_000.0).sin() * 8000.0) as i16).collect()
    }

    #[test]
    fn round_trip_keeps_the_tone_and_fec_recovers_a_lost_frame() {
        let mut enc = OpusEncoder::new(10).unwrap();
        let mut dec = OpusDecoder::new().unwrap();
        let pcm = tone(440.0, 50);
        let packets: Vec<Vec<u8>> = pcm.chunks(FRAME).map(|f| enc.encode(f).unwrap()).collect();
        assert!(packets.iter().all(|p| !p.is_empty() && p.len() < 400));
        let mut out = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            // Lose frame 30; rebuild it from frame 31's FEC.
            if i == 30 {
                out.extend(dec.recover(&packets[31]).unwrap());
            } else {
                out.extend(dec.decode(p).unwrap());
            }
        }
        let rms = |s: &[i16]| (s.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / s.len() as f64).sqrt();
        let recovered = &out[30 * FRAME..31 * FRAME];
        assert!(rms(recovered) > 2000.0, "FEC frame is near silence: rms {}", rms(recovered));
        assert!(crate::audio::wav::dominant_frequency(&out[10 * FRAME..], 48_000).round() as i32 - 440 <= 5);
    }

    #[test]
    fn a_voice_encoder_sends_lbrr_that_rebuilds_a_lost_frame_closer_than_plc() {
        // A voiced, vowel-like signal (150 Hz with harmonics).
        let pcm: Vec<i16> = (0..30 * FRAME)
            .map(|i| {
                let t = i as f32 / 48_000.0;
                let w = |f: f32, a: f32| (t * f * 2.0 * std::f32::consts::PI).sin() * a;
                (w(150.0, 6000.0) + w(300.0, 3000.0) + w(450.0, 1500.0)) as i16
            })
            .collect();
        let mut enc = OpusEncoder::voice(20).unwrap();
        enc.set_expected_loss(25).unwrap();
        let packets: Vec<Vec<u8>> = pcm.chunks(FRAME).map(|f| enc.encode(f).unwrap()).collect();
        let rms = |s: &[i16]| (s.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / s.len() as f64).sqrt();
        let run = |fec: bool| {
            let mut dec = OpusDecoder::new().unwrap();
            for p in &packets[..20] {
                dec.decode(p).unwrap();
            }
            if fec {
                dec.recover_sized(&packets[21], FRAME).unwrap()
            } else {
                dec.conceal_sized(FRAME).unwrap()
            }
        };
        let (fec, plc) = (run(true), run(false));
        assert_eq!((fec.len(), plc.len()), (FRAME, FRAME));
        // Not a sample-wise comparison: PLC extends a steady tone well, and
        // LBRR is a coarser copy. What matters: LBRR was there and decoded
        // to the frame's level (a PLC-only decoder would give the same as PLC).
        assert_ne!(fec, plc, "LBRR was present: FEC is not PLC");
        let want = rms(&pcm[20 * FRAME..21 * FRAME]);
        assert!(rms(&fec) > 0.5 * want && rms(&fec) < 2.0 * want, "FEC rms {} vs {want}", rms(&fec));
    }
}
