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
//! fill the pool. Eviction order when full: the tx whose nonce is furthest
//! from now goes first, in either direction: an old nonce is the likeliest to
//! be stale, and a nonce far ahead (up to the window's hour) is what an
//! attacker would use to outlast honest txs under an oldest-first rule (it
//! did: a pool filled with nonces 59 minutes ahead refused every honest tx).
//! Oracle data txs go last of all. A new tx that would itself be first in
//! that order is refused with [`MempoolError::Full`] before it is applied:
//! two index lookups, no rebuild. An evicted tx takes its signer's later
//! txs with it (they may build on it); its writes stay in the pending state
//! until the next head change rebuilds it, so until then admission is at
//! worst stricter than needed, and the producer re-checks every tx anyway.

use std::collections::{BTreeMap, BTreeSet, HashMap};
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
    /// Eviction index: (is data, nonce, arrival) of every tx.
    by_nonce: BTreeSet<(bool, u64, u64)>,
    per_signer: HashMap<PublicKey, usize>,
    /// Each signer's txs in arrival order, for evicting a tx's followers
    /// without a walk over the pool.
    by_signer: BTreeSet<(PublicKey, u64)>,
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

    /// The encoded size of every tx held.
    pub fn bytes(&self) -> usize {
        self.bytes
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
        let now_ns = now_ms.saturating_mul(1_000_000);
        // Room first, before the tx is applied: a refusal costs a few index
        // steps, and nothing changes.
        let victims = self.victims_for(&tx, bytes.len(), now_ns).ok_or(MempoolError::Full)?;
        let mut ov = Overlay::with_writes(chain.state(), std::mem::take(&mut self.pending));
        // Pool ids are unique already, so only the chain's index matters here.
        let res = apply_tx_at(&mut ov, chain.genesis(), &tx, now_ms, chain.replay(), &mut FastSet::default());
        self.pending = ov.into_raw_writes();
        // apply_tx_at checks every rule before writing, so a refusal left
        // `pending` as it was.
        res?;
        let id = tx.id;
        for v in &victims {
            self.evict_with_signer_followers(v);
        }
        self.add(PoolTx { bytes: Arc::from(bytes), tx, seq: 0 });
        Ok(id)
    }

    fn over(&self, count: usize, bytes: usize) -> bool {
        count > self.cfg.max_txs || bytes > self.cfg.max_bytes
    }

    /// The eviction key (the smallest goes first): user txs before data
    /// txs, then the nonce furthest from now, then the newer arrival.
    fn rank(is_data: bool, nonce: u64, seq: u64, now_ns: u64) -> (bool, u64, u64) {
        (is_data, u64::MAX - nonce.abs_diff(now_ns), u64::MAX - seq)
    }

    /// The txs to evict, in eviction order, for `tx` (of `len` bytes) to
    /// fit; `None` if `tx` would itself come before one of them. Walks the
    /// two ends of the nonce index (the furthest from now are there): one
    /// step per victim.
    fn victims_for(&self, tx: &CheckedTx, len: usize, now_ns: u64) -> Option<Vec<Hash32>> {
        let (mut count, mut bytes) = (self.entries.len() + 1, self.bytes + len);
        if !self.over(count, bytes) {
            return Some(Vec::new());
        }
        let mine = Self::rank(tx.is_data, tx.tx.nonce, self.next_seq, now_ns);
        let rank = |k: &(bool, u64, u64)| Self::rank(k.0, k.1, k.2, now_ns);
        let mut victims = Vec::new();
        for data in [false, true] {
            let class = (data, 0, 0)..=(data, u64::MAX, u64::MAX);
            let mut fwd = self.by_nonce.range(class.clone()).peekable();
            let mut back = self.by_nonce.range(class).rev().peekable();
            let mut taken = std::collections::HashSet::new();
            while self.over(count, bytes) {
                while fwd.peek().is_some_and(|k| taken.contains(&k.2)) {
                    fwd.next();
                }
                while back.peek().is_some_and(|k| taken.contains(&k.2)) {
                    back.next();
                }
                let pick = match (fwd.peek(), back.peek()) {
                    (Some(a), Some(b)) => *if rank(a) <= rank(b) { a } else { b },
                    (Some(a), None) => *a,
                    (None, Some(b)) => *b,
                    (None, None) => break,
                };
                if mine <= rank(pick) {
                    return None;
                }
                taken.insert(pick.2);
                let id = *self.order.get(&pick.2)?;
                count -= 1;
                bytes -= self.entries.get(&id)?.bytes.len();
                victims.push(id);
            }
        }
        (!self.over(count, bytes)).then_some(victims)
    }

    /// Evicts `id` and its signer's txs that arrived after it.
    fn evict_with_signer_followers(&mut self, id: &Hash32) {
        let Some(p) = self.remove(id) else { return };
        let signer = p.tx.signer;
        let followers: Vec<Hash32> = self
            .by_signer
            .range((signer, p.seq)..=(signer, u64::MAX))
            .filter_map(|(_, seq)| self.order.get(seq).copied())
            .collect();
        for f in &followers {
            self.remove(f);
        }
    }

    fn add(&mut self, mut p: PoolTx) {
        p.seq = self.next_seq;
        self.next_seq += 1;
        self.bytes += p.bytes.len();
        *self.per_signer.entry(p.tx.signer).or_default() += 1;
        self.order.insert(p.seq, p.tx.id);
        self.by_nonce.insert((p.tx.is_data, p.tx.tx.nonce, p.seq));
        self.by_signer.insert((p.tx.signer, p.seq));
        self.entries.insert(p.tx.id, p);
    }

    fn remove(&mut self, id: &Hash32) -> Option<PoolTx> {
        let p = self.entries.remove(id)?;
        self.order.remove(&p.seq);
        self.by_nonce.remove(&(p.tx.is_data, p.tx.tx.nonce, p.seq));
        self.by_signer.remove(&(p.tx.signer, p.seq));
        self.bytes -= p.bytes.len();
        if let Some(c) = self.per_signer.get_mut(&p.tx.signer) {
            *c -= 1;
            if *c == 0 {
                self.per_signer.remove(&p.tx.signer);
            }
        }
        Some(p)
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
