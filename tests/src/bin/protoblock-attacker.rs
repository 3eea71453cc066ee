//! `protoblock-attacker --relay http://127.0.0.1:8080 [--secs 60] [--liars 20]
//! [--flooders 200] [--unread-syncers 10]`: the live attackers of
//! `protoblock_tests::attack` against a relay's WebSocket listener (found
//! through its `/api/bootstrap`, as a page finds it), for `--secs`, with a
//! line of what they achieved every 2 s. The browser test runs it beside a page.

use std::sync::atomic::Ordering;
use std::time::Duration;

use protoblock_tests::attack::{AttackSize, spawn_attack};
use protoblock_tests::crowd::{count, raise_fd_limit};

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned().unwrap_or_else(|| default.to_string())
}

fn num(args: &[String], name: &str, default: usize) -> usize {
    arg(args, name, &default.to_string()).parse().unwrap_or_else(|_| panic!("{name} takes a number"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let relay = arg(&args, "--relay", "http://127.0.0.1:8080");
    let secs = num(&args, "--secs", 60) as u64;
    let size = AttackSize {
        liars: num(&args, "--liars", 20),
        flooders: num(&args, "--flooders", 200),
        unread_syncers: num(&args, "--unread-syncers", 10),
    };
    raise_fd_limit();
    let boot: serde_json::Value = tokio::task::spawn_blocking(move || {
        reqwest::blocking::get(format!("{relay}/api/bootstrap")).and_then(|r| r.json()).expect("the relay's bootstrap")
    })
    .await
    .expect("fetch");
    let genesis = hex::decode(boot["genesis_pb"].as_str().expect("genesis_pb")).expect("hex genesis");
    let genesis = protoblock_core::Genesis::from_bytes(&genesis).expect("a valid genesis");
    let ws = boot["multiaddrs"]
        .as_array()
        .and_then(|a| a.iter().filter_map(|a| a.as_str()).find(|a| a.contains("/ws/")))
        .expect("a /ws address")
        .parse()
        .expect("a multiaddr");
    let attack = spawn_attack(ws, &genesis, size);
    println!("attacking {size:?} for {secs} s");
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let liars = count(&attack.liars);
        println!(
            "{{\"liar_connections\":{},\"liars_connected\":{},\"connections\":{},\"unread_streams\":{}}}",
            liars.connections,
            liars.connected,
            attack.counts.connections.load(Ordering::Relaxed),
            attack.counts.unread_streams.load(Ordering::Relaxed)
        );
    }
}
