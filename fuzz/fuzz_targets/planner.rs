//! The sync planner driven by an arbitrary sequence of events (heads
//! claimed, polls at arbitrary times, responses of arbitrary blocks, gossip,
//! failures, peers leaving). It must never panic, and its bounds must hold
//! after every step: requests in flight, blocks and bytes buffered.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protoblock_core::ChainParams;
use protoblock_core::sync::{SyncConfig, SyncPlanner};

fuzz_target!(|data: &[u8]| {
    let cfg = SyncConfig {
        range_len: 8,
        max_in_flight: 4,
        per_peer_in_flight: 2,
        timeout_ms: 100,
        max_buffered: 32,
        max_buffered_bytes: 4096,
    };
    let mut p: SyncPlanner<u8, Vec<u8>> = SyncPlanner::new(cfg.clone(), ChainParams::default());
    let (mut now, mut head, mut ids) = (0u64, 0u64, Vec::new());
    let mut it = data.chunks(4);
    while let Some(op) = it.next() {
        let arg = |i: usize| op.get(i).copied().unwrap_or(0);
        let peer = arg(1) % 8;
        match arg(0) % 8 {
            0 => p.peer_head(peer, u64::from(arg(2)) << (arg(3) % 64)),
            1 => {
                now += u64::from(arg(2)) * 10;
                for r in p.poll_requests(head, now) {
                    assert!(r.count <= cfg.range_len && r.start > head);
                    ids.push((r.id, r.peer));
                }
            }
            2 if !ids.is_empty() => {
                let (id, asked) = ids.swap_remove(usize::from(arg(2)) % ids.len());
                let from = if arg(3) & 1 == 0 { asked } else { peer };
                let blocks: Vec<Vec<u8>> = it.next().unwrap_or(&[]).iter().map(|b| vec![*b; usize::from(*b)]).collect();
                let _ = p.on_response(id, &from, blocks);
            }
            3 if !ids.is_empty() => p.on_failure(ids.swap_remove(usize::from(arg(2)) % ids.len()).0),
            4 => {
                let _ = p.buffer_gossip(peer, head + u64::from(arg(2)), vec![0; usize::from(arg(3)) * 8], head);
            }
            5 => head += p.take_ready(head).len() as u64,
            6 => p.peer_gone(&peer),
            _ => p.on_invalid(&peer),
        }
        assert!(p.in_flight() <= cfg.max_in_flight);
        assert!(p.buffered() <= cfg.max_buffered);
        assert!(p.buffered_bytes() <= cfg.max_buffered_bytes);
    }
});
