//! Cross-platform parity: the same deterministic dev chain built and
//! validated natively and in the browser must give the same bytes, ids,
//! state root and verdicts. Both test targets compute `vectors()` and compare
//! it with `parity-vectors.txt`, which the native test writes when run with
//! PB_BLESS=1 (and otherwise only checks).

use prost::Message;
use protoblock_core::Chain;
use protoblock_core::ChainLimits;
use protoblock_core::hash::sha256;
use protoblock_devnet::{DevNet, generate_chain};
use protoblock_proto::v1 as pb;

pub const VECTORS: &str = include_str!("../parity-vectors.txt");

/// `name=value` lines describing the chain and how tampered blocks fail.
pub fn vectors() -> String {
    let net = DevNet::new(42, 8);
    let blocks = generate_chain(&net, 24, 6);
    let mut all = Vec::new();
    for b in &blocks {
        all.extend_from_slice(&sha256(b).0);
    }
    let (mut chain, _) = Chain::new(net.genesis.clone(), ChainLimits::default()).expect("genesis");
    let mut out = String::new();
    out.push_str(&format!("genesis={}\n", net.genesis.hash));
    out.push_str(&format!("blocks_digest={}\n", sha256(&all)));
    let now = u64::MAX / 2;
    for b in &blocks[..blocks.len() - 1] {
        chain.insert_block(b, now).expect("generated block is valid");
    }
    let last = blocks.last().expect("blocks");
    let mut tampered: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut blk = pb::Block::decode(&last[..]).expect("block");
    blk.signature[0] ^= 1;
    tampered.push(("header_signature", blk.encode_to_vec()));
    let mut blk = pb::Block::decode(&last[..]).expect("block");
    if let Some(t) = blk.txs.first_mut() {
        t.signature[5] ^= 0x10;
    }
    tampered.push(("tx_signature", blk.encode_to_vec()));
    let mut blk = pb::Block::decode(&last[..]).expect("block");
    blk.txs.pop();
    tampered.push(("dropped_tx", blk.encode_to_vec()));
    tampered.push(("garbage", b"\x0a\xff\xff\xff\x0f not a block".to_vec()));
    for (name, bytes) in tampered {
        let verdict = match chain.insert_block(&bytes, now) {
            Ok(_) => "accepted".to_string(),
            Err(e) => e.to_string(),
        };
        out.push_str(&format!("reject_{name}={verdict}\n"));
    }
    chain.insert_block(last, now).expect("the genuine block still goes in");
    out.push_str(&format!("head={} {}\n", chain.head().height, chain.head().id));
    out.push_str(&format!("state_root={}\n", chain.commitment().root()));
    out
}
