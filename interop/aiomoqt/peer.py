"""aiomoqt's publisher and subscriber roles in the interop matrix (interop/run).

The same two roles, with the same arguments and output, as our
`moq-interop-peer` (interop/src/peer.rs), so that any publisher can be paired
with any relay and any subscriber:

  python peer.py publish   URL NAMESPACE TRACK FLOW DELIVERY   # prints "ready", runs until killed
  python peer.py subscribe URL NAMESPACE TRACK COUNT [TIMEOUT [MIN_GROUPS]]  # one JSON line; exit 0 = pass

FLOW is `namespace` (PUBLISH_NAMESPACE; the relay forwards SUBSCRIBEs,
draft-ietf-moq-transport-18 §6.2) or `publish` (direct PUBLISH, §9.11);
DELIVERY is `stream` (one subgroup stream per group, §11.4) or `datagram`
(OBJECT_DATAGRAM, §11.3). DRAFT (environment, default 18) picks the version.
"""
import asyncio
import json
import os
import sys

from aiomoqt.client import MOQTClient
from aiomoqt.track import PublishedTrack, SubscribedTrack
from aiomoqt.types import ForwardingPreference, MOQTRequestError
from aiomoqt.utils.url import parse_relay_url

GROUP_SIZE = 10
RATE = 100


def client(url):
    r = parse_relay_url(url)
    draft = int(os.environ.get("DRAFT", "18"))
    return MOQTClient(r.host, r.port, path=r.path or "", use_quic=r.use_quic,
                      verify_tls=False, supported_drafts=[draft])


async def publish(url, ns, trackname, flow, delivery):
    forwarding = ForwardingPreference.DATAGRAM if delivery == "datagram" else ForwardingPreference.SUBGROUP
    async with client(url).connect() as pub:
        await pub.client_session_init()
        track = PublishedTrack(pub, namespace=ns, trackname=trackname, object_size=80,
                               group_size=GROUP_SIZE, num_subgroups=1, rate=RATE,
                               forwarding=forwarding)
        track._quiet = True
        track._stats_header_printed = True
        if flow == "namespace":
            await track.publish(announce_namespace=True, publish_track=False)
        else:
            await track.publish(publish_track=True, forward=1)
        print("ready", flush=True)
        await asyncio.Event().wait()


def contiguous(locs, datagrams, min_groups=3):
    """First problem in the received (group, object) sequence, or None — the
    same rules as peer.rs: no duplicate, consecutive groups, every group but
    the first from object 0, objects consecutive and (on streams) in order."""
    if len(set(locs)) != len(locs):
        return "an object arrived twice"
    groups = {}
    for g, o in locs:
        groups.setdefault(g, []).append(o)
    ids = sorted(groups)
    if ids != list(range(ids[0], ids[-1] + 1)):
        return f"groups missing between {ids[0]} and {ids[-1]}"
    for g in ids:
        objs = groups[g]
        if not datagrams and objs != sorted(objs):
            return f"group {g} objects out of order: {objs}"
        objs = sorted(objs)
        if g != ids[0] and objs[0] != 0:
            return f"group {g} starts at object {objs[0]}"
        if objs != list(range(objs[0], objs[0] + len(objs))):
            return f"group {g} has a gap: {objs}"
    if len(ids) < min_groups:
        return f"objects spanned only {len(ids)} groups"
    return None


async def subscribe(url, ns, trackname, count, timeout, min_groups):
    received = []
    kinds = set()
    enough = asyncio.Event()

    def on_object(msg, *args, **_):
        g = getattr(msg, "group_id", None)
        if g is None and len(args) >= 3:
            g = args[2]
        kinds.add(type(msg).__name__)
        received.append((g, msg.object_id))
        if len(received) >= count:
            enough.set()

    problem = None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with client(url).connect() as sub:
        await sub.client_session_init()
        # A direct PUBLISH may reach the relay after our SUBSCRIBE: ask again
        # while the answer is DOES_NOT_EXIST (0x10) and time is left.
        while True:
            st = SubscribedTrack(sub, ns, trackname, on_object=on_object)
            st._quiet = True
            try:
                await st.subscribe(timeout=max(1, deadline - loop.time()))
                break
            except MOQTRequestError as e:
                if getattr(e, "error_code", None) != 0x10 or loop.time() + 0.1 > deadline:
                    raise
                await asyncio.sleep(0.1)
        try:
            async with asyncio.timeout(max(0.1, deadline - loop.time())):
                await enough.wait()
        except TimeoutError:
            problem = f"only {len(received)} of {count} objects arrived within {timeout} s"
        sub.close()
    locs = received[:count]
    datagrams = any("atagram" in k for k in kinds)
    problem = problem or contiguous(locs, datagrams, min_groups)
    show = lambda loc: f"{loc[0]}/{loc[1]}" if loc else None
    return {"ok": problem is None, "received": len(locs), "groups": len({g for g, _ in locs}),
            "delivery": "datagram" if datagrams else "stream",
            "first": show(locs[0] if locs else None), "last": show(locs[-1] if locs else None),
            "problem": problem}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("publish", "subscribe"):
        sys.exit(__doc__)
    role, args = sys.argv[1], sys.argv[2:]
    if role == "publish":
        url, ns, trackname, flow, delivery = args
        if flow not in ("namespace", "publish") or delivery not in ("stream", "datagram"):
            sys.exit(__doc__)
        asyncio.run(publish(url, ns, trackname, flow, delivery))
        return
    url, ns, trackname, count = args[:4]
    timeout = float(args[4]) if len(args) > 4 else 15
    min_groups = int(args[5]) if len(args) > 5 else 3
    try:
        result = asyncio.run(subscribe(url, ns, trackname, int(count), timeout, min_groups))
    except Exception as e:  # the peer's own error text is the cell's reason
        result = {"ok": False, "received": 0, "problem": f"{type(e).__name__}: {e}"}
    print(json.dumps(result), flush=True)
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
