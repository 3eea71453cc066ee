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

#[derive(Clone, PartialEq, Eq)]
pub struct LtHash {
    lanes: Box<[u16; LANES]>,
}

impl Default for LtHash {
    fn default() -> Self {
        Self { lanes: Box::new([0; LANES]) }
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

impl LtHash {
    pub fn insert(&mut self, key: &[u8], value: &[u8]) {
        let e = entry_bytes(key, value);
        for (a, b) in self.lanes.iter_mut().zip(e.chunks_exact(2)) {
            *a = a.wrapping_add(u16::from_le_bytes([b[0], b[1]]));
        }
    }

    pub fn remove(&mut self, key: &[u8], value: &[u8]) {
        let e = entry_bytes(key, value);
        for (a, b) in self.lanes.iter_mut().zip(e.chunks_exact(2)) {
            *a = a.wrapping_sub(u16::from_le_bytes([b[0], b[1]]));
        }
    }

    /// `remove(key, old)` then `insert(key, new)` in one pass over the lanes.
    pub fn replace(&mut self, key: &[u8], old: &[u8], new: &[u8]) {
        let o = entry_bytes(key, old);
        let n = entry_bytes(key, new);
        for ((a, o), n) in self.lanes.iter_mut().zip(o.chunks_exact(2)).zip(n.chunks_exact(2)) {
            *a = a.wrapping_add(u16::from_le_bytes([n[0], n[1]])).wrapping_sub(u16::from_le_bytes([o[0], o[1]]));
        }
    }

    pub fn root(&self) -> Hash32 {
        let mut bytes = [0u8; LANES * 2];
        for (chunk, lane) in bytes.chunks_exact_mut(2).zip(self.lanes.iter()) {
            chunk.copy_from_slice(&lane.to_le_bytes());
        }
        sha256(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
