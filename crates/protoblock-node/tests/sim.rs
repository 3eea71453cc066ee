//! Many nodes in one process, in virtual time, each running the real
//! [`NodeService`] over a real `MemoryStore`: the network here only moves
//! inputs and actions between them (latency from a seeded RNG, a flood for
//! gossip with validate-before-forward, request/reply routing, store
//! latency). Nothing reads a clock or a socket; every run is the same run.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use futures::executor::block_on;
use protoblock_core::ChainLimits;
use protoblock_core::block::verify_signatures;
use protoblock_core::crypto::KeyCache;
use protoblock_core::hash::sha256;
use protoblock_core::producer::produce_block;
use protoblock_core::sync::SyncConfig;
use protoblock_core::{Chain, ChainParams, Hash32};
use protoblock_devnet::{DEV_GENESIS_TIME_MS, DevNet, SplitMix64, generate_chain};
use protoblock_node::{
    Action, Event, Input, NodeService, Now, ReplyId, RequestId, ServiceConfig, SubmitError, Topic, Verdict,
};
use protoblock_proto::v1 as pb;
use protoblock_store::{MemoryStore, Store};

type Peer = u32;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Honest,
    /// Takes sync requests and never answers them (the transport times out).
    Silent,
    /// Serves blocks with a tampered signature (the service's test hook).
    Liar,
    /// Claims a head 1,000 blocks above its own in every status and serves
    /// none of it (block requests time out).
    Claimer,
    /// Honest code on a branch of its own, forked below the final block.
    Forker,
    /// Honest code whose gossip (sent by the test) is valid txs with nonces
    /// 59 minutes ahead.
    Spammer,
    /// Never reads the answers it asks for: each one sits in the server's
    /// transport until the 15 s request timeout (the test also floods range
    /// requests from it).
    SlowReader,
}

/// The transport's request timeout, after which an unread answer is dropped.
const ANSWER_TIMEOUT_MS: u64 = 15_000;

/// How far a `Claimer` lies.
const CLAIM: u64 = 1_000;

enum Owed {
    Status,
    Sync(RequestId),
}

struct SimNode {
    service: NodeService<Peer>,
    store: MemoryStore,
    kind: Kind,
    verifier: bool,
    keys: KeyCache,
    links: BTreeSet<Peer>,
    /// Gossip ids seen (gossipsub's duplicate cache) and messages awaiting our verdict.
    seen: HashSet<Vec<u8>>,
    awaiting_verdict: HashMap<Vec<u8>, (Topic, Vec<u8>)>,
    owed: HashMap<ReplyId, (Peer, Owed)>,
    next_reply: ReplyId,
    commits: usize,
    /// The n-th commit (from 1) fails, as a full disk would.
    fail_commit: Option<usize>,
    timer_wakeups: u64,
}

struct Sim {
    nodes: Vec<SimNode>,
    queue: BTreeMap<(u64, u64), (Peer, Input<Peer>)>,
    seq: u64,
    now: u64,
    rng: SplitMix64,
    connected: BTreeSet<(Peer, Peer)>,
    /// Every event and verdict, in order: what determinism compares.
    trace: Vec<(u64, Peer, String)>,
    events: Vec<(u64, Peer, Event<Peer>)>,
    verdicts: Vec<(Peer, Peer, Verdict)>,
    bans: Vec<(Peer, Peer)>,
    unbans: Vec<(Peer, Peer)>,
    genesis: protoblock_core::Genesis,
    unix_base: u64,
    /// Range answers handed to a server's transport and not yet written or
    /// timed out: (server, reply) → asker.
    answering: HashMap<(Peer, ReplyId), Peer>,
    /// Block-range requests sent: (asker, server) → how many.
    range_requests: HashMap<(Peer, Peer), usize>,
}

fn params() -> ChainParams {
    ChainParams { finality_depth: 16, ..ChainParams::default() }
}

fn service_cfg() -> ServiceConfig {
    ServiceConfig {
        sync: SyncConfig {
            range_len: 16,
            max_in_flight: 6,
            per_peer_in_flight: 2,
            timeout_ms: 2_000,
            max_buffered: 256,
            max_buffered_bytes: 1 << 20,
        },
        block_interval_ms: 1_000,
        ..ServiceConfig::default()
    }
}

fn pair(a: Peer, b: Peer) -> (Peer, Peer) {
    (a.min(b), a.max(b))
}

/// A chain and a store holding `blocks`, as a node that had synced them.
fn seeded(net: &DevNet, blocks: &[Vec<u8>]) -> (Chain, MemoryStore) {
    let store = MemoryStore::new();
    let (mut chain, batch) = Chain::new(net.genesis.clone(), ChainLimits::default()).unwrap();
    block_on(store.commit(batch)).unwrap();
    for b in blocks {
        let update = chain.insert_block(b, u64::MAX / 2).unwrap();
        if let Some(batch) = update.batch {
            block_on(store.commit(batch)).unwrap();
        }
    }
    (chain, store)
}

impl Sim {
    fn new(net: &DevNet, chain_len: u64, seed: u64) -> Self {
        Sim {
            nodes: Vec::new(),
            queue: BTreeMap::new(),
            seq: 0,
            now: 0,
            rng: SplitMix64(seed),
            connected: BTreeSet::new(),
            trace: Vec::new(),
            events: Vec::new(),
            verdicts: Vec::new(),
            bans: Vec::new(),
            unbans: Vec::new(),
            genesis: net.genesis.clone(),
            unix_base: DEV_GENESIS_TIME_MS + (chain_len + 1) * 1000,
            answering: HashMap::new(),
            range_requests: HashMap::new(),
        }
    }

    fn at(&self, t: u64) -> Now {
        Now { mono_ms: t, unix_ms: self.unix_base + t }
    }

    fn add(&mut self, chain: Chain, store: MemoryStore, kind: Kind, verifier: bool, mut cfg: ServiceConfig) -> Peer {
        let id = self.nodes.len() as Peer;
        cfg.serve_tampered_blocks = kind == Kind::Liar;
        let service = NodeService::new(id, chain, cfg, verifier, self.at(self.now));
        self.nodes.push(SimNode {
            service,
            store,
            kind,
            verifier,
            keys: KeyCache::default(),
            links: BTreeSet::new(),
            seen: HashSet::new(),
            awaiting_verdict: HashMap::new(),
            owed: HashMap::new(),
            next_reply: 0,
            commits: 0,
            fail_commit: None,
            timer_wakeups: 0,
        });
        id
    }

    /// Range answers `server` is writing to `asker` right now.
    fn answering_to(&self, server: Peer, asker: Peer) -> usize {
        self.answering.iter().filter(|((s, _), a)| *s == server && **a == asker).count()
    }

    /// A range request from `from` delivered to `to` after `after` ms, as a
    /// flooding peer would send it (the reply routed back like any other).
    fn flood_range(&mut self, from: Peer, to: Peer, after: u64) {
        let j = &mut self.nodes[to as usize];
        let reply = j.next_reply;
        j.next_reply += 1;
        j.owed.insert(reply, (from, Owed::Sync(RequestId::MAX)));
        let kind = pb::sync_request::Kind::Blocks(pb::BlockRangeRequest { start_height: 1, count: 64 });
        self.send(to, after, Input::SyncRequest { peer: from, reply, request: pb::SyncRequest { kind: Some(kind) } });
    }

    fn latency(&mut self) -> u64 {
        10 + self.rng.below(50)
    }

    fn send(&mut self, to: Peer, after: u64, input: Input<Peer>) {
        self.seq += 1;
        self.queue.insert((self.now + after, self.seq), (to, input));
    }

    fn link(&mut self, a: Peer, b: Peer) {
        if a == b || self.connected.contains(&pair(a, b)) {
            return;
        }
        self.nodes[a as usize].links.insert(b);
        self.nodes[b as usize].links.insert(a);
        self.connected.insert(pair(a, b));
        let l = self.latency();
        self.send(a, l, Input::Connected { peer: b });
        self.send(b, l, Input::Connected { peer: a });
    }

    fn unlink(&mut self, a: Peer, b: Peer) {
        if self.connected.remove(&pair(a, b)) {
            self.send(a, 1, Input::Disconnected { peer: b });
            self.send(b, 1, Input::Disconnected { peer: a });
        }
    }

    /// A ring (so the mesh is connected) plus `extra` random links per node.
    fn mesh(&mut self, extra: usize) {
        let n = self.nodes.len() as Peer;
        for i in 0..n {
            self.link(i, (i + 1) % n);
            for _ in 0..extra {
                let j = self.rng.below(n as u64) as Peer;
                self.link(i, j);
            }
        }
    }

    /// Runs until `done` holds or `limit_ms` of virtual time pass. Returns the time.
    fn run(&mut self, limit_ms: u64, done: impl Fn(&Sim) -> bool) -> u64 {
        let mut steps = 0u64;
        loop {
            let next_msg = self.queue.first_key_value().map(|((t, _), _)| *t);
            let next_timer = self
                .nodes
                .iter()
                .enumerate()
                .filter_map(|(i, n)| n.service.next_wakeup().map(|w| (w.max(self.now), i as Peer)))
                .min();
            let (t, step) = match (next_msg, next_timer) {
                (Some(m), Some((w, i))) if w < m => (w, Err(i)),
                (Some(m), _) => (m, Ok(())),
                (None, Some((w, i))) => (w, Err(i)),
                (None, None) => return self.now,
            };
            if t > limit_ms {
                return self.now;
            }
            self.now = t;
            steps += 1;
            assert!(steps < 5_000_000, "the simulation does not advance: a busy loop at t={t}");
            match step {
                Ok(()) => {
                    let (_, (to, input)) = self.queue.pop_first().expect("a message is due");
                    self.deliver(to, input);
                }
                Err(i) => {
                    self.nodes[i as usize].timer_wakeups += 1;
                    self.handle(i, Input::Timer);
                }
            }
            if done(self) {
                return self.now;
            }
        }
    }

    fn deliver(&mut self, to: Peer, input: Input<Peer>) {
        let from = match &input {
            Input::StatusRequest { peer, .. }
            | Input::StatusResponse { peer, .. }
            | Input::SyncRequest { peer, .. }
            | Input::SyncResponse { peer, .. } => Some(*peer),
            Input::Gossip { from, .. } => Some(*from),
            _ => None,
        };
        // Nothing arrives over a closed connection.
        if from.is_some_and(|f| !self.connected.contains(&pair(f, to))) {
            return;
        }
        if let Input::Gossip { id, topic, data, .. } = &input {
            let node = &mut self.nodes[to as usize];
            if !node.seen.insert(id.clone()) {
                return;
            }
            node.awaiting_verdict.insert(id.clone(), (*topic, data.clone()));
        }
        self.handle(to, input);
    }

    fn handle(&mut self, i: Peer, input: Input<Peer>) {
        if let Input::ReplyDone { reply } = &input {
            self.answering.remove(&(i, *reply));
        }
        let now = self.at(self.now);
        self.nodes[i as usize].service.handle(now, input);
        self.perform(i);
    }

    fn perform(&mut self, i: Peer) {
        while let Some(action) = self.nodes[i as usize].service.poll_action() {
            self.act(i, action);
        }
    }

    fn act(&mut self, i: Peer, action: Action<Peer>) {
        match action {
            Action::SendStatus { peer, mut status } => {
                if self.nodes[i as usize].kind == Kind::Claimer {
                    status.head_height += CLAIM;
                }
                let j = &mut self.nodes[peer as usize];
                let reply = j.next_reply;
                j.next_reply += 1;
                j.owed.insert(reply, (i, Owed::Status));
                let l = self.latency();
                self.send(peer, l, Input::StatusRequest { peer: i, reply, status });
            }
            Action::ReplyStatus { reply, mut status } => {
                if self.nodes[i as usize].kind == Kind::Claimer {
                    status.head_height += CLAIM;
                }
                if let Some((asker, Owed::Status)) = self.nodes[i as usize].owed.remove(&reply) {
                    let l = self.latency();
                    self.send(asker, l, Input::StatusResponse { peer: i, status });
                }
            }
            Action::SendRequest { peer, id, request } => {
                if matches!(request.kind, Some(pb::sync_request::Kind::Blocks(_))) {
                    *self.range_requests.entry((i, peer)).or_default() += 1;
                }
                let silent = matches!(self.nodes[peer as usize].kind, Kind::Silent | Kind::Claimer);
                if silent && matches!(request.kind, Some(pb::sync_request::Kind::Blocks(_))) {
                    // The transport's request timeout.
                    self.send(i, 10_000, Input::SyncFailed { peer, id });
                    return;
                }
                let j = &mut self.nodes[peer as usize];
                let reply = j.next_reply;
                j.next_reply += 1;
                j.owed.insert(reply, (i, Owed::Sync(id)));
                let l = self.latency();
                self.send(peer, l, Input::SyncRequest { peer: i, reply, request });
            }
            Action::Reply { reply, response } => {
                if let Some((asker, Owed::Sync(id))) = self.nodes[i as usize].owed.remove(&reply) {
                    let l = self.latency();
                    // Written once the asker reads it, or dropped at the timeout.
                    let blocks = matches!(response.kind, Some(pb::sync_response::Kind::Blocks(_)));
                    let done = if self.nodes[asker as usize].kind == Kind::SlowReader {
                        if id != RequestId::MAX {
                            self.send(asker, ANSWER_TIMEOUT_MS, Input::SyncFailed { peer: i, id });
                        }
                        ANSWER_TIMEOUT_MS
                    } else {
                        self.send(asker, l, Input::SyncResponse { peer: i, id, response });
                        l
                    };
                    if blocks {
                        self.answering.insert((i, reply), asker);
                    }
                    self.send(i, done, Input::ReplyDone { reply });
                }
            }
            Action::ReadBlocks { token, start, count, max_bytes } => {
                let result = block_on(self.nodes[i as usize].store.blocks_range(start, count, max_bytes))
                    .map_err(|e| e.to_string());
                self.send(i, 2, Input::BlocksRead { token, result });
            }
            Action::Commit { token, batch } => {
                let node = &mut self.nodes[i as usize];
                node.commits += 1;
                let result = if node.fail_commit == Some(node.commits) {
                    Err("simulated: no space left on device".to_string())
                } else {
                    block_on(node.store.commit(batch)).map_err(|e| e.to_string())
                };
                // Durable some time later: the node validates meanwhile (group commit).
                self.send(i, 30, Input::Committed { token, result });
            }
            Action::Publish { topic, data } => {
                let id = sha256(&data).0.to_vec();
                self.nodes[i as usize].seen.insert(id.clone());
                self.flood(i, None, id, topic, data);
            }
            Action::ReportVerdict { from, id, verdict } => {
                self.verdicts.push((i, from, verdict));
                self.trace.push((self.now, i, format!("verdict {verdict:?} from {from}")));
                let msg = self.nodes[i as usize].awaiting_verdict.remove(&id);
                if let (Verdict::Accept, Some((topic, data))) = (verdict, msg) {
                    self.flood(i, Some(from), id, topic, data);
                }
            }
            Action::Verify { token, blocks } => {
                let node = &mut self.nodes[i as usize];
                assert!(node.verifier, "Verify from a node without a verifier");
                let ok = blocks.iter().map(|b| verify_signatures(b, &self.genesis, &mut node.keys).is_ok()).collect();
                self.send(i, 5, Input::Verified { token, blocks, ok });
            }
            Action::Ban { peer, reason } => {
                self.bans.push((i, peer));
                self.trace.push((self.now, i, format!("ban {peer}: {reason}")));
                self.unlink(i, peer);
            }
            Action::Unban { peer } => self.unbans.push((i, peer)),
            Action::Disconnect { peer } => self.unlink(i, peer),
            Action::Dial { peer, .. } => self.link(i, peer),
            Action::Event(e) => {
                self.trace.push((self.now, i, format!("{e:?}")));
                self.events.push((self.now, i, e));
            }
        }
    }

    /// Gossip to every connected link but the one it came from.
    fn flood(&mut self, i: Peer, except: Option<Peer>, id: Vec<u8>, topic: Topic, data: Vec<u8>) {
        let links: Vec<Peer> = self.nodes[i as usize].links.iter().copied().filter(|p| Some(*p) != except).collect();
        for j in links {
            if self.connected.contains(&pair(i, j)) {
                let l = self.latency();
                self.send(j, l, Input::Gossip { from: i, id: id.clone(), topic, data: data.clone() });
            }
        }
    }

    fn head(&self, i: Peer) -> (u64, Hash32) {
        let h = self.nodes[i as usize].service.chain().head();
        (h.height, h.id)
    }
}

fn tamper(block: &[u8]) -> Vec<u8> {
    use prost::Message;
    let mut b = pb::Block::decode(block).unwrap();
    b.signature[0] ^= 1;
    b.encode_to_vec()
}

/// A node whose own last `n` blocks fork from `blocks` after `common`.
fn forked(net: &DevNet, blocks: &[Vec<u8>], common: usize, n: u64) -> (Chain, MemoryStore) {
    let (mut chain, store) = seeded(net, &blocks[..common]);
    for k in 1..=n {
        let ts = DEV_GENESIS_TIME_MS + (common as u64 + k) * 1000 + 500;
        let produced = produce_block(&chain, std::iter::empty(), &net.oracle, ts).unwrap();
        let update = chain.insert_block(&produced.bytes, ts).unwrap();
        block_on(store.commit(update.batch.unwrap())).unwrap();
    }
    (chain, store)
}

const CHAIN: u64 = 100;

/// 50 nodes: a producer holding the chain and extending it, a liar, a
/// silent peer, a node on a short fork, and 46 fresh nodes (half with an
/// off-loop verifier) over a sparse random mesh.
fn fifty(seed: u64) -> (Sim, Vec<Vec<u8>>) {
    let net = DevNet::with_params(41, 20, params());
    let blocks = generate_chain(&net, CHAIN, 3);
    let mut sim = Sim::new(&net, CHAIN, seed);
    let (c, s) = seeded(&net, &blocks);
    sim.add(c, s, Kind::Honest, false, ServiceConfig { producer_key: Some(net.oracle.clone()), ..service_cfg() });
    let (c, s) = seeded(&net, &blocks);
    sim.add(c, s, Kind::Liar, false, service_cfg());
    let (c, s) = seeded(&net, &blocks);
    sim.add(c, s, Kind::Silent, false, service_cfg());
    let (c, s) = forked(&net, &blocks, 20, 3);
    sim.add(c, s, Kind::Honest, false, service_cfg());
    for i in 4..50 {
        let (c, s) = seeded(&net, &[]);
        sim.add(c, s, Kind::Honest, i % 2 == 0, service_cfg());
    }
    sim.mesh(2);
    (sim, blocks)
}

fn honest(sim: &Sim) -> impl Iterator<Item = Peer> + '_ {
    (0..sim.nodes.len() as Peer).filter(|i| sim.nodes[*i as usize].kind == Kind::Honest)
}

fn converged(sim: &Sim, min_height: u64) -> bool {
    let target = sim.head(0);
    target.0 >= min_height && honest(sim).all(|i| sim.head(i) == target)
}

#[test]
fn fifty_nodes_converge_despite_a_liar_a_silent_peer_and_a_fork() {
    let (mut sim, blocks) = fifty(1);
    // The producer extends the chain every second throughout; between two
    // blocks every honest node must hold the producer's head.
    let t = sim.run(180_000, |s| converged(s, CHAIN + 10));
    let (height, id) = sim.head(0);
    assert!(height >= CHAIN + 10, "the producer extended the chain: {height}");
    for i in honest(&sim) {
        assert_eq!(sim.head(i), (height, id), "node {i} at t={t} ms");
    }
    // Half a second later (commits are durable 30 ms after they are made) every
    // store holds at least that head, on the node's own main chain: nothing
    // staged is left behind and nothing is lost.
    sim.run(t + 500, |_| false);
    for i in honest(&sim) {
        let stored = block_on(sim.nodes[i as usize].store.head()).unwrap().unwrap();
        assert!(stored.height >= height, "node {i}'s store is at {} of {height}", stored.height);
        assert_eq!(sim.nodes[i as usize].service.chain().main_id_at(stored.height), Some(stored.id), "node {i}");
    }
    // The forked node gave up its three blocks for the main chain.
    let stored = block_on(sim.nodes[3].store.blocks_range(21, 3, 1 << 20)).unwrap();
    assert_eq!(stored, blocks[20..23].to_vec(), "the fork node's store holds the main chain's 21..=23");
    // The liar was caught by whoever synced from it; no honest node was banned.
    assert!(sim.bans.iter().any(|(_, p)| *p == 1), "the liar is banned: {:?}", sim.bans);
    assert!(sim.bans.iter().all(|(_, p)| *p == 1), "only the liar is banned: {:?}", sim.bans);
    // Group commit: some commits carried several heads.
    let (commits, validated): (u64, u64) = honest(&sim)
        .map(|i| sim.nodes[i as usize].service.counters())
        .fold((0, 0), |(c, v), k| (c + k.commits, v + k.blocks_validated));
    assert!(commits < validated, "{commits} commits for {validated} blocks: none merged");
    // Off-loop verification was used by the nodes that have a verifier.
    assert!(sim.nodes[4].service.counters().blocks_verified_off_loop > 0);
    assert_eq!(sim.nodes[5].service.counters().blocks_verified_off_loop, 0);
    // Heads are announced once durable, in order, ending at the head.
    for i in honest(&sim).filter(|i| *i != 0) {
        let heads: Vec<u64> = sim
            .events
            .iter()
            .filter(|(_, n, _)| *n == i)
            .filter_map(|(_, _, e)| match e {
                Event::NewHead { height, .. } => Some(*height),
                _ => None,
            })
            .collect();
        assert_eq!(heads.last(), Some(&height), "node {i}'s last NewHead");
    }
    // A timer per node, not a tick: few wake-ups per node per virtual second.
    let wakeups: u64 = sim.nodes.iter().map(|n| n.timer_wakeups).max().unwrap();
    assert!(wakeups < t / 10, "a node woke {wakeups} times in {t} ms");
}

#[test]
fn runs_are_deterministic() {
    let run = |seed| {
        let (mut sim, _) = fifty(seed);
        let t = sim.run(20_000, |_| false);
        (t, sim.trace)
    };
    let (a, b) = (run(7), run(7));
    assert!(a.1.len() > 1000, "a run that did something: {} entries", a.1.len());
    assert_eq!(a, b);
}

/// A tampered block gossiped by a peer is rejected (it costs the sender its
/// gossip score), gets the sender banned, and is not forwarded.
#[test]
fn a_tampered_gossip_block_is_rejected_not_forwarded_and_its_sender_banned() {
    let net = DevNet::with_params(42, 10, params());
    let blocks = generate_chain(&net, 30, 2);
    let mut sim = Sim::new(&net, 30, 3);
    for _ in 0..6 {
        let (c, s) = seeded(&net, &blocks[..29]);
        sim.add(c, s, Kind::Honest, false, service_cfg());
    }
    // Node 0 is the gossiping liar; a line 0-1-2-3-4-5 so only node 1 hears it.
    for i in 0..5 {
        sim.link(i, i + 1);
    }
    sim.run(1_000, |_| false);
    let bad = tamper(&blocks[29]);
    let id = sha256(&bad).0.to_vec();
    sim.nodes[0].seen.insert(id.clone());
    sim.flood(0, None, id, Topic::Blocks, bad);
    sim.run(3_000, |_| false);
    assert_eq!(sim.verdicts, vec![(1, 0, Verdict::Reject)], "only node 1 received it, and rejected it");
    assert_eq!(sim.bans, vec![(1, 0)]);
    assert_eq!(sim.nodes[1].service.counters().gossip_rejected, 1);
    // The honest block then spreads over the whole line, accepted by each.
    let good = blocks[29].clone();
    let id = sha256(&good).0.to_vec();
    sim.nodes[5].seen.insert(id.clone());
    sim.flood(5, None, id, Topic::Blocks, good);
    sim.run(6_000, |_| false);
    for i in 1..6 {
        assert_eq!(sim.head(i).0, 30, "node {i}");
    }
}

/// Bans expire: the gossip layer is told, and the peer may come back.
#[test]
fn bans_expire_and_the_peer_may_reconnect() {
    let net = DevNet::with_params(43, 10, params());
    let blocks = generate_chain(&net, 40, 2);
    let mut sim = Sim::new(&net, 40, 4);
    let cfg = ServiceConfig { ban_ms: 20_000, ..service_cfg() };
    let (c, s) = seeded(&net, &blocks);
    sim.add(c, s, Kind::Liar, false, cfg.clone());
    let (c, s) = seeded(&net, &blocks);
    sim.add(c, s, Kind::Honest, false, cfg.clone());
    let (c, s) = seeded(&net, &[]);
    let fresh = sim.add(c, s, Kind::Honest, false, cfg);
    sim.link(fresh, 0);
    sim.run(2_000, |_| false);
    assert_eq!(sim.bans, vec![(fresh, 0)]);
    sim.link(fresh, 0);
    sim.run(3_000, |_| false);
    assert!(!sim.connected.contains(&pair(fresh, 0)), "a banned peer is refused when it connects");
    sim.run(25_000, |_| false);
    assert_eq!(sim.unbans, vec![(fresh, 0)], "the ban ran out");
    sim.link(fresh, 1);
    sim.run(40_000, |s| s.head(fresh).0 == 40);
    assert_eq!(sim.head(fresh).0, 40, "synced from the honest peer");
}

/// A failed commit stops the node from running ahead of its store: it says
/// so (an event and its status), refuses txs, and places no more blocks;
/// its peers are not affected.
#[test]
fn a_failed_commit_stops_the_node_and_says_so() {
    let net = DevNet::with_params(44, 10, params());
    let blocks = generate_chain(&net, 60, 2);
    let mut sim = Sim::new(&net, 60, 5);
    let (c, s) = seeded(&net, &blocks);
    sim.add(c, s, Kind::Honest, false, service_cfg());
    let (c, s) = seeded(&net, &[]);
    let failing = sim.add(c, s, Kind::Honest, false, service_cfg());
    let (c, s) = seeded(&net, &[]);
    let other = sim.add(c, s, Kind::Honest, false, service_cfg());
    sim.nodes[failing as usize].fail_commit = Some(2);
    sim.link(0, failing);
    sim.link(0, other);
    sim.run(60_000, |s| s.head(other).0 == 60);
    assert_eq!(sim.head(other).0, 60);
    let failed: Vec<&Event<Peer>> = sim
        .events
        .iter()
        .filter(|(_, n, e)| *n == failing && matches!(e, Event::StoreFailed { .. }))
        .map(|(_, _, e)| e)
        .collect();
    assert_eq!(failed.len(), 1, "one StoreFailed event");
    let node = &mut sim.nodes[failing as usize];
    let status = node.service.status();
    assert!(status.store_error.as_deref().is_some_and(|e| e.contains("no space")), "{:?}", status.store_error);
    let stored = block_on(node.store.head()).unwrap().unwrap().height;
    assert!(status.validated_height < 60, "stopped placing blocks at {}", status.validated_height);
    assert!(status.validated_height - stored <= 256, "ahead of its store by at most what was staged");
    assert_eq!(status.head_height, stored, "the status reports the head its store holds");
    assert_eq!(node.commits, 2, "no commit after the failure");
    let tx = protoblock_devnet::sign_transaction(
        &net.oracle,
        &net.genesis.hash,
        (sim.unix_base + sim.now) * 1_000_000,
        pb::transaction::Body::Name(pb::NameRegistration { fantasy_name: "after".into() }),
    );
    let now = Now { mono_ms: sim.now, unix_ms: sim.unix_base + sim.now };
    assert!(matches!(sim.nodes[failing as usize].service.submit_tx(now, tx), Err(SubmitError::StoreFailed(_))));
}

/// A claimed head is a hint. A peer that claims 1,000 blocks above a
/// producer and serves none of them must not halt production (it did: the
/// producer waited for a sync that never came), and it is dropped once its
/// requests have timed out a few times.
#[test]
fn a_claimed_head_that_is_never_served_neither_halts_production_nor_stays() {
    let net = DevNet::with_params(45, 10, params());
    let blocks = generate_chain(&net, 20, 2);
    let mut sim = Sim::new(&net, 20, 6);
    let (c, s) = seeded(&net, &blocks);
    let producer =
        sim.add(c, s, Kind::Honest, false, ServiceConfig { producer_key: Some(net.oracle.clone()), ..service_cfg() });
    let (c, s) = seeded(&net, &blocks);
    let claimer = sim.add(c, s, Kind::Claimer, false, service_cfg());
    sim.link(producer, claimer);
    sim.run(16_000, |_| false);
    let produced = sim.head(producer).0 - 20;
    assert!(produced >= 12, "the producer made {produced} blocks in 16 s at one a second");
    let dropped = sim.run(60_000, |s| !s.connected.contains(&pair(producer, claimer)));
    assert!(!sim.connected.contains(&pair(producer, claimer)), "the claimer is dropped after its strikes");
    assert!(dropped <= 3 * 10_000 + 5_000, "after three request timeouts, at {dropped} ms");
    sim.run(60_000, |_| false);
    let produced = sim.head(producer).0 - 20;
    assert!(produced >= 50, "production went on: {produced} blocks in 60 s");
}

/// Refusing to serve ("not serving", "busy") is an honest answer, not a lie:
/// a fresh node syncs from whoever serves and stays connected to the peer
/// that refuses (in a browser, its relay and circuit).
#[test]
fn a_peer_that_refuses_to_serve_is_not_dropped() {
    let net = DevNet::with_params(46, 10, params());
    let blocks = generate_chain(&net, 60, 2);
    let mut sim = Sim::new(&net, 60, 7);
    let (c, s) = seeded(&net, &blocks);
    let refuser = sim.add(c, s, Kind::Honest, false, ServiceConfig { serve_sync: false, ..service_cfg() });
    let (c, s) = seeded(&net, &blocks);
    let server = sim.add(c, s, Kind::Honest, false, service_cfg());
    let (c, s) = seeded(&net, &[]);
    let fresh = sim.add(c, s, Kind::Honest, false, service_cfg());
    sim.link(fresh, refuser);
    sim.link(fresh, server);
    sim.run(60_000, |s| s.head(fresh).0 == 60);
    assert_eq!(sim.head(fresh).0, 60, "synced from the peer that serves");
    assert!(sim.connected.contains(&pair(fresh, refuser)), "still connected to the one that refused");
}

/// A block that decodes, at `height`, with a random parent and a header
/// signature of zeros: what costs an attacker nothing to make by the
/// thousand. `producer` is the key the genesis schedules there (or not).
fn junk_block(genesis: &protoblock_core::Genesis, height: u64, rng: &mut SplitMix64, right_producer: bool) -> Vec<u8> {
    use prost::Message;
    let prev: Vec<u8> = (0..4).flat_map(|_| rng.next_u64().to_le_bytes()).collect();
    let producer = if right_producer { genesis.producer_for(height).0.0.to_vec() } else { vec![7; 32] };
    let header = pb::BlockHeader {
        version: 1,
        height,
        prev_hash: prev,
        timestamp_ms: DEV_GENESIS_TIME_MS + height * 1000,
        producer,
        tx_root: vec![0; 32],
        state_root: vec![0; 32],
        ..Default::default()
    };
    pb::Block { header: header.encode_to_vec(), signature: vec![0; 64], txs: Vec::new() }.encode_to_vec()
}

/// Junk ahead of the head (a decodable header, a random parent, no valid
/// signature) gossiped by the hundred, by a peer that also claims a far
/// head: it filled the sync buffer, so a fresh node stopped asking anyone
/// for blocks and never synced; and it cost the sender nothing. A block's
/// header signature and producer slot are now checked before it takes a
/// buffer slot, and a bad one bans its sender.
#[test]
fn junk_gossiped_ahead_of_the_head_neither_fills_the_buffer_nor_goes_unpunished() {
    let net = DevNet::with_params(47, 10, params());
    let blocks = generate_chain(&net, 60, 2);
    let mut sim = Sim::new(&net, 60, 8);
    let (c, s) = seeded(&net, &blocks);
    let server = sim.add(c, s, Kind::Honest, false, service_cfg());
    let (c, s) = seeded(&net, &blocks);
    let junker = sim.add(c, s, Kind::Claimer, false, service_cfg());
    let (c, s) = seeded(&net, &[]);
    let fresh = sim.add(c, s, Kind::Honest, false, service_cfg());
    sim.link(fresh, junker);
    let max_buffered = service_cfg().sync.max_buffered as u64;
    let mut rng = SplitMix64(99);
    for h in 2..2 + max_buffered + 50 {
        let data = junk_block(&sim.genesis, h, &mut rng, h % 2 == 0);
        let id = sha256(&data).0.to_vec();
        sim.send(fresh, 100 + h, Input::Gossip { from: junker, id, topic: Topic::Blocks, data });
    }
    sim.run(2_000, |_| false);
    sim.link(fresh, server);
    sim.run(60_000, |s| s.head(fresh).0 == 60);
    assert_eq!(sim.head(fresh).0, 60, "the fresh node synced from the honest server despite the junk");
    assert!(sim.bans.contains(&(fresh, junker)), "the junk's sender is banned");
    assert!(
        sim.verdicts.iter().filter(|(to, from, v)| *to == fresh && *from == junker && *v == Verdict::Reject).count()
            >= 1,
        "junk is rejected (not forwarded, and scored against its sender), not ignored"
    );
}

/// A peer serving a branch that cannot be ours: every block signed by the
/// producer's key (an equivocating producer), forked below our final
/// block, and longer than the honest chain. Its ranges never attach, so the
/// victim backfilled from it, got a branch whose lowest block had an
/// unknown parent, and asked again, for as long as the peer stayed. An
/// unknown parent in a backfill that starts just above the final block is
/// now the sender's fault.
#[test]
fn a_branch_that_does_not_attach_above_the_final_block_bans_its_sender() {
    let net = DevNet::with_params(48, 10, params());
    let blocks = generate_chain(&net, 60, 2);
    let mut sim = Sim::new(&net, 80, 9);
    let (c, s) = seeded(&net, &blocks);
    let server = sim.add(c, s, Kind::Honest, false, service_cfg());
    let (c, s) = forked(&net, &blocks, 0, 80);
    let forker = sim.add(c, s, Kind::Honest, false, service_cfg());
    let (c, s) = seeded(&net, &blocks[..40]);
    let victim = sim.add(c, s, Kind::Honest, false, service_cfg());
    sim.link(victim, forker);
    sim.link(victim, server);
    sim.run(60_000, |s| s.bans.contains(&(victim, forker)));
    assert!(sim.bans.contains(&(victim, forker)), "the peer whose branch cannot attach is banned");
    sim.run(60_000, |s| s.head(victim) == s.head(server));
    assert_eq!(sim.head(victim), sim.head(server), "the victim follows the honest chain");
}

/// The account name `key` holds on node `i`'s chain.
fn name_on(sim: &Sim, i: Peer, key: &ed25519_dalek::SigningKey) -> Option<String> {
    use prost::Message;
    let k = protoblock_core::state::keys::account(&key.verifying_key().to_bytes());
    let v = sim.nodes[i as usize].service.chain().state().get(&k)?;
    pb::AccountState::decode(v.as_slice()).ok().map(|a| a.fantasy_name)
}

/// Every attack at once against 10 honest nodes (a producer, nodes
/// holding all or half of the chain, fresh ones, half with a verifier): a
/// liar serving tampered blocks, a silent peer, a claimer of 1,000 blocks it
/// never serves, a forker serving a branch that cannot attach, a junker
/// gossiping junk blocks and a spammer gossiping valid txs with nonces 59
/// minutes ahead into pools of 40, and a slow reader flooding range requests
/// it never reads, each linked to every honest node. Production goes on, every honest node converges,
/// an honest tx submitted mid-attack is included, the bytes peers make an
/// honest node hold stay within the configured bounds (sampled throughout),
/// and the liar, forker and junker are banned.
#[test]
fn under_every_attack_at_once_honest_nodes_produce_converge_and_hold_bounded_bytes() {
    use protoblock_core::mempool::MempoolConfig;
    let net = DevNet::with_params(50, 20, params());
    let blocks = generate_chain(&net, 40, 2);
    let mut sim = Sim::new(&net, 40, 11);
    let mempool = MempoolConfig { max_txs: 40, max_bytes: 64 << 10, max_per_signer: 8 };
    let cfg = ServiceConfig { mempool: mempool.clone(), ..service_cfg() };
    let (c, s) = seeded(&net, &blocks);
    let producer =
        sim.add(c, s, Kind::Honest, false, ServiceConfig { producer_key: Some(net.oracle.clone()), ..cfg.clone() });
    for i in 0..9 {
        let have = match i % 3 {
            0 => &blocks[..],
            1 => &blocks[..20],
            _ => &blocks[..0],
        };
        let (c, s) = seeded(&net, have);
        sim.add(c, s, Kind::Honest, i % 2 == 0, cfg.clone());
    }
    let honest_ids: Vec<Peer> = honest(&sim).collect();
    let (c, s) = seeded(&net, &blocks);
    let liar = sim.add(c, s, Kind::Liar, false, cfg.clone());
    let (c, s) = seeded(&net, &blocks);
    let silent = sim.add(c, s, Kind::Silent, false, cfg.clone());
    let (c, s) = seeded(&net, &blocks);
    let claimer = sim.add(c, s, Kind::Claimer, false, cfg.clone());
    let (c, s) = forked(&net, &blocks, 0, 60);
    let forker = sim.add(c, s, Kind::Forker, false, cfg.clone());
    let (c, s) = seeded(&net, &blocks);
    let junker = sim.add(c, s, Kind::Claimer, false, cfg.clone());
    let (c, s) = seeded(&net, &blocks);
    let spammer = sim.add(c, s, Kind::Spammer, false, cfg.clone());
    let (c, s) = seeded(&net, &blocks);
    let slow = sim.add(c, s, Kind::SlowReader, false, cfg.clone());
    for (k, &a) in honest_ids.iter().enumerate() {
        sim.link(a, honest_ids[(k + 1) % honest_ids.len()]);
        for attacker in [liar, silent, claimer, forker, junker, spammer, slow] {
            sim.link(a, attacker);
        }
    }
    // The slow reader's flood: 20 range requests a second to each honest
    // node (within the request rate a peer is allowed), none of them read.
    for t in 0..1_000u64 {
        for &to in &honest_ids {
            sim.flood_range(slow, to, 500 + t * 50);
        }
    }
    // The junker's junk blocks and the spammer's far-future txs, to every
    // honest node.
    let mut rng = SplitMix64(5);
    for t in 0..300u64 {
        let to = honest_ids[(t as usize) % honest_ids.len()];
        let (from, data) = if t % 3 == 0 {
            (junker, junk_block(&sim.genesis, 42 + t % 200, &mut rng, t % 2 == 0))
        } else {
            // Fresh keys: each registration is valid, and only its nonce is odd.
            let mut seed = [9u8; 32];
            seed[..8].copy_from_slice(&t.to_le_bytes());
            let key = protoblock_core::crypto::signing_key_from_seed(&seed);
            let nonce = (sim.unix_base + 59 * 60 * 1000 + t) * 1_000_000;
            let body = pb::transaction::Body::Name(pb::NameRegistration { fantasy_name: format!("spam-{t}") });
            (spammer, protoblock_devnet::sign_transaction(&key, &net.genesis.hash, nonce, body))
        };
        let topic = if t % 3 == 0 { Topic::Blocks } else { Topic::Txs };
        let id = sha256(&data).0.to_vec();
        sim.send(to, 500 + t * 100, Input::Gossip { from, id, topic, data });
    }
    let max_held = std::cell::Cell::new((0usize, 0usize));
    let max_answering = std::cell::Cell::new((0usize, 0usize));
    let steps = std::cell::Cell::new(0u64);
    let sample = |s: &Sim| {
        steps.set(steps.get() + 1);
        if steps.get().is_multiple_of(50) {
            for &i in &honest_ids {
                let st = s.nodes[i as usize].service.status();
                let (b, m) = max_held.get();
                max_held.set((b.max(st.sync_buffer_bytes), m.max(st.mempool_bytes)));
                let (n, bytes) = max_answering.get();
                max_answering.set((n.max(s.answering_to(i, slow)), bytes.max(st.answering_bytes)));
            }
        }
        false
    };
    sim.run(20_000, sample);
    // An honest user's tx, submitted mid-attack at a fresh node.
    let user = &protoblock_core::crypto::signing_key_from_seed(&[77; 32]);
    let fresh = honest_ids[3];
    let now = sim.at(sim.now);
    let tx = protoblock_devnet::sign_transaction(
        user,
        &net.genesis.hash,
        now.unix_ms * 1_000_000,
        pb::transaction::Body::Name(pb::NameRegistration { fantasy_name: "honest-fan".into() }),
    );
    sim.nodes[fresh as usize].service.submit_tx(now, tx).expect("the honest tx is admitted despite the spam");
    sim.perform(fresh);
    sim.run(60_000, sample);
    let produced = sim.head(producer).0 - 40;
    assert!(produced >= 45, "production went on under attack: {produced} blocks in 60 s");
    sim.run(90_000, |s| converged(s, 85) || sample(s));
    assert!(
        converged(&sim, 85),
        "every honest node follows the producer: {:?}",
        honest(&sim).map(|i| sim.head(i).0).collect::<Vec<_>>()
    );
    assert_eq!(name_on(&sim, producer, user).as_deref(), Some("honest-fan"), "the honest tx is in a block");
    let (buffer, pool) = max_held.get();
    assert!(buffer <= service_cfg().sync.max_buffered_bytes, "sync buffer peaked at {buffer} bytes");
    assert!(pool <= mempool.max_bytes, "mempool peaked at {pool} bytes");
    let (unread, answering) = max_answering.get();
    // Before, every request within the rate was answered and its answer sat
    // in the transport until the timeout: about 300 per node at this rate.
    assert!(unread <= cfg.max_reads_per_peer, "the slow reader held {unread} answers at one node");
    assert!(answering <= cfg.max_answering_bytes, "answers being written peaked at {answering} bytes");
    for (who, name) in [(liar, "liar"), (forker, "forker"), (junker, "junker")] {
        assert!(sim.bans.iter().any(|(_, p)| *p == who), "the {name} is banned somewhere");
    }
    assert!(!sim.connected.contains(&pair(producer, claimer)), "the claimer is dropped by the producer");
    eprintln!(
        "peak bytes held by an honest node: sync buffer {buffer}, mempool {pool}, answers {answering} \
         ({unread} unread by the slow reader); produced {produced}"
    );
}

/// A producer that signs 30 variants of its slot and gossips them all: each
/// honest node holds two blocks at that height (fork choice still has both
/// to pick from) and ignores the rest unvalidated; the network goes on. On
/// the code before, every variant was validated and held as a side block
/// (up to `max_side_blocks`, after which honest forks were refused).
#[test]
fn an_equivocating_producer_gets_two_blocks_a_height_held_not_thirty() {
    let net = DevNet::with_params(52, 10, params());
    let blocks = generate_chain(&net, 20, 1);
    let mut sim = Sim::new(&net, 20, 13);
    let (c, s) = seeded(&net, &blocks);
    let producer =
        sim.add(c, s, Kind::Honest, false, ServiceConfig { producer_key: Some(net.oracle.clone()), ..service_cfg() });
    for _ in 0..4 {
        let (c, s) = seeded(&net, &blocks);
        sim.add(c, s, Kind::Honest, false, service_cfg());
    }
    let honest_ids: Vec<Peer> = honest(&sim).collect();
    let (c, s) = seeded(&net, &blocks);
    let equivocator = sim.add(c, s, Kind::Silent, false, service_cfg());
    sim.mesh(1);
    for &a in &honest_ids {
        sim.link(a, equivocator);
    }
    sim.run(5_000, |_| false);
    // Thirty valid blocks at the producer's next height, on its head.
    let chain = sim.nodes[producer as usize].service.chain();
    let height = chain.head().height + 1;
    let ts = chain.head().timestamp_ms;
    let variants: Vec<Vec<u8>> = (1..=30u64)
        .map(|k| produce_block(chain, std::iter::empty(), &net.oracle, ts + k).expect("its slot").bytes)
        .collect();
    for &to in &honest_ids {
        for v in &variants {
            let id = sha256(v).0.to_vec();
            sim.send(to, 1, Input::Gossip { from: equivocator, id, topic: Topic::Blocks, data: v.clone() });
        }
    }
    let most = std::cell::Cell::new(0usize);
    sim.run(sim.now + 3_000, |s| {
        for &i in &honest_ids {
            most.set(most.get().max(s.nodes[i as usize].service.chain().blocks_at_height(height)));
        }
        false
    });
    assert!(most.get() <= 2, "an honest node held {} blocks at height {height}", most.get());
    assert!(most.get() >= 1, "the variants are valid blocks: at least one is taken");
    let start = sim.head(producer).0;
    sim.run(sim.now + 30_000, |s| converged(s, start + 10));
    assert!(
        converged(&sim, start + 10),
        "production goes on and all follow: {:?}",
        honest(&sim).map(|i| sim.head(i).0).collect::<Vec<_>>()
    );
    assert!(!sim.bans.iter().any(|(_, p)| *p == equivocator), "a valid block is no ban");
}

/// Held blocks of a node's store: main-chain heights with a block, of `1..=top`.
fn held(store: &MemoryStore, top: u64) -> Vec<u64> {
    (1..=top).filter(|h| !block_on(store.blocks_range(*h, 1, usize::MAX)).unwrap().is_empty()).collect()
}

/// A node that keeps only its newest blocks (`retain_blocks`) prunes the
/// rest from its store as it commits, says in its status from which height it
/// serves, and serves what it holds: a fresh node asks it nothing below that
/// height (and keeps it as a peer), syncs the old range from an archive, and
/// a node that needs only the newest blocks syncs them from the pruned one.
#[test]
fn a_pruned_node_serves_what_it_holds_and_peers_ask_others_for_older_ranges() {
    let net = DevNet::with_params(47, 10, params());
    let blocks = generate_chain(&net, 200, 2);
    let mut sim = Sim::new(&net, 200, 8);
    let (c, s) = seeded(&net, &blocks);
    let archive = sim.add(c, s, Kind::Honest, false, service_cfg());
    let (c, s) = seeded(&net, &[]);
    let pruned = sim.add(c, s, Kind::Honest, false, ServiceConfig { retain_blocks: Some(40), ..service_cfg() });
    sim.link(pruned, archive);
    let durable = |s: &Sim, i: Peer| s.nodes[i as usize].service.status().head_height;
    sim.run(120_000, |s| durable(s, pruned) == 200);
    assert_eq!(durable(&sim, pruned), 200, "the pruned node synced, validated and stored every block");
    let st = sim.nodes[pruned as usize].service.status();
    assert_eq!(st.lowest_height, 161, "it keeps the newest 40 blocks and says so");
    let kept = held(&sim.nodes[pruned as usize].store, 200);
    assert_eq!(kept, (161..=200).collect::<Vec<_>>(), "its store holds exactly the window");
    sim.unlink(pruned, archive);

    // A fresh node with only the pruned one: nothing to ask below 161, no request, no strike.
    let (c, s) = seeded(&net, &[]);
    let fresh = sim.add(c, s, Kind::Honest, false, service_cfg());
    sim.link(fresh, pruned);
    sim.run(20_000, |_| false);
    assert_eq!(sim.head(fresh).0, 0, "nobody it knows holds block 1");
    assert_eq!(sim.range_requests.get(&(fresh, pruned)), None, "it asked the pruned node for nothing");
    assert!(sim.connected.contains(&pair(fresh, pruned)), "and kept it as a peer");
    // With an archive too, it syncs: the old ranges from the archive.
    sim.link(fresh, archive);
    sim.run(120_000, |s| s.head(fresh).0 == 200);
    assert_eq!(sim.head(fresh).0, 200, "synced with the archive's help");

    // A node behind by less than the window syncs from the pruned node alone.
    let (c, s) = seeded(&net, &blocks[..170]);
    let behind = sim.add(c, s, Kind::Honest, false, service_cfg());
    let served_before = sim.nodes[pruned as usize].service.status().counters.blocks_served;
    sim.link(behind, pruned);
    sim.run(60_000, |s| s.head(behind).0 == 200);
    assert_eq!(sim.head(behind).0, 200, "synced from what the pruned node holds");
    let served = sim.nodes[pruned as usize].service.status().counters.blocks_served - served_before;
    assert!(served >= 30, "the pruned node served the newest blocks ({served})");
}
