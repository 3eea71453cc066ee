//! Answering peers: block ranges (read from the store, off the loop),
//! the mempool, and the peers we know.

use std::collections::HashSet;

use pb::sync_response::Kind as R;
use protoblock_proto::v1 as pb;

use crate::PeerKey;
use crate::io::{Action, ReplyId, Token};
use crate::service::{MEMPOOL_SYNC, NodeService, PEERS_SHARED, RANGE};

impl<P: PeerKey> NodeService<P> {
    pub(crate) fn serve(&mut self, peer: P, reply: ReplyId, req: pb::SyncRequest) {
        let kind = match req.kind {
            Some(pb::sync_request::Kind::Blocks(_)) if !self.cfg.serve_sync => R::Error("not serving sync".into()),
            // Bounded: one peer (or many) cannot queue unbounded reads on the store.
            Some(pb::sync_request::Kind::Blocks(_)) if self.reads.len() >= self.cfg.max_reads => {
                R::Error("busy".into())
            }
            Some(pb::sync_request::Kind::Blocks(r)) => {
                let token = self.token();
                self.reads.insert(token, reply);
                self.actions.push_back(Action::ReadBlocks {
                    token,
                    start: r.start_height,
                    count: r.count.min(RANGE),
                    max_bytes: self.cfg.max_response_bytes,
                });
                return;
            }
            Some(pb::sync_request::Kind::Mempool(r)) => R::Mempool(self.mempool_answer(&r)),
            Some(pb::sync_request::Kind::Peers(r)) => R::Peers(self.peers_answer(peer, &r)),
            None => R::Error("empty request".into()),
        };
        self.actions.push_back(Action::Reply { reply, response: pb::SyncResponse { kind: Some(kind) } });
    }

    pub(crate) fn on_blocks_read(&mut self, token: Token, result: Result<Vec<Vec<u8>>, String>) {
        let Some(reply) = self.reads.remove(&token) else { return };
        let kind = match result {
            Ok(blocks) => {
                #[cfg(feature = "test-hooks")]
                let blocks =
                    if self.cfg.serve_tampered_blocks { blocks.iter().map(|b| tamper(b)).collect() } else { blocks };
                self.counters.blocks_served += blocks.len() as u64;
                R::Blocks(pb::BlockRangeResponse { blocks })
            }
            Err(e) => R::Error(format!("store: {e}")),
        };
        self.actions.push_back(Action::Reply { reply, response: pb::SyncResponse { kind: Some(kind) } });
    }

    fn mempool_answer(&self, r: &pb::MempoolRequest) -> pb::MempoolResponse {
        let known: HashSet<&[u8]> = r.known_ids.iter().take(MEMPOOL_SYNC).map(|v| v.as_slice()).collect();
        let max = (r.max as usize).min(MEMPOOL_SYNC);
        let mut size = 0;
        let txs = self
            .mempool
            .iter()
            .filter(|p| !known.contains(p.tx.id.0.as_slice()))
            .take(max)
            .take_while(|p| {
                size += p.bytes.len();
                size < self.cfg.max_response_bytes / 2
            })
            .map(|p| p.bytes.to_vec())
            .collect();
        pb::MempoolResponse { txs }
    }

    fn peers_answer(&self, asker: P, r: &pb::PeersRequest) -> pb::PeersResponse {
        let peers = self
            .peers
            .iter()
            .filter(|(id, p)| **id != asker && p.ready && !p.listen.is_empty())
            .take((r.max as usize).min(PEERS_SHARED))
            .map(|(id, p)| pb::PeerRecord { peer_id: id.to_bytes(), addrs: p.listen.clone() })
            .collect();
        pb::PeersResponse { peers }
    }
}

/// Flips one bit of a block's header signature (the lying-peer test hook).
#[cfg(feature = "test-hooks")]
fn tamper(block: &[u8]) -> Vec<u8> {
    use prost::Message;
    match pb::Block::decode(block) {
        Ok(mut b) => {
            if let Some(x) = b.signature.first_mut() {
                *x ^= 1;
            }
            b.encode_to_vec()
        }
        Err(_) => block.to_vec(),
    }
}
