//! The chain's rules and the node's own limits, kept apart.
//!
//! [`ChainParams`] are consensus: they come from the genesis
//! ([`crate::Genesis::params`]) and its hash covers them, so no node can
//! validate with other rules than its peers without being on another chain.
//! [`ChainLimits`] are local: how much this node holds in memory, which
//! changes nothing about which blocks are valid.

use protoblock_proto::v1 as pb;

/// Limits and windows every node of a chain agrees on (see `ConsensusParams`
/// in chain.proto).
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
}

/// What this node keeps in memory; not part of any block's validity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainLimits {
    /// Max side-chain blocks held in memory awaiting fork choice.
    pub max_side_blocks: usize,
}

impl Default for ChainLimits {
    fn default() -> Self {
        Self { max_side_blocks: 512 }
    }
}

pub const BLOCK_VERSION: u32 = 1;
pub const TX_VERSION: u32 = 1;

/// Hard bounds on what a genesis may set. A genesis is configuration, yet it
/// arrives from a relay's `/bootstrap` or a file: these keep a hostile one
/// from making a node accept frames it cannot hold or rules it cannot apply.
/// 16 MiB is the largest block a browser tab is asked to buffer and verify.
pub const MAX_BLOCK_BYTES_BOUND: u64 = 16 << 20;
pub const MAX_FINALITY_DEPTH_BOUND: u64 = 100_000;
pub const MAX_TXS_PER_BLOCK_BOUND: u64 = 1 << 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("consensus parameter {field} = {value} is outside {min}..={max}")]
pub struct ParamsError {
    pub field: &'static str,
    pub value: u64,
    pub min: u64,
    pub max: u64,
}

impl ChainParams {
    /// The checked rules of a genesis's `ConsensusParams`.
    pub fn from_proto(p: &pb::ConsensusParams) -> Result<Self, ParamsError> {
        fn within(field: &'static str, value: u64, min: u64, max: u64) -> Result<u64, ParamsError> {
            if (min..=max).contains(&value) { Ok(value) } else { Err(ParamsError { field, value, min, max }) }
        }
        const DAY_MS: u64 = 24 * 3600 * 1000;
        let max_block_bytes = within("max_block_bytes", p.max_block_bytes, 1024, MAX_BLOCK_BYTES_BOUND)?;
        Ok(Self {
            finality_depth: within("finality_depth", p.finality_depth, 1, MAX_FINALITY_DEPTH_BOUND)?,
            max_block_bytes: max_block_bytes as usize,
            max_tx_bytes: within("max_tx_bytes", p.max_tx_bytes, 128, max_block_bytes)? as usize,
            max_txs_per_block: within("max_txs_per_block", p.max_txs_per_block, 1, MAX_TXS_PER_BLOCK_BOUND)? as usize,
            max_future_drift_ms: within("max_future_drift_ms", p.max_future_drift_ms, 0, DAY_MS)?,
            nonce_max_age_ms: within("nonce_max_age_ms", p.nonce_max_age_ms, 1, 30 * DAY_MS)?,
            nonce_max_lead_ms: within("nonce_max_lead_ms", p.nonce_max_lead_ms, 1, 30 * DAY_MS)?,
            max_points: within("max_points", p.max_points.into(), 1, 1_000_000)? as u32,
        })
    }

    pub fn to_proto(&self) -> pb::ConsensusParams {
        pb::ConsensusParams {
            finality_depth: self.finality_depth,
            max_block_bytes: self.max_block_bytes as u64,
            max_tx_bytes: self.max_tx_bytes as u64,
            max_txs_per_block: self.max_txs_per_block as u64,
            max_future_drift_ms: self.max_future_drift_ms,
            nonce_max_age_ms: self.nonce_max_age_ms,
            nonce_max_lead_ms: self.nonce_max_lead_ms,
            max_points: self.max_points,
        }
    }
}

/// The rules a new chain starts from (the dev network writes these into its
/// genesis). Nothing reads them in place of a genesis's own.
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_and_every_bound_is_enforced() {
        let d = ChainParams::default();
        assert_eq!(ChainParams::from_proto(&d.to_proto()), Ok(d.clone()));
        type Break = fn(&mut pb::ConsensusParams);
        let cases: [(&str, Break); 6] = [
            ("finality_depth", |p| p.finality_depth = 0),
            ("max_block_bytes", |p| p.max_block_bytes = MAX_BLOCK_BYTES_BOUND + 1),
            ("max_tx_bytes", |p| p.max_tx_bytes = p.max_block_bytes + 1),
            ("max_txs_per_block", |p| p.max_txs_per_block = 0),
            ("nonce_max_age_ms", |p| p.nonce_max_age_ms = 0),
            ("max_points", |p| p.max_points = 0),
        ];
        for (field, break_it) in cases {
            let mut p = d.to_proto();
            break_it(&mut p);
            assert_eq!(ChainParams::from_proto(&p).map_err(|e| e.field), Err(field));
        }
    }
}
