//! # protoblock-wasm
//!
//! The Protoblock full node for the browser. A page that calls
//! `ProtoblockNode.start()` runs the same core and node driver as the native
//! relay: it validates every block, keeps the chain in IndexedDB, gossips,
//! and serves sync to its own peers.
//!
//! - [`store::IndexedDbStore`]: the `Store` on IndexedDB (one transaction
//!   per committed batch).
//! - [`verifier`]: block signatures checked in Web Workers beside the page's
//!   thread (`js/verifier.js` starts them; each runs this package).
//! - `swarm`: browser transports (WebSocket, WebRTC-direct, relay client).
//! - `api`: the wasm-bindgen class `ProtoblockNode` (`api/events.rs`: its events; `api/keeping.rs`:
//!   storage and wallet backups; promises and events; no
//!   global state, so a page can run several nodes).
//! - `bench` (feature `bench`): the browser's signature bound (`_benchSignatureBound`), for
//!   `cargo xtask bench-web`.
//! - `wallet_store`: the wallet's own IndexedDB database, and its backups
//!   sealed with WebCrypto.
//! - [`view`], [`wallet`], [`backup`]: pure parts (what pages are shown, how
//!   the wallet signs, what a backup file holds), compiled and tested natively too.

// Used by the IndexedDB store; pure, so its tests run natively too.
pub mod backup;
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod main_index;
pub mod options;
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod replay_segments;
// Reads and writes js/types.d.ts: a native test (the wasm test runner has no files).
#[cfg(all(test, not(target_arch = "wasm32")))]
mod ts_types;
pub mod view;
pub mod wallet;

#[cfg(target_arch = "wasm32")]
mod api;
#[cfg(all(target_arch = "wasm32", feature = "bench"))]
mod bench;
#[cfg(target_arch = "wasm32")]
mod console_log;
#[cfg(target_arch = "wasm32")]
pub mod store;
#[cfg(target_arch = "wasm32")]
mod swarm;
#[cfg(target_arch = "wasm32")]
pub mod verifier;
#[cfg(target_arch = "wasm32")]
pub mod wallet_store;

#[cfg(target_arch = "wasm32")]
pub use api::ProtoblockNode;
