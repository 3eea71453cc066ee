//! Range sync: the planner's requests go out, responses go through the
//! verifier (when there is one) into the planner's buffer, and blocks that
//! extend the head are placed on the chain a step at a time.

use pb::sync_response::Kind as R;
use protoblock_core::BlockError;
use protoblock_core::block::{Signatures, check_header, peek_block};
use protoblock_proto::v1 as pb;

use crate::PeerKey;
use crate::io::{Action, Event, Now};
use crate::service::{MEMPOOL_SYNC, NodeService, Purpose};

/// Request timeouts in a row (no useful response between) after which a peer
/// that claims blocks is dropped: a claim it does not serve is a lie. Refusals
/// ("busy", "not serving") do not count: they are honest answers, and a
/// browser dropping its busy relay would lose its circuit with it.
pub(crate) const MAX_SYNC_STRIKES: u32 = 3;

/// A block waiting in the sync buffer, and whether its signatures were
/// verified already (over these bytes) off the loop.
#[derive(Debug)]
pub(crate) struct SyncedBlock {
    pub bytes: Vec<u8>,
    pub signatures: Signatures,
}

impl SyncedBlock {
    pub fn unchecked(bytes: Vec<u8>) -> Self {
        Self { bytes, signatures: Signatures::Check }
    }
}

impl AsRef<[u8]> for SyncedBlock {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl<P: PeerKey> NodeService<P> {
    pub(crate) fn plan_sync(&mut self, now: Now) {
        let head = self.chain.head().height;
        for req in self.planner.poll_requests(head, now.mono_ms) {
            let kind =
                pb::sync_request::Kind::Blocks(pb::BlockRangeRequest { start_height: req.start, count: req.count });
            self.send_request(req.peer, Purpose::Blocks(req.id), kind);
        }
        for peer in self.planner.struck(MAX_SYNC_STRIKES) {
            self.planner.peer_gone(&peer);
            self.actions.push_back(Action::Disconnect { peer });
        }
    }

    pub(crate) fn on_sync_response(&mut self, now: Now, peer: P, purpose: Option<Purpose>, resp: pb::SyncResponse) {
        match (purpose, resp.kind) {
            (Some(Purpose::Blocks(id)), Some(R::Blocks(b))) => {
                self.counters.blocks_downloaded += b.blocks.len() as u64;
                if !b.blocks.is_empty() && self.verifying.has_room(self.cfg.max_verifying) {
                    let token = self.token();
                    self.verifying.insert(token, id, peer);
                    self.actions.push_back(Action::Verify { token, blocks: b.blocks });
                    return;
                }
                let blocks = b.blocks.into_iter().map(SyncedBlock::unchecked).collect();
                self.on_range(now, id, peer, blocks);
            }
            (Some(Purpose::Blocks(id)), _) => {
                self.planner.on_failure(id);
                self.plan_sync(now);
            }
            (Some(Purpose::Backfill), Some(R::Blocks(b))) => self.on_backfill(now, peer, b.blocks),
            (Some(Purpose::Backfill), _) => self.backfilling = None,
            (Some(Purpose::Mempool), Some(R::Mempool(m))) => {
                for tx in m.txs.iter().take(MEMPOOL_SYNC) {
                    let _ = self.mempool.insert(tx, &self.chain, now.unix_ms);
                }
            }
            (Some(Purpose::Peers), Some(R::Peers(p))) => self.on_peers(now, p),
            _ => {}
        }
    }

    /// A synced range, its signatures checked or not, goes to the planner,
    /// once every header not verified off the loop passes [`check_header`]:
    /// junk (a random parent, no producer's signature) is the sender's
    /// fault before it takes a buffer slot or sets off a backfill.
    pub(crate) fn on_range(&mut self, now: Now, id: u64, peer: P, mut blocks: Vec<SyncedBlock>) {
        for (index, b) in blocks.iter_mut().enumerate().filter(|(_, b)| b.signatures == Signatures::Check) {
            let checked = peek_block(&b.bytes, self.chain.params())
                .and_then(|(_, header, block)| check_header(&header, &block, self.chain.genesis()));
            if let Err(e) = checked {
                self.count_refusal(&e);
                self.ban(now, peer, format!("sent a block with a bad header (#{index} of its response): {e}"));
                self.plan_sync(now);
                return;
            }
            b.signatures = Signatures::HeaderChecked;
        }
        match self.planner.on_response(id, &peer, blocks) {
            Ok(_) => {}
            // Timed out (or the peer left) while the range was out for
            // verification: asked again elsewhere already, and no fault of the peer.
            Err(protoblock_core::sync::SyncFault::UnknownRequest) => return,
            Err(fault) => {
                self.ban(now, peer, format!("bad sync response: {fault}"));
                return;
            }
        }
        self.place_ready(now);
        self.plan_sync(now);
    }

    /// Places buffered blocks that now extend the head: at most
    /// `max_blocks_per_step` per call, so commands and other peers get their
    /// turn during a long catch-up (with more ready, the service asks to be
    /// woken at once). Nothing is placed while `max_staged_blocks` wait for
    /// the store, nor after a store failure.
    pub(crate) fn place_ready(&mut self, now: Now) {
        self.more_ready = false;
        let room = self.cfg.max_staged_blocks.saturating_sub(self.commit.staged_blocks());
        if self.commit.failed().is_some() || room == 0 {
            return;
        }
        if self.ready_backlog.is_empty() {
            self.ready_backlog.extend(self.planner.take_ready(self.chain.head().height));
        }
        if self.ready_backlog.is_empty() {
            return;
        }
        let mut updates = Vec::new();
        while updates.len() < self.cfg.max_blocks_per_step.min(room) {
            let Some((peer, block)) = self.ready_backlog.pop_front() else { break };
            match self.chain.insert_block_with(&block.bytes, now.unix_ms, block.signatures) {
                Ok(update) => updates.push(update),
                Err(e) => {
                    match e {
                        // The peer's chain forked from ours below our head.
                        BlockError::UnknownParent(_) => self.backfill(now, peer, &block.bytes),
                        e if e.is_peer_fault() => {
                            self.count_refusal(&e);
                            self.planner.on_invalid(&peer);
                            self.ban(now, peer, format!("sent an invalid block: {e}"));
                        }
                        _ => {}
                    }
                    // What was queued behind it cannot attach now; the planner asks again.
                    self.ready_backlog.clear();
                    break;
                }
            }
        }
        let placed = !updates.is_empty();
        if placed {
            self.last_sync_progress_ms = Some(now.mono_ms);
        }
        self.apply_updates(now, updates);
        let head = self.chain.head().height;
        let target = self.planner.best_peer_head().max(head);
        self.emit(Event::SyncProgress { head, target, syncing: self.planner.is_syncing(head) });
        self.more_ready = placed;
    }
}
