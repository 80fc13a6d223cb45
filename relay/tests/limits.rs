//! Per-session limits at a real relay process (issue 13): each limit is hit
//! once and enforced with REQUEST_ERROR EXCESSIVE_LOAD, the offender's
//! session goes on, another session is served, and /metrics counts each.

mod common;
use common::{read_frame, session, Relay};
use moq_wire::control::{encode_request, Response};
use moq_wire::message::{Message, Publish, PublishNamespace, Subscribe, SubscribeNamespace};

/// Opens a request stream and returns the first answer, keeping the stream
/// (the request stays in force while it is open).
async fn request(conn: &quinn::Connection, msg: &Message) -> (Response, (quinn::SendStream, quinn::RecvStream)) {
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.write_all(&encode_request(msg).unwrap()).await.unwrap();
    let r = read_frame(&mut recv).await.expect("an answer").response().unwrap();
    (r, (send, recv))
}

fn excessive(r: &Response) -> bool {
    matches!(r, Response::RequestError { code: 0x9, .. })
}

fn ns(p: &str) -> moq_wire::coding::TrackNamespace {
    moq_wire::coding::TrackNamespace::from_utf8_path(p)
}

#[tokio::test]
async fn each_session_limit_refuses_the_excess_and_the_session_goes_on() {
    let relay = Relay::start(&[
        "--max-namespaces",
        "1",
        "--max-namespace-watches",
        "1",
        "--max-subscriptions",
        "1",
        "--max-published-tracks",
        "1",
        "--max-requests-per-sec",
        "1",
        "--request-burst",
        "12",
    ]);
    let (conn, _ctl, _theirs) = session(&relay).await;
    let mut held = Vec::new();
    let mut id = 0;
    let mut next = || {
        id += 2;
        id - 2
    };

    // Namespaces: one in force, the second refused.
    let announce = |id, p: &str| Message::PublishNamespace(PublishNamespace { id, track_namespace: ns(p), params: Default::default() });
    let (r, s) = request(&conn, &announce(next(), "limits/a")).await;
    assert!(matches!(r, Response::RequestOk(_)), "{r:?}");
    held.push(s);
    assert!(excessive(&request(&conn, &announce(next(), "limits/b")).await.0));

    // Namespace watches.
    let watch = |id, p: &str| {
        Message::SubscribeNamespace(SubscribeNamespace {
            id,
            track_namespace_prefix: moq_wire::coding::TrackNamespacePrefix::from_utf8_path(p),
            params: Default::default(),
        })
    };
    let (r, s) = request(&conn, &watch(next(), "w1")).await;
    assert!(matches!(r, Response::RequestOk(_)), "{r:?}");
    held.push(s);
    assert!(excessive(&request(&conn, &watch(next(), "w2")).await.0));

    // Published tracks.
    let publish = |id, alias, t: &str| {
        Message::Publish(Publish {
            id,
            track_namespace: ns("limits/pub"),
            track_name: t.into(),
            track_alias: alias,
            params: Default::default(),
            track_extensions: Default::default(),
        })
    };
    let (r, s) = request(&conn, &publish(next(), 1, "t1")).await;
    assert!(matches!(r, Response::PublishOk(_)), "{r:?}");
    held.push(s);
    assert!(excessive(&request(&conn, &publish(next(), 2, "t2")).await.0));

    // Subscriptions: one to the track published above (SUBSCRIBE_OK, held
    // open), then the next is refused.
    let sub = |id, t: &str| {
        Message::Subscribe(Subscribe { id, track_namespace: ns("limits/pub"), track_name: t.into(), params: Default::default() })
    };
    let (r, s) = request(&conn, &sub(next(), "t1")).await;
    assert!(matches!(r, Response::SubscribeOk { .. }), "{r:?}");
    held.push(s);
    assert!(excessive(&request(&conn, &sub(next(), "t1")).await.0), "a second subscription while one is open is refused");

    // The request rate, on a session of its own (every slot above is held):
    // a burst of 12, then refusals with a Retry Interval (§10.6: ms + 1).
    let (rater, _rctl, _rtheirs) = session(&relay).await;
    let mut rate_refused = None;
    for i in 0..64u64 {
        let probe = Message::TrackStatus(moq_wire::message::TrackStatus {
            id: 2 * i,
            track_namespace: ns("none/x"),
            track_name: "t".into(),
            params: Default::default(),
        });
        // (A refusal with Retry Interval 0 is the subscription limit of 1:
        // the previous probe's slot is freed just after its answer is sent.)
        if let Response::RequestError { code: 0x9, retry_interval: 1.., .. } = request(&rater, &probe).await.0 {
            rate_refused = Some(i);
            break;
        }
    }
    let at = rate_refused.expect("requests beyond the burst are refused, saying when to retry");
    assert!(at >= 12, "the burst of 12 passes first (refused at request {at})");
    assert!(rater.close_reason().is_none(), "the rate offender's session goes on too");

    // The offender's session is still open, and another session is served.
    assert!(conn.close_reason().is_none(), "the offender's session goes on");
    let (other, _octl, _otheirs) = session(&relay).await;
    assert!(matches!(common::probe(&other, 0).await, Response::RequestError { code: 0x10, .. }));
    let metrics = relay.http_get("/metrics");
    for limit in ["namespaces", "namespace_watches", "subscriptions", "published_tracks", "request_rate"] {
        assert!(metrics.contains(&format!("moq_relay_limit_refusals_total{{limit=\"{limit}\"}}")), "{limit} not counted:\n{metrics}");
    }
    drop(held);
}

/// One source address cannot hold more than `--max-sessions-per-address`
/// sessions: the next connection is refused before its handshake, and the
/// ones it has are still served.
#[tokio::test]
async fn sessions_per_address_and_in_total_are_capped() {
    // (All from 127.0.0.1 here: the per-address cap and the total cap each refuse the third.)
    for (flag, label) in [("--max-sessions-per-address", "sessions_per_address"), ("--max-sessions", "sessions")] {
        let relay = Relay::start(&[flag, "2"]);
        let (a, _actl, _atheirs) = session(&relay).await;
        let (b, _bctl, _btheirs) = session(&relay).await;
        let refused = common::try_connect(&relay).await;
        assert!(matches!(refused, Err(quinn::ConnectionError::ConnectionClosed(_))), "{flag}: third session: {refused:?}");
        for conn in [&a, &b] {
            assert!(matches!(common::probe(conn, 0).await, Response::RequestError { code: 0x10, .. }), "{flag}: the others go on");
        }
        let metrics = relay.http_get("/metrics");
        assert!(metrics.contains(&format!("moq_relay_limit_refusals_total{{limit=\"{label}\"}} 1")), "{flag}: {metrics}");
    }
}

#[tokio::test]
async fn a_silent_peer_is_dropped_at_the_idle_timeout_and_others_stay() {
    let relay = Relay::start(&["--idle-timeout-secs", "1"]);
    // One peer sends keep-alives; the other goes silent after SETUP (a phone
    // that lost its network sends no CONNECTION_CLOSE).
    let alive = common::try_connect_with(&relay, "127.0.0.1".parse().unwrap(), Some(std::time::Duration::from_millis(200))).await.unwrap();
    let mut ctl = alive.open_uni().await.unwrap();
    ctl.write_all(&common::setup_bytes()).await.unwrap();
    let (silent, _sctl, _stheirs) = session(&relay).await;
    assert!(matches!(silent.closed().await, quinn::ConnectionError::TimedOut));
    relay.wait_log("session timed out: its peer went silent");
    assert_eq!(relay.metric("moq_relay_errors_total{code=\"idle_timeout\"}"), Some(1.0));
    assert!(matches!(common::probe(&alive, 0).await, Response::RequestError { .. }), "the other session is still served");
}
