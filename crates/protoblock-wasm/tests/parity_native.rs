//! The native half of the parity check (the browser half is `browser.rs`).

#![cfg(not(target_arch = "wasm32"))]

mod common;

#[test]
fn native_matches_the_parity_vectors() {
    let got = common::vectors();
    if std::env::var_os("PB_BLESS").is_some() {
        std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/parity-vectors.txt"), &got).unwrap();
        return;
    }
    assert_eq!(got, common::VECTORS, "native results changed: rerun with PB_BLESS=1 if that is intended");
    // Every tampered block is refused, each for its own reason.
    let rejects: Vec<&str> = got.lines().filter(|l| l.starts_with("reject_")).collect();
    assert_eq!(rejects.len(), 4);
    assert!(rejects.iter().all(|l| !l.ends_with("=accepted")), "{rejects:?}");
}
