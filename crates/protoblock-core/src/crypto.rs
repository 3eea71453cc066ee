//! Keys and signatures (ed25519-dalek).
//!
//! Signatures are domain-separated: a tx signature covers
//! `TX_DOMAIN || genesis_hash || tx_bytes`, so a tx signed for one chain is
//! worthless on another; a block signature covers `BLOCK_DOMAIN || header`.
//! Weak (small-order) public keys are refused everywhere. Single signatures
//! use `verify_strict`; a block's txs are batch-verified, and when the batch
//! fails each is checked with `verify_strict` to name the culprit.

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
    m.extend_from_slice(BLOCK_DOMAIN);
    m.extend_from_slice(header_bytes);
    m
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

/// Batch-verifies; on failure returns the index of the first item that fails
/// `verify_strict` (or 0 if, oddly, each passes alone).
pub fn verify_batch_or_find(messages: &[&[u8]], signatures: &[Signature], keys: &[VerifyingKey]) -> Result<(), usize> {
    if messages.is_empty() {
        return Ok(());
    }
    if ed25519_dalek::verify_batch(messages, signatures, keys).is_ok() {
        return Ok(());
    }
    for (i, ((m, s), k)) in messages.iter().zip(signatures).zip(keys).enumerate() {
        if k.verify_strict(m, s).is_err() {
            return Err(i);
        }
    }
    Err(0)
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
