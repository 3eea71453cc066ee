//! The status handshake: both sides send their status and answer the
//! other's. Another protocol version or chain drops the peer; the first
//! matching status makes it a peer (mempool sync and peer exchange follow).

use protoblock_proto::v1 as pb;

use crate::PeerKey;
use crate::config::PROTOCOL_VERSION;
use crate::io::{Action, Event, Now};
use crate::service::{MEMPOOL_SYNC, NodeService, Purpose};

impl<P: PeerKey> NodeService<P> {
    pub(crate) fn on_peer_status(&mut self, now: Now, peer: P, s: &pb::Status) {
        if self.bans.is_banned(&peer, now.mono_ms) {
            self.actions.push_back(Action::Disconnect { peer });
            return;
        }
        let reason = if s.protocol_version != PROTOCOL_VERSION {
            Some(format!("protocol version {} (ours {PROTOCOL_VERSION})", s.protocol_version))
        } else if s.genesis_hash != self.chain.genesis().hash.0 {
            Some(format!("another chain (genesis {})", hex::encode(&s.genesis_hash)))
        } else {
            None
        };
        if let Some(reason) = reason {
            self.peers.remove(&peer);
            self.planner.peer_gone(&peer);
            self.actions.push_back(Action::Disconnect { peer });
            self.emit(Event::PeerIncompatible { peer, reason });
            return;
        }
        let info = self.peers.entry(peer).or_default();
        info.head = info.head.max(s.head_height);
        let first = !info.ready;
        info.ready = true;
        self.planner.peer_head(peer, s.head_height);
        self.planner.peer_lowest(peer, s.lowest_height);
        self.met_a_peer = true;
        if first {
            self.emit(Event::PeerUp { peer });
            let known: Vec<Vec<u8>> = self.mempool.iter().take(MEMPOOL_SYNC).map(|p| p.tx.id.0.to_vec()).collect();
            let kind =
                pb::sync_request::Kind::Mempool(pb::MempoolRequest { known_ids: known, max: MEMPOOL_SYNC as u32 });
            self.send_request(peer, Purpose::Mempool, kind);
            self.ask_for_peers(peer, now);
        }
        self.plan_sync(now);
    }
}
