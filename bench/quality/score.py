#!/usr/bin/env python3
"""score.py SENT.wav RECEIVED.wav [options] -> one JSON object on stdout (issue 19, quality.md §2.3).

What a listener hears, from two recordings of one call direction: the speech the sender's capture
delivered (SENT) and what the listener's playout produced (RECEIVED), both 48 kHz mono. RECEIVED is
delayed by an unknown 20-2000 ms, may have gaps, and either file may be longer.

  1. delay: coarse cross-correlation of 10 ms RMS envelopes, then of the 48 kHz waveforms within
     +-30 ms of it; per 8 s window a fine lag again (+-300 ms around the global one).
  2. MOS: ITU-T P.862.2 wideband PESQ (MOS-LQO) at 16 kHz on each aligned ~8 s window.
  3. dropouts: stretches >= 20 ms where the sent speech is active (> -40 dBFS over 20 ms) and the
     received audio is >= 20 dB quieter than it (after the call's overall gain is taken out).
  4. recovery (with --outage-at/--outage-len): time from the link's return to the first received
     speech that matches the sent speech.

Exit 0 with the JSON; exit 2 with one line on stderr for bad input (missing file, not 48 kHz mono,
silent, too short, nothing in RECEIVED matches SENT). Keys: see bench/quality/README.md.
"""
import argparse
import json
import math
import os
import sys

try:
    import numpy as np
    from scipy.io import wavfile
    from scipy.signal import correlate, correlation_lags, resample_poly
except ImportError as _e:
    print(f"score.py: {_e}; run bench/quality/setup.sh and use target/quality-venv/bin/python", file=sys.stderr)
    sys.exit(2)

RATE = 48000            # both recordings
PESQ_RATE = 16000       # P.862.2 wideband
ENV_HOP = 480           # 10 ms envelope frames at 48 kHz
WINDOW_S = 8.0          # PESQ window (quality.md §2.3.4)
FINE_S = 0.030          # global fine search around the coarse lag
WINDOW_SEARCH_S = 0.300  # per-window lag search around the global lag
ACTIVE_DBFS = -40.0     # sent speech counts as active above this (20 ms mean power, full-scale sine = 0)
DROP_DB = 20.0          # received this much quieter than sent = near-silence
DROP_W = 320            # 20 ms at 16 kHz
EDGE = 16               # 1 ms at 16 kHz: a dropout's edges are placed to this
MIN_ENV_CORR = 0.2      # envelopes correlating below this: the recordings do not match at all
LOST_CORR = 0.3         # a window whose envelopes correlate below this (at its best lag) is "lost"
TRACK_HOP = 4000        # delay track: a lag every 250 ms (16 kHz) ...
TRACK_LEN = 16000       # ... from 1 s of sent speech around it ...
TRACK_SEARCH_S = 0.150  # ... within +-150 ms of its window's lag ...
TRACK_CORR = 0.5        # ... where it correlates this well (else the lag before it holds)
REC_SNIPPET = 1600      # recovery: 100 ms of received audio at 16 kHz ...
REC_CORR = 0.5          # ... must correlate this well with the sent speech
REC_STEP = 80           # ... tried every 5 ms
REC_SEARCH_S = 0.500    # ... at a lag within +-500 ms of the one before the outage
REC_MAX_S = 10.0        # give up 10 s after the link's return


class InputError(Exception):
    """Bad input: reported as one line, exit code 2."""


def load_wav(path, what):
    if not os.path.isfile(path):
        raise InputError(f"{what} {path}: no such file")
    try:
        rate, data = wavfile.read(path)
    except Exception as e:  # scipy raises ValueError and friends on a broken header
        raise InputError(f"{what} {path}: not a readable WAV ({e})") from None
    if rate != RATE:
        raise InputError(f"{what} {path}: {rate} Hz, expected {RATE} Hz")
    if data.ndim != 1:
        raise InputError(f"{what} {path}: {data.shape[1]} channels, expected mono")
    if data.dtype == np.uint8:
        x = (data.astype(np.float64) - 128.0) / 128.0
    elif np.issubdtype(data.dtype, np.integer):
        x = data.astype(np.float64) / float(-np.iinfo(data.dtype).min)
    else:
        x = data.astype(np.float64)
    if len(x) < RATE:
        raise InputError(f"{what} {path}: {len(x) / RATE:.2f} s, need at least 1 s")
    if np.sqrt(np.mean(x * x)) < 1e-4:  # -80 dBFS
        raise InputError(f"{what} {path}: silent (RMS below -80 dBFS)")
    return x


def dbfs(power):
    """Mean power -> dBFS (a full-scale sine is 0 dBFS)."""
    return 10.0 * np.log10(2.0 * np.maximum(power, 1e-13))


def moving_power(x, n):
    """Mean power of x[i:i+n] for every i in 0..len(x)-n."""
    c = np.concatenate(([0.0], np.cumsum(x * x)))
    return (c[n:] - c[:-n]) / n


def envelope(x, hop=ENV_HOP):
    n = len(x) // hop
    return np.sqrt(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1))


def envelope_corr(a, b):
    """Correlation of the 10 ms envelopes of two aligned 16 kHz segments (0 if either is flat)."""
    ea, eb = envelope(a, PESQ_RATE // 100), envelope(b, PESQ_RATE // 100)
    return float(np.corrcoef(ea, eb)[0, 1]) if np.std(ea) > 0 and np.std(eb) > 0 else 0.0


def segment(x, start, n):
    """x[start:start+n], zero-padded where it falls outside x."""
    out = np.zeros(n)
    a, b = max(start, 0), min(start + n, len(x))
    if b > a:
        out[a - start:b - start] = x[a:b]
    return out


def find_delay(sent, recv, min_lag, max_lag):
    """Global lag in samples (recv[n] ~ sent[n - lag]), the waveforms' normalised correlation there and
    the envelopes' (which survives a drifting or stretched delay that decorrelates the waveforms)."""
    es, er = envelope(sent), envelope(recv)
    es, er = es - es.mean(), er - er.mean()
    c = correlate(er, es, mode="full", method="fft")
    lags = correlation_lags(len(er), len(es), mode="full")
    overlap = np.minimum(len(er), lags + len(es)) - np.maximum(0, lags)
    ok = (lags * ENV_HOP >= min_lag) & (lags * ENV_HOP <= max_lag) & (overlap >= min(len(es), len(er)) // 4)
    if not ok.any():
        raise InputError("recordings too short for the delay range searched")
    score = np.where(ok, c / np.maximum(overlap, 1), -np.inf)
    k = int(lags[np.argmax(score)])
    coarse = k * ENV_HOP
    a, b = max(0, -k), min(len(es), len(er) - k)
    env_corr = float(np.corrcoef(es[a:b], er[a + k:b + k])[0, 1]) if b - a > 2 else 0.0
    # fine: 48 kHz waveforms, +-30 ms around the coarse lag (+ the envelope's 10 ms quantum)
    r = int(FINE_S * RATE) + ENV_HOP
    seg = segment(recv, coarse - r, len(sent) + 2 * r)
    c = correlate(seg, sent, mode="valid", method="fft")
    lag = coarse - r + int(np.argmax(c))
    a, b = max(0, -lag), min(len(sent), len(recv) - lag)
    s, d = sent[a:b], recv[a + lag:b + lag]
    corr = float(np.dot(s, d) / (np.linalg.norm(s) * np.linalg.norm(d) + 1e-12))
    return lag, corr, (env_corr if np.isfinite(env_corr) else 0.0)


def local_lag(ref, deg, start, n, lag0, search):
    """Best lag for ref[start:start+n] within lag0 +- search samples (same rate), by normalised xcorr."""
    seg = ref[start:start + n]
    region = segment(deg, start + lag0 - search, n + 2 * search)
    c = correlate(region, seg, mode="valid", method="fft")
    energy = moving_power(region, n) * n
    norm = c / (np.sqrt(energy * np.dot(seg, seg)) + 1e-12)
    k = int(np.argmax(norm))
    return lag0 - search + k, float(norm[k])


def windows(active, lo, hi):
    """Split [lo, hi) (16 kHz samples) into ~8 s windows, each boundary moved to the quietest 20 ms
    within +-1 s, so that a window rarely cuts a word."""
    span = hi - lo
    n = max(1, int(math.floor(span / (WINDOW_S * PESQ_RATE) + 0.5)))
    cuts = [lo]
    for i in range(1, n):
        c = lo + span * i // n
        a, b = max(c - PESQ_RATE, lo + 1), min(c + PESQ_RATE, hi - 1)
        cuts.append(a + int(np.argmin(active[a:b])) if b > a else c)
    cuts.append(hi)
    return list(zip(cuts[:-1], cuts[1:]))


def pesq_wb(ref, deg):
    from pesq import pesq, PesqError  # imported late: the CLI reports a missing venv clearly
    try:
        return float(pesq(PESQ_RATE, ref, deg, "wb", on_error=PesqError.RAISE_EXCEPTION)), None
    except Exception as e:  # NoUtterancesError, BufferTooShortError, ...
        return 1.0, type(e).__name__


def lag_track(ref16, deg16, pr, lo, hi, wins):
    """Lags (16 kHz samples) of the 250 ms blocks of [lo, hi) and the list of the reliable ones, so that
    a receiver whose delay moves (time-stretch, re-buffering) is followed within an 8 s window."""
    search, track, good = int(TRACK_SEARCH_S * PESQ_RATE), [], []
    for c in range(lo, hi, TRACK_HOP):
        wl = next((w for a, b, w in wins if a <= c < b), wins[-1][2])
        a = max(lo, c + TRACK_HOP // 2 - TRACK_LEN // 2)
        n = min(TRACK_LEN, hi - a)
        lag = None
        if n >= TRACK_HOP and np.mean(pr[a:a + n - DROP_W] > ACTIVE_DBFS) >= 0.3:
            lag, corr = local_lag(ref16, deg16, a, n, wl, search)
            lag = lag if corr >= TRACK_CORR else None
        if lag is not None:
            good.append(lag)
        track.append(lag if lag is not None else (track[-1] if track else wl))
    return track, good


def runs(mask):
    """(start, end) of each run of True in a boolean array."""
    d = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def dropouts(ref, deg):
    """Near-silent received stretches where the sent speech is active, on the aligned 16 kHz signals.
    Returns (list of (start, end) samples, gain dB of deg vs ref). Runs separated only by received
    near-silence (e.g. a long gap across the sent speech's own short pauses) are one dropout, whose span
    runs from its first missed speech to its last."""
    pr, pd = dbfs(moving_power(ref, DROP_W)), dbfs(moving_power(deg, DROP_W))
    active = pr > ACTIVE_DBFS
    if not active.any():
        return [], 0.0
    step = active[::DROP_W]  # non-overlapping frames for the gain estimate
    diff = (pd - pr)[::DROP_W][step]
    gain = float(np.median(diff[diff > -DROP_DB])) if (diff > -DROP_DB).any() else 0.0
    bad = active & (pd - gain < pr - DROP_DB)
    QUIET = 10 ** ((ACTIVE_DBFS + gain) / 10.0) / 2.0  # received power below -40 dBFS (gain-corrected)
    mark = np.zeros(len(ref) + 1, dtype=np.int64)  # window i covers samples i..i+DROP_W-1
    idx = np.flatnonzero(bad)
    np.add.at(mark, idx, 1)
    np.add.at(mark, idx + DROP_W, -1)
    merged, g = [], 10 ** (gain / 10)
    for s, e in runs(np.cumsum(mark)[: len(ref)] > 0):
        # the union of 20 ms windows reaches into received speech next to the gap (as far as a
        # window's speech part is 20 dB below the whole): trim to the 1 ms blocks that are themselves
        # 20 dB below the sent ones
        q = np.flatnonzero(moving_power(deg[s:e], EDGE) / g <= moving_power(ref[s:e], EDGE) / 10 ** (DROP_DB / 10))
        if len(q):
            s, e = s + q[0], s + q[-1] + EDGE
        # one dropout, not several, while the received audio stays quiet between two runs (a long gap
        # across the sent speech's own short pauses)
        if merged and np.max(moving_power(deg[merged[-1][1] - 1:s + 1], 2)) < QUIET:
            merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return merged, gain


def recovery(ref16, deg16, t_ret, lag0, gain):
    """First received position (16 kHz) >= t_ret whose first 5 ms are not near-silent and whose next
    100 ms correlate > REC_CORR with the sent speech at a lag within lag0 +- 500 ms.
    Returns (position or None, lag there, normalised correlation)."""
    search = int(REC_SEARCH_S * PESQ_RATE)
    floor = 10 ** ((ACTIVE_DBFS - 10.0 + gain) / 10.0) / 2.0  # power of -50 dBFS, gain-corrected
    end = min(len(deg16) - REC_SNIPPET, t_ret + int(REC_MAX_S * PESQ_RATE))
    for r in range(max(t_ret, 0), end, REC_STEP):
        lead = deg16[r:r + REC_STEP]
        if np.mean(lead * lead) < floor:
            continue
        snip = deg16[r:r + REC_SNIPPET]
        region = segment(ref16, r - lag0 - search, REC_SNIPPET + 2 * search)
        c = correlate(region, snip, mode="valid", method="fft")
        energy = moving_power(region, REC_SNIPPET) * REC_SNIPPET
        norm = c / (np.sqrt(energy * np.dot(snip, snip)) + 1e-12)
        k = int(np.argmax(norm))
        if norm[k] > REC_CORR:
            # region offset k holds ref[r - lag0 - search + k] = the sent sample heard at r
            return r, lag0 + search - k, float(norm[k])
    return None, None, None


def score(sent, recv, min_delay_ms=-1000.0, max_delay_ms=3000.0, start_offset_ms=0.0,
          outage_at=None, outage_len=None):
    """The whole analysis on two 48 kHz float arrays; returns the JSON-able dict."""
    lag, corr, env_corr = find_delay(sent, recv, int(min_delay_ms * RATE / 1000), int(max_delay_ms * RATE / 1000))
    if env_corr < MIN_ENV_CORR:
        raise InputError(f"received does not match sent (envelope correlation {env_corr:.3f} at best, "
                         f"{lag * 1000 / RATE:.1f} ms)")
    ref16, deg16 = resample_poly(sent, 1, 3), resample_poly(recv, 1, 3)
    lag16 = int(round(lag / 3))
    pr = dbfs(moving_power(ref16, DROP_W))
    # the part of SENT whose received counterpart lies inside RECEIVED (by the global lag), trimmed to speech
    lo, hi = max(0, -lag16), min(len(ref16), len(deg16) - lag16) - DROP_W
    act = np.flatnonzero(pr[lo:hi] > ACTIVE_DBFS) if hi > lo else np.array([], dtype=int)
    if len(act) == 0:
        raise InputError("no speech in the part of sent that received covers")
    lo, hi = max(lo, lo + act[0] - PESQ_RATE // 5), min(hi + DROP_W, lo + act[-1] + DROP_W + PESQ_RATE // 5)
    if hi - lo < 3 * PESQ_RATE:
        raise InputError(f"only {(hi - lo) / PESQ_RATE:.1f} s of sent speech is covered by received, need 3 s")
    speech_total = int(np.sum(pr > ACTIVE_DBFS))
    speech_scored = int(np.sum(pr[lo:hi - DROP_W] > ACTIVE_DBFS))

    wins, spans = [], []
    search = int(WINDOW_SEARCH_S * PESQ_RATE)
    for a, b in windows(pr, lo, hi):
        wl, wc = local_lag(ref16, deg16, a, b - a, lag16, search)
        ec = envelope_corr(ref16[a:b], segment(deg16, a + wl, b - a))
        if ec < LOST_CORR:  # nothing matches: score at the global lag, flag it
            wl = lag16
        spans.append((a, b, wl))
        mos, err = pesq_wb(ref16[a:b], segment(deg16, a + wl, b - a))
        wins.append({"start_s": round(a / PESQ_RATE, 3), "len_s": round((b - a) / PESQ_RATE, 3),
                     "lag_ms": round(wl * 1000 / PESQ_RATE, 2), "corr": round(wc, 3),
                     "envelope_corr": round(ec, 3), "mos": round(mos, 3), "lost": ec < LOST_CORR,
                     "error": err})
    mos = [w["mos"] for w in wins]
    # dropouts on RECEIVED aligned block by block along the delay track
    track, good = lag_track(ref16, deg16, pr, lo, hi, spans)
    aligned = np.zeros(hi - lo)
    for i, tl in enumerate(track):
        c = lo + i * TRACK_HOP
        n = min(TRACK_HOP, hi - c)
        aligned[c - lo:c - lo + n] = segment(deg16, c + tl, n)
    drops, gain = dropouts(ref16[lo:hi], aligned)
    good_ms = np.array(good if good else [lag16]) * 1000.0 / PESQ_RATE + start_offset_ms
    minutes = (hi - lo) / PESQ_RATE / 60.0
    drop_ms = [(e - s) * 1000.0 / PESQ_RATE for s, e in drops]
    out = {
        "sent_s": round(len(sent) / RATE, 3),
        "received_s": round(len(recv) / RATE, 3),
        "lag_ms": round(lag * 1000.0 / RATE, 2),
        "delay_ms": round(lag * 1000.0 / RATE + start_offset_ms, 2),
        "delay_corr": round(corr, 3),
        "envelope_corr": round(env_corr, 3),
        "delay_ms_p50": round(float(np.percentile(good_ms, 50)), 2),
        "delay_ms_p95": round(float(np.percentile(good_ms, 95)), 2),
        "delay_ms_min": round(float(good_ms.min()), 2),
        "delay_ms_max": round(float(good_ms.max()), 2),
        "delay_track_points": len(good),
        "delay_track_ms": [round(float(v), 1) for v in good_ms],
        "mos_median": round(float(np.median(mos)), 3),
        "mos_worst": round(min(mos), 3),
        "windows": len(wins),
        "windows_flagged": sum(1 for w in wins if w["lost"] or w["error"]),
        "scored_from_s": round(lo / PESQ_RATE, 3),
        "scored_s": round((hi - lo) / PESQ_RATE, 3),
        "speech_s": round(speech_scored / PESQ_RATE, 3),
        "unscored_speech_s": round((speech_total - speech_scored) / PESQ_RATE, 3),
        "gain_db": round(gain, 2),
        "dropouts": len(drops),
        "dropouts_per_min": round(len(drops) / minutes, 2),
        "dropout_ms": round(sum(drop_ms), 1),
        "dropout_ms_per_min": round(sum(drop_ms) / minutes, 1),
        "dropout_ms_max": round(max(drop_ms), 1) if drop_ms else 0.0,
        "dropout_starts_s": [round((lo + s) / PESQ_RATE, 3) for s, _ in drops],
        "window_detail": wins,
    }
    if outage_at is not None:
        t_ret = int(round((outage_at + outage_len) * PESQ_RATE))
        # the lag before the outage: the delay track's at the outage's start (sent timeline); the track
        # holds the last reliable lag through the silent outage
        t_sent = int(round(outage_at * PESQ_RATE)) - lag16
        lag0 = track[min(max((t_sent - lo) // TRACK_HOP, 0), len(track) - 1)]
        r, rlag, rcorr = recovery(ref16, deg16, t_ret, lag0, gain)
        # how long the sent speech itself paused after the return (recovery cannot beat that)
        after = np.flatnonzero(pr[max(t_ret - lag0, 0):] > ACTIVE_DBFS)
        out.update({
            "outage_at_s": outage_at, "outage_len_s": outage_len,
            "recovered": r is not None,
            "recovery_ms": round((r - t_ret) * 1000.0 / PESQ_RATE, 1) if r is not None else None,
            "recovery_lag_ms": round(rlag * 1000.0 / PESQ_RATE, 2) if r is not None else None,
            "recovery_corr": round(rcorr, 3) if r is not None else None,
            "outage_sent_pause_ms": round(after[0] * 1000.0 / PESQ_RATE, 1) if len(after) else None,
        })
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sent", help="what the sender's capture delivered, 48 kHz mono WAV")
    p.add_argument("received", help="what the listener's playout produced, 48 kHz mono WAV")
    p.add_argument("--min-delay-ms", type=float, default=-1000.0, help="lag search from (default -1000)")
    p.add_argument("--max-delay-ms", type=float, default=3000.0, help="lag search to (default 3000)")
    p.add_argument("--start-offset-ms", type=float, default=0.0,
                   help="wall-clock start of RECEIVED minus start of SENT, added to the lag (default 0)")
    p.add_argument("--outage-at", type=float, metavar="S",
                   help="outage start, seconds on RECEIVED's timeline (needs --outage-len)")
    p.add_argument("--outage-len", type=float, metavar="S", help="outage length in seconds")
    p.add_argument("--brief", action="store_true", help="leave out window_detail and dropout_starts_s")
    a = p.parse_args(argv)
    try:
        if (a.outage_at is None) != (a.outage_len is None):
            raise InputError("--outage-at and --outage-len go together")
        if a.outage_at is not None and (a.outage_at < 0 or a.outage_len <= 0):
            raise InputError("--outage-at must be >= 0 and --outage-len > 0")
        if a.min_delay_ms >= a.max_delay_ms:
            raise InputError("--min-delay-ms must be below --max-delay-ms")
        sent = load_wav(a.sent, "sent")
        recv = load_wav(a.received, "received")
        out = score(sent, recv, a.min_delay_ms, a.max_delay_ms, a.start_offset_ms, a.outage_at, a.outage_len)
    except InputError as e:
        print(f"score.py: {e}", file=sys.stderr)
        return 2
    except ImportError as e:
        print(f"score.py: {e}; run bench/quality/setup.sh and use target/quality-venv/bin/python", file=sys.stderr)
        return 2
    out = {"sent": a.sent, "received": a.received, **out}
    if a.brief:
        out.pop("window_detail")
        out.pop("dropout_starts_s")
        out.pop("delay_track_ms")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
