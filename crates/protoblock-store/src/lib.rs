//! # protoblock-store
//!
//! Persistence for Protoblock nodes. The core hands out a [`WriteBatch`] per
//! chain change; a store applies it in ONE atomic transaction (blocks, state
//! changes, undo records and the new head together), so a crash or a closed
//! tab never leaves the head pointing at a block or state that is not there.
//!
//! The [`Store`] trait is async and holds no borrows across awaits so it fits
//! IndexedDB (the browser store lands with the wasm crate) as well as redb.
//! Implementations: [`MemoryStore`] (tests, simulations) and, natively,
//! [`RedbStore`].

#![forbid(unsafe_code)]

use std::future::Future;

use protoblock_core::chain::{HeadRecord, StoredChain, WriteBatch};
use protoblock_core::hash::Hash32;

mod memory;
#[cfg(all(feature = "redb", not(target_arch = "wasm32")))]
mod redb_store;

pub use memory::MemoryStore;
#[cfg(all(feature = "redb", not(target_arch = "wasm32")))]
pub use redb_store::RedbStore;

/// `Send` on native targets, nothing in the browser, where futures built on
/// JS promises are never `Send`. Lets one trait serve tokio and wasm.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSend: Send {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send> MaybeSend for T {}
#[cfg(target_arch = "wasm32")]
pub trait MaybeSend {}
#[cfg(target_arch = "wasm32")]
impl<T> MaybeSend for T {}

/// `Sync` on native targets; nothing in the browser, where handles on
/// IndexedDB are JS objects and the page is single-threaded.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSync: Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Sync> MaybeSync for T {}
#[cfg(target_arch = "wasm32")]
pub trait MaybeSync {}
#[cfg(target_arch = "wasm32")]
impl<T> MaybeSync for T {}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage backend: {0}")]
    Backend(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(&'static str),
}

/// Chain persistence. Every method is a short, self-contained transaction.
pub trait Store: MaybeSend + MaybeSync {
    /// The persisted chain to resume from, or `None` for an empty store.
    fn load(&self) -> impl Future<Output = Result<Option<StoredChain>, StoreError>> + MaybeSend;

    /// Applies a batch atomically, all of it or none of it, and resolves
    /// once it is durable. The node keeps one commit out at a time and goes
    /// on validating while it runs (group commit), so a commit need not
    /// return early; and a store must not start a second transaction before
    /// the first is durable, since the first failing under a second that
    /// succeeded would leave neither state on disk.
    fn commit(&self, batch: WriteBatch) -> impl Future<Output = Result<(), StoreError>> + MaybeSend;

    fn head(&self) -> impl Future<Output = Result<Option<HeadRecord>, StoreError>> + MaybeSend;

    /// Main-chain blocks from `start`, at most `count` and about `max_bytes`
    /// (always at least one block if `start` exists), for serving sync.
    fn blocks_range(
        &self,
        start: u64,
        count: u32,
        max_bytes: usize,
    ) -> impl Future<Output = Result<Vec<Vec<u8>>, StoreError>> + MaybeSend;

    fn block_by_id(&self, id: Hash32) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + MaybeSend;

    /// Small node metadata outside the chain (identity key, known peers).
    fn get_meta(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + MaybeSend;
    fn put_meta(&self, key: &str, value: Vec<u8>) -> impl Future<Output = Result<(), StoreError>> + MaybeSend;
}

/// One write of a batch, the list every store applies in this order (the
/// head last, so a torn write can never point it at something missing). The
/// memory and redb stores apply exactly these; the IndexedDB store (in
/// protoblock-wasm) issues each one's net effect in its own index layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOp<'a> {
    /// The block's bytes as the batch shares them (a memory store keeps the `Arc`).
    PutBlock(u64, &'a Hash32, &'a std::sync::Arc<[u8]>),
    DeleteBlock(&'a Hash32),
    State(&'a [u8], Option<&'a [u8]>),
    PutUndo(&'a Hash32, &'a [u8]),
    DeleteUndo(&'a Hash32),
    PutReplay(&'a Hash32, u64),
    DeleteReplay(&'a Hash32),
    /// Drop the lowest main-chain blocks below this height, at most
    /// `MAX_PRUNED_PER_COMMIT` of them (see `WriteBatch::prune_below`).
    PruneBelow(u64),
    /// The new head; main-chain index entries above it are dropped.
    Head(&'a HeadRecord),
}

/// The writes of `batch`, in the order stores apply them.
pub fn write_ops(batch: &WriteBatch) -> Vec<WriteOp<'_>> {
    let mut v = Vec::new();
    v.extend(batch.put_blocks.iter().map(|(h, id, b)| WriteOp::PutBlock(*h, id, b)));
    v.extend(batch.delete_blocks.iter().map(WriteOp::DeleteBlock));
    v.extend(batch.state.iter().map(|(k, val)| WriteOp::State(k, val.as_deref())));
    v.extend(batch.put_undo.iter().map(|(id, u)| WriteOp::PutUndo(id, u)));
    v.extend(batch.delete_undo.iter().map(WriteOp::DeleteUndo));
    v.extend(batch.replay_put.iter().map(|(id, n)| WriteOp::PutReplay(id, *n)));
    v.extend(batch.replay_delete.iter().map(WriteOp::DeleteReplay));
    v.extend(batch.prune_below.map(WriteOp::PruneBelow));
    v.extend(batch.head.iter().map(WriteOp::Head));
    v
}

/// Fixed 80-byte encoding of the head record.
pub fn encode_head(h: &HeadRecord) -> Vec<u8> {
    let mut v = Vec::with_capacity(80);
    v.extend_from_slice(&h.genesis.0);
    v.extend_from_slice(&h.id.0);
    v.extend_from_slice(&h.height.to_be_bytes());
    v.extend_from_slice(&h.final_height.to_be_bytes());
    v
}

pub fn decode_head(v: &[u8]) -> Result<HeadRecord, StoreError> {
    if v.len() != 80 {
        return Err(StoreError::Corrupt("head record length"));
    }
    let h32 = |r: std::ops::Range<usize>| Hash32::from_slice(&v[r]).ok_or(StoreError::Corrupt("head record"));
    let u64at = |i: usize| u64::from_be_bytes(v[i..i + 8].try_into().expect("8 bytes"));
    Ok(HeadRecord { genesis: h32(0..32)?, id: h32(32..64)?, height: u64at(64), final_height: u64at(72) })
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored chain cannot be resumed: {0}")]
    Restore(#[from] protoblock_core::chain::RestoreError),
}

/// Resumes the chain persisted in `store`, or starts one at genesis (and
/// persists the genesis state). Resuming re-derives the state commitment from
/// the stored state and refuses a store whose state does not match its head.
pub async fn open_chain<S: Store>(
    store: &S,
    genesis: protoblock_core::Genesis,
    limits: protoblock_core::ChainLimits,
) -> Result<protoblock_core::Chain, OpenError> {
    match store.load().await? {
        Some(stored) => Ok(protoblock_core::Chain::restore(genesis, limits, stored)?),
        None => {
            let (chain, batch) = protoblock_core::Chain::new(genesis, limits)?;
            store.commit(batch).await?;
            Ok(chain)
        }
    }
}

/// A shared store is a store: the node driver and a server can hold one.
impl<S: Store + Send + Sync> Store for std::sync::Arc<S> {
    fn load(&self) -> impl Future<Output = Result<Option<StoredChain>, StoreError>> + MaybeSend {
        (**self).load()
    }
    fn commit(&self, batch: WriteBatch) -> impl Future<Output = Result<(), StoreError>> + MaybeSend {
        (**self).commit(batch)
    }
    fn head(&self) -> impl Future<Output = Result<Option<HeadRecord>, StoreError>> + MaybeSend {
        (**self).head()
    }
    fn blocks_range(
        &self,
        start: u64,
        count: u32,
        max_bytes: usize,
    ) -> impl Future<Output = Result<Vec<Vec<u8>>, StoreError>> + MaybeSend {
        (**self).blocks_range(start, count, max_bytes)
    }
    fn block_by_id(&self, id: Hash32) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + MaybeSend {
        (**self).block_by_id(id)
    }
    fn get_meta(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + MaybeSend {
        (**self).get_meta(key)
    }
    fn put_meta(&self, key: &str, value: Vec<u8>) -> impl Future<Output = Result<(), StoreError>> + MaybeSend {
        (**self).put_meta(key, value)
    }
}
