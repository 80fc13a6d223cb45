"""aiomoqt listens to a moq-phone call: are our call tracks plain MoQ media?

usage: python call_listener.py URL CALLEE    (prints "ready", then, after a line on
stdin or 60 s, one JSON line; exit 0 = every check passed)

One SUBSCRIBE_NAMESPACE on `moq-phone/v1` (draft-ietf-moq-transport-18
§10.18) shows the call's namespaces (docs/CALLS.md §2): the caller's
`ring/<callee>/<sid>/<caller>` and each callee device's
`call/<sid>/<callee>/<device>`. For each, aiomoqt SUBSCRIBEs to `audio` and
FETCHes object 0/0 of `catalog` (§10.12.1) — for calls to CALLEE only, as
other calls may share the relay — then checks:
  - audio: every object from 0/0 to the last one arrived, once (CALLS.md §6:
    Group = frame / 50, Object = frame % 50);
  - catalog: aiomoqt's own MSF parser (aiomoqt.media.catalog, draft-ietf-moq-msf)
    reads it, validates it, and finds an `audio` track packaged as LOC.
"""
import asyncio
import json
import sys

from aiomoqt.client import MOQTClient
from aiomoqt.media.catalog import Catalog
from aiomoqt.track import SubscribedTrack
from aiomoqt.types import D16MessageType
from aiomoqt.utils.url import parse_relay_url

ROOT = "moq-phone/v1"
FRAMES_PER_GROUP = 50


def text(field):
    return field.decode() if isinstance(field, (bytes, bytearray)) else str(field)


def audio_problem(locs):
    if not locs:
        return "no audio object arrived"
    if len(set(locs)) != len(locs):
        return "an object arrived twice"
    frames = sorted(g * FRAMES_PER_GROUP + o for g, o in locs)
    if frames[0] != 0:
        g, o = divmod(frames[0], FRAMES_PER_GROUP)
        return f"the first object to arrive was {g}/{o}, not 0/0"
    missing = frames[-1] + 1 - len(frames)
    if missing:
        return f"{missing} of {frames[-1] + 1} objects missing"
    return None


async def listen(url, callee):
    r = parse_relay_url(url)
    client = MOQTClient(r.host, r.port, path=r.path or "", use_quic=r.use_quic, verify_tls=False,
                        supported_drafts=[18])
    audio, catalogs, tasks = {}, {}, []

    async def follow(session, ns):
        locs = audio.setdefault(ns, [])

        def on_object(msg, *args, **_):
            g = getattr(msg, "group_id", None)
            if g is None and len(args) >= 3:
                g = args[2]
            locs.append((g, msg.object_id))

        st = SubscribedTrack(session, ns, "audio", on_object=on_object)
        st._quiet = True
        try:
            await st.subscribe(timeout=5)
        except Exception as e:
            catalogs.setdefault(ns, {})["audio_error"] = f"{type(e).__name__}: {e}"
        catalogs[ns] = dict(catalogs.get(ns, {}), **await read_catalog(session, ns))

    async def on_namespace(session, msg):
        fields = [text(f) for f in msg.namespace_suffix]
        # ring/<callee>/<sid>/<caller> or call/<sid>/<callee>/<device>
        ours = len(fields) == 4 and ((fields[0], fields[1]) == ("ring", callee) or (fields[0], fields[2]) == ("call", callee))
        if ours:
            tasks.append(asyncio.ensure_future(follow(session, "/".join([ROOT] + fields))))

    async with client.connect() as session:
        await session.client_session_init()
        session.register_handler(D16MessageType.NAMESPACE, on_namespace)
        await session.subscribe_namespace(ROOT, subscribe_options=0, wait_response=True)
        print("ready", flush=True)
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.readline), 60)
        except TimeoutError:
            pass
        for t in tasks:
            if not t.done():
                t.cancel()
        session.close()

    result = {"tracks": {}, "ok": True}
    if not audio:
        result.update(ok=False, problem="no call namespace seen under " + ROOT)
    for ns, locs in audio.items():
        problem = audio_problem(locs)
        cat = catalogs.get(ns, {"catalog_error": "no catalog read"})
        entry = {"audio_objects": len(locs), "audio_problem": problem, **cat}
        result["tracks"][ns] = entry
        if problem or cat.get("catalog_error") or cat.get("audio_error"):
            result["ok"] = False
    return result


async def read_catalog(session, ns):
    """FETCH catalog 0/0 (the whole of group 0) and parse it as MSF."""
    got = []
    done = asyncio.Event()

    def on_object(msg, *args, **_):
        payload = getattr(msg, "payload", None)
        if payload:
            got.append(bytes(payload))
            done.set()

    try:
        await asyncio.wait_for(session.fetch(ns, "catalog", start_group=0, start_object=0, end_group=0, end_object=0,
                                             wait_response=True, on_object=on_object), 5)
        await asyncio.wait_for(done.wait(), 5)
    except Exception as e:
        return {"catalog_error": f"FETCH catalog: {type(e).__name__}: {e}"}
    try:
        catalog = Catalog.from_json(got[0].decode())
    except Exception as e:
        return {"catalog_error": f"aiomoqt's MSF parser: {type(e).__name__}: {e}"}
    problems = catalog.validate()
    track = catalog.find("audio") if hasattr(catalog, "find") else None
    if problems:
        return {"catalog_error": "MSF validation: " + "; ".join(problems)}
    if track is None or getattr(track, "packaging", None) != "loc":
        return {"catalog_error": "no LOC audio track in the catalog"}
    return {"catalog": f"MSF, track audio: {track.packaging} {getattr(track, 'codec', '?')}"}


def main():
    try:
        result = asyncio.run(listen(sys.argv[1], sys.argv[2]))
    except Exception as e:
        result = {"ok": False, "problem": f"{type(e).__name__}: {e}"}
    print(json.dumps(result), flush=True)
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
