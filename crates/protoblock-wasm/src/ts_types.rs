//! The TypeScript declarations of what the JS API takes and hands out are
//! made from the Rust types (ts-rs, which reads their serde attributes) into
//! `js/types.d.ts`, which the wasm package's declarations include. This test
//! fails when the file and the types drift apart; `PB_BLESS=1 cargo test -p
//! protoblock-wasm ts_types` rewrites it.

use ts_rs::TS;

use crate::backup::{Backup, Cipher, Kdf};
use crate::options::StartOptions;
use crate::view::*;

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/js/types.d.ts");

fn declarations() -> String {
    let mut out = String::from(
        "// Generated from the Rust types by `PB_BLESS=1 cargo test -p protoblock-wasm ts_types`; do not edit.\n",
    );
    let decls = [
        (StartOptions::docs(), StartOptions::decl()),
        (StatusView::docs(), StatusView::decl()),
        (PeerView::docs(), PeerView::decl()),
        (BlockSummary::docs(), BlockSummary::decl()),
        (BlockDetail::docs(), BlockDetail::decl()),
        (TxView::docs(), TxView::decl()),
        (FantasyView::docs(), FantasyView::decl()),
        (NameView::docs(), NameView::decl()),
        (PlayerView::docs(), PlayerView::decl()),
        (ProjectionView::docs(), ProjectionView::decl()),
        (ResultView::docs(), ResultView::decl()),
        (WalletView::docs(), WalletView::decl()),
        (Backup::docs(), Backup::decl()),
        (Kdf::docs(), Kdf::decl()),
        (Cipher::docs(), Cipher::decl()),
        (BlockEvent::docs(), BlockEvent::decl()),
        (PeerEvent::docs(), PeerEvent::decl()),
        (TxEvent::docs(), TxEvent::decl()),
        (SyncEvent::docs(), SyncEvent::decl()),
        (ReachableEvent::docs(), ReachableEvent::decl()),
        (ErrorEvent::docs(), ErrorEvent::decl()),
    ];
    for (docs, decl) in decls {
        if let Some(d) = docs {
            out.push_str(&d);
        }
        out.push_str("export ");
        out.push_str(&decl);
        out.push('\n');
    }
    out
}

#[test]
fn the_typescript_types_are_the_rust_types() {
    let want = declarations();
    if std::env::var_os("PB_BLESS").is_some() {
        std::fs::write(FILE, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(FILE).unwrap_or_default();
    assert!(
        have == want,
        "js/types.d.ts differs from the Rust types: run `PB_BLESS=1 cargo test -p protoblock-wasm ts_types` \
         and review the diff\n--- generated:\n{want}"
    );
}
