//! # protoblock-devnet
//!
//! A deterministic dev network: keys, genesis, a scripted season feed for the
//! oracle and simulated users. Used by `protoblock-relay --dev`, by tests and
//! by benchmarks. Everything derives from a seed, so two runs produce the
//! same chain byte for byte.
//!
//! A crate of its own so that nothing a node ships (the browser package, the
//! relay's non-dev path) links fixture keys derived from public seeds.

#![forbid(unsafe_code)]

use ed25519_dalek::SigningKey;
use prost::Message;
use protoblock_core::block::{CheckedTx, decode_tx};
use protoblock_core::chain::Chain;
use protoblock_core::crypto::{public_key_of, signing_key_from_seed};
use protoblock_core::fantasy::season_state;
use protoblock_core::genesis::Genesis;
use protoblock_core::hash::sha256_concat;
use protoblock_core::params::{ChainLimits, ChainParams};
use protoblock_core::producer::produce_block;
use protoblock_core::state::{Overlay, keys};
use protoblock_proto::v1::{self as pb, data_transition, transaction};

/// Re-exported: the fixtures sign with the core's own tx signing, so tests that
/// build txs by hand sign exactly as wallets do.
pub use protoblock_core::block::sign_transaction;

pub const DEV_GENESIS_TIME_MS: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
pub const WEEKS_PER_SEASON: u32 = 17;
pub const STARTING_BALANCE: u64 = 1_000_000;

/// SplitMix64: a tiny deterministic generator, seeded by the caller.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

fn derive_key(seed: u64, role: &str, i: u64) -> SigningKey {
    let h = sha256_concat(&[b"protoblock devnet", &seed.to_le_bytes(), role.as_bytes(), &i.to_le_bytes()]);
    signing_key_from_seed(&h.0)
}

pub struct DevNet {
    pub seed: u64,
    pub oracle: SigningKey,
    pub users: Vec<SigningKey>,
    pub genesis: Genesis,
    pub teams: Vec<String>,
    pub players: Vec<(String, String)>,
}

impl DevNet {
    /// `users` funded accounts (unnamed), 8 teams of 4 players, the default rules.
    pub fn new(seed: u64, users: usize) -> Self {
        Self::with_params(seed, users, ChainParams::default())
    }

    /// A dev chain with other rules (its genesis, so its hash, differs).
    pub fn with_params(seed: u64, users: usize, params: ChainParams) -> Self {
        Self::build(seed, users, derive_key(seed, "oracle", 0), params)
    }

    pub fn with_oracle(seed: u64, users: usize, oracle: SigningKey) -> Self {
        Self::build(seed, users, oracle, ChainParams::default())
    }

    fn build(seed: u64, users: usize, oracle: SigningKey, params: ChainParams) -> Self {
        let users: Vec<SigningKey> = (0..users as u64).map(|i| derive_key(seed, "user", i)).collect();
        let teams: Vec<String> =
            ["ARI", "BAL", "CHI", "DAL", "GB", "KC", "NE", "SF"].iter().map(|s| s.to_string()).collect();
        let players: Vec<(String, String)> =
            teams.iter().flat_map(|t| (1..=4).map(move |i| (format!("{t}-P{i}"), t.clone()))).collect();
        let g = pb::Genesis {
            chain_id: format!("protoblock-dev-{seed}"),
            timestamp_ms: DEV_GENESIS_TIME_MS,
            oracle_keys: vec![oracle.verifying_key().to_bytes().to_vec()],
            accounts: users
                .iter()
                .map(|k| pb::GenesisAccount {
                    key: k.verifying_key().to_bytes().to_vec(),
                    fantasy_name: String::new(),
                    balance: STARTING_BALANCE,
                })
                .collect(),
            players: players
                .iter()
                .map(|(p, t)| pb::GenesisPlayer { player_id: p.clone(), team_id: t.clone() })
                .collect(),
            season: 2026,
            params: Some(params.to_proto()),
        };
        let genesis = Genesis::from_bytes(&g.encode_to_vec()).expect("dev genesis is valid by construction");
        Self { seed, oracle, users, genesis, teams, players }
    }

    pub fn user_name(i: usize) -> String {
        format!("coach-{i:05}")
    }
}

/// Deterministic fantasy points for a player in a week (0..=30).
pub fn simulated_points(season: u32, week: u32, player: &str) -> u32 {
    let h = sha256_concat(&[&season.to_le_bytes(), &week.to_le_bytes(), player.as_bytes()]);
    (h.0[0] as u32) % 31
}

/// The oracle's scripted season, driven by the chain state so it never emits
/// an out-of-order transition: season start, then per week a game start for
/// every team, results for every player and week over, and after week 17 the
/// season end.
pub fn season_feed(net: &DevNet, chain: &Chain, height: u64, blocks_per_week: u64) -> Option<transaction::Body> {
    let ov = Overlay::new(chain.state());
    let s = season_state(&ov);
    use pb::SeasonPhase::*;
    let kind = match s.phase() {
        Preseason => data_transition::Kind::SeasonStart(data_transition::SeasonStart { season: s.season }),
        Offseason => data_transition::Kind::SeasonStart(data_transition::SeasonStart { season: s.season + 1 }),
        InSeason if s.week > WEEKS_PER_SEASON => {
            data_transition::Kind::SeasonEnd(data_transition::SeasonEnd { season: s.season })
        }
        InSeason => {
            let pos = height % blocks_per_week.max(4);
            let bpw = blocks_per_week.max(4);
            let first_team: pb::TeamState =
                ov.get(&keys::team(&net.teams[0])).and_then(|v| pb::TeamState::decode(v).ok()).unwrap_or_default();
            let in_game = first_team.phase() == pb::TeamPhase::InGame;
            let results_posted = ov.get(&keys::result(s.season, s.week, &net.players[0].0)).is_some();
            if pos >= bpw / 2 && !in_game && !results_posted {
                data_transition::Kind::GameStart(data_transition::GameStart {
                    season: s.season,
                    week: s.week,
                    team_ids: net.teams.clone(),
                })
            } else if pos >= bpw * 3 / 4 && in_game && !results_posted {
                data_transition::Kind::GameResult(data_transition::GameResult {
                    season: s.season,
                    week: s.week,
                    results: net
                        .players
                        .iter()
                        .map(|(p, _)| pb::PlayerResult {
                            player_id: p.clone(),
                            points: simulated_points(s.season, s.week, p),
                        })
                        .collect(),
                })
            } else if pos == bpw - 1 && results_posted {
                data_transition::Kind::WeekOver(data_transition::WeekOver { season: s.season, week: s.week })
            } else {
                return None;
            }
        }
    };
    Some(transaction::Body::Data(pb::DataTransition { kind: Some(kind) }))
}

/// Simulated users: each tx is the next user's next sensible move (register
/// a name, then project while projections are open, else transfer).
pub fn user_txs(net: &DevNet, chain: &Chain, ts_ms: u64, count: usize, rng: &mut SplitMix64) -> Vec<Vec<u8>> {
    let ov = Overlay::new(chain.state());
    let s = season_state(&ov);
    let first_team: pb::TeamState =
        ov.get(&keys::team(&net.teams[0])).and_then(|v| pb::TeamState::decode(v).ok()).unwrap_or_default();
    let open = s.phase() == pb::SeasonPhase::InSeason
        && first_team.phase() == pb::TeamPhase::Pregame
        && ov.get(&keys::result(s.season, s.week, &net.players[0].0)).is_none();
    let mut out = Vec::with_capacity(count);
    let mut registering = std::collections::HashSet::new();
    for n in 0..count {
        let ui = rng.below(net.users.len() as u64) as usize;
        let key = &net.users[ui];
        let pk = public_key_of(key);
        let named = protoblock_core::fantasy::account(&ov, &pk).is_some_and(|a| !a.fantasy_name.is_empty());
        let nonce = ts_ms * 1_000_000 + n as u64;
        let body = if !named {
            if !registering.insert(ui) {
                continue;
            }
            transaction::Body::Name(pb::NameRegistration { fantasy_name: DevNet::user_name(ui) })
        } else if open && rng.below(4) != 0 {
            let (player, _) = &net.players[rng.below(net.players.len() as u64) as usize];
            transaction::Body::Projection(pb::Projection {
                season: s.season,
                week: s.week,
                player_id: player.clone(),
                points: rng.below(31) as u32,
            })
        } else {
            let to = rng.below(net.users.len() as u64) as usize;
            transaction::Body::Transfer(pb::Transfer { to_name: DevNet::user_name(to), amount: 1 + rng.below(10) })
        };
        out.push(sign_transaction(key, &net.genesis.hash, nonce, body));
    }
    out
}

/// Decodes txs for the producer, skipping any that fail their stateless checks.
pub fn checked(txs: &[Vec<u8>], params: &ChainParams) -> Vec<(Vec<u8>, CheckedTx)> {
    txs.iter()
        .filter_map(|b| {
            let st = pb::SignedTransaction::decode(b.as_slice()).ok()?;
            let (c, _, _) = decode_tx(&st, params).ok()?;
            Some((b.clone(), c))
        })
        .collect()
}

/// Generates a valid chain of `blocks` blocks with up to `txs_per_block` txs
/// each (the oracle's data tx included when the season feed has one).
pub fn generate_chain(net: &DevNet, blocks: u64, txs_per_block: usize) -> Vec<Vec<u8>> {
    let (mut chain, _) = Chain::new(net.genesis.clone(), ChainLimits::default()).expect("dev genesis");
    let params = &net.genesis.params;
    let mut rng = SplitMix64(net.seed);
    let mut out = Vec::with_capacity(blocks as usize);
    for h in 1..=blocks {
        let ts = DEV_GENESIS_TIME_MS + h * 1000;
        let mut txs = Vec::new();
        if let Some(body) = season_feed(net, &chain, h, 20) {
            txs.push(sign_transaction(&net.oracle, &net.genesis.hash, ts * 1_000_000 + 999_999, body));
        }
        let users = txs_per_block.saturating_sub(txs.len());
        txs.extend(user_txs(net, &chain, ts, users, &mut rng));
        let cands = checked(&txs, params);
        let produced = produce_block(&chain, cands.iter().map(|(b, c)| (b.as_slice(), c)), &net.oracle, ts)
            .expect("oracle holds every slot in the dev net");
        chain.insert_block(&produced.bytes, ts).expect("produced block is valid");
        out.push(produced.bytes);
    }
    out
}
