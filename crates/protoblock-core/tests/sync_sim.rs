//! Deterministic simulation of sync: many nodes in one process, virtual
//! time, simulated latency, a silent peer and a lying peer. Nothing here
//! reads a clock or a socket; every run is the same run.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use protoblock_core::devnet::{DevNet, SplitMix64, generate_chain};
use protoblock_core::sync::{RangeRequest, SyncConfig, SyncPlanner};
use protoblock_core::{Chain, ChainParams};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Honest,
    /// Accepts requests and never answers.
    Silent,
    /// Answers with blocks whose signatures were tampered with.
    Liar,
}

struct SimNode {
    chain: Chain,
    /// Blocks by height on the main chain (what it serves).
    served: Vec<Vec<u8>>,
    planner: SyncPlanner<usize>,
    peers: Vec<usize>,
    banned: BTreeSet<usize>,
    behaviour: Behaviour,
}

struct InFlight {
    due: u64,
    to: usize,
    from: usize,
    req: RangeRequest<usize>,
    blocks: Vec<Vec<u8>>,
}

fn params() -> ChainParams {
    ChainParams { finality_depth: 16, ..ChainParams::default() }
}

fn cfg() -> SyncConfig {
    SyncConfig { range_len: 16, max_in_flight: 6, per_peer_in_flight: 2, timeout_ms: 2_000, max_buffered: 256 }
}

fn tamper(block: &[u8]) -> Vec<u8> {
    // A copy whose header signature no longer verifies: same height, bad block.
    rebody(block, |b| b.signature[0] ^= 1)
}

/// Runs the network until every honest node reaches `target` or time runs out.
/// Returns the virtual time taken and the number of requests sent.
fn run(nodes: &mut [SimNode], target: u64, seed: u64, limit_ms: u64) -> (u64, usize) {
    let mut rng = SplitMix64(seed);
    let mut wire: Vec<InFlight> = Vec::new();
    let mut sent = 0;
    let mut now = 0u64;
    while now < limit_ms {
        // Status: each node learns its peers' heads (the handshake's job).
        for i in 0..nodes.len() {
            for &p in &nodes[i].peers.clone() {
                if nodes[i].banned.contains(&p) {
                    continue;
                }
                let head = if nodes[p].behaviour == Behaviour::Honest { nodes[p].chain.head().height } else { target };
                nodes[i].planner.peer_head(p, head);
            }
        }
        sent += sync_step(nodes, &mut wire, now, &mut rng);
        if nodes.iter().filter(|n| n.behaviour == Behaviour::Honest).all(|n| n.chain.head().height >= target) {
            return (now, sent);
        }
        now += 10;
    }
    (now, sent)
}

/// One step of sync on every node: plan and send requests (answered after a
/// simulated latency, as each server's behaviour dictates), deliver the
/// responses that are due, and hand ready blocks to each chain in order.
/// Returns how many requests were sent.
fn sync_step(nodes: &mut [SimNode], wire: &mut Vec<InFlight>, now: u64, rng: &mut SplitMix64) -> usize {
    let mut sent = 0;
    // Requests.
    for i in 0..nodes.len() {
        let head = nodes[i].chain.head().height;
        for req in nodes[i].planner.poll_requests(head, now) {
            sent += 1;
            let server = &nodes[req.peer];
            let latency = 20 + rng.below(80);
            let blocks: Vec<Vec<u8>> = match server.behaviour {
                Behaviour::Silent => continue,
                Behaviour::Honest => {
                    server.served.iter().skip(req.start as usize - 1).take(req.count as usize).cloned().collect()
                }
                Behaviour::Liar => server
                    .served
                    .iter()
                    .skip(req.start as usize - 1)
                    .take(req.count as usize)
                    .map(|b| tamper(b))
                    .collect(),
            };
            wire.push(InFlight { due: now + latency, to: i, from: req.peer, req, blocks });
        }
    }
    // Deliveries due now.
    let (due, rest): (Vec<_>, Vec<_>) = std::mem::take(wire).into_iter().partition(|m| m.due <= now);
    *wire = rest;
    for m in due {
        let node = &mut nodes[m.to];
        if node.banned.contains(&m.from) {
            continue;
        }
        if node.planner.on_response(m.req.id, &m.from, m.blocks).is_err() {
            node.banned.insert(m.from);
            node.planner.peer_gone(&m.from);
        }
    }
    // Hand ready blocks to each chain, in order.
    for node in nodes.iter_mut() {
        let head = node.chain.head().height;
        for (from, bytes) in node.planner.take_ready(head) {
            match node.chain.insert_block(&bytes, u64::MAX / 2) {
                Ok(u) => {
                    if u.batch.is_some() {
                        node.served.push(bytes);
                    }
                }
                Err(_) => {
                    // Proven bad data: ban, and drop what else it sent.
                    node.banned.insert(from);
                    node.planner.on_invalid(&from);
                    node.planner.peer_gone(&from);
                    break;
                }
            }
        }
    }
    sent
}

/// A ring (so the mesh is connected) plus `extra` random links per node.
fn mesh(n: usize, extra: usize, rng: &mut SplitMix64) -> BTreeMap<usize, BTreeSet<usize>> {
    let mut links: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    for i in 0..n {
        let mut targets = vec![(i + 1) % n];
        targets.extend((0..extra).map(|_| rng.below(n as u64) as usize));
        for j in targets {
            if j != i {
                links.entry(i).or_default().insert(j);
                links.entry(j).or_default().insert(i);
            }
        }
    }
    links
}

fn node(net: &DevNet, behaviour: Behaviour, served: Vec<Vec<u8>>, peers: Vec<usize>) -> SimNode {
    let mut chain = new_chain(&net.genesis, &params());
    for b in &served {
        chain.insert_block(b, u64::MAX / 2).unwrap();
    }
    SimNode { chain, served, planner: SyncPlanner::new(cfg(), params()), peers, banned: BTreeSet::new(), behaviour }
}

#[test]
fn fresh_node_syncs_from_several_peers_despite_a_silent_and_a_lying_peer() {
    let net = DevNet::new(11, 30);
    let blocks = generate_chain(&net, &params(), 200, 4);
    let reference = replay(&net.genesis, &params(), &blocks);
    let mut nodes = vec![
        node(&net, Behaviour::Honest, Vec::new(), vec![1, 2, 3, 4]),
        node(&net, Behaviour::Honest, blocks.clone(), vec![]),
        node(&net, Behaviour::Honest, blocks[..150].to_vec(), vec![]),
        node(&net, Behaviour::Silent, blocks.clone(), vec![]),
        node(&net, Behaviour::Liar, blocks.clone(), vec![]),
    ];
    let (t, sent) = run(&mut nodes, 200, 1, 120_000);
    let n = &nodes[0];
    assert_eq!(n.chain.head().height, 200, "synced by t={t} ms");
    assert_same_chain(&n.chain, &reference, "synced node");
    assert!(n.banned.contains(&4), "the liar is banned");
    assert!(!n.banned.contains(&1) && !n.banned.contains(&2), "honest peers are not banned");
    assert!(n.planner.strikes(&3) > 0, "the silent peer's requests timed out");
    // Both honest peers served ranges: sync used several peers at once.
    assert!(sent >= 200 / 16, "requests sent: {sent}");
    assert_eq!(n.planner.in_flight(), 0);
}

#[test]
fn many_nodes_converge_over_a_sparse_random_mesh() {
    let net = DevNet::new(12, 20);
    let blocks = generate_chain(&net, &params(), 120, 3);
    let reference = replay(&net.genesis, &params(), &blocks);
    let n = 16;
    let peers = mesh(n, 2, &mut SplitMix64(99));
    let mut nodes: Vec<SimNode> = (0..n)
        .map(|i| {
            let served = if i == 0 { blocks.clone() } else { Vec::new() };
            node(&net, Behaviour::Honest, served, peers[&i].iter().copied().collect())
        })
        .collect();
    let (t, _) = run(&mut nodes, 120, 2, 300_000);
    for (i, node) in nodes.iter().enumerate() {
        assert_eq!(node.chain.head().height, 120, "node {i} at t={t}");
        assert_same_chain(&node.chain, &reference, &format!("node {i}"));
    }
}

#[test]
fn runs_are_deterministic() {
    let net = DevNet::new(13, 10);
    let blocks = generate_chain(&net, &params(), 60, 2);
    let mk = || {
        vec![
            node(&net, Behaviour::Honest, Vec::new(), vec![1, 2]),
            node(&net, Behaviour::Honest, blocks.clone(), vec![]),
            node(&net, Behaviour::Silent, blocks.clone(), vec![]),
        ]
    };
    let (mut a, mut b) = (mk(), mk());
    assert_eq!(run(&mut a, 60, 5, 60_000), run(&mut b, 60, 5, 60_000));
}

/// Gossip and sync together, in virtual time: the producer keeps extending
/// the chain and floods each new block over the mesh; a node forwards a block
/// only after its chain accepted it (validate before forward), buffers blocks
/// ahead of its head in the planner, and sync fills the gaps. One peer
/// gossips a tampered block and must be cut off by everyone who receives it.
#[test]
fn gossip_and_sync_converge_while_the_chain_grows() {
    let net = DevNet::new(14, 20);
    let blocks = generate_chain(&net, &params(), 160, 3);
    let reference = replay(&net.genesis, &params(), &blocks);
    let n = 10;
    let mut rng = SplitMix64(7);
    let links = mesh(n, 1, &mut rng);
    // Node 0 produces (starts with 100 blocks); node 9 gossips a tampered copy.
    let mut nodes: Vec<SimNode> = (0..n)
        .map(|i| {
            let served = if i == 0 { blocks[..100].to_vec() } else { Vec::new() };
            node(&net, Behaviour::Honest, served, links[&i].iter().copied().collect())
        })
        .collect();
    struct Gossip {
        due: u64,
        to: usize,
        from: usize,
        bytes: Vec<u8>,
    }
    let mut wire: Vec<Gossip> = Vec::new();
    let mut sync_wire: Vec<InFlight> = Vec::new();
    let (mut buffered, mut duplicates, mut forwarded) = (0usize, 0usize, 0usize);
    let mut now = 0u64;
    let mut next_block = 100usize;
    while now < 200_000 {
        // Production: a block every 300 ms, flooded to the producer's peers.
        if now.is_multiple_of(300) && next_block < blocks.len() {
            let b = blocks[next_block].clone();
            nodes[0].chain.insert_block(&b, u64::MAX / 2).unwrap();
            nodes[0].served.push(b.clone());
            for &p in &nodes[0].peers {
                wire.push(Gossip { due: now + 5 + rng.below(40), to: p, from: 0, bytes: b.clone() });
            }
            // The liar sends a tampered copy of the same block to its peers.
            for &p in &nodes[9].peers.clone() {
                wire.push(Gossip { due: now + 1, to: p, from: 9, bytes: tamper(&b) });
            }
            next_block += 1;
        }
        // Gossip deliveries.
        let (due, rest): (Vec<_>, Vec<_>) = wire.into_iter().partition(|g| g.due <= now);
        wire = rest;
        for g in due {
            let node = &mut nodes[g.to];
            if node.banned.contains(&g.from) {
                continue;
            }
            let (id, header, _) = protoblock_core::block::peek_block(&g.bytes, &params()).unwrap();
            let head = node.chain.head().height;
            node.planner.peer_head(g.from, header.height);
            if node.chain.is_known(&id) && header.height <= head {
                duplicates += 1;
                continue;
            }
            if header.height > head + 1 {
                // Cannot validate yet: hold it, do not forward it.
                if node.planner.buffer_gossip(g.from, header.height, g.bytes, head) {
                    buffered += 1;
                }
                continue;
            }
            match node.chain.insert_block(&g.bytes, u64::MAX / 2) {
                Ok(u) if u.batch.is_some() => {
                    node.served.push(g.bytes.clone());
                    for &p in &node.peers.clone() {
                        if p != g.from {
                            forwarded += 1;
                            wire.push(Gossip {
                                due: now + 5 + rng.below(40),
                                to: p,
                                from: g.to,
                                bytes: g.bytes.clone(),
                            });
                        }
                    }
                }
                Ok(_) => duplicates += 1,
                Err(e) if e.is_peer_fault() => {
                    node.banned.insert(g.from);
                    node.planner.peer_gone(&g.from);
                }
                Err(_) => {}
            }
        }
        sync_step(&mut nodes, &mut sync_wire, now, &mut rng);
        if next_block == blocks.len() && nodes.iter().all(|nd| nd.chain.head().height == blocks.len() as u64) {
            break;
        }
        now += 1;
    }
    for (i, nd) in nodes.iter().enumerate() {
        assert_eq!(nd.chain.head().height, blocks.len() as u64, "node {i} at t={now}");
        assert_same_chain(&nd.chain, &reference, &format!("node {i}"));
    }
    // Every peer of the liar that met a tampered copy before the genuine
    // block cut it off; the producer, which always has the genuine block
    // first, just ignores the copy (same header id, already known).
    for &p in nodes[9].peers.iter().filter(|p| **p != 0) {
        assert!(nodes[p].banned.contains(&9), "node {p} cut off the liar");
    }
    assert!(buffered > 0, "blocks ahead of the head were buffered while syncing");
    assert!(forwarded > 0 && duplicates > 0, "gossip flowed ({forwarded} forwards, {duplicates} duplicates)");
}
