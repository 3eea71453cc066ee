//! wasm-bindgen tests in headless Chromium: the IndexedDB store under the
//! real chain (commit, reopen, torn commits) and crypto and validation
//! giving the native answers. Run with
//! `cargo test -p protoblock-wasm --target wasm32-unknown-unknown`
//! (`cargo xtask test` sets up the runner and chromedriver).

#![cfg(target_arch = "wasm32")]

mod common;

use protoblock_core::devnet::{DevNet, generate_chain};
use protoblock_core::{ChainParams, WriteBatch};
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
    let params = ChainParams::default();
    let blocks = generate_chain(&net, &params, 60, 8);
    let name = db("reopen");
    let store = IndexedDbStore::open(&name).await.unwrap();
    let mut chain = open_chain(&store, net.genesis.clone(), params.clone()).await.unwrap();
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
    let range = store.blocks_range(10, 5, usize::MAX).await.unwrap();
    assert_eq!(range, blocks[9..14].to_vec());
    let id = chain.main_id_at(33).unwrap();
    assert_eq!(store.block_by_id(id).await.unwrap().as_deref(), Some(&blocks[32][..]));
    store.put_meta("k", b"v".to_vec()).await.unwrap();
    store.close();

    let store = IndexedDbStore::open(&name).await.unwrap();
    let resumed = open_chain(&store, net.genesis.clone(), params.clone()).await.unwrap();
    assert_eq!(resumed.head(), chain.head());
    assert_eq!(resumed.commitment().root(), chain.commitment().root());
    assert_eq!(resumed.state(), chain.state());
    assert_eq!(store.get_meta("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(store.head().await.unwrap().unwrap().height, 60);
    store.close();
    IndexedDbStore::delete(&name).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_torn_commit_leaves_the_previous_head() {
    let net = DevNet::new(6, 10);
    let params = ChainParams::default();
    let blocks = generate_chain(&net, &params, 12, 8);
    let name = db("torn");
    let store = IndexedDbStore::open(&name).await.unwrap();
    let mut chain = open_chain(&store, net.genesis.clone(), params.clone()).await.unwrap();
    for b in &blocks[..10] {
        store.commit(chain.insert_block(b, FAR).unwrap().batch.unwrap()).await.unwrap();
    }
    let (before_head, before_root) = (chain.head(), chain.commitment().root());
    let mut batch = WriteBatch::default();
    for b in &blocks[10..] {
        batch.merge(chain.insert_block(b, FAR).unwrap().batch.unwrap());
    }
    let ops = 2 * batch.put_blocks.len() + batch.state.len() + batch.put_undo.len() + batch.replay_put.len();
    assert!(ops > 10);
    // Interrupt the commit after 0, 1, half and all but the last request.
    for cut in [0, 1, ops / 2, ops - 1, ops + 2] {
        store.commit_torn(batch.clone(), cut).await.unwrap();
        let reopened = IndexedDbStore::open(&name).await.unwrap();
        let resumed = open_chain(&reopened, net.genesis.clone(), params.clone()).await.unwrap();
        assert_eq!(resumed.head(), before_head, "cut after {cut} requests");
        assert_eq!(resumed.commitment().root(), before_root);
        assert_eq!(reopened.block_count().await.unwrap(), 10);
        reopened.close();
    }
    store.commit(batch).await.unwrap();
    let resumed = open_chain(&store, net.genesis.clone(), params.clone()).await.unwrap();
    assert_eq!(resumed.head(), chain.head());
    store.close();
    IndexedDbStore::delete(&name).await.unwrap();
}
