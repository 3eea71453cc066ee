//! Answering peers: block ranges (read from the store, off the loop),
//! the mempool, and the peers we know.
//!
//! Every peer has a budget, so no peer can stop others from being served:
//! `max_reads_per_peer` range answers in progress (of `max_reads` store
//! reads in all), counted until the transport reports the answer written
//! or failed, so a peer that never reads its answers holds a few of them
//! until the transport's timeout and no more; the bytes of answers being
//! written are bounded over all peers (`max_answering_bytes`); and
//! a token bucket of `serve_per_sec` requests a second (bursts of twice
//! that), where a range costs 1, a peer list 2 and a mempool answer (up to
//! half a response of txs) 4. Beyond it the answer is "rate limited", an
//! honest refusal the asker's planner takes elsewhere.

use std::collections::{BTreeMap, HashSet};

use pb::sync_response::Kind as R;
use protoblock_proto::v1 as pb;

use crate::PeerKey;
use crate::io::{Action, Now, ReplyId, Token};
use crate::service::{MEMPOOL_SYNC, NodeService, PEERS_SHARED, RANGE};

/// What one peer may still ask of us.
#[derive(Debug)]
struct PeerBudget {
    /// Range answers in progress: read, or being written.
    reads: usize,
    /// Tokens, in thousandths.
    tokens_milli: u64,
    at_ms: u64,
}

/// A range answer in progress, until [`Input::ReplyDone`](crate::Input::ReplyDone).
#[derive(Debug)]
struct Answering<P> {
    peer: P,
    /// Its bytes, once read.
    bytes: usize,
}

/// The per-peer serving budgets; a peer's entry goes when it disconnects.
#[derive(Debug)]
pub(crate) struct ServeBudgets<P> {
    peers: BTreeMap<P, PeerBudget>,
    /// Bounded by `max_reads_per_peer` per connected peer.
    answering: BTreeMap<ReplyId, Answering<P>>,
    answering_bytes: usize,
}

impl<P> Default for ServeBudgets<P> {
    fn default() -> Self {
        Self { peers: BTreeMap::new(), answering: BTreeMap::new(), answering_bytes: 0 }
    }
}

impl<P: PeerKey> ServeBudgets<P> {
    /// Takes `cost` tokens from `peer`'s bucket (refilled at `per_sec`, up to
    /// twice that); false if it has not enough.
    fn take(&mut self, peer: P, cost: u64, per_sec: u64, now_ms: u64) -> bool {
        let cap = per_sec * 2 * 1000;
        let b = self.peers.entry(peer).or_insert(PeerBudget { reads: 0, tokens_milli: cap, at_ms: now_ms });
        let refill = now_ms.saturating_sub(b.at_ms).saturating_mul(per_sec);
        b.tokens_milli = b.tokens_milli.saturating_add(refill).min(cap);
        b.at_ms = now_ms;
        match b.tokens_milli >= cost * 1000 {
            true => {
                b.tokens_milli -= cost * 1000;
                true
            }
            false => false,
        }
    }

    pub fn answering_bytes(&self) -> usize {
        self.answering_bytes
    }

    fn reads(&self, peer: &P) -> usize {
        self.peers.get(peer).map_or(0, |b| b.reads)
    }

    fn read_started(&mut self, peer: P, reply: ReplyId) {
        if let Some(b) = self.peers.get_mut(&peer) {
            b.reads += 1;
            self.answering.insert(reply, Answering { peer, bytes: 0 });
        }
    }

    /// The answer under `reply` is `bytes` long and goes to the transport.
    fn read_done(&mut self, reply: ReplyId, bytes: usize) {
        if let Some(a) = self.answering.get_mut(&reply) {
            a.bytes = bytes;
            self.answering_bytes += bytes;
        }
    }

    /// The transport wrote the answer under `reply`, or gave up on it.
    pub fn reply_done(&mut self, reply: ReplyId) {
        let Some(a) = self.answering.remove(&reply) else { return };
        self.answering_bytes = self.answering_bytes.saturating_sub(a.bytes);
        if let Some(b) = self.peers.get_mut(&a.peer) {
            b.reads = b.reads.saturating_sub(1);
        }
    }

    pub fn peer_gone(&mut self, peer: &P) {
        self.peers.remove(peer);
        let gone: Vec<ReplyId> = self.answering.iter().filter(|(_, a)| a.peer == *peer).map(|(r, _)| *r).collect();
        for reply in gone {
            self.reply_done(reply);
        }
    }
}

impl<P: PeerKey> NodeService<P> {
    pub(crate) fn serve(&mut self, now: Now, peer: P, reply: ReplyId, req: pb::SyncRequest) {
        let cost = match &req.kind {
            Some(pb::sync_request::Kind::Blocks(_)) => 1,
            Some(pb::sync_request::Kind::Peers(_)) => 2,
            Some(pb::sync_request::Kind::Mempool(_)) => 4,
            None => 1,
        };
        let within = self.budgets.take(peer, cost, self.cfg.serve_per_sec, now.mono_ms);
        let kind = match req.kind {
            _ if !within => R::Error("rate limited".into()),
            Some(pb::sync_request::Kind::Blocks(_)) if !self.cfg.serve_sync => R::Error("not serving sync".into()),
            // Bounded: one peer (or many) cannot queue unbounded reads on the store.
            Some(pb::sync_request::Kind::Blocks(_))
                if self.reads.len() >= self.cfg.max_reads
                    || self.budgets.reads(&peer) >= self.cfg.max_reads_per_peer
                    || self.budgets.answering_bytes >= self.cfg.max_answering_bytes =>
            {
                R::Error("busy".into())
            }
            Some(pb::sync_request::Kind::Blocks(r)) => {
                let token = self.token();
                self.reads.insert(token, (reply, peer));
                self.budgets.read_started(peer, reply);
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
        let Some((reply, _peer)) = self.reads.remove(&token) else { return };
        let bytes = result.as_ref().map_or(0, |blocks| blocks.iter().map(Vec::len).sum());
        self.budgets.read_done(reply, bytes);
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
