//! The real relay binary in --dev mode produces a chain into a redb file,
//! and a restart resumes it.

use std::process::Command;

use futures::executor::block_on;
use protoblock_store::{RedbStore, Store};

fn run(dir: &std::path::Path, stop_at: u64) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_protoblock-relay"))
        .args(["--dev", "--block-interval-ms", "30", "--dev-blocks-per-week", "8", "--stop-at-height"])
        .arg(stop_at.to_string())
        .arg("--data-dir")
        .arg(dir)
        .env("RUST_LOG", "warn")
        .output()
        .expect("relay runs");
    assert!(out.status.success(), "relay failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn dev_relay_produces_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let first = run(dir.path(), 12);
    let heights: Vec<u64> = first.lines().filter_map(|l| l.split_whitespace().nth(1)?.parse().ok()).collect();
    assert_eq!(heights, (1..=12).collect::<Vec<_>>(), "one line per produced block");
    let txs: u64 = first.lines().filter_map(|l| l.split_whitespace().nth(5)?.parse::<u64>().ok()).sum();
    assert!(txs > 12, "blocks carry user and oracle txs: {txs}");

    // Restart: it resumes at 13 from the same file, same genesis.
    let second = run(dir.path(), 15);
    let first_line = second.lines().next().unwrap();
    assert!(first_line.starts_with("height 13 "), "{first_line}");

    let store = RedbStore::open(dir.path().join("chain.redb")).unwrap();
    let head = block_on(store.head()).unwrap().unwrap();
    assert_eq!(head.height, 15);
    let blocks = block_on(store.blocks_range(1, 100, usize::MAX)).unwrap();
    assert_eq!(blocks.len(), 15);
}

#[test]
fn bad_config_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_protoblock-relay"))
        .args(["--dev", "--block-interval-ms", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--block-interval-ms must be positive"));
    let out = Command::new(env!("CARGO_BIN_EXE_protoblock-relay"))
        .args(["--dev", "--block-interval-ms", "x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value"));
}
