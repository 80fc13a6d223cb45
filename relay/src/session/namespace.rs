//! SUBSCRIBE_NAMESPACE (draft-ietf-moq-transport-18 §6.1, §10.18): the relay
//! answers REQUEST_OK, lists the matching namespaces it knows with NAMESPACE,
//! then streams NAMESPACE / NAMESPACE_DONE as publishers come and go.

use super::io::{FrameReader, StreamError};
use super::request::reply;
use super::SessionHandle;
use crate::router::{Existing, NamespaceWatch, Notice, RouteError};
use crate::state::Relay;
use crate::wire::control::Response;
use crate::wire::RequestErrorCode;
use moq_transport::coding::KeyValuePairs;
use moq_transport::message;
use std::sync::Arc;
use tokio::sync::mpsc;
use web_transport_quinn::SendStream;

pub async fn watch(
    relay: &Arc<Relay>,
    session: &Arc<SessionHandle>,
    m: message::SubscribeNamespace,
    mut send: SendStream,
    mut reader: FrameReader,
) -> Result<(), StreamError> {
    let id = relay.next_id();
    let (tx, mut rx) = mpsc::channel(relay.limits.namespace_queue);
    relay.add_watcher(id, tx);
    let prefix = m.track_namespace_prefix;
    let existing = relay.router().watch(id, NamespaceWatch { session: session.id, prefix: prefix.clone(), tracks: false });
    let existing = match existing {
        Ok(Existing::Namespaces(e)) => e,
        Ok(Existing::Tracks(_)) => Vec::new(),
        Err(RouteError::PrefixOverlap) => {
            relay.remove_watcher(id);
            reply(&mut send, Response::error(RequestErrorCode::PrefixOverlap, 0, "prefix overlaps another namespace subscription")).await?;
            let _ = send.finish();
            return Ok(());
        }
    };
    tracing::debug!(session = session.id, %prefix, "namespace watch");
    let res = async {
        reply(&mut send, Response::RequestOk(KeyValuePairs::new())).await?;
        for suffix in existing {
            reply(&mut send, Response::Namespace(suffix)).await?;
        }
        loop {
            tokio::select! {
                n = rx.recv() => match n {
                    Some(Notice::Namespace { suffix, .. }) => reply(&mut send, Response::Namespace(suffix)).await?,
                    Some(Notice::Done { suffix, .. }) => reply(&mut send, Response::NamespaceDone(suffix)).await?,
                    Some(Notice::Track { .. }) => {}
                    None => {
                        // Our queue overflowed: reset instead of blocking the relay (§10.18).
                        let _ = send.reset(crate::wire::stream_error::EXCESSIVE_LOAD);
                        return Ok(());
                    }
                },
                f = reader.next() => match f {
                    Ok(f) => match f.response()? {
                        Response::RequestUpdate { .. } => reply(&mut send, Response::RequestOk(KeyValuePairs::new())).await?,
                        _ => continue,
                    },
                    Err(StreamError::Closed | StreamError::Reset(_)) => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
        }
    }
    .await;
    relay.remove_watcher(id);
    let _ = send.finish();
    res
}
