//! wasm-bindgen tests in headless Chromium: the IndexedDB store under the
//! real chain (commit, reopen, torn commits) and crypto and validation
//! giving the native answers. Run with
//! `cargo test -p protoblock-wasm --target wasm32-unknown-unknown --features test-hooks`
//! (`cargo xtask test` sets up the runner and chromedriver).

#![cfg(target_arch = "wasm32")]

mod common;

use protoblock_core::ChainLimits;
use protoblock_core::WriteBatch;
use protoblock_devnet::{DevNet, generate_chain};
use protoblock_store::{Store, open_chain};
use protoblock_wasm::store::IndexedDbStore;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const FAR: u64 = u64::MAX / 2;

fn db(name: &str) -> String {
    // Fresh per run: deleted databases may linger in the profile.
    format!("pb-test-{name}-{}", js_sys::Math::random().to_bits())
}

#[wasm_bindgen_test]
fn crypto_and_validation_match_native() {
    assert_eq!(common::vectors(), common::VECTORS);
}

#[wasm_bindgen_test]
async fn indexeddb_commits_and_reopens_to_the_same_chain() {
    let net = DevNet::new(5, 10);
    let blocks = generate_chain(&net, 60, 8);
    let name = db("reopen");
    let store = IndexedDbStore::open(&name).await.unwrap();
    let mut chain = open_chain(&store, net.genesis.clone(), ChainLimits::default()).await.unwrap();
    // Blocks one by one, then in a batch of many (as sync commits).
    for b in &blocks[..20] {
        let u = chain.insert_block(b, FAR).unwrap();
        store.commit(u.batch.unwrap()).await.unwrap();
    }
    let mut batch = WriteBatch::default();
    for b in &blocks[20..] {
        batch.merge(chain.insert_block(b, FAR).unwrap().batch.unwrap());
    }
    store.commit(batch).await.unwrap();
    assert_eq!(store.block_count().await.unwrap(), 60);
    let non_final = chain.head().height - chain.final_height();
    assert!(non_final > 0 && non_final < 60);
    assert_eq!(store.undo_count().await.unwrap() as u64, non_final);
    let range = store.blocks_range(10, 5, usize::MAX).await.unwrap();
    assert_eq!(range, blocks[9..14].to_vec());
    let id = chain.main_id_at(33).unwrap();
    assert_eq!(store.block_by_id(id).await.unwrap().as_deref(), Some(&blocks[32][..]));
    store.put_meta("k", b"v".to_vec()).await.unwrap();
    store.close();

    let store = IndexedDbStore::open(&name).await.unwrap();
    let resumed = open_chain(&store, net.genesis.clone(), ChainLimits::default()).await.unwrap();
    assert_eq!(resumed.head(), chain.head());
    assert_eq!(resumed.commitment().root(), chain.commitment().root());
    assert_eq!(resumed.state(), chain.state());
    assert_eq!(resumed.replay(), chain.replay());
    assert!(!chain.replay().is_empty());
    assert_eq!(store.get_meta("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(store.head().await.unwrap().unwrap().height, 60);
    store.close();
    IndexedDbStore::delete(&name).await.unwrap();
}

/// Pruning in IndexedDB: the lowest blocks go (by id, and from the
/// main-chain index, whose segment spanning the new floor is rewritten from
/// it), at most `MAX_PRUNED_PER_COMMIT` a commit and never above the stored
/// final block; reads below the floor answer nothing, the rest reads back
/// exactly, and after a reopen the floor and the chain are as they were.
#[wasm_bindgen_test]
async fn indexeddb_prunes_the_lowest_blocks_and_reopens() {
    use protoblock_core::chain::MAX_PRUNED_PER_COMMIT;
    let net = DevNet::new(15, 10);
    let blocks = generate_chain(&net, 700, 1);
    let name = db("prune");
    let store = IndexedDbStore::open(&name).await.unwrap();
    let mut chain = open_chain(&store, net.genesis.clone(), ChainLimits::default()).await.unwrap();
    // Two commits: the index holds a segment spanning where the floor lands.
    for run in [&blocks[..300], &blocks[300..]] {
        let mut batch = WriteBatch::default();
        for b in run {
            batch.merge(chain.insert_block(b, FAR).unwrap().batch.unwrap());
        }
        store.commit(batch).await.unwrap();
    }
    let final_height = chain.final_height();
    assert!(final_height > 650, "final {final_height}");
    // Prune below 650: the first commit drops the lowest MAX_PRUNED_PER_COMMIT, the next the rest.
    store.commit(WriteBatch { prune_below: Some(650), ..WriteBatch::default() }).await.unwrap();
    let floor = 1 + MAX_PRUNED_PER_COMMIT as u64;
    assert_eq!(store.block_count().await.unwrap() as u64, 700 - MAX_PRUNED_PER_COMMIT as u64, "bounded per commit");
    assert!(store.blocks_range(floor - 1, 4, usize::MAX).await.unwrap().is_empty(), "below the floor: nothing");
    assert_eq!(
        store.blocks_range(floor, 3, usize::MAX).await.unwrap(),
        blocks[floor as usize - 1..floor as usize + 2].to_vec()
    );
    store.commit(WriteBatch { prune_below: Some(650), ..WriteBatch::default() }).await.unwrap();
    assert_eq!(store.block_count().await.unwrap(), 51, "heights 650..=700 kept");
    assert!(store.blocks_range(649, 4, usize::MAX).await.unwrap().is_empty());
    assert_eq!(store.blocks_range(650, 100, usize::MAX).await.unwrap(), blocks[649..].to_vec());
    store.close();

    let store = IndexedDbStore::open(&name).await.unwrap();
    let resumed = open_chain(&store, net.genesis.clone(), ChainLimits::default()).await.unwrap();
    assert_eq!(resumed.head(), chain.head());
    assert_eq!(resumed.commitment().root(), chain.commitment().root());
    assert!(store.blocks_range(600, 4, usize::MAX).await.unwrap().is_empty(), "the floor survives a reopen");
    assert_eq!(store.blocks_range(650, 100, usize::MAX).await.unwrap(), blocks[649..].to_vec());
    store.close();
    IndexedDbStore::delete(&name).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_torn_commit_leaves_the_previous_head() {
    let net = DevNet::new(6, 10);
    let blocks = generate_chain(&net, 12, 8);
    let name = db("torn");
    let store = IndexedDbStore::open(&name).await.unwrap();
    let mut chain = open_chain(&store, net.genesis.clone(), ChainLimits::default()).await.unwrap();
    for b in &blocks[..10] {
        store.commit(chain.insert_block(b, FAR).unwrap().batch.unwrap()).await.unwrap();
    }
    let (before_head, before_root, before_replay) = (chain.head(), chain.commitment().root(), chain.replay().clone());
    let mut batch = WriteBatch::default();
    for b in &blocks[10..] {
        batch.merge(chain.insert_block(b, FAR).unwrap().batch.unwrap());
    }
    assert!(!batch.replay_put.is_empty());
    // All requests issued, then aborted; then cut after 0, 1, half and all
    // but the last request (blocks, main index, state, undo, the replay
    // segment, head: each cut leaves some of them issued, none may survive).
    let ops = store.commit_torn(batch.clone(), usize::MAX).await.unwrap();
    assert!(ops > 5, "{ops} requests");
    for cut in [0, 1, ops / 2, ops - 1, ops] {
        assert_eq!(store.commit_torn(batch.clone(), cut).await.unwrap(), cut);
        let reopened = IndexedDbStore::open(&name).await.unwrap();
        let resumed = open_chain(&reopened, net.genesis.clone(), ChainLimits::default()).await.unwrap();
        assert_eq!(resumed.head(), before_head, "cut after {cut} requests");
        assert_eq!(resumed.commitment().root(), before_root);
        assert_eq!(resumed.replay(), &before_replay);
        assert_eq!(reopened.block_count().await.unwrap(), 10);
        reopened.close();
    }
    // The handle that saw the torn commits still commits the whole batch.
    store.commit(batch).await.unwrap();
    let resumed = open_chain(&store, net.genesis.clone(), ChainLimits::default()).await.unwrap();
    assert_eq!(resumed.head(), chain.head());
    store.close();
    let reopened = IndexedDbStore::open(&name).await.unwrap();
    let resumed = open_chain(&reopened, net.genesis.clone(), ChainLimits::default()).await.unwrap();
    assert_eq!(resumed.head(), chain.head());
    assert_eq!(resumed.commitment().root(), chain.commitment().root());
    assert_eq!(resumed.replay(), chain.replay());
    reopened.close();
    IndexedDbStore::delete(&name).await.unwrap();
}

/// The main-chain index is one record per commit; a reorg overrides it from
/// the fork up. After a reorg committed block by block and one merged into a
/// batch, ranges and a reopen read the winning branch, never the old one.
#[wasm_bindgen_test]
async fn a_reorg_reads_back_the_winning_branch_from_the_index() {
    let net = DevNet::new(8, 10);
    let a = generate_chain(&net, 24, 4);
    let name = db("reorg");
    let store = IndexedDbStore::open(&name).await.unwrap();
    let mut chain = open_chain(&store, net.genesis.clone(), ChainLimits::default()).await.unwrap();
    let mut batch = WriteBatch::default();
    for b in &a {
        batch.merge(chain.insert_block(b, FAR).unwrap().batch.unwrap());
    }
    store.commit(batch).await.unwrap();
    // Branch B forks after height 15 (empty blocks at other times, so other
    // ids) and grows past A: 16..=30.
    let mut b_chain =
        open_chain(&protoblock_store::MemoryStore::new(), net.genesis.clone(), ChainLimits::default()).await.unwrap();
    for blk in &a[..15] {
        b_chain.insert_block(blk, FAR).unwrap();
    }
    let mut branch = Vec::new();
    for _ in 16..=30 {
        let ts = b_chain.head().timestamp_ms + 777;
        let p = protoblock_core::producer::produce_block(
            &b_chain,
            std::iter::empty::<(&[u8], &protoblock_core::block::CheckedTx)>(),
            &net.oracle,
            ts,
        )
        .unwrap();
        b_chain.insert_block(&p.bytes, FAR).unwrap();
        branch.push(p.bytes);
    }
    // Up to the reorg (at 25) block by block, the rest merged in one batch.
    for blk in &branch[..10] {
        if let Some(batch) = chain.insert_block(blk, FAR).unwrap().batch {
            store.commit(batch).await.unwrap();
        }
    }
    assert_eq!((chain.head().height, Some(chain.head().id)), (25, b_chain.main_id_at(25)), "B won at 25");
    let mut batch = WriteBatch::default();
    for blk in &branch[10..] {
        batch.merge(chain.insert_block(blk, FAR).unwrap().batch.unwrap());
    }
    store.commit(batch).await.unwrap();
    assert_eq!(chain.head().height, 30);
    let want: Vec<Vec<u8>> = a[..15].iter().chain(&branch).cloned().collect();
    assert_eq!(store.blocks_range(1, 100, usize::MAX).await.unwrap(), want);
    assert_eq!(store.blocks_range(14, 4, usize::MAX).await.unwrap(), want[13..17].to_vec());
    assert_eq!(store.blocks_range(31, 5, usize::MAX).await.unwrap(), Vec::<Vec<u8>>::new());
    store.close();
    let store = IndexedDbStore::open(&name).await.unwrap();
    let resumed = open_chain(&store, net.genesis.clone(), ChainLimits::default()).await.unwrap();
    assert_eq!(resumed.head(), chain.head());
    assert_eq!(resumed.commitment().root(), chain.commitment().root());
    for h in 1..=30 {
        assert_eq!(resumed.main_id_at(h), chain.main_id_at(h), "height {h}");
    }
    assert_eq!(store.blocks_range(20, 100, usize::MAX).await.unwrap(), want[19..].to_vec());
    store.close();
    IndexedDbStore::delete(&name).await.unwrap();
}

/// Version 2 kept one index record per height: such a database reads as it
/// is (segments of one), and commits on top of it mix the two layouts.
#[wasm_bindgen_test]
async fn a_version_2_index_of_one_record_per_height_reads_as_it_is() {
    let net = DevNet::new(9, 10);
    let blocks = generate_chain(&net, 40, 4);
    let name = db("v2-index");
    let store = IndexedDbStore::open(&name).await.unwrap();
    let mut chain = open_chain(&store, net.genesis.clone(), ChainLimits::default()).await.unwrap();
    let mut batch = WriteBatch::default();
    for b in &blocks[..25] {
        batch.merge(chain.insert_block(b, FAR).unwrap().batch.unwrap());
    }
    store.commit(batch).await.unwrap();
    store.flush().await.unwrap();
    store.close();
    // Rewrite the index as version 2 wrote it.
    let raw = rexie::Rexie::builder(&name).version(2).build().await.unwrap();
    let tx = raw.transaction(&["main"], rexie::TransactionMode::ReadWrite).unwrap();
    let main = tx.store("main").unwrap();
    main.clear().await.unwrap();
    for h in 1..=25u64 {
        let id: wasm_bindgen::JsValue = js_sys::Uint8Array::from(&chain.main_id_at(h).unwrap().0[..]).into();
        main.put(&id, Some(&wasm_bindgen::JsValue::from_f64(h as f64))).await.unwrap();
    }
    tx.done().await.unwrap();
    raw.close();

    let store = IndexedDbStore::open(&name).await.unwrap();
    let mut resumed = open_chain(&store, net.genesis.clone(), ChainLimits::default()).await.unwrap();
    assert_eq!(resumed.head(), chain.head());
    assert_eq!(store.blocks_range(3, 10, usize::MAX).await.unwrap(), blocks[2..12].to_vec());
    for b in &blocks[25..] {
        store.commit(resumed.insert_block(b, FAR).unwrap().batch.unwrap()).await.unwrap();
    }
    store.close();
    let store = IndexedDbStore::open(&name).await.unwrap();
    let again = open_chain(&store, net.genesis.clone(), ChainLimits::default()).await.unwrap();
    assert_eq!(again.head().height, 40);
    assert_eq!(store.blocks_range(1, 100, usize::MAX).await.unwrap(), blocks);
    store.close();
    IndexedDbStore::delete(&name).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_version_1_replay_index_is_migrated_to_segments() {
    let net = DevNet::new(5, 10);
    let blocks = generate_chain(&net, 12, 8);
    let name = db("migrate");
    let store = IndexedDbStore::open(&name).await.unwrap();
    let mut chain = open_chain(&store, net.genesis.clone(), ChainLimits::default()).await.unwrap();
    for b in &blocks {
        store.commit(chain.insert_block(b, FAR).unwrap().batch.unwrap()).await.unwrap();
    }
    store.flush().await.unwrap();
    store.close();
    // A version-1 database of the same chain: the same records, but the
    // replay index as one record per id (id -> nonce, big-endian).
    let old = db("migrate-v1");
    let v1_stores = ["blocks", "main", "state", "undo", "replay", "meta"];
    let mut b = rexie::Rexie::builder(&old).version(1);
    for s in v1_stores {
        b = b.add_object_store(rexie::ObjectStore::new(s));
    }
    let v1 = b.build().await.unwrap();
    let mut b = rexie::Rexie::builder(&name).version(2);
    for s in ["blocks", "main", "state", "undo", "replay-segments", "meta", "replay"] {
        b = b.add_object_store(rexie::ObjectStore::new(s));
    }
    let v2 = b.build().await.unwrap();
    let from = v2.transaction(&["blocks", "main", "state", "undo", "meta"], rexie::TransactionMode::ReadOnly).unwrap();
    let mut records = Vec::new();
    for s in ["blocks", "main", "state", "undo", "meta"] {
        let keys = from.store(s).unwrap().get_all_keys(None, None).await.unwrap();
        let values = from.store(s).unwrap().get_all(None, None).await.unwrap();
        records.extend(keys.into_iter().zip(values).map(|(k, v)| (s, k, v)));
    }
    from.done().await.unwrap();
    let to = v1.transaction(&v1_stores, rexie::TransactionMode::ReadWrite).unwrap();
    for (s, k, v) in &records {
        to.store(s).unwrap().put(v, Some(k)).await.unwrap();
    }
    for (id, nonce) in chain.replay().iter() {
        let k: wasm_bindgen::JsValue = js_sys::Uint8Array::from(&id.0[..]).into();
        let v: wasm_bindgen::JsValue = js_sys::Uint8Array::from(&nonce.to_be_bytes()[..]).into();
        to.store("replay").unwrap().put(&v, Some(&k)).await.unwrap();
    }
    to.done().await.unwrap();
    v1.close();
    v2.close();
    IndexedDbStore::delete(&name).await.unwrap();

    // Opening upgrades it to version 2 and moves the ids into a segment.
    let store = IndexedDbStore::open(&old).await.unwrap();
    let resumed = open_chain(&store, net.genesis.clone(), ChainLimits::default()).await.unwrap();
    assert_eq!(resumed.replay(), chain.replay());
    assert!(!chain.replay().is_empty());
    assert_eq!(resumed.head(), chain.head());
    assert_eq!(resumed.commitment().root(), chain.commitment().root());
    // The old records are gone and the chain goes on from the migrated store.
    store.close();
    let store = IndexedDbStore::open(&old).await.unwrap();
    let again = open_chain(&store, net.genesis.clone(), ChainLimits::default()).await.unwrap();
    assert_eq!(again.replay(), chain.replay());
    store.close();
    IndexedDbStore::delete(&old).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_state_delete_is_issued_only_for_a_stored_key() {
    let name = db("deletes");
    let store = IndexedDbStore::open(&name).await.unwrap();
    assert!(store.load().await.unwrap().is_none());
    let head = Some(protoblock_core::HeadRecord {
        genesis: protoblock_core::Hash32::ZERO,
        id: protoblock_core::Hash32::ZERO,
        height: 0,
        final_height: 0,
    });
    let put = |k: &[u8]| (k.to_vec(), Some(b"v".to_vec()));
    let del = |k: &[u8]| (k.to_vec(), None);
    let batch = |state| WriteBatch { state, head, ..WriteBatch::default() };
    store.commit(batch(vec![put(b"a"), put(b"b")])).await.unwrap();
    // "c" comes and goes within the batch: no request for it; "a" is
    // deleted; then the head record (no blocks: no index request).
    let b = batch(vec![put(b"c"), del(b"c"), del(b"a"), del(b"never")]);
    assert_eq!(store.commit_torn(b.clone(), usize::MAX).await.unwrap(), 1 + 1);
    store.commit(b).await.unwrap();
    let keys = |s: protoblock_core::StoredChain| s.state.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    assert_eq!(keys(store.load().await.unwrap().unwrap()), vec![b"b".to_vec()]);
    // The same on a handle that never loaded: every delete is issued.
    store.close();
    let store = IndexedDbStore::open(&name).await.unwrap();
    let b = batch(vec![put(b"d"), del(b"d"), del(b"b")]);
    assert_eq!(store.commit_torn(b.clone(), usize::MAX).await.unwrap(), 2 + 1);
    store.commit(b).await.unwrap();
    assert!(keys(store.load().await.unwrap().unwrap()).is_empty());
    store.close();
    IndexedDbStore::delete(&name).await.unwrap();
}

/// The signature workers' half gives the native verdicts: every generated block
/// passes, and a block with one flipped tx-signature bit, or garbage, fails.
#[wasm_bindgen_test]
fn the_signature_checker_passes_good_blocks_and_fails_tampered_ones() {
    use prost::Message;
    let net = DevNet::new(6, 10);
    let blocks = generate_chain(&net, 12, 8);
    let mut checker = protoblock_wasm::verifier::SignatureChecker::new(&net.genesis.bytes).unwrap();
    assert!(blocks.iter().all(|b| checker.check(b)));
    let mut tampered = protoblock_core::proto::v1::Block::decode(blocks[5].as_slice()).unwrap();
    assert!(!tampered.txs.is_empty());
    tampered.txs[0].signature[7] ^= 0x10;
    let tampered = tampered.encode_to_vec();
    assert!(!checker.check(&tampered));
    assert!(!checker.check(b"not a block"));
    // A range checked in one batch (what the workers run) answers per block
    // as `check` does, for a clean range and for one with bad entries.
    let arr = |bs: &[&[u8]]| bs.iter().map(|b| js_sys::Uint8Array::from(*b)).collect::<js_sys::Array>();
    let all: Vec<&[u8]> = blocks.iter().map(Vec::as_slice).collect();
    assert_eq!(checker.check_run(arr(&all)), vec![1; blocks.len()]);
    let mixed = arr(&[&blocks[1], &tampered, &blocks[2], b"not a block", &blocks[3]]);
    mixed.push(&wasm_bindgen::JsValue::from_str("not bytes"));
    assert_eq!(checker.check_run(mixed), vec![1, 0, 1, 0, 1, 0]);
}

/// The worker pool answers every job it takes and never passes a tampered
/// block. (Whether the workers load here depends on how the test runner lays
/// out the package; when they do not, the pool must answer "unchecked" for the
/// range and then close, so the node checks on its own thread.)
#[wasm_bindgen_test]
async fn the_worker_pool_answers_and_never_passes_a_tampered_block() {
    use futures::{SinkExt, StreamExt};
    use prost::Message;
    let net = DevNet::new(8, 10);
    let blocks = generate_chain(&net, 4, 8);
    let mut tampered = protoblock_core::proto::v1::Block::decode(blocks[2].as_slice()).unwrap();
    tampered.signature[0] ^= 1;
    let job = vec![blocks[1].clone(), tampered.encode_to_vec(), b"garbage".to_vec()];
    let mut v = protoblock_wasm::verifier::start(&net.genesis.bytes, 1).expect("module workers in Chromium");
    v.jobs.send(protoblock_net::VerifyJob { token: 7, blocks: job.clone() }).await.unwrap();
    let done = v.done.next().await.expect("an answer, not a closed pool");
    assert_eq!(done.token, 7);
    assert_eq!(done.blocks, job, "the very bytes come back");
    assert_eq!(done.ok.len(), 3);
    assert!(!done.ok[1] && !done.ok[2], "tampered or garbage passed: {:?}", done.ok);
    if !done.ok[0] {
        // The workers did not load here: the pool must say so by closing.
        assert!(v.done.next().await.is_none());
    }
}

/// A peer may claim any height; above 2^53 the page's `status()` must still
/// answer (serde-wasm-bindgen refused such a u64, so one lying peer made
/// every page's status throw). The claim reaches JS as an approximate number.
#[wasm_bindgen_test]
fn a_claimed_height_above_2_pow_53_reaches_js_as_a_number() {
    use serde::Serialize;
    let claim = 1u64 << 60;
    let peer = protoblock_wasm::view::PeerView {
        peer_id: "p".into(),
        head: claim,
        latency_ms: None,
        addr: None,
        transport: "websocket",
    };
    let js = peer.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).expect("a claimed head serializes");
    let head = js_sys::Reflect::get(&js, &"head".into()).unwrap().as_f64().expect("a number");
    assert_eq!(head, claim as f64);
}

/// A balance reaches JS exact, as a `bigint`, whatever its size (a number is
/// exact only below 2^53; before, serde-wasm-bindgen refused a balance above
/// it, and `wallet()` and `fantasy()` threw).
#[wasm_bindgen_test]
fn a_balance_above_2_pow_53_reaches_js_exact_as_a_bigint() {
    use serde::Serialize;
    use wasm_bindgen::JsCast;
    let balance = u64::MAX - 6;
    let w = protoblock_wasm::view::WalletView { public_key: "k".into(), name: None, balance };
    let js = w.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).expect("a large balance serializes");
    let got = js_sys::Reflect::get(&js, &"balance".into()).unwrap();
    assert!(got.is_bigint(), "a bigint");
    assert_eq!(u64::try_from(js_sys::BigInt::unchecked_from_js(got)).unwrap(), balance);
}

/// The wallet's database: a record that is not a 32-byte seed is an error
/// and stays as it was (before, a seed of the wrong length was silently
/// replaced by a new key); a good one is read back as it is, and a missing
/// one is made once and then kept.
#[wasm_bindgen_test]
async fn a_corrupt_stored_wallet_is_refused_and_kept_never_replaced() {
    use protoblock_wasm::wallet_store::{WALLET_DB, load_or_make, stored_record};
    use rexie::{ObjectStore, Rexie, TransactionMode};
    Rexie::delete(WALLET_DB).await.unwrap();
    let made = load_or_make(None).await.unwrap();
    assert_eq!(
        load_or_make(Some(vec![9; 32])).await.unwrap(),
        made,
        "made once, then kept (a legacy key does not replace it)"
    );
    let db = Rexie::builder(WALLET_DB).version(1).add_object_store(ObjectStore::new("keys")).build().await.unwrap();
    let tx = db.transaction(&["keys"], TransactionMode::ReadWrite).unwrap();
    let short = js_sys::Uint8Array::from(&[1u8; 31][..]);
    tx.store("keys").unwrap().put(&short.into(), Some(&"default".into())).await.unwrap();
    tx.done().await.unwrap();
    db.close();
    let err = load_or_make(None).await.unwrap_err();
    assert_eq!(err.code, "wallet_corrupt", "{}", err.message);
    assert_eq!(stored_record().await.unwrap(), Some(vec![1; 31]), "the record is kept as it was");
    Rexie::delete(WALLET_DB).await.unwrap();
    // A key an older version kept in the chain database moves here.
    assert_eq!(load_or_make(Some(vec![5; 32])).await.unwrap(), [5; 32]);
    Rexie::delete(WALLET_DB).await.unwrap();
}

/// A backup sealed with WebCrypto opens with its passphrase to the same
/// seed, and not with another passphrase or after a byte of it changed.
#[wasm_bindgen_test]
async fn a_sealed_wallet_backup_opens_with_its_passphrase_only() {
    use protoblock_wasm::backup::Backup;
    use protoblock_wasm::wallet_store::{open, seal};
    let seed = [42u8; 32];
    let backup: Backup = seal(&seed, "correct horse battery").await.unwrap();
    let checked = backup.check().unwrap();
    assert_eq!(open(&checked, "correct horse battery").await.unwrap(), seed);
    assert_eq!(open(&checked, "wrong horse battery").await.unwrap_err().code, "bad_passphrase");
    let mut altered = checked.clone();
    altered.sealed[0] ^= 1;
    assert_eq!(open(&altered, "correct horse battery").await.unwrap_err().code, "bad_passphrase");
    let again = seal(&seed, "correct horse battery").await.unwrap();
    assert_ne!(again.sealed, backup.sealed, "a fresh salt and iv every time");
}
