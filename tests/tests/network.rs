//! Native nodes over real TCP on loopback: handshake, sync from several
//! peers, gossip of txs and blocks, a lying peer, a peer on another chain,
//! and a restart mid-sync. Each node is its own swarm with its own store.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc;
use libp2p::{Multiaddr, PeerId, identity};
use protoblock_core::ChainLimits;
use protoblock_core::proto::v1 as pb;
use protoblock_core::{ChainParams, Genesis, Hash32};
use protoblock_devnet::{DevNet, generate_chain, sign_transaction};
use protoblock_net::behaviour::Role;
use protoblock_net::native::build_swarm;
use protoblock_net::node::{Node, NodeConfig, NodeEvent, NodeHandle, SignatureVerifier, VerifyDone, VerifyJob};
use protoblock_store::{MemoryStore, RedbStore, Store, open_chain};
use protoblock_tests::import;

fn params() -> ChainParams {
    ChainParams::default()
}

struct TestNode {
    handle: NodeHandle,
    events: mpsc::Receiver<NodeEvent>,
    addr: Multiaddr,
    peer: PeerId,
    task: tokio::task::JoinHandle<()>,
}

async fn spawn<S: Store + 'static>(genesis: &Genesis, store: S, cfg: NodeConfig) -> TestNode {
    spawn_role(genesis, store, cfg, &Role::default()).await
}

async fn spawn_role<S: Store + 'static>(genesis: &Genesis, store: S, cfg: NodeConfig, role: &Role) -> TestNode {
    spawn_full(genesis, store, cfg, role, None).await
}

async fn spawn_full<S: Store + 'static>(
    genesis: &Genesis,
    store: S,
    cfg: NodeConfig,
    role: &Role,
    verifier: Option<SignatureVerifier>,
) -> TestNode {
    let chain = open_chain(&store, genesis.clone(), ChainLimits::default()).await.unwrap();
    let key = identity::Keypair::generate_ed25519();
    let peer = key.public().to_peer_id();
    let mut swarm = build_swarm(key, params().max_block_bytes, role).unwrap();
    swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap()).unwrap();
    let (mut node, handle, mut events) = Node::new(swarm, chain, store, cfg).unwrap();
    if let Some(v) = verifier {
        node = node.with_signature_verifier(v);
    }
    let task = tokio::spawn(node.run());
    let addr = loop {
        match tokio::time::timeout(Duration::from_secs(10), events.next()).await.expect("listening").unwrap() {
            NodeEvent::Listening { addr } => break addr,
            _ => continue,
        }
    };
    TestNode { handle, events, addr: addr.with_p2p(peer).unwrap(), peer, task }
}

fn cfg(bootstrap: &[&TestNode]) -> NodeConfig {
    let mut c = NodeConfig { bootstrap: bootstrap.iter().map(|n| n.addr.clone()).collect(), ..Default::default() };
    c.sync.range_len = 32;
    c.sync.timeout_ms = 3_000;
    c
}

async fn head(n: &TestNode) -> u64 {
    n.handle.status().await.unwrap().head_height
}

/// Polls until `f` holds or the deadline passes.
async fn wait_for<F, Fut>(what: &str, secs: u64, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A store holding a generated chain (what a long-running node would have).
async fn seeded_store(net: &DevNet, blocks: &[Vec<u8>]) -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new());
    let mut chain = open_chain(&store, net.genesis.clone(), ChainLimits::default()).await.unwrap();
    import(&store, &mut chain, blocks, 64).await.unwrap();
    store
}

fn drain(events: &mut mpsc::Receiver<NodeEvent>) -> Vec<NodeEvent> {
    let mut out = Vec::new();
    while let Ok(e) = events.try_recv() {
        out.push(e);
    }
    out
}

async fn named(store: &MemoryStore, key: &ed25519_dalek::SigningKey) -> Option<String> {
    use prost::Message;
    let stored = store.load().await.unwrap()?;
    let k = protoblock_core::state::keys::account(&key.verifying_key().to_bytes());
    stored
        .state
        .iter()
        .find(|(sk, _)| *sk == k)
        .and_then(|(_, v)| pb::AccountState::decode(v.as_slice()).ok())
        .map(|a| a.fantasy_name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_sync_gossip_and_converge() {
    let net = DevNet::new(21, 40);
    let blocks = generate_chain(&net, 300, 5);
    // The producer holds 300 blocks and keeps producing.
    let p_store = seeded_store(&net, &blocks).await;
    let mut pc = cfg(&[]);
    pc.producer_key = Some(net.oracle.clone());
    pc.block_interval_ms = 300;
    let p = spawn(&net.genesis, p_store.clone(), pc).await;
    // Two early nodes sync from the producer.
    let a_store = Arc::new(MemoryStore::new());
    let b_store = Arc::new(MemoryStore::new());
    let a = spawn(&net.genesis, a_store.clone(), cfg(&[&p])).await;
    let b = spawn(&net.genesis, b_store.clone(), cfg(&[&p, &a])).await;
    wait_for("a and b to sync", 60, || async { head(&a).await >= 300 && head(&b).await >= 300 }).await;

    // A tx submitted at b is gossiped, included by the producer, seen by all.
    // A newcomer: a key the generated chain has never seen.
    let user = &protoblock_core::crypto::signing_key_from_seed(&[77; 32]);
    let tx = sign_transaction(
        user,
        &net.genesis.hash,
        protoblock_net::node::now_ms() * 1_000_000,
        pb::transaction::Body::Name(pb::NameRegistration { fantasy_name: "late-bloomer".into() }),
    );
    b.handle.submit_tx(tx).await.expect("b admits the tx");
    for (name, store) in [("p", &p_store), ("a", &a_store), ("b", &b_store)] {
        let store = store.clone();
        wait_for(&format!("{name} to hold the name"), 30, || {
            let store = store.clone();
            async move { named(&store, user).await.as_deref() == Some("late-bloomer") }
        })
        .await;
    }

    // Two late joiners (bootstrapping from different peers) sync everything.
    let c_store = Arc::new(MemoryStore::new());
    let d_store = Arc::new(MemoryStore::new());
    let c = spawn(&net.genesis, c_store.clone(), cfg(&[&a, &b])).await;
    let d = spawn(&net.genesis, d_store.clone(), cfg(&[&p, &a, &b])).await;
    wait_for("late joiners to catch up", 60, || async {
        let top = head(&p).await;
        head(&c).await >= top && head(&d).await >= top
    })
    .await;
    assert_eq!(named(&d_store, user).await.as_deref(), Some("late-bloomer"));

    // Heads converge: once production pauses briefly, every node holds the
    // same block at the producer's height.
    let nodes = [&p, &a, &b, &c, &d];
    wait_for("all heads equal", 30, || async {
        let mut ids = Vec::new();
        for n in nodes {
            let s = n.handle.status().await.unwrap();
            ids.push((s.head_height, s.head_id));
        }
        ids.windows(2).all(|w| w[0] == w[1])
    })
    .await;
    let d_status = d.handle.status().await.unwrap();
    assert!(d_status.peers.len() >= 2, "d talks to several peers: {:?}", d_status.peers);
    for n in nodes {
        n.handle.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_peer_is_banned_and_sync_completes_from_honest_peers() {
    let net = DevNet::new(22, 20);
    let blocks = generate_chain(&net, 200, 3);
    let mut liar_cfg = cfg(&[]);
    liar_cfg.serve_tampered_blocks = true;
    let liar = spawn(&net.genesis, seeded_store(&net, &blocks).await, liar_cfg).await;
    let honest = spawn(&net.genesis, seeded_store(&net, &blocks).await, cfg(&[])).await;
    let mut fresh = spawn(&net.genesis, Arc::new(MemoryStore::new()), cfg(&[&liar, &honest])).await;
    wait_for("fresh node to sync", 60, || async { head(&fresh).await >= 200 }).await;
    let events = drain(&mut fresh.events);
    let banned: Vec<&PeerId> = events
        .iter()
        .filter_map(|e| match e {
            NodeEvent::PeerBanned { peer, .. } => Some(peer),
            _ => None,
        })
        .collect();
    assert!(banned.contains(&&liar.peer), "liar banned: {events:?}");
    assert!(!banned.contains(&&honest.peer), "honest peer kept");
    let s = fresh.handle.status().await.unwrap();
    assert!(s.peers.iter().all(|p| p.peer != liar.peer), "liar disconnected");
    drop(fresh.task);
}

/// What the thread verifier below saw: ranges, blocks that passed, blocks that failed.
#[derive(Default)]
struct VerifierCounts {
    jobs: std::sync::atomic::AtomicUsize,
    passed: std::sync::atomic::AtomicUsize,
    failed: std::sync::atomic::AtomicUsize,
}

/// The browser's Web Worker verifier, on a thread: the same
/// `verify_signatures_run` over the same channels.
fn thread_verifier(genesis: Genesis) -> (SignatureVerifier, Arc<VerifierCounts>) {
    use std::sync::atomic::Ordering::Relaxed;
    let (jobs_tx, mut jobs_rx) = mpsc::channel::<VerifyJob>(16);
    let (mut done_tx, done_rx) = mpsc::channel::<VerifyDone>(4);
    let counts = Arc::new(VerifierCounts::default());
    let c = counts.clone();
    std::thread::spawn(move || {
        futures::executor::block_on(async move {
            use futures::SinkExt;
            let mut keys = protoblock_core::crypto::KeyCache::default();
            while let Some(job) = jobs_rx.next().await {
                c.jobs.fetch_add(1, Relaxed);
                let run: Vec<&[u8]> = job.blocks.iter().map(Vec::as_slice).collect();
                let ok = protoblock_core::block::verify_signatures_run(&run, &genesis, &mut keys);
                c.passed.fetch_add(ok.iter().filter(|o| **o).count(), Relaxed);
                c.failed.fetch_add(ok.iter().filter(|o| !**o).count(), Relaxed);
                if done_tx.send(VerifyDone { token: job.token, blocks: job.blocks, ok }).await.is_err() {
                    return;
                }
            }
        })
    });
    (SignatureVerifier { jobs: jobs_tx, done: done_rx }, counts)
}

/// Sync with signatures checked off the node loop, as the browser does: the
/// ranges go through the verifier, a liar's tampered blocks fail there, go to
/// the chain unchecked, and the liar is banned exactly as without a verifier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_with_an_off_loop_signature_verifier_still_bans_a_liar() {
    use std::sync::atomic::Ordering::Relaxed;
    let net = DevNet::new(23, 20);
    let blocks = generate_chain(&net, 200, 3);
    let mut liar_cfg = cfg(&[]);
    liar_cfg.serve_tampered_blocks = true;
    let liar = spawn(&net.genesis, seeded_store(&net, &blocks).await, liar_cfg).await;
    let honest = spawn(&net.genesis, seeded_store(&net, &blocks).await, cfg(&[])).await;
    let (verifier, counts) = thread_verifier(net.genesis.clone());
    let mut fresh = spawn_full(
        &net.genesis,
        Arc::new(MemoryStore::new()),
        cfg(&[&liar, &honest]),
        &Role::default(),
        Some(verifier),
    )
    .await;
    wait_for("fresh node to sync", 60, || async { head(&fresh).await >= 200 }).await;
    let status = fresh.handle.status().await.unwrap();
    assert_eq!(status.head_id, honest.handle.status().await.unwrap().head_id);
    assert!(status.blocks_verified_off_loop >= 200, "{} blocks verified off the loop", status.blocks_verified_off_loop);
    let banned: Vec<PeerId> = drain(&mut fresh.events)
        .into_iter()
        .filter_map(|e| match e {
            NodeEvent::PeerBanned { peer, .. } => Some(peer),
            _ => None,
        })
        .collect();
    assert!(banned.contains(&liar.peer) && !banned.contains(&honest.peer), "banned: {banned:?}");
    assert!(counts.jobs.load(Relaxed) >= 200 / 32, "ranges verified: {}", counts.jobs.load(Relaxed));
    // Every block placed went through the verifier (none was checked on the loop instead, as
    // the jobs channel never filled), and the liar's ranges failed there.
    assert!(counts.passed.load(Relaxed) >= 200, "passed: {}", counts.passed.load(Relaxed));
    assert!(counts.failed.load(Relaxed) >= 1, "the liar's tampered blocks were not caught by the verifier");
    drop(fresh.task);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_on_another_chain_is_dropped_at_the_handshake() {
    let ours = DevNet::new(23, 3);
    let theirs = DevNet::new(24, 3);
    let a = spawn(&ours.genesis, Arc::new(MemoryStore::new()), cfg(&[])).await;
    let mut b = spawn(&theirs.genesis, Arc::new(MemoryStore::new()), cfg(&[&a])).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut reason = None;
    while tokio::time::Instant::now() < deadline && reason.is_none() {
        match tokio::time::timeout(Duration::from_secs(1), b.events.next()).await {
            Ok(Some(NodeEvent::PeerIncompatible { peer, reason: r })) if peer == a.peer => reason = Some(r),
            _ => {}
        }
    }
    let reason = reason.expect("b drops a at the handshake");
    assert!(reason.contains("another chain"), "{reason}");
    assert!(b.handle.status().await.unwrap().peers.is_empty());
    assert!(a.handle.status().await.unwrap().peers.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_sync_resumes_from_its_store_and_finishes() {
    let net = DevNet::new(25, 30);
    let blocks = generate_chain(&net, 400, 4);
    let server = spawn(&net.genesis, seeded_store(&net, &blocks).await, cfg(&[])).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let mut c = cfg(&[&server]);
    c.sync.range_len = 8;
    c.sync.max_in_flight = 1;
    let node = spawn(&net.genesis, RedbStore::open(&path).unwrap(), c.clone()).await;
    wait_for("some progress", 60, || async { head(&node).await >= 40 }).await;
    // Kill: abort the task mid-sync; its store is dropped with it.
    node.task.abort();
    let _ = node.task.await;
    let resumed_at = {
        // A commit already handed to redb's writer thread finishes (as one the
        // kernel already had would); the file is free once that thread is done.
        let mut reopened = RedbStore::open(&path);
        for _ in 0..100 {
            if reopened.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            reopened = RedbStore::open(&path);
        }
        let store = reopened.expect("store reopens after the kill");
        let chain = open_chain(&store, net.genesis.clone(), ChainLimits::default()).await.expect("consistent head");
        chain.head().height
    };
    assert!((40..400).contains(&resumed_at), "resumed mid-sync at {resumed_at}");
    let node = spawn(&net.genesis, RedbStore::open(&path).unwrap(), c).await;
    assert!(head(&node).await >= resumed_at, "did not start over");
    wait_for("sync to finish after restart", 60, || async { head(&node).await >= 400 }).await;
    let s = node.handle.status().await.unwrap();
    assert_eq!(s.head_id, Hash32(protoblock_core::hash::sha256(&pb_header(&blocks[399])).0));
}

fn pb_header(block: &[u8]) -> Vec<u8> {
    use prost::Message;
    pb::Block::decode(block).unwrap().header
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_find_each_other_by_rendezvous_at_the_relay() {
    let net = DevNet::new(26, 3);
    let role = Role { rendezvous_point: true, relay: Some(Default::default()), ..Role::default() };
    let mut rc = cfg(&[]);
    rc.advertise_listen_addrs = true;
    let relay = spawn_role(&net.genesis, Arc::new(MemoryStore::new()), rc, &role).await;
    let mut c = cfg(&[&relay]);
    c.advertise_listen_addrs = true;
    let a = spawn(&net.genesis, Arc::new(MemoryStore::new()), c.clone()).await;
    // a registers first; b then discovers a at the rendezvous point.
    wait_for("a to be up with the relay", 20, || async { !a.handle.status().await.unwrap().peers.is_empty() }).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut b = spawn(&net.genesis, Arc::new(MemoryStore::new()), c).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut found = None;
    while tokio::time::Instant::now() < deadline && found.is_none() {
        if let Ok(Some(NodeEvent::Discovered { point, peers })) =
            tokio::time::timeout(Duration::from_secs(1), b.events.next()).await
        {
            found = Some((point, peers));
        }
    }
    let (point, peers) = found.expect("b discovers peers at the rendezvous point");
    assert_eq!(point, relay.peer);
    assert!(peers.contains(&a.peer), "a is registered under the chain's namespace: {peers:?}");
    wait_for("b connected to a", 20, || async {
        b.handle.status().await.unwrap().peers.iter().any(|p| p.peer == a.peer)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_sync_over_quic_and_websocket() {
    use protoblock_net::native::{WebRtcCertificate, build_server_swarm};
    let net = DevNet::new(27, 10);
    let blocks = generate_chain(&net, 60, 3);
    let server_store = seeded_store(&net, &blocks).await;
    let chain = open_chain(&server_store, net.genesis.clone(), ChainLimits::default()).await.unwrap();
    let key = identity::Keypair::generate_ed25519();
    let server_peer = key.public().to_peer_id();
    let cert = WebRtcCertificate::generate(&mut rand_010::rng()).unwrap();
    let mut swarm = build_server_swarm(key, cert, None, params().max_block_bytes, &Role::default()).await.unwrap();
    swarm.listen_on("/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap()).unwrap();
    swarm.listen_on("/ip4/127.0.0.1/tcp/0/ws".parse().unwrap()).unwrap();
    let (node, _server, mut events) = Node::new(swarm, chain, server_store, cfg(&[])).unwrap();
    tokio::spawn(node.run());
    let mut addrs = Vec::new();
    while addrs.len() < 2 {
        if let Some(NodeEvent::Listening { addr }) = events.next().await {
            addrs.push(addr.with_p2p(server_peer).unwrap());
        }
    }
    for transport in ["/quic-v1", "/ws"] {
        let addr = addrs.iter().find(|a| a.to_string().contains(transport)).unwrap().clone();
        let key = identity::Keypair::generate_ed25519();
        let cert = WebRtcCertificate::generate(&mut rand_010::rng()).unwrap();
        let swarm = build_server_swarm(key, cert, None, params().max_block_bytes, &Role::default()).await.unwrap();
        let store = Arc::new(MemoryStore::new());
        let chain = open_chain(&store, net.genesis.clone(), ChainLimits::default()).await.unwrap();
        let mut c = cfg(&[]);
        c.bootstrap = vec![addr.clone()];
        let (node, handle, _ev) = Node::new(swarm, chain, store, c).unwrap();
        tokio::spawn(node.run());
        wait_for(&format!("sync over {transport}"), 30, || async { handle.status().await.unwrap().head_height >= 60 })
            .await;
        let s = handle.status().await.unwrap();
        let via = s.peers.iter().find(|p| p.peer == server_peer).and_then(|p| p.addr.clone()).expect("connected");
        assert!(via.to_string().contains(transport), "connected over {via}, wanted {transport}");
        handle.shutdown().await;
    }
}

mod circuit {
    use libp2p::swarm::NetworkBehaviour;
    use libp2p::{identify, ping, relay};

    /// A minimal relay client, as a browser peer behind NAT will be.
    #[derive(NetworkBehaviour)]
    pub struct Client {
        pub relay: relay::client::Behaviour,
        pub identify: identify::Behaviour,
        pub ping: ping::Behaviour,
    }
}

fn relay_client() -> libp2p::Swarm<circuit::Client> {
    use libp2p::{identify, ping};
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(libp2p::tcp::Config::default(), libp2p::noise::Config::new, libp2p::yamux::Config::default)
        .unwrap()
        .with_relay_client(libp2p::noise::Config::new, libp2p::yamux::Config::default)
        .unwrap()
        .with_behaviour(|key, relay| circuit::Client {
            relay,
            identify: identify::Behaviour::new(identify::Config::new("/test/1".into(), key.public())),
            ping: ping::Behaviour::new(ping::Config::new()),
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_serves_reservations_and_circuits() {
    use libp2p::multiaddr::Protocol;
    use libp2p::relay;
    use libp2p::swarm::SwarmEvent;
    let net = DevNet::new(28, 3);
    let role = Role { relay: Some(Default::default()), rendezvous_point: true, ..Role::default() };
    let mut rc = cfg(&[]);
    rc.advertise_listen_addrs = true;
    let relay_node = spawn_role(&net.genesis, Arc::new(MemoryStore::new()), rc, &role).await;

    // A reserves a slot and listens on the circuit address.
    let mut a = relay_client();
    let a_id = *a.local_peer_id();
    a.listen_on(relay_node.addr.clone().with(Protocol::P2pCircuit)).unwrap();
    let accepted = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let SwarmEvent::Behaviour(circuit::ClientEvent::Relay(relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                ..
            })) = a.select_next_some().await
            {
                return relay_peer_id;
            }
        }
    })
    .await
    .expect("reservation accepted");
    assert_eq!(accepted, relay_node.peer);
    // A keeps running (dropping its swarm would drop the circuit) and
    // reports the inbound circuit.
    let (circuit_tx, mut circuit_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let ev = a.select_next_some().await;
            if let SwarmEvent::Behaviour(circuit::ClientEvent::Relay(
                relay::client::Event::InboundCircuitEstablished { src_peer_id, .. },
            )) = ev
            {
                let _ = circuit_tx.send(src_peer_id);
            }
        }
    });

    // B reaches A through the relay.
    let mut b = relay_client();
    let via = relay_node.addr.clone().with(Protocol::P2pCircuit).with(Protocol::P2p(a_id));
    b.dial(via).unwrap();
    let connected = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let ev = b.select_next_some().await;
            if let SwarmEvent::ConnectionEstablished { peer_id, endpoint, .. } = ev
                && peer_id == a_id
            {
                return endpoint.get_remote_address().to_string();
            }
        }
    })
    .await
    .expect("b connects to a through the relay");
    assert!(connected.contains("p2p-circuit"), "{connected}");
    let b_id = *b.local_peer_id();
    tokio::spawn(async move {
        loop {
            b.select_next_some().await;
        }
    });
    let src = tokio::time::timeout(Duration::from_secs(10), circuit_rx.recv()).await.unwrap().unwrap();
    assert_eq!(src, b_id, "a sees b's circuit through the relay");
}

/// A node on a short fork (here: three blocks of its own past the common
/// 20) meets a peer with a longer chain. Range requests start above its own
/// head, where the peer's blocks do not attach; it must fetch back to the
/// fork point, hold the peer's branch as side blocks and switch to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_on_a_short_fork_switches_to_the_longer_chain() {
    use protoblock_core::producer::produce_block;
    use protoblock_devnet::DEV_GENESIS_TIME_MS;
    let net = DevNet::new(23, 20);
    let blocks = generate_chain(&net, 40, 3);
    let a_store = seeded_store(&net, &blocks).await;
    let a = spawn(&net.genesis, a_store, cfg(&[])).await;

    // B: the first 20 blocks, then three of its own (other timestamps, so other ids).
    let b_store = seeded_store(&net, &blocks[..20]).await;
    let mut chain = open_chain(&b_store, net.genesis.clone(), ChainLimits::default()).await.unwrap();
    for h in 21..=23u64 {
        let ts = DEV_GENESIS_TIME_MS + h * 1000 + 500;
        let produced = produce_block(&chain, std::iter::empty(), &net.oracle, ts).unwrap();
        let update = chain.insert_block(&produced.bytes, ts).unwrap();
        b_store.commit(update.batch.unwrap()).await.unwrap();
    }
    let fork_tip = chain.head();
    assert_eq!(fork_tip.height, 23);
    drop(chain);
    let b = spawn(&net.genesis, b_store, cfg(&[&a])).await;
    wait_for("b to switch to a's chain", 60, || async { head(&b).await >= 40 }).await;
    let (sa, sb) = (a.handle.status().await.unwrap(), b.handle.status().await.unwrap());
    assert_eq!(sb.head_id, sa.head_id, "b follows a's chain");
    assert_ne!(sb.head_id, fork_tip.id);
}

/// A memory store whose commits take a second to become durable (as
/// IndexedDB's while a long transaction runs), and records each commit's size.
struct BusyStore {
    inner: Arc<MemoryStore>,
    durable_after: Duration,
    commits: std::sync::Mutex<Vec<usize>>,
}

impl Store for BusyStore {
    async fn load(&self) -> Result<Option<protoblock_core::chain::StoredChain>, protoblock_store::StoreError> {
        self.inner.load().await
    }
    async fn commit(&self, batch: protoblock_core::WriteBatch) -> Result<(), protoblock_store::StoreError> {
        self.commits.lock().unwrap().push(batch.put_blocks.len());
        self.inner.commit(batch).await?;
        // Durable a second later, as a slow disk or a long IndexedDB transaction.
        tokio::time::sleep(self.durable_after).await;
        Ok(())
    }
    async fn head(&self) -> Result<Option<protoblock_core::chain::HeadRecord>, protoblock_store::StoreError> {
        self.inner.head().await
    }
    async fn blocks_range(
        &self,
        start: u64,
        count: u32,
        max_bytes: usize,
    ) -> Result<Vec<Vec<u8>>, protoblock_store::StoreError> {
        self.inner.blocks_range(start, count, max_bytes).await
    }
    async fn block_by_id(&self, id: Hash32) -> Result<Option<Vec<u8>>, protoblock_store::StoreError> {
        self.inner.block_by_id(id).await
    }
    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, protoblock_store::StoreError> {
        self.inner.get_meta(key).await
    }
    async fn put_meta(&self, key: &str, value: Vec<u8>) -> Result<(), protoblock_store::StoreError> {
        self.inner.put_meta(key, value).await
    }
}

/// While its store is still writing, a syncing node merges the next runs
/// into one commit instead of waiting (group commit), bounded, and still
/// stores every block exactly once: once nothing more is ready to validate it
/// flushes, so the store's head reaches the node's and a reopen resumes there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_store_gets_merged_commits_and_every_block() {
    let net = DevNet::new(31, 20);
    let blocks = generate_chain(&net, 600, 2);
    let server = spawn(&net.genesis, seeded_store(&net, &blocks).await, cfg(&[])).await;
    let inner = Arc::new(MemoryStore::new());
    let store = Arc::new(BusyStore {
        inner: inner.clone(),
        durable_after: Duration::from_secs(1),
        commits: Default::default(),
    });
    let fresh = spawn(&net.genesis, store.clone(), cfg(&[&server])).await;
    wait_for("fresh node to sync", 60, || async { head(&fresh).await >= 600 }).await;
    wait_for("the store to reach the node's head", 10, || async {
        inner.head().await.unwrap().is_some_and(|h| h.height >= 600)
    })
    .await;
    let commits = store.commits.lock().unwrap().clone();
    let stored: usize = commits.iter().sum();
    assert_eq!(stored, 600, "every block committed once: {commits:?}");
    let largest = commits.iter().copied().max().unwrap_or(0);
    // One drain places at most 128 blocks; a larger commit merged several.
    assert!(largest > 128 && largest <= 256, "no merged commit, or an unbounded one: {commits:?}");
    fresh.handle.shutdown().await;
    let stored_head = inner.head().await.unwrap().unwrap();
    assert_eq!(stored_head.height, 600);
    assert_eq!(open_chain(&*inner, net.genesis.clone(), ChainLimits::default()).await.unwrap().head().height, 600);
    drop(fresh.task);
}

/// A memory store whose range reads take a while (a slow disk, a big
/// IndexedDB read) and which counts reads that were dropped before they
/// finished.
struct SlowReadStore {
    inner: Arc<MemoryStore>,
    read_delay: Duration,
    started: std::sync::atomic::AtomicUsize,
    dropped: Arc<std::sync::atomic::AtomicUsize>,
}

/// Counts a read as dropped unless it was marked finished.
struct ReadGuard {
    finished: bool,
    dropped: Arc<std::sync::atomic::AtomicUsize>,
}

impl Drop for ReadGuard {
    fn drop(&mut self) {
        if !self.finished {
            self.dropped.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

impl Store for SlowReadStore {
    async fn load(&self) -> Result<Option<protoblock_core::chain::StoredChain>, protoblock_store::StoreError> {
        self.inner.load().await
    }
    async fn commit(&self, batch: protoblock_core::WriteBatch) -> Result<(), protoblock_store::StoreError> {
        self.inner.commit(batch).await
    }
    async fn head(&self) -> Result<Option<protoblock_core::chain::HeadRecord>, protoblock_store::StoreError> {
        self.inner.head().await
    }
    async fn blocks_range(
        &self,
        start: u64,
        count: u32,
        max_bytes: usize,
    ) -> Result<Vec<Vec<u8>>, protoblock_store::StoreError> {
        self.started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut guard = ReadGuard { finished: false, dropped: self.dropped.clone() };
        tokio::time::sleep(self.read_delay).await;
        let r = self.inner.blocks_range(start, count, max_bytes).await;
        guard.finished = true;
        r
    }
    async fn block_by_id(&self, id: Hash32) -> Result<Option<Vec<u8>>, protoblock_store::StoreError> {
        self.inner.block_by_id(id).await
    }
    async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, protoblock_store::StoreError> {
        self.inner.get_meta(key).await
    }
    async fn put_meta(&self, key: &str, value: Vec<u8>) -> Result<(), protoblock_store::StoreError> {
        self.inner.put_meta(key, value).await
    }
}

/// A node shut down while it serves a range lets the read finish instead of
/// dropping it: in the browser a read dropped in flight leaves an IndexedDB
/// request whose handler throws when it completes ("closure invoked ...
/// after being dropped"), which CI caught as an uncaught page error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_while_serving_finishes_its_reads() {
    use std::sync::atomic::Ordering::SeqCst;
    let net = DevNet::new(37, 20);
    let blocks = generate_chain(&net, 200, 2);
    let store = Arc::new(SlowReadStore {
        inner: seeded_store(&net, &blocks).await,
        read_delay: Duration::from_millis(800),
        started: Default::default(),
        dropped: Default::default(),
    });
    let server = spawn(&net.genesis, store.clone(), cfg(&[])).await;
    let fresh = spawn(&net.genesis, Arc::new(MemoryStore::new()), cfg(&[&server])).await;
    wait_for("the server to start a read", 30, || async { store.started.load(SeqCst) > 0 }).await;
    tokio::time::timeout(Duration::from_secs(10), server.handle.shutdown()).await.expect("shutdown within 10 s");
    // The node task ends (and drops whatever it still owns) after it answers.
    tokio::time::timeout(Duration::from_secs(10), server.task).await.expect("node task ends").unwrap();
    assert!(store.started.load(SeqCst) > 0);
    assert_eq!(store.dropped.load(SeqCst), 0, "a read in flight at shutdown was dropped");
    drop(fresh);
}
