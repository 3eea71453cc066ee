//! Serving budgets on the real service: one peer cannot take every store
//! read slot, and a flood of requests is answered "rate limited".

use protoblock_core::{Chain, ChainLimits};
use protoblock_devnet::{DevNet, generate_chain};
use protoblock_node::{Action, Input, NodeService, Now, ServiceConfig};
use protoblock_proto::v1 as pb;

fn server() -> NodeService<u32> {
    let net = DevNet::new(71, 4);
    let blocks = generate_chain(&net, 20, 1);
    let (mut chain, _) = Chain::new(net.genesis.clone(), ChainLimits::default()).unwrap();
    for b in &blocks {
        chain.insert_block(b, u64::MAX / 2).unwrap();
    }
    NodeService::new(0, chain, ServiceConfig::default(), false, Now { mono_ms: 0, unix_ms: 0 })
}

fn range(reply: u64, peer: u32) -> Input<u32> {
    let kind = pb::sync_request::Kind::Blocks(pb::BlockRangeRequest { start_height: 1, count: 16 });
    Input::SyncRequest { peer, reply, request: pb::SyncRequest { kind: Some(kind) } }
}

/// (store reads started, refusals with their reasons)
fn drain(s: &mut NodeService<u32>) -> (usize, Vec<String>) {
    let (mut reads, mut refusals) = (0, Vec::new());
    while let Some(a) = s.poll_action() {
        match a {
            Action::ReadBlocks { .. } => reads += 1,
            Action::Reply { response: pb::SyncResponse { kind: Some(pb::sync_response::Kind::Error(e)) }, .. } => {
                refusals.push(e)
            }
            _ => {}
        }
    }
    (reads, refusals)
}

/// Twenty range requests at once from one peer used to take all sixteen
/// store read slots, and every other peer was answered "busy" until they
/// freed: one peer stopped others from being served.
#[test]
fn one_peer_cannot_take_every_read_slot() {
    let mut s = server();
    let now = Now { mono_ms: 1_000, unix_ms: 0 };
    for i in 0..20 {
        s.handle(now, range(i, 1));
    }
    let (reads, refusals) = drain(&mut s);
    assert_eq!(reads, ServiceConfig::default().max_reads_per_peer, "one peer's reads are capped");
    assert!(refusals.iter().all(|r| r == "busy"), "{refusals:?}");
    s.handle(now, range(100, 2));
    let (reads, refusals) = drain(&mut s);
    assert_eq!((reads, refusals.len()), (1, 0), "another peer is still served: {refusals:?}");
}

/// A peer's requests beyond its token bucket are refused "rate limited";
/// the bucket refills with time.
#[test]
fn a_flood_of_requests_is_rate_limited_and_the_budget_refills() {
    let mut s = server();
    let per_sec = ServiceConfig::default().serve_per_sec;
    let peers = |reply| Input::SyncRequest {
        peer: 3,
        reply,
        request: pb::SyncRequest { kind: Some(pb::sync_request::Kind::Peers(pb::PeersRequest { max: 8 })) },
    };
    let now = Now { mono_ms: 5_000, unix_ms: 0 };
    let mut limited = 0;
    for i in 0..200 {
        s.handle(now, peers(i));
        limited += drain(&mut s).1.iter().filter(|r| *r == "rate limited").count();
    }
    // A burst of twice the rate, at 2 tokens a peers request.
    assert_eq!(limited as u64, 200 - per_sec * 2 / 2);
    let later = Now { mono_ms: 6_000, unix_ms: 0 };
    s.handle(later, peers(1_000));
    assert!(drain(&mut s).1.is_empty(), "a second later it is served again");
}

/// A peer that never reads its answers: each stays with the transport
/// until its timeout. Before, a range read's slot was freed as soon as the
/// store answered, so such a peer had every answer within its request rate
/// held at once (about 300 at 20 a second over a 15 s timeout); now it has
/// `max_reads_per_peer`, the rest are "busy", and each answer written or
/// timed out (`ReplyDone`) frees one.
#[test]
fn a_peer_that_never_reads_holds_only_a_few_answers() {
    let mut s = server();
    let max = ServiceConfig::default().max_reads_per_peer;
    let (mut answered, mut busy) = (Vec::new(), 0);
    for i in 0..40u64 {
        let now = Now { mono_ms: 10_000 + i * 50, unix_ms: 0 };
        s.handle(now, range(i, 7));
        while let Some(a) = s.poll_action() {
            match a {
                Action::ReadBlocks { token, .. } => {
                    s.handle(now, Input::BlocksRead { token, result: Ok(vec![vec![1; 1000]; 16]) })
                }
                Action::Reply {
                    reply,
                    response: pb::SyncResponse { kind: Some(pb::sync_response::Kind::Blocks(_)) },
                } => answered.push(reply),
                Action::Reply {
                    response: pb::SyncResponse { kind: Some(pb::sync_response::Kind::Error(e)) }, ..
                } => {
                    assert_eq!(e, "busy");
                    busy += 1;
                }
                _ => {}
            }
        }
    }
    assert_eq!(answered.len(), max, "answers held for a peer that reads none");
    assert_eq!(busy, 40 - max);
    assert_eq!(s.status().answering_bytes, max * 16 * 1000);
    // The transport gives up on one (its timeout): the peer may have another.
    let now = Now { mono_ms: 30_000, unix_ms: 0 };
    s.handle(now, Input::ReplyDone { reply: answered[0] });
    s.handle(now, range(100, 7));
    assert_eq!(drain(&mut s).0, 1, "one more read once one answer is done");
    // And a peer's answers go with it.
    s.handle(now, Input::Disconnected { peer: 7 });
    assert_eq!(s.status().answering_bytes, 0);
}
