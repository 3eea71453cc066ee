//! The bounded mempool.
//!
//! Txs are kept in arrival order, which is also the order a producer includes
//! them in. Each admitted tx is applied to a *pending state* (head state plus
//! every earlier pool tx), so a name registration followed by a projection
//! from the same new user is admitted in one go, and a tx that conflicts with
//! an earlier pool tx (a double spend, a taken name) is refused at the door.
//! After every head change the pending state is rebuilt from the new head and
//! txs that no longer apply (included, replayed, expired, conflicting) drop out.
//!
//! Bounds: `max_txs`, `max_bytes`, and `max_per_signer` so one key cannot
//! fill the pool. Eviction order when full: the tx with the oldest nonce goes
//! first (it is closest to leaving the 48 h replay window, so the likeliest to
//! be stale), oracle data txs last of all. A new tx that would itself be first
//! in that order is refused with [`MempoolError::Full`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use prost::Message;
use protoblock_proto::v1 as pb;

use crate::block::{CheckedTx, apply_tx_at, check_tx_bytes};
use crate::chain::Chain;
use crate::crypto::PublicKey;
use crate::error::TxError;
use crate::hash::{FastSet, Hash32, sha256};
use crate::state::{Overlay, Writes};

#[derive(Debug, Clone)]
pub struct MempoolConfig {
    pub max_txs: usize,
    pub max_bytes: usize,
    pub max_per_signer: usize,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        Self { max_txs: 5_000, max_bytes: 8 << 20, max_per_signer: 64 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    #[error("already in the mempool")]
    Duplicate,
    #[error("invalid transaction: {0}")]
    Invalid(#[from] TxError),
    #[error("signer has too many pending transactions")]
    SignerLimit,
    #[error("mempool is full")]
    Full,
}

#[derive(Debug, Clone)]
pub struct PoolTx {
    pub bytes: Arc<[u8]>,
    pub tx: CheckedTx,
    seq: u64,
}

#[derive(Default)]
pub struct Mempool {
    cfg: MempoolConfig,
    entries: HashMap<Hash32, PoolTx>,
    order: BTreeMap<u64, Hash32>,
    per_signer: HashMap<PublicKey, usize>,
    bytes: usize,
    next_seq: u64,
    pending: Writes,
}

impl Mempool {
    pub fn new(cfg: MempoolConfig) -> Self {
        Self { cfg, ..Default::default() }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn contains(&self, id: &Hash32) -> bool {
        self.entries.contains_key(id)
    }

    pub fn get(&self, id: &Hash32) -> Option<&PoolTx> {
        self.entries.get(id)
    }

    /// Txs in inclusion order.
    pub fn iter(&self) -> impl Iterator<Item = &PoolTx> {
        self.order.values().filter_map(|id| self.entries.get(id))
    }

    /// Admits one encoded `SignedTransaction`, checked against the head and
    /// the txs already pending. `now_ms` stands in for the next block's time.
    pub fn insert(&mut self, bytes: &[u8], chain: &Chain, now_ms: u64) -> Result<Hash32, MempoolError> {
        // Dedupe before the signature check: a flood of copies costs a hash each.
        if let Ok(st) = pb::SignedTransaction::decode(bytes)
            && self.entries.contains_key(&sha256(&st.tx))
        {
            return Err(MempoolError::Duplicate);
        }
        let tx = check_tx_bytes(bytes, chain.genesis())?;
        if self.per_signer.get(&tx.signer).copied().unwrap_or(0) >= self.cfg.max_per_signer {
            return Err(MempoolError::SignerLimit);
        }
        let mut ov = Overlay::with_writes(chain.state(), std::mem::take(&mut self.pending));
        // Pool ids are unique already, so only the chain's index matters here.
        let res = apply_tx_at(&mut ov, chain.genesis(), &tx, now_ms, chain.replay(), &mut FastSet::default());
        self.pending = ov.into_raw_writes();
        // apply_tx_at checks every rule before writing, so a refusal left
        // `pending` as it was.
        res?;
        let id = tx.id;
        self.add(PoolTx { bytes: Arc::from(bytes), tx, seq: 0 });
        if self.over_capacity() {
            // Victims in eviction order until the pool fits again. If the new
            // tx is among them (it may need several older txs' room), it is
            // refused and nobody is evicted for it.
            let victims = self.eviction_victims();
            if victims.contains(&id) {
                self.remove(&id);
                self.rebuild(chain, now_ms);
                return Err(MempoolError::Full);
            }
            for v in &victims {
                self.remove(v);
            }
            self.rebuild(chain, now_ms);
        }
        Ok(id)
    }

    fn add(&mut self, mut p: PoolTx) {
        p.seq = self.next_seq;
        self.next_seq += 1;
        self.bytes += p.bytes.len();
        *self.per_signer.entry(p.tx.signer).or_default() += 1;
        self.order.insert(p.seq, p.tx.id);
        self.entries.insert(p.tx.id, p);
    }

    fn remove(&mut self, id: &Hash32) -> Option<PoolTx> {
        let p = self.entries.remove(id)?;
        self.order.remove(&p.seq);
        self.bytes -= p.bytes.len();
        if let Some(c) = self.per_signer.get_mut(&p.tx.signer) {
            *c -= 1;
            if *c == 0 {
                self.per_signer.remove(&p.tx.signer);
            }
        }
        Some(p)
    }

    fn over_capacity(&self) -> bool {
        self.entries.len() > self.cfg.max_txs || self.bytes > self.cfg.max_bytes
    }

    /// The txs to evict, in eviction order, for the pool to fit its bounds.
    fn eviction_victims(&self) -> Vec<Hash32> {
        let mut order: Vec<&PoolTx> = self.entries.values().collect();
        order.sort_by_key(|p| (p.tx.is_data, p.tx.tx.nonce, std::cmp::Reverse(p.seq)));
        let (mut count, mut bytes) = (self.entries.len(), self.bytes);
        let mut victims = Vec::new();
        for p in order {
            if count <= self.cfg.max_txs && bytes <= self.cfg.max_bytes {
                break;
            }
            count -= 1;
            bytes -= p.bytes.len();
            victims.push(p.tx.id);
        }
        victims
    }

    /// Re-applies every pool tx on the current head, dropping those that no
    /// longer apply. Call after every head change. Returns how many dropped.
    pub fn rebuild(&mut self, chain: &Chain, now_ms: u64) -> usize {
        let mut ov = Overlay::new(chain.state());
        let mut taken = FastSet::default();
        let mut dropped = Vec::new();
        for id in self.order.values() {
            let p = &self.entries[id];
            if apply_tx_at(&mut ov, chain.genesis(), &p.tx, now_ms, chain.replay(), &mut taken).is_err() {
                dropped.push(*id);
            }
        }
        self.pending = ov.into_raw_writes();
        for id in &dropped {
            self.remove(id);
        }
        dropped.len()
    }
}
