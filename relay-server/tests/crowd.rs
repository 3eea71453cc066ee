//! The real relay binary under a crowd: 500 browser-like clients over
//! WebSocket on loopback (`protoblock_tests::crowd`), then the same crowd
//! with a tenth of it attacking (lying status, junk block gossip). Asserted
//! from outside: every honest member is held and handshaken, blocks keep
//! coming to them, `/health` answers, and the attackers lose their
//! connections. (Figures for larger crowds: the crowd benchmark.)

use std::time::{Duration, Instant};

use libp2p::Multiaddr;
use protoblock_core::Genesis;
use protoblock_tests::crowd::{Member, count, raise_fd_limit, spawn_member};
use protoblock_tests::relay_process::RelayProcess;

const BIN: &str = env!("CARGO_BIN_EXE_protoblock-relay");

type Relay = RelayProcess;

fn start() -> Relay {
    RelayProcess::start_dev(
        BIN,
        &["--block-interval-ms", "500", "--listen", "/ip4/127.0.0.1/tcp/0,/ip4/127.0.0.1/tcp/0/ws"],
    )
}

async fn ws_addr(relay: &Relay) -> Multiaddr {
    relay.bootstrap_addr(|a| a.contains("/ws/")).await
}

/// Members joining a few hundred a second, as page loads would.
async fn join(relay: Multiaddr, genesis: &Genesis, n: usize, attack_every: Option<usize>) -> Vec<Member> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let attack = attack_every.is_some_and(|k| i % k == 0);
        out.push(spawn_member(relay.clone(), genesis.clone(), attack, i as u64));
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }
    out
}

async fn wait_until(what: &str, secs: u64, crowd: &[Member], mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    let deadline = t + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {:?}", count(crowd));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!("{what}: {} ms", t.elapsed().as_millis());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_relay_holds_five_hundred_browser_like_peers_and_shrugs_off_attackers() {
    raise_fd_limit();
    let t0 = Instant::now();
    let relay = start();
    let addr = ws_addr(&relay).await;
    let genesis = relay.genesis();

    // Five hundred honest members: every one held and taken as a peer, and
    // blocks reach them (a relay's own blocks go to every subscriber).
    // (A thousand until 2026-12-04: a debug relay and a thousand debug
    // client swarms saturated this machine's two cores, and the test then
    // measured the machine: it failed in CI and in most runs here, handshakes
    // and pings timing out for whole minutes. Five hundred leaves headroom;
    // a thousand and more, on a release relay, is the crowd benchmark's.)
    const N: usize = 500;
    eprintln!("relay up: {} ms", t0.elapsed().as_millis());
    let crowd = join(addr.clone(), &genesis, N, None).await;
    wait_until("the whole crowd connected and handshaken", 120, &crowd, || {
        let c = count(&crowd);
        c.connected == N && c.handshaken == N
    })
    .await;
    let h0 = relay.head().await;
    wait_until("blocks reaching every member", 60, &crowd, || count(&crowd).receiving == N).await;
    let worst = relay.health_worst(20).await;
    let h1 = relay.head().await;
    assert!(h1 > h0, "the relay keeps producing under the crowd ({h0} -> {h1})");
    eprintln!("crowd of {N}: /health worst {worst} ms, {:?}", count(&crowd));
    assert_eq!(count(&crowd).drops, 0, "no member held was dropped");

    // A tenth more, attacking: lying status and junk gossip. They are
    // banned (their connections closed) while the honest crowd stays.
    let attackers = join(addr.clone(), &genesis, N / 10, Some(1)).await;
    wait_until("every attacker dropped", 90, &attackers, || {
        count(&attackers).connected == 0 && count(&attackers).connections >= (N / 10) as u64
    })
    .await;
    // The operator sees it: junk blocks refused, by rule, and the bans.
    let metrics = reqwest::get(format!("{}/metrics", relay.http)).await.unwrap().text().await.unwrap();
    let sample = |prefix: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert!(
        sample("protoblock_blocks_refused_total{rule=") >= (N / 20) as f64,
        "junk blocks counted by rule: {metrics}"
    );
    assert!(sample("protoblock_peers_banned_total") >= (N / 20) as f64, "attackers banned: {metrics}");
    // (A member whose connection stalled redials: it may be between
    // connections for a moment, so this waits for the whole crowd again.)
    wait_until("the honest crowd held through the attack", 60, &crowd, || {
        let c = count(&crowd);
        c.connected == N && c.handshaken == N
    })
    .await;
    assert_eq!(count(&crowd).drops, 0, "no working member connection was closed by the relay");
    let before: u64 = crowd.iter().map(|m| m.state.blocks.load(std::sync::atomic::Ordering::Relaxed)).sum();
    let h2 = relay.head().await;
    relay.health_worst(20).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after: u64 = crowd.iter().map(|m| m.state.blocks.load(std::sync::atomic::Ordering::Relaxed)).sum();
    assert!(relay.head().await > h2, "production goes on after the attack");
    assert!(after > before, "blocks keep reaching the crowd");
    eprintln!("done: {} ms, {:?}", t0.elapsed().as_millis(), count(&crowd));
}
