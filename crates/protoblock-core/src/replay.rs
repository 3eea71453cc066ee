//! Replay protection: the ids of txs on the main chain whose nonce is still
//! inside the window any future block could accept.
//!
//! It lives beside the state map, not in it. It holds an entry per tx of the
//! last 48 h, far more than the fantasy state, and is not part of the state
//! root (it is derivable from recent blocks), so keeping it out of the
//! overlay, the commitment pass and the ordered state map keeps validation
//! cheap. Entries are pruned only below the *final* block's window, so a
//! reorg never has to bring a pruned entry back: reverting a block just
//! removes its own tx ids. Pruning later than strictly possible changes no
//! verdict: a tx whose nonce is that old fails the nonce window anyway.

use std::collections::BTreeSet;

use crate::hash::FastMap;

use crate::hash::Hash32;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayIndex {
    seen: FastMap<Hash32, u64>,
    by_nonce: BTreeSet<(u64, Hash32)>,
}

impl ReplayIndex {
    pub fn contains(&self, id: &Hash32) -> bool {
        self.seen.contains_key(id)
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    pub fn insert(&mut self, id: Hash32, nonce: u64) {
        if let Some(old) = self.seen.insert(id, nonce) {
            self.by_nonce.remove(&(old, id));
        }
        self.by_nonce.insert((nonce, id));
    }

    pub fn remove(&mut self, id: &Hash32) {
        if let Some(n) = self.seen.remove(id) {
            self.by_nonce.remove(&(n, *id));
        }
    }

    /// Drops entries whose nonce (ns) is below `cutoff_ns`; returns their ids.
    pub fn prune_below(&mut self, cutoff_ns: u64) -> Vec<Hash32> {
        let keep = self.by_nonce.split_off(&(cutoff_ns, Hash32::ZERO));
        let gone = std::mem::replace(&mut self.by_nonce, keep);
        gone.into_iter()
            .map(|(_, id)| {
                self.seen.remove(&id);
                id
            })
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Hash32, &u64)> {
        self.seen.iter()
    }
}

impl FromIterator<(Hash32, u64)> for ReplayIndex {
    fn from_iter<I: IntoIterator<Item = (Hash32, u64)>>(iter: I) -> Self {
        let mut r = Self::default();
        for (id, n) in iter {
            r.insert(id, n);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_and_remove() {
        let id = |b: u8| Hash32([b; 32]);
        let mut r: ReplayIndex = [(id(1), 10), (id(2), 20), (id(3), 30)].into_iter().collect();
        assert!(r.contains(&id(2)));
        let mut gone = r.prune_below(20);
        gone.sort();
        assert_eq!(gone, vec![id(1)]);
        assert!(!r.contains(&id(1)) && r.contains(&id(2)));
        r.remove(&id(2));
        assert_eq!(r.len(), 1);
        assert_eq!(r.prune_below(u64::MAX), vec![id(3)]);
        assert!(r.is_empty());
    }
}
