//! The crowd benchmark: growing crowds of browser-like clients
//! (`protoblock_tests::crowd`) hold WebSocket connections to one release
//! relay while it produces, honest alone and with a tenth attacking (lying
//! status, junk block gossip). Per crowd: connections held, `/health` p50
//! and p99 (asked from a thread of its own), relay RSS and CPU over the
//! measuring window, blocks delivered per member per second.
//!
//! `cargo xtask bench-crowd`; sizes from `PB_CROWD_SIZES` (default
//! 1000,2000,4000). The crowd runs in this process on the same two cores
//! as the relay, so the largest crowd is bounded by the machine as a whole.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use libp2p::Multiaddr;
use protoblock_tests::crowd::{Member, count, proc_usage, raise_fd_limit, spawn_member};
use protoblock_tests::relay_process::RelayProcess;

const BIN: &str = env!("CARGO_BIN_EXE_protoblock-relay");
const MEASURE: Duration = Duration::from_secs(20);

type Relay = RelayProcess;

fn start() -> Relay {
    RelayProcess::start_dev(
        BIN,
        &["--block-interval-ms", "1000", "--listen", "/ip4/127.0.0.1/tcp/0/ws", "--max-connections", "20000"],
    )
}

fn ws_addr(relay: &Relay) -> Multiaddr {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = reqwest::blocking::get(format!("{}/api/bootstrap", relay.http))
            && let Ok(v) = r.json::<serde_json::Value>()
            && let Some(a) = v["multiaddrs"]
                .as_array()
                .and_then(|a| a.iter().filter_map(|a| a.as_str()).find(|a| a.contains("/ws/")))
        {
            return a.parse().unwrap();
        }
        assert!(Instant::now() < deadline, "no /ws address");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn percentile(sorted: &[u128], p: f64) -> u128 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// `/health` latencies over `window`, ten a second, from a thread of its
/// own; unanswered ones (5 s timeout) count as 5,000 ms.
fn health_latencies(http: String, window: Duration) -> std::thread::JoinHandle<Vec<u128>> {
    std::thread::spawn(move || {
        let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
        let end = Instant::now() + window;
        let mut out = Vec::new();
        while Instant::now() < end {
            let t = Instant::now();
            let ok = client.get(format!("{http}/health")).send().is_ok_and(|r| r.status().is_success());
            out.push(if ok { t.elapsed().as_millis() } else { 5_000 });
            std::thread::sleep(Duration::from_millis(100));
        }
        out.sort_unstable();
        out
    })
}

struct Row {
    size: usize,
    attackers: usize,
    held: usize,
    handshaken: usize,
    attackers_held: usize,
    health_p50: u128,
    health_p99: u128,
    rss_mb: f64,
    cpu_pct: f64,
    blocks_per_member_s: f64,
    join_s: f64,
}

async fn run(size: usize, attack_fraction: usize) -> Row {
    let relay = start();
    let pid = relay.child.id();
    let addr = ws_addr(&relay);
    let genesis = relay.genesis();
    let attackers = size.checked_div(attack_fraction).unwrap_or(0);
    let t = Instant::now();
    let mut members: Vec<Member> = Vec::with_capacity(size);
    let mut bad: Vec<Member> = Vec::new();
    for i in 0..size {
        members.push(spawn_member(addr.clone(), genesis.clone(), false, i as u64));
        if attackers > 0 && i % attack_fraction == 0 {
            bad.push(spawn_member(addr.clone(), genesis.clone(), true, (size + i) as u64));
        }
        if i % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // Settled: everyone held, or no change for 10 s (60 s at most).
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut last, mut since) = (0, Instant::now());
    while Instant::now() < deadline {
        let c = count(&members);
        if c.handshaken == size {
            break;
        }
        if c.handshaken != last {
            (last, since) = (c.handshaken, Instant::now());
        } else if since.elapsed() > Duration::from_secs(10) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let join_s = t.elapsed().as_secs_f64();
    let blocks0: u64 = members.iter().map(|m| m.state.blocks.load(Ordering::Relaxed)).sum();
    let (_, cpu0) = proc_usage(pid).unwrap_or_default();
    let health = health_latencies(relay.http.clone(), MEASURE);
    let t = Instant::now();
    let mut rss_peak = 0;
    while t.elapsed() < MEASURE {
        rss_peak = rss_peak.max(proc_usage(pid).map(|u| u.0).unwrap_or(0));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let wall_ms = t.elapsed().as_millis() as f64;
    let (_, cpu1) = proc_usage(pid).unwrap_or_default();
    let health = tokio::task::spawn_blocking(move || health.join().unwrap()).await.unwrap();
    let blocks1: u64 = members.iter().map(|m| m.state.blocks.load(Ordering::Relaxed)).sum();
    let c = count(&members);
    Row {
        size,
        attackers,
        held: c.connected,
        handshaken: c.handshaken,
        attackers_held: count(&bad).connected,
        health_p50: percentile(&health, 0.5),
        health_p99: percentile(&health, 0.99),
        rss_mb: rss_peak as f64 / (1 << 20) as f64,
        cpu_pct: (cpu1.saturating_sub(cpu0)) as f64 / wall_ms * 100.0,
        blocks_per_member_s: (blocks1 - blocks0) as f64 / size as f64 / (wall_ms / 1000.0),
        join_s,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let limit = raise_fd_limit();
    let sizes: Vec<usize> = std::env::var("PB_CROWD_SIZES")
        .unwrap_or_else(|_| "1000,2000,4000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    println!("crowd benchmark: one release relay (1 block/s), crowd in this process; open-file limit {limit}");
    println!(
        "| crowd | attackers | held | handshaken | attackers held | /health p50 ms | p99 ms | relay RSS MB | relay CPU % | blocks/member/s | settle s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for size in sizes {
        for attack in [0, 10] {
            let r = run(size, attack).await;
            println!(
                "| {} | {} | {} | {} | {} | {} | {} | {:.0} | {:.0} | {:.2} | {:.1} |",
                r.size,
                r.attackers,
                r.held,
                r.handshaken,
                r.attackers_held,
                r.health_p50,
                r.health_p99,
                r.rss_mb,
                r.cpu_pct,
                r.blocks_per_member_s,
                r.join_s
            );
        }
    }
}
