//! A store that applies every WriteBatch holds exactly the chain's state, and
//! a chain restored from it is the same chain; tampered stores are refused.

mod common;

use common::*;
use prost::Message;
use protoblock_core::chain::{RestoreError, StoredChain};
use protoblock_core::hash::sha256;
use protoblock_core::proto::v1 as pb;
use protoblock_core::state::keys;
use protoblock_core::{Chain, ChainLimits, ChainParams, Placement};
use protoblock_devnet::{DevNet, SplitMix64};

fn params(depth: u64) -> ChainParams {
    ChainParams { finality_depth: depth, ..ChainParams::default() }
}

fn check_model(c: &Chain, m: &StoreModel, what: &str) {
    assert!(m.state_map() == *c.state(), "{what}: model state differs from the chain's");
    assert_eq!(m.replay, replay_of(c), "{what}: model replay index differs from the chain's");
    assert_eq!(m.head, Some(c.head_record()), "{what}: head record");
    // Every non-final main block is stored at its height, with its undo record.
    for h in c.final_height().max(1)..=c.head().height {
        let id = c.main_id_at(h).unwrap();
        assert_eq!(m.by_height.get(&h), Some(&id), "{what}: height {h}");
        assert!(m.blocks.contains_key(&id), "{what}: block at {h} missing");
        if h > c.final_height() {
            assert!(m.undo.contains_key(&id), "{what}: undo at {h} missing");
        }
    }
    // No undo record is kept for a final or reverted block.
    for id in m.undo.keys() {
        let h = (c.final_height() + 1..=c.head().height).find(|h| c.main_id_at(*h) == Some(*id));
        assert!(h.is_some(), "{what}: stale undo record {id:?}");
    }
}

fn restore(net: &DevNet, p: &ChainParams, s: StoredChain) -> Result<Chain, RestoreError> {
    assert_eq!(&net.genesis.params, p);
    Chain::restore(net.genesis.clone(), ChainLimits::default(), s)
}

#[test]
fn batches_track_state_across_extends_finality_and_reorgs_and_restore_round_trips() {
    let p = params(6);
    let net = DevNet::with_params(70, 5, p.clone());
    let (mut node, mut model) = chain_with_model(&net.genesis, &p, &[]);
    check_model(&node, &model, "genesis");
    let r = restore(&net, &p, model.stored()).expect("restore at genesis");
    assert_same_chain(&r, &node, "restore at genesis");

    // 12 blocks: finality advances past genesis, undo records get dropped.
    let mut producer = new_chain(&net.genesis, &p);
    let mut rng = SplitMix64(5);
    let main = grow(&mut producer, &net, 12, 1000, 4, 4, &mut rng);
    for (i, b) in main.iter().enumerate() {
        let u = node.insert_block(b, block_ts(b)).unwrap();
        assert_eq!(u.placement, Placement::Extended);
        let batch = u.batch.as_ref().unwrap();
        assert_eq!(batch.put_blocks.len(), 1);
        assert_eq!(batch.put_undo.len(), 1);
        assert_eq!(batch.delete_undo.len(), usize::from(i as u64 + 1 > p.finality_depth));
        model.apply_update(&u);
        check_model(&node, &model, &format!("block {}", i + 1));
        if i == 3 {
            // Restore while the final block is still genesis.
            assert_eq!(node.final_height(), 0);
            let r = restore(&net, &p, model.stored()).expect("restore with final height 0");
            assert_same_chain(&r, &node, "restore at height 4");
        }
    }
    assert_eq!(node.final_height(), 12 - 6);

    // A fork from height 8 (non-final) that becomes longer: a reorg of depth 4.
    let mut forker = replay(&net.genesis, &p, &main[..8]);
    let mut rng2 = SplitMix64(6);
    let fork = grow(&mut forker, &net, 6, 1234, 4, 4, &mut rng2);
    let mut saw_reorg = false;
    for b in &fork {
        let u = node.insert_block(b, block_ts(b)).unwrap();
        saw_reorg |= matches!(u.placement, Placement::Reorged { depth: 4 });
        model.apply_update(&u);
        check_model(&node, &model, "fork");
    }
    assert!(saw_reorg);
    assert_same_chain(&node, &forker, "after reorg");

    // Restore from the model: same chain, and it behaves the same afterwards,
    // including a reorg that needs the restored undo records.
    let stored = model.stored();
    assert_eq!(stored.recent.len() as u64, node.head().height - node.final_height() + 1);
    let mut restored = restore(&net, &p, stored).expect("restore after reorg");
    assert_same_chain(&restored, &node, "restored");
    assert_eq!(restored.final_height(), node.final_height());
    assert_eq!(restored.head_record(), node.head_record());

    let fork_at = node.final_height() + 1; // the lowest non-final height
    let mut forker2 = replay(&net.genesis, &p, &[&main[..8], &fork[..(fork_at as usize - 8)]].concat());
    assert_eq!(forker2.head().height, fork_at);
    let mut rng3 = SplitMix64(7);
    let fork2 = grow(&mut forker2, &net, node.head().height - fork_at + 2, 777, 4, 4, &mut rng3);
    let mut restored_model = model; // the store the restored chain continues
    for b in &fork2 {
        let u1 = node.insert_block(b, block_ts(b)).unwrap();
        let u2 = restored.insert_block(b, block_ts(b)).unwrap();
        assert_eq!(u1.placement, u2.placement);
        restored_model.apply_update(&u2);
        check_model(&restored, &restored_model, "restored chain reorg");
    }
    assert_same_chain(&restored, &node, "both reorganised");
    assert_same_chain(&restored, &forker2, "restored vs fresh replay");
}

fn stored_after(net: &DevNet, p: &ChainParams, n: u64) -> (Chain, StoredChain) {
    let mut producer = new_chain(&net.genesis, p);
    let mut rng = SplitMix64(9);
    let blocks = grow(&mut producer, net, n, 1000, 3, 4, &mut rng);
    let (c, m) = chain_with_model(&net.genesis, p, &blocks);
    (c, m.stored())
}

fn committed_account_index(s: &StoredChain) -> usize {
    s.state.iter().position(|(k, _)| k[0] == keys::ACCOUNT).expect("an account")
}

#[test]
fn tampered_stores_are_refused() {
    let p = params(4);
    let net = DevNet::with_params(71, 3, p.clone());
    let (chain, good) = stored_after(&net, &p, 7);
    assert!(restore(&net, &p, good.clone()).is_ok());

    // A committed value changed: one more coin in an account.
    let mut s = good.clone();
    let i = committed_account_index(&s);
    let mut acct = pb::AccountState::decode(s.state[i].1.as_slice()).unwrap();
    acct.balance += 1;
    s.state[i].1 = acct.encode_to_vec();
    assert_eq!(restore(&net, &p, s).err().expect("refused"), RestoreError::StateMismatch);

    // A committed entry dropped, or one added.
    let mut s = good.clone();
    s.state.remove(i);
    assert_eq!(restore(&net, &p, s).err().expect("refused"), RestoreError::StateMismatch);
    let mut s = good.clone();
    s.state.push((keys::team("NYJ"), pb::TeamState::default().encode_to_vec()));
    assert_eq!(restore(&net, &p, s).err().expect("refused"), RestoreError::StateMismatch);

    // The replay index is not covered by the state root, but every tx of the
    // non-final blocks held must be in it.
    let mut s = good.clone();
    let last = s.recent.last().expect("recent blocks");
    let block = pb::Block::decode(last.bytes.as_slice()).unwrap();
    let victim = sha256(&block.txs.first().expect("the last block carries txs").tx);
    let height = last.height;
    s.replay.retain(|(id, _)| *id != victim);
    assert_eq!(restore(&net, &p, s).err().expect("refused"), RestoreError::ReplayIndexIncomplete(height));

    // Another chain's store.
    let other = DevNet::new(72, 3);
    assert_eq!(
        Chain::restore(other.genesis.clone(), ChainLimits::default(), good.clone()).err().expect("refused"),
        RestoreError::WrongGenesis
    );

    // A missing undo record for a non-final block.
    let mut s = good.clone();
    let last = s.recent.len() - 1;
    s.recent[last].undo = None;
    assert_eq!(restore(&net, &p, s).err().expect("refused"), RestoreError::MissingUndo(chain.head().height));

    // Blocks out of order or missing.
    let mut s = good.clone();
    s.recent.swap(1, 2);
    assert!(restore(&net, &p, s).is_err());
    let mut s = good.clone();
    s.recent.pop();
    assert!(restore(&net, &p, s).is_err());
    let mut s = good.clone();
    s.recent[1].bytes = vec![0xff; 4];
    assert_eq!(restore(&net, &p, s).err().expect("refused"), RestoreError::BadBlock(s_first(&good) + 1));
}

#[allow(dead_code)]
fn s_first(s: &StoredChain) -> u64 {
    s.head.final_height.max(1)
}

#[test]
fn nonsense_head_records_are_refused_not_panicked_on() {
    let p = params(4);
    let net = DevNet::with_params(73, 3, p.clone());
    let (_, good) = stored_after(&net, &p, 7);
    type Damage = Box<dyn Fn(&mut StoredChain)>;
    let variants: Vec<(&str, Damage)> = vec![
        ("final above head", Box::new(|s: &mut StoredChain| s.head.final_height = s.head.height + 3)),
        ("head height 0 with blocks", Box::new(|s: &mut StoredChain| s.head.height = 0)),
        ("head far above the blocks", Box::new(|s: &mut StoredChain| s.head.height = u64::MAX)),
        ("final at u64::MAX", Box::new(|s: &mut StoredChain| s.head.final_height = u64::MAX)),
        ("no blocks", Box::new(|s: &mut StoredChain| s.recent.clear())),
        ("wrong head id", Box::new(|s: &mut StoredChain| s.head.id = protoblock_core::hash::sha256(b"x"))),
        (
            "undo garbage",
            Box::new(|s: &mut StoredChain| {
                let last = s.recent.len() - 1;
                s.recent[last].undo = Some(vec![0xff, 0xff]);
            }),
        ),
        (
            "stored id differs from the block's",
            Box::new(|s: &mut StoredChain| s.recent[0].id = protoblock_core::hash::sha256(b"y")),
        ),
    ];
    for (what, f) in variants {
        let mut s = good.clone();
        f(&mut s);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| restore(&net, &p, s)));
        match r {
            Ok(res) => assert!(res.is_err(), "{what}: accepted"),
            Err(_) => panic!("{what}: restore panicked"),
        }
    }
}
