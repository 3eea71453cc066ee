//! Block signatures checked off the loop (the browser's Web Workers): a
//! synced range goes out as one job, its verdicts come back under the same
//! token. Bounded; beyond the bound, or without a verifier, the chain
//! checks signatures itself.

use std::collections::BTreeMap;

use protoblock_core::block::Signatures;

use crate::PeerKey;
use crate::io::{Now, Token};
use crate::service::NodeService;
use crate::sync::SyncedBlock;

#[derive(Debug)]
pub(crate) struct Verifying<P> {
    enabled: bool,
    /// Ranges out with the verifier: token → (planner request id, peer).
    jobs: BTreeMap<Token, (u64, P)>,
}

impl<P> Verifying<P> {
    pub fn new(enabled: bool) -> Self {
        Self { enabled, jobs: BTreeMap::new() }
    }

    pub fn has_room(&self, max: usize) -> bool {
        self.enabled && self.jobs.len() < max
    }

    pub fn insert(&mut self, token: Token, request: u64, peer: P) {
        self.jobs.insert(token, (request, peer));
    }

    /// The verifier is gone: the ranges it held time out and are asked again.
    pub fn stop(&mut self) {
        self.enabled = false;
        self.jobs.clear();
    }
}

impl<P: PeerKey> NodeService<P> {
    pub(crate) fn on_verified(&mut self, now: Now, token: Token, blocks: Vec<Vec<u8>>, ok: Vec<bool>) {
        let Some((id, peer)) = self.verifying.jobs.remove(&token) else { return };
        self.counters.blocks_verified_off_loop += ok.iter().filter(|ok| **ok).count() as u64;
        // A block that failed goes to the chain unchecked, which finds the
        // culprit and names the rule, and the peer is banned as usual.
        let blocks = blocks
            .into_iter()
            .zip(ok.into_iter().chain(std::iter::repeat(false)))
            .map(|(bytes, ok)| SyncedBlock {
                bytes,
                signatures: if ok { Signatures::AlreadyChecked } else { Signatures::Check },
            })
            .collect();
        self.on_range(now, id, peer, blocks);
    }
}
