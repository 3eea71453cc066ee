//! The native store: one redb file. Each [`WriteBatch`] is one redb write
//! transaction with immediate durability, so after a crash at any point the
//! file holds either the whole batch or none of it.
//!
//! redb is synchronous. Reads run inline (they are short and hit the page
//! cache); a commit, which costs an fsync, runs on a thread of its own so it
//! never blocks the async worker that awaits it, and the node keeps
//! validating meanwhile (group commit, see protoblock-node).

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use protoblock_core::chain::{HeadRecord, StoredBlock, StoredChain, WriteBatch};
use protoblock_core::hash::Hash32;

use crate::{Store, StoreError, WriteOp as Op, decode_head, encode_head, write_ops as ops};

const BLOCKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("blocks");
const MAIN: TableDefinition<u64, &[u8]> = TableDefinition::new("main");
const STATE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("state");
const UNDO: TableDefinition<&[u8], &[u8]> = TableDefinition::new("undo");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const REPLAY: TableDefinition<&[u8], u64> = TableDefinition::new("replay");
const HEAD_KEY: &str = "chain.head";

fn be<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Backend(e.to_string())
}

pub struct RedbStore {
    db: std::sync::Arc<Database>,
}

impl RedbStore {
    /// Opens or creates the database file, creating every table so readers
    /// never meet a missing one.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(be)?;
        let txn = db.begin_write().map_err(be)?;
        {
            txn.open_table(BLOCKS).map_err(be)?;
            txn.open_table(MAIN).map_err(be)?;
            txn.open_table(STATE).map_err(be)?;
            txn.open_table(UNDO).map_err(be)?;
            txn.open_table(META).map_err(be)?;
            txn.open_table(REPLAY).map_err(be)?;
        }
        txn.commit().map_err(be)?;
        Ok(Self { db: std::sync::Arc::new(db) })
    }

    fn write_ops(txn: &WriteTransaction, ops: &[Op<'_>]) -> Result<(), StoreError> {
        let mut blocks = txn.open_table(BLOCKS).map_err(be)?;
        let mut main = txn.open_table(MAIN).map_err(be)?;
        let mut state = txn.open_table(STATE).map_err(be)?;
        let mut undo = txn.open_table(UNDO).map_err(be)?;
        let mut meta = txn.open_table(META).map_err(be)?;
        let mut replay = txn.open_table(REPLAY).map_err(be)?;
        for op in ops {
            match op {
                Op::PutBlock(h, id, b) => {
                    blocks.insert(id.0.as_slice(), &b[..]).map_err(be)?;
                    main.insert(*h, id.0.as_slice()).map_err(be)?;
                }
                Op::DeleteBlock(id) => {
                    blocks.remove(id.0.as_slice()).map_err(be)?;
                }
                Op::State(k, Some(v)) => {
                    state.insert(*k, *v).map_err(be)?;
                }
                Op::State(k, None) => {
                    state.remove(*k).map_err(be)?;
                }
                Op::PutUndo(id, u) => {
                    undo.insert(id.0.as_slice(), *u).map_err(be)?;
                }
                Op::DeleteUndo(id) => {
                    undo.remove(id.0.as_slice()).map_err(be)?;
                }
                Op::PutReplay(id, n) => {
                    replay.insert(id.0.as_slice(), *n).map_err(be)?;
                }
                Op::DeleteReplay(id) => {
                    replay.remove(id.0.as_slice()).map_err(be)?;
                }
                Op::PruneBelow(below) => {
                    let gone = main
                        .range(..*below)
                        .map_err(be)?
                        .take(protoblock_core::chain::MAX_PRUNED_PER_COMMIT)
                        .map(|r| {
                            let (k, v) = r.map_err(be)?;
                            Ok((k.value(), v.value().to_vec()))
                        })
                        .collect::<Result<Vec<(u64, Vec<u8>)>, StoreError>>()?;
                    for (h, id) in gone {
                        main.remove(h).map_err(be)?;
                        blocks.remove(id.as_slice()).map_err(be)?;
                    }
                }
                Op::Head(h) => {
                    // Drop index entries above the new head (kept exact even
                    // though fork choice never shortens the chain).
                    let stale: Vec<u64> = main
                        .range(h.height + 1..)
                        .map_err(be)?
                        .filter_map(|r| r.ok().map(|(k, _)| k.value()))
                        .collect();
                    for k in stale {
                        main.remove(k).map_err(be)?;
                    }
                    meta.insert(HEAD_KEY, encode_head(h).as_slice()).map_err(be)?;
                }
            }
        }
        Ok(())
    }

    /// Test hook: writes only the first `ops_before_crash` steps of the batch
    /// and then drops the transaction uncommitted, as a crash at that point
    /// would. The store must look exactly as before.
    #[cfg(feature = "test-hooks")]
    pub fn commit_torn(&self, batch: &WriteBatch, ops_before_crash: usize) -> Result<(), StoreError> {
        let all = ops(batch);
        let txn = self.db.begin_write().map_err(be)?;
        Self::write_ops(&txn, &all[..ops_before_crash.min(all.len())])?;
        drop(txn); // no commit: redb rolls the transaction back
        Ok(())
    }

    /// Number of steps a batch is written in (for torn-commit tests).
    #[cfg(feature = "test-hooks")]
    pub fn op_count(batch: &WriteBatch) -> usize {
        ops(batch).len()
    }
}

impl Store for RedbStore {
    async fn load(&self) -> Result<Option<StoredChain>, StoreError> {
        let txn = self.db.begin_read().map_err(be)?;
        let meta = txn.open_table(META).map_err(be)?;
        let Some(h) = meta.get(HEAD_KEY).map_err(be)? else { return Ok(None) };
        let head = decode_head(h.value())?;
        let main = txn.open_table(MAIN).map_err(be)?;
        let blocks = txn.open_table(BLOCKS).map_err(be)?;
        let undo = txn.open_table(UNDO).map_err(be)?;
        let mut recent = Vec::new();
        for height in head.final_height.max(1)..=head.height {
            let id_guard = main.get(height).map_err(be)?.ok_or(StoreError::Corrupt("main index gap"))?;
            let id = Hash32::from_slice(id_guard.value()).ok_or(StoreError::Corrupt("main index entry"))?;
            let bytes =
                blocks.get(id.0.as_slice()).map_err(be)?.ok_or(StoreError::Corrupt("missing block"))?.value().to_vec();
            let u = undo.get(id.0.as_slice()).map_err(be)?.map(|g| g.value().to_vec());
            recent.push(StoredBlock { height, id, bytes, undo: u });
        }
        let state_t = txn.open_table(STATE).map_err(be)?;
        let mut state = Vec::new();
        for r in state_t.iter().map_err(be)? {
            let (k, v) = r.map_err(be)?;
            state.push((k.value().to_vec(), v.value().to_vec()));
        }
        let replay_t = txn.open_table(REPLAY).map_err(be)?;
        let mut replay = Vec::new();
        for r in replay_t.iter().map_err(be)? {
            let (k, v) = r.map_err(be)?;
            replay.push((Hash32::from_slice(k.value()).ok_or(StoreError::Corrupt("replay key"))?, v.value()));
        }
        Ok(Some(StoredChain { head, state, recent, replay }))
    }

    async fn commit(&self, mut batch: WriteBatch) -> Result<(), StoreError> {
        let db = self.db.clone();
        let (done, result) = futures::channel::oneshot::channel();
        std::thread::Builder::new()
            .name("redb-commit".into())
            .spawn(move || {
                batch.compact();
                let r = db.begin_write().map_err(be).and_then(|txn| {
                    Self::write_ops(&txn, &ops(&batch))?;
                    txn.commit().map_err(be)
                });
                // This thread's handle goes before the answer: a caller that
                // drops the store once its commit is durable can reopen the
                // file at once (redb refuses a second open while one lives).
                drop(db);
                let _ = done.send(r);
            })
            .map_err(be)?;
        result.await.unwrap_or_else(|_| Err(StoreError::Backend("the commit thread died".into())))
    }

    async fn head(&self) -> Result<Option<HeadRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(be)?;
        let meta = txn.open_table(META).map_err(be)?;
        match meta.get(HEAD_KEY).map_err(be)? {
            Some(v) => Ok(Some(decode_head(v.value())?)),
            None => Ok(None),
        }
    }

    async fn blocks_range(&self, start: u64, count: u32, max_bytes: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(be)?;
        let meta = txn.open_table(META).map_err(be)?;
        let Some(h) = meta.get(HEAD_KEY).map_err(be)? else { return Ok(Vec::new()) };
        let top = decode_head(h.value())?.height;
        let main = txn.open_table(MAIN).map_err(be)?;
        let blocks = txn.open_table(BLOCKS).map_err(be)?;
        let mut out = Vec::new();
        let mut size = 0;
        let end = start.saturating_add(count as u64).min(top.saturating_add(1));
        // Consecutive from `start`: a node that keeps only its newest blocks
        // has none below them, and answers with what it holds from `start`
        // (nothing), never with later blocks.
        for (r, want) in main.range(start..end).map_err(be)?.zip(start..) {
            let (height, id) = r.map_err(be)?;
            if height.value() != want {
                break;
            }
            let Some(b) = blocks.get(id.value()).map_err(be)? else { break };
            let b = b.value();
            if !out.is_empty() && size + b.len() > max_bytes {
                break;
            }
            size += b.len();
            out.push(b.to_vec());
        }
        Ok(out)
    }

    async fn block_by_id(&self, id: Hash32) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(be)?;
        let blocks = txn.open_table(BLOCKS).map_err(be)?;
        Ok(blocks.get(id.0.as_slice()).map_err(be)?.map(|g| g.value().to_vec()))
    }

    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(be)?;
        let meta = txn.open_table(META).map_err(be)?;
        Ok(meta.get(key).map_err(be)?.map(|g| g.value().to_vec()))
    }

    async fn put_meta(&self, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(be)?;
        {
            let mut meta = txn.open_table(META).map_err(be)?;
            meta.insert(key, value.as_slice()).map_err(be)?;
        }
        txn.commit().map_err(be)
    }
}
