//! The browser store's replay index layout (pure, so tested natively).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use protoblock_core::hash::Hash32;
use protoblock_store::StoreError;

/// The replay index as the store keeps it: ids grouped into segments, one
/// IndexedDB record per segment, so a sync batch of 128 blocks × 20 txs adds
/// one record instead of 2,560 (each request costs the page ~10-25 µs of
/// main thread). A mirror of what is stored is kept here (~50 bytes an id),
/// so a delete knows its segment; a segment that loses ids is rewritten from
/// the mirror (pruning takes the oldest segments whole, a reorg the newest)
/// or deleted once empty.
#[derive(Default, Clone)]
pub(crate) struct ReplaySegments {
    /// Live id -> (segment, nonce).
    pub(crate) live: HashMap<Hash32, (u64, u64)>,
    /// Live ids per segment.
    counts: BTreeMap<u64, u32>,
    next: u64,
}

/// What a batch does to the segments: records to put or delete.
pub(crate) struct ReplayPlan {
    pub(crate) put: Vec<(u64, Vec<u8>)>,
    pub(crate) delete: Vec<u64>,
}

impl ReplaySegments {
    /// Files `id` under `seg`; returns the segment it left, if any.
    fn insert(&mut self, id: Hash32, seg: u64, nonce: u64) -> Option<u64> {
        *self.counts.entry(seg).or_default() += 1;
        let old = self.live.insert(id, (seg, nonce)).map(|(s, _)| s)?;
        self.leave(old);
        Some(old)
    }

    fn leave(&mut self, seg: u64) {
        if let Some(c) = self.counts.get_mut(&seg) {
            *c -= 1;
            if *c == 0 {
                self.counts.remove(&seg);
            }
        }
    }

    /// Applies `put` and `delete` to the mirror and returns the records to
    /// write. Ids put again (a reorg re-adding a tx) leave their old segment.
    pub(crate) fn apply(&mut self, put: &[(Hash32, u64)], delete: &[Hash32]) -> ReplayPlan {
        let mut touched = BTreeSet::new();
        for id in delete {
            if let Some((seg, _)) = self.live.remove(id) {
                self.leave(seg);
                touched.insert(seg);
            }
        }
        let new = self.next;
        for (id, nonce) in put {
            touched.extend(self.insert(*id, new, *nonce));
        }
        touched.remove(&new);
        let mut plan = ReplayPlan { put: Vec::new(), delete: Vec::new() };
        let mut records: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        for seg in touched {
            match self.counts.get(&seg) {
                Some(&n) => {
                    records.insert(seg, Vec::with_capacity(n as usize * 40));
                }
                None => plan.delete.push(seg),
            }
        }
        if !records.is_empty() {
            // Segments that lost some ids: one pass over the mirror.
            for (id, (seg, nonce)) in &self.live {
                if let Some(v) = records.get_mut(seg) {
                    v.extend_from_slice(&id.0);
                    v.extend_from_slice(&nonce.to_be_bytes());
                }
            }
        }
        plan.put.extend(records);
        if !put.is_empty() {
            let mut v = Vec::with_capacity(put.len() * 40);
            for (id, nonce) in put {
                v.extend_from_slice(&id.0);
                v.extend_from_slice(&nonce.to_be_bytes());
            }
            plan.put.push((new, v));
            self.next += 1;
        }
        plan
    }

    pub(crate) fn load(&mut self, seg: u64, v: &[u8]) -> Result<(), StoreError> {
        if !v.len().is_multiple_of(40) {
            return Err(StoreError::Corrupt("replay segment length"));
        }
        for e in v.chunks_exact(40) {
            let id = Hash32::from_slice(&e[..32]).ok_or(StoreError::Corrupt("replay id"))?;
            let nonce = u64::from_be_bytes(e[32..].try_into().expect("8 bytes"));
            self.insert(id, seg, nonce);
        }
        self.next = self.next.max(seg + 1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(i: u8) -> Hash32 {
        Hash32([i; 32])
    }

    /// What a reload would read: every record the plans left, loaded.
    fn reload(db: &BTreeMap<u64, Vec<u8>>) -> ReplaySegments {
        let mut r = ReplaySegments::default();
        for (seg, v) in db {
            r.load(*seg, v).unwrap();
        }
        r
    }

    fn run(r: &mut ReplaySegments, db: &mut BTreeMap<u64, Vec<u8>>, put: &[(Hash32, u64)], delete: &[Hash32]) {
        let plan = r.apply(put, delete);
        for (seg, v) in plan.put {
            db.insert(seg, v);
        }
        for seg in plan.delete {
            assert!(db.remove(&seg).is_some(), "deleted a segment that is not there");
        }
        assert_eq!(reload(db).live, r.live);
    }

    #[test]
    fn segments_follow_puts_prunes_and_reorgs() {
        let (mut r, mut db) = (ReplaySegments::default(), BTreeMap::new());
        run(&mut r, &mut db, &[(id(1), 10), (id(2), 11), (id(3), 12)], &[]);
        run(&mut r, &mut db, &[(id(4), 13), (id(5), 14)], &[]);
        assert_eq!(db.len(), 2);
        // A prune takes part of the oldest segment: it is rewritten.
        run(&mut r, &mut db, &[(id(6), 15)], &[id(1), id(2)]);
        assert_eq!(db.len(), 3);
        assert_eq!(db[&0].len(), 40);
        // Then the rest of it: the record goes.
        run(&mut r, &mut db, &[], &[id(3)]);
        assert!(!db.contains_key(&0));
        // A reorg reverts the newest ids and puts one back in a new segment.
        run(&mut r, &mut db, &[(id(5), 14), (id(7), 16)], &[id(6), id(4)]);
        assert!(!db.contains_key(&2));
        assert!(!db.contains_key(&1), "id 5 left segment 1, which is empty");
        assert_eq!(r.live.len(), 2);
        // Unknown deletes are ignored; a reload carries on numbering.
        run(&mut r, &mut db, &[], &[id(99)]);
        let mut again = reload(&db);
        assert_eq!(again.apply(&[(id(8), 17)], &[]).put[0].0, r.apply(&[(id(8), 17)], &[]).put[0].0);
    }

    #[test]
    fn a_corrupt_segment_is_refused() {
        assert!(ReplaySegments::default().load(0, &[0; 41]).is_err());
    }
}
