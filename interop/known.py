"""Peer faults the interop matrix knows (matrix.py): a cell key pattern
(fnmatch over "kind/who/relay/..." keys) and the written reason, with the draft
section the foreign peer departs from. A failure that matches is marked ⚠️
(the peer's), not ❌.
"""
import fnmatch

# Failures that are the foreign peer's fault, by cell key (fnmatch patterns):
#   conf/CLIENT/RELAY/TRANSPORT/CASE   data/PUB/RELAY/SUB/TRANSPORT/FLOW/DELIVERY
# Each reason says what the peer does and what the draft asks. A pattern that
# matches no failing cell is reported, so the list is revisited when peers change.
KNOWN = [
    ("data/aiomoqt/*/*/wt/*/datagram",
     "aiomoqt 0.13.3 cannot send datagrams over WebTransport: its publisher refuses before it sends anything "
     "(\"WT datagram TX is not wired yet\"); it sends them over raw QUIC, where these cells pass."),
    ("data/*/*/clock/*/*/datagram",
     "moq-dev's moq-net 0.3.18 keeps a datagram only as a one-object group: its subscriber drops every "
     "OBJECT_DATAGRAM past object 0 (`ietf/subscriber.rs`, `recv_datagram`: \"dropping a datagram past object 0\"), "
     "so the clock prints nothing of a track whose groups hold 10 objects (draft-18 §11.3 puts no such limit)."),
    ("call/dev/*",
     "moq-dev's relay (moq-net 0.3.18) drops every OBJECT_DATAGRAM past object 0 of its group (`ietf/subscriber.rs`, "
     "`recv_datagram`: \"dropping a datagram past object 0\"); call audio is one datagram a frame, 50 frames a group "
     "(docs/CALLS.md §6), so only each group's first frame gets through."),
    ("conf/ours/ietf/quic/publish-namespace-done",
     "moq-relay-ietf 0.8.0 reads raw-QUIC RESET_STREAM codes in HTTP/3's error space (web-transport-quinn 0.11): a "
     "request stream cancelled with CANCELLED (0x1, draft-18 §3.3.3) makes it close the session (\"invalid RESET_STREAM: 1\" "
     "in its log). Over WebTransport the codes are mapped and the case passes."),
    ("conf/ours/ietf/quic/subscribe-namespace",
     "The same moq-relay-ietf 0.8.0 fault: withdrawing namespace `a` by cancelling its request stream (CANCELLED 0x1) "
     "is taken for an HTTP/3 error, so `a`'s NAMESPACE_DONE never comes. Passes over WebTransport."),
    ("conf*/ours/dev/*/single-object", "DEV_PROPS"),
    ("conf*/ours/dev/*/multiple-groups", "DEV_PROPS"),
    ("conf*/ours/dev/*/late-subscriber", "DEV_PROPS"),
    ("conf*/ours/dev/*/fetch", "DEV_PROPS"),
    ("conf*/ours/dev/*/joining-fetch", "DEV_PROPS"),
    ("conf*/ours/dev/*/datagrams", "DEV_PROPS"),
    ("conf*/ours/dev/*/publish-direct", "DEV_PUBLISH"),
    ("data/ours/dev/*/*/publish/*", "DEV_PUBLISH"),
    ("data/aiomoqt/dev/*/*/publish/*",
     "moq-dev's relay refuses aiomoqt's PUBLISH (\"PUBLISH is not supported\", NOT_SUPPORTED) and aiomoqt's publisher "
     "goes on regardless, so the subscriber's SUBSCRIBE finds no track: \"REQUEST_ERROR DOES_NOT_EXIST (0x10): unroutable\"."),
    ("data/aiomoqt/aiomoqt/ours/*/publish/*",
     "aiomoqt's relay answers a PUBLISH with PUBLISH_OK Forward=0 (\"parked until a subscriber forwards\", its log) and "
     "does not count a SUBSCRIBE without a FORWARD parameter as forwarding, though draft-18 §10.2.12 makes an omitted "
     "FORWARD 1 (\"If the parameter is omitted from any other message, the default value is 1\"): our subscriber omits it, "
     "so the publisher is never told to send. aiomoqt's own subscriber sends Forward=1 and passes."),
    ("data/clock/ours/clock/*/namespace/stream",
     "The clock's subscriber asks for the LARGEST_OBJECT filter, whose Start Location is the object after the largest "
     "(draft-18 §5.1.2), yet it cannot use a group without that group's object 0 (its date prefix) and sends no FETCH "
     "for it: joining mid-minute, it prints nothing until the next minute's group begins. Our relay starts the "
     "subscription where the filter says; relays that hand a new subscriber the whole current group pass. A subscriber "
     "of ours or aiomoqt's takes the same track through our relay."),
    ("data/*/ietf/clock/*/publish/*",
     "moq-relay-ietf 0.8.0 does not tell namespace subscribers about a track that arrived by PUBLISH (no NAMESPACE for it), "
     "and the clock finds broadcasts only through SUBSCRIBE_NAMESPACE: its log stops at \"connected\", it never subscribes. "
     "Our relay announces such tracks (draft-18 §9.5: \"Relays MUST forward PUBLISH_NAMESPACE or PUBLISH messages to all "
     "matching subscribers\")."),
]
_REASONS = {
    "DEV_PROPS": "moq-dev's relay 0.17.10 answers SUBSCRIBE_OK with 9 bytes of Track Properties of its own and drops the "
                 "publisher's (the test's application property 0x3a00=7 is missing), where draft-18 §9.6 / §2.5 has a relay "
                 "include the track's properties and pass unknown ones on unchanged. The case stops at that check.",
    "DEV_PUBLISH": "moq-dev's relay 0.17.10 refuses direct PUBLISH (§9.11): \"REQUEST_ERROR NOT_SUPPORTED (0x3): PUBLISH is not "
                   "supported\". The PUBLISH_NAMESPACE flow passes.",
}
KNOWN = [(p, _REASONS.get(r, r)) for p, r in KNOWN]


def known_reason(key):
    for pattern, reason in KNOWN:
        if fnmatch.fnmatch(key, pattern):
            return pattern, reason
    return None, None

