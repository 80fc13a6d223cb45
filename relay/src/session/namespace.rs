//! SUBSCRIBE_NAMESPACE (draft-ietf-moq-transport-18 §6.1, §10.18): the relay
//! answers REQUEST_OK, lists the matching namespaces it knows with NAMESPACE,
//! then streams NAMESPACE / NAMESPACE_DONE as publishers come and go.
//!
//! [`Watch`] is the plumbing shared with SUBSCRIBE_TRACKS (§10.19): register
//! with the router, answer PREFIX_OVERLAP, then hand each notice on until the
//! subscriber closes the request stream.

use super::handle::SessionHandle;
use super::io::{reply, FrameReader, StreamError};
use super::transport::SendStream;
use crate::routing::router::{Existing, NamespaceWatch, Notice, RouteError};
use crate::state::Relay;
use crate::wire::control::Response;
use crate::wire::RequestErrorCode;
use moq_wire::coding::{KeyValuePairs, TrackNamespacePrefix};
use moq_wire::message;
use std::sync::Arc;
use tokio::sync::mpsc;

/// A registered SUBSCRIBE_NAMESPACE or SUBSCRIBE_TRACKS.
pub struct Watch {
    id: u64,
    rx: mpsc::Receiver<Notice>,
    pub existing: Existing,
}

impl Watch {
    /// Registers the watch, or answers PREFIX_OVERLAP and returns `None`.
    pub async fn register(
        relay: &Relay,
        session: &SessionHandle,
        prefix: TrackNamespacePrefix,
        tracks: bool,
        send: &mut SendStream,
    ) -> Result<Option<Watch>, StreamError> {
        let id = relay.next_id();
        let (tx, rx) = mpsc::channel(relay.limits.namespace_queue);
        relay.add_watcher(id, tx);
        let registered = relay.router().watch(id, NamespaceWatch { session: session.id, prefix, tracks });
        match registered {
            Ok(existing) => Ok(Some(Watch { id, rx, existing })),
            Err(RouteError::PrefixOverlap) => {
                relay.remove_watcher(id);
                reply(send, Response::error(RequestErrorCode::PrefixOverlap, 0, "prefix overlaps another subscription of this kind"))
                    .await?;
                let _ = send.finish();
                Ok(None)
            }
        }
    }

    /// Serves the request stream after REQUEST_OK: every notice goes to
    /// `on_notice`, whose answer (if any) is written; REQUEST_UPDATE is
    /// acknowledged; the stream ending ends the watch. A notice queue that
    /// overflowed resets the stream instead of blocking the relay (§10.18).
    pub async fn serve(
        mut self,
        relay: &Relay,
        session: &SessionHandle,
        send: &mut SendStream,
        reader: &mut FrameReader,
        mut on_notice: impl FnMut(Notice) -> Option<Response>,
    ) -> Result<(), StreamError> {
        let res = async {
            loop {
                tokio::select! {
                    n = self.rx.recv() => match n {
                        Some(n) => {
                            if let Some(r) = on_notice(n) {
                                reply(send, r).await?;
                            }
                        }
                        None => {
                            let _ = send.reset(crate::wire::stream_error::EXCESSIVE_LOAD);
                            return Ok(());
                        }
                    },
                    f = reader.next() => match f {
                        Ok(f) => match f.response()? {
                            Response::RequestUpdate { id, params } => {
                                session.accept_update(id, &params, moq_wire::request::Updated::NamespaceSubscription)?;
                                reply(send, Response::RequestOk(KeyValuePairs::new())).await?
                            }
                            _ => continue,
                        },
                        Err(StreamError::Closed | StreamError::Reset(_)) => return Ok(()),
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        .await;
        relay.remove_watcher(self.id);
        let _ = send.finish();
        res
    }

    /// Ends the watch without serving it (the REQUEST_OK could not be written).
    pub fn cancel(self, relay: &Relay) {
        relay.remove_watcher(self.id);
    }
}

pub async fn watch(
    relay: &Arc<Relay>,
    session: &Arc<SessionHandle>,
    m: message::SubscribeNamespace,
    mut send: SendStream,
    mut reader: FrameReader,
) -> Result<(), StreamError> {
    let prefix = m.track_namespace_prefix;
    let Some(mut w) = Watch::register(relay, session, prefix.clone(), false, &mut send).await? else { return Ok(()) };
    tracing::debug!(session = session.id, %prefix, "namespace watch");
    let existing = match std::mem::replace(&mut w.existing, Existing::Namespaces(Vec::new())) {
        Existing::Namespaces(e) => e,
        Existing::Tracks(_) => Vec::new(),
    };
    let opened = async {
        reply(&mut send, Response::RequestOk(KeyValuePairs::new())).await?;
        for suffix in existing {
            reply(&mut send, Response::Namespace(suffix)).await?;
        }
        Ok::<_, StreamError>(())
    }
    .await;
    if let Err(e) = opened {
        w.cancel(relay);
        return Err(e);
    }
    w.serve(relay, session, &mut send, &mut reader, |n| match n {
        Notice::Namespace { suffix, .. } => Some(Response::Namespace(suffix)),
        Notice::Done { suffix, .. } => Some(Response::NamespaceDone(suffix)),
        Notice::Track { .. } => None,
    })
    .await
}
