//! Full validation and commit of a generated chain, beside its bound.
//!
//! `cargo bench -p protoblock-tests --bench chain` (or `cargo xtask bench`).
//! Sizes from PB_BENCH_BLOCKS (default 2000) and PB_BENCH_TXS (default 50).
//!
//! The bound is the signature work alone, as the chain checks a block: the
//! header's signature, then one batch over its txs (`crypto::verify_one` and
//! `crypto::verify_batch`), on pre-decoded inputs; a row beside it does the
//! same with ed25519-dalek (`verify_strict`, `verify_batch`), as the chain did
//! before it had its own batch verifier.
//! Full validation does that plus decoding, hashing, merkle roots, the state
//! transition, the state root and the store commit. All rows run in the same
//! process, interleaved over several rounds; the table shows medians.

// The relay's allocator (see relay-server/src/main.rs), so this measures what it runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::{Duration, Instant};

use ed25519_dalek::{Signature, VerifyingKey};
use futures::executor::block_on;
use prost::Message;
use protoblock_core::ChainLimits;
use protoblock_core::crypto::{PublicKey, block_message, parse_signature, tx_message};
use protoblock_core::{ChainParams, Genesis};
use protoblock_proto::v1 as pb;
use protoblock_store::{MemoryStore, RedbStore, open_chain};
use protoblock_tests::{dev_chain, import};

struct SigWork {
    header: (Vec<u8>, Signature, VerifyingKey),
    msgs: Vec<Vec<u8>>,
    sigs: Vec<Signature>,
    keys: Vec<VerifyingKey>,
}

fn extract(genesis: &Genesis, blocks: &[Vec<u8>]) -> Vec<SigWork> {
    blocks
        .iter()
        .map(|b| {
            let block = pb::Block::decode(b.as_slice()).unwrap();
            let header = pb::BlockHeader::decode(block.header.as_slice()).unwrap();
            let (_, hvk) = PublicKey::parse(&header.producer).unwrap();
            let hsig = parse_signature(&block.signature).unwrap();
            let mut w =
                SigWork { header: (block_message(&block.header), hsig, hvk), msgs: vec![], sigs: vec![], keys: vec![] };
            for st in &block.txs {
                w.msgs.push(tx_message(&genesis.hash, &st.tx));
                w.sigs.push(parse_signature(&st.signature).unwrap());
                w.keys.push(PublicKey::parse(&st.signer).unwrap().1);
            }
            w
        })
        .collect()
}

/// The signatures alone, block by block as the chain checks them: with the
/// chain's own batch verifier, or (`dalek`) with ed25519-dalek's, which the
/// chain used before (the row beside it shows what changing it gained).
fn bound(work: &[SigWork], dalek: bool) -> Duration {
    let t = Instant::now();
    for w in work {
        let refs: Vec<&[u8]> = w.msgs.iter().map(|m| m.as_slice()).collect();
        if dalek {
            w.header.2.verify_strict(&w.header.0, &w.header.1).unwrap();
            ed25519_dalek::verify_batch(&refs, &w.sigs, &w.keys).unwrap();
        } else {
            assert!(protoblock_core::crypto::verify_one(&w.header.0, &w.header.1, &w.header.2));
            assert!(protoblock_core::crypto::verify_batch(&refs, &w.sigs, &w.keys));
        }
    }
    t.elapsed()
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let env = |k: &str, d: u64| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let n_blocks = env("PB_BENCH_BLOCKS", 2000);
    let n_txs = env("PB_BENCH_TXS", 50) as usize;
    let rounds = env("PB_BENCH_ROUNDS", 3) as usize;
    let params = ChainParams::default();
    let t = Instant::now();
    let (net, blocks) = dev_chain(42, 2000, n_blocks, n_txs, &params);
    let txs: usize = blocks.iter().map(|b| pb::Block::decode(b.as_slice()).unwrap().txs.len()).sum();
    let bytes: usize = blocks.iter().map(|b| b.len()).sum();
    println!(
        "chain: {n_blocks} blocks, {txs} txs, {:.1} MiB, generated in {:.1?}",
        bytes as f64 / 1048576.0,
        t.elapsed()
    );
    let work = extract(&net.genesis, &blocks);

    let dir = tempfile::tempdir().unwrap();
    let mut rows: Vec<(&str, Vec<Duration>)> = vec![
        ("bound: signatures only", vec![]),
        ("full validation + MemoryStore", vec![]),
        ("full validation + RedbStore, 1 block/commit", vec![]),
        ("full validation + RedbStore, 64 blocks/commit", vec![]),
        ("signatures only, ed25519-dalek's verify_batch", vec![]),
    ];
    for r in 0..rounds {
        rows[0].1.push(bound(&work, false));
        rows[4].1.push(bound(&work, true));
        {
            let store = MemoryStore::new();
            let mut chain = block_on(open_chain(&store, net.genesis.clone(), ChainLimits::default())).unwrap();
            let t = Instant::now();
            block_on(import(&store, &mut chain, &blocks, 1)).unwrap();
            rows[1].1.push(t.elapsed());
            assert_eq!(chain.head().height, n_blocks);
        }
        if std::env::var_os("PB_BENCH_SKIP_REDB").is_some() {
            continue;
        }
        for (row, per) in [(2usize, 1usize), (3, 64)] {
            let store = RedbStore::open(dir.path().join(format!("r{r}-{per}.redb"))).unwrap();
            let mut chain = block_on(open_chain(&store, net.genesis.clone(), ChainLimits::default())).unwrap();
            let t = Instant::now();
            block_on(import(&store, &mut chain, &blocks, per)).unwrap();
            rows[row].1.push(t.elapsed());
            assert_eq!(chain.head().height, n_blocks);
        }
    }
    breakdown(&net.genesis, &blocks);
    let b = median(&mut rows[0].1.clone());
    // Each round runs the bound and then the full rows back to back, so a
    // round's own ratio cancels drift between rounds (frequency, neighbours);
    // the last column is the median of those.
    let round_ratio = |times: &[Duration]| {
        let mut r: Vec<f64> =
            rows[0].1.iter().zip(times).map(|(bound, run)| bound.as_secs_f64() / run.as_secs_f64()).collect();
        r.sort_by(f64::total_cmp);
        r[r.len() / 2]
    };
    println!();
    println!(
        "| {:<46} | {:>10} | {:>10} | {:>14} | {:>22} |",
        "run (median of rounds)", "blocks/s", "txs/s", "ratio to bound", "median of round ratios"
    );
    println!("|{:-<48}|{:->12}|{:->12}|{:->16}|{:->24}|", "", "", "", "", "");
    for (name, times) in rows.iter().filter(|(_, t)| !t.is_empty()) {
        let m = median(&mut times.clone());
        let s = m.as_secs_f64();
        println!(
            "| {:<46} | {:>10.0} | {:>10.0} | {:>14.2} | {:>22.3} |",
            name,
            n_blocks as f64 / s,
            txs as f64 / s,
            b.as_secs_f64() / s,
            round_ratio(times)
        );
    }
    println!(
        "\n(ratio = bound time / run time; target >= 0.80 for MemoryStore; {rounds} rounds, {} cores)",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
}

/// Where validation time goes: the stateless checks (decode, keys, header
/// signature, merkle root, batched tx signatures), the state transition and
/// root, and applying to the chain plus the store commit, timed separately
/// over one pass.
fn breakdown(genesis: &Genesis, blocks: &[Vec<u8>]) {
    use protoblock_core::block::{apply_block, check_block};
    use protoblock_core::crypto::KeyCache;
    use protoblock_store::Store;
    let store = MemoryStore::new();
    let mut chain = block_on(open_chain(&store, genesis.clone(), ChainLimits::default())).unwrap();
    let mut keys = KeyCache::default();
    let (mut check, mut apply, mut rest) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for b in blocks {
        let t0 = Instant::now();
        let checked = check_block(b, &chain.head(), genesis, u64::MAX / 2, &mut keys).unwrap();
        let t1 = Instant::now();
        let applied = apply_block(&checked, chain.state(), chain.commitment(), chain.replay(), genesis).unwrap();
        let t2 = Instant::now();
        drop(applied);
        let t3 = Instant::now();
        let u = chain.insert_block(b, u64::MAX / 2).unwrap();
        block_on(store.commit(u.batch.unwrap())).unwrap();
        let t4 = Instant::now();
        check += t1 - t0;
        apply += t2 - t1;
        rest += t4 - t3;
    }
    // The stateless checks again, back to back with nothing between them:
    // against `check` above this shows what interleaving with the state
    // transition costs the signature code (caches), apart from the work itself.
    let fresh = block_on(open_chain(&MemoryStore::new(), genesis.clone(), ChainLimits::default())).unwrap();
    let mut parent = fresh.head();
    let mut keys = KeyCache::default();
    let t = Instant::now();
    for b in blocks {
        parent = check_block(b, &parent, genesis, u64::MAX / 2, &mut keys).unwrap().meta();
    }
    let alone = t.elapsed();
    let per = |d: Duration| d.as_secs_f64() * 1e6 / blocks.len() as f64;
    println!(
        "\nper block: stateless checks {:.0} µs ({:.0} µs back to back), state transition + root {:.0} µs; full insert + MemoryStore commit {:.0} µs",
        per(check),
        per(alone),
        per(apply),
        per(rest)
    );
}
