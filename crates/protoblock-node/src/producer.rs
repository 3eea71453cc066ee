//! Block production: in this node's slots, every `block_interval_ms`, and
//! (with bootstrap peers) only after meeting one. It pauses while synced
//! blocks are extending the head (producing on a stale head would only fork
//! the chain), but never for a claimed head alone: anyone can claim one, and
//! a claim that is not served would halt the chain.

use protoblock_core::producer::produce_block;

use crate::PeerKey;
use crate::io::{Action, Now, Topic};
use crate::service::NodeService;

/// While syncing, production is looked at again this often.
const SYNCING_RECHECK_MS: u64 = 100;

impl<P: PeerKey> NodeService<P> {
    fn may_produce(&self) -> bool {
        self.cfg.producer_key.is_some()
            && self.commit.failed().is_none()
            && (self.met_a_peer || !self.cfg.meet_a_peer_before_producing)
    }

    /// Behind a longer chain that is actually arriving: synced blocks
    /// extended the head within the last sync timeout.
    fn catching_up(&self, now: Now) -> bool {
        self.planner.is_syncing(self.chain.head().height)
            && self.last_sync_progress_ms.is_some_and(|t| now.mono_ms.saturating_sub(t) < self.cfg.sync.timeout_ms)
    }

    pub(crate) fn next_production(&self) -> Option<u64> {
        self.may_produce().then_some(self.next_produce_ms)
    }

    pub(crate) fn maybe_produce(&mut self, now: Now) {
        if !self.may_produce() || now.mono_ms < self.next_produce_ms {
            return;
        }
        if self.catching_up(now) {
            self.next_produce_ms = now.mono_ms + SYNCING_RECHECK_MS;
            return;
        }
        let Some(key) = self.cfg.producer_key.clone() else { return };
        self.next_produce_ms = now.mono_ms + self.cfg.block_interval_ms;
        let height = self.chain.head().height + 1;
        if let Some(source) = self.tx_source.as_mut() {
            for tx in source(&self.chain, height, now.unix_ms) {
                if self.mempool.insert(&tx, &self.chain, now.unix_ms).is_ok() {
                    self.actions.push_back(Action::Publish { topic: Topic::Txs, data: tx });
                }
            }
        }
        let candidates = self.mempool.iter().map(|p| (&p.bytes[..], &p.tx));
        let Ok(produced) = produce_block(&self.chain, candidates, &key, now.unix_ms) else { return };
        // Our own block failing our own rules is a bug, not an input; it is dropped.
        if let Ok(update) = self.chain.insert_block(&produced.bytes, now.unix_ms) {
            self.apply_updates(now, vec![update]);
            self.actions.push_back(Action::Publish { topic: Topic::Blocks, data: produced.bytes });
        }
    }
}
