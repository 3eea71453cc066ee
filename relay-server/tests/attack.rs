//! The real relay binary under every live attack at once
//! (`protoblock_tests::attack`, many identities over WebSocket on loopback):
//! liars (a head of 2^60, junk block gossip), a connection flood past the
//! relay's connection limit, and peers that open sync streams and never
//! read them, all from 127.0.0.1. Asserted from outside: blocks keep coming,
//! `/health` answers fast, a fresh honest node from another address (::1)
//! joins (admission makes room for it in the flood) and syncs to the head,
//! the liars lose their connections, and the relay's memory stays bounded.

use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::identity;
use protoblock_core::ChainLimits;
use protoblock_net::behaviour::Role;
use protoblock_net::native::build_swarm;
use protoblock_net::node::{Node, NodeConfig};
use protoblock_store::{MemoryStore, open_chain};
use protoblock_tests::attack::{AttackSize, spawn_attack};
use protoblock_tests::crowd::{count, proc_usage, raise_fd_limit};
use protoblock_tests::relay_process::RelayProcess;

const BIN: &str = env!("CARGO_BIN_EXE_protoblock-relay");
/// The relay's connection limit here: the flood is bigger.
const MAX_CONNECTIONS: usize = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_under_every_live_attack_keeps_producing_answering_and_syncing_newcomers() {
    raise_fd_limit();
    // Without IPv6 loopback every client shares 127.0.0.1 with the flood, and
    // admission cannot tell them apart: the flood then stays under the limit.
    let ipv6 = std::net::TcpListener::bind("[::1]:0").is_ok();
    let listen = match ipv6 {
        true => "/ip4/127.0.0.1/tcp/0,/ip4/127.0.0.1/tcp/0/ws,/ip6/::1/tcp/0",
        false => "/ip4/127.0.0.1/tcp/0,/ip4/127.0.0.1/tcp/0/ws",
    };
    let limit = MAX_CONNECTIONS.to_string();
    let relay =
        RelayProcess::start_dev(BIN, &["--block-interval-ms", "500", "--listen", listen, "--max-connections", &limit]);
    // The honest newcomer's TCP address: on ::1 when there is one (another address than the flood's).
    let honest = if ipv6 { "/ip6/::1/tcp/" } else { "/ip4/127.0.0.1/tcp/" };
    let tcp = relay.bootstrap_addr(|a| a.starts_with(honest) && !a.contains("/ws")).await;
    let ws = relay.bootstrap_addr(|a| a.starts_with("/ip4/127.0.0.1/tcp/") && a.contains("/ws/")).await;
    let genesis = relay.genesis();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = relay.head().await;

    let flooders = if ipv6 { MAX_CONNECTIONS + 50 } else { MAX_CONNECTIONS / 2 };
    if !ipv6 {
        eprintln!("no ::1 here: the flood stays under the connection limit");
    }
    let size = AttackSize { liars: 20, flooders, unread_syncers: 10 };
    let attack = spawn_attack(ws, &genesis, size);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let c = &attack.counts;
    let (conns, unread) = (
        c.connections.load(std::sync::atomic::Ordering::Relaxed),
        c.unread_streams.load(std::sync::atomic::Ordering::Relaxed),
    );
    assert!(conns as usize > flooders, "the flood ran: {conns} connections");
    assert!(unread > 100, "sync streams were opened and never read: {unread}");
    let worst = relay.health_worst(20).await;
    assert!(worst < 1_000, "/health answered within a second under attack (worst {worst} ms)");
    let mid = relay.head().await;
    assert!(mid >= before + 10, "the relay kept producing: {before} -> {mid} in 10 s");

    // A fresh honest node joins over TCP while the attack goes on, and
    // follows the relay's head.
    let store = MemoryStore::new();
    let chain = open_chain(&store, genesis.clone(), ChainLimits::default()).await.unwrap();
    let key = identity::Keypair::generate_ed25519();
    let swarm = build_swarm(key, genesis.params.max_block_bytes, &Role::default()).unwrap();
    let cfg = NodeConfig { bootstrap: vec![tcp], ..NodeConfig::default() };
    let (node, handle, mut events) = Node::new(swarm, chain, store, cfg).unwrap();
    let node = tokio::spawn(node.run());
    tokio::spawn(async move { while events.next().await.is_some() {} });
    let t = Instant::now();
    loop {
        let target = relay.head().await;
        let ours = handle.status().await.map(|s| s.head_height).unwrap_or(0);
        if target > mid && ours + 2 >= target {
            eprintln!("fresh node synced to {ours} (relay {target}) in {} ms under attack", t.elapsed().as_millis());
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "the fresh node syncs under attack: {ours} of {target}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let t = Instant::now();
    while count(&attack.liars).connected > 0 {
        assert!(t.elapsed() < Duration::from_secs(60), "the liars lose their connections: {:?}", count(&attack.liars));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (rss, _) = proc_usage(relay.child.id()).expect("the relay's /proc");
    eprintln!(
        "under attack: {conns} flood connections, {unread} unread sync streams, /health worst {worst} ms, relay RSS {} MB",
        rss >> 20
    );
    assert!(rss < 1 << 30, "the relay's memory stays bounded: {} MB", rss >> 20);
    handle.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(10), node).await;
}
