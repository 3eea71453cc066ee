//! `ProtoblockNode`, the JS API. Each instance owns its node loop, its
//! IndexedDB database and its listeners: nothing is global, so one page can
//! run several nodes (the tests do).
//!
//! The node loop runs as a `spawn_local` task; methods talk to it through
//! the bounded command channel of `NodeHandle`, and its events reach JS
//! listeners through a second task. Errors become rejected promises with a
//! plain message; nothing here panics on what a page or a peer sends.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use futures::StreamExt;
use libp2p::{Multiaddr, identity};
use protoblock_core::crypto::signing_key_from_seed;
use protoblock_core::{ChainLimits, Genesis, Hash32};
use protoblock_net::node::{NodeConfig, NodeHandle, SubmitError, now_ms};
use protoblock_net::{Node, NodeStatus};
use protoblock_store::{Store, open_chain};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, spawn_local};

use crate::options::StartOptions;
use crate::store::IndexedDbStore;
use crate::view;
use crate::wallet::Wallet;

/// The types of what the API takes and hands out, generated from the Rust
/// types (`src/ts_types.rs` checks the file against them).
#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &str = include_str!("../../js/types.d.ts");

#[wasm_bindgen(typescript_custom_section)]
const TS_EVENTS: &str = r#"
export type NodeEventName = "block" | "peer" | "tx" | "sync" | "reachable" | "error";
/** What this low-level class's promises reject with: an `Error` with a `code` (and, for an invalid tx, the
 *  chain `rule`). The package's entry point (index.js) turns them into error classes. */
export interface ProtoblockError extends Error {
  name: "ProtoblockError";
  code: "invalid" | "duplicate" | "signer_limit" | "mempool_full" | "store_failed" | "stopped" | "bad_argument"
    | "bad_backup" | "bad_passphrase" | "wallet_exists" | "wallet_corrupt" | "dial_failed" | "bootstrap";
  rule?: string;
}
"#;

mod events;
mod keeping;

const DEFAULT_STORE: &str = "protoblock";
const LIBP2P_KEY: &str = "node/libp2p-key";
/// Where versions before the wallet's own database kept its key (read once, to move it).
const WALLET_KEY: &str = "wallet/ed25519-seed";
const KNOWN_PEERS: &str = "node/known-peers";
const MAX_KNOWN_PEERS: usize = 16;
const MAX_RECENT_BLOCKS: u32 = 200;
/// Blocks a browser node keeps by default (`retainBlocks`): a phone's share,
/// not an archive's (relays keep every block).
const DEFAULT_RETAIN_BLOCKS: u64 = 10_000;

/// What `/api/bootstrap` on a relay answers.
#[derive(Deserialize)]
struct Bootstrap {
    genesis_pb: String,
    multiaddrs: Vec<String>,
    #[serde(default)]
    ice_servers: Vec<IceServer>,
}

#[derive(Deserialize)]
struct IceServer {
    urls: String,
    username: Option<String>,
    credential: Option<String>,
}

type Listeners = RefCell<HashMap<String, Vec<js_sys::Function>>>;

struct Inner {
    handle: NodeHandle,
    store: IndexedDbStore,
    wallet: RefCell<Wallet>,
    genesis: Hash32,
    peer_id: String,
    listeners: Listeners,
    #[cfg(feature = "test-hooks")]
    control: libp2p_stream::Control,
}

/// A Protoblock full node running in this page.
#[wasm_bindgen]
pub struct ProtoblockNode {
    inner: Rc<Inner>,
}

fn js_err(msg: impl std::fmt::Display) -> JsError {
    JsError::new(&msg.to_string())
}

/// A `ProtoblockError` (see the TypeScript above): an `Error` with a `code`
/// and, for an invalid tx, the `rule`, so a page branches on names, not on
/// message text.
fn coded_err(code: &str, rule: Option<&str>, message: &str) -> JsValue {
    let e = js_sys::Error::new(message);
    e.set_name("ProtoblockError");
    let _ = js_sys::Reflect::set(&e, &"code".into(), &code.into());
    if let Some(rule) = rule {
        let _ = js_sys::Reflect::set(&e, &"rule".into(), &rule.into());
    }
    e.into()
}

fn store_err(e: impl std::fmt::Display) -> JsValue {
    coded_err("store_failed", None, &e.to_string())
}

fn arg_err(message: &str) -> JsValue {
    coded_err("bad_argument", None, message)
}

fn submit_err(e: SubmitError) -> JsValue {
    coded_err(e.kind(), e.rule(), &e.to_string())
}

fn to_js<T: Serialize>(v: &T) -> Result<JsValue, JsError> {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(js_err)
}

async fn fetch_json(url: &str) -> Result<JsValue, JsError> {
    let window = web_sys::window().ok_or_else(|| js_err("no window: run the node in a page"))?;
    let resp = JsFuture::from(window.fetch_with_str(url))
        .await
        .map_err(|e| js_err(format!("fetching {url}: {}", describe(&e))))?;
    let resp: web_sys::Response = resp.dyn_into().map_err(|_| js_err("fetch returned no Response"))?;
    if !resp.ok() {
        return Err(js_err(format!("{url}: HTTP {}", resp.status())));
    }
    JsFuture::from(resp.json().map_err(|e| js_err(describe(&e)))?)
        .await
        .map_err(|e| js_err(format!("{url}: not JSON: {}", describe(&e))))
}

fn describe(v: &JsValue) -> String {
    v.as_string()
        .or_else(|| v.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message())))
        .unwrap_or_else(|| format!("{v:?}"))
}

/// Multiaddrs this page can dial: WebSocket (only wss when the page came
/// over https), WebRTC-direct (with certhash), and circuits through a relay.
fn browser_dialable(addr: &Multiaddr) -> bool {
    protoblock_net::addr::page_dialable(addr, served_over_https())
}

/// The page's own scheme, not `isSecureContext`: that is true on
/// http://127.0.0.1 too, where ws:// is allowed.
fn served_over_https() -> bool {
    web_sys::window().and_then(|w| w.location().protocol().ok()).is_some_and(|p| p == "https:")
}

async fn load_or_make_seed(store: &IndexedDbStore, key: &str) -> Result<[u8; 32], JsError> {
    if let Some(v) = store.get_meta(key).await.map_err(js_err)?
        && let Ok(seed) = <[u8; 32]>::try_from(v.as_slice())
    {
        return Ok(seed);
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| js_err(format!("no randomness: {e}")))?;
    store.put_meta(key, seed.to_vec()).await.map_err(js_err)?;
    Ok(seed)
}

#[wasm_bindgen]
impl ProtoblockNode {
    /// Opens (or creates) this chain's database, resumes from it, connects
    /// to the relay and starts validating and serving.
    pub async fn start(
        #[wasm_bindgen(unchecked_param_type = "StartOptions")] opts: JsValue,
    ) -> Result<ProtoblockNode, JsValue> {
        console_error_panic_hook::set_once();
        let bad_arg = |m: String| coded_err("bad_argument", None, &m);
        let boot = |m: String| coded_err("bootstrap", None, &m);
        let store_failed = |m: String| coded_err("store_failed", None, &m);
        let opts: StartOptions = if opts.is_undefined() || opts.is_null() {
            StartOptions::default()
        } else {
            serde_wasm_bindgen::from_value(opts).map_err(|e| bad_arg(format!("start options: {e}")))?
        };
        init_logging(opts.log_level.as_deref());
        let mut ice_servers = Vec::new();
        for s in opts.ice_servers.iter().flatten() {
            ice_servers
                .push(protoblock_webrtc::ice::IceServer::parse(s).map_err(|e| bad_arg(format!("iceServers: {e}")))?);
        }
        let (genesis_hex, mut bootstrap) = match &opts.relay {
            Some(relay) => {
                let url = format!("{}/api/bootstrap", relay.trim_end_matches('/'));
                let answer = fetch_json(&url).await.map_err(|e| boot(describe(&e.into())))?;
                let b: Bootstrap = serde_wasm_bindgen::from_value(answer).map_err(|e| boot(format!("{url}: {e}")))?;
                ice_servers.extend(b.ice_servers.into_iter().map(|s| protoblock_webrtc::ice::IceServer {
                    url: s.urls,
                    username: s.username,
                    credential: s.credential,
                }));
                let mut addrs = b.multiaddrs;
                addrs.extend(opts.bootstrap.iter().flatten().cloned());
                (b.genesis_pb, addrs)
            }
            None => (
                opts.genesis.clone().ok_or_else(|| bad_arg("give `relay`, or `genesis` with `bootstrap`".into()))?,
                opts.bootstrap.clone().unwrap_or_default(),
            ),
        };
        let genesis_bytes = hex::decode(genesis_hex.trim()).map_err(|e| boot(format!("genesis hex: {e}")))?;
        let genesis = Genesis::from_bytes(&genesis_bytes).map_err(|e| boot(format!("genesis: {e}")))?;
        if let Some(want) = &opts.genesis_hash
            && !want.eq_ignore_ascii_case(&genesis.hash.to_hex())
        {
            return Err(boot(format!("relay serves chain {}, expected {want}", genesis.hash)));
        }
        let prefix = opts.store_name.as_deref().unwrap_or(DEFAULT_STORE);
        let db_name = format!("{prefix}-{}", &genesis.hash.to_hex()[..16]);
        let store =
            IndexedDbStore::open(&db_name).await.map_err(|e| store_failed(format!("IndexedDB {db_name}: {e}")))?;

        let key_seed = load_or_make_seed(&store, LIBP2P_KEY).await.map_err(|e| store_failed(describe(&e.into())))?;
        let key = identity::Keypair::ed25519_from_bytes(key_seed).map_err(js_err)?;
        // The wallet's own database; an older version's key in the chain database moves there.
        let legacy = store.get_meta(WALLET_KEY).await.map_err(|e| store_failed(e.to_string()))?;
        let wallet = Wallet::from_seed(
            &crate::wallet_store::load_or_make(legacy).await.map_err(|e| coded_err(e.code, None, &e.message))?,
        );
        keeping::request_persistent_storage();

        if let Some(known) = store.get_meta(KNOWN_PEERS).await.map_err(|e| store_failed(e.to_string()))? {
            bootstrap.extend(String::from_utf8_lossy(&known).lines().map(str::to_string));
        }
        let mut addrs: Vec<Multiaddr> = Vec::new();
        for a in bootstrap {
            if let Ok(m) = a.parse::<Multiaddr>()
                && browser_dialable(&m)
                && !addrs.contains(&m)
            {
                addrs.push(m);
            }
        }
        let params = genesis.params.clone();
        let chain = open_chain(&store, genesis.clone(), ChainLimits::default())
            .await
            .map_err(|e| store_failed(format!("resuming the chain from {db_name}: {e}")))?;
        let producer_key = match &opts.oracle_key {
            Some(h) => {
                let seed: [u8; 32] = hex::decode(h.trim())
                    .ok()
                    .and_then(|v| v.try_into().ok())
                    .ok_or_else(|| bad_arg("oracleKey: 64 hex digits".into()))?;
                Some(signing_key_from_seed(&seed))
            }
            None => None,
        };
        let webrtc = protoblock_webrtc::private::Config {
            ice_servers,
            #[cfg(feature = "test-hooks")]
            black_hole: opts.test_black_hole,
            ..Default::default()
        };
        #[cfg(feature = "gossip-metrics")]
        let metrics = std::sync::Arc::new(std::sync::Mutex::new(prometheus_client::registry::Registry::default()));
        let (swarm, signaller, _control) = crate::swarm::build(
            key.clone(),
            params.max_block_bytes,
            webrtc,
            #[cfg(feature = "gossip-metrics")]
            &metrics,
        )
        .map_err(js_err)?;
        spawn_local(signaller);
        let defaults = NodeConfig::default();
        let cfg = NodeConfig {
            bootstrap: addrs,
            producer_key,
            block_interval_ms: opts.block_interval_ms.unwrap_or(defaults.block_interval_ms),
            target_peers: opts.target_peers.unwrap_or(defaults.target_peers),
            target_direct_peers: opts.target_direct_peers.unwrap_or(defaults.target_direct_peers),
            retain_blocks: match opts.retain_blocks.unwrap_or(DEFAULT_RETAIN_BLOCKS) {
                0 => None,
                n => Some(n),
            },
            #[cfg(feature = "gossip-metrics")]
            gossip_metrics: Some(metrics),
            ..defaults
        };
        let (mut node, handle, mut events) = Node::new(swarm, chain, store.clone(), cfg).map_err(js_err)?;
        // Bounded: each worker is a thread with its own copy of the wasm instance.
        let workers = opts.signature_workers.unwrap_or_else(default_signature_workers).min(MAX_SIGNATURE_WORKERS);
        if workers > 0
            && let Some(v) = crate::verifier::start(&genesis_bytes, workers)
        {
            node = node.with_signature_verifier(v);
        }
        let peer_id = key.public().to_peer_id().to_string();
        tracing::info!(%peer_id, db = %db_name, "browser node starting");
        spawn_local(node.run());
        let inner = Rc::new(Inner {
            handle,
            store,
            wallet: RefCell::new(wallet),
            genesis: genesis.hash,
            peer_id,
            listeners: RefCell::new(HashMap::new()),
            #[cfg(feature = "test-hooks")]
            control: _control,
        });
        let weak: Weak<Inner> = Rc::downgrade(&inner);
        spawn_local(async move {
            while let Some(ev) = events.next().await {
                let Some(inner) = weak.upgrade() else { return };
                inner.dispatch(ev).await;
            }
        });
        Ok(ProtoblockNode { inner })
    }

    #[wasm_bindgen(getter, js_name = peerId)]
    pub fn peer_id(&self) -> String {
        self.inner.peer_id.clone()
    }

    /// Name of the IndexedDB database holding this node's chain.
    #[wasm_bindgen(getter, js_name = storeName)]
    pub fn store_name(&self) -> String {
        self.inner.store.name().to_string()
    }

    #[wasm_bindgen(unchecked_return_type = "NodeStatus")]
    pub async fn status(&self) -> Result<JsValue, JsValue> {
        Ok(to_js(&view::status(&self.node_status().await?))?)
    }

    /// Subscribes `callback` to an event: "block" {height, id, txs: tx ids},
    /// "peer" {peerId, up, reason}, "tx" {id}, "sync" {headHeight,
    /// targetHeight, syncing}, "reachable" {addr}, "error" {message}.
    pub fn on(
        &self,
        #[wasm_bindgen(unchecked_param_type = "NodeEventName")] event: String,
        callback: js_sys::Function,
    ) {
        self.inner.listeners.borrow_mut().entry(event).or_default().push(callback);
    }

    pub fn off(
        &self,
        #[wasm_bindgen(unchecked_param_type = "NodeEventName")] event: String,
        callback: js_sys::Function,
    ) {
        if let Some(v) = self.inner.listeners.borrow_mut().get_mut(&event) {
            v.retain(|f| f != &callback);
        }
    }

    #[wasm_bindgen(unchecked_return_type = "WalletView")]
    pub async fn wallet(&self) -> Result<JsValue, JsValue> {
        let pk = self.inner.wallet.borrow().public_key();
        let w = self.inner.handle.read_chain(move |c| view::wallet(c, &pk)).await.ok_or_else(stopped)?;
        Ok(to_js(&w)?)
    }

    /// Registers a fantasy name for this wallet. Resolves to the tx id once
    /// the tx is valid against the head and gossiped.
    #[wasm_bindgen(js_name = registerName)]
    pub async fn register_name(&self, name: String) -> Result<String, JsValue> {
        let tx = self.inner.wallet.borrow_mut().register_name(&self.inner.genesis, now_ms(), &name);
        self.submit(tx).await
    }

    /// A projection for this week (season and week are the chain's current).
    #[wasm_bindgen(js_name = submitProjection)]
    pub async fn submit_projection(&self, player_id: String, points: u32) -> Result<String, JsValue> {
        let (season, week) =
            self.inner.handle.read_chain(view::current_week).await.ok_or_else(|| submit_err(SubmitError::Stopped))?;
        let tx =
            self.inner.wallet.borrow_mut().projection(&self.inner.genesis, now_ms(), season, week, &player_id, points);
        self.submit(tx).await
    }

    /// Sends `amount` to a registered name: a `bigint` (exact, up to 2^64 - 1)
    /// or a whole number (exact up to 2^53).
    pub async fn transfer(
        &self,
        to_name: String,
        #[wasm_bindgen(unchecked_param_type = "bigint | number")] amount: JsValue,
    ) -> Result<String, JsValue> {
        let bad = || {
            coded_err("bad_argument", None, "amount: a whole number of at least 1 (a bigint, or a number below 2^53)")
        };
        let amount = if amount.is_bigint() {
            u64::try_from(js_sys::BigInt::unchecked_from_js(amount)).map_err(|_| bad())?
        } else {
            match amount.as_f64() {
                Some(a) if a.is_finite() && a.fract() == 0.0 && (1.0..=9_007_199_254_740_991.0).contains(&a) => {
                    a as u64
                }
                _ => return Err(bad()),
            }
        };
        if amount == 0 {
            return Err(bad());
        }
        let tx = self.inner.wallet.borrow_mut().transfer(&self.inner.genesis, now_ms(), &to_name, amount);
        self.submit(tx).await
    }

    /// The newest blocks of the main chain, newest first.
    #[wasm_bindgen(js_name = recentBlocks, unchecked_return_type = "BlockSummary[]")]
    pub async fn recent_blocks(&self, limit: u32) -> Result<JsValue, JsValue> {
        let limit = limit.clamp(1, MAX_RECENT_BLOCKS);
        let head = self.node_status().await?.head_height;
        if head == 0 {
            return Ok(to_js(&Vec::<view::BlockSummary>::new())?);
        }
        let start = head.saturating_sub(limit as u64 - 1).max(1);
        let blocks = self.inner.store.blocks_range(start, limit, usize::MAX).await.map_err(store_err)?;
        let mut out: Vec<view::BlockSummary> = blocks.iter().filter_map(|b| view::summary(b)).collect();
        out.reverse();
        Ok(to_js(&out)?)
    }

    /// A block by height (number) or id (hex), with its txs; null if absent.
    #[wasm_bindgen(unchecked_return_type = "BlockDetail | null")]
    pub async fn block(
        &self,
        #[wasm_bindgen(unchecked_param_type = "number | string")] which: JsValue,
    ) -> Result<JsValue, JsValue> {
        let bytes = if let Some(h) = which.as_f64() {
            if !(h >= 0.0 && h.fract() == 0.0) {
                return Err(arg_err("block height: a whole number"));
            }
            self.inner.store.blocks_range(h as u64, 1, usize::MAX).await.map_err(store_err)?.pop()
        } else if let Some(s) = which.as_string() {
            if let Ok(h) = s.trim().parse::<u64>() {
                self.inner.store.blocks_range(h, 1, usize::MAX).await.map_err(store_err)?.pop()
            } else {
                let id = Hash32::from_hex(s.trim()).ok_or_else(|| arg_err("block id: 64 hex digits"))?;
                self.inner.store.block_by_id(id).await.map_err(store_err)?
            }
        } else {
            return Err(arg_err("give a block height or id"));
        };
        let Some(bytes) = bytes else { return Ok(JsValue::NULL) };
        let d = self.inner.handle.read_chain(move |c| view::detail(c, &bytes)).await.ok_or_else(stopped)?;
        Ok(to_js(&d)?)
    }

    #[wasm_bindgen(unchecked_return_type = "FantasyView")]
    pub async fn fantasy(&self) -> Result<JsValue, JsValue> {
        let f = self.inner.handle.read_chain(view::fantasy).await.ok_or_else(stopped)?;
        Ok(to_js(&f)?)
    }

    /// Dials a multiaddr (e.g. another page's relayed address). Resolves to
    /// the peer id once the connection is up; rejects with code
    /// "dial_failed" when it cannot be made (in 30 s at most), and
    /// "bad_argument" for an address that does not parse.
    pub async fn dial(&self, addr: String) -> Result<String, JsValue> {
        use futures::FutureExt;
        const DIAL_TIMEOUT_MS: u32 = 30_000;
        let a: Multiaddr = addr.parse().map_err(|e| coded_err("bad_argument", None, &format!("multiaddr: {e}")))?;
        let dial = self.inner.handle.dial(a).fuse();
        let timeout = gloo_timers::future::TimeoutFuture::new(DIAL_TIMEOUT_MS).fuse();
        futures::pin_mut!(dial, timeout);
        futures::select! {
            r = dial => r.map(|p| p.to_string()).map_err(|e| coded_err("dial_failed", None, &e)),
            _ = timeout => Err(coded_err("dial_failed", None, &format!("no connection in {DIAL_TIMEOUT_MS} ms"))),
        }
    }

    /// Test hook: opens a `/webrtc` signalling stream to `peer` (connected
    /// already) and misbehaves as `mode` says ("garbage", "oversized",
    /// "silent", "offer"), holding the stream for `holdMs`.
    #[cfg(feature = "test-hooks")]
    #[wasm_bindgen(js_name = _testSignal)]
    pub async fn test_signal(&self, peer: String, mode: String, hold_ms: u32) -> Result<(), JsError> {
        let peer: libp2p::PeerId = peer.parse().map_err(|e| js_err(format!("peer id: {e}")))?;
        protoblock_webrtc::private::testing::misbehave(
            self.inner.control.clone(),
            peer,
            &mode,
            std::time::Duration::from_millis(hold_ms.into()),
        )
        .await
        .map_err(js_err)
    }

    /// Blocks stored in IndexedDB (tests use it to prove a reload resumed).
    #[cfg(feature = "test-hooks")]
    #[wasm_bindgen(js_name = storedBlocks)]
    pub async fn stored_blocks(&self) -> Result<u32, JsError> {
        self.inner.store.block_count().await.map_err(js_err)
    }

    /// Stops the node. Everything committed stays in IndexedDB.
    pub async fn stop(&self) {
        self.inner.handle.shutdown().await;
        self.inner.listeners.borrow_mut().clear();
    }
}

/// Signature workers a page may ask for, at most.
const MAX_SIGNATURE_WORKERS: u32 = 8;

/// One worker per core beside the page's own thread, at least one (a
/// two-core machine still overlaps signatures with state and IndexedDB
/// work), at most four (past that the page's thread is the bottleneck).
fn default_signature_workers() -> u32 {
    let cores = web_sys::window().map(|w| w.navigator().hardware_concurrency()).unwrap_or(2.0) as u32;
    cores.saturating_sub(1).clamp(1, 4)
}

fn stopped() -> JsValue {
    coded_err("stopped", None, "node stopped")
}

impl ProtoblockNode {
    async fn node_status(&self) -> Result<NodeStatus, JsValue> {
        self.inner.handle.status().await.ok_or_else(stopped)
    }

    async fn submit(&self, tx: Vec<u8>) -> Result<String, JsValue> {
        self.inner.handle.submit_tx(tx).await.map(|id| id.to_hex()).map_err(submit_err)
    }
}

fn init_logging(level: Option<&str>) {
    let level = match level.unwrap_or("warn") {
        "error" => tracing::Level::ERROR,
        "info" => tracing::Level::INFO,
        "debug" => tracing::Level::DEBUG,
        "trace" => tracing::Level::TRACE,
        _ => tracing::Level::WARN,
    };
    // Logging is the page's, not a node's: the first node installs the
    // console subscriber and later ones share it.
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let _ = tracing::subscriber::set_global_default(crate::console_log::ConsoleLog::new(level));
    });
}
