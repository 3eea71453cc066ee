//! `IndexedDbStore`: the browser's [`Store`], on IndexedDB (rexie for opening
//! and reads, raw web-sys for commits).
//!
//! One readwrite transaction over every object store commits a whole
//! [`WriteBatch`] (blocks, state, undo records, replay index, head), so a
//! closed tab or a crash leaves either all of it or none of it. A transaction
//! per batch (not per block) is what makes sync fast (the browser's own cost
//! is ~0.4 ms per transaction), and during sync the page's main thread, not
//! the disk, is the limit, so a commit costs what its requests cost there:
//! - requests are issued without handlers and only the transaction is
//!   awaited (rexie gives every request a closure and a success event);
//! - only net effects are written (a key written many times in a batch once,
//!   an undo record put and deleted within the batch not at all);
//! - the replay index (20 tx ids a block) is stored as one segment record per
//!   commit ([`ReplaySegments`]), not one record per id, and so is the
//!   main-chain index, height -> id ([`main_index`]), not one record per block;
//! - while a transaction runs, the node validates on and stages what it
//!   places into one later commit (group commit, in protoblock-node); a
//!   commit resolves once its transaction is durable.
//!
//! What each of these saved is in BENCHMARKS.md (`cargo xtask bench-web`).
//!
//! Keys: block and undo ids and state keys are binary (`Uint8Array`, valid
//! IndexedDB keys that sort bytewise); main-chain heights and replay
//! segments are numbers (exact below 2^53); metadata keys are strings. The
//! head lives in `meta` under [`HEAD_KEY`].

mod idb;
mod prune;

use crate::main_index;
use crate::replay_segments::ReplaySegments;
use futures::future::try_join_all;
use idb::{
    backend, bytes, js, open_raw, optional_bytes, poisoned, request, superseded, to_hash, to_vec, transaction_done,
};
use protoblock_core::chain::{HeadRecord, StoredBlock, StoredChain, WriteBatch};
use protoblock_core::hash::Hash32;
use protoblock_store::{Store, StoreError, WriteOp, decode_head, encode_head, write_ops};
use prune::Prune;
use rexie::{ObjectStore, Rexie, TransactionMode};
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;
use wasm_bindgen::JsValue;
use wasm_bindgen::closure::Closure;
use web_sys::{IdbDatabase, IdbKeyRange, IdbObjectStore, IdbTransactionMode};

const BLOCKS: &str = "blocks";
/// The main-chain index, height -> block id, as segments: a record keyed by
/// height `s` holds the ids of heights `s..` back to back (see [`main_index`]).
const MAIN: &str = "main";
const STATE: &str = "state";
const UNDO: &str = "undo";
/// Version 1 kept one record per replay id; read only to migrate.
const REPLAY_V1: &str = "replay";
/// The replay index as segments: one record per commit that added ids, keyed
/// by a sequence number, holding `id (32) || nonce (8, BE)` entries (see
/// [`ReplaySegments`]).
const REPLAY: &str = "replay-segments";
const META: &str = "meta";
const ALL: [&str; 7] = [BLOCKS, MAIN, STATE, UNDO, REPLAY, META, REPLAY_V1];
const HEAD_KEY: &str = "chain/head";
/// The lowest height whose block the store still holds, once it pruned
/// (8 bytes, big-endian); absent: every block from 1.
const FLOOR_KEY: &str = "chain/floor";
/// 2: the replay index moved from one record per tx id (`replay`) to
/// segments (`replay-segments`); `open` migrates a version-1 database in
/// place (its ids become one segment), so a node keeps its synced chain.
const DB_VERSION: u32 = 2;

/// A handle on one IndexedDB database; clones share it. Reads go through
/// rexie; commits through a second, raw connection (rexie awaits every
/// request it issues, which costs a closure and an event per request).
#[derive(Clone)]
pub struct IndexedDbStore {
    db: Rc<Rexie>,
    raw: Rc<IdbDatabase>,
    /// A commit failed: later ones are refused, so the database keeps the
    /// last consistent head (reopening resumes from it).
    poisoned: Rc<Cell<bool>>,
    /// Another tab opened the database at a newer schema version: this
    /// connection closed itself (so that tab is not blocked) and refuses
    /// every later commit with an error saying so. Rexie's connection closes
    /// itself on `versionchange` too.
    superseded: Rc<Cell<bool>>,
    _on_versionchange: Rc<Closure<dyn FnMut()>>,
    /// Blocks below this height were pruned (`WriteBatch::prune_below`).
    floor: Rc<Cell<u64>>,
    replay: Rc<RefCell<ReplaySegments>>,
    /// Keys in the `state` store, once `load` has read them (until then
    /// every delete is issued): a batch deletes many keys that it created
    /// itself (projections paid out within the same sync batch), and those
    /// deletes are skipped.
    state_keys: Rc<RefCell<Option<KeySet>>>,
    /// Ids of the undo records stored (non-final blocks: a few dozen).
    undo_ids: Rc<RefCell<HashSet<Hash32>>>,
    name: String,
}

type KeySet = HashSet<Box<[u8]>>;

use wasm_bindgen::JsCast;

/// Milliseconds from the page's monotonic clock (`Date.now()` where there is none),
/// for the benchmark's counters.
#[cfg(feature = "bench")]
pub(crate) fn now_ms() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map(|p| p.now()).unwrap_or_else(js_sys::Date::now)
}

/// Commit counters for the browser benchmark, published on
/// `globalThis.pbStoreStats` (commits, blocks, ms awaiting commits, requests)
/// by the benchmark's build (`bench` feature) only.
#[cfg(feature = "bench")]
mod stats {
    use std::cell::Cell;
    thread_local! {
        static COMMITS: Cell<f64> = const { Cell::new(0.0) };
        static BLOCKS: Cell<f64> = const { Cell::new(0.0) };
        static MS: Cell<f64> = const { Cell::new(0.0) };
        static MAX_MS: Cell<f64> = const { Cell::new(0.0) };
        pub(super) static REQUESTS: Cell<f64> = const { Cell::new(0.0) };
        pub(super) static DELETES: Cell<f64> = const { Cell::new(0.0) };
    }
    pub(super) fn record(blocks: usize, ms: f64) {
        COMMITS.set(COMMITS.get() + 1.0);
        BLOCKS.set(BLOCKS.get() + blocks as f64);
        MS.set(MS.get() + ms);
        MAX_MS.set(MAX_MS.get().max(ms));
        let o = js_sys::Object::new();
        for (k, v) in [
            ("commits", COMMITS.get()),
            ("blocks", BLOCKS.get()),
            ("ms", MS.get()),
            ("maxMs", MAX_MS.get()),
            ("requests", REQUESTS.get()),
            ("deletes", DELETES.get()),
        ] {
            let _ = js_sys::Reflect::set(&o, &k.into(), &v.into());
        }
        let _ = js_sys::Reflect::set(&js_sys::global(), &"pbStoreStats".into(), &o);
    }
}

impl IndexedDbStore {
    /// Opens (creating on first use) the database `name`.
    pub async fn open(name: &str) -> Result<Self, StoreError> {
        let mut b = Rexie::builder(name).version(DB_VERSION);
        for s in ALL {
            b = b.add_object_store(ObjectStore::new(s));
        }
        let db = b.build().await.map_err(backend)?;
        let mut replay = ReplaySegments::default();
        {
            let tx = db.transaction(&[REPLAY, REPLAY_V1], TransactionMode::ReadWrite).map_err(backend)?;
            let segs = tx.store(REPLAY).map_err(backend)?;
            let keys = segs.get_all_keys(None, None).await.map_err(backend)?;
            let values = segs.get_all(None, None).await.map_err(backend)?;
            if keys.len() != values.len() {
                return Err(StoreError::Corrupt("replay segment keys and values differ"));
            }
            for (k, v) in keys.iter().zip(values.iter()) {
                let seg = k.as_f64().ok_or(StoreError::Corrupt("replay segment key"))? as u64;
                replay.load(seg, &to_vec(v)?)?;
            }
            // Version 1: one record per id; they become one segment.
            let v1 = tx.store(REPLAY_V1).map_err(backend)?;
            let rk = v1.get_all_keys(None, None).await.map_err(backend)?;
            if !rk.is_empty() {
                let rv = v1.get_all(None, None).await.map_err(backend)?;
                let old = rk
                    .iter()
                    .zip(rv.iter())
                    .map(|(k, v)| {
                        let n: [u8; 8] = to_vec(v)?.try_into().map_err(|_| StoreError::Corrupt("replay nonce"))?;
                        Ok((to_hash(k)?, u64::from_be_bytes(n)))
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?;
                let plan = replay.apply(&old, &[]);
                for (seg, v) in plan.put {
                    segs.put(&bytes(&v), Some(&JsValue::from_f64(seg as f64))).await.map_err(backend)?;
                }
                v1.clear().await.map_err(backend)?;
            }
            tx.done().await.map_err(backend)?;
        }
        let undo_ids = {
            let tx = db.transaction(&[UNDO], TransactionMode::ReadOnly).map_err(backend)?;
            let keys = tx.store(UNDO).map_err(backend)?.get_all_keys(None, None).await.map_err(backend)?;
            keys.iter().map(to_hash).collect::<Result<HashSet<_>, _>>()?
        };
        let floor = {
            let tx = db.transaction(&[META], TransactionMode::ReadOnly).map_err(backend)?;
            let v = tx.store(META).map_err(backend)?.get(JsValue::from_str(FLOOR_KEY)).await.map_err(backend)?;
            match v {
                Some(v) if !v.is_undefined() => {
                    let b: [u8; 8] = to_vec(&v)?.try_into().map_err(|_| StoreError::Corrupt("floor record"))?;
                    u64::from_be_bytes(b)
                }
                _ => 0,
            }
        };
        let raw = open_raw(name, DB_VERSION).await?;
        let superseded_flag = Rc::new(Cell::new(false));
        let on_versionchange = {
            let (raw, flag) = (raw.clone(), superseded_flag.clone());
            Closure::<dyn FnMut()>::new(move || {
                tracing::warn!("a newer schema of the database was asked for elsewhere: closing this connection");
                flag.set(true);
                raw.close();
            })
        };
        raw.set_onversionchange(Some(on_versionchange.as_ref().unchecked_ref()));
        Ok(Self {
            superseded: superseded_flag,
            floor: Rc::new(Cell::new(floor)),
            _on_versionchange: Rc::new(on_versionchange),
            state_keys: Rc::default(),
            undo_ids: Rc::new(RefCell::new(undo_ids)),
            db: Rc::new(db),
            raw: Rc::new(raw),
            poisoned: Rc::default(),
            replay: Rc::new(RefCell::new(replay)),
            name: name.to_string(),
        })
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
        if let Ok(raw) = Rc::try_unwrap(self.raw) {
            raw.close();
        }
    }

    /// Deletes a database (tests and "reset this node"); waits until every
    /// connection to it is closed.
    pub async fn delete(name: &str) -> Result<(), StoreError> {
        Rexie::delete(name).await.map_err(backend)
    }

    /// Issues every request of `batch` in one readwrite transaction on the
    /// raw connection and awaits only the transaction's completion: no
    /// request gets a success handler (each handler is a JS-to-wasm closure
    /// and an event; per request they cost more than the write itself). Any
    /// failed request aborts the transaction, which then rejects. With
    /// `abort_after = Some(n)` it issues only the first `n` requests and then
    /// aborts, as a tab closed mid-commit would (test hook).
    fn write(
        &self,
        batch: &WriteBatch,
        prune: Option<&Prune>,
        abort_after: Option<usize>,
    ) -> Result<(impl std::future::Future<Output = Result<(), StoreError>> + use<>, usize), StoreError> {
        let names = js_sys::Array::new();
        for n in ALL {
            names.push(&JsValue::from_str(n));
        }
        let tx = self.raw.transaction_with_str_sequence_and_mode(&names, IdbTransactionMode::Readwrite).map_err(js)?;
        let done = transaction_done(&tx);
        let st = |n| tx.object_store(n).map_err(js);
        let (blocks, main, state, undo, replay, meta) =
            (st(BLOCKS)?, st(MAIN)?, st(STATE)?, st(UNDO)?, st(REPLAY)?, st(META)?);
        let mut left = abort_after.unwrap_or(usize::MAX);
        let mut issued = 0usize;
        // (store, key, Some(value) = put | None = delete), in batch order:
        // puts before deletes, as the other stores apply them.
        let mut op = |s: &IdbObjectStore, k: &JsValue, v: Option<&JsValue>| -> Result<(), StoreError> {
            if left == 0 {
                return Ok(());
            }
            left -= 1;
            issued += 1;
            match v {
                Some(v) => s.put_with_key(v, k).map(|_| ()),
                None => {
                    #[cfg(feature = "bench")]
                    stats::DELETES.set(stats::DELETES.get() + 1.0);
                    s.delete(k).map(|_| ())
                }
            }
            .map_err(js)
        };
        // The batch's writes are the list every store applies
        // (`protoblock_store::write_ops`); this store issues each one's net
        // effect in its own layout. What needs a whole kind of write at once
        // reads it from the batch the list is made of: the main-chain index's
        // runs of heights, the replay index's segment records, the undo
        // records put and deleted within the batch.
        let ops = write_ops(batch);
        let main_runs = main_index::segments(batch.put_blocks.iter().map(|(h, id, _)| (*h, *id)));
        let (replay_put, replay_delete) = (&batch.replay_put, &batch.replay_delete);
        let undone: HashSet<&Hash32> = batch.delete_undo.iter().collect();
        let r = (|| {
            // Pruning first: the heights it drops are at or below the stored
            // final height, below every height the batch puts.
            if let Some(p) = prune {
                for id in &p.ids {
                    op(&blocks, &bytes(&id.0), None)?;
                }
                if let Some((key, ids)) = &p.rewrite {
                    op(&main, &JsValue::from_f64(*key as f64), Some(&bytes(ids)))?;
                }
                let below =
                    IdbKeyRange::upper_bound_with_open(&JsValue::from_f64(p.new_floor as f64), true).map_err(js)?;
                op(&main, &below.into(), None)?;
                op(&meta, &JsValue::from_str(FLOOR_KEY), Some(&bytes(&p.new_floor.to_be_bytes())))?;
            }
            // The index: one record per run of heights (one per commit),
            // after deleting the records keyed above its lowest height, which
            // it overrides.
            if let Some((lo, _)) = main_runs.first() {
                let above = IdbKeyRange::lower_bound_with_open(&JsValue::from_f64(*lo as f64), true).map_err(js)?;
                op(&main, &above.into(), None)?;
            }
            for (start, ids) in &main_runs {
                op(&main, &JsValue::from_f64(*start as f64), Some(&bytes(ids)))?;
            }
            // Each IndexedDB request costs the page's thread: the node hands
            // over compacted batches (`WriteBatch::compact`: each state key
            // once), and a delete of a key never stored is not issued.
            let mut keys = self.state_keys.borrow_mut();
            let mut changed: Vec<(&[u8], bool)> = Vec::new();
            // Undo records are put for new blocks and deleted once final,
            // during sync mostly within the same batch: such a record is
            // neither written nor deleted (the set of stored ids says which
            // deletes have something to delete). The torn-commit hook works
            // on a copy, as the aborted transaction leaves the database.
            let mut stored_undo = self.undo_ids.borrow_mut();
            let mut torn_copy;
            let stored_undo: &mut HashSet<Hash32> = match abort_after {
                Some(_) => {
                    torn_copy = stored_undo.clone();
                    &mut torn_copy
                }
                None => &mut stored_undo,
            };
            let mut replay_written = false;
            for w in &ops {
                match *w {
                    WriteOp::PutBlock(_, id, b) => op(&blocks, &bytes(&id.0), Some(&bytes(b)))?,
                    WriteOp::DeleteBlock(id) => op(&blocks, &bytes(&id.0), None)?,
                    WriteOp::State(k, Some(v)) => {
                        op(&state, &bytes(k), Some(&bytes(v)))?;
                        changed.push((k, true));
                    }
                    WriteOp::State(k, None) => {
                        if keys.as_ref().is_some_and(|s| !s.contains(k)) {
                            continue;
                        }
                        op(&state, &bytes(k), None)?;
                        changed.push((k, false));
                    }
                    WriteOp::PutUndo(id, _) if undone.contains(id) => {}
                    WriteOp::PutUndo(id, u) => {
                        op(&undo, &bytes(&id.0), Some(&bytes(u)))?;
                        stored_undo.insert(*id);
                    }
                    WriteOp::DeleteUndo(id) => {
                        if stored_undo.remove(id) {
                            op(&undo, &bytes(&id.0), None)?;
                        }
                    }
                    WriteOp::PutReplay(..) | WriteOp::DeleteReplay(_) if replay_written => {}
                    WriteOp::PutReplay(..) | WriteOp::DeleteReplay(_) => {
                        replay_written = true;
                        // The hook must leave the mirror as the aborted
                        // transaction leaves the database.
                        let plan = match abort_after {
                            Some(_) => self.replay.borrow().clone().apply(replay_put, replay_delete),
                            None => self.replay.borrow_mut().apply(replay_put, replay_delete),
                        };
                        for (seg, v) in &plan.put {
                            op(&replay, &JsValue::from_f64(*seg as f64), Some(&bytes(v)))?;
                        }
                        for seg in &plan.delete {
                            op(&replay, &JsValue::from_f64(*seg as f64), None)?;
                        }
                    }
                    // Reads stop at the head, so an index record reaching
                    // above it (never with longest-chain fork choice) is
                    // never read.
                    // Issued first, from `prune` (this store needs the ids it drops).
                    WriteOp::PruneBelow(_) => {}
                    WriteOp::Head(h) => op(&meta, &JsValue::from_str(HEAD_KEY), Some(&bytes(&encode_head(h))))?,
                }
            }
            // The torn-commit hook leaves the set as the database stays.
            if let (Some(set), None) = (keys.as_mut(), abort_after) {
                for (k, present) in changed {
                    if present {
                        set.insert(k.into());
                    } else {
                        set.remove(k);
                    }
                }
            }
            Ok(())
        })();
        #[cfg(feature = "bench")]
        stats::REQUESTS.set(stats::REQUESTS.get() + issued as f64);
        if abort_after.is_some() || r.is_err() {
            // Abort with the issued requests pending: none may survive.
            let _ = tx.abort();
        }
        r.map(|()| {
            let aborted = abort_after.is_some();
            let done = async move {
                let r = done.await;
                if aborted { Ok(()) } else { r }
            };
            (done, issued)
        })
    }

    /// Kept for callers of the earlier pipelined store: a commit now
    /// resolves once its transaction is durable, so there is nothing to wait
    /// for; it reports whether an earlier commit failed.
    pub async fn flush(&self) -> Result<(), StoreError> {
        if self.poisoned.get() { Err(poisoned()) } else { Ok(()) }
    }

    /// Test hook: a commit interrupted after `ops` requests; returns how
    /// many it issued (all of them when `ops` is larger).
    #[cfg(feature = "test-hooks")]
    pub async fn commit_torn(&self, mut batch: WriteBatch, ops: usize) -> Result<usize, StoreError> {
        batch.compact();
        self.flush().await?;
        let (done, issued) = self.write(&batch, None, Some(ops))?;
        done.await?;
        Ok(issued)
    }

    /// One store in a read-only transaction on the raw connection.
    fn raw_store(&self, name: &str) -> Result<web_sys::IdbObjectStore, StoreError> {
        self.raw.transaction_with_str(name).map_err(js)?.object_store(name).map_err(js)
    }

    /// The main-chain ids at heights `from ..= to`, up to the head (see
    /// [`main_index`]): the index record at or below `from` (a cursor read
    /// backwards, one step) and those keyed above it up to `to`, in one
    /// transaction with the head.
    async fn main_ids(&self, from: u64, to: u64) -> Result<Vec<Hash32>, StoreError> {
        let names = js_sys::Array::of2(&JsValue::from_str(MAIN), &JsValue::from_str(META));
        let tx = self.raw.transaction_with_str_sequence(&names).map_err(js)?;
        let (main, meta) = (tx.object_store(MAIN).map_err(js)?, tx.object_store(META).map_err(js)?);
        let head = request(meta.get(&JsValue::from_str(HEAD_KEY)).map_err(js)?).await?;
        if head.is_undefined() {
            return Ok(Vec::new());
        }
        let to = to.min(decode_head(&to_vec(&head)?)?.height);
        if to < from {
            return Ok(Vec::new());
        }
        let num = |k: &JsValue| k.as_f64().map(|f| f as u64).ok_or(StoreError::Corrupt("main index key"));
        let mut records = Vec::new();
        let at_or_below = IdbKeyRange::upper_bound(&JsValue::from_f64(from as f64)).map_err(js)?;
        let cursor = main.open_cursor_with_range_and_direction(&at_or_below, web_sys::IdbCursorDirection::Prev);
        let cursor = request(cursor.map_err(js)?).await?;
        if let Some(c) = cursor.dyn_ref::<web_sys::IdbCursorWithValue>() {
            records.push((num(&c.key().map_err(js)?)?, to_vec(&c.value().map_err(js)?)?));
        }
        if to > from {
            let above = || {
                IdbKeyRange::bound_with_lower_open_and_upper_open(
                    &JsValue::from_f64(from as f64),
                    &JsValue::from_f64(to as f64),
                    true,
                    false,
                )
                .map_err(js)
            };
            let keys = request(main.get_all_keys_with_key(&above()?.into()).map_err(js)?).await?;
            let values = request(main.get_all_with_key(&above()?.into()).map_err(js)?).await?;
            let (keys, values) = (js_sys::Array::from(&keys), js_sys::Array::from(&values));
            if keys.length() != values.length() {
                return Err(StoreError::Corrupt("main index keys and values differ"));
            }
            for (k, v) in keys.iter().zip(values.iter()) {
                records.push((num(&k)?, to_vec(&v)?));
            }
        }
        main_index::resolve(from, to, &records)
    }

    /// Number of undo records stored (for tests: exactly the non-final
    /// main blocks', none left behind).
    #[cfg(feature = "test-hooks")]
    pub async fn undo_count(&self) -> Result<u32, StoreError> {
        let tx = self.db.transaction(&[UNDO], TransactionMode::ReadOnly).map_err(backend)?;
        tx.store(UNDO).map_err(backend)?.count(None).await.map_err(backend)
    }

    /// Number of blocks stored (for tests: proves what a reload did not
    /// download again).
    #[cfg(feature = "test-hooks")]
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
            // A new database: its (empty) set of state keys is known.
            if st(STATE)?.count(None).await.map_err(backend)? == 0 {
                *self.state_keys.borrow_mut() = Some(HashSet::new());
            }
            return Ok(None);
        };
        let head = decode_head(&to_vec(&head)?)?;
        drop(tx);
        // Nothing writes while a node loads: the index's own transaction and
        // the one reading the rest see the same database.
        let from = head.final_height.max(1);
        let ids = self.main_ids(from, head.height).await?;
        let tx = self.db.transaction(&ALL, TransactionMode::ReadOnly).map_err(backend)?;
        let st = |n| tx.store(n).map_err(backend);
        let (blocks, undo) = (st(BLOCKS)?, st(UNDO)?);
        let mut recent = Vec::with_capacity(ids.len());
        for (i, id) in ids.into_iter().enumerate() {
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
        let state: Vec<(Vec<u8>, Vec<u8>)> =
            keys.iter().zip(values.iter()).map(|(k, v)| Ok((to_vec(k)?, to_vec(v)?))).collect::<Result<_, _>>()?;
        *self.state_keys.borrow_mut() = Some(state.iter().map(|(k, _)| k.clone().into_boxed_slice()).collect());
        let replay = self.replay.borrow().live.iter().map(|(id, (_, nonce))| (*id, *nonce)).collect();
        Ok(Some(StoredChain { head, state, recent, replay }))
    }

    async fn commit(&self, mut batch: WriteBatch) -> Result<(), StoreError> {
        // `write` relies on each state key appearing once.
        batch.compact();
        if self.superseded.get() {
            return Err(superseded());
        }
        if self.poisoned.get() {
            return Err(poisoned());
        }
        #[cfg(feature = "bench")]
        let (t0, blocks) = (now_ms(), batch.put_blocks.len());
        // Resolves once the transaction is durable. The node keeps one
        // commit out and validates meanwhile (group commit), so the browser
        // writes batch N while the node validates N+1 without a second
        // transaction in flight: had batch N failed under a batch N+1 that
        // succeeded, the database would hold neither state. A failed
        // transaction refuses every later commit (reopen to resume).
        let prune = match batch.prune_below {
            Some(below) => self.prune_plan(below).await?,
            None => None,
        };
        let r = match self.write(&batch, prune.as_ref(), None) {
            Ok((done, _)) => done.await,
            Err(e) => Err(e),
        };
        match (&r, prune) {
            (Err(_), _) => self.poisoned.set(true),
            (Ok(()), Some(p)) => self.floor.set(p.new_floor),
            (Ok(()), None) => {}
        }
        #[cfg(feature = "bench")]
        stats::record(blocks, now_ms() - t0);
        r
    }

    async fn head(&self) -> Result<Option<HeadRecord>, StoreError> {
        match self.get_meta(HEAD_KEY).await? {
            Some(v) => Ok(Some(decode_head(&v)?)),
            None => Ok(None),
        }
    }

    async fn blocks_range(&self, start: u64, count: u32, max_bytes: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        // Below the floor the blocks were pruned: this node holds none of them.
        if count == 0 || start < self.floor.get() {
            return Ok(Vec::new());
        }
        // Blocks are stored by id and never change: a reorg between these
        // two transactions deletes some, and the range then ends before them.
        let ids = self.main_ids(start.max(1), start.saturating_add(count as u64 - 1)).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let blocks = self.raw_store(BLOCKS)?;
        let gets = ids.iter().map(|id| Ok::<_, StoreError>(request(blocks.get(&bytes(&id.0)).map_err(js)?)));
        let gets: Vec<_> = gets.collect::<Result<_, _>>()?;
        let found = try_join_all(gets).await?;
        let mut out = Vec::new();
        let mut size = 0;
        for b in found {
            if b.is_undefined() {
                break;
            }
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
        let v = request(self.raw_store(BLOCKS)?.get(&bytes(&id.0)).map_err(js)?).await?;
        optional_bytes(&v)
    }

    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let v = request(self.raw_store(META)?.get(&JsValue::from_str(key)).map_err(js)?).await?;
        optional_bytes(&v)
    }

    async fn put_meta(&self, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        let tx = self.db.transaction(&[META], TransactionMode::ReadWrite).map_err(backend)?;
        tx.store(META).map_err(backend)?.put(&bytes(&value), Some(&JsValue::from_str(key))).await.map_err(backend)?;
        tx.done().await.map_err(backend)?;
        Ok(())
    }
}
