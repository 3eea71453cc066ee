//! `IndexedDbStore`: the browser's [`Store`], on IndexedDB through rexie.
//!
//! One readwrite transaction over every object store commits a whole
//! [`WriteBatch`] (blocks, state, undo records, replay index, head), so a
//! closed tab or a crash leaves either all of it or none of it. Requests of
//! one commit are issued together and awaited once: IndexedDB orders them
//! within the transaction, and a transaction per batch (not per block) is
//! what makes sync fast (the browser's own cost is ~0.4 ms per transaction).
//!
//! Keys: block, undo and replay ids and state keys are binary (`Uint8Array`,
//! valid IndexedDB keys that sort bytewise); main-chain heights are numbers
//! (exact below 2^53); metadata keys are strings. The head lives in `meta`
//! under [`HEAD_KEY`].

use futures::future::try_join_all;
use js_sys::Uint8Array;
use protoblock_core::chain::{HeadRecord, StoredBlock, StoredChain, WriteBatch};
use protoblock_core::hash::Hash32;
use protoblock_store::{Store, StoreError, decode_head, encode_head};
use rexie::{KeyRange, ObjectStore, Rexie, TransactionMode};
use std::rc::Rc;
use wasm_bindgen::JsValue;

const BLOCKS: &str = "blocks";
const MAIN: &str = "main";
const STATE: &str = "state";
const UNDO: &str = "undo";
const REPLAY: &str = "replay";
const META: &str = "meta";
const ALL: [&str; 6] = [BLOCKS, MAIN, STATE, UNDO, REPLAY, META];
const HEAD_KEY: &str = "chain/head";
const DB_VERSION: u32 = 1;

/// A handle on one IndexedDB database; clones share it.
#[derive(Clone)]
pub struct IndexedDbStore {
    db: Rc<Rexie>,
    name: String,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn bytes(v: &[u8]) -> JsValue {
    Uint8Array::from(v).into()
}

/// Values come back as the `Uint8Array`s stored; binary keys come back as
/// `ArrayBuffer`s (IndexedDB normalises them).
fn to_vec(v: &JsValue) -> Result<Vec<u8>, StoreError> {
    if let Some(a) = v.dyn_ref::<Uint8Array>() {
        return Ok(a.to_vec());
    }
    v.dyn_ref::<js_sys::ArrayBuffer>().map(|b| Uint8Array::new(b).to_vec()).ok_or(StoreError::Corrupt("expected bytes"))
}

fn to_hash(v: &JsValue) -> Result<Hash32, StoreError> {
    Hash32::from_slice(&to_vec(v)?).ok_or(StoreError::Corrupt("expected a 32-byte id"))
}

use wasm_bindgen::JsCast;

impl IndexedDbStore {
    /// Opens (creating on first use) the database `name`.
    pub async fn open(name: &str) -> Result<Self, StoreError> {
        let mut b = Rexie::builder(name).version(DB_VERSION);
        for s in ALL {
            b = b.add_object_store(ObjectStore::new(s));
        }
        let db = b.build().await.map_err(backend)?;
        Ok(Self { db: Rc::new(db), name: name.to_string() })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Closes the connection once the last handle goes (IndexedDB does not
    /// close on drop; an open connection blocks deleting the database).
    pub fn close(self) {
        if let Ok(db) = Rc::try_unwrap(self.db) {
            db.close();
        }
    }

    /// Deletes a database (tests and "reset this node"); waits until every
    /// connection to it is closed.
    pub async fn delete(name: &str) -> Result<(), StoreError> {
        Rexie::delete(name).await.map_err(backend)
    }

    /// Issues every request of `batch` in one readwrite transaction. With
    /// `abort_after = Some(n)` it issues only the first `n` requests and then
    /// aborts, as a tab closed mid-commit would (test hook).
    async fn write(&self, batch: WriteBatch, abort_after: Option<usize>) -> Result<(), StoreError> {
        let tx = self.db.transaction(&ALL, TransactionMode::ReadWrite).map_err(backend)?;
        let st = |n| tx.store(n).map_err(backend);
        let (blocks, main, state, undo, replay, meta) =
            (st(BLOCKS)?, st(MAIN)?, st(STATE)?, st(UNDO)?, st(REPLAY)?, st(META)?);
        // (store, key, Some(value) = put | None = delete), in batch order:
        // puts before deletes, as the other stores apply them.
        let mut ops: Vec<(&rexie::Store, JsValue, Option<JsValue>)> = Vec::new();
        for (h, id, b) in &batch.put_blocks {
            ops.push((&blocks, bytes(&id.0), Some(bytes(b))));
            ops.push((&main, JsValue::from_f64(*h as f64), Some(bytes(&id.0))));
        }
        for id in &batch.delete_blocks {
            ops.push((&blocks, bytes(&id.0), None));
        }
        // Net effects only: each IndexedDB request costs, and a sync batch of
        // 128 blocks writes the same keys (accounts, season) many times and
        // puts undo records for blocks that turn final within the batch.
        let mut last: std::collections::HashMap<&[u8], usize> = std::collections::HashMap::new();
        for (i, (k, _)) in batch.state.iter().enumerate() {
            last.insert(k.as_slice(), i);
        }
        for (i, (k, v)) in batch.state.iter().enumerate() {
            if last.get(k.as_slice()) == Some(&i) {
                ops.push((&state, bytes(k), v.as_ref().map(|v| bytes(v))));
            }
        }
        let undone: std::collections::HashSet<&Hash32> = batch.delete_undo.iter().collect();
        for (id, u) in batch.put_undo.iter().filter(|(id, _)| !undone.contains(id)) {
            ops.push((&undo, bytes(&id.0), Some(bytes(u))));
        }
        for id in &batch.delete_undo {
            ops.push((&undo, bytes(&id.0), None));
        }
        for (id, nonce) in &batch.replay_put {
            ops.push((&replay, bytes(&id.0), Some(bytes(&nonce.to_be_bytes()))));
        }
        for id in &batch.replay_delete {
            ops.push((&replay, bytes(&id.0), None));
        }
        if let Some(h) = &batch.head {
            // Heights above the new head are stale (never happens with
            // longest-chain fork choice, kept exact like the other stores).
            let stale =
                KeyRange::lower_bound(&JsValue::from_f64((h.height + 1) as f64), Some(false)).map_err(backend)?;
            ops.push((&main, stale.into(), None));
            ops.push((&meta, JsValue::from_str(HEAD_KEY), Some(bytes(&encode_head(h)))));
        }
        let limit = abort_after.unwrap_or(usize::MAX);
        let reqs = ops.iter().take(limit).map(|(s, k, v)| async move {
            match v {
                Some(v) => s.put(v, Some(k)).await.map(|_| ()),
                None => s.delete(k.clone()).await,
            }
        });
        if abort_after.is_some() {
            // Let the issued requests run, then abort: none may survive.
            let _ = try_join_all(reqs).await;
            return tx.abort().await.map_err(backend);
        }
        try_join_all(reqs).await.map_err(backend)?;
        tx.done().await.map_err(backend)?;
        Ok(())
    }

    /// Test hook: a commit interrupted after `ops` requests.
    #[doc(hidden)]
    pub async fn commit_torn(&self, batch: WriteBatch, ops: usize) -> Result<(), StoreError> {
        self.write(batch, Some(ops)).await
    }

    /// Number of blocks stored (for tests: proves what a reload did not
    /// download again).
    pub async fn block_count(&self) -> Result<u32, StoreError> {
        let tx = self.db.transaction(&[BLOCKS], TransactionMode::ReadOnly).map_err(backend)?;
        tx.store(BLOCKS).map_err(backend)?.count(None).await.map_err(backend)
    }
}

impl Store for IndexedDbStore {
    async fn load(&self) -> Result<Option<StoredChain>, StoreError> {
        let tx = self.db.transaction(&ALL, TransactionMode::ReadOnly).map_err(backend)?;
        let st = |n| tx.store(n).map_err(backend);
        let Some(head) = st(META)?.get(JsValue::from_str(HEAD_KEY)).await.map_err(backend)? else {
            return Ok(None);
        };
        let head = decode_head(&to_vec(&head)?)?;
        let from = head.final_height.max(1);
        let ids = if head.height >= from {
            let range = KeyRange::bound(
                &JsValue::from_f64(from as f64),
                &JsValue::from_f64(head.height as f64),
                Some(false),
                Some(false),
            )
            .map_err(backend)?;
            st(MAIN)?.get_all(Some(range), None).await.map_err(backend)?
        } else {
            Vec::new()
        };
        if ids.len() as u64 != head.height + 1 - from && head.height >= from {
            return Err(StoreError::Corrupt("main index gap"));
        }
        let (blocks, undo) = (st(BLOCKS)?, st(UNDO)?);
        let mut recent = Vec::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            let id = to_hash(id)?;
            let b = blocks.get(bytes(&id.0)).await.map_err(backend)?.ok_or(StoreError::Corrupt("missing block"))?;
            let u = undo.get(bytes(&id.0)).await.map_err(backend)?.map(|u| to_vec(&u)).transpose()?;
            recent.push(StoredBlock { height: from + i as u64, id, bytes: to_vec(&b)?, undo: u });
        }
        let state_store = st(STATE)?;
        let keys = state_store.get_all_keys(None, None).await.map_err(backend)?;
        let values = state_store.get_all(None, None).await.map_err(backend)?;
        if keys.len() != values.len() {
            return Err(StoreError::Corrupt("state keys and values differ"));
        }
        let state =
            keys.iter().zip(values.iter()).map(|(k, v)| Ok((to_vec(k)?, to_vec(v)?))).collect::<Result<_, _>>()?;
        let replay_store = st(REPLAY)?;
        let rk = replay_store.get_all_keys(None, None).await.map_err(backend)?;
        let rv = replay_store.get_all(None, None).await.map_err(backend)?;
        let replay = rk
            .iter()
            .zip(rv.iter())
            .map(|(k, v)| {
                let n: [u8; 8] = to_vec(v)?.try_into().map_err(|_| StoreError::Corrupt("replay nonce"))?;
                Ok((to_hash(k)?, u64::from_be_bytes(n)))
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Some(StoredChain { head, state, recent, replay }))
    }

    async fn commit(&self, batch: WriteBatch) -> Result<(), StoreError> {
        self.write(batch, None).await
    }

    async fn head(&self) -> Result<Option<HeadRecord>, StoreError> {
        match self.get_meta(HEAD_KEY).await? {
            Some(v) => Ok(Some(decode_head(&v)?)),
            None => Ok(None),
        }
    }

    async fn blocks_range(&self, start: u64, count: u32, max_bytes: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let tx = self.db.transaction(&[MAIN, BLOCKS], TransactionMode::ReadOnly).map_err(backend)?;
        let end = start.saturating_add(count as u64 - 1);
        let range =
            KeyRange::bound(&JsValue::from_f64(start as f64), &JsValue::from_f64(end as f64), Some(false), Some(false))
                .map_err(backend)?;
        let ids = tx.store(MAIN).map_err(backend)?.get_all(Some(range), Some(count)).await.map_err(backend)?;
        let blocks = tx.store(BLOCKS).map_err(backend)?;
        let gets = ids.iter().map(|id| blocks.get(id.clone()));
        let found = try_join_all(gets).await.map_err(backend)?;
        let mut out = Vec::new();
        let mut size = 0;
        for b in found {
            let Some(b) = b else { break };
            let b = to_vec(&b)?;
            if !out.is_empty() && size + b.len() > max_bytes {
                break;
            }
            size += b.len();
            out.push(b);
        }
        Ok(out)
    }

    async fn block_by_id(&self, id: Hash32) -> Result<Option<Vec<u8>>, StoreError> {
        let tx = self.db.transaction(&[BLOCKS], TransactionMode::ReadOnly).map_err(backend)?;
        let v = tx.store(BLOCKS).map_err(backend)?.get(bytes(&id.0)).await.map_err(backend)?;
        v.map(|v| to_vec(&v)).transpose()
    }

    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let tx = self.db.transaction(&[META], TransactionMode::ReadOnly).map_err(backend)?;
        let v = tx.store(META).map_err(backend)?.get(JsValue::from_str(key)).await.map_err(backend)?;
        v.map(|v| to_vec(&v)).transpose()
    }

    async fn put_meta(&self, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        let tx = self.db.transaction(&[META], TransactionMode::ReadWrite).map_err(backend)?;
        tx.store(META).map_err(backend)?.put(&bytes(&value), Some(&JsValue::from_str(key))).await.map_err(backend)?;
        tx.done().await.map_err(backend)?;
        Ok(())
    }
}
