//! The service's settings and the protocol's fixed limits.

use ed25519_dalek::SigningKey;
use protoblock_core::Chain;
use protoblock_core::mempool::MempoolConfig;
use protoblock_core::sync::SyncConfig;

pub const PROTOCOL_VERSION: u32 = 1;
/// Blocks asked for or served in one range request, at most.
pub const MAX_RANGE: u32 = 256;
/// Txs (and known ids) in one mempool sync exchange, at most.
pub const MAX_MEMPOOL_SYNC: usize = 1000;
/// Peer records in one peer-exchange answer, at most.
pub const MAX_PEERS_SHARED: usize = 32;
/// Addresses per peer record (shared, or learned from identify), at most.
pub const MAX_ADDRS_SHARED: usize = 8;

/// Called before each block this node produces, with the chain and the new
/// block's height and (wall) time; the txs it returns go through the mempool
/// like any other. The dev relay's season feed and simulated users plug in here.
pub type TxSource = Box<dyn FnMut(&Chain, u64, u64) -> Vec<Vec<u8>> + Send>;

#[derive(Clone)]
pub struct ServiceConfig {
    /// With a key the node produces blocks in the key's slots.
    pub producer_key: Option<SigningKey>,
    pub block_interval_ms: u64,
    /// A producer with peers to learn the chain from (bootstrap addresses)
    /// first meets one: producing on a stale head would only fork the chain.
    pub meet_a_peer_before_producing: bool,
    pub sync: SyncConfig,
    pub mempool: MempoolConfig,
    /// Dial peers learned by peer exchange while below this many.
    pub target_peers: usize,
    pub ban_ms: u64,
    /// Bans held at once, at most (peer ids are free to make).
    pub max_bans: usize,
    /// Answer other peers' block-range requests.
    pub serve_sync: bool,
    /// Keep only the newest this many blocks (at least those from the final
    /// block up, which a restart resumes from); `None` keeps every block (an
    /// archive, as relays are by default). The status handshake says from
    /// which height this node serves, so peers ask others for older ranges.
    pub retain_blocks: Option<u64>,
    /// A response may hold about this many bytes (the codec's limit, less room).
    pub max_response_bytes: usize,
    /// Store reads for peers' range requests in flight at once, at most;
    /// beyond it a request is answered "busy" (one peer cannot queue
    /// unbounded work on the store).
    pub max_reads: usize,
    /// Range answers one peer may have in progress, from the store read
    /// until the transport has written the answer ([`Input::ReplyDone`]):
    /// a peer that never reads its answers holds this many until the
    /// transport's timeout, and is told "busy" beyond (an honest planner
    /// keeps two out).
    ///
    /// [`Input::ReplyDone`]: crate::Input::ReplyDone
    pub max_reads_per_peer: usize,
    /// Bytes of range answers handed to the transport and not yet written,
    /// over all peers; beyond it range requests are answered "busy".
    pub max_answering_bytes: usize,
    /// Requests a peer may make a second (bursts of twice that; a range
    /// costs 1, see `serve`). Far above what an honest sync asks (a range
    /// of 64 blocks is 64 blocks), far below a flood.
    pub serve_per_sec: u64,
    /// Validated blocks staged while a commit is out, at most, before the
    /// node stops placing more until the store catches up.
    pub max_staged_blocks: usize,
    /// Blocks placed per step while catching up, so commands and other
    /// peers get their turn between runs.
    pub max_blocks_per_step: usize,
    /// Sync ranges out with the verifier at once, at most.
    pub max_verifying: usize,
    pub status_refresh_ms: u64,
    pub peer_exchange_ms: u64,
    /// Test hook: serve blocks with a flipped signature bit (a lying peer).
    #[cfg(feature = "test-hooks")]
    pub serve_tampered_blocks: bool,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            producer_key: None,
            block_interval_ms: 2_000,
            meet_a_peer_before_producing: false,
            sync: SyncConfig::default(),
            mempool: MempoolConfig::default(),
            target_peers: 8,
            ban_ms: 10 * 60 * 1000,
            max_bans: 4096,
            serve_sync: true,
            retain_blocks: None,
            max_response_bytes: (4 << 20) - 64 * 1024,
            max_reads: 16,
            max_reads_per_peer: 4,
            max_answering_bytes: 64 << 20,
            serve_per_sec: 32,
            max_staged_blocks: 256,
            max_blocks_per_step: 128,
            max_verifying: 64,
            status_refresh_ms: 5_000,
            peer_exchange_ms: 10_000,
            #[cfg(feature = "test-hooks")]
            serve_tampered_blocks: false,
        }
    }
}
