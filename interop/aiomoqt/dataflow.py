"""Foreign data flow through a relay: aiomoqt publisher -> relay -> aiomoqt subscriber.

Checks that every object published after the subscription starts arrives, in
order, with no gap or duplicate, for both publisher flows of
draft-ietf-moq-transport-18:
  namespace  PUBLISH_NAMESPACE, the relay forwards the subscriber's SUBSCRIBE (§6.2)
  publish    direct PUBLISH, the subscriber SUBSCRIBEs to the relay's copy (§9.11)

The publisher and the subscriber may speak different drafts (18 or 22): the
relay then carries a track from a session of one draft to a session of the
other.

usage: python dataflow.py URL FLOW [COUNT [PUB_DRAFT SUB_DRAFT]]
       (exit 0 = pass; prints one JSON line)
"""
import asyncio
import json
import sys
import uuid

from aiomoqt.client import MOQTClient
from aiomoqt.track import PublishedTrack, SubscribedTrack
from aiomoqt.types import MOQTRequestError
from aiomoqt.utils.url import parse_relay_url

GROUP_SIZE = 10


def client(url, draft=18):
    r = parse_relay_url(url)
    return MOQTClient(r.host, r.port, path=r.path or "", use_quic=r.use_quic,
                      verify_tls=False, supported_drafts=[draft])


def contiguous(locs):
    """First problem in the received (group, object) sequence, or None.

    Each group travels on its own subgroup stream, so groups may interleave
    (§11.4); within a group objects must arrive in order with no gap, every
    group after the first must start at object 0, and no group between the
    first and the last may be missing."""
    groups = {}
    for g, o in locs:
        groups.setdefault(g, []).append(o)
    ids = sorted(groups)
    if ids != list(range(ids[0], ids[-1] + 1)):
        return f"missing groups between {ids[0]} and {ids[-1]}"
    for g in ids:
        objs = groups[g]
        if g != ids[0] and objs[0] != 0:
            return f"group {g} starts at object {objs[0]}"
        if objs != list(range(objs[0], objs[0] + len(objs))):
            return f"group {g} objects out of order or with a gap: {objs}"
    return None


async def run(url, flow, count, pub_draft=18, sub_draft=18):
    ns = f"moq-phone-test/dataflow/{flow}/{uuid.uuid4().hex[:8]}"
    received = []
    enough = asyncio.Event()

    def on_object(msg, *args, group_id=None, **_):
        g = getattr(msg, "group_id", None)
        if g is None and len(args) >= 3:
            g = args[2]
        received.append((g, msg.object_id))
        if len(received) >= count:
            enough.set()

    async with client(url, pub_draft).connect() as pub:
        await pub.client_session_init()
        track = PublishedTrack(pub, namespace=ns, trackname="track", object_size=80,
                               group_size=GROUP_SIZE, num_subgroups=1, rate=200)
        track._quiet = True
        track._stats_header_printed = True
        if flow == "namespace":
            await track.publish(announce_namespace=True, publish_track=False)
        else:
            await track.publish(publish_track=True, forward=1)
        async with client(url, sub_draft).connect() as sub:
            await sub.client_session_init()
            # publish() returns once PUBLISH is sent, not once the relay has it: this
            # session's SUBSCRIBE can overtake it and find no publisher yet (0x10,
            # DOES_NOT_EXIST). Ask again on that answer (each try waits for the relay's
            # reply); any other error, or the same one 50 times, fails the run.
            for attempt in range(50):
                st = SubscribedTrack(sub, ns, "track", on_object=on_object)
                st._quiet = True
                try:
                    await st.subscribe(timeout=5)
                    break
                except MOQTRequestError as e:
                    if getattr(e, "error_code", None) != 0x10 or attempt == 49:
                        raise
            try:
                async with asyncio.timeout(20):
                    await enough.wait()
            except TimeoutError:
                pass
            sub.close()
        pub.close()
    # The newest groups may still be in flight when we stop counting.
    locs = received[:count]
    last_group = max((g for g, _ in locs), default=None)
    complete = [x for x in locs if x[0] != last_group]
    problem = None if len(locs) >= count else f"only {len(locs)} of {count} objects arrived"
    problem = problem or contiguous(complete)
    groups = len({g for g, _ in locs})
    if problem is None and groups < 3:
        problem = f"objects spanned only {groups} groups"
    return {"flow": flow, "drafts": [pub_draft, sub_draft], "received": len(locs), "groups": groups, "first": locs[0] if locs else None,
            "last": locs[-1] if locs else None, "ok": problem is None, "problem": problem}


def main():
    url, flow = sys.argv[1], sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    pub_draft, sub_draft = (int(sys.argv[4]), int(sys.argv[5])) if len(sys.argv) > 5 else (18, 18)
    if flow not in ("namespace", "publish"):
        sys.exit(f"unknown flow {flow!r}: use namespace or publish")
    result = asyncio.run(run(url, flow, count, pub_draft, sub_draft))
    print(json.dumps(result))
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
