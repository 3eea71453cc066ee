//! What one change to the chain writes: a [`WriteBatch`] the caller commits
//! in one atomic transaction, and the [`HeadRecord`] it persists.

use std::sync::Arc;

use crate::hash::{FastSet, Hash32};
use crate::state::{Key, Value};

/// The head as persisted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadRecord {
    pub genesis: Hash32,
    pub id: Hash32,
    pub height: u64,
    pub final_height: u64,
}

/// Everything one chain change writes. A store must apply all of it in one
/// atomic transaction, in this order: put_blocks, delete_blocks, state,
/// put_undo, delete_undo, head.
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    /// Blocks now on the main chain: stored by id, and indexed at their height
    /// (overwriting whatever was there on a reorg).
    pub put_blocks: Vec<(u64, Hash32, Arc<[u8]>)>,
    /// Blocks reverted off the main chain.
    pub delete_blocks: Vec<Hash32>,
    /// Net state writes (`None` deletes).
    pub state: Vec<(Key, Option<Value>)>,
    /// Encoded `BlockUndo` for new non-final main blocks.
    pub put_undo: Vec<(Hash32, Vec<u8>)>,
    /// Undo records no longer needed (block became final or was reverted).
    pub delete_undo: Vec<Hash32>,
    /// Replay index entries (tx id, nonce) added; disjoint from `replay_delete`.
    pub replay_put: Vec<(Hash32, u64)>,
    pub replay_delete: Vec<Hash32>,
    /// Main-chain blocks below this height may go (the node keeps only its
    /// newest blocks): a store drops the lowest it holds, at most
    /// [`MAX_PRUNED_PER_COMMIT`] a commit, so turning retention on for a long
    /// chain spreads the work over many commits. Never above the final
    /// height: a restart resumes from the blocks at and above it.
    pub prune_below: Option<u64>,
    pub head: Option<HeadRecord>,
}

/// Blocks a store drops for [`WriteBatch::prune_below`] in one commit, at most.
pub const MAX_PRUNED_PER_COMMIT: usize = 512;

impl WriteBatch {
    /// Appends a later batch, so several chain changes commit in one store
    /// transaction (sync does this). Stores apply puts before deletes, so a
    /// block or undo record that a later batch puts back is taken off the
    /// delete lists; later state writes win by order.
    pub fn merge(&mut self, other: WriteBatch) {
        if self.is_empty() {
            // The first batch of a run (sync merges one per block).
            *self = other;
            return;
        }
        self.delete_blocks.retain(|d| !other.put_blocks.iter().any(|(_, id, _)| id == d));
        // Replay puts and deletes stay disjoint, so their order never matters.
        let deleted: FastSet<Hash32> = other.replay_delete.iter().copied().collect();
        let put: FastSet<Hash32> = other.replay_put.iter().map(|(id, _)| *id).collect();
        self.replay_put.retain(|(id, _)| !deleted.contains(id));
        self.replay_delete.retain(|id| !put.contains(id));
        self.replay_put.extend(other.replay_put);
        self.replay_delete.extend(other.replay_delete);
        self.delete_undo.retain(|d| !other.put_undo.iter().any(|(id, _)| id == d));
        self.put_blocks.extend(other.put_blocks);
        self.delete_blocks.extend(other.delete_blocks);
        self.state.extend(other.state);
        self.put_undo.extend(other.put_undo);
        self.delete_undo.extend(other.delete_undo);
        if other.head.is_some() {
            self.head = other.head;
        }
        self.prune_below = self.prune_below.max(other.prune_below);
    }
}

impl WriteBatch {
    /// Drops the writes a later one in this batch overrides, after merging a
    /// run of blocks: every value of a state key but its last, and undo
    /// records the batch deletes again (their delete stays, as the record may
    /// be in the store from before). A sync run of 64 blocks rewrites the
    /// oracle's and busy accounts' keys in most blocks, and its early blocks
    /// turn final within the run; each dropped write is one store request
    /// fewer, which in IndexedDB is the page thread's time. Every store calls
    /// it in `commit`, so callers that merge need not.
    pub fn compact(&mut self) {
        if self.state.len() > 1 {
            let n = self.state.len();
            let mut seen: FastSet<&[u8]> = FastSet::with_capacity_and_hasher(n, Default::default());
            // Last write of its key, walking back from the end.
            let last_rev: Vec<bool> = self.state.iter().rev().map(|(k, _)| seen.insert(k.as_slice())).collect();
            let mut i = 0;
            self.state.retain(|_| {
                i += 1;
                last_rev[n - i]
            });
        }
        if !self.put_undo.is_empty() && !self.delete_undo.is_empty() {
            // `merge` drops a delete that a later put revives, so a delete
            // still here is the last word on its record.
            let deleted: FastSet<Hash32> = self.delete_undo.iter().copied().collect();
            self.put_undo.retain(|(id, _)| !deleted.contains(id));
        }
    }

    /// Writes nothing at all.
    pub fn is_empty(&self) -> bool {
        self.put_blocks.is_empty()
            && self.delete_blocks.is_empty()
            && self.state.is_empty()
            && self.put_undo.is_empty()
            && self.delete_undo.is_empty()
            && self.replay_put.is_empty()
            && self.replay_delete.is_empty()
            && self.prune_below.is_none()
            && self.head.is_none()
    }
}
