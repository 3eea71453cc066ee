//! Keys and signatures (ed25519-dalek).
//!
//! Signatures are domain-separated: a tx signature covers
//! `TX_DOMAIN || genesis_hash || tx_bytes`, so a tx signed for one chain is
//! worthless on another; a block signature covers `BLOCK_DOMAIN || header`.
//! Weak (small-order) public keys are refused everywhere. Every signature,
//! alone or in a batch, is checked by one rule: [`verify_batch`] (cofactored,
//! one point per distinct key); when a batch fails, each is checked alone to
//! name the culprit.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::hash::Hash32;

pub const TX_DOMAIN: &[u8] = b"protoblock/tx/v1";
pub const BLOCK_DOMAIN: &[u8] = b"protoblock/block/v1";

/// A public key already checked to be a valid, non-weak ed25519 point.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; 32]);

impl core::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", &hex::encode(self.0)[..12])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("public key must be 32 bytes, got {0}")]
    Length(usize),
    #[error("public key is not a valid curve point")]
    NotOnCurve,
    #[error("public key is weak (small order)")]
    Weak,
}

impl PublicKey {
    pub fn parse(bytes: &[u8]) -> Result<(Self, VerifyingKey), KeyError> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Length(bytes.len()))?;
        let vk = VerifyingKey::from_bytes(&arr).map_err(|_| KeyError::NotOnCurve)?;
        if vk.is_weak() {
            return Err(KeyError::Weak);
        }
        Ok((PublicKey(arr), vk))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

pub fn parse_signature(bytes: &[u8]) -> Option<Signature> {
    let arr: [u8; 64] = bytes.try_into().ok()?;
    Some(Signature::from_bytes(&arr))
}

pub fn tx_message(genesis: &Hash32, tx_bytes: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(TX_DOMAIN.len() + 32 + tx_bytes.len());
    push_tx_message(&mut m, genesis, tx_bytes);
    m
}

/// Appends the message a tx signature covers to `buf`.
pub fn push_tx_message(buf: &mut Vec<u8>, genesis: &Hash32, tx_bytes: &[u8]) {
    buf.extend_from_slice(TX_DOMAIN);
    buf.extend_from_slice(&genesis.0);
    buf.extend_from_slice(tx_bytes);
}

pub fn block_message(header_bytes: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(BLOCK_DOMAIN.len() + header_bytes.len());
    push_block_message(&mut m, header_bytes);
    m
}

/// Appends the message a block signature covers to `buf`.
pub fn push_block_message(buf: &mut Vec<u8>, header_bytes: &[u8]) {
    buf.extend_from_slice(BLOCK_DOMAIN);
    buf.extend_from_slice(header_bytes);
}

pub fn sign_tx(key: &SigningKey, genesis: &Hash32, tx_bytes: &[u8]) -> [u8; 64] {
    key.sign(&tx_message(genesis, tx_bytes)).to_bytes()
}

pub fn sign_block(key: &SigningKey, header_bytes: &[u8]) -> [u8; 64] {
    key.sign(&block_message(header_bytes)).to_bytes()
}

/// Deterministic key from a 32-byte seed. Key material comes from outside
/// (the platform's RNG or a test seed): the core has no RNG.
pub fn signing_key_from_seed(seed: &[u8; 32]) -> SigningKey {
    SigningKey::from_bytes(seed)
}

pub fn public_key_of(key: &SigningKey) -> PublicKey {
    PublicKey(key.verifying_key().to_bytes())
}

/// Batch-verifies; on failure returns the index of the first signature that
/// fails [`verify_batch`] on its own (a batch passes exactly when each of its
/// signatures would, so the halves of a failing batch tell where it is).
pub fn verify_batch_or_find(messages: &[&[u8]], signatures: &[Signature], keys: &[VerifyingKey]) -> Result<(), usize> {
    if messages.len() != signatures.len() || messages.len() != keys.len() {
        return Err(0);
    }
    if verify_batch(messages, signatures, keys) {
        return Ok(());
    }
    // Bisection for the first bad signature: with `lo..hi` known to fail,
    // the left half is checked; if it passes the culprit is on the right.
    // About log2(n) batch checks of halving size, not n single ones.
    let (mut lo, mut hi) = (0, messages.len());
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if verify_batch(&messages[lo..mid], &signatures[lo..mid], &keys[lo..mid]) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Err(lo)
}

/// [`verify_batch`] of one signature: the same rule, alone.
pub fn verify_one(message: &[u8], signature: &Signature, key: &VerifyingKey) -> bool {
    verify_batch(&[message], core::slice::from_ref(signature), core::slice::from_ref(key))
}

/// Whether every signature in the batch is valid: THE signature rule of the
/// chain, for block headers, txs in blocks and txs offered to the mempool
/// alike (alone: [`verify_one`]).
///
/// The check is the cofactored batch equation
/// `[8]([-sum z_i s_i] B + sum [z_i] R_i + sum_A [sum_(i signed by A) z_i k_i] A) = 0`
/// with `k_i = SHA-512(R_i || A_i || M_i)`, 128-bit `z_i` and canonical `s_i`.
/// Two things set it apart from `ed25519_dalek::verify_batch`:
/// - **Cofactored.** The cofactorless batch equation accepts a signature
///   whose R has a small-order component with a probability that depends on
///   the `z`s, that is on which other signatures share its batch; nodes that
///   batch a block differently (a whole synced range, or block by block)
///   could then disagree on it. Multiplying by 8 removes the small-order
///   part: a signature passes exactly when its own cofactored equation holds,
///   whatever the batch (up to the batch's 2^-128 soundness). Honest
///   signatures satisfy both equations. This is the rule ZIP 215 chose for
///   Zcash for the same reason, minus its acceptance of non-canonical point
///   encodings; `verify_strict` (cofactorless, and refusing small-order R)
///   is not used: no batch can reproduce it exactly, and one rule for a
///   signature alone, in a block and in any batch means no node can be split
///   from another by how it happened to group signatures.
/// - **One point per distinct key.** The same users sign tx after tx (a
///   season's projections, transfers), and every signature by key A adds
///   `z_i k_i` to A's one coefficient instead of adding A again. A's scalar
///   is full width and costs about twice what a 128-bit `z_i` on an R does
///   in the multi-scalar multiplication, so a batch whose signers repeat
///   costs a fraction of the MSM (BENCHMARKS.md has the figure).
///
/// The `z`s come from BLAKE3 over every input of the batch (R, A, s and
/// `k`, which binds the message): deterministic, as the core has no RNG, and
/// unknown to whoever chose the inputs until all of them are fixed.
pub fn verify_batch(messages: &[&[u8]], signatures: &[Signature], keys: &[VerifyingKey]) -> bool {
    use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
    use curve25519_dalek::{EdwardsPoint, Scalar, constants::ED25519_BASEPOINT_POINT, edwards::CompressedEdwardsY};
    use sha2::Digest;

    #[cfg(test)]
    tests::BATCHES.with(|b| b.set(b.get() + 1));
    let n = messages.len();
    if n != signatures.len() || n != keys.len() {
        return false;
    }
    if n == 0 {
        return true;
    }
    let mut rs = Vec::with_capacity(n);
    let mut ss = Vec::with_capacity(n);
    let mut ks = Vec::with_capacity(n);
    let mut transcript = blake3::Hasher::new_derive_key("protoblock ed25519 batch z v1");
    for ((m, sig), key) in messages.iter().zip(signatures).zip(keys) {
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(*sig.s_bytes())) else { return false };
        let Some(r) = CompressedEdwardsY(*sig.r_bytes()).decompress() else { return false };
        let mut h = sha2::Sha512::new();
        h.update(sig.r_bytes());
        h.update(key.as_bytes());
        h.update(m);
        let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
        transcript.update(sig.r_bytes());
        transcript.update(key.as_bytes());
        transcript.update(sig.s_bytes());
        transcript.update(k.as_bytes());
        rs.push(r);
        ss.push(s);
        ks.push(k);
    }
    let mut zs = vec![0u8; 16 * n];
    transcript.finalize_xof().fill(&mut zs);
    let zs: Vec<Scalar> = zs.as_chunks::<16>().0.iter().map(|z| Scalar::from(u128::from_le_bytes(*z))).collect();
    // One coefficient per distinct key, in first-seen order.
    let mut slot: crate::hash::FastMap<&[u8; 32], usize> = Default::default();
    let mut a_points: Vec<EdwardsPoint> = Vec::new();
    let mut a_coeffs: Vec<Scalar> = Vec::new();
    let mut b_coeff = Scalar::ZERO;
    for i in 0..n {
        b_coeff -= zs[i] * ss[i];
        let j = *slot.entry(keys[i].as_bytes()).or_insert_with(|| {
            a_points.push(keys[i].to_edwards());
            a_coeffs.push(Scalar::ZERO);
            a_points.len() - 1
        });
        a_coeffs[j] += zs[i] * ks[i];
    }
    let sum = EdwardsPoint::vartime_multiscalar_mul(
        std::iter::once(&b_coeff).chain(&zs).chain(&a_coeffs),
        std::iter::once(&ED25519_BASEPOINT_POINT).chain(&rs).chain(&a_points),
    );
    sum.mul_by_cofactor().is_identity()
}

/// Parsed public keys by their bytes. Decompressing a point and checking it
/// is not weak costs about as much as a batched signature check, and the same
/// users sign block after block, so validation looks keys up here first.
/// Bounded: when full it is cleared (simple, O(1), and refilled within a
/// block or two).
#[derive(Default)]
pub struct KeyCache {
    map: crate::hash::FastMap<[u8; 32], VerifyingKey>,
}

impl KeyCache {
    pub const CAPACITY: usize = 1 << 15;

    pub fn parse(&mut self, bytes: &[u8]) -> Result<(PublicKey, VerifyingKey), KeyError> {
        if let Ok(arr) = <[u8; 32]>::try_from(bytes)
            && let Some(vk) = self.map.get(&arr)
        {
            return Ok((PublicKey(arr), *vk));
        }
        let (pk, vk) = PublicKey::parse(bytes)?;
        if self.map.len() >= Self::CAPACITY {
            self.map.clear();
        }
        self.map.insert(pk.0, vk);
        Ok((pk, vk))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT as B, EIGHT_TORSION};
    use curve25519_dalek::{EdwardsPoint, Scalar};
    use sha2::Digest;

    thread_local! {
        /// `verify_batch` calls on this thread (what a culprit search costs).
        pub(super) static BATCHES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    fn key(i: u8) -> SigningKey {
        signing_key_from_seed(&[i; 32])
    }

    /// One bad signature among 1,024 is found in about log2(1024) batch
    /// checks of halving size (it took one check per signature before it).
    #[test]
    fn a_failed_batch_finds_its_culprit_by_bisection() {
        let (m, mut s, k) = honest(1024, 5);
        let refs: Vec<&[u8]> = m.iter().map(|m| m.as_slice()).collect();
        for bad in [0, 1, 511, 512, 700, 1023] {
            let mut b = s[bad].to_bytes();
            b[40] ^= 1;
            let good = std::mem::replace(&mut s[bad], Signature::from_bytes(&b));
            BATCHES.with(|c| c.set(0));
            assert_eq!(verify_batch_or_find(&refs, &s, &k), Err(bad));
            let checks = BATCHES.with(|c| c.get());
            assert!(checks <= 11, "{checks} batch checks to find #{bad} of 1024");
            s[bad] = good;
        }
    }

    /// `n` honest signatures by `signers` keys in turn, over distinct messages.
    fn honest(n: usize, signers: u8) -> (Vec<Vec<u8>>, Vec<Signature>, Vec<VerifyingKey>) {
        let mut out = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..n {
            let k = key(i as u8 % signers);
            let m = format!("message {i}").into_bytes();
            out.1.push(k.sign(&m));
            out.2.push(k.verifying_key());
            out.0.push(m);
        }
        out
    }

    fn check(m: &[Vec<u8>], s: &[Signature], k: &[VerifyingKey]) -> bool {
        let refs: Vec<&[u8]> = m.iter().map(|m| m.as_slice()).collect();
        verify_batch(&refs, s, k)
    }

    /// A signature by the secret scalar `a` whose R carries the small-order
    /// point `t`: valid under the cofactored equation, invalid under the
    /// cofactorless one (`verify_strict`) unless `t` is the identity.
    fn torsioned(a: Scalar, r: Scalar, t: EdwardsPoint, m: &[u8]) -> (Signature, VerifyingKey) {
        let big_a = a * B;
        let big_r = (r * B + t).compress();
        let mut h = sha2::Sha512::new();
        h.update(big_r.as_bytes());
        h.update(big_a.compress().as_bytes());
        h.update(m);
        let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
        let s = r + k * a;
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(big_r.as_bytes());
        bytes[32..].copy_from_slice(s.as_bytes());
        (Signature::from_bytes(&bytes), VerifyingKey::from(big_a))
    }

    #[test]
    fn honest_batches_pass_and_agree_with_dalek() {
        for (n, signers) in [(1, 1), (2, 2), (20, 3), (300, 7), (300, 255)] {
            let (m, s, k) = honest(n, signers);
            assert!(check(&m, &s, &k), "{n} signatures by {signers} keys");
            let refs: Vec<&[u8]> = m.iter().map(|m| m.as_slice()).collect();
            assert!(ed25519_dalek::verify_batch(&refs, &s, &k).is_ok());
        }
        assert!(verify_batch(&[], &[], &[]));
    }

    #[test]
    fn any_one_bad_signature_fails_the_batch_and_is_named() {
        let (m, s, k) = honest(40, 5);
        let refs: Vec<&[u8]> = m.iter().map(|m| m.as_slice()).collect();
        for bad in [0, 17, 39] {
            // A different message, an altered s, an altered R, another signer.
            let mut m2 = m.clone();
            m2[bad].push(b'!');
            let mut s_alt = s.clone();
            let mut b = s[bad].to_bytes();
            b[40] ^= 1;
            s_alt[bad] = Signature::from_bytes(&b);
            let mut r_alt = s.clone();
            let mut b = s[bad].to_bytes();
            b[3] ^= 1;
            r_alt[bad] = Signature::from_bytes(&b);
            let mut k_alt = k.clone();
            k_alt[bad] = key(99).verifying_key();
            assert!(!check(&m2, &s, &k));
            assert!(!check(&m, &s_alt, &k));
            assert!(!check(&m, &r_alt, &k));
            assert!(!check(&m, &s, &k_alt));
            assert_eq!(verify_batch_or_find(&refs, &s_alt, &k), Err(bad));
            assert_eq!(verify_batch_or_find(&refs, &s, &k_alt), Err(bad));
        }
        // Lengths that differ, and an s that is not reduced (s + l).
        assert!(!verify_batch(&refs[..2], &s[..1], &k[..2]));
        // s + l is the same scalar, but not its canonical encoding (malleable).
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut b = s[0].to_bytes();
        let mut carry = 0u16;
        for (x, l) in b[32..].iter_mut().zip(L) {
            let v = *x as u16 + l as u16 + carry;
            *x = v as u8;
            carry = v >> 8;
        }
        assert_eq!(carry, 0);
        assert!(!check(&m[..1], &[Signature::from_bytes(&b)], &k[..1]));
    }

    /// The reason the batch is cofactored: a small-order part in R is accepted
    /// or refused the same way in every batch it lands in, so nodes that split
    /// a range into batches differently cannot disagree about a block.
    #[test]
    fn a_torsioned_r_gets_the_same_answer_in_every_batch() {
        let (m, s, k) = honest(30, 4);
        let a = Scalar::from(7u64 << 40) + Scalar::from(12345u64);
        for (i, t) in EIGHT_TORSION.iter().enumerate() {
            let msg = b"torsioned".to_vec();
            let (sig, vk) = torsioned(a, Scalar::from(99u64 + i as u64), *t, &msg);
            assert_eq!(vk.verify_strict(&msg, &sig).is_ok(), i == 0, "strict refuses torsion {i}");
            for at in [0, 1, 15, 30] {
                let (mut m2, mut s2, mut k2) = (m[..at].to_vec(), s[..at].to_vec(), k[..at].to_vec());
                m2.push(msg.clone());
                s2.push(sig);
                k2.push(vk);
                assert!(check(&m2, &s2, &k2), "torsion {i} in a batch of {}", at + 1);
            }
            // And it still binds the message.
            assert!(!check(&[b"other".to_vec()], &[sig], &[vk]));
        }
    }
}
