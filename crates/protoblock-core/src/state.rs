//! The state as an ordered key-value map, plus a copy-on-write overlay.
//!
//! Every state change in the system is a write to this map, which keeps the
//! commitment (LtHash), undo records, reorgs and persistence generic: the
//! store persists raw key/values and knows nothing of fantasy sports.
//!
//! Keys whose first byte is below [`UNCOMMITTED_PREFIX`] are committed by the
//! state root. The range above is reserved for bookkeeping derivable from
//! blocks, persisted and undone like the rest but not committed; nothing uses
//! it today (the replay index has its own structure, see `replay`).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use crate::hash::FastMap;
use crate::lthash::LtHash;

pub type Key = Vec<u8>;
pub type Value = Vec<u8>;

pub const UNCOMMITTED_PREFIX: u8 = 0x80;

pub fn is_committed(key: &[u8]) -> bool {
    key.first().is_some_and(|b| *b < UNCOMMITTED_PREFIX)
}

/// Key layout. Variable-length strings are length-prefixed (1 byte, max 255)
/// so no two distinct tuples encode to the same key.
pub mod keys {
    pub const ACCOUNT: u8 = 0x01;
    pub const NAME: u8 = 0x02;
    pub const SEASON: u8 = 0x03;
    pub const TEAM: u8 = 0x04;
    pub const PLAYER: u8 = 0x05;
    pub const PROJECTION: u8 = 0x06;
    pub const RESULT: u8 = 0x07;

    fn push_str(k: &mut Vec<u8>, s: &str) {
        let b = s.as_bytes();
        debug_assert!(b.len() <= 255, "ids are length-checked before use");
        k.push(b.len().min(255) as u8);
        k.extend_from_slice(&b[..b.len().min(255)]);
    }

    pub fn account(key: &[u8; 32]) -> Vec<u8> {
        let mut k = vec![ACCOUNT];
        k.extend_from_slice(key);
        k
    }
    pub fn name(folded: &str) -> Vec<u8> {
        let mut k = vec![NAME];
        push_str(&mut k, folded);
        k
    }
    pub fn season() -> Vec<u8> {
        vec![SEASON]
    }
    pub fn team(team_id: &str) -> Vec<u8> {
        let mut k = vec![TEAM];
        push_str(&mut k, team_id);
        k
    }
    pub fn player(player_id: &str) -> Vec<u8> {
        let mut k = vec![PLAYER];
        push_str(&mut k, player_id);
        k
    }
    /// Prefix of every projection on one player in one week.
    pub fn projection_prefix(season: u32, week: u32, player_id: &str) -> Vec<u8> {
        let mut k = vec![PROJECTION];
        k.extend_from_slice(&season.to_be_bytes());
        k.extend_from_slice(&week.to_be_bytes());
        push_str(&mut k, player_id);
        k
    }
    pub fn projection_week_prefix(season: u32, week: u32) -> Vec<u8> {
        let mut k = vec![PROJECTION];
        k.extend_from_slice(&season.to_be_bytes());
        k.extend_from_slice(&week.to_be_bytes());
        k
    }
    pub fn projection(season: u32, week: u32, player_id: &str, who: &[u8; 32]) -> Vec<u8> {
        let mut k = projection_prefix(season, week, player_id);
        k.extend_from_slice(who);
        k
    }
    pub fn result(season: u32, week: u32, player_id: &str) -> Vec<u8> {
        let mut k = vec![RESULT];
        k.extend_from_slice(&season.to_be_bytes());
        k.extend_from_slice(&week.to_be_bytes());
        push_str(&mut k, player_id);
        k
    }
}

/// The full state at one block.
///
/// Point reads and writes dominate validation (a projection reads five keys
/// and writes one), so values live in a hash map; the ordered key set beside
/// it serves only the prefix scans of the oracle's week-over and payout txs
/// and ordered iteration, and is touched only when a key appears or goes.
/// With an ordered map alone, every read walked ~17 levels of `memcmp` once
/// the state held a season of projections.
#[derive(Debug, Clone, Default)]
pub struct StateMap {
    map: FastMap<Key, Value>,
    ordered: BTreeSet<Key>,
}

impl PartialEq for StateMap {
    fn eq(&self, other: &Self) -> bool {
        // `ordered` is derived from `map`.
        self.map == other.map
    }
}
impl Eq for StateMap {}

impl StateMap {
    pub fn get(&self, key: &[u8]) -> Option<&Value> {
        self.map.get(key)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every entry, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Value)> {
        self.ordered.iter().map(|k| (k, &self.map[k]))
    }

    /// Keys that start with `prefix`, in order.
    pub fn prefix_keys<'a>(&'a self, prefix: &'a [u8]) -> impl Iterator<Item = &'a Key> + 'a {
        self.ordered
            .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(move |k| k.starts_with(prefix))
    }

    fn set(&mut self, k: &Key, v: &Option<Value>) -> Option<Value> {
        match v {
            Some(v) => match self.map.get_mut(k) {
                Some(slot) => Some(std::mem::replace(slot, v.clone())),
                None => {
                    self.map.insert(k.clone(), v.clone());
                    self.ordered.insert(k.clone());
                    None
                }
            },
            None => {
                let old = self.map.remove(k);
                if old.is_some() {
                    self.ordered.remove(k);
                }
                old
            }
        }
    }

    /// Applies writes, keeping `commitment` in step, and returns the undo
    /// record (previous value of each key, in write order).
    pub fn apply(&mut self, writes: &[(Key, Option<Value>)], commitment: &mut LtHash) -> Vec<(Key, Option<Value>)> {
        let mut undo = Vec::with_capacity(writes.len());
        for (k, v) in writes {
            let old = self.set(k, v);
            if is_committed(k) {
                update_commitment(commitment, k, old.as_ref(), v.as_ref());
            }
            undo.push((k.clone(), old));
        }
        undo
    }

    /// Applies writes whose effect on the commitment is already known (from
    /// [`Overlay::finish`]), returning the undo record.
    pub fn apply_uncommitted(&mut self, writes: &[(Key, Option<Value>)]) -> Vec<(Key, Option<Value>)> {
        writes.iter().map(|(k, v)| (k.clone(), self.set(k, v))).collect()
    }

    /// Reverts an undo record produced by [`StateMap::apply`].
    pub fn revert(&mut self, undo: &[(Key, Option<Value>)], commitment: &mut LtHash) {
        for (k, old) in undo.iter().rev() {
            let cur = self.set(k, old);
            if is_committed(k) {
                update_commitment(commitment, k, cur.as_ref(), old.as_ref());
            }
        }
    }

    /// The commitment recomputed from scratch (used to check a loaded state).
    pub fn commitment(&self) -> LtHash {
        let mut h = LtHash::default();
        for (k, v) in self.map.iter().filter(|(k, _)| is_committed(k)) {
            h.insert(k, v);
        }
        h
    }

    pub fn from_entries(entries: impl IntoIterator<Item = (Key, Value)>) -> Self {
        let map: FastMap<Key, Value> = entries.into_iter().collect();
        let ordered = map.keys().cloned().collect();
        Self { map, ordered }
    }
}

/// An overlay's pending writes (`None` deletes). A hash map: a block's
/// txs read through it far more often than anything scans it.
pub type Writes = FastMap<Key, Option<Value>>;

/// Pending writes over a base state. Validation runs against an overlay, so a
/// rejected block or tx leaves the base untouched by construction.
pub struct Overlay<'a> {
    base: &'a StateMap,
    writes: Writes,
    /// Undo log, kept once a savepoint was taken: each write's key and what
    /// `writes` held for it before (`None`: nothing).
    undo: Vec<(Key, Option<Option<Value>>)>,
    logging: bool,
}

/// A point to roll an overlay back to: a length of its undo log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Savepoint(usize);

impl<'a> Overlay<'a> {
    pub fn new(base: &'a StateMap) -> Self {
        Self::with_writes(base, Writes::default())
    }

    /// An overlay expecting about `writes` distinct keys, so a block's
    /// overlay does not rehash its way up from empty.
    pub fn with_capacity(base: &'a StateMap, writes: usize) -> Self {
        Self::with_writes(base, Writes::with_capacity_and_hasher(writes, Default::default()))
    }

    /// Resumes pending writes kept from an earlier overlay (the mempool's).
    pub fn with_writes(base: &'a StateMap, writes: Writes) -> Self {
        Self { base, writes, undo: Vec::new(), logging: false }
    }

    fn write(&mut self, key: Key, value: Option<Value>) {
        if self.logging {
            let before = self.writes.insert(key.clone(), value);
            self.undo.push((key, before));
        } else {
            self.writes.insert(key, value);
        }
    }

    /// The raw pending writes, to be resumed later with [`Overlay::with_writes`].
    pub fn into_raw_writes(self) -> Writes {
        self.writes
    }

    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        match self.writes.get(key) {
            Some(v) => v.as_deref(),
            None => self.base.get(key).map(|v| v.as_slice()),
        }
    }

    pub fn put(&mut self, key: Key, value: Value) {
        self.write(key, Some(value));
    }

    pub fn delete(&mut self, key: Key) {
        self.write(key, None);
    }

    /// Live keys with `prefix`, merged from base and pending writes, in order.
    pub fn prefix_keys(&self, prefix: &[u8]) -> Vec<Key> {
        let mut out: BTreeMap<&[u8], bool> = BTreeMap::new();
        for k in self.base.prefix_keys(prefix) {
            out.insert(k, true);
        }
        for (k, v) in self.writes.iter().filter(|(k, _)| k.starts_with(prefix)) {
            out.insert(k, v.is_some());
        }
        out.into_iter().filter(|(_, live)| *live).map(|(k, _)| k.to_vec()).collect()
    }

    /// Marks a savepoint; [`Overlay::rollback_to`] undoes writes made since.
    /// Used to apply a tx tentatively inside a block being built: from here
    /// on each write logs what it replaced, so a rollback costs the writes it
    /// undoes (it copied every pending write before, per candidate tx).
    /// Savepoints nest.
    pub fn savepoint(&mut self) -> Savepoint {
        self.logging = true;
        Savepoint(self.undo.len())
    }

    pub fn rollback_to(&mut self, sp: Savepoint) {
        while self.undo.len() > sp.0 {
            let Some((key, before)) = self.undo.pop() else { break };
            match before {
                Some(v) => {
                    self.writes.insert(key, v);
                }
                None => {
                    self.writes.remove(&key);
                }
            }
        }
    }

    /// The commitment after these writes, computed from `base_commitment`
    /// in time proportional to the number of writes.
    pub fn commitment_after(&self, base_commitment: &LtHash) -> LtHash {
        let mut c = base_commitment.clone();
        for (k, v) in &self.writes {
            if is_committed(k) {
                let old = self.base.get(k);
                if old.map(|o| o.as_slice()) != v.as_deref() {
                    update_commitment(&mut c, k, old, v.as_ref());
                }
            }
        }
        c
    }

    /// Net writes that differ from the base, in key order, and the
    /// commitment after them: one pass, one base lookup per key.
    pub fn finish(self, base_commitment: &LtHash) -> (Vec<(Key, Option<Value>)>, LtHash) {
        let mut c = base_commitment.clone();
        let base = self.base;
        let mut out = Vec::with_capacity(self.writes.len());
        for (k, v) in self.writes {
            let old = base.get(&k);
            if old.map(|o| o.as_slice()) == v.as_deref() {
                continue;
            }
            if is_committed(&k) {
                update_commitment(&mut c, &k, old, v.as_ref());
            }
            out.push((k, v));
        }
        // Key order, so a block's write set (and its undo record) is the
        // same on every node whatever the hash seed.
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        (out, c)
    }
}

fn update_commitment(c: &mut LtHash, k: &[u8], old: Option<&Value>, new: Option<&Value>) {
    match (old, new) {
        (Some(o), Some(n)) => c.replace(k, o, n),
        (Some(o), None) => c.remove(k, o),
        (None, Some(n)) => c.insert(k, n),
        (None, None) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> Key {
        s.as_bytes().to_vec()
    }

    /// Rollbacks restore exactly what was pending at their savepoint,
    /// nested, for keys written, rewritten and deleted in between.
    #[test]
    fn savepoints_nest_and_roll_back_exactly() {
        let base = StateMap::from_entries([(k("a"), b"base-a".to_vec()), (k("b"), b"base-b".to_vec())]);
        let mut ov = Overlay::new(&base);
        ov.put(k("a"), b"1".to_vec());
        let outer = ov.savepoint();
        ov.put(k("a"), b"2".to_vec());
        ov.delete(k("b"));
        ov.put(k("c"), b"new".to_vec());
        let inner = ov.savepoint();
        ov.put(k("c"), b"newer".to_vec());
        ov.put(k("d"), b"d".to_vec());
        ov.rollback_to(inner);
        assert_eq!((ov.get(b"c"), ov.get(b"d")), (Some(&b"new"[..]), None));
        assert_eq!(ov.get(b"b"), None);
        ov.rollback_to(outer);
        assert_eq!(ov.get(b"a"), Some(&b"1"[..]));
        assert_eq!(ov.get(b"b"), Some(&b"base-b"[..]));
        assert_eq!(ov.get(b"c"), None);
        let writes = ov.into_raw_writes();
        assert_eq!(writes.len(), 1, "only the write before the outer savepoint is pending");
    }
}
