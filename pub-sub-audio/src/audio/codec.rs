//! Opus through libopus (`audiopus`): 48 kHz mono, 20 ms frames, in-band FEC
//! so one lost packet can be rebuilt from the next, and PLC beyond that.

use super::FRAME;
use audiopus::coder::{Decoder, Encoder};
use audiopus::{packet::Packet, Application, Bitrate, Channels, MutSignals, SampleRate};

#[derive(Debug, thiserror::Error)]
#[error("opus: {0}")]
pub struct CodecError(#[from] audiopus::Error);

pub struct OpusEncoder {
    enc: Encoder,
    out: Vec<u8>,
}

impl OpusEncoder {
    /// VoIP mode, 32 kbit/s, FEC tuned for `expected_loss_percent`.
    pub fn new(expected_loss_percent: u8) -> Result<Self, CodecError> {
        let mut enc = Encoder::new(SampleRate::Hz48000, Channels::Mono, Application::Voip)?;
        enc.set_bitrate(Bitrate::BitsPerSecond(32_000))?;
        enc.set_inband_fec(true)?;
        enc.set_packet_loss_perc(expected_loss_percent.min(100))?;
        Ok(Self { enc, out: vec![0; 1500] })
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

    fn run(&mut self, packet: Option<&[u8]>, fec: bool) -> Result<Vec<i16>, CodecError> {
        let mut pcm = vec![0i16; FRAME];
        let packet = match packet {
            Some(p) => Some(Packet::try_from(p)?),
            None => None,
        };
        let n = self.dec.decode(packet, MutSignals::try_from(&mut pcm[..])?, fec)?;
        pcm.truncate(n);
        pcm.resize(FRAME, 0);
        Ok(pcm)
    }

    /// Decodes a received packet.
    pub fn decode(&mut self, packet: &[u8]) -> Result<Vec<i16>, CodecError> {
        self.run(Some(packet), false)
    }

    /// Rebuilds the frame before `next` from the FEC data `next` carries.
    pub fn recover(&mut self, next: &[u8]) -> Result<Vec<i16>, CodecError> {
        self.run(Some(next), true)
    }

    /// Packet loss concealment: a plausible frame when nothing is available.
    pub fn conceal(&mut self) -> Result<Vec<i16>, CodecError> {
        self.run(None, false)
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
}
