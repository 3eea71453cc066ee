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

use std::collections::VecDeque;

use crate::hash::FastMap;

use crate::hash::Hash32;

/// `seen` is the index; `order` only drives pruning. It lists ids as they
/// were inserted, which is block order: nonces there are only roughly
/// ascending (a tx may be up to the whole window older than its block), so
/// pruning pops from the front while the front is below the cutoff and
/// leaves the rest for later, which is allowed (see above). Reverting a
/// block removes its ids from `seen` only; their stale `order` entries are
/// skipped when they reach the front. An ordered set gave exact pruning but
/// cost a B-tree insert per tx, a visible share of validation.
#[derive(Debug, Clone, Default)]
pub struct ReplayIndex {
    seen: FastMap<Hash32, u64>,
    order: VecDeque<(u64, Hash32)>,
}

impl PartialEq for ReplayIndex {
    fn eq(&self, other: &Self) -> bool {
        // `order` is bookkeeping for pruning, not content.
        self.seen == other.seen
    }
}
impl Eq for ReplayIndex {}

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
        self.seen.insert(id, nonce);
        self.order.push_back((nonce, id));
    }

    pub fn remove(&mut self, id: &Hash32) {
        self.seen.remove(id);
    }

    /// Drops entries whose nonce (ns) is below `cutoff_ns`, from the oldest
    /// inserted on, stopping at the first that is not; returns their ids.
    pub fn prune_below(&mut self, cutoff_ns: u64) -> Vec<Hash32> {
        let mut gone = Vec::new();
        while let Some(&(nonce, id)) = self.order.front() {
            let live = self.seen.get(&id) == Some(&nonce);
            if live && nonce >= cutoff_ns {
                break;
            }
            self.order.pop_front();
            if live {
                self.seen.remove(&id);
                gone.push(id);
            }
        }
        gone
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Hash32, &u64)> {
        self.seen.iter()
    }
}

impl FromIterator<(Hash32, u64)> for ReplayIndex {
    /// Entries from a store come in no particular order: sorted by nonce
    /// here, so pruning from the front stays close to exact.
    fn from_iter<I: IntoIterator<Item = (Hash32, u64)>>(iter: I) -> Self {
        let mut entries: Vec<(u64, Hash32)> = iter.into_iter().map(|(id, n)| (n, id)).collect();
        entries.sort_unstable();
        let mut r = Self::default();
        for (n, id) in entries {
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

    #[test]
    fn out_of_order_nonces_are_pruned_late_never_early_and_reverts_are_skipped() {
        let id = |b: u8| Hash32([b; 32]);
        let mut r = ReplayIndex::default();
        // Block order: a later block may carry an older nonce.
        r.insert(id(1), 10);
        r.insert(id(2), 50);
        r.insert(id(3), 20);
        r.insert(id(4), 60);
        // Reverted, then included again by another branch with the same nonce.
        r.remove(&id(4));
        r.insert(id(5), 70);
        r.insert(id(4), 60);
        assert_eq!(r.prune_below(30), vec![id(1)], "stops at 50; 20 waits its turn");
        assert!(r.contains(&id(3)));
        let mut gone = r.prune_below(65);
        gone.sort();
        assert_eq!(gone, vec![id(2), id(3), id(4)], "each id once, the stale entry skipped");
        assert_eq!(r.len(), 1);
        assert!(r.contains(&id(5)));
        // Nothing at or above the cutoff ever goes.
        assert!(r.prune_below(70).is_empty());
    }
}
