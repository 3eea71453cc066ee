//! Tx decoding and admission on arbitrary bytes: the signed-tx decoder and
//! checks, and the mempool against a dev chain. None may panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use protoblock_core::block::check_tx_bytes;
use protoblock_core::mempool::{Mempool, MempoolConfig};
use protoblock_core::{Chain, ChainLimits};
use protoblock_devnet::DevNet;

fn net() -> &'static DevNet {
    static NET: OnceLock<DevNet> = OnceLock::new();
    NET.get_or_init(|| DevNet::new(2, 4))
}

fuzz_target!(|data: &[u8]| {
    let net = net();
    let _ = check_tx_bytes(data, &net.genesis);
    let (chain, _) = Chain::new(net.genesis.clone(), ChainLimits::default()).expect("dev genesis");
    let mut pool = Mempool::new(MempoolConfig { max_txs: 4, max_bytes: 4096, max_per_signer: 2 });
    // The input as one tx, then as several (split at 0xff bytes).
    let _ = pool.insert(data, &chain, protoblock_devnet::DEV_GENESIS_TIME_MS + 1_000);
    for part in data.split(|b| *b == 0xff).take(16) {
        let _ = pool.insert(part, &chain, protoblock_devnet::DEV_GENESIS_TIME_MS + 1_000);
    }
    assert!(pool.len() <= 4);
    pool.rebuild(&chain, protoblock_devnet::DEV_GENESIS_TIME_MS + 2_000);
});
