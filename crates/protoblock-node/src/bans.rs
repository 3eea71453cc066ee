//! Bans: they expire, and at most `max` are held (peer ids are free to
//! make, so when full the ban closest to expiry goes first).

use std::collections::BTreeMap;

#[derive(Debug)]
pub(crate) struct Bans<P> {
    until: BTreeMap<P, u64>,
    max: usize,
}

impl<P: Ord + Copy> Bans<P> {
    pub fn new(max: usize) -> Self {
        Self { until: BTreeMap::new(), max: max.max(1) }
    }

    pub fn is_banned(&self, peer: &P, now: u64) -> bool {
        self.until.get(peer).is_some_and(|u| *u > now)
    }

    /// Bans `peer` until `until`; returns a peer whose ban was dropped to
    /// make room (to be unbanned at the gossip layer too).
    pub fn insert(&mut self, peer: P, until: u64) -> Option<P> {
        let mut evicted = None;
        if !self.until.contains_key(&peer)
            && self.until.len() >= self.max
            && let Some(first) = self.until.iter().min_by_key(|(_, u)| **u).map(|(p, _)| *p)
        {
            self.until.remove(&first);
            evicted = Some(first);
        }
        self.until.insert(peer, until);
        evicted
    }

    /// Removes and returns the bans that ran out by `now`.
    pub fn expire(&mut self, now: u64) -> Vec<P> {
        let gone: Vec<P> = self.until.iter().filter(|(_, u)| **u <= now).map(|(p, _)| *p).collect();
        for p in &gone {
            self.until.remove(p);
        }
        gone
    }

    pub fn next_expiry(&self) -> Option<u64> {
        self.until.values().min().copied()
    }

    pub fn len(&self) -> usize {
        self.until.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bans_expire_and_stay_bounded() {
        let mut b = Bans::new(2);
        assert_eq!(b.insert(1u32, 100), None);
        assert_eq!(b.insert(2, 50), None);
        assert!(b.is_banned(&1, 99) && !b.is_banned(&1, 100));
        // Full: the ban closest to expiry makes room.
        assert_eq!(b.insert(3, 200), Some(2));
        assert_eq!(b.len(), 2);
        assert_eq!(b.next_expiry(), Some(100));
        assert_eq!(b.expire(150), vec![1]);
        assert_eq!(b.len(), 1);
    }
}
