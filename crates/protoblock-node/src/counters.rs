//! What the node counts for its status and metrics.

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Blocks placed on the chain and committed.
    pub blocks_validated: u64,
    /// Blocks received in sync responses (gossip not counted).
    pub blocks_downloaded: u64,
    /// Blocks this node sent to others in sync responses.
    pub blocks_served: u64,
    /// Synced blocks whose signatures the verifier checked off the loop.
    pub blocks_verified_off_loop: u64,
    pub gossip_accepted: u64,
    pub gossip_rejected: u64,
    /// Store commits made (each durable).
    pub commits: u64,
    /// Peers banned, in all (bans expire; `Status::bans` counts those in force).
    pub bans: u64,
}
