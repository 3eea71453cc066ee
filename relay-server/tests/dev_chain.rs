//! The real relay binary: --dev produces a chain into a redb file and
//! resumes it after a restart; a second node joins over TCP and syncs.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use futures::executor::block_on;
use protoblock_store::{RedbStore, Store};

const BIN: &str = env!("CARGO_BIN_EXE_protoblock-relay");

fn run(dir: &std::path::Path, stop_at: u64) -> String {
    let out = Command::new(BIN)
        .args(["--dev", "--block-interval-ms", "30", "--dev-blocks-per-week", "8", "--listen", "/ip4/127.0.0.1/tcp/0"])
        .args(["--stop-at-height", &stop_at.to_string()])
        .arg("--data-dir")
        .arg(dir)
        .env("RUST_LOG", "warn")
        .output()
        .expect("relay runs");
    assert!(out.status.success(), "relay failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn heights(out: &str) -> Vec<u64> {
    out.lines().filter(|l| l.starts_with("height ")).filter_map(|l| l.split_whitespace().nth(1)?.parse().ok()).collect()
}

#[test]
fn dev_relay_produces_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let first = run(dir.path(), 12);
    assert_eq!(heights(&first), (1..=12).collect::<Vec<_>>(), "one line per produced block");
    let txs: u64 = first
        .lines()
        .filter(|l| l.starts_with("height "))
        .filter_map(|l| l.split_whitespace().nth(5)?.parse::<u64>().ok())
        .sum();
    assert!(txs > 12, "blocks carry user and oracle txs: {txs}");

    // Restart: it resumes at 13 from the same file, same genesis, same peer id.
    let peer_line =
        |out: &str| out.lines().find(|l| l.starts_with("listening")).map(|l| l.rsplit('/').next().unwrap().to_string());
    let second = run(dir.path(), 15);
    assert_eq!(heights(&second).first(), Some(&13), "{second}");
    assert_eq!(peer_line(&first), peer_line(&second), "the node keeps its identity");

    let store = RedbStore::open(dir.path().join("chain.redb")).unwrap();
    let head = block_on(store.head()).unwrap().unwrap();
    assert!(head.height >= 15);
    let blocks = block_on(store.blocks_range(1, 100, usize::MAX)).unwrap();
    assert_eq!(blocks.len() as u64, head.height);
}

#[test]
fn a_second_node_joins_the_dev_relay_and_syncs() {
    let dev_dir = tempfile::tempdir().unwrap();
    let mut relay = Command::new(BIN)
        .args(["--dev", "--block-interval-ms", "50", "--listen", "/ip4/127.0.0.1/tcp/0"])
        .arg("--data-dir")
        .arg(dev_dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(relay.stdout.take().unwrap()).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("listening ").map(str::to_string))
        .expect("relay prints its address");
    // Let it build a few blocks first, so the joiner has something to sync.
    let _ = lines.by_ref().map_while(Result::ok).find(|l| l.starts_with("height 20 "));

    let join_dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["--bootstrap", &addr, "--listen", "/ip4/127.0.0.1/tcp/0", "--stop-at-height", "30"])
        .arg("--genesis")
        .arg(dev_dir.path().join("genesis.pb"))
        .arg("--data-dir")
        .arg(join_dir.path())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    relay.kill().unwrap();
    relay.wait().unwrap();
    assert!(out.status.success(), "joiner failed: {}", String::from_utf8_lossy(&out.stderr));
    let joined = String::from_utf8(out.stdout).unwrap();
    let hs = heights(&joined);
    assert!(hs.contains(&1) && hs.iter().any(|h| *h >= 30), "the joiner synced from height 1: {joined}");
}

#[test]
fn bad_config_is_a_clear_error() {
    let out = Command::new(BIN).args(["--dev", "--block-interval-ms", "0"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--block-interval-ms must be positive"));
    let out = Command::new(BIN).args(["--dev", "--block-interval-ms", "x"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value"));
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN).arg("--data-dir").arg(dir.path()).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--genesis"), "{}", String::from_utf8_lossy(&out.stderr));
}
