//! What each relay does with the draft-18 flows the load and the phones
//! use: a few short probes, reported next to the numbers (a relay that
//! cannot do one of them cannot carry that part of the load).

use crate::relays::Relay;
use bytes::Bytes;
use moq_client::{DatagramSpec, NamespaceEvent, Session, SubscribeParams, Subscription};
use moq_wire::coding::{TrackNamespace, TrackNamespacePrefix};
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

pub struct Probe {
    pub name: &'static str,
    pub result: Result<String, String>,
}

async fn count(sub: &mut Subscription, want: usize) -> usize {
    let mut n = 0;
    while n < want && sub.next_object(Duration::from_millis(700)).await.is_ok() {
        n += 1;
    }
    n
}

/// SUBSCRIBE from `sub` to `ns`/`track`, answered by `publ` (PUBLISH_NAMESPACE flow).
async fn routed(
    publ: &Session,
    sub: &Session,
    ns: &TrackNamespace,
    track: &str,
) -> Result<(Subscription, moq_client::TrackPublisher), String> {
    let (s, p) = tokio::join!(sub.subscribe(ns, track, SubscribeParams::new()), async {
        let inc = publ.accept_subscribe(T).await?;
        inc.accept(1).await
    });
    match (s, p) {
        (Ok(s), Ok(p)) => Ok((s, p)),
        (Err(e), _) => Err(format!("SUBSCRIBE: {e}")),
        (_, Err(e)) => Err(format!("publisher side: {e}")),
    }
}

fn ok_if(got: usize, want: usize, what: &str) -> Result<String, String> {
    if got == want {
        Ok(format!("{got}/{want} {what}"))
    } else {
        Err(format!("{got}/{want} {what}"))
    }
}

pub async fn run(relay: &Relay) -> Vec<Probe> {
    let mut out = Vec::new();
    let tag = format!("probe{}", std::process::id());
    let ns = |s: &str| TrackNamespace::from_utf8_path(&format!("bench/{tag}/{s}"));
    let d = relay.dial();
    let sessions = async { Ok::<_, anyhow::Error>((d.connect().await?, d.connect().await?, d.connect().await?)) };
    let (a, b, c) = match sessions.await {
        Ok(x) => x,
        Err(e) => {
            out.push(Probe { name: "session (CLIENT_SETUP/SERVER_SETUP, moqt-18)", result: Err(format!("{e:#}")) });
            return out;
        }
    };
    out.push(Probe { name: "session (CLIENT_SETUP/SERVER_SETUP, moqt-18)", result: Ok(b.peer_implementation().unwrap_or_default()) });

    // SUBSCRIBE_NAMESPACE first, so the announcement below must be forwarded.
    let watch = c.subscribe_namespace(&TrackNamespacePrefix { fields: ns("x").fields[..2].to_vec() }).await;
    let ann = a.publish_namespace(&ns("calls")).await;
    out.push(Probe { name: "PUBLISH_NAMESPACE", result: ann.as_ref().map(|_| "REQUEST_OK".into()).map_err(|e| e.to_string()) });
    let seen = match watch {
        Err(e) => Err(format!("SUBSCRIBE_NAMESPACE refused: {e}")),
        Ok(mut w) => match w.next(T).await {
            Ok(NamespaceEvent::Namespace(s)) => {
                Ok(format!("NAMESPACE {:?}", s.fields.iter().map(|f| String::from_utf8_lossy(&f.value).into_owned()).collect::<Vec<_>>()))
            }
            Ok(other) => Err(format!("{other:?}")),
            Err(e) => Err(format!("no NAMESPACE: {e}")),
        },
    };
    out.push(Probe { name: "SUBSCRIBE_NAMESPACE sees a later PUBLISH_NAMESPACE", result: seen });

    // SUBSCRIBE routed by the announcement; objects as datagrams, and on
    // another track as streams (one track never mixes the two).
    match routed(&a, &b, &ns("calls"), "audio").await {
        Err(e) => out.push(Probe { name: "SUBSCRIBE routed by PUBLISH_NAMESPACE", result: Err(e) }),
        Ok((mut sub, publ)) => {
            out.push(Probe { name: "SUBSCRIBE routed by PUBLISH_NAMESPACE", result: Ok("SUBSCRIBE_OK".into()) });
            for i in 0..10u64 {
                let _ = publ.send_datagram(&DatagramSpec::new(i / 5, i % 5, Bytes::from(vec![7u8; 80])));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            out.push(Probe { name: "OBJECT_DATAGRAM forwarded", result: ok_if(count(&mut sub, 10).await, 10, "datagrams") });
        }
    }
    let streams = match routed(&a, &b, &ns("calls"), "audio-streams").await {
        Err(e) => Err(e),
        Ok((mut sub, publ)) => {
            for g in 0..10u64 {
                let _ = publ.send_group(g, &[Bytes::from(vec![7u8; 80])]).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            ok_if(count(&mut sub, 10).await, 10, "objects")
        }
    };
    out.push(Probe { name: "SUBGROUP streams forwarded (stream per object)", result: streams });

    // Direct PUBLISH (no PUBLISH_NAMESPACE), then a SUBSCRIBE for it.
    let direct = async {
        let p = a.publish(&ns("direct"), "audio", 9).await.map_err(|e| format!("PUBLISH: {e}"))?;
        let mut s =
            b.subscribe(&ns("direct"), "audio", SubscribeParams::new()).await.map_err(|e| format!("SUBSCRIBE after PUBLISH: {e}"))?;
        for g in 0..5u64 {
            let _ = p.send_group(g, &[Bytes::from(vec![7u8; 80])]).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        ok_if(count(&mut s, 5).await, 5, "objects")
    };
    out.push(Probe { name: "direct PUBLISH, then SUBSCRIBE", result: direct.await });
    out
}
