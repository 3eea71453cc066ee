//! What a page gives `ProtoblockNode.start`. Platform-free, so the
//! TypeScript declaration made from it is checked natively (`ts_types`).

use serde::Deserialize;

/// How a node starts: where its chain comes from, and how it runs.
#[derive(Debug, Deserialize, Default)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields))]
#[serde(rename_all = "camelCase")]
pub struct StartOptions {
    /// Base URL of a relay; the node reads `${relay}/api/bootstrap` (its multiaddrs and the genesis).
    pub relay: Option<String>,
    /// Multiaddrs to dial (WebSocket or WebRTC-direct with certhash), used with `genesis`.
    pub bootstrap: Option<Vec<String>>,
    /// The encoded genesis, hex. Needed when `relay` is not given.
    pub genesis: Option<String>,
    /// Refuse to start unless the genesis has this hash (hex).
    pub genesis_hash: Option<String>,
    /// IndexedDB database prefix (default "protoblock"); one database per chain.
    pub store_name: Option<String>,
    /// Hex seed of a producer (oracle) key: this node then produces blocks in its slots.
    pub oracle_key: Option<String>,
    #[cfg_attr(test, ts(optional, type = "number"))]
    pub block_interval_ms: Option<u64>,
    #[cfg_attr(test, ts(optional, type = "number"))]
    pub target_peers: Option<usize>,
    /// How many relayed browser peers to upgrade to direct WebRTC (default 6).
    #[cfg_attr(test, ts(optional, type = "number"))]
    pub target_direct_peers: Option<usize>,
    /// Extra ICE servers for direct WebRTC: "stun:host:port", or TURN with credentials
    /// "turn:user:pass@host:port"; the relay's own come from `relay`.
    pub ice_servers: Option<Vec<String>>,
    /// Console log level, "error" | "warn" (default) | "info". Page-wide: the first node of a page sets it.
    /// The release package compiles out "debug" and "trace" (package size); a debug build honours them.
    pub log_level: Option<String>,
    /// Web Workers that check block signatures beside the page's thread (default: one fewer than the
    /// machine's cores, 1 to 4; at most 8). 0 checks them on the page's thread.
    pub signature_workers: Option<u32>,
    /// Keep only the newest this many blocks in IndexedDB (default 10,000:
    /// about five and a half hours of 2-second blocks, some tens of MB); 0
    /// keeps every block. The node serves what it keeps and says so to its
    /// peers, which ask others for older ranges.
    pub retain_blocks: Option<u64>,
    /// Test hook: accept `/webrtc` signalling and never answer.
    #[cfg(feature = "test-hooks")]
    #[serde(default, rename = "_testBlackHole")]
    pub test_black_hole: bool,
}
