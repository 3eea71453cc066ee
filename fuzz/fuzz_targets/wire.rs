//! Peers' frames: the status and sync messages through the bounded
//! decoders the codec uses (repeated fields counted before decoding), and
//! the counting helpers themselves. None may panic, and a message that
//! passes holds no more entries than the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protoblock_node::wire::Bounded;
use protoblock_node::{MAX_MEMPOOL_SYNC, MAX_PEERS_SHARED, MAX_RANGE};
use protoblock_proto::repeated;
use protoblock_proto::v1 as pb;

fuzz_target!(|data: &[u8]| {
    let _ = pb::Status::decode_bounded(data);
    if let Ok(r) = pb::SyncRequest::decode_bounded(data)
        && let Some(pb::sync_request::Kind::Mempool(m)) = r.kind
    {
        assert!(m.known_ids.len() <= MAX_MEMPOOL_SYNC);
    }
    if let Ok(r) = pb::SyncResponse::decode_bounded(data) {
        match r.kind {
            Some(pb::sync_response::Kind::Blocks(b)) => assert!(b.blocks.len() <= MAX_RANGE as usize),
            Some(pb::sync_response::Kind::Mempool(m)) => assert!(m.txs.len() <= MAX_MEMPOOL_SYNC),
            Some(pb::sync_response::Kind::Peers(p)) => assert!(p.peers.len() <= MAX_PEERS_SHARED),
            _ => {}
        }
    }
    let _ = repeated::count(data, 1);
    let _ = repeated::occurrences(data, 3);
});
