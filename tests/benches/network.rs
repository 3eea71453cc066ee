//! Network benchmarks on loopback (`cargo xtask bench`):
//!
//! 1. Gossip: a mesh of 16 and 32 native nodes, one publisher sending
//!    block-sized messages. Delivery latency (p50, p99) and duplicate copies
//!    received per node per message, for our gossipsub settings and, in the
//!    same run, for plain flooding (the seed's "everyone sends everyone
//!    everything": every connected peer made a gossipsub explicit peer, to
//!    which every new message is forwarded, so both are counted by the same
//!    metrics).
//! 2. Sync: a fresh full node syncing a generated chain over TCP from a
//!    serving node, as blocks/s and as a ratio to the signature bound
//!    (batch-verifying the same chain's signatures alone) in the same run.
//!
//! Bounded: PB_NET_BLOCKS messages per gossip run (default 40), sizes
//! 16 and 32, PB_SYNC_BLOCKS blocks for sync (default 2000 x 50 txs).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, SwarmBuilder, identity, noise, tcp, yamux};
use prometheus_client::registry::Registry;
use protoblock_core::ChainLimits;
use protoblock_core::ChainParams;
use protoblock_devnet::{DevNet, SplitMix64, generate_chain};
use protoblock_net::behaviour::{Role, gossip_config};
use protoblock_net::native::build_swarm;
use protoblock_net::node::{Node, NodeConfig, NodeEvent};
use protoblock_store::{MemoryStore, open_chain};
use protoblock_tests::import;
use tokio::sync::mpsc;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Gossipsub,
    Flood,
}

struct Received {
    node: usize,
    msg: u32,
    at: Instant,
}

fn counter(registry: &Registry, name: &str) -> f64 {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn gossip_run(n: usize, mode: Mode, messages: u32, seed: u64) -> (f64, f64, f64) {
    let topic = IdentTopic::new("bench/blocks");
    let (tx, mut rx) = mpsc::unbounded_channel::<Received>();
    let mut addrs: Vec<Multiaddr> = Vec::new();
    let mut publish_tx = Vec::new();
    let mut registries = Vec::new();
    for i in 0..n {
        let mut cfg = gossip_config(1 << 20);
        if mode == Mode::Flood {
            // Flooding: every connected peer is an explicit peer, and gossipsub
            // forwards every new message to all explicit peers.
            cfg.flood_publish(true);
        }
        let cfg = cfg.build().unwrap();
        let key = identity::Keypair::generate_ed25519();
        let registry = Arc::new(std::sync::Mutex::new(Registry::default()));
        let reg2 = registry.clone();
        let mut swarm = SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
            .unwrap()
            .with_behaviour(|key| {
                gossipsub::Behaviour::<gossipsub::IdentityTransform, gossipsub::AllowAllSubscriptionFilter>::new(
                    gossipsub::MessageAuthenticity::Signed(key.clone()),
                    cfg,
                )
                .unwrap()
                .with_metrics(&mut reg2.lock().unwrap(), Default::default())
            })
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
            .build();
        swarm.behaviour_mut().subscribe(&topic).unwrap();
        swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap()).unwrap();
        let addr = loop {
            if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
                break address;
            }
        };
        // Ring plus three random links: connected, degree about 6-8.
        let mut rng = SplitMix64(seed + i as u64);
        let mut targets: Vec<usize> = Vec::new();
        if i > 0 {
            targets.push(i - 1);
            for _ in 0..3 {
                targets.push(rng.below(i as u64) as usize);
            }
        }
        targets.sort();
        targets.dedup();
        for t in targets {
            swarm.dial(addrs[t].clone()).unwrap();
        }
        addrs.push(addr);
        registries.push(registry);
        let (ptx, mut prx) = mpsc::unbounded_channel::<Vec<u8>>();
        publish_tx.push(ptx);
        let tx = tx.clone();
        let topic = topic.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(data) = prx.recv() => {
                        let _ = swarm.behaviour_mut().publish(topic.clone(), data);
                    }
                    ev = swarm.select_next_some() => {
                        if let (Mode::Flood, SwarmEvent::ConnectionEstablished { peer_id, .. }) = (mode, &ev) {
                            swarm.behaviour_mut().add_explicit_peer(peer_id);
                        }
                        if let SwarmEvent::Behaviour(gossipsub::Event::Message { propagation_source, message_id, message }) = ev {
                            let at = Instant::now();
                            let msg = u32::from_le_bytes(message.data[..4].try_into().unwrap());
                            let _ = tx.send(Received { node: i, msg, at });
                            swarm.behaviour_mut().report_message_validation_result(&message_id, &propagation_source, MessageAcceptance::Accept);
                        }
                    }
                }
            }
        });
    }
    // Let meshes form (a few heartbeats).
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut sent: HashMap<u32, Instant> = HashMap::new();
    for m in 0..messages {
        let mut data = vec![0u8; 8 * 1024];
        data[..4].copy_from_slice(&m.to_le_bytes());
        data[4..12].copy_from_slice(&seed.to_le_bytes());
        sent.insert(m, Instant::now());
        publish_tx[0].send(data).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut lat: Vec<f64> = Vec::new();
    let mut got: HashMap<(usize, u32), ()> = HashMap::new();
    while let Ok(r) = rx.try_recv() {
        if got.insert((r.node, r.msg), ()).is_none() {
            lat.push((r.at - sent[&r.msg]).as_secs_f64() * 1000.0);
        }
    }
    let expected = (n - 1) * messages as usize;
    assert!(got.len() * 100 >= expected * 99, "{mode:?} {n}: only {} of {expected} deliveries", got.len());
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let p = |q: f64| lat[((lat.len() as f64 - 1.0) * q) as usize];
    if std::env::var_os("PB_NET_DUMP").is_some() {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registries[1].lock().unwrap()).unwrap();
        println!("{}", text.lines().filter(|l| l.contains("recv")).collect::<Vec<_>>().join("\n"));
    }
    let mut dups = 0.0;
    for r in registries.iter().skip(1) {
        let r = r.lock().unwrap();
        let all = counter(&r, "topic_msg_recv_counts_unfiltered_total");
        let unique = counter(&r, "topic_msg_recv_counts_total");
        dups += (all - unique) / messages as f64;
    }
    (p(0.5), p(0.99), dups / (n - 1) as f64)
}

async fn sync_run(blocks: u64, txs: usize) {
    let params = ChainParams::default();
    let net = DevNet::new(77, 2000);
    let t = Instant::now();
    let chain_blocks = generate_chain(&net, blocks, txs);
    println!("\nsync: {blocks} blocks x up to {txs} txs generated in {:.1?}", t.elapsed());

    // The bound: signatures alone, in this run.
    let bound = {
        use prost::Message;
        use protoblock_core::crypto::{PublicKey, block_message, parse_signature, tx_message};
        use protoblock_core::proto::v1 as pb;
        let mut work = Vec::new();
        for b in &chain_blocks {
            let block = pb::Block::decode(b.as_slice()).unwrap();
            let header = pb::BlockHeader::decode(block.header.as_slice()).unwrap();
            let hv = PublicKey::parse(&header.producer).unwrap().1;
            let hs = parse_signature(&block.signature).unwrap();
            let msgs: Vec<Vec<u8>> = block.txs.iter().map(|st| tx_message(&net.genesis.hash, &st.tx)).collect();
            let sigs: Vec<_> = block.txs.iter().map(|st| parse_signature(&st.signature).unwrap()).collect();
            let keys: Vec<_> = block.txs.iter().map(|st| PublicKey::parse(&st.signer).unwrap().1).collect();
            work.push((block_message(&block.header), hs, hv, msgs, sigs, keys));
        }
        let t = Instant::now();
        for (hm, hs, hv, msgs, sigs, keys) in &work {
            assert!(protoblock_core::crypto::verify_one(hm, hs, hv));
            let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
            assert!(protoblock_core::crypto::verify_batch(&refs, sigs, keys));
        }
        t.elapsed()
    };

    let server_store = Arc::new(MemoryStore::new());
    let mut chain = open_chain(&server_store, net.genesis.clone(), ChainLimits::default()).await.unwrap();
    import(&server_store, &mut chain, &chain_blocks, 64).await.unwrap();
    drop(chain);
    let spawn = |store: Arc<MemoryStore>, bootstrap: Vec<Multiaddr>| {
        let genesis = net.genesis.clone();
        let params = params.clone();
        async move {
            let chain = open_chain(&store, genesis, ChainLimits::default()).await.unwrap();
            let key = identity::Keypair::generate_ed25519();
            let peer = key.public().to_peer_id();
            let mut swarm = build_swarm(key, params.max_block_bytes, &Role::default()).unwrap();
            swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap()).unwrap();
            let cfg = NodeConfig { bootstrap, ..NodeConfig::default() };
            let (node, handle, events) = Node::new(swarm, chain, store, cfg).unwrap();
            tokio::spawn(node.run());
            (handle, events, peer)
        }
    };
    let (_server, mut sev, speer) = spawn(server_store, vec![]).await;
    let addr = loop {
        if let Some(NodeEvent::Listening { addr }) = sev.next().await {
            break addr.with_p2p(speer).unwrap();
        }
    };
    let t = Instant::now();
    let (fresh, mut fev, _) = spawn(Arc::new(MemoryStore::new()), vec![addr]).await;
    loop {
        match tokio::time::timeout(Duration::from_secs(120), fev.next()).await.expect("sync stalled") {
            Some(NodeEvent::NewHead { height, .. }) if height >= blocks => break,
            Some(_) => {}
            None => panic!("node stopped"),
        }
    }
    let took = t.elapsed();
    let s = fresh.status().await.unwrap();
    assert_eq!(s.head_height, blocks);
    let rate = blocks as f64 / took.as_secs_f64();
    let bound_rate = blocks as f64 / bound.as_secs_f64();
    println!(
        "| fresh node sync over TCP (MemoryStore) | {rate:>8.0} blocks/s | bound {bound_rate:>8.0} blocks/s | ratio {:.2} |",
        rate / bound_rate
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let env = |k: &str, d: u64| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let messages = env("PB_NET_BLOCKS", 40) as u32;
    println!("gossip: {messages} messages of 8 KiB, one every 100 ms, from one publisher; loopback TCP");
    println!("| nodes | mode | p50 ms | p99 ms | duplicates per node per message |");
    println!("|---|---|---|---|---|");
    for n in [16usize, 32] {
        for mode in [Mode::Gossipsub, Mode::Flood] {
            let (p50, p99, dups) = gossip_run(n, mode, messages, n as u64 * 7).await;
            println!("| {n} | {mode:?} | {p50:.1} | {p99:.1} | {dups:.2} |");
        }
    }
    sync_run(env("PB_SYNC_BLOCKS", 2000), env("PB_SYNC_TXS", 50) as usize).await;
}
