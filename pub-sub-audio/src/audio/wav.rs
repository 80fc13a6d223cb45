//! WAV in and out (`hound`), converted to and from the phone's 48 kHz mono
//! 16-bit signal, and a small frequency probe used by tests to check which
//! tone a recording contains.

use super::RATE;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: hound::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: hound::Error },
}

/// Reads any PCM WAV and returns 48 kHz mono i16 samples: channels are
/// averaged, other rates resampled linearly (adequate for speech and test
/// tones; the codec band-limits anyway).
pub fn read(path: &Path) -> Result<Vec<i16>, WavError> {
    let err = |source| WavError::Read { path: path.display().to_string(), source };
    let mut r = hound::WavReader::open(path).map_err(err)?;
    let spec = r.spec();
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => r.samples::<f32>().collect::<Result<_, _>>().map_err(err)?,
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            r.samples::<i32>().map(|s| s.map(|v| v as f32 * scale)).collect::<Result<_, _>>().map_err(err)?
        }
    };
    let ch = spec.channels.max(1) as usize;
    let mono: Vec<f32> = samples.chunks(ch).map(|c| c.iter().sum::<f32>() / ch as f32).collect();
    let out = resample(&mono, spec.sample_rate, RATE);
    Ok(out.into_iter().map(|v| (v.clamp(-1.0, 1.0) * 32767.0) as i16).collect())
}

/// Writes 48 kHz mono 16-bit PCM.
pub fn write(path: &Path, samples: &[i16]) -> Result<(), WavError> {
    let err = |source| WavError::Write { path: path.display().to_string(), source };
    let spec = hound::WavSpec { channels: 1, sample_rate: RATE, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec).map_err(err)?;
    for s in samples {
        w.write_sample(*s).map_err(err)?;
    }
    w.finalize().map_err(err)
}

fn resample(x: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to || x.is_empty() {
        return x.to_vec();
    }
    let n = (x.len() as u64 * to as u64 / from as u64) as usize;
    (0..n)
        .map(|i| {
            let pos = i as f64 * from as f64 / to as f64;
            let j = pos.floor() as usize;
            let frac = (pos - j as f64) as f32;
            let a = x[j.min(x.len() - 1)];
            let b = x[(j + 1).min(x.len() - 1)];
            a + (b - a) * frac
        })
        .collect()
}

/// The strongest frequency in `x` between 100 Hz and 4 kHz, by Goertzel
/// power on a 5 Hz grid. Used to check that a recording holds the other
/// party's test tone.
pub fn dominant_frequency(x: &[i16], rate: u32) -> f32 {
    let n = x.len().min(rate as usize); // one second is plenty
    let x = &x[..n];
    let mut best = (0.0f32, 0.0f64);
    let mut f = 100.0f32;
    while f <= 4000.0 {
        let w = 2.0 * std::f64::consts::PI * f as f64 / rate as f64;
        let coeff = 2.0 * w.cos();
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for v in x {
            let s = *v as f64 + coeff * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
        if power > best.1 {
            best = (f, power);
        }
        f += 5.0;
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_round_trip_and_resampling() {
        let dir = std::env::temp_dir().join(format!("psa-wav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tone: Vec<i16> =
            (0..48_000).map(|i| ((i as f32 * 600.0 * 2.0 * std::f32::consts::PI / 48_000.0).sin() * 10_000.0) as i16).collect();
        let p = dir.join("a.wav");
        write(&p, &tone).unwrap();
        let back = read(&p).unwrap();
        assert_eq!(back.len(), tone.len());
        assert_eq!(dominant_frequency(&back, 48_000), 600.0);
        // An 8 kHz stereo file comes back as 48 kHz mono at the same pitch.
        let spec = hound::WavSpec { channels: 2, sample_rate: 8_000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
        let p8 = dir.join("b.wav");
        let mut w = hound::WavWriter::create(&p8, spec).unwrap();
        for i in 0..8_000 {
            let v = ((i as f32 * 300.0 * 2.0 * std::f32::consts::PI / 8_000.0).sin() * 10_000.0) as i16;
            w.write_sample(v).unwrap();
            w.write_sample(v).unwrap();
        }
        w.finalize().unwrap();
        let up = read(&p8).unwrap();
        assert_eq!(up.len(), 48_000);
        assert_eq!(dominant_frequency(&up, 48_000), 300.0);
        assert!(read(&dir.join("missing.wav")).unwrap_err().to_string().contains("missing.wav"));
    }
}
