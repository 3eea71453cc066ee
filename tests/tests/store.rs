//! Stores under the real chain: commit and reopen, torn commits, and a real
//! crash (SIGKILL of a child process mid-import) on a redb file.

use futures::executor::block_on;
use protoblock_core::ChainLimits;
use protoblock_core::{Chain, ChainParams};
use protoblock_devnet::DevNet;
use protoblock_store::{MemoryStore, RedbStore, Store, open_chain};
use protoblock_tests::{dev_chain, import};

fn params() -> ChainParams {
    ChainParams { finality_depth: 8, ..ChainParams::default() }
}

/// A fresh replay of `blocks` on a memory store: the reference state.
fn reference(net: &DevNet, blocks: &[Vec<u8>]) -> Chain {
    let store = MemoryStore::new();
    let mut chain = block_on(open_chain(&store, net.genesis.clone(), ChainLimits::default())).unwrap();
    block_on(import(&store, &mut chain, blocks, 1)).unwrap();
    chain
}

fn assert_same(a: &Chain, b: &Chain) {
    assert_eq!(a.head(), b.head());
    assert_eq!(a.final_height(), b.final_height());
    assert_eq!(a.state(), b.state());
    assert_eq!(a.commitment().root(), b.commitment().root());
}

fn roundtrip<S: Store>(store: impl Fn() -> S) {
    let (net, blocks) = dev_chain(1, 40, 30, 6, &params());
    {
        let s = store();
        let mut chain = block_on(open_chain(&s, net.genesis.clone(), ChainLimits::default())).unwrap();
        block_on(import(&s, &mut chain, &blocks[..20], 1)).unwrap();
        block_on(import(&s, &mut chain, &blocks, 4)).unwrap();
    }
    let s = store();
    let reopened = block_on(open_chain(&s, net.genesis.clone(), ChainLimits::default())).unwrap();
    let expect = reference(&net, &blocks);
    assert_eq!(reopened.head().height, 30);
    assert_same(&reopened, &expect);
    // Sync serving reads the same bytes back.
    let served = block_on(s.blocks_range(1, 100, usize::MAX)).unwrap();
    assert_eq!(served, blocks);
    let capped = block_on(s.blocks_range(5, 100, 1)).unwrap();
    assert_eq!(capped.len(), 1, "size cap still returns one block");
}

#[test]
fn memory_store_commit_and_reopen() {
    let s = std::sync::Arc::new(MemoryStore::new());
    roundtrip(|| s.clone());
}

#[test]
fn redb_store_commit_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    roundtrip(|| RedbStore::open(&path).unwrap());
}

#[test]
fn redb_refuses_another_genesis() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let a = DevNet::new(1, 3);
    let b = DevNet::new(2, 3);
    {
        let s = RedbStore::open(&path).unwrap();
        block_on(open_chain(&s, a.genesis.clone(), ChainLimits::default())).unwrap();
    }
    let s = RedbStore::open(&path).unwrap();
    let err = block_on(open_chain(&s, b.genesis.clone(), ChainLimits::default())).err().expect("must refuse");
    assert!(err.to_string().contains("another genesis"), "{err}");
}

#[test]
fn torn_commit_at_every_step_leaves_consistent_head() {
    let (net, blocks) = dev_chain(3, 30, 12, 8, &params());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let store = RedbStore::open(&path).unwrap();
    let mut chain = block_on(open_chain(&store, net.genesis.clone(), ChainLimits::default())).unwrap();
    block_on(import(&store, &mut chain, &blocks[..10], 1)).unwrap();
    let before = block_on(store.load()).unwrap().unwrap();
    let update = chain.insert_block(&blocks[10], u64::MAX / 2).unwrap();
    let batch = update.batch.unwrap();
    let steps = RedbStore::op_count(&batch);
    assert!(steps > 5, "batch has several steps: {steps}");
    for n in 0..=steps {
        store.commit_torn(&batch, n).unwrap();
        let after = block_on(store.load()).unwrap().unwrap();
        assert_eq!(after.head, before.head, "torn after {n} steps moved the head");
        assert_eq!(after.state, before.state, "torn after {n} steps changed the state");
        // And it still resumes to exactly block 10.
        let resumed = Chain::restore(net.genesis.clone(), ChainLimits::default(), after).unwrap();
        assert_eq!(resumed.head().height, 10);
    }
    block_on(store.commit(batch)).unwrap();
    drop(store);
    let store = RedbStore::open(&path).unwrap();
    let resumed = block_on(open_chain(&store, net.genesis.clone(), ChainLimits::default())).unwrap();
    assert_same(&resumed, &reference(&net, &blocks[..11]));
}

const CHILD_ENV: &str = "PROTOBLOCK_CRASH_CHILD_DB";
const CRASH_BLOCKS: u64 = 120;

fn crash_chain() -> (DevNet, Vec<Vec<u8>>) {
    dev_chain(7, 60, CRASH_BLOCKS, 10, &params())
}

/// Child half of the crash test: imports the chain into the redb file named
/// by the environment, one commit per block, printing each committed height.
#[test]
#[ignore = "run by redb_survives_sigkill_mid_import as a child process"]
fn crash_child() {
    use std::io::Write;
    let Ok(path) = std::env::var(CHILD_ENV) else { return };
    let (net, blocks) = crash_chain();
    let store = RedbStore::open(&path).unwrap();
    let mut chain = block_on(open_chain(&store, net.genesis.clone(), ChainLimits::default())).unwrap();
    let mut out = std::io::stdout().lock();
    for b in blocks.iter().skip(chain.head().height as usize) {
        if let Some(batch) = chain.insert_block(b, u64::MAX / 2).unwrap().batch {
            block_on(store.commit(batch)).unwrap();
            writeln!(out, "height {}", chain.head().height).unwrap();
            out.flush().unwrap();
        }
    }
    std::thread::sleep(std::time::Duration::from_secs(60));
}

#[test]
fn redb_survives_sigkill_mid_import() {
    use std::io::BufRead;
    let (net, blocks) = crash_chain();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let exe = std::env::current_exe().unwrap();
    let mut last = 0;
    // Each round resumes from the previous crash and is killed, with SIGKILL,
    // right after it reports a commit at or past the target: mid-way through
    // writing the next block.
    for target in [15u64, 40, 70, 100] {
        let mut child = std::process::Command::new(&exe)
            .args(["--exact", "crash_child", "--ignored", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &path)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut reported = 0;
        for line in stdout.lines() {
            let line = line.unwrap();
            if let Some(h) = line.strip_prefix("height ") {
                reported = h.trim().parse().unwrap();
                if reported >= target {
                    break;
                }
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        assert!(reported >= target, "child reached {reported}, wanted {target}");
        let store = RedbStore::open(&path).expect("redb reopens after SIGKILL");
        let chain = block_on(open_chain(&store, net.genesis.clone(), ChainLimits::default()))
            .expect("consistent head after SIGKILL");
        let h = chain.head().height;
        // Nothing reported as committed is lost, and the head is an exact
        // prefix of the reference chain, state and all.
        assert!(h >= reported, "committed height {reported} lost: resumed at {h}");
        assert!(h > last);
        assert_same(&chain, &reference(&net, &blocks[..h as usize]));
        last = h;
    }
    // Finish the import from where the last crash left it.
    let store = RedbStore::open(&path).unwrap();
    let mut chain = block_on(open_chain(&store, net.genesis.clone(), ChainLimits::default())).unwrap();
    block_on(import(&store, &mut chain, &blocks, 1)).unwrap();
    assert_same(&chain, &reference(&net, &blocks));
}

/// Sync commits a run of blocks as one merged, compacted batch. The store must
/// end up exactly as with one commit per block, and compaction must actually
/// drop writes (state keys rewritten within the run, undo records of blocks
/// that turned final within it).
#[test]
fn a_compacted_run_stores_exactly_what_block_by_block_commits_store() {
    let (net, blocks) = dev_chain(2, 40, 130, 6, &params());
    let load = |per_commit: usize| {
        let store = MemoryStore::new();
        let mut chain = block_on(open_chain(&store, net.genesis.clone(), ChainLimits::default())).unwrap();
        block_on(import(&store, &mut chain, &blocks, per_commit)).unwrap();
        let mut stored = block_on(store.load()).unwrap().unwrap();
        stored.state.sort();
        stored.replay.sort();
        stored
    };
    let (one, run) = (load(1), load(64));
    assert_eq!(one.head, run.head);
    assert_eq!(one.state, run.state);
    assert_eq!(one.replay, run.replay);
    let undo = |s: &protoblock_core::StoredChain| s.recent.iter().map(|b| (b.id, b.undo.clone())).collect::<Vec<_>>();
    assert_eq!(undo(&one), undo(&run));
    // `recent` runs from the final block (no undo record) to the head.
    assert_eq!(run.recent.len(), 9);
    assert!(run.recent[1..].iter().all(|b| b.undo.is_some()), "non-final blocks keep their undo records");

    let mut chain = block_on(open_chain(&MemoryStore::new(), net.genesis.clone(), ChainLimits::default())).unwrap();
    let mut merged = protoblock_core::WriteBatch::default();
    for b in &blocks[..64] {
        merged.merge(chain.insert_block(b, u64::MAX / 2).unwrap().batch.unwrap());
    }
    let (state, undo_puts) = (merged.state.len(), merged.put_undo.len());
    merged.compact();
    assert!(merged.state.len() < state, "state writes {state} -> {}", merged.state.len());
    assert_eq!(
        merged.put_undo.len(),
        8,
        "undo puts {undo_puts} -> {}: only the 8 non-final blocks",
        merged.put_undo.len()
    );
}

/// Held main-chain heights of `1..=top`.
fn held<S: Store>(s: &S, top: u64) -> Vec<u64> {
    (1..=top).filter(|h| !block_on(s.blocks_range(*h, 1, usize::MAX)).unwrap().is_empty()).collect()
}

/// Pruning (`WriteBatch::prune_below`): the lowest blocks go, at most
/// `MAX_PRUNED_PER_COMMIT` a commit, their ids and index entries with them;
/// a read from a pruned height answers nothing (never the next blocks it
/// holds), the rest reads back exactly, and the chain reopens from the store.
fn prunes<S: Store>(store: impl Fn() -> S) {
    use protoblock_core::WriteBatch;
    let (net, blocks) = dev_chain(2, 40, 30, 4, &params());
    let s = store();
    let mut chain = block_on(open_chain(&s, net.genesis.clone(), ChainLimits::default())).unwrap();
    block_on(import(&s, &mut chain, &blocks, 5)).unwrap();
    assert_eq!(held(&s, 30), (1..=30).collect::<Vec<_>>());
    let final_height = chain.final_height();
    assert!(final_height >= 21, "final {final_height}");
    let old_id = protoblock_core::hash::sha256(&blocks[4]);
    block_on(s.commit(WriteBatch { prune_below: Some(21), ..WriteBatch::default() })).unwrap();
    assert_eq!(held(&s, 30), (21..=30).collect::<Vec<_>>(), "heights below 21 pruned");
    assert!(block_on(s.blocks_range(3, 10, usize::MAX)).unwrap().is_empty(), "a pruned start answers nothing");
    assert_eq!(block_on(s.blocks_range(21, 100, usize::MAX)).unwrap(), blocks[20..].to_vec(), "the rest exactly");
    assert_eq!(block_on(s.block_by_id(old_id)).unwrap(), None, "a pruned block is gone by id too");
    drop(chain);
    let reopened = block_on(open_chain(&s, net.genesis.clone(), ChainLimits::default())).unwrap();
    assert_same(&reopened, &reference(&net, &blocks));
}

#[test]
fn memory_store_prunes_below_a_height() {
    prunes(MemoryStore::new);
}

#[test]
fn redb_store_prunes_below_a_height() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    prunes(|| RedbStore::open(&path).unwrap());
}
