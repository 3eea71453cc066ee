//! The node's events as the page sees them: each `NodeEvent` turned into a
//! named JS event and its payload, handed to the page's listeners.

use protoblock_net::node::NodeEvent;
use wasm_bindgen::prelude::*;

use crate::view::{BlockEvent, ErrorEvent, PeerEvent, ReachableEvent, SyncEvent, TxEvent};

use super::{Inner, KNOWN_PEERS, MAX_KNOWN_PEERS, browser_dialable, to_js};
use protoblock_store::Store;

impl Inner {
    fn emit(&self, event: &str, payload: JsValue) {
        // Clone first: a listener may call on()/off() re-entrantly.
        let fs = self.listeners.borrow().get(event).cloned().unwrap_or_default();
        for f in fs {
            if let Err(e) = f.call1(&JsValue::NULL, &payload) {
                web_sys::console::error_2(&JsValue::from_str(&format!("protoblock '{event}' listener threw:")), &e);
            }
        }
    }

    pub(super) async fn dispatch(&self, ev: NodeEvent) {
        let peer = |p: &libp2p::PeerId, up, reason: Option<&String>, banned| PeerEvent {
            peer_id: p.to_string(),
            up,
            reason: reason.cloned(),
            banned,
        };
        let (name, payload) = match &ev {
            NodeEvent::NewHead { height, id, txs } => {
                let txs = txs.iter().map(|t| t.to_hex()).collect();
                ("block", to_js(&BlockEvent { height: *height, id: id.to_hex(), txs }))
            }
            NodeEvent::PeerUp { peer: p } => {
                self.remember_peers().await;
                ("peer", to_js(&peer(p, true, None, false)))
            }
            NodeEvent::PeerDown { peer: p } => ("peer", to_js(&peer(p, false, None, false))),
            NodeEvent::PeerBanned { peer: p, reason } => ("peer", to_js(&peer(p, false, Some(reason), true))),
            NodeEvent::PeerIncompatible { peer: p, reason } => ("peer", to_js(&peer(p, false, Some(reason), false))),
            NodeEvent::TxAccepted { id } => ("tx", to_js(&TxEvent { id: id.to_hex() })),
            NodeEvent::SyncProgress { head, target, syncing } => {
                ("sync", to_js(&SyncEvent { head_height: *head, target_height: *target, syncing: *syncing }))
            }
            NodeEvent::Reachable { addr } => ("reachable", to_js(&ReachableEvent { addr: addr.to_string() })),
            NodeEvent::StoreFailed { error } => (
                "error",
                to_js(&ErrorEvent {
                    message: format!("storage failed, the node stopped following the chain: {error}"),
                    code: "store_failed",
                }),
            ),
            NodeEvent::Listening { .. } | NodeEvent::Discovered { .. } => return,
        };
        match payload {
            Ok(p) => self.emit(name, p),
            Err(e) => self.emit("error", JsValue::from(e)),
        }
    }

    /// Keeps the addresses of connected peers this page dialled, so a reload
    /// can reach them even before the relay answers (bounded).
    async fn remember_peers(&self) {
        let Some(st) = self.handle.status().await else { return };
        let me = &st.peer_id;
        let addrs: Vec<String> = st
            .peers
            .iter()
            .filter_map(|p| {
                let a = p.addr.clone()?;
                if !browser_dialable(&a) || p.peer == *me {
                    return None;
                }
                Some(a.with_p2p(p.peer).unwrap_or_else(|a| a).to_string())
            })
            .take(MAX_KNOWN_PEERS)
            .collect();
        if !addrs.is_empty()
            && let Err(e) = self.store.put_meta(KNOWN_PEERS, addrs.join("\n").into_bytes()).await
        {
            tracing::warn!(error = %e, "saving known peers");
        }
    }
}
