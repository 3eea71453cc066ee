//! What the JS API hands to pages: plain, serialisable views of blocks, the
//! fantasy state and peers, read from the chain inside the node's loop.
//! Pure functions, so they are tested natively against a dev chain.

use prost::Message;
use protoblock_core::Chain;
use protoblock_core::fantasy::fold_name;
use protoblock_core::hash::sha256;
use protoblock_core::state::keys;
use protoblock_proto::v1 as pb;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct BlockSummary {
    #[cfg_attr(test, ts(type = "number"))]
    pub height: u64,
    pub id: String,
    #[cfg_attr(test, ts(type = "number"))]
    pub timestamp_ms: u64,
    pub producer: String,
    pub tx_count: usize,
    pub size: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct TxView {
    pub id: String,
    pub signer: String,
    pub signer_name: Option<String>,
    #[cfg_attr(test, ts(type = "\"name\" | \"projection\" | \"transfer\" | \"data\" | \"unknown\""))]
    pub kind: &'static str,
    pub summary: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct BlockDetail {
    #[cfg_attr(test, ts(type = "number"))]
    pub height: u64,
    pub id: String,
    pub prev_hash: String,
    #[cfg_attr(test, ts(type = "number"))]
    pub timestamp_ms: u64,
    pub producer: String,
    pub state_root: String,
    pub tx_root: String,
    pub size: usize,
    pub txs: Vec<TxView>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct NameView {
    pub name: String,
    pub public_key: String,
    /// Exact: a `bigint` in JS.
    #[serde(serialize_with = "js_bigint")]
    #[cfg_attr(test, ts(type = "bigint"))]
    pub balance: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct PlayerView {
    pub player_id: String,
    pub team_id: String,
    /// The player's team is in a game or the result is in: no projections.
    pub locked: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ProjectionView {
    pub player_id: String,
    pub name: String,
    pub points: u32,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ResultView {
    pub player_id: String,
    pub points: u32,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct FantasyView {
    pub season: u32,
    pub week: u32,
    #[cfg_attr(test, ts(type = "\"preseason\" | \"in-season\" | \"offseason\""))]
    pub phase: &'static str,
    pub names: Vec<NameView>,
    pub players: Vec<PlayerView>,
    pub projections: Vec<ProjectionView>,
    pub results: Vec<ResultView>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct WalletView {
    pub public_key: String,
    pub name: Option<String>,
    /// Exact: a `bigint` in JS.
    #[serde(serialize_with = "js_bigint")]
    #[cfg_attr(test, ts(type = "bigint"))]
    pub balance: u64,
}

/// The payload of a `block` event: a new head.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct BlockEvent {
    #[cfg_attr(test, ts(type = "number"))]
    pub height: u64,
    pub id: String,
    /// Its txs' ids, hex.
    pub txs: Vec<String>,
}

/// The payload of a `peer` event: a peer connected (`up`), left, or was banned.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct PeerEvent {
    pub peer_id: String,
    pub up: bool,
    pub reason: Option<String>,
    pub banned: bool,
}

/// The payload of a `tx` event: a tx entered the mempool.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct TxEvent {
    pub id: String,
}

/// The payload of a `sync` event.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct SyncEvent {
    #[cfg_attr(test, ts(type = "number"))]
    pub head_height: u64,
    #[serde(serialize_with = "js_number")]
    #[cfg_attr(test, ts(type = "number"))]
    pub target_height: u64,
    pub syncing: bool,
}

/// The payload of a `reachable` event: an address other browsers can dial.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ReachableEvent {
    pub addr: String,
}

/// The payload of an `error` event; `code` as the error classes use it
/// ("store_failed": the node stopped following the chain).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "NodeErrorEvent"))]
pub struct ErrorEvent {
    pub message: String,
    #[cfg_attr(test, ts(type = "string"))]
    pub code: &'static str,
}

/// Most names listed in a view; a page shows a leaderboard, not the registry.
pub const MAX_NAMES: usize = 200;
const MAX_LISTED: usize = 500;

fn decode<M: Message + Default>(chain: &Chain, key: &[u8]) -> Option<M> {
    chain.state().get(key).and_then(|v| M::decode(&v[..]).ok())
}

fn account(chain: &Chain, key: &[u8]) -> Option<pb::AccountState> {
    let k: [u8; 32] = key.try_into().ok()?;
    decode(chain, &keys::account(&k))
}

/// Reads a length-prefixed string at `at` in a state key.
fn key_str(key: &[u8], at: usize) -> Option<(String, usize)> {
    let len = *key.get(at)? as usize;
    let s = key.get(at + 1..at + 1 + len)?;
    Some((String::from_utf8_lossy(s).into_owned(), at + 1 + len))
}

pub fn wallet(chain: &Chain, public_key: &[u8; 32]) -> WalletView {
    let acct = account(chain, public_key).unwrap_or_default();
    WalletView {
        public_key: hex::encode(public_key),
        name: (!acct.fantasy_name.is_empty()).then_some(acct.fantasy_name),
        balance: acct.balance,
    }
}

fn season_state(chain: &Chain) -> pb::SeasonState {
    decode(chain, &keys::season()).unwrap_or_default()
}

/// The current (season, week): what a projection is made for.
pub fn current_week(chain: &Chain) -> (u32, u32) {
    let s = season_state(chain);
    (s.season, s.week)
}

pub fn fantasy(chain: &Chain) -> FantasyView {
    let season = season_state(chain);
    let phase = match season.phase() {
        pb::SeasonPhase::Preseason => "preseason",
        pb::SeasonPhase::InSeason => "in-season",
        pb::SeasonPhase::Offseason => "offseason",
    };
    let state = chain.state();
    let mut names: Vec<NameView> = state
        .prefix_keys(&[keys::NAME])
        .filter_map(|k| decode::<pb::NameOwner>(chain, k))
        .map(|o| NameView {
            balance: account(chain, &o.key).map(|a| a.balance).unwrap_or(0),
            name: o.display_name,
            public_key: hex::encode(&o.key),
        })
        .collect();
    names.sort_by(|a, b| b.balance.cmp(&a.balance).then_with(|| a.name.cmp(&b.name)));
    names.truncate(MAX_NAMES);
    let result_key = |p: &str| keys::result(season.season, season.week, p);
    let players = state
        .prefix_keys(&[keys::PLAYER])
        .take(MAX_LISTED)
        .filter_map(|k| {
            let (player_id, _) = key_str(k, 1)?;
            let p: pb::PlayerState = decode(chain, k)?;
            let team: pb::TeamState = decode(chain, &keys::team(&p.team_id)).unwrap_or_default();
            let locked = team.phase() == pb::TeamPhase::InGame || state.get(&result_key(&player_id)).is_some();
            Some(PlayerView { player_id, team_id: p.team_id, locked })
        })
        .collect();
    let week = keys::projection_week_prefix(season.season, season.week);
    let projections = state
        .prefix_keys(&week)
        .take(MAX_LISTED)
        .filter_map(|k| {
            let (player_id, at) = key_str(k, week.len())?;
            let who = k.get(at..at + 32)?;
            let p: pb::ProjectionState = decode(chain, k)?;
            let name = account(chain, who).map(|a| a.fantasy_name).unwrap_or_default();
            Some(ProjectionView { player_id, name, points: p.points })
        })
        .collect();
    let mut rprefix = vec![keys::RESULT];
    rprefix.extend_from_slice(&season.season.to_be_bytes());
    rprefix.extend_from_slice(&season.week.to_be_bytes());
    let results = state
        .prefix_keys(&rprefix)
        .take(MAX_LISTED)
        .filter_map(|k| {
            let (player_id, _) = key_str(k, rprefix.len())?;
            let points = u32::from_be_bytes(state.get(k)?.get(..4)?.try_into().ok()?);
            Some(ResultView { player_id, points })
        })
        .collect();
    FantasyView { season: season.season, week: season.week, phase, names, players, projections, results }
}

/// The key registered under `name`, if any (after folding).
pub fn name_owner(chain: &Chain, name: &str) -> Option<Vec<u8>> {
    let folded = fold_name(name).ok()?;
    decode::<pb::NameOwner>(chain, &keys::name(&folded)).map(|o| o.key)
}

pub fn summary(bytes: &[u8]) -> Option<BlockSummary> {
    let b = pb::Block::decode(bytes).ok()?;
    let h = pb::BlockHeader::decode(b.header.as_slice()).ok()?;
    Some(BlockSummary {
        height: h.height,
        id: sha256(&b.header).to_hex(),
        timestamp_ms: h.timestamp_ms,
        producer: hex::encode(&h.producer),
        tx_count: b.txs.len(),
        size: bytes.len(),
    })
}

pub fn detail(chain: &Chain, bytes: &[u8]) -> Option<BlockDetail> {
    let b = pb::Block::decode(bytes).ok()?;
    let h = pb::BlockHeader::decode(b.header.as_slice()).ok()?;
    let txs = b
        .txs
        .iter()
        .map(|st| {
            let (kind, summary) = match pb::Transaction::decode(st.tx.as_slice()).ok().and_then(|t| t.body) {
                Some(pb::transaction::Body::Name(n)) => ("name", format!("registers \"{}\"", n.fantasy_name)),
                Some(pb::transaction::Body::Projection(p)) => {
                    ("projection", format!("projects {} points for {} (week {})", p.points, p.player_id, p.week))
                }
                Some(pb::transaction::Body::Transfer(t)) => {
                    ("transfer", format!("sends {} to {}", t.amount, t.to_name))
                }
                Some(pb::transaction::Body::Data(d)) => ("data", data_summary(&d)),
                None => ("unknown", String::new()),
            };
            let signer_name = account(chain, &st.signer).map(|a| a.fantasy_name).filter(|n| !n.is_empty());
            TxView { id: sha256(&st.tx).to_hex(), signer: hex::encode(&st.signer), signer_name, kind, summary }
        })
        .collect();
    Some(BlockDetail {
        height: h.height,
        id: sha256(&b.header).to_hex(),
        prev_hash: hex::encode(&h.prev_hash),
        timestamp_ms: h.timestamp_ms,
        producer: hex::encode(&h.producer),
        state_root: hex::encode(&h.state_root),
        tx_root: hex::encode(&h.tx_root),
        size: bytes.len(),
        txs,
    })
}

fn data_summary(d: &pb::DataTransition) -> String {
    use pb::data_transition::Kind;
    match &d.kind {
        Some(Kind::SeasonStart(s)) => format!("season {} starts", s.season),
        Some(Kind::Roster(r)) => format!("roster of {} players", r.players.len()),
        Some(Kind::GameStart(g)) => format!("week {}: {} teams kick off", g.week, g.team_ids.len()),
        Some(Kind::GameResult(g)) => format!("week {}: results for {} players", g.week, g.results.len()),
        Some(Kind::WeekOver(w)) => format!("week {} over", w.week),
        Some(Kind::SeasonEnd(s)) => format!("season {} ends", s.season),
        None => "oracle data".into(),
    }
}

/// A token amount as a JS `bigint`: exact whatever its size (a number is
/// exact only below 2^53, and serde-wasm-bindgen refuses a u64 above it).
pub(crate) fn js_bigint<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u128(u128::from(*v))
}

/// A height a peer claims, as a JS number. serde-wasm-bindgen refuses a u64
/// above 2^53 (an error that would make `status()` throw for every page
/// whose peer claims one); above that the number is approximate, which is
/// all a claim that large deserves.
pub(crate) fn js_number<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(*v as f64)
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct PeerView {
    pub peer_id: String,
    #[serde(serialize_with = "js_number")]
    #[cfg_attr(test, ts(type = "number"))]
    pub head: u64,
    #[cfg_attr(test, ts(type = "number | null"))]
    pub latency_ms: Option<u64>,
    pub addr: Option<String>,
    #[cfg_attr(
        test,
        ts(type = "\"websocket\" | \"webrtc-direct\" | \"webrtc\" | \"relayed\" | \"tcp\" | \"quic\" | \"other\"")
    )]
    pub transport: &'static str,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, ts(rename = "NodeStatus"))]
pub struct StatusView {
    pub peer_id: String,
    pub genesis: String,
    #[cfg_attr(test, ts(type = "number"))]
    pub head_height: u64,
    pub head_id: String,
    #[cfg_attr(test, ts(type = "number"))]
    pub final_height: u64,
    /// The lowest height this node serves blocks from (it keeps the newest
    /// `retainBlocks`); 0: every block.
    #[cfg_attr(test, ts(type = "number"))]
    pub lowest_height: u64,
    pub syncing: bool,
    #[serde(serialize_with = "js_number")]
    #[cfg_attr(test, ts(type = "number"))]
    pub target_height: u64,
    pub mempool: usize,
    #[cfg_attr(test, ts(type = "number"))]
    pub blocks_validated: u64,
    #[cfg_attr(test, ts(type = "number"))]
    pub blocks_downloaded: u64,
    #[cfg_attr(test, ts(type = "number"))]
    pub blocks_served: u64,
    /// Synced blocks whose signatures a Web Worker checked.
    #[cfg_attr(test, ts(type = "number"))]
    pub blocks_verified_by_workers: u64,
    #[cfg_attr(test, ts(type = "number"))]
    pub gossip_accepted: u64,
    #[cfg_attr(test, ts(type = "number"))]
    pub gossip_rejected: u64,
    /// Gossip messages received, duplicates included, and the distinct ones.
    #[cfg_attr(test, ts(type = "number | null"))]
    pub gossip_received: Option<u64>,
    #[cfg_attr(test, ts(type = "number | null"))]
    pub gossip_unique: Option<u64>,
    pub peers: Vec<PeerView>,
    /// Connected peers not past the status handshake (a handshake in flight, or a libp2p peer
    /// that does not speak our protocols).
    pub other_peers: Vec<PeerView>,
    pub listen: Vec<String>,
    /// Set once a store commit failed: the node is not live (see `NodeEvent::StoreFailed`).
    pub store_error: Option<String>,
}

fn peer_views(peers: &[protoblock_net::node::PeerStatus]) -> Vec<PeerView> {
    let mut peers: Vec<PeerView> = peers
        .iter()
        .map(|p| {
            let addr = p.addr.as_ref().map(|a| a.to_string());
            PeerView {
                peer_id: p.peer.to_string(),
                head: p.head,
                latency_ms: p.latency_ms,
                transport: match p.addr.as_ref().map(|a| protoblock_net::addr::classify(a).name()) {
                    _ if p.relayed => "relayed",
                    Some(t) => t,
                    None => "other",
                },
                addr,
            }
        })
        .collect();
    peers.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
    peers
}

pub fn status(s: &protoblock_net::NodeStatus) -> StatusView {
    StatusView {
        peer_id: s.peer_id.to_string(),
        genesis: s.genesis.to_hex(),
        head_height: s.head_height,
        head_id: s.head_id.to_hex(),
        final_height: s.final_height,
        lowest_height: s.lowest_height,
        syncing: s.syncing,
        target_height: s.target_height,
        mempool: s.mempool,
        blocks_validated: s.blocks_validated,
        blocks_downloaded: s.blocks_downloaded,
        blocks_served: s.blocks_served,
        blocks_verified_by_workers: s.blocks_verified_off_loop,
        gossip_accepted: s.gossip_accepted,
        gossip_rejected: s.gossip_rejected,
        gossip_received: s.gossip_received.map(|r| r.0),
        gossip_unique: s.gossip_received.map(|r| r.1),
        peers: peer_views(&s.peers),
        other_peers: peer_views(&s.others),
        listen: s.listen.iter().map(|a| a.to_string()).collect(),
        store_error: s.store_error.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protoblock_core::ChainLimits;
    use protoblock_devnet::{DevNet, generate_chain};

    #[test]
    fn views_of_a_dev_chain() {
        let net = DevNet::new(7, 12);
        let blocks = generate_chain(&net, 80, 6);
        let (mut chain, _) = Chain::new(net.genesis.clone(), ChainLimits::default()).unwrap();
        for (i, b) in blocks.iter().enumerate() {
            let ts = net.genesis.timestamp_ms + (i as u64 + 1) * 1000;
            chain.insert_block(b, ts + 1).unwrap();
        }
        let f = fantasy(&chain);
        assert!(!f.names.is_empty(), "dev users have names");
        assert!(f.names.windows(2).all(|w| w[0].balance >= w[1].balance), "leaderboard is sorted");
        assert!(!f.players.is_empty());
        let first = &f.names[0];
        assert_eq!(name_owner(&chain, &first.name.to_uppercase()).map(hex::encode), Some(first.public_key.clone()));
        let key: [u8; 32] = hex::decode(&first.public_key).unwrap().try_into().unwrap();
        assert_eq!(wallet(&chain, &key).name.as_deref(), Some(first.name.as_str()));
        let s = summary(&blocks[10]).unwrap();
        assert_eq!(s.height, 11);
        let d = detail(&chain, &blocks[10]).unwrap();
        assert_eq!(d.txs.len(), s.tx_count);
        assert_eq!(d.id, s.id);
        assert!(summary(b"garbage").is_none());
    }
}
