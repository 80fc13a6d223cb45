"""Tests for score.py with known answers (issue 19). Run with the venv:

    bash bench/quality/setup.sh && target/quality-venv/bin/python -m unittest discover -s bench/quality -v

The speech is party A's reference from speech.sh (espeak-ng + sox) when both are installed, else a
synthetic speech-like signal (harmonic syllables through formant resonators, words, pauses); which one
is printed first. QUALITY_SYNTHETIC=1 forces the synthetic one.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np
from scipy.io import wavfile
from scipy.signal import lfilter

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import score  # noqa: E402

RATE = score.RATE
FRAME = 960  # 20 ms


def synthetic_speech(seconds=26.0, seed=19):
    """Speech-like test signal at 48 kHz: syllables of a voiced harmonic source (f0 95-190 Hz, gliding)
    through two formant resonators, some with a noise onset; 2-4 syllables a word, 40-90 ms between
    words, 650 ms between ~2 s sentences, and no pause > 100 ms from 7 s to 16 s (as speech.sh)."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * RATE))
    t, sentence_end = 0.3, 0.3 + rng.uniform(1.8, 2.6)
    while t < seconds - 1.0:
        for _ in range(rng.integers(2, 5)):
            n = int(rng.uniform(0.14, 0.30) * RATE)
            f0 = np.linspace(rng.uniform(110, 190), rng.uniform(95, 150), n)
            phase = 2 * np.pi * np.cumsum(f0) / RATE
            src = sum(np.sin(k * phase) / k for k in range(1, 40))
            y = src
            for fc, bw in ((rng.uniform(300, 900), 90.0), (rng.uniform(900, 2600), 150.0)):
                r = np.exp(-np.pi * bw / RATE)
                y = lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * fc / RATE), r * r], y)
            if rng.random() < 0.4:  # fricative onset
                m = n // 4
                y[:m] += rng.normal(0, 0.3 * np.std(y), m) * np.linspace(1, 0, m)
            y *= np.hanning(n) ** 0.5 * rng.uniform(0.5, 1.0)
            a = int(t * RATE)
            if a + n >= len(out):
                break
            out[a:a + n] += y
            t += n / RATE + rng.uniform(0.0, 0.02)
        t += rng.uniform(0.04, 0.09)
        if t > sentence_end:
            if not 7.0 - 0.65 < t < 16.0:  # a long pause, except in the outage zone
                t += 0.65
            sentence_end = t + rng.uniform(1.8, 2.6)
    return 0.5 * out / np.max(np.abs(out))


def reference_speech():
    """(signal, source name)."""
    if os.environ.get("QUALITY_SYNTHETIC") != "1" and shutil.which("espeak-ng") and shutil.which("sox"):
        outdir = os.path.join(ROOT, "target", "quality")
        subprocess.run(["bash", os.path.join(HERE, "speech.sh"), outdir], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return score.load_wav(os.path.join(outdir, "a.wav"), "sent"), "espeak-ng (speech.sh a.wav)"
    return synthetic_speech(), "synthetic speech-like signal"


def delayed(x, ms, total=None):
    d = np.concatenate([np.zeros(int(round(ms * RATE / 1000))), x])
    if total is not None:
        d = np.concatenate([d, np.zeros(max(0, total - len(d)))])[:total]
    return d


def frame_dbfs(x, start, n):
    return score.dbfs(np.mean(x[start:start + n] ** 2))


class ScoreTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ref, cls.source = REF, SOURCE
        print(f"\ntest_score: speech = {cls.source}, {len(cls.ref) / RATE:.1f} s", file=sys.stderr)
        cls.same = score.score(cls.ref, cls.ref)

    def zero_speech_frames(self, fraction, delay_ms, seed=5):
        """A copy delayed by delay_ms with `fraction` of all its 20 ms frames zeroed, each chosen where
        the sent speech is loud (> -30 dBFS) in it and both neighbours, never next to another zeroed one.
        Returns (received, starts of the zeroed frames on the sent timeline, s)."""
        d = int(round(delay_ms * RATE / 1000))
        recv = delayed(self.ref, delay_ms)
        frames = len(recv) // FRAME
        ok = [i for i in range(1, frames - 1)
              if all(frame_dbfs(recv, (i + k) * FRAME, FRAME) > -30 for k in (-1, 0, 1))]
        rng = np.random.default_rng(seed)
        want, chosen = int(round(fraction * frames)), []
        for i in rng.permutation(ok):
            if all(abs(i - j) > 2 for j in chosen):
                chosen.append(int(i))
            if len(chosen) == want:
                break
        self.assertEqual(len(chosen), want, "not enough loud frames to zero")
        for i in chosen:
            recv[i * FRAME:(i + 1) * FRAME] = 0.0
        return recv, sorted((i * FRAME - d) / RATE for i in chosen)

    def test_identical(self):
        r = self.same
        self.assertEqual(r["lag_ms"], 0.0)
        self.assertEqual(r["delay_ms"], 0.0)
        self.assertGreater(r["mos_median"], 4.2)
        self.assertGreater(r["mos_worst"], 4.2)
        self.assertEqual(r["dropouts"], 0)
        self.assertEqual(r["windows_flagged"], 0)
        self.assertGreaterEqual(r["windows"], 2)
        for w in r["window_detail"]:
            self.assertTrue(5.0 <= w["len_s"] <= 11.0, w)  # ~8 s windows

    def test_delay_137ms(self):
        r = score.score(self.ref, delayed(self.ref, 137.0))
        self.assertAlmostEqual(r["delay_ms"], 137.0, delta=1.0)
        self.assertAlmostEqual(r["delay_ms_min"], 137.0, delta=1.0)
        self.assertAlmostEqual(r["delay_ms_max"], 137.0, delta=1.0)
        self.assertGreater(r["mos_median"], 4.2)
        self.assertEqual(r["dropouts"], 0)

    def test_start_offset_adds_to_lag(self):
        r = score.score(self.ref, delayed(self.ref, 250.0), start_offset_ms=-40.0)
        self.assertAlmostEqual(r["lag_ms"], 250.0, delta=1.0)
        self.assertAlmostEqual(r["delay_ms"], 210.0, delta=1.0)

    def test_long_delay_longer_received_with_noise(self):
        rng = np.random.default_rng(1)
        recv = delayed(self.ref, 1850.0, total=len(self.ref) + 4 * RATE) + rng.normal(0, 1e-4, len(self.ref) + 4 * RATE)
        r = score.score(self.ref, recv)
        self.assertAlmostEqual(r["delay_ms"], 1850.0, delta=1.0)
        self.assertEqual(r["unscored_speech_s"], 0.0)
        self.assertGreater(r["mos_median"], 3.5)  # PESQ docks even -77 dBFS noise (4.45 on espeak)

    def test_received_shorter_scores_only_what_it_covers(self):
        recv = delayed(self.ref, 500.0, total=len(self.ref) - 3 * RATE)
        r = score.score(self.ref, recv)
        self.assertAlmostEqual(r["delay_ms"], 500.0, delta=1.0)
        self.assertGreater(r["unscored_speech_s"], 1.0)
        self.assertEqual(r["dropouts"], 0)
        self.assertGreater(r["mos_median"], 4.2)

    def test_delay_that_moves(self):
        # the receiver's delay steps from 80 to 130 ms in a pause between sentences: the delay track
        # follows it, and the 8 s window holding the step makes no false dropouts
        pause = next(t for t in np.arange(14.0, 22.0, 0.01) if frame_dbfs(self.ref, int(t * RATE), RATE // 5) < -60)
        cut = int((pause + 0.1) * RATE)
        recv = delayed(self.ref, 80.0)
        recv = np.concatenate([recv[:cut], delayed(self.ref, 130.0, total=len(recv) + RATE)[cut:]])
        r = score.score(self.ref, recv)
        self.assertAlmostEqual(r["delay_ms_min"], 80.0, delta=1.0)
        self.assertAlmostEqual(r["delay_ms_max"], 130.0, delta=1.0)
        self.assertEqual(r["dropouts"], 0)
        self.assertGreater(r["mos_median"], 4.0)

    def test_clock_drift_300ppm(self):
        from scipy.signal import resample
        recv = delayed(resample(self.ref, int(len(self.ref) * 1.0003)), 80.0)
        r = score.score(self.ref, recv)
        self.assertAlmostEqual(r["delay_ms_min"], 80.0, delta=1.5)
        self.assertAlmostEqual(r["delay_ms_max"], 80.0 + 0.3 * len(self.ref) / RATE, delta=1.5)
        self.assertEqual(r["windows_flagged"], 0)
        self.assertEqual(r["dropouts"], 0)
        self.assertGreater(r["mos_median"], 4.2)

    def test_five_percent_zeroed_frames(self):
        recv, starts = self.zero_speech_frames(0.05, 60.0)
        r = score.score(self.ref, recv)
        self.assertAlmostEqual(r["delay_ms"], 60.0, delta=1.0)
        self.assertEqual(r["dropouts"], len(starts))
        self.assertAlmostEqual(r["dropout_ms"], 20.0 * len(starts), delta=1.5 * len(starts))
        self.assertAlmostEqual(r["dropout_ms_max"], 20.0, delta=1.5)
        for got, want in zip(r["dropout_starts_s"], starts):
            self.assertAlmostEqual(got, want, delta=0.0015)
        self.assertAlmostEqual(r["dropouts_per_min"], len(starts) / (r["scored_s"] / 60), delta=0.01)
        self.assertLess(r["mos_median"], self.same["mos_median"] - 0.5)
        print(f"test_score: 5 % zeroed: {len(starts)} dropouts, MOS median {r['mos_median']} "
              f"worst {r['mos_worst']} (identical {self.same['mos_median']})", file=sys.stderr)

    def test_gain_does_not_hide_or_make_dropouts(self):
        recv, starts = self.zero_speech_frames(0.02, 30.0, seed=7)
        r = score.score(self.ref, 0.3 * recv)  # -10.5 dB
        self.assertAlmostEqual(r["gain_db"], -10.46, delta=0.3)
        self.assertEqual(r["dropouts"], len(starts))

    def test_zeroed_silence_is_no_dropout(self):
        recv = delayed(self.ref, 20.0)
        quiet = [i for i in range(len(recv) // FRAME) if frame_dbfs(recv, i * FRAME, FRAME) < -60]
        self.assertGreater(len(quiet), 20)
        for i in quiet:
            recv[i * FRAME:(i + 1) * FRAME] = 0.0
        r = score.score(self.ref, recv)
        self.assertEqual(r["dropouts"], 0)
        self.assertGreater(r["mos_median"], 4.2)

    def outage_point(self, delay_ms, after_s):
        """A received time >= after_s where the (delayed) sent speech is loud for the next 100 ms."""
        recv = delayed(self.ref, delay_ms)
        t = int(after_s * RATE)
        while not all(frame_dbfs(recv, t + k * 240, 240) > -35 for k in range(20)):
            t += 240
        return t

    def test_two_second_gap_recovery(self):
        delay_ms, late_ms = 100.0, 150.0
        back = self.outage_point(delay_ms, 11.2)   # received speech is back here ...
        ret = back - int(late_ms * RATE / 1000)    # ... 150 ms after the link returned
        recv = delayed(self.ref, delay_ms)
        recv[ret - 2 * RATE:back] = 0.0
        r = score.score(self.ref, recv, outage_at=(ret - 2 * RATE) / RATE, outage_len=2.0)
        self.assertTrue(r["recovered"])
        self.assertAlmostEqual(r["recovery_ms"], late_ms, delta=5.0)
        self.assertAlmostEqual(r["recovery_lag_ms"], delay_ms, delta=1.0)
        self.assertEqual(r["dropouts"], 1)
        self.assertAlmostEqual(r["dropout_ms"], 2150.0, delta=120.0)  # minus sent pauses at its edges
        self.assertLess(r["mos_worst"], 3.0)
        print(f"test_score: 2 s gap: recovery {r['recovery_ms']} ms, MOS worst {r['mos_worst']}",
              file=sys.stderr)

    def test_recovery_at_a_new_delay(self):
        # the receiver comes back 40 ms deeper than before the outage (it re-buffered)
        back = self.outage_point(140.0, 11.3)
        ret = back - int(0.080 * RATE)
        recv = delayed(self.ref, 100.0)
        recv[back:] = delayed(self.ref, 140.0, total=len(recv))[back:]
        recv[ret - 2 * RATE:back] = 0.0
        r = score.score(self.ref, recv, outage_at=(ret - 2 * RATE) / RATE, outage_len=2.0)
        self.assertAlmostEqual(r["recovery_ms"], 80.0, delta=5.0)
        self.assertAlmostEqual(r["recovery_lag_ms"], 140.0, delta=1.0)

    def test_no_recovery(self):
        recv = delayed(self.ref, 100.0)
        recv[12 * RATE:] = 0.0
        r = score.score(self.ref, recv, outage_at=12.0, outage_len=2.0)
        self.assertFalse(r["recovered"])
        self.assertIsNone(r["recovery_ms"])


class CliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="score-test-")
        ref = REF
        cls.sent = cls.wav("sent.wav", ref)
        cls.recv = cls.wav("recv.wav", delayed(ref, 80.0))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir)

    @classmethod
    def wav(cls, name, x, rate=RATE):
        path = os.path.join(cls.dir, name)
        wavfile.write(path, rate, (np.clip(x, -1, 1) * 32767).astype(np.int16))
        return path

    def run_cli(self, *args):
        return subprocess.run([sys.executable, os.path.join(HERE, "score.py"), *args],
                              capture_output=True, text=True)

    def test_json_keys(self):
        p = self.run_cli(self.sent, self.recv, "--outage-at", "9", "--outage-len", "0.3")
        self.assertEqual(p.returncode, 0, p.stderr)
        out = json.loads(p.stdout)
        for key in ("delay_ms", "lag_ms", "delay_corr", "mos_median", "mos_worst", "windows",
                    "windows_flagged", "dropouts", "dropouts_per_min", "dropout_ms", "dropout_ms_per_min",
                    "speech_s", "scored_s", "gain_db", "window_detail", "recovered", "recovery_ms",
                    "delay_track_ms"):
            self.assertIn(key, out)
        self.assertAlmostEqual(out["delay_ms"], 80.0, delta=1.0)
        brief = json.loads(self.run_cli(self.sent, self.recv, "--brief").stdout)
        self.assertNotIn("window_detail", brief)
        self.assertNotIn("delay_track_ms", brief)
        self.assertEqual(len(out["delay_track_ms"]), out["delay_track_points"])
        self.assertNotIn("recovery_ms", brief)

    def assert_bad(self, p, words):
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertEqual(p.stdout, "")
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        self.assertIn(words, p.stderr)

    def test_missing_file(self):
        self.assert_bad(self.run_cli(self.sent, os.path.join(self.dir, "nope.wav")), "no such file")

    def test_wrong_rate(self):
        self.assert_bad(self.run_cli(self.wav("r44.wav", REF[:3 * 44100], 44100), self.recv),
                        "44100 Hz, expected 48000")

    def test_stereo(self):
        path = os.path.join(self.dir, "st.wav")
        wavfile.write(path, RATE, np.zeros((RATE * 2, 2), dtype=np.int16) + 100)
        self.assert_bad(self.run_cli(self.sent, path), "expected mono")

    def test_silent(self):
        self.assert_bad(self.run_cli(self.sent, self.wav("silent.wav", np.zeros(5 * RATE))), "silent")

    def test_not_a_wav(self):
        path = os.path.join(self.dir, "junk.wav")
        with open(path, "wb") as f:
            f.write(b"not a wav file at all" * 100)
        self.assert_bad(self.run_cli(path, self.recv), "not a readable WAV")

    def test_unrelated_signals(self):
        rng = np.random.default_rng(3)
        self.assert_bad(self.run_cli(self.sent, self.wav("noise.wav", rng.normal(0, 0.1, 20 * RATE))),
                        "does not match")

    def test_outage_args_together(self):
        self.assert_bad(self.run_cli(self.sent, self.recv, "--outage-at", "9"), "go together")


REF, SOURCE = None, None


def setUpModule():
    global REF, SOURCE
    REF, SOURCE = reference_speech()


if __name__ == "__main__":
    unittest.main()
