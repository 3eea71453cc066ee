//! `protoblock-relay`: the relay/bootstrap server and full node.
//!
//! Today it is a full node on redb that listens on TCP, syncs and gossips with
//! its peers, and in `--dev` mode produces a live dev chain: it makes (or
//! loads) a dev genesis and oracle key, produces blocks on a timer, and feeds
//! the scripted season and simulated users through the mempool. A second node
//! joins with `--bootstrap <multiaddr> --genesis <file>`. The rest of the relay
//! (circuit relay, rendezvous, WebSocket/QUIC/WebRTC listeners, STUN, HTTP)
//! comes with the network issue.

mod http;
mod metrics;
mod stun;
mod tls;

use protoblock_webrtc::ice::IceServer;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures::StreamExt;
use libp2p::{Multiaddr, identity};
use protoblock_core::{ChainLimits, Genesis};
use protoblock_devnet::{DevNet, SplitMix64, generate_chain, season_feed, sign_transaction, user_txs};
use protoblock_net::behaviour::{RelayLimits, Role};
use protoblock_net::native::{WebRtcCertificate, build_server_swarm};
use protoblock_net::node::{Node, NodeConfig, NodeEvent};
use protoblock_store::{RedbStore, Store, open_chain};

/// Failed pings in a row before the relay closes a client's connection.
const RELAY_DEAD_AFTER_PINGS: u8 = 12;

#[derive(Parser, Debug)]
#[command(
    name = "protoblock-relay",
    version,
    about = "Protoblock relay server and full node",
    args_override_self = true
)]
struct Args {
    /// A TOML file of settings named like the flags (`block_interval_ms = 500`,
    /// `listen = ["/ip4/0.0.0.0/tcp/4001"]`). Precedence: command line, then
    /// environment, then this file, then defaults.
    #[arg(long, env = "PROTOBLOCK_CONFIG")]
    config: Option<PathBuf>,
    /// Run a self-contained dev chain: make or load a dev genesis and oracle
    /// key, and produce blocks on a timer with a simulated season.
    #[arg(long)]
    dev: bool,
    /// Where the chain database, node key and dev files live.
    #[arg(long, env = "PROTOBLOCK_DATA_DIR", default_value = "data/dev")]
    data_dir: PathBuf,
    /// The chain to join (an encoded Genesis). A dev relay writes its own to
    /// `<data-dir>/genesis.pb`.
    #[arg(long, env = "PROTOBLOCK_GENESIS")]
    genesis: Option<PathBuf>,
    /// Addresses to listen on: TCP and QUIC for native peers, WebSocket and
    /// WebRTC-direct for browsers.
    #[arg(
        long,
        env = "PROTOBLOCK_LISTEN",
        value_delimiter = ',',
        default_value = "/ip4/127.0.0.1/tcp/4001,/ip4/127.0.0.1/udp/4001/quic-v1,/ip4/127.0.0.1/tcp/4002/ws,/ip4/127.0.0.1/udp/4003/webrtc-direct"
    )]
    listen: Vec<Multiaddr>,
    /// Public addresses to announce (behind NAT or a load balancer); by
    /// default the listen addresses are announced.
    #[arg(long, env = "PROTOBLOCK_EXTERNAL", value_delimiter = ',')]
    external_address: Vec<Multiaddr>,
    /// UDP address of the STUN Binding responder ("off" to disable).
    #[arg(long, env = "PROTOBLOCK_STUN_LISTEN", default_value = "127.0.0.1:3478")]
    stun_listen: String,
    /// Peers to dial at start.
    #[arg(long, env = "PROTOBLOCK_BOOTSTRAP", value_delimiter = ',')]
    bootstrap: Vec<Multiaddr>,
    /// Milliseconds between produced blocks (dev mode).
    #[arg(long, env = "PROTOBLOCK_BLOCK_INTERVAL_MS", default_value_t = 2000)]
    block_interval_ms: u64,
    /// Simulated users submitting transactions (dev mode).
    #[arg(long, default_value_t = 50)]
    dev_users: usize,
    /// Simulated user transactions per block (dev mode).
    #[arg(long, default_value_t = 8)]
    dev_txs_per_block: usize,
    /// Dev mode, on an empty chain: first generate this many blocks of
    /// history (deterministic, `--dev-txs-per-block` txs each) so there is a
    /// chain to sync. Tests and the browser benchmark use it.
    #[arg(long, default_value_t = 0)]
    dev_history: u64,
    /// Blocks per simulated week (dev mode).
    #[arg(long, default_value_t = 30)]
    dev_blocks_per_week: u64,
    /// HTTP address for the page, /health, /metrics and the JSON API.
    #[arg(long, env = "PROTOBLOCK_HTTP_LISTEN", default_value = "127.0.0.1:8080")]
    http_listen: std::net::SocketAddr,
    /// Seconds an HTTP request (its body included) may take before it is
    /// answered 408: a client that never finishes sending holds no slot
    /// for longer.
    #[arg(long, env = "PROTOBLOCK_HTTP_REQUEST_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    http_request_timeout_secs: u64,
    /// Folder served at `/`.
    #[arg(long, env = "PROTOBLOCK_WWW_DIR", default_value = "www")]
    www_dir: PathBuf,
    /// ICE servers handed to browsers besides the relay's own STUN: `stun:host:port`, or TURN with
    /// credentials `turn:user:pass@host:port` (sent to browsers as username/credential).
    #[arg(long, env = "PROTOBLOCK_ICE_SERVERS", value_delimiter = ',')]
    ice_servers: Vec<String>,
    /// Circuit relay v2: reservations held at once.
    #[arg(long, env = "PROTOBLOCK_RELAY_MAX_RESERVATIONS", default_value_t = 1024)]
    relay_max_reservations: usize,
    /// Circuit relay v2: circuits open at once.
    #[arg(long, env = "PROTOBLOCK_RELAY_MAX_CIRCUITS", default_value_t = 512)]
    relay_max_circuits: usize,
    /// Circuit relay v2: longest life of one circuit, in seconds.
    #[arg(long, env = "PROTOBLOCK_RELAY_MAX_CIRCUIT_SECS", default_value_t = 1800)]
    relay_max_circuit_secs: u64,
    /// Circuit relay v2: most bytes one circuit may carry.
    #[arg(long, env = "PROTOBLOCK_RELAY_MAX_CIRCUIT_BYTES", default_value_t = 256 << 20)]
    relay_max_circuit_bytes: u64,
    /// Connections held at once. When full, a newcomer takes the place of
    /// the oldest connection that has neither passed the status handshake
    /// within a few seconds nor uses the relay as a relay.
    #[arg(long, env = "PROTOBLOCK_MAX_CONNECTIONS", default_value_t = 4096)]
    max_connections: usize,
    /// Connections from one IP address (loopback is exempt: a local reverse
    /// proxy shows every browser as 127.0.0.1).
    #[arg(long, env = "PROTOBLOCK_MAX_CONNECTIONS_PER_IP", default_value_t = 32)]
    max_connections_per_ip: usize,
    /// Do not answer block-range requests (peers must sync from each other).
    /// A dev relay can also switch this at run time: `POST /api/dev/serve-sync`.
    #[arg(long, env = "PROTOBLOCK_NO_SERVE_SYNC")]
    no_serve_sync: bool,
    /// Keep only the newest this many blocks in the store (0 = every block:
    /// an archive, what a relay is by default, since browsers keep only a
    /// window and sync older ranges from archives).
    #[arg(long, env = "PROTOBLOCK_RETAIN_BLOCKS", default_value_t = 0)]
    retain_blocks: u64,
    /// Test hook: serve blocks with a broken signature, to test that peers
    /// refuse and ban a lying node. Never use it on a real relay.
    #[cfg(feature = "test-hooks")]
    #[arg(long, hide = true)]
    serve_tampered_blocks: bool,
    /// Stop after the head reaches this height (0 = run until signalled).
    #[arg(long, env = "PROTOBLOCK_STOP_AT_HEIGHT", default_value_t = 0)]
    stop_at_height: u64,
    /// TLS certificate chain (PEM, leaf first) for https on --http-listen
    /// and for `/tls/ws` (wss) listen addresses: an https page can open
    /// only wss. Read at start: restart after renewing.
    #[arg(long, env = "PROTOBLOCK_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM: PKCS#8, PKCS#1 or SEC1) for --tls-cert.
    #[arg(long, env = "PROTOBLOCK_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Print the settings a start would use (the command line, the
    /// environment and `--config` resolved) and exit.
    #[arg(long)]
    check_config: bool,
    /// Dev mode: do not produce blocks. A browser given the dev oracle key
    /// (`GET /api/dev/oracle-key`) produces instead; the mesh tests use it.
    #[arg(long)]
    no_produce: bool,
}

/// Writes a secret (a key, or what a key derives from) readable by its owner
/// only: the file is made with mode 0600, never written first and narrowed
/// after, and never over an existing one.
fn write_secret(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).with_context(|| format!("writing {}", path.display()))
}

/// A secret file that others may read (written by a version before the
/// files were made 0600) is narrowed to its owner, and the operator told.
fn owner_only(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::metadata(path) {
            Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("narrowing {} to mode 0600", path.display()))?;
                tracing::warn!(file = %path.display(), "a secret file others could read is now mode 0600");
            }
            _ => {}
        }
    }
    Ok(())
}

/// The dev network seed, made once from the OS RNG and kept in the data dir
/// so restarts resume the same chain. The dev oracle key derives from it: dev
/// mode only, never for a real chain.
fn dev_seed(dir: &Path) -> Result<u64> {
    let path = dir.join("dev-seed");
    owner_only(&path)?;
    match std::fs::read_to_string(&path) {
        Ok(s) => s.trim().parse().with_context(|| format!("{} is not a number", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let seed: u64 = rand::random::<u64>() >> 1;
            write_secret(&path, seed.to_string().as_bytes())?;
            Ok(seed)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The node's libp2p identity, kept so its peer id (and multiaddr) survive restarts.
fn node_key(dir: &Path) -> Result<identity::Keypair> {
    let path = dir.join("node.key");
    owner_only(&path)?;
    match std::fs::read(&path) {
        Ok(bytes) => identity::Keypair::from_protobuf_encoding(&bytes).context("node.key is not a libp2p key"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = identity::Keypair::generate_ed25519();
            let bytes = key.to_protobuf_encoding().context("encoding node key")?;
            write_secret(&path, &bytes)?;
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Parses the command line, filling in settings from `--config` where
/// neither the command line nor the environment gives them.
fn parse_args() -> Result<Args> {
    use clap::CommandFactory;
    let cli: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let path = cli
        .iter()
        .position(|a| a == "--config")
        .and_then(|i| cli.get(i + 1).map(PathBuf::from))
        .or_else(|| cli.iter().find_map(|a| a.to_str()?.strip_prefix("--config=").map(PathBuf::from)))
        .or_else(|| std::env::var_os("PROTOBLOCK_CONFIG").map(PathBuf::from));
    let Some(path) = path else { return Ok(Args::parse()) };
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading config {}", path.display()))?;
    let table: toml::Table = text.parse().with_context(|| format!("config {} is not valid TOML", path.display()))?;
    let cmd = Args::command();
    let mut argv = vec![cli.first().cloned().unwrap_or_else(|| "protoblock-relay".into())];
    for (key, value) in table {
        let flag = key.replace('_', "-");
        let Some(arg) = cmd.get_arguments().find(|a| a.get_long() == Some(flag.as_str())) else {
            bail!("config {}: unknown setting `{key}`", path.display());
        };
        if arg.get_env().is_some_and(|e| std::env::var_os(e).is_some()) {
            continue; // the environment wins over the file
        }
        let text = |v: &toml::Value| match v {
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Integer(i) => Ok(i.to_string()),
            toml::Value::Float(f) => Ok(f.to_string()),
            other => Err(anyhow::anyhow!("config {}: `{key}` has an unsupported value {other}", path.display())),
        };
        match &value {
            toml::Value::Boolean(true) => argv.push(format!("--{flag}").into()),
            toml::Value::Boolean(false) => {}
            toml::Value::Array(items) => {
                let joined = items.iter().map(text).collect::<Result<Vec<_>>>()?.join(",");
                argv.push(format!("--{flag}").into());
                argv.push(joined.into());
            }
            v => {
                argv.push(format!("--{flag}").into());
                argv.push(text(v)?.into());
            }
        }
    }
    argv.extend(cli.into_iter().skip(1));
    Ok(Args::try_parse_from(argv).unwrap_or_else(|e| e.exit()))
}

/// The WebRTC certificate, kept so the relay's certhash (part of its
/// `/webrtc-direct` multiaddr) survives restarts.
fn webrtc_cert(dir: &Path) -> Result<WebRtcCertificate> {
    let path = dir.join("webrtc.pem");
    owner_only(&path)?;
    match std::fs::read_to_string(&path) {
        Ok(pem) => WebRtcCertificate::from_pem(&pem).map_err(|e| anyhow::anyhow!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let cert = WebRtcCertificate::generate(&mut rand_010::rng()).map_err(|e| anyhow::anyhow!("{e}"))?;
            write_secret(&path, cert.serialize_pem().as_bytes())?;
            Ok(cert)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// mimalloc rather than glibc's malloc: a long-running server doing many small
/// short-lived allocations (libp2p buffers, block decoding, state writes) from
/// several threads, where glibc's per-thread arenas fragment (the chain
/// benchmark uses it too, so it measures what the relay runs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    // rustls has both ring and aws-lc-rs in this tree (QUIC pulls the
    // latter); without a process default, WebRTC's DTLS setup panics.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = parse_args()?;
    if args.block_interval_ms == 0 {
        bail!("--block-interval-ms must be positive");
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls::TlsFiles::load(cert, key)?),
        _ => None,
    };
    if tls.is_none()
        && let Some(a) = args.listen.iter().find(|a| a.iter().any(|p| matches!(p, libp2p::multiaddr::Protocol::Tls)))
    {
        bail!("listening on {a} (wss) needs --tls-cert and --tls-key");
    }
    if args.check_config {
        // What a start would use, after the command line, the environment and the file.
        println!("{args:#?}");
        return Ok(());
    }
    std::fs::create_dir_all(&args.data_dir).with_context(|| format!("creating {}", args.data_dir.display()))?;
    let (genesis, dev) = if args.dev {
        let seed = dev_seed(&args.data_dir)?;
        let net = DevNet::new(seed, args.dev_users.max(1));
        std::fs::write(args.data_dir.join("genesis.pb"), &net.genesis.bytes).context("writing genesis.pb")?;
        (net.genesis.clone(), Some((net, seed)))
    } else {
        let Some(path) = &args.genesis else {
            bail!("either --dev or --genesis <file> is required (a dev relay writes <data-dir>/genesis.pb)");
        };
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        (Genesis::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?, None)
    };

    let store = Arc::new(RedbStore::open(args.data_dir.join("chain.redb")).context("opening chain database")?);
    let mut chain = open_chain(&store, genesis.clone(), ChainLimits::default()).await.context("resuming the chain")?;
    if let Some((net, _)) = &dev
        && chain.head().height == 0
        && args.dev_history > 0
    {
        let t = std::time::Instant::now();
        let blocks = generate_chain(net, args.dev_history, args.dev_txs_per_block);
        for run in blocks.chunks(256) {
            let mut batch = protoblock_core::WriteBatch::default();
            for b in run {
                let update = chain.insert_block(b, protoblock_net::node::now_ms()).context("dev history block")?;
                batch.merge(update.batch.context("dev history block not placed")?);
            }
            store.commit(batch).await.context("committing dev history")?;
        }
        println!("dev history {} blocks in {} ms", args.dev_history, t.elapsed().as_millis());
    }
    let start_height = chain.head().height;
    let params = genesis.params.clone();
    let key = node_key(&args.data_dir)?;
    let peer_id = key.public().to_peer_id();
    let relay_limits = RelayLimits {
        max_reservations: args.relay_max_reservations,
        max_circuits: args.relay_max_circuits,
        max_circuit_duration: std::time::Duration::from_secs(args.relay_max_circuit_secs),
        max_circuit_bytes: args.relay_max_circuit_bytes,
        ..RelayLimits::default()
    };
    let mut role = Role::public_relay(relay_limits);
    role.admission.max_connections = args.max_connections;
    role.admission.max_per_ip = args.max_connections_per_ip;
    let registry = Arc::new(std::sync::Mutex::new(prometheus_client::registry::Registry::default()));
    let cert = webrtc_cert(&args.data_dir)?;
    let mut swarm =
        build_server_swarm(key, cert, tls.as_ref().map(|t| t.websocket()).transpose()?, params.max_block_bytes, &role)
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
    for addr in &args.listen {
        swarm.listen_on(addr.clone()).with_context(|| format!("listening on {addr}"))?;
    }
    let cfg = NodeConfig {
        bootstrap: args.bootstrap.clone(),
        producer_key: dev.as_ref().filter(|_| !args.no_produce).map(|(net, _)| net.oracle.clone()),
        block_interval_ms: args.block_interval_ms,
        // The relay serves reservations only with an external address (a
        // libp2p trap): announce what it listens on.
        advertise_listen_addrs: args.external_address.is_empty(),
        external_addrs: args.external_address.clone(),
        serve_sync: !args.no_serve_sync,
        retain_blocks: (args.retain_blocks > 0).then_some(args.retain_blocks),
        // Slower to give up on a client than a browser is on its relay (see
        // NodeConfig::dead_after_pings).
        dead_after_pings: RELAY_DEAD_AFTER_PINGS,
        metrics: Some(registry.clone()),
        #[cfg(feature = "test-hooks")]
        serve_tampered_blocks: args.serve_tampered_blocks,
        ..NodeConfig::default()
    };
    let (mut node, handle, mut events) = Node::new(swarm, chain, store.clone(), cfg).map_err(|e| anyhow::anyhow!(e))?;
    // The dev oracle seed derives from the dev seed in the data dir: a test fixture, never a real key.
    let dev_oracle_seed = dev.as_ref().map(|(net, _)| hex::encode(net.oracle.to_bytes()));
    if let Some((net, seed)) = dev {
        let mut rng = SplitMix64(seed ^ start_height);
        let (per_block, bpw) = (args.dev_txs_per_block, args.dev_blocks_per_week);
        node = node.with_tx_source(Box::new(move |chain, height, now| {
            let mut txs = Vec::new();
            if let Some(body) = season_feed(&net, chain, height, bpw) {
                txs.push(sign_transaction(&net.oracle, &net.genesis.hash, now * 1_000_000, body));
            }
            txs.extend(user_txs(&net, chain, now, per_block, &mut rng));
            txs
        }));
    }
    tracing::info!(chain_id = %genesis.chain_id, genesis = %genesis.hash, %peer_id, height = start_height, "node ready");
    let task = tokio::spawn(node.run());

    let mut ice_servers = Vec::new();
    if args.stun_listen != "off" {
        let addr: std::net::SocketAddr = args.stun_listen.parse().context("--stun-listen: an ip:port or \"off\"")?;
        let socket = tokio::net::UdpSocket::bind(addr).await.with_context(|| format!("binding STUN on {addr}"))?;
        let local = socket.local_addr()?;
        println!("stun {local}");
        if !local.ip().is_unspecified() {
            ice_servers.push(IceServer { url: format!("stun:{local}"), username: None, credential: None });
        }
        tokio::spawn(stun::serve(socket));
    }
    for s in &args.ice_servers {
        ice_servers.push(IceServer::parse(s).map_err(|e| anyhow::anyhow!("--ice-servers: {e}"))?);
    }
    let http_state = http::HttpState {
        node: handle.clone(),
        store: store.clone(),
        ice_servers,
        started_ms: protoblock_net::node::now_ms(),
        rate: Arc::new(http::RateSampler::default()),
        genesis_bytes: Arc::new(genesis.bytes.to_vec()),
        dev_api: args.dev,
        dev_oracle_seed,
        expected_listen: args.listen.len(),
        metrics: registry.clone(),
    };
    if let Ok(mut registry) = registry.lock() {
        registry.register_collector(Box::new(metrics::ChainCollector {
            node: handle.clone(),
            rate: http_state.rate.clone(),
        }));
    }
    let listener = std::net::TcpListener::bind(args.http_listen)
        .with_context(|| format!("binding HTTP on {}", args.http_listen))?;
    listener.set_nonblocking(true)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("http {scheme}://{}", listener.local_addr()?);
    let (rate, sampler_handle) = (http_state.rate.clone(), handle.clone());
    tokio::spawn(async move {
        loop {
            if let Some(st) = sampler_handle.status().await {
                rate.sample(st.head_height);
            }
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        }
    });
    let app =
        http::router(http_state, args.www_dir.clone(), std::time::Duration::from_secs(args.http_request_timeout_secs));
    // HTTP runs on a thread and runtime of its own: `/health` must answer
    // when the node's runtime is saturated (a thousand peers' connections)
    // or its loop is stuck, which is what it reports.
    std::thread::Builder::new().name("http".into()).spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => return tracing::error!(error = %e, "cannot start the HTTP runtime"),
        };
        rt.block_on(async move {
            let listener = match tokio::net::TcpListener::from_std(listener) {
                Ok(l) => l,
                Err(e) => return tracing::error!(error = %e, "HTTP listener"),
            };
            let served = match tls {
                Some(files) => match tls::HttpsListener::new(listener, &files) {
                    Ok(l) => axum::serve(l, app).await,
                    Err(e) => return tracing::error!(error = %e, "https listener"),
                },
                None => axum::serve(listener, app).await,
            };
            if let Err(e) = served {
                tracing::error!(error = %e, "HTTP server stopped");
            }
        });
    })?;
    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        tokio::select! {
            ev = events.next() => match ev {
                Some(NodeEvent::NewHead { height, id, txs }) => {
                    let txs = txs.len();
                    println!("height {height} id {id} txs {txs} final {}", height.saturating_sub(params.finality_depth));
                    if args.stop_at_height > 0 && height >= args.stop_at_height {
                        break;
                    }
                }
                Some(NodeEvent::Listening { addr }) => println!("listening {}", addr.with_p2p(peer_id).unwrap_or_else(|a| a)),
                Some(NodeEvent::PeerUp { peer }) => tracing::info!(%peer, "peer up"),
                Some(NodeEvent::PeerDown { peer }) => tracing::info!(%peer, "peer down"),
                Some(NodeEvent::PeerIncompatible { peer, reason }) => tracing::warn!(%peer, %reason, "peer on another chain or protocol"),
                Some(NodeEvent::PeerBanned { peer, reason }) => tracing::warn!(%peer, %reason, "peer banned"),
                // The relay keeps serving what it stored; /health says unhealthy (503)
                // so a supervisor restarts it, and a restart resumes from the last durable head.
                Some(NodeEvent::StoreFailed { error }) => tracing::error!(%error, "store commit failed: no longer placing or producing blocks"),
                Some(
                    NodeEvent::TxAccepted { .. }
                    | NodeEvent::Discovered { .. }
                    | NodeEvent::SyncProgress { .. }
                    | NodeEvent::Reachable { .. },
                ) => {}
                None => bail!("node stopped unexpectedly"),
            },
            _ = &mut shutdown => {
                tracing::info!("signal received");
                break;
            }
        }
    }
    // Every block is committed before its NewHead event: stopping here loses nothing.
    handle.shutdown().await;
    let _ = task.await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
