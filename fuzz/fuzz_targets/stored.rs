//! What a node reads back from its store or is handed at start: head
//! records and genesis files (a browser gets its genesis from the relay's
//! bootstrap answer). None may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protoblock_core::Genesis;
use protoblock_store::decode_head;

fuzz_target!(|data: &[u8]| {
    let _ = decode_head(data);
    if let Ok(g) = Genesis::from_bytes(data) {
        let _ = g.initial_state();
        let _ = g.producer_for(u64::MAX);
    }
});
