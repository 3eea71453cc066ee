//! # protoblock-net
//!
//! The p2p layer of Protoblock on rust-libp2p: the status handshake, block
//! sync by range, gossip of blocks and txs (message id = content id, every
//! message validated by the core before it is forwarded), mempool sync and
//! peer exchange, and [`node::Node`], the thin driver that owns the swarm,
//! the store and one timer. Protocol logic lives in `protoblock-core`
//! (validation, fork choice, sync planning) and the node's policy in the
//! sans-IO `protoblock-node`; this crate only moves bytes.

pub mod addr;
pub mod behaviour;
pub mod clock;
pub mod codec;
#[cfg(not(target_arch = "wasm32"))]
pub mod native;
pub mod node;
pub mod policy;

pub use node::{Node, NodeConfig, NodeEvent, NodeHandle, NodeStatus, SignatureVerifier, VerifyDone, VerifyJob};
