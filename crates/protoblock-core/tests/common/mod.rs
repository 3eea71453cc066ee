//! Helpers shared by the integration tests: dev-net chains, block and tx
//! builders, tampering, snapshots, and a model of a store fed by WriteBatches.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};

use ed25519_dalek::SigningKey;
use prost::Message;
use protoblock_core::chain::{HeadRecord, StoredBlock, StoredChain, WriteBatch};
use protoblock_core::crypto::{public_key_of, sign_block};
use protoblock_core::hash::{Hash32, sha256};
use protoblock_core::producer::{Produced, produce_block};
use protoblock_core::proto::v1 as pb;
use protoblock_core::state::StateMap;
use protoblock_core::{BlockMeta, Chain, ChainLimits, ChainParams, ChainUpdate, Genesis, Placement};
use protoblock_devnet::{self as devnet, DevNet};

pub use pb::data_transition::Kind as DataKind;
pub use pb::transaction::Body;

pub const T0: u64 = devnet::DEV_GENESIS_TIME_MS;
pub const SEASON: u32 = 2026;

pub fn params_small() -> ChainParams {
    ChainParams { finality_depth: 8, ..ChainParams::default() }
}

/// A chain at `g`, which must carry the rules `p` the test expects (build the
/// dev net with `DevNet::with_params`): the rules are the genesis's.
pub fn genesis_chain(g: &Genesis, p: &ChainParams) -> (Chain, protoblock_core::WriteBatch) {
    assert_eq!(&g.params, p, "the test's genesis does not carry the rules it expects");
    Chain::new(g.clone(), ChainLimits::default()).expect("genesis")
}

pub fn new_chain(g: &Genesis, p: &ChainParams) -> Chain {
    genesis_chain(g, p).0
}

pub fn header_of(block: &[u8]) -> pb::BlockHeader {
    let b = pb::Block::decode(block).expect("block decodes");
    pb::BlockHeader::decode(b.header.as_slice()).expect("header decodes")
}

pub fn block_id(block: &[u8]) -> Hash32 {
    let b = pb::Block::decode(block).expect("block decodes");
    sha256(&b.header)
}

pub fn block_ts(block: &[u8]) -> u64 {
    header_of(block).timestamp_ms
}

/// A fresh chain that inserted `blocks` in order, each at its own timestamp.
pub fn replay(g: &Genesis, p: &ChainParams, blocks: &[Vec<u8>]) -> Chain {
    let mut c = new_chain(g, p);
    for (i, b) in blocks.iter().enumerate() {
        let u = c.insert_block(b, block_ts(b)).unwrap_or_else(|e| panic!("replay block {i}: {e}"));
        assert_eq!(u.placement, Placement::Extended, "replay block {i}");
    }
    c
}

pub fn pk(key: &SigningKey) -> [u8; 32] {
    public_key_of(key).0
}

/// Signs a tx whose nonce is `nonce_ms` plus a sub-millisecond `salt`.
pub fn tx(key: &SigningKey, g: &Genesis, nonce_ms: u64, salt: u64, body: Body) -> Vec<u8> {
    devnet::sign_transaction(key, &g.hash, nonce_ms * 1_000_000 + salt, body)
}

pub fn name(n: &str) -> Body {
    Body::Name(pb::NameRegistration { fantasy_name: n.to_string() })
}

pub fn transfer(to: &str, amount: u64) -> Body {
    Body::Transfer(pb::Transfer { to_name: to.to_string(), amount })
}

pub fn projection(week: u32, player: &str, points: u32) -> Body {
    Body::Projection(pb::Projection { season: SEASON, week, player_id: player.to_string(), points })
}

pub fn data(kind: DataKind) -> Body {
    Body::Data(pb::DataTransition { kind: Some(kind) })
}

pub fn season_start(season: u32) -> Body {
    data(DataKind::SeasonStart(pb::data_transition::SeasonStart { season }))
}

pub fn game_start(week: u32, teams: &[String]) -> Body {
    data(DataKind::GameStart(pb::data_transition::GameStart { season: SEASON, week, team_ids: teams.to_vec() }))
}

pub fn game_result(week: u32, results: &[(&str, u32)]) -> Body {
    data(DataKind::GameResult(pb::data_transition::GameResult {
        season: SEASON,
        week,
        results: results.iter().map(|(p, pts)| pb::PlayerResult { player_id: p.to_string(), points: *pts }).collect(),
    }))
}

pub fn week_over(week: u32) -> Body {
    data(DataKind::WeekOver(pb::data_transition::WeekOver { season: SEASON, week }))
}

pub fn tx_id(signed: &[u8]) -> Hash32 {
    sha256(&pb::SignedTransaction::decode(signed).expect("signed tx decodes").tx)
}

/// Produces the next block on the head from `txs` (in order) with the
/// producer, skipping txs that do not apply.
pub fn produce(chain: &Chain, key: &SigningKey, txs: &[Vec<u8>], ts: u64) -> Produced {
    let cands = devnet::checked(txs, chain.params());
    produce_block(chain, cands.iter().map(|(b, c)| (b.as_slice(), c)), key, ts).expect("our slot")
}

/// Produces and inserts the next block, asserting every tx was included.
pub fn extend(chain: &mut Chain, key: &SigningKey, txs: &[Vec<u8>], ts: u64) -> (Vec<u8>, ChainUpdate) {
    let p = produce(chain, key, txs, ts);
    let want: Vec<Hash32> = txs.iter().map(|t| tx_id(t)).collect();
    assert_eq!(p.tx_ids, want, "every tx should have been included");
    let u = chain.insert_block(&p.bytes, ts).expect("produced block is valid");
    assert_eq!(u.placement, Placement::Extended);
    assert_eq!(chain.head().id, p.id);
    (p.bytes, u)
}

/// Whether a signed tx carries an oracle DataTransition.
pub fn is_data_tx(signed: &[u8]) -> bool {
    pb::SignedTransaction::decode(signed)
        .ok()
        .and_then(|st| pb::Transaction::decode(st.tx.as_slice()).ok())
        .is_some_and(|t| matches!(t.body, Some(Body::Data(_))))
}

/// Builds and signs a block by hand: correct tx_root (merkle root of the
/// sha256 of each tx's `tx` bytes), the given state root, kind from the txs.
pub fn build_block(
    key: &SigningKey,
    height: u64,
    prev: Hash32,
    ts: u64,
    txs: &[Vec<u8>],
    state_root: Hash32,
) -> Vec<u8> {
    let kind = if txs.iter().any(|t| is_data_tx(t)) { pb::BlockKind::Data } else { pb::BlockKind::Normal };
    let header = pb::BlockHeader {
        version: 1,
        height,
        prev_hash: prev.0.to_vec(),
        timestamp_ms: ts,
        producer: pk(key).to_vec(),
        tx_root: tx_root_of(txs).0.to_vec(),
        state_root: state_root.0.to_vec(),
        kind: kind as i32,
    };
    let header = header.encode_to_vec();
    let signature = sign_block(key, &header).to_vec();
    let txs = txs.iter().map(|t| pb::SignedTransaction::decode(t.as_slice()).unwrap()).collect();
    pb::Block { header, signature, txs }.encode_to_vec()
}

/// A block on the head of `chain`, built by hand.
pub fn build_on_head(chain: &Chain, key: &SigningKey, ts: u64, txs: &[Vec<u8>], state_root: Hash32) -> Vec<u8> {
    let h = chain.head();
    build_block(key, h.height + 1, h.id, ts, txs, state_root)
}

/// Decodes a block, edits its header, re-encodes and re-signs it with `key`.
pub fn reheader(block: &[u8], key: &SigningKey, f: impl FnOnce(&mut pb::BlockHeader)) -> Vec<u8> {
    let mut b = pb::Block::decode(block).unwrap();
    let mut h = pb::BlockHeader::decode(b.header.as_slice()).unwrap();
    f(&mut h);
    b.header = h.encode_to_vec();
    b.signature = sign_block(key, &b.header).to_vec();
    b.encode_to_vec()
}

/// Decodes a block, edits it (header bytes untouched unless `f` does), re-encodes.
pub fn rebody(block: &[u8], f: impl FnOnce(&mut pb::Block)) -> Vec<u8> {
    let mut b = pb::Block::decode(block).unwrap();
    f(&mut b);
    b.encode_to_vec()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub head: BlockMeta,
    pub root: Hash32,
    pub state: StateMap,
    pub final_height: u64,
}

pub fn snapshot(c: &Chain) -> Snapshot {
    Snapshot { head: c.head(), root: c.commitment().root(), state: c.state().clone(), final_height: c.final_height() }
}

pub fn assert_untouched(c: &Chain, before: &Snapshot, what: &str) {
    assert_eq!(c.head(), before.head, "{what}: head changed");
    assert_eq!(c.commitment().root(), before.root, "{what}: commitment changed");
    assert!(c.state() == &before.state, "{what}: state changed");
    assert_eq!(c.final_height(), before.final_height, "{what}: final height changed");
}

/// Asserts two chains hold the same head, commitment and state, and that the
/// commitment is the one recomputed from scratch over the state.
pub fn assert_same_chain(a: &Chain, b: &Chain, what: &str) {
    assert_eq!(a.head(), b.head(), "{what}: heads differ");
    assert_eq!(a.commitment().root(), b.commitment().root(), "{what}: commitments differ");
    assert!(a.state() == b.state(), "{what}: states differ");
    assert_eq!(a.commitment().root(), a.state().commitment().root(), "{what}: incremental commitment drifted");
    assert_eq!(a.commitment().root(), a.head().state_root, "{what}: commitment is not the head's state root");
}

/// Sum of every account balance in a state (decoded independently of fantasy.rs).
pub fn total_balance(s: &StateMap) -> u128 {
    s.prefix_keys(&[protoblock_core::state::keys::ACCOUNT])
        .map(|k| pb::AccountState::decode(s.get(k).unwrap().as_slice()).unwrap().balance as u128)
        .sum()
}

pub fn balance_of(s: &StateMap, key: &SigningKey) -> u64 {
    s.get(&protoblock_core::state::keys::account(&pk(key)))
        .map(|v| pb::AccountState::decode(v.as_slice()).unwrap().balance)
        .unwrap_or(0)
}

pub fn season_of(s: &StateMap) -> pb::SeasonState {
    pb::SeasonState::decode(s.get(&protoblock_core::state::keys::season()).unwrap().as_slice()).unwrap()
}

pub fn team_phase(s: &StateMap, team: &str) -> pb::TeamPhase {
    pb::TeamState::decode(s.get(&protoblock_core::state::keys::team(team)).unwrap().as_slice()).unwrap().phase()
}

/// A genesis like the dev net's but with several oracle keys, round-robin.
pub fn multi_oracle_genesis(net: &DevNet, oracles: &[&SigningKey]) -> Genesis {
    let mut m = net.genesis.message.clone();
    m.oracle_keys = oracles.iter().map(|k| pk(k).to_vec()).collect();
    Genesis::from_bytes(&m.encode_to_vec()).expect("valid genesis")
}

pub fn key_from(tag: &str) -> SigningKey {
    protoblock_core::crypto::signing_key_from_seed(&sha256(tag.as_bytes()).0)
}

/// A store modelled the simplest way: maps updated by each WriteBatch in the
/// documented order (blocks, state, undo, head).
#[derive(Debug, Default)]
pub struct StoreModel {
    pub blocks: HashMap<Hash32, Vec<u8>>,
    pub by_height: BTreeMap<u64, Hash32>,
    pub state: BTreeMap<Vec<u8>, Vec<u8>>,
    pub undo: HashMap<Hash32, Vec<u8>>,
    pub replay: BTreeMap<Hash32, u64>,
    pub head: Option<HeadRecord>,
}

impl StoreModel {
    pub fn apply(&mut self, b: &WriteBatch) {
        for (h, id, bytes) in &b.put_blocks {
            self.blocks.insert(*id, bytes.to_vec());
            self.by_height.insert(*h, *id);
        }
        for id in &b.delete_blocks {
            self.blocks.remove(id);
        }
        for (k, v) in &b.state {
            match v {
                Some(v) => self.state.insert(k.clone(), v.clone()),
                None => self.state.remove(k),
            };
        }
        for (id, u) in &b.put_undo {
            self.undo.insert(*id, u.clone());
        }
        for id in &b.delete_undo {
            self.undo.remove(id);
        }
        // The core keeps these lists disjoint, so order does not matter.
        for id in &b.replay_delete {
            assert!(!b.replay_put.iter().any(|(p, _)| p == id), "replay put and delete overlap");
            self.replay.remove(id);
        }
        for (id, n) in &b.replay_put {
            self.replay.insert(*id, *n);
        }
        if let Some(h) = b.head {
            self.head = Some(h);
        }
    }

    pub fn apply_update(&mut self, u: &ChainUpdate) {
        if let Some(b) = &u.batch {
            self.apply(b);
        }
    }

    pub fn state_map(&self) -> StateMap {
        StateMap::from_entries(self.state.clone())
    }

    /// What a store would hand back at start-up.
    pub fn stored(&self) -> StoredChain {
        let head = self.head.expect("a head was written");
        let first = head.final_height.max(1);
        let recent = if head.height == 0 {
            Vec::new()
        } else {
            (first..=head.height)
                .map(|h| {
                    let id = self.by_height[&h];
                    StoredBlock { height: h, id, bytes: self.blocks[&id].clone(), undo: self.undo.get(&id).cloned() }
                })
                .collect()
        };
        StoredChain {
            head,
            state: self.state.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            recent,
            replay: self.replay.iter().map(|(k, v)| (*k, *v)).collect(),
        }
    }
}

/// Grows `chain` by `n` blocks like the dev net does: the oracle's season
/// feed (with `blocks_per_week`) plus up to `users` simulated user txs per
/// block. Timestamps step by `step_ms` from the head's. Returns the blocks.
pub fn grow(
    chain: &mut Chain,
    net: &DevNet,
    n: u64,
    step_ms: u64,
    users: usize,
    blocks_per_week: u64,
    rng: &mut devnet::SplitMix64,
) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for _ in 0..n {
        let h = chain.head().height + 1;
        let ts = chain.head().timestamp_ms + step_ms;
        let mut txs = Vec::new();
        if let Some(body) = devnet::season_feed(net, chain, h, blocks_per_week) {
            txs.push(devnet::sign_transaction(&net.oracle, &net.genesis.hash, ts * 1_000_000 + 999_999, body));
        }
        txs.extend(devnet::user_txs(net, chain, ts, users, rng));
        let p = produce(chain, &net.oracle, &txs, ts);
        let u = chain.insert_block(&p.bytes, ts).expect("grown block is valid");
        assert_eq!(u.placement, Placement::Extended);
        out.push(p.bytes);
    }
    out
}

/// A fresh chain that inserted `blocks`, and a store model fed every batch
/// since `Chain::new` (genesis batch included).
pub fn chain_with_model(g: &Genesis, p: &ChainParams, blocks: &[Vec<u8>]) -> (Chain, StoreModel) {
    let (mut c, genesis_batch) = genesis_chain(g, p);
    let mut m = StoreModel::default();
    m.apply(&genesis_batch);
    for b in blocks {
        let u = c.insert_block(b, block_ts(b)).expect("valid block");
        m.apply_update(&u);
    }
    (c, m)
}

/// tx_root as the chain defines it: leaves bind each tx id to its signer.
pub fn tx_root_of(txs: &[Vec<u8>]) -> Hash32 {
    let pairs: Vec<(Hash32, protoblock_core::crypto::PublicKey)> = txs
        .iter()
        .map(|b| {
            let t = pb::SignedTransaction::decode(b.as_slice()).expect("test txs decode");
            (sha256(&t.tx), protoblock_core::crypto::PublicKey(t.signer.as_slice().try_into().unwrap_or([0; 32])))
        })
        .collect();
    protoblock_core::block::tx_root(pairs.iter().map(|(i, s)| (i, s)))
}

/// The chain's replay index as a sorted map, to compare with a store model.
pub fn replay_of(c: &Chain) -> BTreeMap<Hash32, u64> {
    c.replay().iter().map(|(k, v)| (*k, *v)).collect()
}
