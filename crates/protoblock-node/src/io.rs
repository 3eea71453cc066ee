//! What goes into the service and what comes out of it.

use protoblock_core::mempool::MempoolError;
use protoblock_core::{Hash32, WriteBatch};
use protoblock_proto::v1 as pb;

/// The time of an input. `mono_ms` (milliseconds on a monotonic clock, from
/// any origin) drives every interval and timeout, so a wall-clock step can
/// neither freeze nor mass-expire bans, deadlines or backoffs; `unix_ms` is
/// used only where the chain needs wall time: block timestamps, the tx nonce
/// window, production.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub mono_ms: u64,
    pub unix_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    Blocks,
    Txs,
}

/// A gossip message's fate: forwarded, dropped as the sender's fault (it
/// costs the sender gossip score), or dropped without blame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Reject,
    Ignore,
}

/// The driver's name for an inbound request's reply channel.
pub type ReplyId = u64;
/// The service's name for an outbound sync request.
pub type RequestId = u64;
/// The service's name for a verifier job, a store read or a commit.
pub type Token = u64;

#[derive(Debug)]
pub enum Input<P> {
    /// The first connection to `peer` is up.
    Connected {
        peer: P,
    },
    /// The last connection to `peer` closed.
    Disconnected {
        peer: P,
    },
    /// The addresses `peer` listens on (identify), shared by peer exchange.
    /// Opaque bytes to the service (multiaddrs in the product).
    ListenAddrs {
        peer: P,
        addrs: Vec<Vec<u8>>,
    },
    /// A peer opened the handshake; answer under `reply`.
    StatusRequest {
        peer: P,
        reply: ReplyId,
        status: pb::Status,
    },
    /// A peer answered our status.
    StatusResponse {
        peer: P,
        status: pb::Status,
    },
    /// A peer's sync request; answer under `reply`.
    SyncRequest {
        peer: P,
        reply: ReplyId,
        request: pb::SyncRequest,
    },
    SyncResponse {
        peer: P,
        id: RequestId,
        response: pb::SyncResponse,
    },
    /// The answer given under `reply` ([`Action::Reply`]) has been written
    /// to the peer, or failed (timeout, reset, the peer gone): the transport
    /// no longer holds it. Every `Reply` is followed by one of these.
    ReplyDone {
        reply: ReplyId,
    },
    /// The request failed at the transport (timeout, reset, refused).
    SyncFailed {
        peer: P,
        id: RequestId,
    },
    /// A gossip message awaiting our verdict; `id` is the gossip layer's message id.
    Gossip {
        from: P,
        id: Vec<u8>,
        topic: Topic,
        data: Vec<u8>,
    },
    /// The verifier's answer to [`Action::Verify`]: `ok[i]`, every signature
    /// of `blocks[i]` verified over exactly these bytes. A driver whose
    /// verifier is busy answers at once with every `ok` false (the chain
    /// then checks them itself).
    Verified {
        token: Token,
        blocks: Vec<Vec<u8>>,
        ok: Vec<bool>,
    },
    /// The verifier stopped (a worker crashed): check signatures here from now on.
    VerifierGone,
    /// The store's answer to [`Action::ReadBlocks`].
    BlocksRead {
        token: Token,
        result: Result<Vec<Vec<u8>>, String>,
    },
    /// The store's answer to [`Action::Commit`]: durable, or failed.
    Committed {
        token: Token,
        result: Result<(), String>,
    },
    /// [`NodeService::next_wakeup`] was reached.
    Timer,
    /// Local command: serve block ranges to peers, or stop serving them.
    SetServeSync(bool),
}

#[derive(Debug)]
pub enum Action<P> {
    /// Open the handshake with `peer`.
    SendStatus {
        peer: P,
        status: pb::Status,
    },
    ReplyStatus {
        reply: ReplyId,
        status: pb::Status,
    },
    SendRequest {
        peer: P,
        id: RequestId,
        request: pb::SyncRequest,
    },
    Reply {
        reply: ReplyId,
        response: pb::SyncResponse,
    },
    /// Read main-chain blocks from `start` (at most `count`, about
    /// `max_bytes`) and answer with [`Input::BlocksRead`].
    ReadBlocks {
        token: Token,
        start: u64,
        count: u32,
        max_bytes: usize,
    },
    Publish {
        topic: Topic,
        data: Vec<u8>,
    },
    ReportVerdict {
        from: P,
        id: Vec<u8>,
        verdict: Verdict,
    },
    /// Check these blocks' signatures off the loop; answer with [`Input::Verified`].
    Verify {
        token: Token,
        blocks: Vec<Vec<u8>>,
    },
    /// Write atomically and answer with [`Input::Committed`] once durable.
    /// One commit is out at a time.
    Commit {
        token: Token,
        batch: WriteBatch,
    },
    /// Refuse `peer`'s connections and gossip until [`Action::Unban`].
    Ban {
        peer: P,
        reason: String,
    },
    Unban {
        peer: P,
    },
    Disconnect {
        peer: P,
    },
    /// Dial a peer learned by peer exchange (addresses as it sent them).
    Dial {
        peer: P,
        addrs: Vec<Vec<u8>>,
    },
    Event(Event<P>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<P> {
    /// A new head, once the commit that carries it is durable.
    NewHead {
        height: u64,
        id: Hash32,
        /// The ids of its txs (a page marks its own as "in block").
        txs: Vec<Hash32>,
    },
    PeerUp {
        peer: P,
    },
    PeerDown {
        peer: P,
    },
    /// Dropped at the handshake: another chain or protocol version.
    PeerIncompatible {
        peer: P,
        reason: String,
    },
    PeerBanned {
        peer: P,
        reason: String,
    },
    TxAccepted {
        id: Hash32,
    },
    /// After each placed run of synced blocks.
    SyncProgress {
        head: u64,
        target: u64,
        syncing: bool,
    },
    /// A store commit failed. The node stops placing and producing blocks
    /// (it would run ahead of its store) and reports itself unhealthy; a
    /// restart resumes from the last durable head.
    StoreFailed {
        error: String,
    },
}

/// Why a submitted tx was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Rejected(#[from] MempoolError),
    #[error("the node's store failed: {0}")]
    StoreFailed(String),
    #[error("node stopped")]
    Stopped,
}

impl SubmitError {
    /// A stable name for programs: the relay's HTTP `kind`, the page's JS
    /// `error.code`. The message is for people.
    pub fn kind(&self) -> &'static str {
        use protoblock_core::mempool::MempoolError as M;
        match self {
            SubmitError::Rejected(M::Invalid(_)) => "invalid",
            SubmitError::Rejected(M::Duplicate) => "duplicate",
            SubmitError::Rejected(M::SignerLimit) => "signer_limit",
            SubmitError::Rejected(M::Full) => "mempool_full",
            SubmitError::StoreFailed(_) => "store_failed",
            SubmitError::Stopped => "stopped",
        }
    }

    /// For an invalid tx, the rule it broke (`TxError::rule`).
    pub fn rule(&self) -> Option<&'static str> {
        match self {
            SubmitError::Rejected(protoblock_core::mempool::MempoolError::Invalid(e)) => Some(e.rule()),
            _ => None,
        }
    }
}
