//! Fork choice: longest valid chain, ties to the lower id, nothing final is
//! ever reorganised, and after any reorg the state is exactly the state of a
//! fresh node that only ever saw the winning branch.

mod common;

use common::*;
use protoblock_core::hash::Hash32;
use protoblock_core::{BlockError, Chain, ChainParams, Placement, TxError};
use protoblock_devnet::{DevNet, SplitMix64};

struct Forks {
    net: DevNet,
    params: ChainParams,
    prefix: Vec<Vec<u8>>,
}

/// A common prefix: season started, four named users, a transfer.
fn forks(seed: u64, finality_depth: u64) -> Forks {
    let params = ChainParams { finality_depth, ..ChainParams::default() };
    let net = DevNet::with_params(seed, 4, params.clone());
    let g = net.genesis.clone();
    let mut c = new_chain(&g, &params);
    let t = T0 + 1000;
    let mut txs = vec![tx(&net.oracle, &g, t, 0, season_start(SEASON))];
    for (i, u) in net.users.iter().enumerate() {
        txs.push(tx(u, &g, t, 1 + i as u64, name(&format!("coach-{i}"))));
    }
    let (b1, _) = extend(&mut c, &net.oracle, &txs, t);
    let (b2, _) =
        extend(&mut c, &net.oracle, &[tx(&net.users[0], &g, t + 1000, 0, transfer("coach-1", 1000))], t + 1000);
    Forks { net, params, prefix: vec![b1, b2] }
}

impl Forks {
    fn node(&self) -> Chain {
        replay(&self.net.genesis, &self.params, &self.prefix)
    }
    fn replay_with(&self, branch: &[Vec<u8>]) -> Chain {
        let all: Vec<Vec<u8>> = self.prefix.iter().chain(branch).cloned().collect();
        replay(&self.net.genesis, &self.params, &all)
    }
}

/// Branch A: game start, then a transfer, then a result that pays out.
fn branch_a(f: &Forks, ts0: u64) -> Vec<Vec<u8>> {
    let (net, g) = (&f.net, &f.net.genesis);
    let mut c = f.node();
    let mut out = Vec::new();
    let p1 = net.players[0].0.clone();
    out.push(extend(&mut c, &net.oracle, &[tx(&net.users[2], g, ts0, 0, projection(1, &p1, 12))], ts0).0);
    out.push(
        extend(&mut c, &net.oracle, &[tx(&net.oracle, g, ts0 + 1000, 0, game_start(1, &net.teams))], ts0 + 1000).0,
    );
    out.push(
        extend(
            &mut c,
            &net.oracle,
            &[
                tx(&net.oracle, g, ts0 + 2000, 0, game_result(1, &[(&p1, 12)])),
                tx(&net.users[1], g, ts0 + 2000, 1, transfer("coach-3", 77)),
            ],
            ts0 + 2000,
        )
        .0,
    );
    // The only projection was exact: it takes the whole reward.
    assert_eq!(balance_of(c.state(), &net.users[2]), 1_000_012);
    out
}

/// Branch B: `n` blocks of different transfers at different times.
fn branch_b(f: &Forks, ts0: u64, n: u64) -> Vec<Vec<u8>> {
    let (net, g) = (&f.net, &f.net.genesis);
    let mut c = f.node();
    (0..n)
        .map(|i| {
            let ts = ts0 + i * 700;
            let body = transfer(&format!("coach-{}", (i + 1) % 4), 10 + i);
            extend(&mut c, &net.oracle, &[tx(&net.users[(i % 4) as usize], g, ts, i, body)], ts).0
        })
        .collect()
}

fn insert(c: &mut Chain, b: &[u8]) -> Result<protoblock_core::ChainUpdate, BlockError> {
    c.insert_block(b, block_ts(b))
}

#[test]
fn longer_fork_arriving_second_wins_and_state_matches_a_fresh_replay() {
    let f = forks(21, 16);
    let t = block_ts(f.prefix.last().unwrap());
    let a = branch_a(&f, t + 1000);
    let b = branch_b(&f, t + 1500, 5);
    assert_ne!(block_id(&a[0]), block_id(&b[0]));
    let only_a = f.replay_with(&a);
    let only_b = f.replay_with(&b);
    assert!(only_a.state() != only_b.state(), "the forks must differ in state");

    let (mut node, mut model) = chain_with_model(&f.net.genesis, &f.params, &f.prefix);
    for blk in &a {
        let u = insert(&mut node, blk).unwrap();
        assert_eq!(u.placement, Placement::Extended);
        model.apply_update(&u);
    }
    assert_same_chain(&node, &only_a, "after fork A");
    // B1, B2 are shorter than the head: held. B3 ties A3 on height.
    let mut reorgs = Vec::new();
    for (i, blk) in b.iter().enumerate() {
        let u = insert(&mut node, blk).unwrap();
        let h = i + 1;
        let expected = if h < a.len() {
            Placement::Side
        } else if h == a.len() {
            if block_id(blk) < block_id(&a[h - 1]) {
                Placement::Reorged { depth: a.len() as u64 }
            } else {
                Placement::Side
            }
        } else if !reorgs.is_empty() {
            Placement::Extended
        } else {
            Placement::Reorged { depth: a.len() as u64 }
        };
        assert_eq!(u.placement, expected, "B{h}");
        if let Placement::Reorged { .. } = u.placement {
            // The reverted blocks are exactly fork A, handed back for their txs.
            let reverted: Vec<Vec<u8>> = u.reverted.iter().map(|r| r.to_vec()).collect();
            assert_eq!(reverted, a);
            assert!(u.rejected.is_none());
            let batch = u.batch.as_ref().unwrap();
            let deleted: Vec<Hash32> = a.iter().map(|x| block_id(x)).collect();
            assert_eq!(batch.delete_blocks, deleted);
            reorgs.push(h);
        }
        model.apply_update(&u);
    }
    assert_eq!(reorgs.len(), 1);
    assert_same_chain(&node, &only_b, "after fork B");
    assert_eq!(node.head().id, block_id(b.last().unwrap()));
    assert!(model.state_map() == *node.state(), "store model diverged over the reorg");
    assert_eq!(model.replay, replay_of(&node), "replay index diverged over the reorg");
    // Fork A is gone from the main chain: its blocks are unknown again.
    assert!(!node.is_known(&block_id(&a[0])));
}

#[test]
fn shorter_fork_arriving_second_is_held_but_changes_nothing() {
    let f = forks(22, 16);
    let t = block_ts(f.prefix.last().unwrap());
    let a = branch_a(&f, t + 1000);
    let b = branch_b(&f, t + 1500, 2);
    let mut node = f.replay_with(&a);
    let before = snapshot(&node);
    for blk in &b {
        assert_eq!(insert(&mut node, blk).unwrap().placement, Placement::Side);
        assert_untouched(&node, &before, "shorter fork");
    }
    assert_eq!(node.side_len(), 2);
    // Duplicates are recognised as such.
    assert_eq!(insert(&mut node, &b[0]).unwrap().placement, Placement::Duplicate);
    assert_eq!(insert(&mut node, &a[0]).unwrap().placement, Placement::Duplicate);
    // One more block on B makes it as long as A: then the lower id decides.
    let mut cb = f.replay_with(&b);
    let ts = cb.head().timestamp_ms + 700;
    let (b3, _) = extend(&mut cb, &f.net.oracle, &[], ts);
    let u = insert(&mut node, &b3).unwrap();
    if block_id(&b3) < block_id(&a[2]) {
        assert_eq!(u.placement, Placement::Reorged { depth: 3 });
        assert_same_chain(&node, &cb, "B won the tie");
    } else {
        assert_eq!(u.placement, Placement::Side);
        assert_untouched(&node, &before, "A won the tie");
    }
}

#[test]
fn equal_height_forks_resolve_to_the_lower_id_whatever_the_arrival_order() {
    let mut winners = [0usize; 2];
    for seed in 0..6u64 {
        let f = forks(30 + seed, 16);
        let t = block_ts(f.prefix.last().unwrap());
        let a = branch_b(&f, t + 1000 + seed, 3);
        let b = branch_b(&f, t + 1001 + seed * 3, 3);
        let (ia, ib) = (block_id(&a[2]), block_id(&b[2]));
        assert_ne!(ia, ib);
        let (win, lose) = if ia < ib { (&a, &b) } else { (&b, &a) };
        winners[(ib < ia) as usize] += 1;
        let fresh = f.replay_with(win);
        for (first, second) in [(&a, &b), (&b, &a)] {
            let mut node = f.node();
            for blk in first.iter() {
                assert_eq!(insert(&mut node, blk).unwrap().placement, Placement::Extended);
            }
            for (i, blk) in second.iter().enumerate() {
                let u = insert(&mut node, blk).unwrap();
                let expect =
                    if i < 2 || std::ptr::eq(second, lose) { Placement::Side } else { Placement::Reorged { depth: 3 } };
                assert_eq!(u.placement, expect, "seed {seed}");
            }
            assert_eq!(node.head().id, block_id(&win[2]), "seed {seed}");
            assert_same_chain(&node, &fresh, "tie-break");
        }
    }
    // Both forks won some ties, so both arrival orders were really tested.
    assert!(winners[0] > 0 && winners[1] > 0, "{winners:?}");
}

#[test]
fn no_reorg_past_finality() {
    let depth = 4;
    let params = ChainParams { finality_depth: depth, ..ChainParams::default() };
    let net = DevNet::with_params(40, 3, params.clone());
    let mut main = new_chain(&net.genesis, &params);
    let mut rng = SplitMix64(1);
    let blocks = grow(&mut main, &net, 10, 1000, 2, 4, &mut rng);
    assert_eq!(main.final_height(), 10 - depth);
    assert_eq!(main.main_id_at(main.final_height()), Some(block_id(&blocks[5])));
    assert_eq!(main.main_id_at(main.final_height() - 1), None, "below the final block nothing is kept");

    // A longer fork from height 3, below the final height 6.
    let mut fork = replay(&net.genesis, &params, &blocks[..3]);
    let mut rng2 = SplitMix64(2);
    let deep = grow(&mut fork, &net, 12, 1100, 2, 4, &mut rng2);
    assert!(fork.head().height > main.head().height);
    let before = snapshot(&main);
    for (i, blk) in deep.iter().enumerate() {
        let h = 4 + i as u64;
        let err = insert(&mut main, blk).unwrap_err();
        if h <= main.final_height() {
            assert_eq!(err, BlockError::BelowFinality { height: h, final_height: 10 - depth });
        } else {
            // Its parent was refused, so it cannot be placed.
            assert_eq!(err, BlockError::UnknownParent(block_id(&deep[i - 1])));
        }
        assert!(!err.is_peer_fault(), "racing finality is not the sender's fault");
        assert_untouched(&main, &before, "fork below finality");
    }
    assert_eq!(main.side_len(), 0);

    // A fork from the final block itself is fine: it reverts only non-final blocks.
    let mut from_final = replay(&net.genesis, &params, &blocks[..6]);
    let mut rng3 = SplitMix64(3);
    let ok = grow(&mut from_final, &net, 6, 900, 2, 4, &mut rng3);
    let mut placements = Vec::new();
    for blk in &ok {
        placements.push(insert(&mut main, blk).unwrap().placement);
    }
    assert!(placements.contains(&Placement::Reorged { depth: 4 }), "{placements:?}");
    assert_same_chain(&main, &from_final, "fork from the final block");
    assert_eq!(main.final_height(), main.head().height - depth);
}

/// Builds, on top of `parent`, a block whose header, signature and tx root
/// are valid but whose tx fails against the state (a transfer beyond balance).
fn bad_block_on(f: &Forks, parent: &[u8], ts: u64) -> Vec<u8> {
    let hd = header_of(parent);
    let t = tx(&f.net.users[3], &f.net.genesis, ts, 0, transfer("coach-0", 5_000_000));
    build_block(&f.net.oracle, hd.height + 1, block_id(parent), ts, &[t], Hash32::from_slice(&hd.state_root).unwrap())
}

#[test]
fn a_branch_with_an_invalid_block_in_the_middle_is_refused_and_its_valid_prefix_kept() {
    let f = forks(50, 16);
    let t = block_ts(f.prefix.last().unwrap());
    let a = branch_b(&f, t + 1000, 2); // main: prefix + A1 + A2
    let b_good = branch_b(&f, t + 1333, 4); // the honest version of the other branch
    let only_a = f.replay_with(&a);
    // B2 bad (stateless-valid, state-invalid) at A2's height, with an id above A2's
    // so that it is simply held; B3 builds on it.
    let mut bad = None;
    for k in 0..64 {
        let cand = bad_block_on(&f, &b_good[0], t + 1400 + k);
        if block_id(&cand) > block_id(&a[1]) {
            bad = Some(cand);
            break;
        }
    }
    let bad = bad.expect("some timestamp gives a higher id");
    let on_bad = build_block(&f.net.oracle, 5, block_id(&bad), block_ts(&bad) + 10, &[], Hash32([7; 32]));
    let bad_error =
        BlockError::Tx { index: 0, error: TxError::InsufficientBalance { have: 1_000_000, need: 5_000_000 } };

    let mut node = f.replay_with(&a);
    let before = snapshot(&node);
    assert_eq!(insert(&mut node, &b_good[0]).unwrap().placement, Placement::Side);
    assert_eq!(insert(&mut node, &bad).unwrap().placement, Placement::Side, "stateless checks pass");
    // B3 makes the branch longer: the reorg runs into B2 and is abandoned,
    // because its valid prefix (B1) is not better than the head.
    assert_eq!(insert(&mut node, &on_bad).unwrap_err(), bad_error);
    assert_untouched(&node, &before, "abandoned reorg");
    assert_same_chain(&node, &only_a, "abandoned reorg");
    assert_eq!(node.side_len(), 1, "B1 is kept, B2 and B3 are dropped");
    assert!(node.is_known(&block_id(&b_good[0])));
    assert_eq!(insert(&mut node, &bad).unwrap_err(), BlockError::KnownInvalid);
    assert_eq!(insert(&mut node, &on_bad).unwrap_err(), BlockError::UnknownParent(block_id(&bad)));
    assert_untouched(&node, &before, "resent bad blocks");

    // The honest continuation of B1 wins without B1 being sent again.
    let mut placements = Vec::new();
    for blk in &b_good[1..] {
        placements.push(insert(&mut node, blk).unwrap().placement);
    }
    assert!(placements.iter().any(|p| matches!(p, Placement::Reorged { depth: 2 })), "{placements:?}");
    assert_same_chain(&node, &f.replay_with(&b_good), "honest branch");
}

#[test]
fn an_invalid_block_that_would_win_a_tie_is_refused_at_once() {
    let f = forks(51, 16);
    let t = block_ts(f.prefix.last().unwrap());
    let a = branch_b(&f, t + 1000, 2);
    let b1 = branch_b(&f, t + 1333, 1);
    let mut bad = None;
    for k in 0..64 {
        let cand = bad_block_on(&f, &b1[0], t + 1400 + k);
        if block_id(&cand) < block_id(&a[1]) {
            bad = Some(cand);
            break;
        }
    }
    let bad = bad.expect("some timestamp gives a lower id");
    let all: Vec<Vec<u8>> = f.prefix.iter().chain(&a).cloned().collect();
    let (mut node, model) = chain_with_model(&f.net.genesis, &f.params, &all);
    let before = snapshot(&node);
    assert_eq!(insert(&mut node, &b1[0]).unwrap().placement, Placement::Side);
    let err = insert(&mut node, &bad).unwrap_err();
    assert_eq!(
        err,
        BlockError::Tx { index: 0, error: TxError::InsufficientBalance { have: 1_000_000, need: 5_000_000 } }
    );
    assert_untouched(&node, &before, "invalid tie-winner");
    assert_eq!(node.side_len(), 1, "B1 kept");
    assert_eq!(insert(&mut node, &bad).unwrap_err(), BlockError::KnownInvalid);
    assert_untouched(&node, &before, "invalid tie-winner resent");
    assert!(model.state_map() == *node.state());
}

#[test]
fn random_forks_with_season_events_match_a_fresh_replay() {
    for seed in 0..4u64 {
        let params = ChainParams { finality_depth: 12, ..ChainParams::default() };
        let net = DevNet::with_params(60 + seed, 4, params.clone());
        let mut base = new_chain(&net.genesis, &params);
        let mut rng = SplitMix64(seed);
        let prefix = grow(&mut base, &net, 3 + seed, 1000, 3, 4, &mut rng);
        let mut ca = replay(&net.genesis, &params, &prefix);
        let mut cb = replay(&net.genesis, &params, &prefix);
        let mut ra = SplitMix64(seed * 7 + 1);
        let mut rb = SplitMix64(seed * 7 + 2);
        let a = grow(&mut ca, &net, 4 + (seed % 2), 1000, 3, 4, &mut ra);
        let b = grow(&mut cb, &net, 5 - (seed % 2), 1010, 3, 4, &mut rb);
        let winner = if ca.head().height != cb.head().height {
            if ca.head().height > cb.head().height { &ca } else { &cb }
        } else if ca.head().id < cb.head().id {
            &ca
        } else {
            &cb
        };
        assert!(ca.state() != cb.state(), "seed {seed}: forks should differ");
        let mut reorgs = 0;
        for (first, second) in [(&a, &b), (&b, &a)] {
            let (mut node, mut model) = chain_with_model(&net.genesis, &params, &prefix);
            for blk in first.iter().chain(second.iter()) {
                match insert(&mut node, blk) {
                    Ok(u) => {
                        if let Placement::Reorged { depth } = u.placement {
                            assert_eq!(depth, first.len() as u64, "seed {seed}");
                            reorgs += 1;
                        }
                        model.apply_update(&u)
                    }
                    Err(e) => panic!("seed {seed}: a valid block was refused: {e}"),
                }
                assert!(model.state_map() == *node.state(), "seed {seed}: store model diverged");
                assert_eq!(model.replay, replay_of(&node), "seed {seed}: replay index diverged");
            }
            assert_same_chain(&node, winner, &format!("seed {seed}"));
        }
        assert_eq!(reorgs, 1, "seed {seed}: exactly the order with the loser first reorganises");
    }
}

#[test]
fn a_held_branch_whose_fork_point_becomes_final_can_never_win() {
    let depth = 4;
    let params = ChainParams { finality_depth: depth, ..ChainParams::default() };
    let net = DevNet::with_params(41, 3, params.clone());
    let mut main = new_chain(&net.genesis, &params);
    let mut rng = SplitMix64(1);
    let blocks = grow(&mut main, &net, 10, 1000, 2, 4, &mut rng);
    assert_eq!(main.final_height(), 6);
    // A branch from height 7 (non-final), held as a side chain: heights 8, 9.
    let mut fork = replay(&net.genesis, &params, &blocks[..7]);
    let mut rng2 = SplitMix64(2);
    let branch = grow(&mut fork, &net, 7, 1100, 2, 4, &mut rng2); // heights 8..=14
    for b in &branch[..2] {
        assert_eq!(insert(&mut main, b).unwrap().placement, Placement::Side);
    }
    // Main grows to 12: final height 8, the branch's fork point (7) is now final history.
    let more = grow(&mut replay(&net.genesis, &params, &blocks), &net, 2, 1000, 2, 4, &mut SplitMix64(3));
    for b in &more {
        assert_eq!(insert(&mut main, b).unwrap().placement, Placement::Extended);
    }
    assert_eq!(main.final_height(), 8);
    let before = snapshot(&main);
    // The rest of the branch, longer than main, can never be adopted.
    for b in &branch[2..] {
        match insert(&mut main, b) {
            Ok(u) => assert_eq!(u.placement, Placement::Side, "height {}", header_of(b).height),
            Err(e) => assert!(!e.is_peer_fault(), "{e:?}"),
        }
        assert_untouched(&main, &before, "orphaned branch");
    }
    assert!(fork.head().height > main.head().height);
    assert_eq!(main.head().id, block_id(more.last().unwrap()));
}
