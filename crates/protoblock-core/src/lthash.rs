//! The state commitment: LtHash16 (Lewi et al., "Securing Update Propagation
//! with Homomorphic Hashing", 2019), a lattice-based homomorphic multiset hash.
//!
//! Each state entry (key, value) maps to a vector of 1024 u16 lanes, drawn
//! from BLAKE3's XOF; the accumulator is the lane-wise wrapping sum over all
//! entries. Adding or removing an entry costs one XOF, independent of the state
//! size, so the state root is maintained incrementally; yet anyone holding the
//! full state can recompute it from scratch and prove it equals a reference
//! node's. Lane width 16 with 1024 lanes is the parameter set the paper gives
//! about 200 bits of security. The 32-byte root is SHA-256 of the 2 KiB
//! accumulator.

use crate::hash::{Hash32, sha256};

pub const LANES: usize = 1024;

/// The lanes are kept four to a `u64` (lane `4w + j` in bits `16j..16j+16` of
/// word `w`, the little-endian layout of the XOF bytes) and added with SWAR
/// arithmetic: a quarter of the operations of a `u16` loop, and fast without
/// the auto-vectoriser, which the browser build's size-optimised core does
/// not get.
#[derive(Clone, PartialEq, Eq)]
pub struct LtHash {
    words: Box<[u64; WORDS]>,
}

const WORDS: usize = LANES / 4;
/// The top bit of each 16-bit lane.
const TOP: u64 = 0x8000_8000_8000_8000;

/// Lane-wise wrapping `a + b`: the low 15 bits of each lane add without
/// carrying into the next lane, the top bits are added (mod 2) by xor.
#[inline(always)]
fn lanes_add(a: u64, b: u64) -> u64 {
    ((a & !TOP) + (b & !TOP)) ^ ((a ^ b) & TOP)
}

/// Lane-wise wrapping `a - b`: setting each lane's top bit of `a` absorbs the
/// borrow of the low 15 bits; the top bits are then fixed by xor.
#[inline(always)]
fn lanes_sub(a: u64, b: u64) -> u64 {
    ((a | TOP) - (b & !TOP)) ^ ((a ^ !b) & TOP)
}

impl Default for LtHash {
    fn default() -> Self {
        Self { words: Box::new([0; WORDS]) }
    }
}

impl core::fmt::Debug for LtHash {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "LtHash({:?})", self.root())
    }
}

/// BLAKE3 `derive_key` with this context, its context key hashed once
/// (`new_derive_key` rehashes the context string on every entry, one extra
/// compression each; the output is the same, tested below).
const ENTRY_CONTEXT: &str = "protoblock state entry v1";
static ENTRY_CONTEXT_KEY: std::sync::LazyLock<blake3::hazmat::ContextKey> =
    std::sync::LazyLock::new(|| blake3::hazmat::hash_derive_key_context(ENTRY_CONTEXT));

/// The entry's 2 KiB of XOF output: lane `i` is bytes `2i..2i+2`, little-endian.
fn entry_bytes(key: &[u8], value: &[u8]) -> [u8; LANES * 2] {
    use blake3::hazmat::HasherExt;
    let mut h = blake3::Hasher::new_from_context_key(&ENTRY_CONTEXT_KEY);
    h.update(&(key.len() as u32).to_le_bytes());
    h.update(key);
    h.update(value);
    let mut bytes = [0u8; LANES * 2];
    h.finalize_xof().fill(&mut bytes);
    bytes
}

/// The XOF output as little-endian words (see [`LtHash`]), read in place:
/// `as_chunks` compiles to one load per word even in the size-optimised
/// browser build, where a byte-by-byte conversion cost a third of the XOF.
fn words(bytes: &[u8; LANES * 2]) -> impl Iterator<Item = u64> + '_ {
    bytes.as_chunks::<8>().0.iter().map(|c| u64::from_le_bytes(*c))
}

/// Each key's latest entry and its XOF output, so that when the key changes
/// again, removing the old entry needs no XOF: half the hashing of a block
/// whose txs touch accounts that earlier blocks touched, as a chain's active
/// users do. A pure memo (the output depends only on key and value, compared
/// in full), per thread, bounded: cleared when full, as `KeyCache` is.
struct Latest {
    /// key -> (its latest value, that entry's XOF output)
    map: crate::hash::FastMap<Vec<u8>, (Vec<u8>, EntryBytes)>,
}

type EntryBytes = Box<[u8; LANES * 2]>;

impl Latest {
    /// About 4.3 MB when full (2 KiB of output per entry).
    const CAPACITY: usize = 2048;

    fn take(&mut self, key: &[u8], value: &[u8]) -> Option<Box<[u8; LANES * 2]>> {
        match self.map.remove(key) {
            Some((v, bytes)) if v == value => Some(bytes),
            _ => None,
        }
    }

    fn put(&mut self, key: &[u8], value: &[u8], bytes: Box<[u8; LANES * 2]>) {
        if self.map.len() >= Self::CAPACITY {
            self.map.clear();
        }
        self.map.insert(key.to_vec(), (value.to_vec(), bytes));
    }
}

thread_local! {
    static LATEST: std::cell::RefCell<Latest> = std::cell::RefCell::new(Latest { map: Default::default() });
}

/// The entry's output for an entry leaving the set (the memo's, if it is the
/// key's latest).
fn leaving_entry(key: &[u8], value: &[u8]) -> Box<[u8; LANES * 2]> {
    LATEST.with_borrow_mut(|l| l.take(key, value)).unwrap_or_else(|| Box::new(entry_bytes(key, value)))
}

/// The entry's output for an entry joining the set, remembered as the key's latest.
fn joining_entry(key: &[u8], value: &[u8], f: impl FnOnce(&[u8; LANES * 2])) {
    let bytes = Box::new(entry_bytes(key, value));
    f(&bytes);
    LATEST.with_borrow_mut(|l| l.put(key, value, bytes));
}

impl LtHash {
    pub fn insert(&mut self, key: &[u8], value: &[u8]) {
        joining_entry(key, value, |e| {
            for (a, b) in self.words.iter_mut().zip(words(e)) {
                *a = lanes_add(*a, b);
            }
        });
    }

    pub fn remove(&mut self, key: &[u8], value: &[u8]) {
        let e = leaving_entry(key, value);
        for (a, b) in self.words.iter_mut().zip(words(&e)) {
            *a = lanes_sub(*a, b);
        }
    }

    /// `remove(key, old)` then `insert(key, new)` in one pass over the lanes.
    pub fn replace(&mut self, key: &[u8], old: &[u8], new: &[u8]) {
        let o = leaving_entry(key, old);
        let n = Box::new(entry_bytes(key, new));
        for ((a, o), n) in self.words.iter_mut().zip(words(&o)).zip(words(&n)) {
            *a = lanes_sub(lanes_add(*a, n), o);
        }
        LATEST.with_borrow_mut(|l| l.put(key, new, n));
    }

    pub fn root(&self) -> Hash32 {
        let mut bytes = [0u8; LANES * 2];
        for (chunk, word) in bytes.chunks_exact_mut(8).zip(self.words.iter()) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        sha256(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The plain definition: 1024 u16 lanes, summed lane by lane.
    #[derive(Clone)]
    struct Lanes([u16; LANES]);

    impl Lanes {
        fn apply(&mut self, key: &[u8], value: &[u8], add: bool) {
            let e = entry_bytes(key, value);
            for (a, b) in self.0.iter_mut().zip(e.chunks_exact(2)) {
                let b = u16::from_le_bytes([b[0], b[1]]);
                *a = if add { a.wrapping_add(b) } else { a.wrapping_sub(b) };
            }
        }

        fn root(&self) -> Hash32 {
            let bytes: Vec<u8> = self.0.iter().flat_map(|l| l.to_le_bytes()).collect();
            sha256(&bytes)
        }
    }

    #[test]
    fn swar_lanes_match_u16_arithmetic_at_the_edges() {
        let edge = [0u16, 1, 0x7fff, 0x8000, 0x8001, 0xfffe, 0xffff, 0x1234];
        for &x in &edge {
            for &y in &edge {
                let (a, b) = (u64::from(x) * 0x0001_0001_0001_0001, u64::from(y) * 0x0001_0001_0001_0001);
                let (a, b) = (a.rotate_left(16) ^ 0x00ff, b.rotate_left(32) ^ 0xff00_0000);
                let lane = |w: u64, i: u32| (w >> (16 * i)) as u16;
                for i in 0..4 {
                    assert_eq!(lane(lanes_add(a, b), i), lane(a, i).wrapping_add(lane(b, i)));
                    assert_eq!(lane(lanes_sub(a, b), i), lane(a, i).wrapping_sub(lane(b, i)));
                }
            }
        }
    }

    proptest! {
        /// Any sequence of inserts, removes and replaces gives the root the
        /// plain u16 definition gives. Keys and values come from small sets,
        /// so the per-key memo is hit, missed, and asked for a value other
        /// than the key's latest.
        #[test]
        fn matches_the_plain_u16_definition(ops in proptest::collection::vec((0u8..3, 0u8..4, 0u8..4, 0u8..4), 1..40)) {
            let mut fast = LtHash::default();
            let mut plain = Lanes([0; LANES]);
            for (op, k, v, w) in &ops {
                let (k, v, w) = ([*k], [*v; 5], [*w; 5]);
                match op {
                    0 => { fast.insert(&k, &v); plain.apply(&k, &v, true); }
                    1 => { fast.remove(&k, &v); plain.apply(&k, &v, false); }
                    _ => { fast.replace(&k, &v, &w); plain.apply(&k, &v, false); plain.apply(&k, &w, true); }
                }
            }
            prop_assert_eq!(fast.root(), plain.root());
        }
    }

    #[test]
    fn order_independent_and_invertible() {
        let mut a = LtHash::default();
        a.insert(b"k1", b"v1");
        a.insert(b"k2", b"v2");
        let mut b = LtHash::default();
        b.insert(b"k2", b"v2");
        b.insert(b"k1", b"v1");
        assert_eq!(a.root(), b.root());
        b.remove(b"k1", b"v1");
        let mut c = LtHash::default();
        c.insert(b"k2", b"v2");
        assert_eq!(b.root(), c.root());
        // Key/value boundary is unambiguous.
        let mut d = LtHash::default();
        d.insert(b"k", b"2v2");
        assert_ne!(d.root(), c.root());
    }

    #[test]
    fn entries_are_blake3_derive_key_output() {
        let mut h = blake3::Hasher::new_derive_key(ENTRY_CONTEXT);
        h.update(&3u32.to_le_bytes());
        h.update(b"key");
        h.update(b"value");
        let mut want = [0u8; LANES * 2];
        h.finalize_xof().fill(&mut want);
        assert_eq!(entry_bytes(b"key", b"value"), want);
    }
}
