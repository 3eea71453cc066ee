//! The browser's own signature bound, for `cargo xtask bench-web`.
//!
//! The same work as the native chain benchmark's bound: every signature of
//! each block or run of blocks in one batch (as the chain's signature workers
//! check them), or ed25519-dalek's way (`verify_strict` on each header, one
//! `verify_batch` over the txs), on inputs decoded beforehand (untimed). Beside the browser's sync time it
//! shows how much of that sync is signature checking that no other change
//! can remove, and beside the native sync time the ceiling single-threaded
//! wasm has against native code.

use ed25519_dalek::{Signature, VerifyingKey};
use prost::Message;
use protoblock_core::Genesis;
use protoblock_core::crypto::{PublicKey, block_message, parse_signature, tx_message};
use protoblock_proto::v1 as pb;
use wasm_bindgen::prelude::*;

use crate::store::now_ms;

struct SigWork {
    header: (Vec<u8>, Signature, VerifyingKey),
    msgs: Vec<Vec<u8>>,
    sigs: Vec<Signature>,
    keys: Vec<VerifyingKey>,
}

fn extract(genesis: &Genesis, bytes: &[u8]) -> Result<SigWork, String> {
    let block = pb::Block::decode(bytes).map_err(|e| e.to_string())?;
    let header = pb::BlockHeader::decode(block.header.as_slice()).map_err(|e| e.to_string())?;
    let (_, hvk) = PublicKey::parse(&header.producer).map_err(|e| e.to_string())?;
    let hsig = parse_signature(&block.signature).ok_or("bad header signature")?;
    let mut w = SigWork { header: (block_message(&block.header), hsig, hvk), msgs: vec![], sigs: vec![], keys: vec![] };
    for st in &block.txs {
        w.msgs.push(tx_message(&genesis.hash, &st.tx));
        w.sigs.push(parse_signature(&st.signature).ok_or("bad tx signature")?);
        w.keys.push(PublicKey::parse(&st.signer).map_err(|e| e.to_string())?.1);
    }
    Ok(w)
}

/// Milliseconds to verify every signature of `blocks` (encoded blocks, in
/// any order) of the chain with genesis `genesis`; an error if one fails.
/// The txs of `per_batch` consecutive blocks go in one `verify_batch`: 1 is
/// the chain's own block-by-block check, a sync range's length (64) what the
/// signature workers do (`verify_signatures_run`). `dalek` picks
/// `ed25519_dalek::verify_batch` (what the chain used before) instead of the
/// chain's own `crypto::verify_batch`, to compare the two side by side.
#[wasm_bindgen(js_name = _benchSignatureBound)]
pub fn bench_signature_bound(
    genesis: &[u8],
    blocks: js_sys::Array,
    per_batch: u32,
    dalek: bool,
) -> Result<f64, JsError> {
    let genesis = Genesis::from_bytes(genesis).map_err(|e| JsError::new(&e.to_string()))?;
    let work = blocks
        .iter()
        .map(|b| extract(&genesis, &js_sys::Uint8Array::new(&b).to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| JsError::new(&e))?;
    let t = now_ms();
    for run in work.chunks(per_batch.max(1) as usize) {
        let ok = if dalek {
            // As the chain did before its own verifier: `verify_strict` on
            // each header, one `verify_batch` over the run's txs.
            let headers = run.iter().all(|w| w.header.2.verify_strict(&w.header.0, &w.header.1).is_ok());
            let refs: Vec<&[u8]> = run.iter().flat_map(|w| w.msgs.iter().map(|m| m.as_slice())).collect();
            let sigs: Vec<Signature> = run.iter().flat_map(|w| w.sigs.iter().copied()).collect();
            let keys: Vec<VerifyingKey> = run.iter().flat_map(|w| w.keys.iter().copied()).collect();
            headers && ed25519_dalek::verify_batch(&refs, &sigs, &keys).is_ok()
        } else {
            // As `verify_signatures_run` does: headers and txs in one batch.
            let refs: Vec<&[u8]> = run
                .iter()
                .flat_map(|w| std::iter::once(w.header.0.as_slice()).chain(w.msgs.iter().map(|m| m.as_slice())))
                .collect();
            let sigs: Vec<Signature> =
                run.iter().flat_map(|w| std::iter::once(w.header.1).chain(w.sigs.iter().copied())).collect();
            let keys: Vec<VerifyingKey> =
                run.iter().flat_map(|w| std::iter::once(w.header.2).chain(w.keys.iter().copied())).collect();
            protoblock_core::crypto::verify_batch(&refs, &sigs, &keys)
        };
        if !ok {
            return Err(JsError::new("a signature batch failed"));
        }
    }
    Ok(now_ms() - t)
}
