//! Resuming a chain from what a store loaded, proving the stored state is
//! exactly the one the head block commits to.

use prost::Message;
use protoblock_proto::v1 as pb;

use super::{Chain, HeadRecord, MainEntry};
use crate::block::{BlockMeta, peek_block};
use crate::genesis::Genesis;
use crate::hash::Hash32;
use crate::params::ChainLimits;
use crate::state::{Key, StateMap, Value};

/// A block on the persisted main chain, handed back by a store at start-up.
#[derive(Debug, Clone)]
pub struct StoredBlock {
    pub height: u64,
    pub id: Hash32,
    pub bytes: Vec<u8>,
    pub undo: Option<Vec<u8>>,
}

/// What a store loads to resume a chain.
#[derive(Debug, Clone)]
pub struct StoredChain {
    pub head: HeadRecord,
    pub state: Vec<(Key, Value)>,
    /// Main-chain blocks from `max(final_height, 1)` to the head, in order.
    pub recent: Vec<StoredBlock>,
    /// The replay index: (tx id, nonce) of recent main-chain txs.
    pub replay: Vec<(Hash32, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    #[error("store belongs to another genesis")]
    WrongGenesis,
    #[error("stored block at height {0} is missing or does not decode")]
    BadBlock(u64),
    #[error("stored blocks do not link at height {0}")]
    BrokenLink(u64),
    #[error("undo record missing for non-final height {0}")]
    MissingUndo(u64),
    #[error("stored state does not match the head's state root")]
    StateMismatch,
    #[error("stored replay index lacks a tx of non-final block {0}")]
    ReplayIndexIncomplete(u64),
    #[error("invalid genesis: {0}")]
    Genesis(String),
}

impl Chain {
    /// Resumes from a store, recomputing the state commitment from scratch to
    /// prove the stored state is exactly the state the head block commits to.
    pub fn restore(genesis: Genesis, limits: ChainLimits, stored: StoredChain) -> Result<Self, RestoreError> {
        if stored.head.genesis != genesis.hash {
            return Err(RestoreError::WrongGenesis);
        }
        let (mut chain, _) = Self::new(genesis, limits)?;
        let head = stored.head;
        chain.state = StateMap::from_entries(stored.state);
        chain.replay = stored.replay.into_iter().collect();
        chain.commitment = chain.state.commitment();
        if head.height > 0 {
            chain.main.clear();
            let first = head.final_height.max(1);
            // A final height above the head is a corrupt record, not a panic.
            if first > head.height || stored.recent.len() as u64 != head.height - first + 1 {
                return Err(RestoreError::BadBlock(first));
            }
            if head.final_height == 0 {
                // Keep the genesis entry as the final block.
                let (fresh, _) = Self::new(chain.genesis.clone(), chain.limits.clone())?;
                chain.main = fresh.main;
            }
            for (i, sb) in stored.recent.iter().enumerate() {
                let h = first + i as u64;
                let (id, header, block) =
                    peek_block(&sb.bytes, &chain.genesis.params).map_err(|_| RestoreError::BadBlock(h))?;
                if id != sb.id || header.height != h {
                    return Err(RestoreError::BadBlock(h));
                }
                let prev = Hash32::from_slice(&header.prev_hash).ok_or(RestoreError::BadBlock(h))?;
                if let Some(last) = chain.main.back()
                    && last.meta.id != prev
                {
                    return Err(RestoreError::BrokenLink(h));
                }
                let undo = if h > head.final_height {
                    let raw = sb.undo.as_ref().ok_or(RestoreError::MissingUndo(h))?;
                    let u = pb::BlockUndo::decode(raw.as_slice()).map_err(|_| RestoreError::MissingUndo(h))?;
                    u.entries.into_iter().map(|e| (e.key, e.previous)).collect()
                } else {
                    Vec::new()
                };
                let state_root = Hash32::from_slice(&header.state_root).ok_or(RestoreError::BadBlock(h))?;
                chain.main.push_back(MainEntry {
                    meta: BlockMeta { id, height: h, timestamp_ms: header.timestamp_ms, state_root },
                    prev,
                    bytes: Some(sb.bytes.clone().into()),
                    undo,
                    txs: tx_ids_and_nonces(&block),
                });
            }
        }
        if chain.head().id != head.id {
            return Err(RestoreError::BrokenLink(head.height));
        }
        // The index is not committed by the state root; at least every tx of
        // the blocks still held must be in it, or replays could slip through.
        for e in chain.main.iter().skip(1) {
            if e.txs.iter().any(|(id, _)| !chain.replay.contains(id)) {
                return Err(RestoreError::ReplayIndexIncomplete(e.meta.height));
            }
        }
        if chain.commitment.root() != chain.head().state_root {
            return Err(RestoreError::StateMismatch);
        }
        Ok(chain)
    }
}

fn tx_ids_and_nonces(block: &pb::Block) -> Vec<(Hash32, u64)> {
    block
        .txs
        .iter()
        .map(|st| {
            let nonce = pb::Transaction::decode(st.tx.as_slice()).map(|t| t.nonce).unwrap_or(0);
            (crate::hash::sha256(&st.tx), nonce)
        })
        .collect()
}
