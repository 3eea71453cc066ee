//! Shared helpers for the cross-crate tests and benchmarks.

pub mod attack;
pub mod crowd;
pub mod relay_process;

use protoblock_core::{Chain, ChainParams, WriteBatch};
use protoblock_devnet::{DevNet, generate_chain};
use protoblock_store::{Store, StoreError};

/// Wall-clock stand-in for generated chains: after the last generated block.
pub const FAR_FUTURE_MS: u64 = u64::MAX / 2;

/// A deterministic dev chain: the network and its encoded blocks.
pub fn dev_chain(
    seed: u64,
    users: usize,
    blocks: u64,
    txs_per_block: usize,
    params: &ChainParams,
) -> (DevNet, Vec<Vec<u8>>) {
    let net = DevNet::with_params(seed, users, params.clone());
    let chain = generate_chain(&net, blocks, txs_per_block);
    (net, chain)
}

/// Validates and commits `blocks` in order, `per_commit` blocks per store
/// transaction (1 = one transaction per block). `blocks[i]` must be the block
/// at height `i + 1`; those at or below the head are skipped, so an import can
/// resume after a restart.
pub async fn import<S: Store>(
    store: &S,
    chain: &mut Chain,
    blocks: &[Vec<u8>],
    per_commit: usize,
) -> Result<(), String> {
    let mut pending = WriteBatch::default();
    let mut n = 0;
    for b in blocks.iter().skip(chain.head().height as usize) {
        let update = chain.insert_block(b, FAR_FUTURE_MS).map_err(|e| e.to_string())?;
        if let Some(batch) = update.batch {
            pending.merge(batch);
            n += 1;
        }
        if n >= per_commit.max(1) {
            store.commit(std::mem::take(&mut pending)).await.map_err(|e: StoreError| e.to_string())?;
            n = 0;
        }
    }
    if n > 0 {
        store.commit(pending).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}
