//! Merkle root of tx ids, with the legacy (2018) rule kept on purpose so old
//! tooling can check roots: leaves are the tx ids, each pair is hashed as
//! sha256(left || right), and an odd last node is carried up unchanged (not
//! duplicated, so the CVE-2012-2459 duplicate-leaf ambiguity cannot arise).
//! An empty block has the all-zero root.

use crate::hash::{Hash32, sha256_concat};

pub fn merkle_root(leaves: &[Hash32]) -> Hash32 {
    if leaves.is_empty() {
        return Hash32::ZERO;
    }
    let mut level: Vec<Hash32> = leaves.to_vec();
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        for pair in level.chunks(2) {
            match pair {
                [a, b] => next.push(sha256_concat(&[&a.0, &b.0])),
                [a] => next.push(*a),
                _ => unreachable!("chunks(2) yields one or two"),
            }
        }
        level = next;
    }
    level[0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha256;

    #[test]
    fn known_shapes() {
        let a = sha256(b"a");
        let b = sha256(b"b");
        let c = sha256(b"c");
        assert_eq!(merkle_root(&[]), Hash32::ZERO);
        assert_eq!(merkle_root(&[a]), a);
        let ab = sha256_concat(&[&a.0, &b.0]);
        assert_eq!(merkle_root(&[a, b]), ab);
        // Odd leaf carried up, then paired.
        assert_eq!(merkle_root(&[a, b, c]), sha256_concat(&[&ab.0, &c.0]));
    }
}
