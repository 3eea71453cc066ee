//! The browser store's main-chain index (height -> block id) as segments
//! (pure, so tested natively).
//!
//! One IndexedDB record per commit instead of one per block: a record keyed
//! by height `s` holding `n` ids back to back (32 bytes each) says which
//! blocks are at heights `s .. s + n`. A height is answered by the record
//! with the greatest key at or below it, so a later commit overrides an
//! earlier one from its first height up: a reorg writes its new branch from
//! the fork up and deletes the records keyed above that height, and never
//! rewrites an older record. The version-2 layout, one record per height
//! holding one id, is this layout with segments of one: old databases read
//! as they are, with no migration.
//!
//! A sync issues one index put per commit instead of one per block: every
//! request costs the page's thread and the browser's IndexedDB process
//! (see BENCHMARKS.md).

use std::collections::BTreeMap;

use protoblock_core::hash::Hash32;
use protoblock_store::StoreError;

/// The index records a batch writes: its main blocks `(height, id)` in
/// batch order (a later entry at a height wins, as a reorg within a merged
/// batch leaves them), as one record per run of consecutive heights.
pub(crate) fn segments(puts: impl IntoIterator<Item = (u64, Hash32)>) -> Vec<(u64, Vec<u8>)> {
    let by_height: BTreeMap<u64, Hash32> = puts.into_iter().collect();
    let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut next = None;
    for (h, id) in by_height {
        match out.last_mut() {
            Some((_, ids)) if next == Some(h) => ids.extend_from_slice(&id.0),
            _ => out.push((h, id.0.to_vec())),
        }
        next = h.checked_add(1);
    }
    out
}

/// The ids at heights `from ..= to`, from the records that can answer them:
/// the one with the greatest key at or below `from` and every one keyed in
/// `from + 1 ..= to`, in any order.
pub(crate) fn resolve(from: u64, to: u64, records: &[(u64, Vec<u8>)]) -> Result<Vec<Hash32>, StoreError> {
    if to < from {
        return Ok(Vec::new());
    }
    let mut by_start: BTreeMap<u64, &[u8]> = BTreeMap::new();
    for (start, ids) in records {
        if ids.is_empty() || !ids.len().is_multiple_of(32) {
            return Err(StoreError::Corrupt("main index record length"));
        }
        by_start.insert(*start, ids);
    }
    let mut out = Vec::with_capacity((to - from + 1).min(1 << 16) as usize);
    for h in from..=to {
        let (start, ids) = by_start.range(..=h).next_back().ok_or(StoreError::Corrupt("main index gap"))?;
        let i = usize::try_from(h - start).map_err(|_| StoreError::Corrupt("main index gap"))?;
        let id = ids.get(i * 32..i * 32 + 32).ok_or(StoreError::Corrupt("main index gap"))?;
        out.push(Hash32::from_slice(id).ok_or(StoreError::Corrupt("main index id"))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(h: u64, branch: u8) -> Hash32 {
        let mut b = [branch; 32];
        b[..8].copy_from_slice(&h.to_be_bytes());
        Hash32(b)
    }

    /// The database as IndexedDB would hold it after applying a batch the way
    /// the store does: records keyed above the batch's lowest height deleted,
    /// then its segments put.
    fn commit(db: &mut BTreeMap<u64, Vec<u8>>, puts: &[(u64, Hash32)]) {
        let segs = segments(puts.iter().copied());
        if let Some((lo, _)) = segs.first() {
            db.retain(|k, _| k <= lo);
        }
        db.extend(segs);
    }

    /// What a read issues: the record at or below `from`, and those above it up to `to`.
    fn read(db: &BTreeMap<u64, Vec<u8>>, from: u64, to: u64) -> Result<Vec<Hash32>, StoreError> {
        let mut recs: Vec<(u64, Vec<u8>)> =
            db.range(..=from).next_back().map(|(k, v)| (*k, v.clone())).into_iter().collect();
        if to > from {
            recs.extend(db.range(from + 1..=to).map(|(k, v)| (*k, v.clone())));
        }
        resolve(from, to, &recs)
    }

    #[test]
    fn commits_reorgs_and_version_2_records_read_back_exactly() {
        let mut db = BTreeMap::new();
        // Version 2: a record per height.
        for h in 1..=5 {
            db.insert(h, id(h, 0).0.to_vec());
        }
        let mut want: BTreeMap<u64, Hash32> = (1..=5).map(|h| (h, id(h, 0))).collect();
        // A sync batch, then a merged batch holding a reorg at 8 inside it.
        let batch: Vec<_> = (6..=20).map(|h| (h, id(h, 0))).collect();
        commit(&mut db, &batch);
        want.extend(batch.iter().copied());
        let merged: Vec<_> = (21..=25).map(|h| (h, id(h, 0))).chain((18..=27).map(|h| (h, id(h, 1)))).collect();
        commit(&mut db, &merged);
        want.extend(merged.iter().copied());
        assert_eq!(db.len(), 5 + 2, "one record per commit");
        // A reorg below the start of the last record.
        let reorg: Vec<_> = (12..=30).map(|h| (h, id(h, 2))).collect();
        commit(&mut db, &reorg);
        want.extend(reorg.iter().copied());
        for from in 1..=30 {
            for to in from..=30 {
                let expect: Vec<Hash32> = (from..=to).map(|h| want[&h]).collect();
                assert_eq!(read(&db, from, to).unwrap(), expect, "{from}..={to}");
            }
        }
        assert!(read(&db, 31, 31).is_err(), "above the index is a gap");
        assert_eq!(read(&db, 9, 3).unwrap(), vec![]);
    }

    #[test]
    fn runs_split_at_holes_and_bad_records_are_refused() {
        let segs = segments([(3, id(3, 0)), (4, id(4, 0)), (7, id(7, 0))]);
        assert_eq!(segs.iter().map(|(s, v)| (*s, v.len() / 32)).collect::<Vec<_>>(), vec![(3, 2), (7, 1)]);
        assert!(segments([]).is_empty());
        assert!(resolve(1, 1, &[(1, vec![0; 31])]).is_err());
        assert!(resolve(1, 1, &[(1, vec![])]).is_err());
        assert!(resolve(1, 1, &[(2, vec![0; 32])]).is_err(), "nothing at or below 1");
        assert!(resolve(1, 2, &[(1, vec![0; 32])]).is_err(), "height 2 past the record");
    }
}
