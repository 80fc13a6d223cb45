#!/usr/bin/env python3
"""Writes seed inputs for every fuzz target from the shared vectors
(docs/vectors/*.json) and a few hand-written texts, into OUT/<target>/.

Seeds are where coverage-guided fuzzing starts: a valid SETUP, SUBSCRIBE or
token reaches code that random bytes would take hours to find. The files are
named by content hash, so re-running is idempotent. Python's stdlib only.

    python3 fuzz/seeds.py OUTDIR
"""
import hashlib
import json
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def vectors(name):
    with open(os.path.join(ROOT, "docs", "vectors", name)) as f:
        return json.load(f)


def seeds():
    """Yields (target, bytes)."""
    w = vectors("wire.json")
    for e in w["control"]:
        b = bytes.fromhex(e["hex"])
        yield "control", b
        yield "control_roundtrip", b
    for e in w["subgroups"]:
        b = bytes.fromhex(e["hex"])
        for split in (0, 1, 3, 7):  # first byte = piece size
            yield "subgroup", bytes([split]) + b
    for e in w["fetch"]:
        b = bytes.fromhex(e["hex"])
        for split in (0, 2, 5):
            yield "fetch", bytes([split]) + b
    for e in w["datagrams"]:
        yield "datagram", bytes.fromhex(e["hex"])
    for e in w["properties"]:
        yield "properties", bytes.fromhex(e["hex"])
    for e in w["loc"]:
        p = bytes.fromhex(e["properties_hex"])
        yield "loc", bytes([len(p)]) + p + b"\xf8\xff\xfe"
    by_parser = {
        "control-request": ["control", "control_roundtrip"],
        "control-response": ["control"],
        "subgroup": ["subgroup"],
        "fetch": ["fetch"],
        "datagram": ["datagram"],
        "properties": ["properties"],
    }
    for e in w["malformed"]:
        b = bytes.fromhex(e["hex"])
        for t in by_parser.get(e.get("parser"), []):
            yield t, (bytes([0]) + b if t in ("subgroup", "fetch") else b)
    # SETUP options: the payload of each SETUP vector after type and length.
    for e in w["control"]:
        if e.get("message", {}).get("type") == "SETUP":
            b = bytes.fromhex(e["hex"])
            yield "setup", b[3:] if b[0] & 0xC0 == 0x40 else b[4:]
    yield "setup", bytes([0x01, 0x05]) + b"/moq?" + bytes([0x05, 0x0e]) + b"relay.example:4443"[:14]
    # AUTHORIZATION TOKEN parameter values (draft-18 §10.2.2): alias type, alias, token type, token.
    for b in (b"\x00\x01", b"\x01\x07\x00tok", b"\x02\x07", b"\x03\x00sesame"):
        yield "auth_token", b
    # CAT tokens: a CWT claims map (mode 2) and a tagged COSE_Sign1 shape (mode 0).
    claims = bytes.fromhex("a4016963616c6c2d74657374" "026561" "6c696365" "0419fffe" "066130")
    yield "cat_token", b"\x02" + claims
    yield "cat_token", b"\x00" + bytes.fromhex("d28443a10126a0" "4100" "5840") + bytes(64)
    yield "cat_token", b"\x01" + b"0oRDoQEmoEEAWEA"
    yield "users_file", b'[users.alice]\npassword = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"\nscope = "calls"\n'
    yield "users_file", b"[users]\n"
    # Call events: every event the call-vector scenarios send or receive.
    def walk(x):
        if isinstance(x, dict):
            if "event" in x and isinstance(x["event"], dict):
                yield x["event"]
            for v in x.values():
                yield from walk(v)
        elif isinstance(x, list):
            for v in x:
                yield from walk(v)
    for ev in walk(vectors("calls.json")):
        yield "call_event", json.dumps(ev, separators=(",", ":")).encode()
    yield "relay_config", b'bind = "[::]:4443"\ntls_cert = "cert.pem"\ntls_key = "key.pem"\ndrain_secs = 5\n'
    yield "http_bodies", b"\x00" + b'{"user":"alice","password":"secret"}'
    yield "http_bodies", b"\x01" + (
        b"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
        b"a=fingerprint:sha-256 " + b":".join([b"AB"] * 32) + b"\r\n"
        b"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
        b"a=setup:actpass\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n"
        b"m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=ice-ufrag:abcd\r\n"
        b"a=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=setup:actpass\r\na=sctp-port:5000\r\n")
    yield "http_bodies", b"\x02" + b'{"t":"audio-out","alias":3,"priority":128}'
    yield "http_bodies", b"\x02" + b'{"t":"close","code":0,"reason":"bye"}'
    with open(os.path.join(ROOT, "chan_moq", "conf", "moq.conf.sample"), "rb") as f:
        sample = f.read()
    yield "moq_conf", sample
    # The sample with its commented-out keys turned on.
    yield "moq_conf", sample.replace(b"\n;", b"\n")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: seeds.py OUTDIR")
    out = sys.argv[1]
    n = 0
    for target, data in seeds():
        d = os.path.join(out, target)
        os.makedirs(d, exist_ok=True)
        p = os.path.join(d, "seed-" + hashlib.sha1(data).hexdigest()[:16])
        if not os.path.exists(p):
            with open(p, "wb") as f:
                f.write(data)
            n += 1
    print(f"{n} new seeds in {out}")


if __name__ == "__main__":
    main()
