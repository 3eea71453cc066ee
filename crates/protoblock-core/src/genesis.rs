//! The genesis: chain id, consensus rules, oracle keys and initial state. Its
//! hash is the id every node compares at the handshake, and the parent of
//! block 1.

use ed25519_dalek::VerifyingKey;
use prost::Message;
use protoblock_proto::v1 as pb;

use crate::crypto::{KeyError, PublicKey};
use crate::fantasy::fold_name;
use crate::hash::{Hash32, sha256};
use crate::params::{ChainParams, ParamsError};
use crate::state::{StateMap, keys};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    #[error("genesis does not decode")]
    Malformed,
    #[error("genesis carries no consensus parameters")]
    NoParams,
    #[error("genesis: {0}")]
    BadParams(#[from] ParamsError),
    #[error("genesis lists no oracle key")]
    NoOracle,
    #[error("genesis oracle key {0}: {1}")]
    BadOracleKey(usize, KeyError),
    #[error("genesis account {0}: {1}")]
    BadAccount(usize, String),
    #[error("genesis player {0} is invalid")]
    BadPlayer(usize),
}

/// A parsed, checked genesis.
#[derive(Debug, Clone)]
pub struct Genesis {
    pub hash: Hash32,
    pub bytes: Vec<u8>,
    pub chain_id: String,
    pub timestamp_ms: u64,
    /// The chain's rules, as the genesis states them.
    pub params: ChainParams,
    pub oracle_keys: Vec<PublicKey>,
    oracle_vks: Vec<VerifyingKey>,
    pub message: pb::Genesis,
}

impl Genesis {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, GenesisError> {
        let message = pb::Genesis::decode(bytes).map_err(|_| GenesisError::Malformed)?;
        let params = ChainParams::from_proto(message.params.as_ref().ok_or(GenesisError::NoParams)?)?;
        if message.oracle_keys.is_empty() {
            return Err(GenesisError::NoOracle);
        }
        let mut oracle_keys = Vec::new();
        let mut oracle_vks = Vec::new();
        for (i, k) in message.oracle_keys.iter().enumerate() {
            let (pk, vk) = PublicKey::parse(k).map_err(|e| GenesisError::BadOracleKey(i, e))?;
            oracle_keys.push(pk);
            oracle_vks.push(vk);
        }
        let g = Self {
            hash: sha256(bytes),
            bytes: bytes.to_vec(),
            chain_id: message.chain_id.clone(),
            timestamp_ms: message.timestamp_ms,
            params,
            oracle_keys,
            oracle_vks,
            message,
        };
        g.initial_state()?;
        Ok(g)
    }

    /// Round-robin by height over the oracle keys (block 1 → key 0).
    pub fn producer_for(&self, height: u64) -> (&PublicKey, &VerifyingKey) {
        let i = (height.saturating_sub(1) % self.oracle_keys.len() as u64) as usize;
        (&self.oracle_keys[i], &self.oracle_vks[i])
    }

    /// The state before block 1.
    pub fn initial_state(&self) -> Result<StateMap, GenesisError> {
        let m = &self.message;
        let mut entries = Vec::new();
        let mut names = std::collections::BTreeSet::new();
        for (i, a) in m.accounts.iter().enumerate() {
            let (pk, _) = PublicKey::parse(&a.key).map_err(|e| GenesisError::BadAccount(i, e.to_string()))?;
            if !a.fantasy_name.is_empty() {
                let folded = fold_name(&a.fantasy_name).map_err(|e| GenesisError::BadAccount(i, e.to_string()))?;
                if !names.insert(folded.clone()) {
                    return Err(GenesisError::BadAccount(i, "duplicate name".into()));
                }
                let owner = pb::NameOwner { key: pk.0.to_vec(), display_name: a.fantasy_name.clone() };
                entries.push((keys::name(&folded), owner.encode_to_vec()));
            }
            let acct = pb::AccountState { balance: a.balance, fantasy_name: a.fantasy_name.clone() };
            entries.push((keys::account(&pk.0), acct.encode_to_vec()));
        }
        for (i, p) in m.players.iter().enumerate() {
            let ok = |s: &str| !s.is_empty() && s.len() <= crate::fantasy::MAX_ID_LEN;
            if !ok(&p.player_id) || !ok(&p.team_id) {
                return Err(GenesisError::BadPlayer(i));
            }
            entries.push((keys::player(&p.player_id), pb::PlayerState { team_id: p.team_id.clone() }.encode_to_vec()));
            entries.push((keys::team(&p.team_id), pb::TeamState::default().encode_to_vec()));
        }
        let season = pb::SeasonState { season: m.season, week: 0, phase: pb::SeasonPhase::Preseason as i32 };
        entries.push((keys::season(), season.encode_to_vec()));
        Ok(StateMap::from_entries(entries))
    }
}
