//! The mempool: dedupe, validation against the pending state, bounds with the
//! documented eviction order, and rebuilds after head changes.

mod common;

use common::*;
use protoblock_core::hash::Hash32;
use protoblock_core::mempool::{Mempool, MempoolConfig, MempoolError};
use protoblock_core::proto::v1 as pb;
use protoblock_core::{Chain, Placement, TxError};
use protoblock_devnet::DevNet;

struct Env {
    net: DevNet,
    chain: Chain,
    /// "Now": just after the head.
    now: u64,
}

/// A chain one block in, with the season started (projections open) and no
/// user named yet.
fn env(seed: u64) -> Env {
    let net = DevNet::with_params(seed, 8, params_small());
    let mut chain = new_chain(&net.genesis, &params_small());
    let t = T0 + 1000;
    extend(&mut chain, &net.oracle, &[tx(&net.oracle, &net.genesis, t, 0, season_start(SEASON))], t);
    assert_eq!(season_of(chain.state()).phase(), pb::SeasonPhase::InSeason);
    assert_eq!(team_phase(chain.state(), &net.teams[0]), pb::TeamPhase::Pregame);
    Env { net, chain, now: t + 1000 }
}

impl Env {
    fn tx(&self, user: usize, nonce_ms: u64, salt: u64, body: Body) -> Vec<u8> {
        tx(&self.net.users[user], &self.net.genesis, nonce_ms, salt, body)
    }
    fn oracle_tx(&self, nonce_ms: u64, body: Body) -> Vec<u8> {
        tx(&self.net.oracle, &self.net.genesis, nonce_ms, 0, body)
    }
    /// Produces a block from the pool's txs (in pool order) and inserts it.
    fn produce_from(&mut self, pool: &Mempool, ts: u64) -> Vec<Hash32> {
        let cands: Vec<(Vec<u8>, protoblock_core::block::CheckedTx)> =
            pool.iter().map(|p| (p.bytes.to_vec(), p.tx.clone())).collect();
        let p = protoblock_core::producer::produce_block(
            &self.chain,
            cands.iter().map(|(b, c)| (b.as_slice(), c)),
            &self.net.oracle,
            ts,
        )
        .unwrap();
        assert_eq!(self.chain.insert_block(&p.bytes, ts).unwrap().placement, Placement::Extended);
        p.tx_ids
    }
}

fn ids(pool: &Mempool) -> Vec<Hash32> {
    pool.iter().map(|p| p.tx.id).collect()
}

fn pool(max_txs: usize, max_bytes: usize, max_per_signer: usize) -> Mempool {
    Mempool::new(MempoolConfig { max_txs, max_bytes, max_per_signer })
}

#[test]
fn duplicates_are_refused_by_id() {
    let e = env(1);
    let mut mp = pool(100, 1 << 20, 10);
    let t = e.tx(0, e.now, 0, name("coach-0"));
    assert_eq!(mp.insert(&t, &e.chain, e.now), Ok(tx_id(&t)));
    assert_eq!(mp.insert(&t, &e.chain, e.now), Err(MempoolError::Duplicate));
    // Same tx bytes (same id) with another signature encoding: still a duplicate.
    let mut st: pb::SignedTransaction = prost::Message::decode(t.as_slice()).unwrap();
    st.signature[0] ^= 1;
    assert_eq!(mp.insert(&prost::Message::encode_to_vec(&st), &e.chain, e.now), Err(MempoolError::Duplicate));
    assert_eq!(mp.len(), 1);
    assert!(mp.contains(&tx_id(&t)));
}

#[test]
fn invalid_txs_are_refused_with_their_error_and_leave_the_pool_as_it_was() {
    let e = env(2);
    let mut mp = pool(100, 1 << 20, 10);
    mp.insert(&e.tx(0, e.now, 0, name("Bo.Jackson")), &e.chain, e.now).unwrap();
    let before = ids(&mp);
    let day = 24 * 3600 * 1000;
    let cases: Vec<(Vec<u8>, TxError)> = vec![
        (e.tx(1, e.now, 1, name("b0_jacks0n")), TxError::NameTaken),
        (e.tx(1, e.now, 2, projection(1, "ARI-P1", 5)), TxError::NoName),
        (
            e.tx(1, e.now, 3, transfer("Bo.Jackson", 1_000_001)),
            TxError::InsufficientBalance { have: 1_000_000, need: 1_000_001 },
        ),
        (e.tx(1, e.now, 4, transfer("Bo.Jackson", 0)), TxError::ZeroAmount),
        (e.tx(1, e.now, 5, week_over(1)), TxError::NotOracle),
        (e.tx(1, e.now - 2 * day - 1, 6, name("coach-1")), TxError::NonceTooOld),
        (e.tx(1, e.now + 3600 * 1000 + 1, 7, name("coach-1")), TxError::NonceTooNew),
        (e.tx(1, e.now, 8, name("no")), TxError::InvalidName("length must be 3 to 32 characters")),
        (e.oracle_tx(e.now, game_start(2, &e.net.teams)), TxError::WrongWeek),
    ];
    for (t, err) in cases {
        assert_eq!(mp.insert(&t, &e.chain, e.now), Err(MempoolError::Invalid(err.clone())), "{err:?}");
        assert_eq!(ids(&mp), before);
    }
    // Garbage and bad signatures.
    assert_eq!(mp.insert(&[0xff, 0x01], &e.chain, e.now), Err(MempoolError::Invalid(TxError::Malformed)));
    let mut st: pb::SignedTransaction = prost::Message::decode(e.tx(2, e.now, 9, name("coach-2")).as_slice()).unwrap();
    st.signature[10] ^= 4;
    assert_eq!(
        mp.insert(&prost::Message::encode_to_vec(&st), &e.chain, e.now),
        Err(MempoolError::Invalid(TxError::BadSignature))
    );
    assert_eq!(ids(&mp), before);
    // A tx already in a block is a replay.
    let mut e = e;
    let included = e.tx(3, e.now, 10, name("coach-3"));
    extend(&mut e.chain, &e.net.oracle, std::slice::from_ref(&included), e.now);
    let mut fresh = pool(100, 1 << 20, 10);
    assert_eq!(fresh.insert(&included, &e.chain, e.now + 1000), Err(MempoolError::Invalid(TxError::Replayed)));
}

#[test]
fn registration_then_projection_from_a_new_user_are_both_admitted_and_included() {
    let mut e = env(3);
    let mut mp = pool(100, 1 << 20, 10);
    let reg = e.tx(4, e.now, 0, name("rookie"));
    let proj = e.tx(4, e.now, 1, projection(1, "KC-P2", 17));
    // Without the registration pending, the projection has no name.
    assert_eq!(pool(100, 1 << 20, 10).insert(&proj, &e.chain, e.now), Err(MempoolError::Invalid(TxError::NoName)));
    mp.insert(&reg, &e.chain, e.now).unwrap();
    mp.insert(&proj, &e.chain, e.now).unwrap();
    // A second registration of the same name by someone else conflicts with the pool.
    assert_eq!(
        mp.insert(&e.tx(5, e.now, 2, name("R00KIE")), &e.chain, e.now),
        Err(MempoolError::Invalid(TxError::NameTaken))
    );
    assert_eq!(ids(&mp), vec![tx_id(&reg), tx_id(&proj)], "inclusion order is arrival order");

    let ts = e.now + 1000;
    let included = e.produce_from(&mp, ts);
    assert_eq!(included, vec![tx_id(&reg), tx_id(&proj)]);
    let key = protoblock_core::state::keys::projection(SEASON, 1, "KC-P2", &pk(&e.net.users[4]));
    let stored = e.chain.state().get(&key).expect("projection stored");
    assert_eq!(<pb::ProjectionState as prost::Message>::decode(stored.as_slice()).unwrap().points, 17);
    assert_eq!(mp.rebuild(&e.chain, ts), 2);
    assert!(mp.is_empty());
}

#[test]
fn rebuild_drops_exactly_the_included_and_the_no_longer_valid() {
    let mut e = env(4);
    let mut mp = pool(100, 1 << 20, 10);
    let t1 = e.tx(0, e.now, 0, name("coach-0"));
    let t2 = e.tx(1, e.now, 1, name("coach-1"));
    let t3 = e.tx(2, e.now, 2, name("coach-2"));
    for t in [&t1, &t2, &t3] {
        mp.insert(t, &e.chain, e.now).unwrap();
    }
    // A block with t1 only, plus a competing registration that takes t3's name.
    let ts = e.now + 1000;
    let rival = e.tx(5, e.now, 9, name("COACH_2"));
    extend(&mut e.chain, &e.net.oracle, &[t1.clone(), rival], ts);
    assert_eq!(mp.rebuild(&e.chain, ts), 2);
    assert_eq!(ids(&mp), vec![tx_id(&t2)]);
    // The pending state is rebuilt too: t2's name is now taken in the pool.
    assert_eq!(
        mp.insert(&e.tx(6, ts, 3, name("coach_1")), &e.chain, ts),
        Err(MempoolError::Invalid(TxError::NameTaken))
    );
    // And txs that age out of the replay window drop at a rebuild much later.
    let later = ts + 2 * 24 * 3600 * 1000 + 1;
    assert_eq!(mp.rebuild(&e.chain, later), 1);
    assert!(mp.is_empty());
}

#[test]
fn double_spend_against_the_pool_is_refused() {
    let e = env(5);
    let mut mp = pool(100, 1 << 20, 10);
    mp.insert(&e.tx(0, e.now, 0, name("payee")), &e.chain, e.now).unwrap();
    mp.insert(&e.tx(1, e.now, 1, transfer("payee", 600_000)), &e.chain, e.now).unwrap();
    assert_eq!(
        mp.insert(&e.tx(1, e.now, 2, transfer("payee", 400_001)), &e.chain, e.now),
        Err(MempoolError::Invalid(TxError::InsufficientBalance { have: 400_000, need: 400_001 }))
    );
    assert_eq!(mp.insert(&e.tx(1, e.now, 3, transfer("payee", 400_000)), &e.chain, e.now).map(|_| ()), Ok(()));
}

#[test]
fn per_signer_limit() {
    let e = env(6);
    let mut mp = pool(100, 1 << 20, 2);
    mp.insert(&e.tx(0, e.now, 0, name("payee")), &e.chain, e.now).unwrap();
    mp.insert(&e.tx(1, e.now, 1, transfer("payee", 1)), &e.chain, e.now).unwrap();
    mp.insert(&e.tx(1, e.now, 2, transfer("payee", 2)), &e.chain, e.now).unwrap();
    assert_eq!(mp.insert(&e.tx(1, e.now, 3, transfer("payee", 3)), &e.chain, e.now), Err(MempoolError::SignerLimit));
    // Other signers are unaffected.
    mp.insert(&e.tx(2, e.now, 4, transfer("payee", 4)), &e.chain, e.now).unwrap();
    assert_eq!(mp.len(), 4);
}

#[test]
fn full_pool_evicts_the_oldest_nonce_first_and_oracle_data_last() {
    let e = env(7);
    let n = e.now - 10_000; // nonces in the past, inside the window
    let mut mp = pool(3, 1 << 20, 10);
    let data = e.oracle_tx(n, game_start(1, &e.net.teams)); // the oldest nonce of all
    let a = e.tx(0, n + 1, 0, name("coach-a"));
    let b = e.tx(1, n + 2, 0, name("coach-b"));
    for t in [&data, &a, &b] {
        mp.insert(t, &e.chain, e.now).unwrap();
    }
    // A newer tx evicts `a`, the oldest user tx, not the older data tx.
    let c = e.tx(2, n + 3, 0, name("coach-c"));
    assert_eq!(mp.insert(&c, &e.chain, e.now), Ok(tx_id(&c)));
    assert_eq!(ids(&mp), vec![tx_id(&data), tx_id(&b), tx_id(&c)]);
    // A tx older than every user tx in the pool would be evicted first: refused.
    let old = e.tx(3, n + 1, 5, name("coach-old"));
    assert_eq!(mp.insert(&old, &e.chain, e.now), Err(MempoolError::Full));
    assert_eq!(ids(&mp), vec![tx_id(&data), tx_id(&b), tx_id(&c)]);
    // A data tx is evicted only when nothing else is left to evict.
    let mut mp = pool(2, 1 << 20, 10);
    let d1 = e.oracle_tx(n + 10, game_start(1, &e.net.teams[..4]));
    let d2 = e.oracle_tx(n + 20, game_start(1, &e.net.teams[4..]));
    mp.insert(&d1, &e.chain, e.now).unwrap();
    mp.insert(&e.tx(4, n + 30, 0, name("coach-d")), &e.chain, e.now).unwrap();
    mp.insert(&d2, &e.chain, e.now).unwrap();
    assert_eq!(ids(&mp), vec![tx_id(&d1), tx_id(&d2)], "the user tx went, though its nonce is newest");
    let d3 = e.oracle_tx(n + 5, week_over(1));
    assert_eq!(mp.insert(&d3, &e.chain, e.now), Err(MempoolError::Full), "oldest data tx of all");
    assert_eq!(
        mp.insert(&e.tx(5, n + 40, 0, name("coach-e")), &e.chain, e.now),
        Err(MempoolError::Full),
        "user tx below data txs"
    );
    assert_eq!(ids(&mp), vec![tx_id(&d1), tx_id(&d2)]);
}

#[test]
fn evicting_a_registration_drops_the_txs_that_depended_on_it() {
    let e = env(8);
    let n = e.now - 10_000;
    let mut mp = pool(3, 1 << 20, 10);
    let reg = e.tx(0, n, 0, name("coach-0"));
    let proj = e.tx(0, n + 5, 0, projection(1, "SF-P1", 9));
    let other = e.tx(1, n + 6, 0, name("coach-1"));
    for t in [&reg, &proj, &other] {
        mp.insert(t, &e.chain, e.now).unwrap();
    }
    let newer = e.tx(2, n + 7, 0, name("coach-2"));
    mp.insert(&newer, &e.chain, e.now).unwrap();
    assert_eq!(ids(&mp), vec![tx_id(&other), tx_id(&newer)]);
}

#[test]
fn byte_bound_counts_every_victim_and_never_admits_a_tx_it_evicts() {
    let e = env(9);
    let n = e.now - 10_000;
    let s1 = e.tx(0, n + 1, 0, name("aaa"));
    let s2 = e.tx(1, n + 3, 0, name("bbb"));
    let s3 = e.tx(2, n + 5, 0, name("ccc"));
    let big = e.tx(3, n + 2, 0, name("a-rather-long-fantasy-name-xyzzy"));
    assert!(big.len() > s1.len());
    let cap = s1.len() + s2.len() + s3.len();
    let mut mp = pool(100, cap, 10);
    for t in [&s1, &s2, &s3] {
        mp.insert(t, &e.chain, e.now).unwrap();
    }
    // `big` needs the room of s1 and more, and is itself next in the eviction
    // order after s1: it must be refused, and s1 must stay.
    assert_eq!(mp.insert(&big, &e.chain, e.now), Err(MempoolError::Full));
    assert_eq!(ids(&mp), vec![tx_id(&s1), tx_id(&s2), tx_id(&s3)]);
    // A big tx newer than everything evicts as many old txs as it needs.
    let newest = e.tx(4, n + 9, 0, name("another-rather-long-name-abcdef"));
    assert_eq!(mp.insert(&newest, &e.chain, e.now), Ok(tx_id(&newest)));
    let kept = ids(&mp);
    assert!(kept.contains(&tx_id(&newest)));
    assert!(!kept.contains(&tx_id(&s1)));
    let used: usize = mp.iter().map(|p| p.bytes.len()).sum();
    assert!(used <= cap);
    // Everything returned Ok is in the pool.
    for p in mp.iter() {
        assert!(mp.contains(&p.tx.id));
    }
}

/// Nonces up to an hour ahead are valid, and under the old oldest-first
/// rule they outlasted every honest tx: a pool filled with nonces 59
/// minutes ahead refused every honest tx (nonce = now). The nonce furthest
/// from now, either way, goes first.
#[test]
fn far_future_nonces_cannot_crowd_out_honest_txs() {
    let e = env(10);
    let mut mp = pool(4, 1 << 20, 10);
    let ahead = e.now + 59 * 60 * 1000;
    for u in 0..4 {
        let spam = e.tx(u, ahead - u as u64, 0, name(&format!("spam-{u}")));
        mp.insert(&spam, &e.chain, e.now).unwrap();
    }
    let honest = e.tx(5, e.now, 0, name("honest"));
    assert_eq!(mp.insert(&honest, &e.chain, e.now), Ok(tx_id(&honest)), "an honest tx gets in");
    assert_eq!(mp.len(), 4);
    let spam_left = mp.iter().filter(|p| p.tx.tx.nonce >= (ahead - 3) * 1_000_000).count();
    assert_eq!(spam_left, 3, "the furthest-ahead spam made room");
    // An old tx, inside the window but further from now than every pool tx, is refused.
    let stale = e.tx(6, e.now - 60 * 60 * 1000, 0, name("stale"));
    assert_eq!(mp.insert(&stale, &e.chain, e.now), Err(MempoolError::Full));
}

/// A full pool refuses a tx that would be first to go before applying it:
/// a tx that breaks a state rule (a transfer to a name nobody holds)
/// gets `Full`, not the rule, because it never reached the state. (The
/// pool applied it, then evicted it and rebuilt itself.)
#[test]
fn a_tx_refused_for_room_is_never_applied() {
    let e = env(11);
    let n = e.now - 10_000;
    let mut mp = pool(2, 1 << 20, 10);
    mp.insert(&e.tx(0, n + 5, 0, name("coach-a")), &e.chain, e.now).unwrap();
    mp.insert(&e.tx(1, n + 6, 0, name("coach-b")), &e.chain, e.now).unwrap();
    let broke = e.tx(2, n, 0, transfer("payee", u64::MAX / 2));
    assert_eq!(mp.insert(&broke, &e.chain, e.now), Err(MempoolError::Full));
}
