//! Unit tests of `streams.rs` with explicit inputs; the shared cases are in
//! `docs/vectors/datachannel.json` (run by `vectors.rs`).

use super::*;

fn all(s: &mut Streams) -> Vec<Output> {
    std::iter::from_fn(|| s.poll_output()).collect()
}

fn text(t: &str) -> Message {
    Message::Text(t.into())
}

fn bin(b: &[u8]) -> Message {
    Message::Binary(Bytes::copy_from_slice(b))
}

fn is_violation(o: &[Output]) -> bool {
    matches!(o, [Output::Violation(_)])
}

/// A session with `moq-gw` 1, `moq-dgram` 2 from the browser.
fn session() -> Streams {
    let mut s = Streams::new(Limits::default());
    s.opened(1, "moq-gw", PROTOCOL, Opener::Them);
    s.opened(2, "moq-dgram", PROTOCOL, Opener::Them);
    all(&mut s);
    s
}

#[test]
fn peer_uni_stream_delivers_then_closes_after_fin() {
    let mut s = session();
    s.opened(10, "moq-uni", PROTOCOL, Opener::Them);
    s.received(10, bin(b"abc"));
    s.received(10, text("fin"));
    assert_eq!(
        all(&mut s),
        [
            Output::Opened { id: 10, kind: Kind::Uni, by: Opener::Them },
            Output::Data { id: 10, bytes: Bytes::from_static(b"abc") },
            Output::Fin { id: 10 },
            Output::Close { id: 10 },
        ]
    );
    // Forgotten: a late close from str0m and late bytes are ignored.
    s.closed(10);
    s.received(10, bin(b"x"));
    assert_eq!(all(&mut s), []);
}

#[test]
fn our_writes_are_chunked_and_round_robin() {
    let mut s = session();
    s.opened(20, "moq-uni", PROTOCOL, Opener::Us);
    s.opened(21, "moq-bi", PROTOCOL, Opener::Us);
    all(&mut s);
    s.write(20, Bytes::from(vec![7u8; MAX_MESSAGE * 2 + 5])).unwrap();
    s.write(21, Bytes::from_static(b"req")).unwrap();
    s.finish(20).unwrap();
    assert_eq!(s.queued_bytes(20), MAX_MESSAGE * 2 + 5);
    let sizes: Vec<(ChannelId, String)> = all(&mut s)
        .into_iter()
        .map(|o| match o {
            Output::Send { id, msg: Message::Binary(b) } => (id, b.len().to_string()),
            Output::Send { id, msg: Message::Text(t) } => (id, t),
            Output::Close { id } => (id, "close".into()),
            o => panic!("{o:?}"),
        })
        .collect();
    let want = [(20, "16384"), (21, "3"), (20, "16384"), (20, "5"), (20, "fin"), (20, "close")];
    assert_eq!(sizes, want.map(|(i, t)| (i, t.to_string())));
    assert_eq!(s.write(20, Bytes::from_static(b"x")), Err(LocalError::Unknown));
    assert_eq!(s.finish(21), Ok(()));
    assert_eq!(s.write(21, Bytes::from_static(b"x")), Err(LocalError::Ended));
}

#[test]
fn refused_write_waits_for_writable_and_keeps_order() {
    let mut s = session();
    s.opened(20, "moq-uni", PROTOCOL, Opener::Us);
    all(&mut s);
    s.write(20, Bytes::from_static(b"one")).unwrap();
    s.finish(20).unwrap();
    let Some(Output::Send { id, msg }) = s.poll_output() else { panic!() };
    s.refused(id, msg);
    assert_eq!(s.poll_output(), None);
    assert_eq!(s.queued_bytes(20), 3);
    s.writable();
    assert_eq!(
        all(&mut s),
        [Output::Send { id: 20, msg: bin(b"one") }, Output::Send { id: 20, msg: text("fin") }, Output::Close { id: 20 }]
    );
}

#[test]
fn stop_from_peer_resets_and_drops_unsent_bytes() {
    let mut s = session();
    s.opened(30, "moq-bi", PROTOCOL, Opener::Us);
    all(&mut s);
    s.write(30, Bytes::from_static(b"unsent")).unwrap();
    s.received(30, text("stop 5"));
    assert_eq!(all(&mut s), [Output::Stopped { id: 30, code: 5 }, Output::Send { id: 30, msg: text("reset 5") }]);
    assert_eq!(s.write(30, Bytes::from_static(b"x")), Err(LocalError::Ended));
    // Their direction still open: the channel stays until it ends.
    s.received(30, text("fin"));
    assert_eq!(all(&mut s), [Output::Fin { id: 30 }, Output::Close { id: 30 }]);
}

#[test]
fn our_stop_drops_what_crosses_it() {
    let mut s = session();
    s.opened(11, "moq-uni", PROTOCOL, Opener::Them);
    all(&mut s);
    s.stop(11, 1).unwrap();
    assert_eq!(all(&mut s), [Output::Send { id: 11, msg: text("stop 1") }, Output::Close { id: 11 }]);
    s.received(11, bin(b"late"));
    assert_eq!(all(&mut s), []);
}

#[test]
fn peer_close_under_open_directions_is_reset_and_stop_zero() {
    let mut s = session();
    s.opened(12, "moq-bi", PROTOCOL, Opener::Them);
    all(&mut s);
    s.write(12, Bytes::from_static(b"queued")).unwrap();
    s.closed(12);
    assert_eq!(all(&mut s), [Output::Reset { id: 12, code: 0 }, Output::Stopped { id: 12, code: 0 }, Output::Closed { id: 12 }]);
    assert_eq!(s.queued_bytes(12), 0);
}

#[test]
fn unknown_label_protocol_and_duplicates_close_the_channel_only() {
    let mut s = session();
    s.opened(40, "moq-foo", PROTOCOL, Opener::Them);
    s.opened(41, "moq-uni", "moqt-17", Opener::Them);
    s.opened(42, "moq-gw", PROTOCOL, Opener::Them);
    s.opened(43, "moq-dgram", PROTOCOL, Opener::Them);
    assert_eq!(all(&mut s), (40..44).map(|id| Output::Close { id }).collect::<Vec<_>>());
    s.received(40, text("anything"));
    assert_eq!(all(&mut s), []);
    assert!(!s.is_dead());
}

#[test]
fn peer_stream_cap_refuses_new_channels_until_one_ends() {
    let mut s = Streams::new(Limits { max_peer_streams: 2, ..Limits::default() });
    for id in 1..=3 {
        s.opened(id, "moq-bi", PROTOCOL, Opener::Them);
    }
    s.opened(4, "moq-bi", PROTOCOL, Opener::Us); // ours do not count
    let o = all(&mut s);
    assert_eq!(o[2], Output::Close { id: 3 });
    assert_eq!(o.len(), 4);
    s.closed(1);
    all(&mut s);
    s.opened(5, "moq-uni", PROTOCOL, Opener::Them);
    assert_eq!(all(&mut s), [Output::Opened { id: 5, kind: Kind::Uni, by: Opener::Them }]);
}

#[test]
fn receive_budget_is_a_violation_until_consumed() {
    let mut s = Streams::new(Limits { recv_budget: 10, ..Limits::default() });
    s.opened(1, "moq-uni", PROTOCOL, Opener::Them);
    s.received(1, bin(&[0; 8]));
    s.consumed(8);
    s.received(1, bin(&[0; 10]));
    assert_eq!(all(&mut s).len(), 3);
    s.received(1, bin(&[0]));
    assert!(is_violation(&all(&mut s)));
    // Dead: inputs are ignored, local requests refused.
    s.opened(2, "moq-uni", PROTOCOL, Opener::Them);
    assert_eq!(all(&mut s), []);
    assert_eq!(s.write(1, Bytes::new()), Err(LocalError::Closed));
}

#[test]
fn garbage_is_a_violation_never_a_panic() {
    let cases: Vec<(&str, &str, Opener, Vec<Message>)> = vec![
        ("bad signal", "moq-uni", Opener::Them, vec![text("finish")]),
        ("leading zero", "moq-uni", Opener::Them, vec![text("reset 01")]),
        ("code too big", "moq-uni", Opener::Them, vec![text("reset 4294967296")]),
        ("signed code", "moq-uni", Opener::Them, vec![text("reset +1")]),
        ("two spaces", "moq-uni", Opener::Them, vec![text("reset  1")]),
        ("data after fin", "moq-uni", Opener::Them, vec![text("fin"), bin(b"x")]),
        ("data after reset", "moq-bi", Opener::Them, vec![text("reset 3"), bin(b"x")]),
        ("second fin", "moq-bi", Opener::Us, vec![text("fin"), text("fin")]),
        ("data to the opener of a uni", "moq-uni", Opener::Us, vec![bin(b"x")]),
        ("fin to the opener of a uni", "moq-uni", Opener::Us, vec![text("fin")]),
        ("stop from the opener of a uni", "moq-uni", Opener::Them, vec![text("stop 0")]),
        ("oversized", "moq-bi", Opener::Them, vec![bin(&vec![0; MAX_MESSAGE + 1])]),
        ("text datagram", "moq-dgram", Opener::Them, vec![text("x")]),
        ("binary on moq-gw", "moq-gw", Opener::Them, vec![bin(b"{}")]),
        ("gw not json", "moq-gw", Opener::Them, vec![text("{")]),
        ("gw unknown t", "moq-gw", Opener::Them, vec![text(r#"{"t":"hello"}"#)]),
        ("gw bad alias", "moq-gw", Opener::Them, vec![text(r#"{"t":"audio-in","alias":-1}"#)]),
        ("gw no alias", "moq-gw", Opener::Them, vec![text(r#"{"t":"audio-in"}"#)]),
        ("gw priority 256", "moq-gw", Opener::Them, vec![text(r#"{"t":"audio-out","alias":1,"priority":256}"#)]),
        ("gw code too big", "moq-gw", Opener::Them, vec![text(r#"{"t":"close","code":4294967296}"#)]),
        ("gw not an object", "moq-gw", Opener::Them, vec![text("[1]")]),
        ("invalid utf-8 as lossy text", "moq-uni", Opener::Them, vec![text(&String::from_utf8_lossy(&[0xff, 0xfe]))]),
    ];
    for (name, label, by, msgs) in cases {
        let mut s = Streams::new(Limits::default());
        s.opened(7, label, PROTOCOL, by);
        all(&mut s);
        for m in msgs {
            s.received(7, m);
        }
        let o = all(&mut s);
        assert!(o.last().is_some_and(|o| matches!(o, Output::Violation(_))), "{name}: {o:?}");
        assert!(s.is_dead(), "{name}");
    }
}

#[test]
fn gateway_messages_round_trip() {
    let msgs = [
        GwMessage::Close { code: 2, reason: "bad \"token\"\n".into() },
        GwMessage::AudioOut { alias: Some(7), priority: 128 },
        GwMessage::AudioOut { alias: None, priority: 3 },
        GwMessage::AudioIn { alias: Some(u64::from(u32::MAX) + 1) },
        GwMessage::AudioIn { alias: None },
    ];
    for m in msgs {
        assert_eq!(GwMessage::parse(&m.to_text()), Some(m.clone()), "{}", m.to_text());
    }
    assert_eq!(GwMessage::AudioOut { alias: Some(7), priority: 128 }.to_text(), r#"{"t":"audio-out","alias":7,"priority":128}"#);
    assert_eq!(GwMessage::parse(r#"{"t":"audio-out","alias":null,"x":1}"#), Some(GwMessage::AudioOut { alias: None, priority: 128 }));
    assert_eq!(GwMessage::parse(r#"{"t":"close","code":3}"#), Some(GwMessage::Close { code: 3, reason: String::new() }));

    let mut s = session();
    s.send_gateway(&GwMessage::Close { code: 3, reason: "x".into() }).unwrap();
    s.received(1, text(r#"{"t":"audio-in","alias":4}"#));
    assert_eq!(
        all(&mut s),
        [
            Output::Gateway(GwMessage::AudioIn { alias: Some(4) }),
            Output::Send { id: 1, msg: text(r#"{"t":"close","code":3,"reason":"x"}"#) }
        ]
    );
}

#[test]
fn datagrams_pass_through_and_refused_ones_are_dropped() {
    let mut s = Streams::new(Limits::default());
    assert_eq!(s.send_datagram(Bytes::from_static(b"d")), Err(LocalError::Unknown));
    s.opened(2, "moq-dgram", PROTOCOL, Opener::Them);
    s.received(2, bin(b"in"));
    s.send_datagram(Bytes::from_static(b"out")).unwrap();
    let o = all(&mut s);
    assert_eq!(o[1..], [Output::Datagram(Bytes::from_static(b"in")), Output::Send { id: 2, msg: bin(b"out") }]);
    s.refused(2, bin(b"out"));
    s.writable();
    assert_eq!(all(&mut s), []);
}

#[test]
fn signal_parser() {
    assert_eq!(Signal::parse("fin"), Some(Signal::Fin));
    assert_eq!(Signal::parse("reset 0"), Some(Signal::Reset(0)));
    assert_eq!(Signal::parse("stop 4294967295"), Some(Signal::Stop(u32::MAX)));
    for bad in ["", "fin ", "FIN", "reset", "reset ", "reset -1", "reset 1 2", "stop 0x1", "close 1", "reset 1\n"] {
        assert_eq!(Signal::parse(bad), None, "{bad:?}");
    }
    assert_eq!(clip(&"é".repeat(40)).len(), 64);
}

#[test]
fn channels_we_closed_are_kept_bounded_until_str0m_confirms() {
    let mut s = session();
    for id in 100..100 + MAX_CLOSING as u64 + 10 {
        s.opened(id, "moq-uni", PROTOCOL, Opener::Them);
        s.received(id, text("fin"));
        all(&mut s);
    }
    // gw + dgram + the most recent MAX_CLOSING closed ones.
    assert_eq!(s.channels.len(), 2 + MAX_CLOSING);
    assert_eq!(s.peer_streams, 0);
    // A late message on a kept one is judged; confirmation forgets it quietly.
    let last = 100 + MAX_CLOSING as u64 + 9;
    s.closed(last);
    assert_eq!(all(&mut s), []);
    s.received(last - 1, bin(b"after fin"));
    assert!(is_violation(&all(&mut s)));
}

#[test]
fn moq_gw_still_says_why_after_a_violation() {
    let mut s = session();
    s.opened(10, "moq-uni", PROTOCOL, Opener::Them);
    s.received(10, text("nonsense"));
    assert!(is_violation(&all(&mut s)));
    let close = GwMessage::Close { code: 3, reason: "bad signal".into() };
    s.send_gateway(&close).unwrap();
    assert_eq!(all(&mut s), [Output::Send { id: 1, msg: text(&close.to_text()) }]);
    assert_eq!(s.send_datagram(Bytes::from_static(b"x")), Err(LocalError::Closed));
}

#[test]
fn text_that_is_not_utf8_is_a_violation_on_known_channels_only() {
    let mut s = session();
    s.received_bad_text(99);
    assert_eq!(all(&mut s), []);
    s.received_bad_text(1);
    assert!(is_violation(&all(&mut s)));
}
