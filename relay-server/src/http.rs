//! The relay's HTTP face, on one port: the page (`www/`), `/health`,
//! `/metrics` (Prometheus text), a small JSON API, and `/api/bootstrap`, which
//! tells browsers the relay's multiaddrs and ICE servers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use prost::Message;
use protoblock_core::Hash32;
use protoblock_core::hash::sha256;
use protoblock_net::node::{NodeHandle, SubmitError, now_ms};
use protoblock_proto::v1 as pb;
use protoblock_store::{RedbStore, Store};
use serde_json::{Value, json};

/// Largest tx accepted over HTTP (the chain's own limit is checked after).
const MAX_TX_BODY: usize = 128 * 1024;

#[derive(Clone)]
pub struct HttpState {
    pub node: NodeHandle,
    pub store: Arc<RedbStore>,
    pub ice_servers: Vec<protoblock_webrtc::ice::IceServer>,
    pub started_ms: u64,
    /// Sync rate, sampled by the caller: (time, height) of the last sample.
    pub rate: Arc<RateSampler>,
    /// The encoded genesis, handed to browsers so they can start from it.
    pub genesis_bytes: Arc<Vec<u8>>,
    /// Routes under `/api/dev/` (dev relays only: they change how the node
    /// behaves, for tests and demos).
    pub dev_api: bool,
    /// Dev relays: the dev oracle's seed (hex), so a page can produce.
    pub dev_oracle_seed: Option<String>,
    /// How many listen addresses the relay was given: until the node has
    /// reported that many, it is starting (a page that read
    /// `/api/bootstrap` then would miss a transport).
    pub expected_listen: usize,
    /// Everything `/metrics` shows (see `crate::metrics`).
    pub metrics: Arc<std::sync::Mutex<prometheus_client::registry::Registry>>,
}

#[derive(Default)]
pub struct RateSampler {
    last_ms: AtomicU64,
    last_height: AtomicU64,
    blocks_per_sec_milli: AtomicU64,
}

impl RateSampler {
    pub fn sample(&self, height: u64) {
        let now = now_ms();
        let (t0, h0) = (self.last_ms.swap(now, Ordering::Relaxed), self.last_height.swap(height, Ordering::Relaxed));
        if t0 > 0 && now > t0 {
            let rate = height.saturating_sub(h0) * 1_000_000 / (now - t0);
            self.blocks_per_sec_milli.store(rate, Ordering::Relaxed);
        }
    }
    pub fn rate(&self) -> f64 {
        self.blocks_per_sec_milli.load(Ordering::Relaxed) as f64 / 1000.0
    }
}

/// Requests served at once; beyond it a request is answered 503 at once
/// rather than queued (a queue would hold every slow client's memory).
const MAX_CONCURRENT_REQUESTS: usize = 256;
pub fn router(state: HttpState, www: std::path::PathBuf, request_timeout: std::time::Duration) -> Router {
    // Any origin may read the public API and load the page's files (an
    // embedding site imports the package cross-origin, which needs CORS for
    // module scripts and wasm) and may submit txs; nothing sends cookies, so
    // no credentials. Methods GET and POST, header Content-Type only.
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
        .allow_headers([header::CONTENT_TYPE]);
    let public = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/api/status", get(status))
        .route("/api/bootstrap", get(bootstrap))
        .route("/api/blocks/{id}", get(block))
        .route("/api/blocks/{id}/raw", get(block_raw))
        .route("/api/tx", post(submit_tx))
        .fallback_service(tower_http::services::ServeDir::new(www))
        .layer(cors);
    // Dev routes change how the node behaves: same-origin only (no CORS),
    // and they answer 404 unless the relay runs with --dev.
    let dev = Router::new()
        .route("/api/dev/serve-sync", post(dev_serve_sync))
        .route("/api/dev/oracle-key", get(dev_oracle_key));
    let limits = tower::ServiceBuilder::new()
        .layer(axum::error_handling::HandleErrorLayer::new(overloaded))
        .load_shed()
        .concurrency_limit(MAX_CONCURRENT_REQUESTS)
        .timeout(request_timeout);
    public.merge(dev).layer(axum::extract::DefaultBodyLimit::max(MAX_TX_BODY)).layer(limits).with_state(state)
}

async fn overloaded(e: tower::BoxError) -> Response {
    if e.is::<tower::timeout::error::Elapsed>() {
        err(StatusCode::REQUEST_TIMEOUT, "request took too long")
    } else if e.is::<tower::load_shed::error::Overloaded>() {
        err(StatusCode::SERVICE_UNAVAILABLE, "busy: too many requests at once")
    } else {
        err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

fn err(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, Json(json!({ "error": msg.into() }))).into_response()
}

/// The node's last published status, never asked of the loop: these
/// endpoints must answer when the loop is busy (or hung, which they report).
fn snapshot(s: &HttpState) -> Option<(std::sync::Arc<protoblock_net::NodeStatus>, u64)> {
    s.node.snapshot()
}

fn starting() -> Response {
    err(StatusCode::SERVICE_UNAVAILABLE, "node starting")
}

/// A published status older than this means the node loop is stuck.
const STALE_MS: u64 = 10_000;

async fn health(State(s): State<HttpState>) -> Response {
    let Some((st, age_ms)) = snapshot(&s) else { return starting() };
    // A listener that never comes up (its address refused later) must not
    // keep the relay "starting" for good: 5 s at most.
    if st.listen.len() < s.expected_listen && now_ms().saturating_sub(s.started_ms) < 5_000 {
        return starting();
    }
    let problem = match (&st.store_error, age_ms > STALE_MS) {
        (Some(e), _) => Some(e.clone()),
        (None, true) => Some(format!("the node loop has not reported for {age_ms} ms")),
        (None, false) => None,
    };
    let code = if problem.is_some() { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    let body = json!({ "ok": problem.is_none(), "height": st.head_height, "age_ms": age_ms, "error": problem });
    (code, Json(body)).into_response()
}

/// The relay's public status. Peers are listed without their addresses:
/// this answers every origin, and a peer's IP address is not the relay's
/// to publish.
async fn status(State(s): State<HttpState>) -> Response {
    let Some((st, age_ms)) = snapshot(&s) else { return starting() };
    Json(json!({
        "peer_id": st.peer_id.to_string(),
        "genesis": st.genesis.to_hex(),
        "head": { "height": st.head_height, "id": st.head_id.to_hex() },
        "final_height": st.final_height,
        "syncing": st.syncing,
        "mempool": st.mempool,
        "peers": st.peers.iter().map(|p| json!({
            "peer_id": p.peer.to_string(),
            "head": p.head,
            "latency_ms": p.latency_ms,
            "relayed": p.relayed,
        })).collect::<Vec<_>>(),
        "connections": st.admission.connections,
        "listen": st.listen.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "uptime_ms": now_ms().saturating_sub(s.started_ms),
        "age_ms": age_ms,
    }))
    .into_response()
}

/// What a browser needs to join with zero config.
async fn bootstrap(State(s): State<HttpState>) -> Response {
    let Some((mut st, _)) = snapshot(&s) else { return starting() };
    // Just started, before the loop published its listen addresses: ask it
    // (a page that got no addresses would never connect).
    if st.listen.len() < s.expected_listen
        && let Some(fresh) = s.node.status().await
    {
        st = std::sync::Arc::new(fresh);
    }
    let addrs: Vec<String> = st.listen.iter().map(|a| format!("{a}/p2p/{}", st.peer_id)).collect();
    Json(json!({
        "peer_id": st.peer_id.to_string(),
        "genesis": st.genesis.to_hex(),
        "genesis_pb": hex::encode(s.genesis_bytes.as_slice()),
        "multiaddrs": addrs,
        "ice_servers": s.ice_servers.iter().map(|s| match (&s.username, &s.credential) {
            (Some(u), Some(c)) => json!({ "urls": s.url, "username": u, "credential": c }),
            _ => json!({ "urls": s.url }),
        }).collect::<Vec<_>>(),
    }))
    .into_response()
}

async fn metrics(State(s): State<HttpState>) -> Response {
    if snapshot(&s).is_none() {
        return starting();
    }
    let mut out = String::new();
    let encoded = match s.metrics.lock() {
        Ok(registry) => prometheus_client::encoding::text::encode(&mut out, &registry),
        Err(_) => Err(std::fmt::Error),
    };
    if encoded.is_err() {
        return err(StatusCode::INTERNAL_SERVER_ERROR, "encoding the metrics failed");
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], out).into_response()
}

/// A block by height (decimal) or id (64 hex digits), decoded for reading.
async fn block(State(s): State<HttpState>, Path(id): Path<String>) -> Response {
    let bytes = match stored_block(&s, &id).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match describe_block(&bytes) {
        Some(v) => Json(v).into_response(),
        None => err(StatusCode::INTERNAL_SERVER_ERROR, "stored block does not decode"),
    }
}

/// The block's exact encoding (what its id and signatures cover), for tools
/// that check it themselves; the browser benchmark feeds these to a page.
async fn block_raw(State(s): State<HttpState>, Path(id): Path<String>) -> Response {
    match stored_block(&s, &id).await {
        Ok(b) => ([(header::CONTENT_TYPE, "application/octet-stream")], b).into_response(),
        Err(r) => r,
    }
}

/// A main-chain block by height, or any stored block by id.
async fn stored_block(s: &HttpState, id: &str) -> Result<Vec<u8>, Response> {
    let bytes = if let Ok(h) = id.parse::<u64>() {
        s.store.blocks_range(h, 1, usize::MAX).await.map(|mut v| v.pop())
    } else if let Some(hash) = Hash32::from_hex(id) {
        s.store.block_by_id(hash).await
    } else {
        return Err(err(StatusCode::BAD_REQUEST, "give a height or a 64-hex-digit block id"));
    };
    match bytes {
        Ok(Some(b)) => Ok(b),
        Ok(None) => Err(err(StatusCode::NOT_FOUND, "no such block")),
        Err(e) => Err(err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

fn describe_block(bytes: &[u8]) -> Option<Value> {
    let b = pb::Block::decode(bytes).ok()?;
    let h = pb::BlockHeader::decode(b.header.as_slice()).ok()?;
    let txs: Vec<Value> = b
        .txs
        .iter()
        .map(|st| {
            let tx = pb::Transaction::decode(st.tx.as_slice()).ok();
            json!({
                "id": sha256(&st.tx).to_hex(),
                "signer": hex::encode(&st.signer),
                "nonce": tx.as_ref().map(|t| t.nonce),
                "body": tx.and_then(|t| t.body).map(|b| format!("{b:?}")),
            })
        })
        .collect();
    Some(json!({
        "id": sha256(&b.header).to_hex(),
        "height": h.height,
        "prev_hash": hex::encode(&h.prev_hash),
        "timestamp_ms": h.timestamp_ms,
        "producer": hex::encode(&h.producer),
        "tx_root": hex::encode(&h.tx_root),
        "state_root": hex::encode(&h.state_root),
        "txs": txs,
    }))
}

/// Submits an encoded `SignedTransaction` (the raw bytes as the body). It is
/// validated against the head and pending txs like any gossiped tx.
async fn submit_tx(State(s): State<HttpState>, body: axum::body::Bytes) -> Response {
    if body.is_empty() {
        return err(StatusCode::BAD_REQUEST, "empty body: send an encoded SignedTransaction");
    }
    match s.node.submit_tx(body.to_vec()).await {
        Ok(id) => (StatusCode::ACCEPTED, Json(json!({ "id": id.to_hex() }))).into_response(),
        Err(e) => {
            let body = json!({ "error": e.to_string(), "kind": e.kind(), "rule": e.rule() });
            (submit_error_status(&e), Json(body)).into_response()
        }
    }
}

/// A submit error's HTTP status (its `kind` and `rule` name it for programs).
fn submit_error_status(e: &SubmitError) -> StatusCode {
    use protoblock_core::mempool::MempoolError as M;
    match e {
        SubmitError::Rejected(M::Invalid(_) | M::Duplicate) => StatusCode::UNPROCESSABLE_ENTITY,
        SubmitError::Rejected(M::SignerLimit) => StatusCode::TOO_MANY_REQUESTS,
        SubmitError::Rejected(M::Full) | SubmitError::StoreFailed(_) | SubmitError::Stopped => {
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

/// `GET /api/dev/oracle-key`: the dev chain's oracle seed (hex), so a browser
/// can produce blocks (`oracleKey`), e.g. to keep a mesh alive without its
/// relay. Dev relays only: a dev chain's oracle is a fixture, not a secret.
async fn dev_oracle_key(State(s): State<HttpState>) -> Response {
    match (&s.dev_oracle_seed, s.dev_api) {
        (Some(seed), true) => Json(json!({ "seed": seed })).into_response(),
        _ => err(StatusCode::NOT_FOUND, "dev API is off (start the relay with --dev)"),
    }
}

/// `POST /api/dev/serve-sync` with body `true` or `false`: whether this relay
/// answers block-range requests (lets a test prove browsers serve sync).
async fn dev_serve_sync(State(s): State<HttpState>, body: String) -> Response {
    if !s.dev_api {
        return err(StatusCode::NOT_FOUND, "dev API is off (start the relay with --dev)");
    }
    let on = match body.trim() {
        "true" => true,
        "false" => false,
        _ => return err(StatusCode::BAD_REQUEST, "send true or false"),
    };
    s.node.set_serve_sync(on).await;
    Json(json!({ "serve_sync": on })).into_response()
}
