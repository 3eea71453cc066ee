//! A Protoblock node on libp2p: the policy is the sans-IO
//! [`protoblock_node::NodeService`]; [`Node`] is the thin driver that owns the
//! swarm, the store and one timer, moving inputs into the service and its
//! actions out (see `driver.rs`); connection-level policy that needs only
//! swarm facts is in [`crate::policy`], as behaviours of the swarm;
//! [`NodeHandle`] is the application's side (see `handle.rs`).

mod driver;
mod handle;

use ed25519_dalek::SigningKey;
use futures::channel::mpsc;
use libp2p::{Multiaddr, PeerId};
use protoblock_core::Hash32;
use protoblock_core::mempool::MempoolConfig;
use protoblock_core::sync::SyncConfig;

pub use crate::clock::now_ms;
pub use crate::policy::{WEBRTC_SIGNALING_PROTOCOL, dialable, slow_direct_peer, we_offer};
pub use driver::Node;
pub use handle::{ChainRead, Command, NodeHandle, PUBLISH_MS};
pub use protoblock_node::{Counters, PROTOCOL_VERSION, SubmitError, TxSource};

#[derive(Clone)]
pub struct NodeConfig {
    pub bootstrap: Vec<Multiaddr>,
    /// With a key the node produces blocks in the key's slots.
    pub producer_key: Option<SigningKey>,
    pub block_interval_ms: u64,
    pub sync: SyncConfig,
    pub mempool: MempoolConfig,
    /// Dial peers learned by peer exchange while below this many.
    pub target_peers: usize,
    pub ban_ms: u64,
    /// Announce listen addresses as external addresses (needed to register at
    /// a rendezvous point and to serve relay reservations). Right for a
    /// server with public listen addresses and for loopback tests; a node
    /// behind NAT leaves it off and relies on observed addresses.
    pub advertise_listen_addrs: bool,
    /// Addresses to announce as external, e.g. a server's public address.
    pub external_addrs: Vec<Multiaddr>,
    /// Answer other peers' block-range requests. A relay can switch this off
    /// (at start or at run time) to leave serving history to its peers.
    pub serve_sync: bool,
    /// Keep only the newest this many blocks (`None`: every block, an
    /// archive); see `protoblock_node::ServiceConfig::retain_blocks`.
    pub retain_blocks: Option<u64>,
    /// With a relay client in the swarm (browser nodes): how many relays to
    /// hold a circuit reservation on, so peers can reach us through them.
    pub max_relay_reservations: usize,
    /// Use any peer announcing the relay or rendezvous protocol as one, not
    /// only the bootstrap peers and the peers the application dials (see
    /// `policy::DiscoveryConfig::trust_any_relay`).
    pub trust_any_relay: bool,
    /// With `/webrtc` in the swarm (browser nodes): how many direct WebRTC
    /// peers to upgrade relayed connections to. Beyond it, relayed peers
    /// stay relayed.
    pub target_direct_peers: usize,
    /// Close a connection after this many pings in a row fail (0: never;
    /// see `behaviour::PING_TIMEOUT`). A browser gives up on a wedged link
    /// after 6 (about 90 s) and redials; a relay waits longer (the relay
    /// server sets 12, about 3 minutes), so that when it is overloaded and
    /// answers late it does not close its clients in a burst and take all
    /// their handshakes again at once. Either end closing frees both.
    pub dead_after_pings: u8,
    /// The registry the swarm's gossipsub records metrics in (see
    /// `Behaviour::with_options`): status then reports gossip deliveries with
    /// and without duplicates, for the mesh benchmark.
    #[cfg(feature = "gossip-metrics")]
    pub gossip_metrics: Option<std::sync::Arc<std::sync::Mutex<prometheus_client::registry::Registry>>>,
    /// The registry for the operator metrics (feature `metrics`): libp2p's
    /// recorders and the store's commit latency go there (the relay's
    /// `/metrics` encodes it).
    #[cfg(feature = "metrics")]
    pub metrics: Option<std::sync::Arc<std::sync::Mutex<prometheus_client::registry::Registry>>>,
    /// Test hook: serve blocks with a flipped signature bit (a lying peer).
    #[cfg(feature = "test-hooks")]
    pub serve_tampered_blocks: bool,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            bootstrap: Vec::new(),
            producer_key: None,
            block_interval_ms: 2_000,
            sync: SyncConfig::default(),
            mempool: MempoolConfig::default(),
            target_peers: 8,
            ban_ms: 10 * 60 * 1000,
            advertise_listen_addrs: false,
            external_addrs: Vec::new(),
            serve_sync: true,
            retain_blocks: None,
            max_relay_reservations: 2,
            trust_any_relay: false,
            target_direct_peers: 6,
            dead_after_pings: crate::behaviour::DEAD_AFTER_PINGS,
            #[cfg(feature = "gossip-metrics")]
            gossip_metrics: None,
            #[cfg(feature = "metrics")]
            metrics: None,
            #[cfg(feature = "test-hooks")]
            serve_tampered_blocks: false,
        }
    }
}

impl NodeConfig {
    fn service(&self) -> protoblock_node::ServiceConfig {
        protoblock_node::ServiceConfig {
            producer_key: self.producer_key.clone(),
            block_interval_ms: self.block_interval_ms,
            meet_a_peer_before_producing: !self.bootstrap.is_empty(),
            sync: self.sync.clone(),
            mempool: self.mempool.clone(),
            target_peers: self.target_peers,
            ban_ms: self.ban_ms,
            serve_sync: self.serve_sync,
            retain_blocks: self.retain_blocks,
            max_response_bytes: crate::behaviour::MAX_SYNC_RESPONSE_BYTES - 64 * 1024,
            #[cfg(feature = "test-hooks")]
            serve_tampered_blocks: self.serve_tampered_blocks,
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone)]
pub enum NodeEvent {
    /// A new head, once the store holds it.
    NewHead {
        height: u64,
        id: Hash32,
        /// The ids of its txs.
        txs: Vec<Hash32>,
    },
    PeerUp {
        peer: PeerId,
    },
    PeerDown {
        peer: PeerId,
    },
    /// Dropped at the handshake: another chain or protocol.
    PeerIncompatible {
        peer: PeerId,
        reason: String,
    },
    PeerBanned {
        peer: PeerId,
        reason: String,
    },
    TxAccepted {
        id: Hash32,
    },
    Listening {
        addr: Multiaddr,
    },
    /// Peers of this chain registered at a rendezvous point (not us).
    Discovered {
        point: PeerId,
        peers: Vec<PeerId>,
    },
    /// After each placed run of synced blocks.
    SyncProgress {
        head: u64,
        target: u64,
        syncing: bool,
    },
    /// A relay accepted our reservation: peers can reach us at this address.
    Reachable {
        addr: Multiaddr,
    },
    /// A store commit failed: the node stopped placing and producing blocks
    /// and is not live; a restart resumes from the last durable head.
    StoreFailed {
        error: String,
    },
}

#[derive(Debug, Clone)]
pub struct PeerStatus {
    pub peer: PeerId,
    pub head: u64,
    pub latency_ms: Option<u64>,
    pub addr: Option<Multiaddr>,
    /// The connection runs through a circuit relay.
    pub relayed: bool,
}

#[derive(Debug, Clone)]
pub struct NodeStatus {
    pub peer_id: PeerId,
    pub genesis: Hash32,
    pub head_height: u64,
    pub head_id: Hash32,
    pub final_height: u64,
    /// The lowest height it serves blocks from (0: every block).
    pub lowest_height: u64,
    pub syncing: bool,
    /// The best head any peer has told us about.
    pub target_height: u64,
    pub mempool: usize,
    pub peers: Vec<PeerStatus>,
    /// Connected peers not past the status handshake: handshakes in flight, and libp2p peers that
    /// do not speak our protocols (a plain js-libp2p node with identify and ping). They are not
    /// dropped for that (only another chain or version is); they idle out when nothing uses them.
    pub others: Vec<PeerStatus>,
    pub listen: Vec<Multiaddr>,
    pub blocks_validated: u64,
    /// Blocks received in sync responses (gossip not counted).
    pub blocks_downloaded: u64,
    /// Blocks this node sent to others in sync responses.
    pub blocks_served: u64,
    /// Synced blocks whose signatures the [`SignatureVerifier`] checked.
    pub blocks_verified_off_loop: u64,
    pub serve_sync: bool,
    pub gossip_accepted: u64,
    pub gossip_rejected: u64,
    /// Peers banned now, and in all since start.
    pub bans: usize,
    pub bans_total: u64,
    /// Blocks refused as their sender's fault, by rule (`BlockError::rule`).
    pub refused_by_rule: Vec<(&'static str, u64)>,
    /// With `NodeConfig::gossip_metrics`: gossip messages received in all,
    /// duplicates included, and the distinct ones among them.
    pub gossip_received: Option<(u64, u64)>,
    /// Set once a store commit failed: the node is not live.
    pub store_error: Option<String>,
    /// Connections held, and those refused or evicted (`policy::Admission`).
    pub admission: crate::policy::AdmissionCounts,
}

impl NodeStatus {
    /// Live: its store takes what it validates.
    pub fn healthy(&self) -> bool {
        self.store_error.is_none()
    }
}

/// Block signatures checked off the node's loop, so they overlap the chain's
/// state work instead of adding to it. The browser node runs them in Web
/// Workers: they are half of a browser's sync time. A synced range goes out as
/// one job; its verdicts come back under the same token, in any order across
/// jobs. Both channels are bounded; when `jobs` is full the node checks the
/// range itself.
pub struct SignatureVerifier {
    pub jobs: mpsc::Sender<VerifyJob>,
    pub done: mpsc::Receiver<VerifyDone>,
}

pub struct VerifyJob {
    pub token: u64,
    pub blocks: Vec<Vec<u8>>,
}

/// `ok[i]`: every signature in `blocks[i]` verified
/// ([`protoblock_core::block::verify_signatures`]). The blocks come back so
/// the chain gets exactly the bytes that were checked.
pub struct VerifyDone {
    pub token: u64,
    pub blocks: Vec<Vec<u8>>,
    pub ok: Vec<bool>,
}
