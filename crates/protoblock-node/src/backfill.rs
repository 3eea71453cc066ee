//! Backfill: a synced block whose parent we lack means the peer's chain
//! forked from ours below our head. Range requests only go above the head,
//! so that peer is asked for its blocks below this one, back to just above
//! our final block (no reorg may go further): they attach to the common
//! ancestor as side blocks, and the chain switches once that branch is
//! longer. One request at a time; the planner re-requests the block that
//! failed.
//!
//! The answer is held to what it claims: every header must carry the
//! producer's signature (junk is a ban), a branch asked for from just above
//! our final block must attach there (it cannot be on our chain otherwise:
//! a ban), and a peer whose backfills place nothing new
//! `MAX_SYNC_STRIKES` times in a row is dropped, so an unknown parent can
//! never stall a sync forever.

use protoblock_core::BlockError;
use protoblock_core::block::{Signatures, check_header, peek_block};
use protoblock_core::chain::Placement;
use protoblock_proto::v1 as pb;

use crate::PeerKey;
use crate::io::{Action, Now};
use crate::service::{NodeService, Purpose, RANGE};
use crate::sync::MAX_SYNC_STRIKES;

/// The backfill request out, at most one.
#[derive(Debug)]
pub(crate) struct Backfill<P> {
    pub since_ms: u64,
    pub peer: P,
    /// It starts just above our final block: the branch must attach there.
    pub from_floor: bool,
}

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
        let from_floor = start == floor;
        let kind = pb::sync_request::Kind::Blocks(pb::BlockRangeRequest {
            start_height: start,
            count: (top - start + 1) as u32,
        });
        self.send_request(peer, Purpose::Backfill, kind);
        self.backfilling = Some(Backfill { since_ms: now.mono_ms, peer, from_floor });
    }

    pub(crate) fn backfill_deadline(&self) -> Option<u64> {
        self.backfilling.as_ref().map(|b| b.since_ms + self.backfill_window())
    }

    /// An answer that never came frees the slot after the window.
    pub(crate) fn backfill_expire(&mut self, now: Now) {
        if self.backfill_deadline().is_some_and(|d| now.mono_ms >= d) {
            self.backfilling = None;
        }
    }

    pub(crate) fn on_backfill(&mut self, now: Now, peer: P, blocks: Vec<Vec<u8>>) {
        let Some(asked) = self.backfilling.take().filter(|b| b.peer == peer) else { return };
        self.counters.blocks_downloaded += blocks.len() as u64;
        if self.commit.failed().is_some() {
            return;
        }
        let mut updates = Vec::new();
        let mut fault = None;
        for (index, bytes) in blocks.iter().take(RANGE as usize).enumerate() {
            let header_ok = peek_block(bytes, self.chain.params())
                .and_then(|(_, header, block)| check_header(&header, &block, self.chain.genesis()));
            if let Err(e) = header_ok {
                fault = Some(format!("sent a block with a bad header in a backfill: {e}"));
                break;
            }
            match self.chain.insert_block_with(bytes, now.unix_ms, Signatures::HeaderChecked) {
                Ok(u) => updates.push(u),
                Err(e) if e.is_peer_fault() => {
                    self.count_refusal(&e);
                    fault = Some(format!("sent an invalid block: {e}"));
                    break;
                }
                Err(BlockError::UnknownParent(_)) if index == 0 && asked.from_floor => {
                    fault = Some("sent a branch that does not attach above our final block".into());
                    break;
                }
                // Below its fork point (duplicates are `Ok`) or past what
                // attaches: the rest comes by normal sync.
                Err(_) => break,
            }
        }
        if let Some(reason) = fault {
            self.apply_updates(now, updates);
            self.ban(now, peer, reason);
            self.plan_sync(now);
            return;
        }
        let fruitful = updates.iter().any(|u| !matches!(u.placement, Placement::Duplicate));
        let strikes = match &mut self.fruitless_backfills {
            _ if fruitful => 0,
            Some((p, n)) if *p == peer => *n + 1,
            _ => 1,
        };
        self.fruitless_backfills = (strikes > 0).then_some((peer, strikes));
        self.apply_updates(now, updates);
        if strikes >= MAX_SYNC_STRIKES {
            self.fruitless_backfills = None;
            self.planner.peer_gone(&peer);
            self.actions.push_back(Action::Disconnect { peer });
        }
        self.place_ready(now);
        self.plan_sync(now);
    }
}
