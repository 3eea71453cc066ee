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
use libp2p::{Multiaddr, identity};
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

async fn get_json(url: &str) -> Option<serde_json::Value> {
    let r = reqwest::get(url).await.ok()?;
    r.json().await.ok()
}

/// The relay's `/ws` address (the attackers', on 127.0.0.1) and a TCP one
/// for the honest newcomer: on ::1 when `ipv6` (another address than the
/// flood's), else on 127.0.0.1.
async fn addrs(relay: &RelayProcess, ipv6: bool) -> (Multiaddr, Multiaddr) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let honest = if ipv6 { "/ip6/::1/tcp/" } else { "/ip4/127.0.0.1/tcp/" };
    loop {
        if let Some(boot) = get_json(&format!("{}/api/bootstrap", relay.http)).await
            && let Some(a) = boot["multiaddrs"].as_array()
        {
            let a: Vec<&str> = a.iter().filter_map(|a| a.as_str()).collect();
            let tcp = a.iter().find(|a| a.starts_with(honest) && !a.contains("/ws"));
            let ws = a.iter().find(|a| a.starts_with("/ip4/127.0.0.1/tcp/") && a.contains("/ws/"));
            if let (Some(tcp), Some(ws)) = (tcp, ws) {
                return (tcp.parse().unwrap(), ws.parse().unwrap());
            }
        }
        assert!(Instant::now() < deadline, "the relay's addresses never came up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn head(relay: &RelayProcess) -> u64 {
    get_json(&format!("{}/api/status", relay.http)).await.and_then(|s| s["head"]["height"].as_u64()).unwrap_or(0)
}

/// The slowest of `n` `/health` answers in ms, from a thread of its own.
async fn health_worst(relay: &RelayProcess, n: usize) -> u128 {
    let url = format!("{}/health", relay.http);
    tokio::task::spawn_blocking(move || {
        let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
        let mut worst = 0;
        for _ in 0..n {
            let t = Instant::now();
            let r = client.get(&url).send().expect("/health answers under attack");
            assert!(r.status().is_success(), "{:?}", r.text());
            worst = worst.max(t.elapsed().as_millis());
            std::thread::sleep(Duration::from_millis(50));
        }
        worst
    })
    .await
    .unwrap()
}

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
    let (tcp, ws) = addrs(&relay, ipv6).await;
    let genesis = relay.genesis();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = head(&relay).await;

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
    let worst = health_worst(&relay, 20).await;
    assert!(worst < 1_000, "/health answered within a second under attack (worst {worst} ms)");
    let mid = head(&relay).await;
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
        let target = head(&relay).await;
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
