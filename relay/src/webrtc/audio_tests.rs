//! Unit tests of `audio.rs` with explicit RTP times and clocks.

use super::*;
use moq_wire::status;

const T0: u64 = 1_763_900_000_000_000;
const OPUS: &[u8] = &[0xf8, 0xff, 0xfe];

/// The web phone's `encodeAudioDatagram(trackAlias, frame, captureUs, opus)`
/// (webapp/src/media/loc.ts:73-83, sent from phone/callrun.ts:265): Group
/// n / 50, Object n % 50, publisherPriority AUDIO_PRIORITY (loc.ts:28),
/// properties `locProperties(captureUs)` = TIMESTAMP (loc.ts:38-40), no
/// END_OF_GROUP, no status — built here with moq-wire's one encoder.
fn web_phone(alias: u64, n: u64, capture_us: u64, opus: &[u8]) -> Vec<u8> {
    let props = loc::properties(capture_us);
    let f = datagram::Fields {
        track_alias: alias,
        group_id: n / 50,
        object_id: n % 50,
        publisher_priority: Some(128),
        end_of_group: false,
        properties: &props,
        status: None,
        payload: opus,
    };
    let mut out = Vec::new();
    datagram::encode(&f, &mut out);
    out
}

/// A `datagrams` entry of docs/vectors/wire.json, the vector the web phone's
/// `encodeAudioDatagram` is tested against (webapp/test/codec.test.ts:149-153).
fn wire_vector(name: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/vectors/wire.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let e = v["datagrams"].as_array().unwrap().iter().find(|e| e["name"] == name).expect(name);
    let hex = e["hex"].as_str().unwrap();
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
}

fn rtp(rtp_time: u64, arrival: u64) -> RtpIn<'static> {
    RtpIn { rtp_time, payload: OPUS, arrival_unix_micros: arrival, sender_report: None }
}

/// (group, object, priority, TIMESTAMP) of an Ingress output.
fn fields(b: Bytes) -> (u64, u64, Option<u8>, u64) {
    let d = Datagram::parse(b).unwrap();
    let ts = loc::decode(&d.properties(), &d.payload()).unwrap().capture_us.unwrap();
    (d.group_id, d.object_id, d.publisher_priority, ts)
}

fn frame_no(b: Option<Bytes>) -> Option<u64> {
    b.map(|b| {
        let (g, o, _, _) = fields(b);
        frame(g, o).unwrap()
    })
}

#[test]
fn ingress_bytes_equal_the_web_phones() {
    let mut i = Ingress::new();
    assert_eq!(i.packet(rtp(5_000, T0)), None, "nothing bound");
    i.bind(Some(2), AUDIO_PRIORITY);
    let r0 = 1_234_560;
    let first = i.packet(rtp(r0, T0)).unwrap();
    assert_eq!(first[..], web_phone(2, 0, T0, OPUS)[..]);
    assert_eq!(first[..], wire_vector("audio frame 0: Object ID 0 omitted")[..]);
    // Frame 51 with a Sender Report naming T0 for its RTP time.
    let p = RtpIn { rtp_time: r0 + 51 * FRAME, sender_report: Some((T0, r0 + 51 * FRAME)), ..rtp(0, T0 + 5) };
    let f51 = i.packet(p).unwrap();
    assert_eq!(f51[..], web_phone(2, 51, T0, OPUS)[..]);
    assert_eq!(f51[..], wire_vector("audio frame 51 (group 1, object 1) with LOC timestamp")[..]);
}

#[test]
fn loss_leaves_holes() {
    let mut i = Ingress::new();
    i.bind(Some(4), AUDIO_PRIORITY);
    let got: Vec<_> = [0u64, 1, 3, 6, 49, 50, 52].iter().map(|n| frame_no(i.packet(rtp(96_000 + n * FRAME, T0)))).collect();
    assert_eq!(got, [0, 1, 3, 6, 49, 50, 52].map(Some));
    // Group n / 50, object n % 50 across a group boundary.
    assert_eq!(fields(i.packet(rtp(96_000 + 101 * FRAME, T0)).unwrap()).0, 2);
    assert_eq!(fields(i.packet(rtp(96_000 + 100 * FRAME, T0)).unwrap()).1, 0);
}

#[test]
fn timestamps_from_arrival_until_a_sender_report() {
    let mut i = Ingress::new();
    i.bind(Some(1), AUDIO_PRIORITY);
    // Arrival jitter does not move the stamps: anchor arrival + media time.
    assert_eq!(fields(i.packet(rtp(0, T0)).unwrap()).3, T0);
    assert_eq!(fields(i.packet(rtp(FRAME, T0 + 35_000)).unwrap()).3, T0 + 20_000);
    assert_eq!(fields(i.packet(rtp(2 * FRAME, T0 + 41_000)).unwrap()).3, T0 + 40_000);
    // With a report: its NTP time plus the media time since its RTP time,
    // before or after it.
    let sr = Some((T0 + 7, 2 * FRAME));
    let p = |t: u64| RtpIn { sender_report: sr, ..rtp(t, T0 + 99_999) };
    assert_eq!(fields(i.packet(p(3 * FRAME)).unwrap()).3, T0 + 7 + 20_000);
    assert_eq!(fields(i.packet(p(4 * FRAME)).unwrap()).3, T0 + 7 + 40_000);
    let mut j = Ingress::new();
    j.bind(Some(1), AUDIO_PRIORITY);
    let early = RtpIn { sender_report: Some((T0, 10 * FRAME)), ..rtp(9 * FRAME, 0) };
    assert_eq!(fields(j.packet(early).unwrap()).3, T0 - 20_000);
}

#[test]
fn sender_report_rtp_time_may_be_32_bit() {
    let mut i = Ingress::new();
    i.bind(Some(1), AUDIO_PRIORITY);
    let ext = (1u64 << 32) + 480_000; // past the first wrap
    let p = RtpIn { sender_report: Some((T0, 480_000 - FRAME)), ..rtp(ext, 0) };
    assert_eq!(fields(i.packet(p).unwrap()).3, T0 + 20_000);
}

#[test]
fn rtp_wrap_counts_on() {
    let mut i = Ingress::new();
    i.bind(Some(1), AUDIO_PRIORITY);
    let start = (1u64 << 32) - FRAME;
    let got: Vec<_> = (0..3).map(|k| frame_no(i.packet(rtp(start + k * FRAME, T0)))).collect();
    assert_eq!(got, [Some(0), Some(1), Some(2)]);
}

#[test]
fn duplicates_dropped_late_ones_fill_in() {
    let mut i = Ingress::new();
    i.bind(Some(1), AUDIO_PRIORITY);
    let mut at = |n: u64| frame_no(i.packet(rtp(10 * FRAME + n * FRAME, T0)));
    assert_eq!([at(0), at(1), at(2), at(1)], [Some(0), Some(1), Some(2), None]);
    assert_eq!([at(5), at(4), at(4), at(3)], [Some(5), Some(4), None, Some(3)]);
    assert_eq!(at(200), Some(200));
    assert_eq!(at(100), None, "older than the reorder window");
    assert_eq!(at(201), Some(201));
    // Before the anchor of the bind: nothing to number it with.
    let mut j = Ingress::new();
    j.bind(Some(1), AUDIO_PRIORITY);
    assert_eq!(frame_no(j.packet(rtp(10 * FRAME, T0))), Some(0));
    assert_eq!(frame_no(j.packet(rtp(9 * FRAME, T0))), None);
}

#[test]
fn off_grid_and_huge_jumps_are_numbered_by_arrival() {
    let mut i = Ingress::new();
    i.bind(Some(1), AUDIO_PRIORITY);
    let mut at = |t: u64| frame_no(i.packet(rtp(t, T0)));
    assert_eq!(at(48_000), Some(0));
    assert_eq!(at(48_000 + 480), Some(1), "10 ms packet: next by arrival, re-anchored");
    assert_eq!(at(48_000 + 480 + FRAME), Some(2));
    assert_eq!(at(48_000 + 480 + FRAME + 1000 * FRAME), Some(3), "a 20 s jump is not a 20 s hole");
    assert_eq!(at(5), Some(4), "a timestamp reset");
    assert_eq!(at(5 + 3 * FRAME), Some(7), "then holes are holes again");
}

#[test]
fn rebinding_keeps_each_alias_counter_and_the_priority_follows() {
    let mut i = Ingress::new();
    i.bind(Some(2), AUDIO_PRIORITY);
    for n in 0..3 {
        assert_eq!(frame_no(i.packet(rtp(n * FRAME, T0))), Some(n));
    }
    i.bind(None, AUDIO_PRIORITY); // hold
    assert_eq!(i.packet(rtp(3 * FRAME, T0)), None);
    i.bind(Some(2), AUDIO_PRIORITY); // unhold, 7 s later in RTP time
    assert_eq!(frame_no(i.packet(rtp(350 * FRAME, T0))), Some(3));
    assert_eq!(frame_no(i.packet(rtp(351 * FRAME, T0))), Some(4));
    i.bind(Some(7), AUDIO_PRIORITY); // another subscription
    assert_eq!(frame_no(i.packet(rtp(352 * FRAME, T0))), Some(0));
    i.bind(Some(2), 5);
    let b = i.packet(rtp(353 * FRAME, T0)).unwrap();
    assert_eq!((frame(fields(b.clone()).0, fields(b.clone()).1), fields(b).2), (Some(5), Some(5)));
    i.bind(Some(2), 9); // same alias: priority only
    assert_eq!(fields(i.packet(rtp(354 * FRAME, T0)).unwrap()).2, Some(9));
    assert_eq!(i.alias(), Some(2));
    assert_eq!(i.packet(RtpIn { payload: &[], ..rtp(355 * FRAME, T0) }), None, "empty payload");
}

fn dg(alias: u64, n: u64) -> Bytes {
    web_phone(alias, n, T0 + n * 20_000, &[n as u8; 3]).into()
}

fn out(e: &mut Egress, b: Bytes) -> Option<(u64, bool)> {
    e.datagram(b).map(|r| (r.rtp_time, r.start_of_talkspurt))
}

#[test]
fn egress_rtp_times_holes_and_drops() {
    let mut e = Egress::new();
    assert_eq!(out(&mut e, dg(9, 0)), None, "nothing bound");
    e.bind(Some(9));
    let r = e.datagram(dg(9, 100)).unwrap();
    assert_eq!((r.rtp_time, r.start_of_talkspurt, &r.payload[..]), (0, true, &[100u8; 3][..]));
    assert_eq!(out(&mut e, dg(9, 101)), Some((FRAME, false)));
    assert_eq!(out(&mut e, dg(9, 104)), Some((4 * FRAME, false)), "a hole stays a hole");
    assert_eq!(out(&mut e, dg(9, 104)), None, "duplicate");
    assert_eq!(out(&mut e, dg(9, 102)), None, "late");
    assert_eq!(out(&mut e, dg(8, 105)), None, "another alias");
    assert_eq!(out(&mut e, Bytes::from_static(&[0xff, 0x00])), None, "garbage");
    let mut off_map = Vec::new();
    let f = datagram::Fields {
        track_alias: 9,
        group_id: 3,
        object_id: 50,
        publisher_priority: None,
        end_of_group: false,
        properties: &[],
        status: None,
        payload: b"x",
    };
    datagram::encode(&f, &mut off_map);
    assert_eq!(out(&mut e, off_map.into()), None, "object 50 is not on the mapping");
    let mut st = Vec::new();
    datagram::encode(&datagram::Fields { object_id: 10, status: Some(status::END_OF_GROUP), ..f }, &mut st);
    assert_eq!(out(&mut e, st.into()), None, "a status is no audio");
    assert_eq!(out(&mut e, dg(9, 105)), Some((5 * FRAME, false)));
}

#[test]
fn egress_clock_runs_on_across_binds_and_jumps() {
    let mut e = Egress::new();
    e.bind(Some(9));
    assert_eq!([out(&mut e, dg(9, 100)), out(&mut e, dg(9, 101))], [Some((0, true)), Some((FRAME, false))]);
    e.bind(Some(10));
    assert_eq!(out(&mut e, dg(10, 7)), Some((2 * FRAME, true)));
    e.bind(Some(10)); // the same alias again changes nothing
    assert_eq!(out(&mut e, dg(10, 8)), Some((3 * FRAME, false)));
    e.bind(None);
    assert_eq!(out(&mut e, dg(10, 9)), None);
    e.bind(Some(9));
    assert_eq!(out(&mut e, dg(9, 102)), Some((4 * FRAME, true)), "a new bind of an old alias");
    assert_eq!(out(&mut e, dg(9, 102 + MAX_GAP + 1)), Some((5 * FRAME, true)), "a jump is a new talkspurt, not a gap");
    assert_eq!(out(&mut e, dg(9, 0)), Some((6 * FRAME, true)), "the publisher counts from 0 again");
    assert_eq!(out(&mut e, dg(9, 2)), Some((8 * FRAME, false)));
    assert_eq!(e.alias(), Some(9));
}

#[test]
fn ingress_to_egress_round_trip() {
    let mut i = Ingress::new();
    let mut e = Egress::new();
    i.bind(Some(3), AUDIO_PRIORITY);
    e.bind(Some(3));
    let got: Vec<_> = [0u64, 1, 2, 4].iter().map(|n| i.packet(rtp(777 + n * FRAME, T0)).and_then(|b| e.datagram(b)).unwrap()).collect();
    assert_eq!(got.iter().map(|r| r.rtp_time).collect::<Vec<_>>(), [0, FRAME, 2 * FRAME, 4 * FRAME]);
    assert!(got.iter().all(|r| &r.payload[..] == OPUS));
    assert_eq!((location(51), frame(1, 1), frame(0, 50), frame(u64::MAX, 0)), ((1, 1), Some(51), None, None));
}
