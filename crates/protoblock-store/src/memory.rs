//! An in-memory store with the same transactional behaviour as the real ones,
//! for unit tests and many-node simulations.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use protoblock_core::chain::{HeadRecord, StoredBlock, StoredChain, WriteBatch};
use protoblock_core::hash::{FastMap, Hash32};

use crate::{Store, StoreError, WriteOp};

#[derive(Default)]
struct Inner {
    /// Shared with the chain's own copy, as a real store's page cache would be.
    blocks: FastMap<Hash32, Arc<[u8]>>,
    main: BTreeMap<u64, Hash32>,
    state: FastMap<Vec<u8>, Vec<u8>>,
    undo: FastMap<Hash32, Vec<u8>>,
    replay: FastMap<Hash32, u64>,
    meta: HashMap<String, Vec<u8>>,
    head: Option<HeadRecord>,
}

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Nothing under the lock can fail halfway (commit has no fallible
        // step), so a poisoned lock still guards consistent data.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Store for MemoryStore {
    async fn load(&self) -> Result<Option<StoredChain>, StoreError> {
        let g = self.lock();
        let Some(head) = g.head else { return Ok(None) };
        let mut recent = Vec::new();
        for h in head.final_height.max(1)..=head.height {
            let id = *g.main.get(&h).ok_or(StoreError::Corrupt("main index gap"))?;
            let bytes = g.blocks.get(&id).ok_or(StoreError::Corrupt("missing block"))?.to_vec();
            recent.push(StoredBlock { height: h, id, bytes, undo: g.undo.get(&id).cloned() });
        }
        let state = g.state.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let replay = g.replay.iter().map(|(k, v)| (*k, *v)).collect();
        Ok(Some(StoredChain { head, state, recent, replay }))
    }

    async fn commit(&self, mut batch: WriteBatch) -> Result<(), StoreError> {
        batch.compact();
        let mut g = self.lock();
        for op in crate::write_ops(&batch) {
            match op {
                WriteOp::PutBlock(h, id, bytes) => {
                    g.blocks.insert(*id, bytes.clone());
                    g.main.insert(h, *id);
                }
                WriteOp::DeleteBlock(id) => {
                    g.blocks.remove(id);
                }
                WriteOp::State(k, Some(v)) => {
                    g.state.insert(k.to_vec(), v.to_vec());
                }
                WriteOp::State(k, None) => {
                    g.state.remove(k);
                }
                WriteOp::PutUndo(id, u) => {
                    g.undo.insert(*id, u.to_vec());
                }
                WriteOp::DeleteUndo(id) => {
                    g.undo.remove(id);
                }
                WriteOp::PutReplay(id, nonce) => {
                    g.replay.insert(*id, nonce);
                }
                WriteOp::DeleteReplay(id) => {
                    g.replay.remove(id);
                }
                WriteOp::PruneBelow(below) => {
                    let gone: Vec<(u64, Hash32)> = g
                        .main
                        .range(..below)
                        .take(protoblock_core::chain::MAX_PRUNED_PER_COMMIT)
                        .map(|(h, id)| (*h, *id))
                        .collect();
                    for (h, id) in gone {
                        g.main.remove(&h);
                        g.blocks.remove(&id);
                    }
                }
                WriteOp::Head(h) => {
                    // A shorter main chain never happens (fork choice only moves to
                    // longer or equal chains), but keep the index exact regardless.
                    let stale: Vec<u64> = g.main.range(h.height + 1..).map(|(k, _)| *k).collect();
                    for k in stale {
                        g.main.remove(&k);
                    }
                    g.head = Some(*h);
                }
            }
        }
        Ok(())
    }

    async fn head(&self) -> Result<Option<HeadRecord>, StoreError> {
        Ok(self.lock().head)
    }

    async fn blocks_range(&self, start: u64, count: u32, max_bytes: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        let g = self.lock();
        let top = g.head.map(|h| h.height).unwrap_or(0);
        let mut out = Vec::new();
        let mut size = 0;
        for h in start..start.saturating_add(count as u64).min(top + 1) {
            let Some(b) = g.main.get(&h).and_then(|id| g.blocks.get(id)) else { break };
            if !out.is_empty() && size + b.len() > max_bytes {
                break;
            }
            size += b.len();
            out.push(b.to_vec());
        }
        Ok(out)
    }

    async fn block_by_id(&self, id: Hash32) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().blocks.get(&id).map(|b| b.to_vec()))
    }

    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().meta.get(key).cloned())
    }

    async fn put_meta(&self, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        self.lock().meta.insert(key.to_string(), value);
        Ok(())
    }
}
