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
        let (due, rest): (Vec<_>, Vec<_>) = wire.into_iter().partition(|m| m.due <= now);
        wire = rest;
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
        if nodes.iter().filter(|n| n.behaviour == Behaviour::Honest).all(|n| n.chain.head().height >= target) {
            return (now, sent);
        }
        now += 10;
    }
    (now, sent)
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
    let mut rng = SplitMix64(99);
    let mut peers: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    // A ring (so the mesh is connected) plus two random links per node.
    for i in 0..n {
        for j in [(i + 1) % n, rng.below(n as u64) as usize, rng.below(n as u64) as usize] {
            if j != i {
                peers.entry(i).or_default().insert(j);
                peers.entry(j).or_default().insert(i);
            }
        }
    }
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
