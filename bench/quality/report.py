"""bench/quality/report.py DIR [--md FILE] [--plots DIR]: the quality harness's table and plots.

Reads DIR/calls.jsonl (one JSON object per call direction, or per failed call, written by run.mjs)
and DIR/meta.json (machine, versions, command), and writes the Markdown report (bench/QUALITY.md)
and PNG plots (quality-mos-vs-loss.png, quality-delay-cdf-PROFILE.png, quality-mos-by-profile.png).
Design: docs/design/quality.md §2.4. Aggregation per (profile, path, link side) over the runs:
MOS median = median of the runs' median-window MOS, MOS worst = the lowest run's; mouth-to-ear
p50/p95 over the pooled delay-track points of all runs; dropouts/min, receiver counters per minute
and recovery: median of the runs (recovery "never" if any run did not recover).
"""
import argparse
import json
import os
import re
import statistics
import sys

PATH_ORDER = ["moq-moq", "wt-wt", "rtc-wt", "pbx-echo", "ref-rtc"]
OURS = ["wt-wt", "moq-moq"]
REF = "ref-rtc"
SIDES = ["sender", "listener"]
# pbx-echo's one direction: the page hears itself through Echo() (A's link crossed twice).
ROW_SIDES = SIDES + ["loop"]
LOSS_X = [("clean", 0), ("loss1", 1), ("loss3", 3), ("loss5", 5), ("loss10", 10)]
CDF_PROFILES = ["clean", "jitter60", "loss2-jitter20"]


def load(dirname):
    rows = []
    with open(os.path.join(dirname, "calls.jsonl")) as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    meta_path = os.path.join(dirname, "meta.json")
    meta = json.load(open(meta_path)) if os.path.exists(meta_path) else {}
    return rows, meta


def pct(values, p):
    """Nearest-rank style percentile by linear interpolation; None for no values."""
    v = sorted(values)
    if not v:
        return None
    k = (len(v) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def per_min(count, played_ms):
    if count is None or not played_ms:
        return None
    return count / (played_ms / 60000.0)


def aggregate(rows):
    """{(profile, path, side): cell} with the figures of the table; failures counted per (profile, path)."""
    cells, failures = {}, {}
    for r in rows:
        key = (r["profile"], r["path"])
        if not r.get("ok"):
            failures.setdefault(key, []).append(r.get("error", "?"))
            continue
        cells.setdefault((r["profile"], r["path"], r["side"]), []).append(r)
    out = {}
    for key, rs in cells.items():
        s = [r["score"] for r in rs]
        rec = [r.get("receiver") or {} for r in rs]
        track = [v for x in s for v in (x.get("delay_track_ms") or [x["delay_ms_p50"]])]

        def med(vals):
            vals = [v for v in vals if v is not None]
            return statistics.median(vals) if vals else None

        def counter(name):
            return med([per_min(c.get(name), c.get("played_ms")) for c in rec])

        recovery = None
        if any("recovered" in x for x in s):
            if all(x.get("recovered") for x in s):
                recovery = med([x.get("recovery_ms") for x in s])
            else:
                recovery = "never"
        out[key] = {
            "runs": len(rs),
            "mos_median": med([x["mos_median"] for x in s]),
            "mos_worst": min(x["mos_median"] for x in s),
            "m2e_p50": pct(track, 50),
            "m2e_p95": pct(track, 95),
            "dropouts_min": med([x["dropouts_per_min"] for x in s]),
            "underruns_min": counter("underruns"),
            "fec_min": counter("fec"),
            "concealed_s_min": med([per_min(c.get("concealed_ms"), c.get("played_ms")) for c in rec]),
            "recovery_ms": recovery,
            "first_audio_ms": med([c.get("first_audio_ms") for c in rec]),
            "ended": sorted({c.get("ended") for c in rec if c.get("ended") and c.get("ended") != "hangup" and c.get("ended") != "hangup by peer"}),
            "track": track,
            "load1": med([r.get("load1") for r in rs]),
        }
        if out[key]["concealed_s_min"] is not None:
            out[key]["concealed_s_min"] /= 1000.0
    return out, failures


def reason(e, n=300):
    """A failure's reason for a table cell: no terminal colours, one line, no pipes, at most n characters."""
    e = re.sub(r"\x1b\[[0-9;]*m", "", e)
    e = " ".join(e.split()).replace("|", "/")
    return e if len(e) <= n else e[: n - 1] + "…"


def fmt(v, nd=0, unit=""):
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    return f"{v:.{nd}f}{unit}"


def verdicts(agg, profiles):
    """The issue's done-when checks (point 2) for each of ours against ref-rtc, per profile and side.

    Returns a list of (profile, path, side, check, ours, ref, verdict) with verdict 'pass', 'FAIL'
    or 'n/a' (a figure missing, e.g. the path or the reference did not run or failed).
    """
    out = []
    for prof in profiles:
        for path in OURS:
            for side in SIDES:
                c = agg.get((prof, path, side))
                r = agg.get((prof, REF, side))
                if c is None:
                    continue

                def check(name, ours, ref, ok):
                    v = "n/a" if ours is None or (ref is None and "ref" in name) else ("pass" if ok() else "FAIL")
                    out.append((prof, path, side, name, ours, ref, v))

                rm = r["mos_median"] if r else None
                check("MOS ≥ ref", c["mos_median"], rm, lambda: c["mos_median"] >= rm)
                rd = r["m2e_p50"] if r else None
                check("m2e p50 < ref", c["m2e_p50"], rd, lambda: c["m2e_p50"] < rd)
                if prof == "clean":
                    check("MOS ≥ 4.0", c["mos_median"], None, lambda: c["mos_median"] >= 4.0)
                if prof == "loss2-jitter20":
                    check("underruns ≤ 1/min", c["underruns_min"], None, lambda: c["underruns_min"] <= 1.0)
                if prof == "outage2s":
                    ours = c["recovery_ms"]
                    ref = r["recovery_ms"] if r else None
                    num = lambda x: float("inf") if x == "never" else x  # noqa: E731
                    check("recovery ≤ 300 ms", ours, None, lambda: num(ours) <= 300)
                    check("recovery ≤ ref", ours, ref, lambda: num(ours) <= num(ref))
    return out


def markdown(rows, meta, agg, failures, plots):
    profiles = [p for p in meta.get("options", {}).get("profiles", []) or sorted({r["profile"] for r in rows})]
    paths = [p for p in PATH_ORDER if any(r["path"] == p for r in rows)]
    m = meta.get("machine", {})
    v = meta.get("versions", {})
    o = meta.get("options", {})
    lines = [
        "# Call quality on impaired links (issue 19)",
        "",
        *([f"> **{meta['label']}**", ""] if meta.get("label") else []),
        f"Generated by `{meta.get('command', 'bench/quality/run')}` on {meta.get('date', '?')} at commit "
        f"`{meta.get('commit', '?')}`{' (with uncommitted changes)' if meta.get('dirty') else ''}; "
        f"{o.get('runs', '?')} run(s) per profile and path. Machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, "
        f"{m.get('memGiB', '?')} GiB, Linux {m.get('kernel', '?')}. Versions: {v.get('chromium', '?')}, coturn {v.get('coturn', '?')}, "
        f"libopus {v.get('libopus', '?')}, {v.get('espeak', '?').split('  Data at')[0].strip()}, pesq {v.get('pesq', '?')}, Node {v.get('node', '?')}. "
        f"Median 1-min load average before the calls: {fmt(statistics.median([r['load1'] for r in rows if r.get('load1') is not None]) if any(r.get('load1') is not None for r in rows) else None, 2)}.",
        "",
        "Measured builds: " + ", ".join(f"`{k}` ({v})" for k, v in meta.get("builds", {}).items()) + "." if meta.get("builds") else "",
        "",
        "How: each call's media crosses `moq-bench impair` (bench/src/link.rs; user space, this kernel has no",
        "netem): party A's link has the profile both ways, party B's is `clean` (10 ms each way, as every",
        "profile's base). **sender** = B hears A (the loss is on the talker's link), **listener** = A hears B.",
        "Speech: `bench/quality/speech.sh` (espeak-ng Harvard sentences, 48 kHz). Scored by",
        "`bench/quality/score.py` (README there: what PESQ and a correlation delay can and cannot say):",
        "MOS = ITU-T P.862.2 wideband MOS-LQO (identical signals: 4.64); m2e = mouth-to-ear by cross-correlation",
        "of the sent and heard audio, anchored by each recording's first-sample wall clock; dropouts = silence",
        "≥ 20 ms where speech was due; underruns / FEC / concealed = the receiver's own counters; recovery = time",
        "from the link's return after an outage until the received speech matches again. Paths:",
        "`moq-moq` two moq-phone processes via moq-relay (raw QUIC); `wt-wt` two Chromium web phones",
        "(WebTransport); `ref-rtc` two Chromiums in a plain peer-to-peer WebRTC call through coturn (UDP,",
        "relay-only ICE; NetEQ), the reference; `rtc-wt` the web phone's WebRTC fallback calling a WebTransport page;",
        "`pbx-echo` a page through chan_moq to Asterisk Echo().",
        "",
        "Caveats. The browser paths' reference is each page's capture tap (after getUserMedia's echo",
        "cancellation, noise suppression and gain control), moq-moq's is the WAV itself: compare MOS between",
        "browser paths (wt-wt against ref-rtc: the same capture pipeline), and moq-moq with itself across",
        "profiles. moq-moq's mouth-to-ear is anchored on the phones' output lines (±20 ms, one tick) until",
        "moq-phone writes first-sample times (`--record` sidecar). The fake microphone loops its file, so on",
        "browser paths an outage need not fall on continuous speech (score.py's `outage_sent_pause_ms` in",
        "calls.jsonl says how long the sent speech paused after the return). With one run per profile",
        "(`--quick`) median and worst are the same call. The two sides carry different voices (sender rows: A's",
        "`en-us+m3`, listener rows: B's `en-us+f2`), which PESQ rates differently even on a clean link: compare",
        "a side across paths and profiles, not the sender's row with the listener's.",
        "",
    ]
    checks = verdicts(agg, profiles)
    if checks:
        lines += ["## Done-when checks (issue 19, point 2)", "",
                  "| profile | path | side | check | ours | ref-rtc | verdict |", "|---|---|---|---|---|---|---|"]
        for prof, path, side, name, ours, ref, verdict in checks:
            nd = 2 if "MOS" in name else 0
            lines.append(f"| {prof} | {path} | {side} | {name} | {fmt(ours, nd)} | {fmt(ref, nd)} | {verdict} |")
        n_fail = sum(1 for c in checks if c[6] == "FAIL")
        n_pass = sum(1 for c in checks if c[6] == "pass")
        lines += ["", f"{n_pass} pass, {n_fail} fail, {len(checks) - n_pass - n_fail} not measurable.", ""]
    if plots:
        lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    lines += ["## Per profile", "",
              "Columns: MOS median / worst (of the runs' median windows), mouth-to-ear p50 / p95 (ms), dropouts per",
              "minute, the receiver's underruns / FEC-recovered frames per minute and concealed seconds per minute,",
              "recovery after the outage (ms), first audio after the answer (ms: from the page's \"established\" to",
              "its first 10 ms of playout above -50 dBFS; browser paths; it includes the time the talker's looping",
              "file takes to reach speech, so it is an upper bound), runs scored. `–` = not measured on that path.", ""]
    for prof in profiles:
        lines += [f"### {prof}", "",
                  "| path | side | MOS med | MOS worst | m2e p50 | m2e p95 | dropouts/min | underruns/min | FEC/min | concealed s/min | recovery ms | first audio ms | runs | notes |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for path in paths:
            fails = failures.get((prof, path), [])
            for side in ROW_SIDES:
                c = agg.get((prof, path, side))
                if c is None:
                    continue
                notes = "; ".join(f"ended: {e}" for e in c["ended"])
                lines.append(
                    f"| {path} | {side} | {fmt(c['mos_median'], 2)} | {fmt(c['mos_worst'], 2)} | {fmt(c['m2e_p50'])} | "
                    f"{fmt(c['m2e_p95'])} | {fmt(c['dropouts_min'], 1)} | {fmt(c['underruns_min'], 1)} | {fmt(c['fec_min'], 1)} | "
                    f"{fmt(c['concealed_s_min'], 2)} | {fmt(c['recovery_ms'])} | {fmt(c['first_audio_ms'])} | {c['runs']} | {notes} |")
            for e in fails:
                lines.append(f"| {path} | – | failed | | | | | | | | | | | {reason(e)} |")
        lines.append("")
    return "\n".join(lines)


def plot(agg, profiles, outdir):
    """Writes the PNGs; returns their file names (relative to outdir). Needs matplotlib (setup.sh)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    files = []
    paths = [p for p in PATH_ORDER if any(k[1] == p for k in agg)]
    colors = {p: f"C{i}" for i, p in enumerate(PATH_ORDER)}
    xs = [(n, x) for n, x in LOSS_X if n in profiles]
    if len(xs) >= 2:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for path in paths:
            for side, style in (("sender", "-"), ("listener", "--"), ("loop", ":")):
                pts = [(x, agg[(n, path, side)]["mos_median"]) for n, x in xs if (n, path, side) in agg]
                if pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], style, marker="o", color=colors[path], label=f"{path} ({side}'s link)")
        ax.set_xlabel("random loss on party A's link, % (each way)")
        ax.set_ylabel("PESQ MOS-LQO (P.862.2), median of runs")
        ax.set_ylim(1, 4.7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.set_title("What the listener hears vs loss")
        fig.tight_layout()
        fig.savefig(os.path.join(outdir, "quality-mos-vs-loss.png"), dpi=110)
        plt.close(fig)
        files.append("quality-mos-vs-loss.png")
    for prof in CDF_PROFILES:
        if prof not in profiles:
            continue
        fig, ax = plt.subplots(figsize=(7, 4.5))
        drawn = False
        for path in paths:
            for side, style in (("sender", "-"), ("listener", "--")):
                c = agg.get((prof, path, side))
                if not c or not c["track"]:
                    continue
                t = sorted(c["track"])
                ax.plot(t, [(i + 1) / len(t) for i in range(len(t))], style, color=colors[path], label=f"{path} ({side})")
                drawn = True
        if not drawn:
            plt.close(fig)
            continue
        ax.set_xlabel("mouth-to-ear delay, ms (delay track, every 250 ms)")
        ax.set_ylabel("fraction")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.set_title(f"Mouth-to-ear delay CDF, profile {prof}")
        fig.tight_layout()
        name = f"quality-delay-cdf-{prof}.png"
        fig.savefig(os.path.join(outdir, name), dpi=110)
        plt.close(fig)
        files.append(name)
    present = [p for p in profiles if any(k[0] == p for k in agg)]
    if present:
        fig, ax = plt.subplots(figsize=(max(7, len(present) * 1.1), 4.5))
        series = [(path, side) for path in paths for side in ROW_SIDES if any((p, path, side) in agg for p in present)]
        w = 0.8 / max(1, len(series))
        for i, (path, side) in enumerate(series):
            ys = [agg[(p, path, side)]["mos_median"] if (p, path, side) in agg else 0 for p in present]
            ax.bar([j + i * w for j in range(len(present))], ys, w, color=colors[path], alpha=1.0 if side == "sender" else 0.55,
                   hatch=None if side == "sender" else "//", label=f"{path} ({side})")
        ax.set_xticks([j + 0.4 - w / 2 for j in range(len(present))])
        ax.set_xticklabels(present, rotation=30, ha="right")
        ax.set_ylabel("PESQ MOS-LQO, median of runs")
        ax.set_ylim(1, 4.7)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        fig.savefig(os.path.join(outdir, "quality-mos-by-profile.png"), dpi=110)
        plt.close(fig)
        files.append("quality-mos-by-profile.png")
    return files


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dir", help="run.mjs's output directory (calls.jsonl, meta.json)")
    p.add_argument("--md", default="bench/QUALITY.md", help="where the report goes")
    p.add_argument("--plots", default="bench", help="where the PNGs go (the report links them relative to --md)")
    p.add_argument("--label", help="a note under the title (e.g. what was measured); default: QUALITY_LABEL of the run")
    a = p.parse_args(argv)
    try:
        rows, meta = load(a.dir)
    except (OSError, ValueError) as e:
        print(f"report.py: cannot read {a.dir}/calls.jsonl: {e}", file=sys.stderr)
        return 2
    if a.label:
        meta["label"] = a.label
    agg, failures = aggregate(rows)
    profiles = meta.get("options", {}).get("profiles") or sorted({r["profile"] for r in rows})
    try:
        files = plot(agg, profiles, a.plots)
    except ImportError as e:
        print(f"report.py: no plots ({e}); run bench/quality/setup.sh", file=sys.stderr)
        files = []
    rel = os.path.relpath(os.path.abspath(a.plots), os.path.dirname(os.path.abspath(a.md)))
    links = [f if rel == "." else os.path.join(rel, f) for f in files]
    with open(a.md, "w") as f:
        f.write(markdown(rows, meta, agg, failures, links))
    print(f"report.py: wrote {a.md} and {len(files)} plot(s) in {a.plots}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
