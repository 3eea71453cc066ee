//! # protoblock-core
//!
//! The sans-IO protocol core of Protoblock, a fantasy-sports chain where every
//! participant, browser tab included, is a full node.
//!
//! Nothing in this crate performs I/O, reads a clock or draws randomness:
//! time arrives as `now_ms` arguments, key material as seeds, and every state
//! change leaves as a [`chain::WriteBatch`] for the caller's store. So the same
//! code runs natively, in wasm32 in a browser, and in deterministic
//! many-node simulations.
//!
//! Map of the crate:
//! - [`hash`], [`crypto`], [`merkle`]: ids (SHA-256 over the exact bytes
//!   received), ed25519 with weak keys refused and batch verification, the
//!   tx merkle root.
//! - [`state`] and [`lthash`]: the state as a key-value map with an
//!   incrementally maintained homomorphic commitment (the state root).
//! - [`fantasy`]: the fantasy state machine (names, balances, projections,
//!   the oracle's season feed, payouts by the legacy rule, transfers).
//! - [`block`]: block and tx validation, every rejection typed ([`error`]).
//! - [`chain`]: fork choice (longest valid chain, ties to the lower id),
//!   finality, reorgs with undo records.
//! - [`mempool`], [`producer`]: the bounded mempool and block production.
//! - [`sync`]: the sync planner (ranges to request from which peers, timeouts,
//!   re-requests, ordered hand-off of received blocks).
//! - [`genesis`]: the genesis format (the dev network's fixtures are the
//!   `protoblock-devnet` crate).

#![forbid(unsafe_code)]

pub mod block;
pub mod chain;
pub mod crypto;
pub mod error;
pub mod fantasy;
pub mod genesis;
pub mod hash;
pub mod lthash;
pub mod mempool;
pub mod merkle;
pub mod params;
pub mod producer;
pub mod replay;
pub mod state;
pub mod sync;

pub use block::{BlockMeta, sign_transaction};
pub use chain::{Chain, ChainUpdate, HeadRecord, Placement, StoredBlock, StoredChain, WriteBatch};
pub use error::{BlockError, TxError};
pub use genesis::Genesis;
pub use hash::Hash32;
pub use params::{ChainLimits, ChainParams};
pub use protoblock_proto as proto;
