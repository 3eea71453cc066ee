//! # protoblock-node
//!
//! The policy of a Protoblock node as a sans-IO state machine, one layer above
//! the core's [`SyncPlanner`](protoblock_core::sync::SyncPlanner) and in its
//! shape (quinn-proto and smoldot are the models): [`NodeService::handle`]
//! takes `now` and an [`Input`] (a connection came or went, a peer's status, a
//! sync response, an inbound request, a gossip message, a verifier or store
//! completion, a timer), [`NodeService::poll_action`] hands out what to do (send,
//! reply, read blocks, publish, report a gossip verdict, verify, commit, ban,
//! dial, emit an event), and [`NodeService::next_wakeup`] says when to call
//! again. No socket, store, clock, task or RNG is inside, so the same code runs
//! in the libp2p driver (`protoblock-net`), natively and in a browser, and in
//! many-node simulations in virtual time (`tests/sim.rs`).
//!
//! The service is generic over the peer id ([`PeerKey`]): libp2p's `PeerId`
//! in the product, small integers in simulations.
//!
//! One concern per module:
//! - [`handshake`](crate::handshake): the status exchange, chain and version checks, status refresh;
//! - `sync` and `backfill`: range sync into the chain, a forked peer's branch;
//! - `serve`: answering peers' block, mempool and peer requests;
//! - `gossip`: verdicts on gossiped blocks and txs;
//! - `peers`: the peer table and peer exchange; `bans`: expiring, bounded bans;
//! - [`wire`]: repeated fields of peers' frames counted before decoding;
//! - `commit`: group commit, one store commit in flight, events on durability;
//! - `producer`: when this node produces; `verify`: off-loop signature checks;
//! - `counters`: what the status reports.

#![forbid(unsafe_code)]

mod backfill;
mod bans;
mod commit;
mod config;
mod counters;
mod gossip;
mod handshake;
mod io;
mod peers;
mod producer;
mod serve;
mod service;
mod sync;
mod verify;
pub mod wire;

pub use config::{
    MAX_ADDRS_SHARED, MAX_MEMPOOL_SYNC, MAX_PEERS_SHARED, MAX_RANGE, PROTOCOL_VERSION, ServiceConfig, TxSource,
};
pub use counters::Counters;
pub use io::{Action, Event, Input, Now, ReplyId, RequestId, SubmitError, Token, Topic, Verdict};
pub use service::{NodeService, PeerView, ServiceStatus};

/// A peer id the service can key its tables by and put on the wire (peer
/// exchange carries ids as bytes).
pub trait PeerKey: Copy + Ord + std::hash::Hash + std::fmt::Debug + std::fmt::Display + 'static {
    fn to_bytes(&self) -> Vec<u8>;
    fn from_bytes(bytes: &[u8]) -> Option<Self>;
}

impl PeerKey for libp2p_identity::PeerId {
    fn to_bytes(&self) -> Vec<u8> {
        libp2p_identity::PeerId::to_bytes(*self)
    }
    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        libp2p_identity::PeerId::from_bytes(bytes).ok()
    }
}

/// Simulations name peers by number.
impl PeerKey for u32 {
    fn to_bytes(&self) -> Vec<u8> {
        self.to_be_bytes().to_vec()
    }
    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        Some(u32::from_be_bytes(bytes.try_into().ok()?))
    }
}
