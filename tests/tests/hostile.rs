//! Hostile peers against a real native node over TCP on loopback: raw
//! rust-libp2p swarms that speak only what an attacker needs.

use std::time::Duration;

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, identity};
use protoblock_core::ChainLimits;
use protoblock_core::proto::v1 as pb;
use protoblock_devnet::{DevNet, sign_transaction};
use protoblock_net::behaviour::{Role, gossip_config};
use protoblock_net::native::build_swarm;
use protoblock_net::node::{Node, NodeConfig, NodeEvent, NodeHandle};
use protoblock_net::policy::AdmissionConfig;
use protoblock_store::{MemoryStore, open_chain};

struct Victim {
    handle: NodeHandle,
    events: futures::channel::mpsc::Receiver<NodeEvent>,
    addr: Multiaddr,
    peer: PeerId,
}

async fn victim(net: &DevNet) -> Victim {
    victim_with(net, &Role::default(), NodeConfig::default()).await
}

async fn victim_with(net: &DevNet, role: &Role, cfg: NodeConfig) -> Victim {
    let store = MemoryStore::new();
    let chain = open_chain(&store, net.genesis.clone(), ChainLimits::default()).await.unwrap();
    let key = identity::Keypair::generate_ed25519();
    let peer = key.public().to_peer_id();
    let mut swarm = build_swarm(key, net.genesis.params.max_block_bytes, role).unwrap();
    swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap()).unwrap();
    let (node, handle, mut events) = Node::new(swarm, chain, store, cfg).unwrap();
    tokio::spawn(node.run());
    let addr = loop {
        match tokio::time::timeout(Duration::from_secs(10), events.next()).await.expect("listening").unwrap() {
            NodeEvent::Listening { addr } => break addr,
            _ => continue,
        }
    };
    Victim { handle, events, addr: addr.with_p2p(peer).unwrap(), peer }
}

/// A peer that speaks gossipsub and nothing else, with the node's settings.
fn gossiper(max_block_bytes: usize) -> Swarm<gossipsub::Behaviour> {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(libp2p::tcp::Config::default(), libp2p::noise::Config::new, libp2p::yamux::Config::default)
        .unwrap()
        .with_behaviour(|key| {
            let cfg = gossip_config(max_block_bytes).build().unwrap();
            gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Signed(key.clone()), cfg).unwrap()
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

fn tx_topic(net: &DevNet) -> IdentTopic {
    IdentTopic::new(format!("/protoblock/{}/txs/1", &net.genesis.hash.to_hex()[..16]))
}

/// Connects `g` to the victim and waits until the victim's subscription to
/// `topic` is known (so a publish reaches it).
async fn join(g: &mut Swarm<gossipsub::Behaviour>, v: &Victim, topic: &IdentTopic) {
    g.behaviour_mut().subscribe(topic).unwrap();
    g.dial(v.addr.clone()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let SwarmEvent::Behaviour(gossipsub::Event::Subscribed { peer_id, topic: t }) =
                g.select_next_some().await
                && peer_id == v.peer
                && t == topic.hash()
            {
                return;
            }
        }
    })
    .await
    .expect("the victim's subscription arrives");
}

fn valid_tx(net: &DevNet, seed: u8, name: &str) -> Vec<u8> {
    let user = protoblock_core::crypto::signing_key_from_seed(&[seed; 32]);
    sign_transaction(
        &user,
        &net.genesis.hash,
        protoblock_net::node::now_ms() * 1_000_000,
        pb::transaction::Body::Name(pb::NameRegistration { fantasy_name: name.into() }),
    )
}

/// Polls the swarm for `d` (it must keep running to deliver what it publishes).
async fn drive(g: &mut Swarm<gossipsub::Behaviour>, d: Duration) {
    let _ = tokio::time::timeout(d, async {
        loop {
            g.select_next_some().await;
        }
    })
    .await;
}

/// Whether the victim accepted a tx within `d`.
async fn accepts_a_tx(v: &mut Victim, g: &mut Swarm<gossipsub::Behaviour>, d: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + d;
    while tokio::time::Instant::now() < deadline {
        drive(g, Duration::from_millis(50)).await;
        while let Ok(e) = v.events.try_recv() {
            if matches!(e, NodeEvent::TxAccepted { .. }) {
                return true;
            }
        }
    }
    false
}

/// Invalid gossip costs its sender its gossipsub standing: a peer that
/// publishes a few txs that do not decode is graylisted by the node's peer
/// scoring, so even its valid tx afterwards goes unheard; a fresh peer's
/// valid tx is accepted (the control). Without scoring, a Reject verdict
/// cost the sender nothing and its next message was heard as any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_gossip_costs_its_sender_its_standing() {
    let net = DevNet::new(61, 10);
    let mut v = victim(&net).await;
    let topic = tx_topic(&net);
    let max = net.genesis.params.max_block_bytes;

    let mut honest = gossiper(max);
    join(&mut honest, &v, &topic).await;
    honest.behaviour_mut().publish(topic.clone(), valid_tx(&net, 1, "honest")).unwrap();
    assert!(accepts_a_tx(&mut v, &mut honest, Duration::from_secs(10)).await, "a fresh peer's valid tx is accepted");

    let mut attacker = gossiper(max);
    join(&mut attacker, &v, &topic).await;
    for i in 0..6u8 {
        // Distinct junk (the duplicate cache would drop a repeat).
        attacker.behaviour_mut().publish(topic.clone(), vec![0xff, i, 0xff]).unwrap();
        drive(&mut attacker, Duration::from_millis(100)).await;
    }
    drive(&mut attacker, Duration::from_millis(500)).await;
    attacker.behaviour_mut().publish(topic.clone(), valid_tx(&net, 2, "attacker")).unwrap();
    assert!(
        !accepts_a_tx(&mut v, &mut attacker, Duration::from_secs(3)).await,
        "the sender of invalid gossip is graylisted: its valid tx goes unheard"
    );
}

/// A peer that connects and does nothing else (no handshake, no relay use),
/// in its own task; `connected` says whether it holds a connection.
struct Idle {
    connected: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

fn idle_peer(addr: &Multiaddr) -> Idle {
    use std::sync::atomic::Ordering;
    let connected = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut g = gossiper(1 << 20);
    g.dial(addr.clone()).unwrap();
    let flag = connected.clone();
    let task = tokio::spawn(async move {
        loop {
            match g.select_next_some().await {
                SwarmEvent::ConnectionEstablished { .. } => flag.store(true, Ordering::SeqCst),
                SwarmEvent::ConnectionClosed { num_established: 0, .. } => flag.store(false, Ordering::SeqCst),
                _ => {}
            }
        }
    });
    Idle { connected, task }
}

impl Idle {
    fn holds(&self) -> bool {
        self.connected.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Idle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Peer ids are free, addresses are not: a fourth connection from one
/// address over a limit of three is refused, whatever its peer id (with no
/// such limit, one host with a few keys could hold every slot).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_from_one_address_are_limited() {
    let net = DevNet::new(62, 10);
    let admission = AdmissionConfig { max_per_ip: 3, loopback_exempt: false, ..AdmissionConfig::default() };
    let role = Role { admission, ..Role::default() };
    let v = victim_with(&net, &role, NodeConfig::default()).await;
    let held: Vec<Idle> = (0..3).map(|_| idle_peer(&v.addr)).collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(held.iter().all(Idle::holds), "three connections from 127.0.0.1 are held");
    let fourth = idle_peer(&v.addr);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!fourth.holds(), "the fourth from the same address is refused");
    assert!(held.iter().all(Idle::holds), "and the first three stay");
    drop(held);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let again = idle_peer(&v.addr);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(again.holds(), "closed connections free their address's slots");
}

/// When full, a newcomer takes the place of the oldest connection that has
/// neither passed the handshake in its grace time nor uses us as a relay;
/// a peer that passed the handshake keeps its place. Before, a full node
/// refused every newcomer while idle connections held the slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_node_evicts_idle_connections_for_newcomers_not_its_peers() {
    let net = DevNet::new(63, 10);
    let admission = AdmissionConfig { max_connections: 3, handshake_grace_ms: 500, ..AdmissionConfig::default() };
    let role = Role { admission, ..Role::default() };
    let v = victim_with(&net, &role, NodeConfig::default()).await;
    let honest =
        victim_with(&net, &Role::default(), NodeConfig { bootstrap: vec![v.addr.clone()], ..NodeConfig::default() })
            .await;
    let peer_up =
        || async { v.handle.status().await.map(|s| s.peers.iter().any(|p| p.peer == honest.peer)).unwrap_or(false) };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !peer_up().await {
        assert!(tokio::time::Instant::now() < deadline, "the honest peer passes the handshake");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let old_a = idle_peer(&v.addr);
    let old_b = idle_peer(&v.addr);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(old_a.holds() && old_b.holds(), "the node is full: its peer and two idle connections");
    let newcomer = idle_peer(&v.addr);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(newcomer.holds(), "a newcomer is let in");
    assert_eq!([old_a.holds(), old_b.holds()].iter().filter(|h| **h).count(), 1, "one idle connection made room");
    assert!(peer_up().await, "the peer that passed the handshake keeps its place");
    // The newcomer is within its grace: a second newcomer takes the other old one.
    let second = idle_peer(&v.addr);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(second.holds() && newcomer.holds() && !old_a.holds() && !old_b.holds());
}

fn rendezvous_client() -> Swarm<libp2p::rendezvous::client::Behaviour> {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(libp2p::tcp::Config::default(), libp2p::noise::Config::new, libp2p::yamux::Config::default)
        .unwrap()
        .with_behaviour(|key| libp2p::rendezvous::client::Behaviour::new(key.clone()))
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

/// Drives `c` until `want` picks an event out of it (10 s at most).
async fn next_rendezvous<T>(
    c: &mut Swarm<libp2p::rendezvous::client::Behaviour>,
    mut want: impl FnMut(SwarmEvent<libp2p::rendezvous::client::Event>) -> Option<T>,
) -> T {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(t) = want(c.select_next_some().await) {
                return t;
            }
        }
    })
    .await
    .expect("the rendezvous point answers")
}

async fn connect_rendezvous(c: &mut Swarm<libp2p::rendezvous::client::Behaviour>, v: &Victim) {
    c.dial(v.addr.clone()).unwrap();
    next_rendezvous(c, |e| matches!(e, SwarmEvent::ConnectionEstablished { .. }).then_some(())).await;
}

/// Registers in each namespace; how many the point accepted.
async fn register_all(c: &mut Swarm<libp2p::rendezvous::client::Behaviour>, v: &Victim, namespaces: &[&str]) -> usize {
    use libp2p::rendezvous::{Namespace, client::Event};
    for ns in namespaces {
        c.behaviour_mut().register(Namespace::new(ns.to_string()).unwrap(), v.peer, Some(7200)).unwrap();
    }
    let mut accepted = 0;
    for _ in namespaces {
        accepted += next_rendezvous(c, |e| match e {
            SwarmEvent::Behaviour(Event::Registered { .. }) => Some(1),
            SwarmEvent::Behaviour(Event::RegisterFailed { .. }) => Some(0),
            _ => None,
        })
        .await;
    }
    accepted
}

/// How many registrations (all namespaces) the point hands out.
async fn discover_all(c: &mut Swarm<libp2p::rendezvous::client::Behaviour>, v: &Victim) -> usize {
    use libp2p::rendezvous::client::Event;
    c.behaviour_mut().discover(None, None, None, v.peer);
    next_rendezvous(c, |e| match e {
        SwarmEvent::Behaviour(Event::Discovered { registrations, .. }) => Some(registrations.len()),
        SwarmEvent::Behaviour(Event::DiscoverFailed { .. }) => Some(usize::MAX),
        _ => None,
    })
    .await
}

/// A relay's rendezvous point holds small records, a few namespaces per
/// peer, and only of peers still connected, so keys (which are free) cannot
/// fill it for the honest nodes. libp2p-rendezvous 0.18's server, which the
/// relay ran before, accepted the 5 KiB record, 32 namespaces per peer, and
/// kept a registration for its TTL after its peer had left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rendezvous_point_holds_small_records_few_namespaces_and_only_connected_peers() {
    let net = DevNet::new(64, 10);
    let role = Role { rendezvous_point: true, ..Role::default() };
    let v = victim_with(&net, &role, NodeConfig::default()).await;

    let mut big = rendezvous_client();
    // libp2p keeps 20 external addresses: 20 of about 250 bytes each.
    let long = ["a", "b", "c", "d"].map(|c| c.repeat(60)).join(".");
    for port in 0..20 {
        big.add_external_address(format!("/dns4/{long}/tcp/{}", 1000 + port).parse().unwrap());
    }
    connect_rendezvous(&mut big, &v).await;
    assert_eq!(register_all(&mut big, &v, &["protoblock/big"]).await, 0, "a 5 KiB record is refused");

    let mut many = rendezvous_client();
    many.add_external_address("/ip4/127.0.0.1/tcp/4001".parse().unwrap());
    connect_rendezvous(&mut many, &v).await;
    let namespaces: Vec<String> = (0..10).map(|i| format!("ns{i}")).collect();
    let namespaces: Vec<&str> = namespaces.iter().map(String::as_str).collect();
    let held = register_all(&mut many, &v, &namespaces).await;
    assert_eq!(held, 4, "four namespaces per peer");
    assert_eq!(register_all(&mut many, &v, &["ns0"]).await, 1, "a refresh is not a new one");

    let mut asker = rendezvous_client();
    connect_rendezvous(&mut asker, &v).await;
    assert_eq!(discover_all(&mut asker, &v).await, held, "what it registered is handed out");
    drop(many);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(discover_all(&mut asker, &v).await, 0, "and is gone with its peer");
}
