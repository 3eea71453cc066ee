//! Consensus parameters. Changing any of them is a protocol change.

/// Limits and windows every node must agree on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainParams {
    /// Blocks this far below the head are final: never reorganised, and their
    /// undo records are dropped.
    pub finality_depth: u64,
    pub max_block_bytes: usize,
    pub max_tx_bytes: usize,
    pub max_txs_per_block: usize,
    /// How far a block's timestamp may run ahead of the validator's clock.
    pub max_future_drift_ms: u64,
    /// Legacy replay window: a tx nonce may be at most this much older than the block ...
    pub nonce_max_age_ms: u64,
    /// ... and at most this much newer.
    pub nonce_max_lead_ms: u64,
    /// Upper bound on projected or reported fantasy points.
    pub max_points: u32,
    /// Max side-chain blocks held in memory awaiting fork choice.
    pub max_side_blocks: usize,
}

pub const BLOCK_VERSION: u32 = 1;
pub const TX_VERSION: u32 = 1;

impl Default for ChainParams {
    fn default() -> Self {
        Self {
            finality_depth: 32,
            max_block_bytes: 1 << 20,
            max_tx_bytes: 64 << 10,
            max_txs_per_block: 4096,
            max_future_drift_ms: 15_000,
            nonce_max_age_ms: 48 * 3600 * 1000,
            nonce_max_lead_ms: 60 * 60 * 1000,
            max_points: 1000,
            max_side_blocks: 512,
        }
    }
}
