//! The page's wallet: an ed25519 key made in the browser, kept in an
//! IndexedDB database of its own (`wallet_store`) and never handed out: it
//! signs txs locally, only signed txs leave the page, and the seed leaves
//! only sealed in a backup the user asked for (`crate::backup`).

use ed25519_dalek::SigningKey;
use protoblock_core::Hash32;
use protoblock_core::crypto::{public_key_of, signing_key_from_seed};
use protoblock_core::sign_transaction;
use protoblock_proto::v1 as pb;

pub struct Wallet {
    key: SigningKey,
    last_nonce: u64,
}

impl Wallet {
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self { key: signing_key_from_seed(seed), last_nonce: 0 }
    }

    /// The seed, for sealing a backup; nothing else reads it.
    pub fn seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    pub fn public_key(&self) -> [u8; 32] {
        public_key_of(&self.key).0
    }

    /// Nonces are unix nanoseconds (the replay window is checked against
    /// block time), strictly increasing even when the clock is coarse.
    fn next_nonce(&mut self, now_ms: u64) -> u64 {
        self.last_nonce = (now_ms * 1_000_000).max(self.last_nonce + 1);
        self.last_nonce
    }

    pub fn sign(&mut self, genesis: &Hash32, now_ms: u64, body: pb::transaction::Body) -> Vec<u8> {
        let nonce = self.next_nonce(now_ms);
        sign_transaction(&self.key, genesis, nonce, body)
    }

    pub fn register_name(&mut self, genesis: &Hash32, now_ms: u64, name: &str) -> Vec<u8> {
        let body = pb::transaction::Body::Name(pb::NameRegistration { fantasy_name: name.to_string() });
        self.sign(genesis, now_ms, body)
    }

    pub fn projection(
        &mut self,
        genesis: &Hash32,
        now_ms: u64,
        season: u32,
        week: u32,
        player_id: &str,
        points: u32,
    ) -> Vec<u8> {
        let body = pb::transaction::Body::Projection(pb::Projection {
            season,
            week,
            player_id: player_id.to_string(),
            points,
        });
        self.sign(genesis, now_ms, body)
    }

    pub fn transfer(&mut self, genesis: &Hash32, now_ms: u64, to_name: &str, amount: u64) -> Vec<u8> {
        let body = pb::transaction::Body::Transfer(pb::Transfer { to_name: to_name.to_string(), amount });
        self.sign(genesis, now_ms, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use protoblock_core::block::check_tx_bytes;
    use protoblock_devnet::DevNet;

    #[test]
    fn signed_txs_verify_on_their_chain_only_and_nonces_increase() {
        let mut w = Wallet::from_seed(&[7; 32]);
        let (ours, other) = (DevNet::new(1, 2).genesis, DevNet::new(2, 2).genesis);
        let a = w.register_name(&ours.hash, 1_000, "Gridiron");
        let b = w.register_name(&ours.hash, 1_000, "Gridiron");
        assert_ne!(a, b, "same clock, distinct nonces");
        for bytes in [&a, &b] {
            let st = pb::SignedTransaction::decode(&bytes[..]).unwrap();
            assert_eq!(st.signer, w.public_key().to_vec());
            check_tx_bytes(bytes, &ours).expect("valid on its chain");
            assert!(check_tx_bytes(bytes, &other).is_err(), "signature binds the chain");
        }
    }
}
