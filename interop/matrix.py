"""The interop matrix: which foreign MoQ publishers, relays and subscribers work with ours.

Run by interop/run (which installs the peers and enters a private network
namespace); writes a Markdown table of every cell with pass / fail and, for a
failure, the failing side's own error text.

Cells
  conformance   client x relay x transport: each conformance client's test
                cases (TAP 14) against each relay, over raw QUIC (moqt://)
                and WebTransport (https://).
  data flow     publisher x relay x subscriber x transport, for each publisher
                flow (PUBLISH_NAMESPACE or direct PUBLISH, draft-18 §6.2 / §9.11)
                and delivery (subgroup streams §11.4, datagrams §11.3).

A failure that is a foreign peer's fault carries a written reason (KNOWN
below); with --check, any other failure of a cell that involves our relay or
one of our clients fails the run, and so does our relay doing worse than the
best foreign relay for the same client.
"""
import argparse
import concurrent.futures
import datetime
import fnmatch
import json
import pathlib
import platform
import re
import signal
import subprocess
import sys
import time
import uuid

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent

RELAYS = ["ours", "ietf", "dev", "aiomoqt"]
CLIENTS = ["ours", "aiomoqt"]            # conformance clients
PEERS = ["ours", "aiomoqt", "clock"]      # publishers and subscribers
TRANSPORTS = ["quic", "wt"]
SPEAKS_22 = ["ours", "dev", "aiomoqt"]     # relays that negotiate moqt-22
FLOWS = ["namespace", "publish"]
DELIVERIES = ["stream", "datagram"]
NAMES = {"ours": "moq-phone", "ietf": "moq-relay-ietf", "dev": "moq-relay (moq-dev)",
         "aiomoqt": "aiomoqt", "clock": "clock (moq-dev)"}

from known import KNOWN, known_reason  # noqa: E402
from procs import Proc, free_port, run, stop_all, strip_ansi, udp_bound  # noqa: E402

# --------------------------------------------------------------------- peers

class Env:
    def __init__(self, args):
        self.bin = pathlib.Path(args.bin)
        self.peers = pathlib.Path(args.peers)
        self.py = self.peers / "aiomoqt/bin/python"
        self.aiomoqt = self.peers / "aiomoqt/bin"
        self.clock = self.peers / "bin/clock"
        self.logs = pathlib.Path(args.logs)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.certs = self.logs / "certs"
        if not (self.certs / "ca.pem").exists():
            rc, out, err = run([self.bin / "certs", "--out", self.certs], 60)
            if rc != 0:
                sys.exit(f"cannot make certificates: {err or out}")
        self.ca = self.certs / "ca.pem"

    def missing(self, who):
        """What is missing for a relay or peer, or None."""
        need = {
            "ours": [self.bin / "moq-relay", self.bin / "moq-interop-client", self.bin / "moq-interop-peer",
                     self.bin / "moq-phone"],
            "ietf": [self.peers / "bin/moq-relay-ietf"],
            "dev": [self.peers / "bin/moq-relay-dev"],
            "aiomoqt": [self.py],
            "clock": [self.clock],
        }[who]
        gone = [str(p) for p in need if not p.exists()]
        return f"missing {', '.join(gone)} (interop/run installs it)" if gone else None


class Relay:
    def __init__(self, env, name):
        self.name = name
        self.port = free_port()
        leaf, key = env.certs / "leaf.pem", env.certs / "leaf.key"
        addr = f"127.0.0.1:{self.port}"
        cmd = {
            "ours": [env.bin / "moq-relay", "--bind", addr, "--tls-cert", leaf, "--tls-key", key],
            "ietf": [env.peers / "bin/moq-relay-ietf", "--bind", addr, "--tls-cert", leaf, "--tls-key", key,
                     "--coordinator-file", env.logs / f"ietf-coord-{self.port}.json"],
            "dev": [env.peers / "bin/moq-relay-dev", "--listen", addr, "--listen-tls-cert", leaf,
                    "--listen-tls-key", key, "--auth-public", "**"],
            "aiomoqt": [env.aiomoqt / "moq-interop-relay", "--bind", "127.0.0.1", "--port", str(self.port),
                        "--cert", leaf, "--key", key, "--dual", "--draft", "18,22"],
        }[name]
        self.proc = Proc(f"relay-{name}", cmd, env.logs)
        end = time.monotonic() + 60
        while not udp_bound(self.port):
            if not self.proc.alive() or time.monotonic() > end:
                raise RuntimeError(f"{NAMES[name]} did not start: {self.proc.stderr_tail()}")
            time.sleep(0.1)
        # Bound is not always serving (aiomoqt's relay binds, then loads);
        # a short grace keeps the first cell from racing the relay's start.
        time.sleep(0.5)

    def url(self, transport):
        return f"{'moqt' if transport == 'quic' else 'https'}://127.0.0.1:{self.port}"

    def version(self):
        return None


def publisher_cmd(env, who, url, ns, flow, delivery):
    if who == "ours":
        return [env.bin / "moq-interop-peer", "publish", "-r", url, "--ca", env.ca, "-n", ns, "-t", "track",
                "--flow", flow, "--delivery", delivery]
    if who == "aiomoqt":
        return [env.py, HERE / "aiomoqt/peer.py", "publish", url, ns, "track", flow, delivery]
    return clock_cmd(env, url, ns, "publish")


def subscriber_cmd(env, who, url, ns, count, timeout, min_groups):
    if who == "ours":
        return [env.bin / "moq-interop-peer", "subscribe", "-r", url, "--ca", env.ca, "-n", ns, "-t", "track",
                "--count", count, "--timeout", timeout, "--min-groups", min_groups]
    if who == "aiomoqt":
        return [env.py, HERE / "aiomoqt/peer.py", "subscribe", url, ns, "track", count, timeout, min_groups]
    return clock_cmd(env, url, ns, "subscribe")


def clock_cmd(env, url, ns, role):
    return [env.clock, "--connect", url, "--connect-tls-root", env.ca, "--connect-version", "moq-transport-18",
            "--broadcast", ns, "--track", "track", role]


# --------------------------------------------------------------------- cells

def conformance(env, client, relay, transport, draft="18"):
    """One conformance client against one relay: list of (case, ok, text)."""
    url = relay.url(transport)
    if client == "ours":
        runs = [[env.bin / "moq-interop-client", "-r", url, "--ca", env.ca, "--draft", draft]]
    else:
        base = [env.aiomoqt / "moq-interop-client", "-r", url, "--tls-disable-verify", "--draft", draft]
        runs = [base, base + ["-t", "fetch"], base + ["-t", "join"]]
    cases = []
    for cmd in runs:
        rc, out, err = run(cmd, 180)
        got = parse_tap(out)
        if not got:
            tail = " | ".join(l for l in (err or out).strip().splitlines()[-4:])
            got = [("(suite)", False, f"no TAP output (exit {rc}): {strip_ansi(tail)}")]
        cases += got
    return cases


def parse_tap(text):
    """(name, ok, failure text) for each test point of a TAP 14 stream."""
    points, cur = [], None
    for line in text.splitlines():
        m = re.match(r"^(not ok|ok)\s+\d+\s*(?:-\s*)?(.*?)(\s+#.*)?$", line)
        if m:
            cur = [m.group(2).strip() or "?", m.group(1) == "ok", []]
            points.append(cur)
        elif line.startswith("Bail out!"):
            points.append(["(bail out)", False, [line]])
        elif cur is not None and not cur[1] and line.startswith("  ") and line.strip() not in ("---", "..."):
            cur[2].append(line.strip())
    return [(n, ok, " ".join(t)[:400]) for n, ok, t in points]


def data_cell(env, pub, relay, sub, transport, flow, delivery, tag):
    """One publisher -> relay -> subscriber flow: (ok, text)."""
    url = relay.url(transport)
    ns = f"interop-{tag}"
    # The clock makes one object a second, one group a minute.
    count, timeout, min_groups = (4, 15, 1) if pub == "clock" else (100, 15, 3)
    p = Proc(f"pub-{tag}", publisher_cmd(env, pub, url, ns, flow, delivery), env.logs)
    try:
        if pub != "clock" and not p.wait_line("ready", 15):
            return False, f"publisher: {p.stderr_tail() or 'no ready line within 15 s'}"
        if sub == "clock":
            return clock_subscriber(env, url, ns, timeout, p)
        rc, out, err = run(subscriber_cmd(env, sub, url, ns, count, timeout, min_groups), timeout + 15)
        line = next((l for l in out.splitlines() if l.startswith("{")), None)
        if line:
            r = json.loads(line)
            if r.get("ok"):
                return True, f"{r.get('received')} objects, {r.get('groups')} groups, {r.get('delivery')}"
            why = r.get("problem") or "failed"
        else:
            why = strip_ansi(" | ".join(err.strip().splitlines()[-4:])) or f"exit {rc}"
        if not p.alive():
            why += f"; publisher exited: {p.stderr_tail()}"
        return False, why
    finally:
        p.stop()


def clock_subscriber(env, url, ns, timeout, pub):
    """The clock's subscriber prints one line an object (but each group's
    first, its date prefix): it passes once 5 lines arrived."""
    s = Proc(f"sub-{ns}", clock_cmd(env, url, ns, "subscribe"), env.logs)
    try:
        end = time.monotonic() + timeout
        while time.monotonic() < end and s.alive():
            if len(s.stdout().splitlines()) >= 5:
                return True, "5 objects printed"
            time.sleep(0.1)
        n = len(s.stdout().splitlines())
        why = f"{n} of 5 objects printed in {timeout} s"
        tail = s.stderr_tail(3)
        if tail:
            why += f": {tail}"
        if not pub.alive():
            why += f"; publisher exited: {pub.stderr_tail()}"
        return False, why
    finally:
        s.stop()


def call_cell(env, relay, transport, tag):
    """A moq-phone call through `relay`, and aiomoqt listening to it: (ok, text)."""
    url = relay.url(transport)
    callee = f"bob{tag.replace('-', '')}"
    listener = Proc(f"listener-{tag}", [env.py, HERE / "aiomoqt/call_listener.py", url, callee], env.logs,
                    stdin=subprocess.PIPE)
    phones = []
    try:
        if not listener.wait_line("ready", 20):
            return False, f"aiomoqt listener: {listener.stderr_tail() or 'not ready in 20 s'}"
        phone = [env.bin / "moq-phone", "--relay", url, "--ca", env.ca]
        # bob lets it ring 1.5 s: time for the listener to subscribe to his audio too.
        phones.append(Proc(f"callee-{tag}", phone + ["--as", callee, "answer", "--after-ms", "1500", "--wait-secs", "20"],
                           env.logs))
        if not phones[0].wait_line("registered", 15):
            return False, f"callee did not register: {phones[0].stderr_tail()}"
        phones.append(Proc(f"caller-{tag}", phone + ["--as", f"alice{tag.replace('-', '')}", "call", callee,
                                                     "--hangup-after", "3"], env.logs))
        end = time.monotonic() + 40
        while any(p.alive() for p in phones) and time.monotonic() < end:
            time.sleep(0.1)
        for who, p in zip(("callee", "caller"), phones):
            out = p.stdout()
            if "established" not in out or "ended" not in out:
                last = (out.strip().splitlines() or ["nothing"])[-1]
                return False, f"the {who} did not have a call: {last}; {p.stderr_tail(3)}"
        listener.p.stdin.write(b"stop\n")
        listener.p.stdin.flush()
        try:
            listener.p.wait(15)
        except subprocess.TimeoutExpired:
            return False, "the aiomoqt listener did not finish"
        line = next((l for l in listener.stdout().splitlines() if l.startswith("{")), None)
        if not line:
            return False, f"aiomoqt listener: {listener.stderr_tail()}"
        r = json.loads(line)
        tracks = r.get("tracks", {})
        if r.get("ok"):
            counts = ", ".join(f"{v['audio_objects']}" for v in tracks.values())
            return True, f"both parties' audio complete ({counts} objects), catalogs parse as MSF"
        why = [r["problem"]] if r.get("problem") else []
        for ns, v in tracks.items():
            party = ns.split("/")[2]
            for k in ("audio_problem", "audio_error", "catalog_error"):
                if v.get(k):
                    why.append(f"{party}: {v[k]}")
        return False, "; ".join(why) or "failed"
    finally:
        for p in phones:
            p.stop()
        listener.stop()


def data_cells(peers):
    for pub in peers:
        for sub in peers:
            for flow in FLOWS:
                for delivery in DELIVERIES:
                    # The clock publishes one way: its broadcast announced
                    # (PUBLISH_NAMESPACE), groups on streams.
                    if pub == "clock" and (flow, delivery) != ("namespace", "stream"):
                        continue
                    yield pub, sub, flow, delivery


# -------------------------------------------------------------------- report

def versions(env):
    v = {"moq-phone": git_describe()}
    rc, out, _ = run([env.peers / "bin/moq-relay-ietf", "--version"], 10) if not env.missing("ietf") else (1, "", "")
    v["moq-relay-ietf"] = out.strip().split()[-1] if rc == 0 and out.strip() else "0.8.0"
    rc, out, _ = run([env.peers / "bin/moq-relay-dev", "--version"], 10) if not env.missing("dev") else (1, "", "")
    v["moq-relay (moq-dev)"] = out.strip().split()[-1] if rc == 0 and out.strip() else "0.17.10"
    if not env.missing("aiomoqt"):
        rc, out, _ = run([env.py, "-c", "import importlib.metadata as m; print(m.version('aiomoqt'))"], 30)
        v["aiomoqt"] = out.strip()
    v["clock (moq-tokio)"] = "0.19.31"
    return v


def git_describe():
    rc, out, _ = run(["git", "-C", ROOT, "describe", "--always", "--dirty"], 10)
    return out.strip() if rc == 0 else "?"


def main():
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, stop_all)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=ROOT / "target/debug")
    ap.add_argument("--peers", default=ROOT / "target/peers")
    ap.add_argument("--logs", default=ROOT / "target/interop")
    ap.add_argument("--out", default=HERE / "RESULTS.md")
    ap.add_argument("--relays", default=",".join(RELAYS))
    ap.add_argument("--clients", default=",".join(PEERS), help="conformance clients, publishers and subscribers")
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--check", action="store_true", help="exit 1 when a cell of ours fails without a known reason")
    args = ap.parse_args()
    env = Env(args)
    relays = [r for r in args.relays.split(",") if r]
    peers = [c for c in args.clients.split(",") if c]
    started = datetime.datetime.now(datetime.timezone.utc)

    live, absent = {}, {}
    for name in relays:
        why = env.missing(name)
        if why is None:
            try:
                live[name] = Relay(env, name)
            except RuntimeError as e:
                why = str(e)
        if why:
            absent[name] = why
            print(f"relay {NAMES[name]}: {why}", file=sys.stderr)
    for name in peers:
        why = env.missing(name)
        if why:
            absent[name] = why
            print(f"peer {NAMES[name]}: {why}", file=sys.stderr)
    peers = [p for p in peers if p not in absent]
    clients = [c for c in CLIENTS if c in peers]

    results = {}  # key -> (ok, text)
    jobs = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        # One job per relay runs its suites in turn: aiomoqt's suite uses the
        # same track names on every run, so two at once on a relay collide.
        def suites(relay):
            out = [(("conf", c, relay.name, t), conformance(env, c, relay, t)) for c in clients for t in TRANSPORTS]
            if relay.name in SPEAKS_22:
                out += [(("conf22", c, relay.name, t), conformance(env, c, relay, t, "22")) for c in clients for t in TRANSPORTS]
            return out
        for rname, relay in live.items():
            jobs.append((("suites", rname), pool.submit(suites, relay)))
        n = 0
        for rname, relay in live.items():
            for t in TRANSPORTS:
                for pub, sub, flow, delivery in data_cells(peers):
                    n += 1
                    tag = f"{uuid.uuid4().hex[:4]}-{n}-{pub}-{rname}-{sub}-{t}-{flow}-{delivery}"
                    key = ("data", pub, rname, sub, t, flow, delivery)
                    jobs.append((key, pool.submit(data_cell, env, pub, relay, sub, t, flow, delivery, tag)))
        if "ours" in peers and "aiomoqt" in peers:
            for rname, relay in live.items():
                for t in TRANSPORTS:
                    n += 1
                    jobs.append((("call", rname, t), pool.submit(call_cell, env, relay, t, f"{uuid.uuid4().hex[:6]}{n}")))
        total = len(jobs)
        for i, (key, fut) in enumerate(jobs, 1):
            try:
                r = fut.result()
            except Exception as e:  # a harness error is a failed cell, with its text
                r = (False, f"harness: {type(e).__name__}: {e}")
            if key[0] == "suites":
                if isinstance(r, tuple):  # the harness failed: r is (False, text)
                    r = [((kind, c, key[1], t), [("(suite)", False, r[1])])
                         for kind in (("conf", "conf22") if key[1] in SPEAKS_22 else ("conf",))
                         for c in clients for t in TRANSPORTS]
                for ckey, cases in r:
                    for case, ok, text in cases:
                        results["/".join(ckey + (case,))] = (ok, text)
            else:
                results["/".join(key)] = r
            print(f"[{i}/{total}] {'/'.join(key)}", file=sys.stderr, flush=True)
    for relay in live.values():
        relay.proc.stop()

    report, problems = render(env, results, relays, live, absent, clients, peers, started)
    pathlib.Path(args.out).write_text(report)
    print(f"wrote {args.out}", file=sys.stderr)
    for p in problems:
        print(f"PROBLEM: {p}", file=sys.stderr)
    if args.check and problems:
        sys.exit(1)


def mark(ok, key, notes):
    if ok:
        return "✅"
    _, reason = known_reason(key)
    notes.append((key, reason))
    return f"{'⚠️' if reason else '❌'} [{len(notes)}](#n{len(notes)})"


def ours_involved(key):
    parts = key.split("/")
    return parts[0] == "call" or "ours" in parts[1:5]


def render(env, results, relays, live, absent, clients, peers, started):
    notes, problems = [], []
    lines = [
        "# Interop matrix",
        "",
        f"Generated by `interop/run` on {started:%Y-%m-%d %H:%M} UTC, on {platform.machine()} Linux, all peers on loopback "
        "in a private network namespace, draft-ietf-moq-transport-18 (and -22 where marked). Regenerate with `interop/run`.",
        "",
        "| peer | version |",
        "|---|---|",
    ]
    for k, v in versions(env).items():
        lines.append(f"| {k} | {v} |")
    lines.append("")
    if absent:
        lines.append("Not run: " + "; ".join(f"{NAMES[k]} ({v})" for k, v in absent.items()))
        lines.append("")
    lines.append("✅ pass · ❌ fail (text in the note) · ⚠️ fail that is the foreign peer's (reason in the note)")
    lines.append("")

    # Conformance: rows client x transport, columns relays; at draft-18,
    # then at draft-22 for the relays that speak it.
    rel = [r for r in relays if r in live]
    score = {}

    def conformance_table(kind, rels):
        lines.append("| client | transport | " + " | ".join(NAMES[r] for r in rels) + " |")
        lines.append("|---|---|" + "---|" * len(rels))
        for c in clients:
            for t in TRANSPORTS:
                row = [NAMES[c], "raw QUIC" if t == "quic" else "WebTransport"]
                for r in rels:
                    prefix = f"{kind}/{c}/{r}/{t}/"
                    cases = {k[len(prefix):]: v for k, v in results.items() if k.startswith(prefix)}
                    passed = sum(1 for ok, _ in cases.values() if ok)
                    score[(kind, c, r, t)] = passed
                    cell = f"{passed}/{len(cases)}"
                    fails = [mark(False, prefix + name, notes) + f" {name}" for name, (ok, _) in cases.items() if not ok]
                    row.append(cell + ("<br>" + "<br>".join(fails) if fails else " ✅"))
                lines.append("| " + " | ".join(row) + " |")
        lines.append("")

    lines += ["## Conformance clients × relays", "",
              "Each client's test cases against each relay at draft-18 (aiomoqt's `moq-interop-client`: its 12 "
              "cases plus `fetch` and `join`; ours: `moq-interop-client`, 14 cases).", ""]
    conformance_table("conf", rel)
    rel22 = [r for r in rel if r in SPEAKS_22]
    if rel22:
        lines += ["### At draft-22", "",
                  "The same suites negotiating `moqt-22` (docs/DRAFT22.md) with the relays that speak it "
                  "(moq-relay-ietf 0.8.0 speaks draft-18 only). At draft-22 a join is a SUBSCRIBE or "
                  "REQUEST_UPDATE with FILL_PARAMETERS, and withdrawing a namespace takes a reset.", ""]
        conformance_table("conf22", rel22)

    # Data flow: one table per relay.
    lines += ["## Data flow: publisher → relay → subscriber", "",
              "A publisher sends 100 objects a second in groups of 10 (the clock: one a second, a group a minute); "
              "the subscriber must receive 100 (the clock's: 4) with no gap, duplicate or reordering within a "
              "group. Publisher and subscriber use the same transport.", ""]
    for r in rel:
        lines.append(f"### via {NAMES[r]}")
        lines.append("")
        cols = [(s, t) for s in peers for t in TRANSPORTS]
        lines.append("| publisher · flow · delivery | " + " | ".join(f"{NAMES[s]} {'QUIC' if t == 'quic' else 'WT'}" for s, t in cols) + " |")
        lines.append("|---|" + "---|" * len(cols))
        rows = sorted({(p, f, d) for p, s, f, d in data_cells(peers)}, key=lambda x: (peers.index(x[0]), x[1], x[2]))
        for p, f, d in rows:
            row = [f"{NAMES[p]} · {f} · {d}"]
            for s, t in cols:
                key = f"data/{p}/{r}/{s}/{t}/{f}/{d}"
                if key not in results:
                    row.append("—")
                    continue
                ok, _ = results[key]
                row.append(mark(ok, key, notes))
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")

    # moq-phone calls, heard by aiomoqt.
    if any(k.startswith("call/") for k in results):
        lines += ["## moq-phone calls, heard by a foreign subscriber", "",
                  "Two `moq-phone`s call through each relay (3 s of audio); aiomoqt, with one SUBSCRIBE_NAMESPACE on "
                  "`moq-phone/v1`, subscribes to both parties' `audio` and FETCHes their `catalog`: every audio object "
                  "from 0/0 on must arrive once, and aiomoqt's own MSF parser must read and validate the catalog.", "",
                  "| relay | raw QUIC | WebTransport |", "|---|---|---|"]
        for r in rel:
            row = [NAMES[r]]
            for t in TRANSPORTS:
                key = f"call/{r}/{t}"
                ok, text = results.get(key, (False, "not run"))
                row.append(f"✅ {text}" if ok else mark(False, key, notes))
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")

    # Our relay against the best foreign relay, for the same client.
    lines += ["## Our relay against the best foreign relay", ""]
    worse = []
    for kind, rels in (("conf", rel), ("conf22", rel22)):
        for c in clients:
            for t in TRANSPORTS:
                foreign = [score.get((kind, c, r, t), 0) for r in rels if r != "ours"]
                if "ours" in rels and foreign and score.get((kind, c, "ours", t), 0) < max(foreign):
                    worse.append(f"{kind} {NAMES[c]} {t}: ours {score[(kind, c, 'ours', t)]} < best foreign {max(foreign)}")
    if "ours" in rel:
        for p, s, f, d in data_cells(peers):
            for t in TRANSPORTS:
                key = lambda r: f"data/{p}/{r}/{s}/{t}/{f}/{d}"
                best = [r for r in rel if r != "ours" and results.get(key(r), (False,))[0]]
                if best and not results.get(key("ours"), (False,))[0] and not known_reason(key("ours"))[1]:
                    worse.append(f"{key('ours')}: fails, passes via {', '.join(NAMES[b] for b in best)}")
        for t in TRANSPORTS:
            best = [r for r in rel if r != "ours" and results.get(f"call/{r}/{t}", (False,))[0]]
            if best and not results.get(f"call/ours/{t}", (False,))[0] and not known_reason(f"call/ours/{t}")[1]:
                worse.append(f"call/ours/{t}: fails, passes via {', '.join(NAMES[b] for b in best)}")
    lines.append("Never worse: for every client and flow, our relay passes whatever a foreign relay passes."
                 if not worse else "Worse than a foreign relay:\n\n" + "\n".join(f"- {w}" for w in worse))
    problems += worse
    lines.append("")

    lines += ["## Notes", ""]
    for i, (key, reason) in enumerate(notes, 1):
        text = results.get(key, (False, ""))[1]
        lines.append(f"<a id=\"n{i}\"></a>{i}. `{key}` — {text or 'failed'}"
                     + (f"<br>**Peer's fault:** {reason}" if reason else ""))
        if not reason and ours_involved(key):
            problems.append(f"{key}: {text}")
    lines.append("")
    used = {p for p, _ in KNOWN if any(fnmatch.fnmatch(k, p) and not ok for k, (ok, _) in results.items())}
    stale = [p for p, _ in KNOWN if p not in used]
    if stale:
        lines.append("Known reasons that matched no failure this run (revisit): " + ", ".join(f"`{p}`" for p in stale))
        lines.append("")
    return "\n".join(lines), problems


if __name__ == "__main__":
    main()
