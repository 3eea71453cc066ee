//! Chain state and fork choice.
//!
//! The chain holds the state at the head, the main chain back to the final
//! block (with an undo record per non-final block), and side-chain blocks that
//! passed their stateless checks. Fork choice is the longest valid chain, ties
//! to the lower block id. Blocks `finality_depth` below the head are final: a
//! fork from below them is refused, so a reorg never reverts a final block.
//!
//! Sans-IO: every change returns a [`WriteBatch`] that the caller commits to
//! its store in one atomic transaction (block, state changes, undo and head
//! together). The chain never touches a store itself.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use crate::block::{BlockMeta, CheckedBlock, Signatures, apply_block, check_block, check_decoded_block, peek_block};
use crate::crypto::KeyCache;
use crate::error::BlockError;
use crate::genesis::Genesis;
use crate::hash::{Hash32, sha256};
use crate::lthash::LtHash;
use crate::params::{ChainLimits, ChainParams};
use crate::replay::ReplayIndex;
use crate::state::{Key, StateMap, Value};

mod batch;
mod restore;

pub use batch::{HeadRecord, MAX_PRUNED_PER_COMMIT, WriteBatch};
pub use restore::{RestoreError, StoredBlock, StoredChain};

pub type Undo = Vec<(Key, Option<Value>)>;

/// Gossiped blocks taken at one height, main and side together (see
/// [`Chain::blocks_at_height`]). Each height has one scheduled producer, so
/// two blocks there mean it signed twice (equivocated); two are taken so
/// fork choice can still pick between them, and further ones arriving
/// unasked are ignored before they are validated or forwarded. Without this,
/// one producer gossiping variants of its slot filled the side chain
/// (`max_side_blocks`), and the forks of honest peers were refused. Blocks
/// we ask for (sync, backfill) are not held to it: a chain that honest
/// producers built on a third variant must stay reachable.
pub const BLOCKS_HELD_PER_HEIGHT: usize = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Already known: nothing to do.
    Duplicate,
    /// Valid so far but not better than the head: held for fork choice.
    Side,
    /// Extended the head by one block.
    Extended,
    /// Switched to another branch, reverting `depth` blocks.
    Reorged { depth: u64 },
}

#[derive(Debug, Clone)]
pub struct ChainUpdate {
    pub placement: Placement,
    pub batch: Option<WriteBatch>,
    /// Bytes of blocks reverted off the main chain (their txs may go back to the mempool).
    pub reverted: Vec<Arc<[u8]>>,
    /// A block on the winning branch that turned out invalid during a reorg;
    /// the valid prefix before it was still adopted.
    pub rejected: Option<(Hash32, BlockError)>,
    /// Txs in the head block after this update (for "new head" events,
    /// which would otherwise decode the block once more).
    pub head_txs: Vec<Hash32>,
}

struct MainEntry {
    meta: BlockMeta,
    prev: Hash32,
    /// `None` only for the genesis entry.
    bytes: Option<Arc<[u8]>>,
    undo: Undo,
    /// (id, nonce) of its txs, to take them out of the replay index on revert.
    txs: Vec<(Hash32, u64)>,
}

struct SideEntry {
    bytes: Arc<[u8]>,
    block: CheckedBlock,
}

const MAX_INVALID_REMEMBERED: usize = 4096;

pub struct Chain {
    genesis: Genesis,
    limits: ChainLimits,
    state: StateMap,
    commitment: LtHash,
    /// Main chain from the final block (front) to the head (back).
    main: VecDeque<MainEntry>,
    side: HashMap<Hash32, SideEntry>,
    /// Blocks found invalid, by the hash of their *whole* encoding. Not by
    /// block id: the id covers only the header, and the header signature and
    /// each tx's signer and signature lie outside it, so a tampered copy of a
    /// valid block shares its id and must not condemn the genuine block.
    invalid: HashSet<Hash32>,
    invalid_order: VecDeque<Hash32>,
    keys: KeyCache,
    replay: ReplayIndex,
}

impl Chain {
    /// A chain at genesis, plus the batch that persists its initial state. It
    /// validates by the genesis's own rules; `limits` are this node's memory.
    pub fn new(genesis: Genesis, limits: ChainLimits) -> Result<(Self, WriteBatch), RestoreError> {
        let state = genesis.initial_state().map_err(|e| RestoreError::Genesis(e.to_string()))?;
        let commitment = state.commitment();
        let meta = BlockMeta {
            id: genesis.hash,
            height: 0,
            timestamp_ms: genesis.timestamp_ms,
            state_root: commitment.root(),
        };
        let mut main = VecDeque::new();
        main.push_back(MainEntry { meta, prev: Hash32::ZERO, bytes: None, undo: Vec::new(), txs: Vec::new() });
        let batch = WriteBatch {
            state: state.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect(),
            head: Some(HeadRecord { genesis: genesis.hash, id: genesis.hash, height: 0, final_height: 0 }),
            ..Default::default()
        };
        let chain = Self {
            genesis,
            limits,
            state,
            commitment,
            main,
            side: HashMap::new(),
            invalid: HashSet::new(),
            invalid_order: VecDeque::new(),
            keys: KeyCache::default(),
            replay: ReplayIndex::default(),
        };
        Ok((chain, batch))
    }

    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The chain's rules: its genesis's.
    pub fn params(&self) -> &ChainParams {
        &self.genesis.params
    }

    pub fn state(&self) -> &StateMap {
        &self.state
    }

    pub fn commitment(&self) -> &LtHash {
        &self.commitment
    }

    pub fn replay(&self) -> &ReplayIndex {
        &self.replay
    }

    pub fn head(&self) -> BlockMeta {
        self.main.back().expect("main chain always holds the final block").meta
    }

    pub fn final_height(&self) -> u64 {
        self.main.front().expect("main chain always holds the final block").meta.height
    }

    pub fn head_record(&self) -> HeadRecord {
        let h = self.head();
        HeadRecord { genesis: self.genesis.hash, id: h.id, height: h.height, final_height: self.final_height() }
    }

    /// Main-chain block id at a non-final height (or the final block).
    pub fn main_id_at(&self, height: u64) -> Option<Hash32> {
        let first = self.final_height();
        let i = height.checked_sub(first)?;
        self.main.get(i as usize).map(|e| e.meta.id)
    }

    pub fn is_known(&self, id: &Hash32) -> bool {
        self.side.contains_key(id) || self.main.iter().any(|e| e.meta.id == *id)
    }

    /// Blocks held at `height`, main and side (side blocks are at most
    /// `max_side_blocks`, so this is a bounded scan).
    pub fn blocks_at_height(&self, height: u64) -> usize {
        self.side.values().filter(|s| s.block.header.height == height).count()
            + usize::from(self.main_id_at(height).is_some())
    }

    pub fn side_len(&self) -> usize {
        self.side.len()
    }

    /// Remembers `content` (sha256 of a block's full bytes) as invalid.
    fn mark_invalid(&mut self, content: Hash32) {
        if self.invalid.insert(content) {
            self.invalid_order.push_back(content);
            if self.invalid_order.len() > MAX_INVALID_REMEMBERED
                && let Some(old) = self.invalid_order.pop_front()
            {
                self.invalid.remove(&old);
            }
        }
    }

    fn parent_meta(&self, id: &Hash32) -> Option<BlockMeta> {
        if let Some(s) = self.side.get(id) {
            return Some(s.block.meta());
        }
        self.main.iter().rev().find(|e| e.meta.id == *id).map(|e| e.meta)
    }

    /// Validates a block received from anywhere (gossip, sync, our producer)
    /// and places it. `now_ms` bounds how far ahead its timestamp may be.
    pub fn insert_block(&mut self, bytes: &[u8], now_ms: u64) -> Result<ChainUpdate, BlockError> {
        self.insert_block_with(bytes, now_ms, Signatures::Check)
    }

    /// [`Chain::insert_block`] for a block whose signatures were verified
    /// already, over these exact bytes, by [`crate::block::verify_signatures`]
    /// (with [`Signatures::AlreadyChecked`]); every other rule is still checked.
    pub fn insert_block_with(
        &mut self,
        bytes: &[u8],
        now_ms: u64,
        signatures: Signatures,
    ) -> Result<ChainUpdate, BlockError> {
        let mut update = self.place(bytes, now_ms, signatures)?;
        update.head_txs = self.main.back().map_or_else(Vec::new, |e| e.txs.iter().map(|(id, _)| *id).collect());
        Ok(update)
    }

    fn place(&mut self, bytes: &[u8], now_ms: u64, signatures: Signatures) -> Result<ChainUpdate, BlockError> {
        let (id, header, block) = peek_block(bytes, &self.genesis.params)?;
        // The hash of the whole encoding only matters to look up or remember
        // an invalid block, so the common path (none remembered) skips it.
        if !self.invalid.is_empty() && self.invalid.contains(&sha256(bytes)) {
            return Err(BlockError::KnownInvalid);
        }
        if self.is_known(&id) {
            return Ok(ChainUpdate {
                placement: Placement::Duplicate,
                batch: None,
                reverted: Vec::new(),
                rejected: None,
                head_txs: Vec::new(),
            });
        }
        let final_height = self.final_height();
        if header.height <= final_height {
            return Err(BlockError::BelowFinality { height: header.height, final_height });
        }
        let prev = Hash32::from_slice(&header.prev_hash).ok_or(BlockError::BrokenPrevHash)?;
        let parent = self.parent_meta(&prev).ok_or(BlockError::UnknownParent(prev))?;
        let checked =
            match check_decoded_block(id, header, block, &parent, &self.genesis, now_ms, &mut self.keys, signatures) {
                Ok(c) => c,
                Err(e) => {
                    if e.is_peer_fault() {
                        self.mark_invalid(sha256(bytes));
                    }
                    return Err(e);
                }
            };
        let bytes: Arc<[u8]> = Arc::from(bytes);
        if prev == self.head().id {
            return self.extend(checked, bytes);
        }
        if self.side.len() >= self.limits.max_side_blocks {
            return Err(BlockError::SideChainFull);
        }
        let better = is_better(&checked.meta(), &self.head());
        self.side.insert(id, SideEntry { bytes, block: checked });
        if !better {
            return Ok(ChainUpdate {
                placement: Placement::Side,
                batch: None,
                reverted: Vec::new(),
                rejected: None,
                head_txs: Vec::new(),
            });
        }
        self.reorg_to(id)
    }

    fn extend(&mut self, checked: CheckedBlock, bytes: Arc<[u8]>) -> Result<ChainUpdate, BlockError> {
        let applied = match apply_block(&checked, &self.state, &self.commitment, &self.replay, &self.genesis) {
            Ok(a) => a,
            Err(e) => {
                self.mark_invalid(sha256(&bytes));
                return Err(e);
            }
        };
        let mut batch = WriteBatch::default();
        let undo = self.state.apply_uncommitted(&applied.writes);
        self.commitment = applied.commitment;
        batch.state = applied.writes;
        batch.put_blocks.push((checked.header.height, checked.id, bytes.clone()));
        batch.put_undo.push((checked.id, encode_undo(&undo)));
        let txs: Vec<(Hash32, u64)> = checked.txs.iter().map(|t| (t.id, t.tx.nonce)).collect();
        for (id, nonce) in &txs {
            self.replay.insert(*id, *nonce);
        }
        batch.replay_put.extend(txs.iter().copied());
        self.main.push_back(MainEntry { meta: checked.meta(), prev: checked.prev, bytes: Some(bytes), undo, txs });
        self.advance_finality(&mut batch);
        batch.head = Some(self.head_record());
        Ok(ChainUpdate {
            placement: Placement::Extended,
            batch: Some(batch),
            reverted: Vec::new(),
            rejected: None,
            head_txs: Vec::new(),
        })
    }

    fn advance_finality(&mut self, batch: &mut WriteBatch) {
        let target = self.head().height.saturating_sub(self.genesis.params.finality_depth);
        while self.final_height() < target {
            self.main.pop_front();
            if let Some(front) = self.main.front_mut() {
                front.undo = Vec::new();
                batch.delete_undo.push(front.meta.id);
            }
        }
        let fh = self.final_height();
        self.side.retain(|_, s| s.block.header.height > fh);
        // No block at or after the final one can accept a nonce older than
        // this, and the final block never reverts: prune for good.
        let final_ts = self.main.front().expect("final block").meta.timestamp_ms;
        let cutoff_ns = final_ts.saturating_sub(self.genesis.params.nonce_max_age_ms).saturating_mul(1_000_000);
        let pruned = self.replay.prune_below(cutoff_ns);
        if !pruned.is_empty() {
            let pruned_set: HashSet<Hash32> = pruned.iter().copied().collect();
            batch.replay_put.retain(|(id, _)| !pruned_set.contains(id));
            batch.replay_delete.extend(pruned);
        }
    }

    /// Switches the main chain to end at side block `tip`.
    fn reorg_to(&mut self, tip: Hash32) -> Result<ChainUpdate, BlockError> {
        // Path of side blocks from the fork point (exclusive) to the tip.
        let mut path = Vec::new();
        let mut cur = tip;
        while let Some(s) = self.side.get(&cur) {
            path.push(cur);
            cur = s.block.prev;
        }
        path.reverse();
        let fork_height = match self.main.iter().position(|e| e.meta.id == cur) {
            Some(i) => self.main[i].meta.height,
            // The branch hangs off a block that is no longer on the main window.
            None => return Err(BlockError::UnknownParent(cur)),
        };
        let old_head = self.head();
        let mut touched: BTreeSet<Key> = BTreeSet::new();
        let mut batch = WriteBatch::default();

        // Revert the main chain down to the fork point.
        // Each reverted block keeps its post-block values ("redo"), so the old
        // main chain can be put back without re-validating it.
        let mut reverted: Vec<(MainEntry, Undo)> = Vec::new();
        while self.head().height > fork_height {
            let e = self.main.pop_back().expect("above fork point");
            let redo: Undo = e.undo.iter().map(|(k, _)| (k.clone(), self.state.get(k).cloned())).collect();
            self.state.revert(&e.undo, &mut self.commitment);
            touched.extend(e.undo.iter().map(|(k, _)| k.clone()));
            for (id, _) in &e.txs {
                self.replay.remove(id);
            }
            reverted.push((e, redo));
        }
        reverted.reverse();

        // Apply the branch; stop at the first invalid block.
        let mut rejected = None;
        let mut applied_ids = Vec::new();
        for id in &path {
            let side = self.side.get(id).expect("path built from side map");
            match apply_block(&side.block, &self.state, &self.commitment, &self.replay, &self.genesis) {
                Ok(a) => {
                    let undo = self.state.apply_uncommitted(&a.writes);
                    self.commitment = a.commitment;
                    let txs: Vec<(Hash32, u64)> = side.block.txs.iter().map(|t| (t.id, t.tx.nonce)).collect();
                    for (id, nonce) in &txs {
                        self.replay.insert(*id, *nonce);
                    }
                    touched.extend(a.writes.into_iter().map(|(k, _)| k));
                    let side = self.side.remove(id).expect("present");
                    batch.put_blocks.push((side.block.header.height, *id, side.bytes.clone()));
                    batch.put_undo.push((*id, encode_undo(&undo)));
                    self.main.push_back(MainEntry {
                        meta: side.block.meta(),
                        prev: side.block.prev,
                        bytes: Some(side.bytes),
                        undo,
                        txs,
                    });
                    applied_ids.push(*id);
                }
                Err(e) => {
                    rejected = Some((*id, e));
                    break;
                }
            }
        }
        if let Some((bad, _)) = &rejected {
            // The bad block is invalid; side blocks built on it cannot be
            // applied either, so they are dropped. Only the bad block's exact
            // bytes are remembered as invalid: a descendant links to its
            // header id, which a genuine block with another body may share.
            let bad = *bad;
            let mut doomed = vec![bad];
            let mut i = 0;
            while i < doomed.len() {
                let p = doomed[i];
                doomed.extend(self.side.iter().filter(|(_, s)| s.block.prev == p).map(|(id, _)| *id));
                i += 1;
            }
            for d in doomed {
                if let Some(s) = self.side.remove(&d)
                    && d == bad
                {
                    self.mark_invalid(sha256(&s.bytes));
                }
            }
        }

        if !is_better(&self.head(), &old_head) {
            // Not worth it after all: undo the branch, restore the old main.
            while self.head().height > fork_height {
                let e = self.main.pop_back().expect("above fork point");
                self.state.revert(&e.undo, &mut self.commitment);
                for (id, _) in &e.txs {
                    self.replay.remove(id);
                }
                let bytes = e.bytes.expect("non-genesis");
                // Keep the valid branch blocks for a later fork choice.
                let parent = self.parent_meta(&e.prev).expect("linked");
                if let Ok(block) = check_block(&bytes, &parent, &self.genesis, u64::MAX, &mut self.keys) {
                    self.side.insert(e.meta.id, SideEntry { bytes, block });
                }
            }
            for (mut e, redo) in reverted {
                e.undo = self.state.apply(&redo, &mut self.commitment);
                for (id, nonce) in &e.txs {
                    self.replay.insert(*id, *nonce);
                }
                self.main.push_back(e);
            }
            debug_assert_eq!(self.head().id, old_head.id);
            return Err(rejected.map(|(_, e)| e).unwrap_or(BlockError::KnownInvalid));
        }

        for (e, _) in &reverted {
            batch.delete_blocks.push(e.meta.id);
            batch.delete_undo.push(e.meta.id);
        }
        // Net replay change: the branch's txs in, the reverted ones out
        // (a tx on both sides simply stays).
        let added: HashSet<Hash32> =
            self.main.iter().rev().take(applied_ids.len()).flat_map(|e| e.txs.iter().map(|(id, _)| *id)).collect();
        for e in self.main.iter().rev().take(applied_ids.len()) {
            batch.replay_put.extend(e.txs.iter().copied());
        }
        for (e, _) in &reverted {
            batch.replay_delete.extend(e.txs.iter().map(|(id, _)| *id).filter(|id| !added.contains(id)));
        }
        batch.state = touched
            .into_iter()
            .map(|k| {
                let v = self.state.get(&k).cloned();
                (k, v)
            })
            .collect();
        self.advance_finality(&mut batch);
        batch.head = Some(self.head_record());
        let depth = reverted.len() as u64;
        Ok(ChainUpdate {
            placement: Placement::Reorged { depth },
            batch: Some(batch),
            reverted: reverted.into_iter().filter_map(|(e, _)| e.bytes).collect(),
            rejected,
            head_txs: Vec::new(),
        })
    }
}

fn is_better(a: &BlockMeta, b: &BlockMeta) -> bool {
    a.height > b.height || (a.height == b.height && a.id < b.id)
}

/// Encodes a `pb::BlockUndo` straight from the undo record: the same bytes
/// as building the message, without first cloning every key and value into it.
fn encode_undo(undo: &Undo) -> Vec<u8> {
    use prost::encoding::{WireType, bytes, encode_key, encode_varint, encoded_len_varint};
    let entry_len = |k: &Vec<u8>, v: &Option<Vec<u8>>| {
        (if k.is_empty() { 0 } else { bytes::encoded_len(1, k) }) + v.as_ref().map_or(0, |v| bytes::encoded_len(2, v))
    };
    let total: usize = undo.iter().map(|(k, v)| 1 + encoded_len_varint(entry_len(k, v) as u64) + entry_len(k, v)).sum();
    let mut out = Vec::with_capacity(total);
    for (k, v) in undo {
        encode_key(1, WireType::LengthDelimited, &mut out);
        encode_varint(entry_len(k, v) as u64, &mut out);
        if !k.is_empty() {
            bytes::encode(1, k, &mut out);
        }
        if let Some(v) = v {
            bytes::encode(2, v, &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use protoblock_proto::v1 as pb;

    use super::*;

    #[test]
    fn undo_records_encode_as_the_message_would() {
        let undo: Undo = vec![
            (vec![1, 2, 3], Some(vec![9; 200])),
            (vec![4], None),
            (vec![5; 40], Some(Vec::new())),
            (Vec::new(), Some(vec![7])),
        ];
        for n in 0..=undo.len() {
            let part = undo[..n].to_vec();
            let built = pb::BlockUndo {
                entries: part.iter().map(|(k, v)| pb::UndoEntry { key: k.clone(), previous: v.clone() }).collect(),
            };
            assert_eq!(encode_undo(&part), built.encode_to_vec(), "{n} entries");
        }
    }
}
