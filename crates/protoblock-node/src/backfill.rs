//! Backfill: a synced block whose parent we lack means the peer's chain
//! forked from ours below our head. Range requests only go above the head,
//! so that peer is asked for its blocks below this one, back to just above
//! our final block (no reorg may go further): they attach to the common
//! ancestor as side blocks, and the chain switches once that branch is
//! longer. One request at a time; the planner re-requests the block that
//! failed.

use protoblock_core::block::peek_block;
use protoblock_proto::v1 as pb;

use crate::PeerKey;
use crate::io::Now;
use crate::service::{NodeService, Purpose, RANGE};

impl<P: PeerKey> NodeService<P> {
    fn backfill_window(&self) -> u64 {
        self.cfg.sync.timeout_ms.max(1_000) * 2
    }

    pub(crate) fn backfill(&mut self, now: Now, peer: P, bytes: &[u8]) {
        if self.backfilling.is_some() {
            return;
        }
        let Ok((_, header, _)) = peek_block(bytes, self.chain.params()) else { return };
        let top = header.height.saturating_sub(1);
        let floor = self.chain.final_height() + 1;
        if top < floor {
            return;
        }
        let start = floor.max(top.saturating_sub(u64::from(RANGE) - 1));
        let kind = pb::sync_request::Kind::Blocks(pb::BlockRangeRequest {
            start_height: start,
            count: (top - start + 1) as u32,
        });
        self.send_request(peer, Purpose::Backfill, kind);
        self.backfilling = Some(now.mono_ms);
    }

    pub(crate) fn backfill_deadline(&self) -> Option<u64> {
        self.backfilling.map(|t| t + self.backfill_window())
    }

    /// An answer that never came frees the slot after the window.
    pub(crate) fn backfill_expire(&mut self, now: Now) {
        if self.backfill_deadline().is_some_and(|d| now.mono_ms >= d) {
            self.backfilling = None;
        }
    }

    pub(crate) fn on_backfill(&mut self, now: Now, peer: P, blocks: Vec<Vec<u8>>) {
        self.backfilling = None;
        self.counters.blocks_downloaded += blocks.len() as u64;
        if self.commit.failed().is_some() {
            return;
        }
        let mut updates = Vec::new();
        for bytes in blocks.iter().take(RANGE as usize) {
            match self.chain.insert_block(bytes, now.unix_ms) {
                Ok(u) => updates.push(u),
                Err(e) if e.is_peer_fault() => {
                    self.ban(now, peer, format!("sent an invalid block: {e}"));
                    break;
                }
                // Below its fork point (duplicates are `Ok`) or past what
                // attaches: the rest comes by normal sync.
                Err(_) => break,
            }
        }
        self.apply_updates(now, updates);
        self.place_ready(now);
        self.plan_sync(now);
    }
}
