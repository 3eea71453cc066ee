//! `protoblock-relay`: the relay/bootstrap server and full node.
//!
//! For now (foundation issue) it runs a local dev chain: it makes or loads a
//! dev network, produces blocks on a timer from its mempool, feeds it the
//! scripted season and simulated users, and commits every block to a redb
//! file, printing the head as it grows. The network issue adds the libp2p
//! relay, listeners, STUN and HTTP around the same loop.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::Parser;
use protoblock_core::ChainParams;
use protoblock_core::devnet::{DevNet, SplitMix64, season_feed, sign_transaction, user_txs};
use protoblock_core::mempool::{Mempool, MempoolConfig};
use protoblock_core::producer::produce_block;
use protoblock_store::{RedbStore, Store, open_chain};

#[derive(Parser, Debug)]
#[command(name = "protoblock-relay", version, about = "Protoblock relay server and full node")]
struct Args {
    /// Run a self-contained dev chain: make or load a dev genesis and oracle
    /// key, and produce blocks on a timer with a simulated season.
    #[arg(long)]
    dev: bool,
    /// Where the chain database and dev keys live.
    #[arg(long, env = "PROTOBLOCK_DATA_DIR", default_value = "data/dev")]
    data_dir: PathBuf,
    /// Milliseconds between produced blocks.
    #[arg(long, env = "PROTOBLOCK_BLOCK_INTERVAL_MS", default_value_t = 2000)]
    block_interval_ms: u64,
    /// Simulated users submitting transactions (dev mode).
    #[arg(long, default_value_t = 50)]
    dev_users: usize,
    /// Simulated user transactions per block (dev mode).
    #[arg(long, default_value_t = 8)]
    dev_txs_per_block: usize,
    /// Blocks per simulated week (dev mode).
    #[arg(long, default_value_t = 30)]
    dev_blocks_per_week: u64,
    /// Stop after the head reaches this height (0 = run until signalled).
    #[arg(long, default_value_t = 0)]
    stop_at_height: u64,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The dev network seed, made once from the OS RNG and kept in the data dir
/// so restarts resume the same chain. The dev oracle key derives from it: dev
/// mode only, never for a real chain.
fn dev_seed(dir: &std::path::Path) -> Result<u64> {
    let path = dir.join("dev-seed");
    match std::fs::read_to_string(&path) {
        Ok(s) => s.trim().parse().with_context(|| format!("{} is not a number", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let seed: u64 = rand::random::<u64>() >> 1;
            std::fs::write(&path, seed.to_string()).with_context(|| format!("writing {}", path.display()))?;
            Ok(seed)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    if !args.dev {
        bail!("only --dev is implemented so far: the network layer comes with the relay issue");
    }
    if args.block_interval_ms == 0 {
        bail!("--block-interval-ms must be positive");
    }
    std::fs::create_dir_all(&args.data_dir).with_context(|| format!("creating {}", args.data_dir.display()))?;
    let seed = dev_seed(&args.data_dir)?;
    let net = DevNet::new(seed, args.dev_users.max(1));
    let store = RedbStore::open(args.data_dir.join("chain.redb")).context("opening chain database")?;
    let params = ChainParams::default();
    let mut chain = open_chain(&store, net.genesis.clone(), params).await.context("resuming the chain")?;
    tracing::info!(
        chain_id = %net.genesis.chain_id,
        genesis = %net.genesis.hash,
        height = chain.head().height,
        data_dir = %args.data_dir.display(),
        "dev chain ready"
    );
    let mut mempool = Mempool::new(MempoolConfig::default());
    let mut rng = SplitMix64(seed ^ chain.head().height);
    let mut tick = tokio::time::interval(Duration::from_millis(args.block_interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut shutdown => {
                tracing::info!(height = chain.head().height, "shutting down; every produced block is committed");
                return Ok(());
            }
        }
        let now = now_ms().max(chain.head().timestamp_ms + 1);
        let height = chain.head().height + 1;
        if let Some(body) = season_feed(&net, &chain, height, args.dev_blocks_per_week) {
            let tx = sign_transaction(&net.oracle, &net.genesis.hash, now * 1_000_000, body);
            if let Err(e) = mempool.insert(&tx, &chain, now) {
                tracing::warn!(error = %e, "oracle data tx refused");
            }
        }
        for tx in user_txs(&net, &chain, now, args.dev_txs_per_block, &mut rng) {
            // Simulated users sometimes race each other (a name taken twice);
            // the mempool refusing those is the point of having one.
            let _ = mempool.insert(&tx, &chain, now);
        }
        let produced = produce_block(&chain, mempool.iter().map(|p| (&p.bytes[..], &p.tx)), &net.oracle, now)
            .context("producing a block")?;
        let update = chain.insert_block(&produced.bytes, now).context("own block refused")?;
        if let Some(batch) = update.batch {
            store.commit(batch).await.context("committing block")?;
        }
        mempool.rebuild(&chain, now);
        let head = chain.head();
        println!("height {} id {} txs {} final {}", head.height, head.id, produced.tx_ids.len(), chain.final_height());
        if args.stop_at_height > 0 && head.height >= args.stop_at_height {
            return Ok(());
        }
    }
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
