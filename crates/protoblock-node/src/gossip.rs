//! Verdicts on gossiped blocks and txs. The cheap checks come first: a block
//! that does not decode, or whose header is not signed by the producer the
//! genesis schedules at its height, is the sender's fault (Reject, and a ban)
//! before it costs a parent lookup or a buffer slot. A block ahead of the
//! head then waits in the sync buffer (not forwarded: we cannot validate it
//! yet); a block that breaks any other rule is Reject and a ban too. A third
//! block at one height (its producer equivocated) is ignored unvalidated.

use protoblock_core::block::{Signatures, check_header, peek_block};
use protoblock_core::chain::BLOCKS_HELD_PER_HEIGHT;
use protoblock_core::mempool::MempoolError;
use protoblock_core::{BlockError, TxError};

use crate::PeerKey;
use crate::io::{Event, Now, Verdict};
use crate::service::NodeService;
use crate::sync::SyncedBlock;

impl<P: PeerKey> NodeService<P> {
    pub(crate) fn on_gossip_block(&mut self, now: Now, from: P, data: Vec<u8>) -> Verdict {
        let (id, header, block) = match peek_block(&data, self.chain.params()) {
            Ok(x) => x,
            Err(e) => {
                self.count_refusal(&e);
                self.ban(now, from, format!("gossiped an undecodable block: {e}"));
                return Verdict::Reject;
            }
        };
        if self.chain.is_known(&id) {
            return Verdict::Ignore;
        }
        if let Err(e) = check_header(&header, &block, self.chain.genesis()) {
            self.count_refusal(&e);
            self.ban(now, from, format!("gossiped a block with a bad header: {e}"));
            return Verdict::Reject;
        }
        if self.commit.failed().is_some() {
            // Not placing blocks any more (see `Event::StoreFailed`).
            return Verdict::Ignore;
        }
        if self.chain.blocks_at_height(header.height) >= BLOCKS_HELD_PER_HEIGHT {
            // Its producer equivocated: neither validated, held nor forwarded.
            // Not the sender's fault: honest peers forward the variants they
            // took first, and two peers may have taken different ones.
            return Verdict::Ignore;
        }
        if let Some(p) = self.peers.get_mut(&from) {
            p.head = p.head.max(header.height);
        }
        self.planner.peer_head(from, self.peers.get(&from).map(|p| p.head).unwrap_or(header.height));
        let head = self.chain.head().height;
        if header.height > head + 1 {
            let block = SyncedBlock { bytes: data, signatures: Signatures::HeaderChecked };
            self.planner.buffer_gossip(from, header.height, block, head);
            return Verdict::Ignore;
        }
        let verdict = match self.chain.insert_block_with(&data, now.unix_ms, Signatures::HeaderChecked) {
            Ok(update) => {
                let placed = update.batch.is_some();
                self.apply_updates(now, vec![update]);
                if placed { Verdict::Accept } else { Verdict::Ignore }
            }
            Err(e) if e.is_peer_fault() => {
                self.count_refusal(&e);
                self.ban(now, from, format!("gossiped an invalid block: {e}"));
                Verdict::Reject
            }
            Err(BlockError::UnknownParent(_)) | Err(_) => Verdict::Ignore,
        };
        self.place_ready(now);
        verdict
    }

    pub(crate) fn on_gossip_tx(&mut self, now: Now, data: Vec<u8>) -> Verdict {
        match self.mempool.insert(&data, &self.chain, now.unix_ms) {
            Ok(id) => {
                self.emit(Event::TxAccepted { id });
                Verdict::Accept
            }
            Err(MempoolError::Invalid(
                TxError::Malformed
                | TxError::BadSignature
                | TxError::BadSignerKey(_)
                | TxError::Oversized { .. }
                | TxError::UnsupportedVersion(_),
            )) => Verdict::Reject,
            // State-dependent refusals may be our own lag; duplicates and a
            // full pool are not the sender's fault.
            Err(_) => Verdict::Ignore,
        }
    }

    pub(crate) fn count_verdict(&mut self, v: Verdict) {
        match v {
            Verdict::Accept => self.counters.gossip_accepted += 1,
            Verdict::Reject => self.counters.gossip_rejected += 1,
            Verdict::Ignore => {}
        }
    }
}
