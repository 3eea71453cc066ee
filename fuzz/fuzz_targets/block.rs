//! Block decoding and validation on arbitrary bytes: the header peek, the
//! cheap header check, the signature checks (alone and in a run), and
//! insertion into a chain that holds a few dev blocks. None may panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use protoblock_core::block::{check_header, peek_block, peek_header, verify_signatures, verify_signatures_run};
use protoblock_core::crypto::KeyCache;
use protoblock_core::{Chain, ChainLimits};
use protoblock_devnet::{DevNet, generate_chain};

fn net() -> &'static (DevNet, Vec<Vec<u8>>) {
    static NET: OnceLock<(DevNet, Vec<Vec<u8>>)> = OnceLock::new();
    NET.get_or_init(|| {
        let net = DevNet::new(1, 4);
        let blocks = generate_chain(&net, 3, 2);
        (net, blocks)
    })
}

fuzz_target!(|data: &[u8]| {
    let (net, blocks) = net();
    let g = &net.genesis;
    if let Ok((_, header, block)) = peek_block(data, &g.params) {
        let _ = check_header(&header, &block, g);
    }
    let _ = peek_header(data, &g.params);
    let mut keys = KeyCache::default();
    let _ = verify_signatures(data, g, &mut keys);
    let _ = verify_signatures_run(&[&blocks[0], data, &blocks[1]], g, &mut keys);
    let (mut chain, _) = Chain::new(g.clone(), ChainLimits::default()).expect("dev genesis");
    for b in &blocks[..2] {
        chain.insert_block(b, u64::MAX / 2).expect("dev block");
    }
    let _ = chain.insert_block(data, u64::MAX / 2);
});
