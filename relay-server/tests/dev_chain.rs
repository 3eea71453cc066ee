//! The real relay binary: --dev produces a chain into a redb file and
//! resumes it after a restart; a second node joins over TCP and syncs.

use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout, Command, Stdio};

use futures::executor::block_on;
use protoblock_core::ChainLimits;
use protoblock_store::{RedbStore, Store};

const BIN: &str = env!("CARGO_BIN_EXE_protoblock-relay");

fn run(dir: &std::path::Path, stop_at: u64) -> String {
    let out = Command::new(BIN)
        .args(["--dev", "--block-interval-ms", "30", "--dev-blocks-per-week", "8", "--listen", "/ip4/127.0.0.1/tcp/0"])
        .args(["--http-listen", "127.0.0.1:0", "--stun-listen", "off"])
        .args(["--stop-at-height", &stop_at.to_string()])
        .arg("--data-dir")
        .arg(dir)
        .env("RUST_LOG", "warn")
        .output()
        .expect("relay runs");
    assert!(out.status.success(), "relay failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A `--dev` relay command on loopback with a random HTTP port, its stdout
/// piped; callers add listeners and STUN.
fn dev_command(dir: &std::path::Path, interval_ms: u64) -> Command {
    let mut c = Command::new(BIN);
    c.args(["--dev", "--block-interval-ms", &interval_ms.to_string(), "--http-listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped());
    c
}

/// A `--dev` relay on loopback TCP with its stdout lines (after the first
/// `listening` one, whose address is returned).
fn spawn_dev(dir: &std::path::Path, interval_ms: u64) -> (Child, String, Lines<BufReader<ChildStdout>>) {
    let mut child = dev_command(dir, interval_ms)
        .args(["--listen", "/ip4/127.0.0.1/tcp/0", "--stun-listen", "off"])
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr =
        lines.by_ref().map_while(Result::ok).find_map(|l| l.strip_prefix("listening ").map(str::to_string)).unwrap();
    (child, addr, lines)
}

fn heights(out: &str) -> Vec<u64> {
    out.lines().filter(|l| l.starts_with("height ")).filter_map(|l| l.split_whitespace().nth(1)?.parse().ok()).collect()
}

#[test]
fn dev_relay_produces_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let first = run(dir.path(), 12);
    assert_eq!(heights(&first), (1..=12).collect::<Vec<_>>(), "one line per produced block");
    let txs: u64 = first
        .lines()
        .filter(|l| l.starts_with("height "))
        .filter_map(|l| l.split_whitespace().nth(5)?.parse::<u64>().ok())
        .sum();
    assert!(txs > 12, "blocks carry user and oracle txs: {txs}");

    // Restart: it resumes at 13 from the same file, same genesis, same peer id.
    let peer_line =
        |out: &str| out.lines().find(|l| l.starts_with("listening")).map(|l| l.rsplit('/').next().unwrap().to_string());
    let second = run(dir.path(), 15);
    assert_eq!(heights(&second).first(), Some(&13), "{second}");
    assert_eq!(peer_line(&first), peer_line(&second), "the node keeps its identity");

    let store = RedbStore::open(dir.path().join("chain.redb")).unwrap();
    let head = block_on(store.head()).unwrap().unwrap();
    assert!(head.height >= 15);
    let blocks = block_on(store.blocks_range(1, 100, usize::MAX)).unwrap();
    assert_eq!(blocks.len() as u64, head.height);
}

#[test]
fn a_second_node_joins_the_dev_relay_and_syncs() {
    let dev_dir = tempfile::tempdir().unwrap();
    let (mut relay, addr, mut lines) = spawn_dev(dev_dir.path(), 50);
    // Let it build a few blocks first, so the joiner has something to sync.
    let _ = lines.by_ref().map_while(Result::ok).find(|l| l.starts_with("height 20 "));

    let join_dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["--bootstrap", &addr, "--listen", "/ip4/127.0.0.1/tcp/0", "--stop-at-height", "30"])
        .args(["--http-listen", "127.0.0.1:0", "--stun-listen", "off"])
        .arg("--genesis")
        .arg(dev_dir.path().join("genesis.pb"))
        .arg("--data-dir")
        .arg(join_dir.path())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    relay.kill().unwrap();
    relay.wait().unwrap();
    assert!(out.status.success(), "joiner failed: {}", String::from_utf8_lossy(&out.stderr));
    let joined = String::from_utf8(out.stdout).unwrap();
    let hs = heights(&joined);
    assert!(hs.contains(&1) && hs.iter().any(|h| *h >= 30), "the joiner synced from height 1: {joined}");
}

#[test]
fn bad_config_is_a_clear_error() {
    let out = Command::new(BIN).args(["--dev", "--block-interval-ms", "0"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--block-interval-ms must be positive"));
    let out = Command::new(BIN).args(["--dev", "--block-interval-ms", "x"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value"));
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN).arg("--data-dir").arg(dir.path()).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--genesis"), "{}", String::from_utf8_lossy(&out.stderr));
}

struct Relay {
    child: std::process::Child,
    http: String,
    stun: String,
    genesis: std::path::PathBuf,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_dev_relay(dir: &std::path::Path, interval_ms: u64) -> Relay {
    let www = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../www");
    let mut child = dev_command(dir, interval_ms)
        .args([
            "--ice-servers",
            "stun:stun.example.org:3478,turn:alice:s3cret@turn.example.org:3478?transport=udp",
            "--stun-listen",
            "127.0.0.1:0",
        ])
        .args([
            "--listen",
            "/ip4/127.0.0.1/tcp/0,/ip4/127.0.0.1/udp/0/quic-v1,/ip4/127.0.0.1/tcp/0/ws,/ip4/127.0.0.1/udp/0/webrtc-direct",
        ])
        .arg("--www-dir")
        .arg(&www)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let stun = lines.by_ref().map_while(Result::ok).find_map(|l| l.strip_prefix("stun ").map(str::to_string)).unwrap();
    let http = lines.by_ref().map_while(Result::ok).find_map(|l| l.strip_prefix("http ").map(str::to_string)).unwrap();
    // Keep draining so the relay never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
    let genesis = dir.join("genesis.pb");
    Relay { child, http, stun, genesis }
}

fn get_json(url: &str) -> (u16, serde_json::Value) {
    let r = reqwest::blocking::get(url).unwrap();
    let code = r.status().as_u16();
    (code, r.json().unwrap_or(serde_json::Value::Null))
}

#[test]
fn http_api_health_metrics_blocks_and_tx_submission() {
    use prost::Message;
    let dir = tempfile::tempdir().unwrap();
    let relay = start_dev_relay(dir.path(), 100);
    let base = &relay.http;
    // Wait for a few blocks.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (code, v) = get_json(&format!("{base}/health"));
        if code == 200 && v["height"].as_u64().unwrap_or(0) >= 3 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "relay never reached height 3");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (code, status) = get_json(&format!("{base}/api/status"));
    assert_eq!(code, 200);
    let genesis_bytes = std::fs::read(&relay.genesis).unwrap();
    let genesis = protoblock_core::Genesis::from_bytes(&genesis_bytes).unwrap();
    assert_eq!(status["genesis"], genesis.hash.to_hex());

    let (code, boot) = get_json(&format!("{base}/api/bootstrap"));
    assert_eq!(code, 200);
    let addrs = boot["multiaddrs"].as_array().unwrap();
    assert!(addrs.iter().any(|a| a.as_str().unwrap().contains("/tcp/") && a.as_str().unwrap().contains("/p2p/12D3")));
    assert_eq!(boot["ice_servers"][0]["urls"], format!("stun:{}", relay.stun), "the relay's own STUN first");
    assert_eq!(boot["ice_servers"][1]["urls"], "stun:stun.example.org:3478", "then configured ones");
    // TURN credentials leave the URL and travel as RTCIceServer's username/credential.
    assert_eq!(boot["ice_servers"][2]["urls"], "turn:turn.example.org:3478?transport=udp");
    assert_eq!(boot["ice_servers"][2]["username"], "alice");
    assert_eq!(boot["ice_servers"][2]["credential"], "s3cret");
    assert!(boot["ice_servers"][1].get("username").is_none());

    let (code, b1) = get_json(&format!("{base}/api/blocks/1"));
    assert_eq!(code, 200);
    assert_eq!(b1["height"], 1);
    let id = b1["id"].as_str().unwrap().to_string();
    let (code, by_id) = get_json(&format!("{base}/api/blocks/{id}"));
    assert_eq!((code, by_id["height"].as_u64()), (200, Some(1)));
    assert_eq!(get_json(&format!("{base}/api/blocks/999999")).0, 404);
    // The raw encoding: what the id is computed over (sha256 of its header bytes).
    let raw = reqwest::blocking::get(format!("{base}/api/blocks/{id}/raw")).unwrap();
    assert_eq!(raw.headers()["content-type"], "application/octet-stream");
    let raw = raw.bytes().unwrap();
    let decoded = protoblock_core::proto::v1::Block::decode(raw.as_ref()).expect("raw block decodes");
    assert_eq!(protoblock_core::hash::sha256(&decoded.header).to_hex(), id);
    assert_eq!(reqwest::blocking::get(format!("{base}/api/blocks/999999/raw")).unwrap().status(), 404);
    assert_eq!(get_json(&format!("{base}/api/blocks/nonsense")).0, 400);

    let metrics = reqwest::blocking::get(format!("{base}/metrics")).unwrap().text().unwrap();
    let head: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("protoblock_head_height "))
        .and_then(|v| v.parse().ok())
        .expect("head gauge");
    assert!(head >= 3.0, "{metrics}");
    // OpenMetrics: a counter's TYPE line names it without `_total`; its sample keeps the old name.
    assert!(metrics.contains("# TYPE protoblock_gossip_rejected counter"), "{metrics}");
    assert!(metrics.lines().any(|l| l.starts_with("protoblock_gossip_rejected_total ")), "{metrics}");
    // libp2p's recorders and the store's commit latency are in the same registry.
    for family in [
        "libp2p_swarm_new_listen_addr",
        "libp2p_identify",
        "libp2p_ping_rtt",
        "libp2p_gossipsub_messages",
        "libp2p_relay_events",
        "protoblock_store_commit_seconds_bucket",
    ] {
        assert!(metrics.contains(family), "{family} in {metrics}");
    }
    assert!(metrics.trim_end().ends_with("# EOF"), "{metrics}");

    // A valid tx is accepted; duplicates, garbage and oversized bodies get clear errors.
    let key = protoblock_core::crypto::signing_key_from_seed(&[5; 32]);
    let now_ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let tx = protoblock_devnet::sign_transaction(
        &key,
        &genesis.hash,
        now_ns,
        protoblock_core::proto::v1::transaction::Body::Name(protoblock_core::proto::v1::NameRegistration {
            fantasy_name: "http-coach".into(),
        }),
    );
    let client = reqwest::blocking::Client::new();
    let r = client.post(format!("{base}/api/tx")).body(tx.clone()).send().unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let tx_id: serde_json::Value = r.json().unwrap();
    let st = protoblock_core::proto::v1::SignedTransaction::decode(tx.as_slice()).unwrap();
    assert_eq!(tx_id["id"], protoblock_core::hash::sha256(&st.tx).to_hex());
    let r = client.post(format!("{base}/api/tx")).body(tx).send().unwrap();
    assert_eq!(r.status().as_u16(), 422, "a duplicate is refused");
    let e: serde_json::Value = r.json().unwrap();
    assert_eq!((e["kind"].as_str(), e["rule"].as_str()), (Some("duplicate"), None), "{e}");
    let r = client.post(format!("{base}/api/tx")).body(vec![0xff; 40]).send().unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let e: serde_json::Value = r.json().unwrap();
    assert!(e["error"].as_str().unwrap().contains("malformed"), "{e}");
    // Programs read the kind and the rule, not the message.
    assert_eq!((e["kind"].as_str(), e["rule"].as_str()), (Some("invalid"), Some("malformed")), "{e}");
    let r = client.post(format!("{base}/api/tx")).body(vec![0u8; 200 * 1024]).send().unwrap();
    assert_eq!(r.status().as_u16(), 413, "oversized body refused");

    // The page is served at /.
    let page = reqwest::blocking::get(format!("{base}/")).unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().unwrap().contains("Protoblock"));
}

fn bootstrap_addrs(relay: &Relay) -> Vec<String> {
    let (code, boot) = get_json(&format!("{}/api/bootstrap", relay.http));
    assert_eq!(code, 200);
    boot["multiaddrs"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect()
}

#[test]
fn browser_transports_are_announced_and_the_certhash_survives_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let certhash = |addrs: &[String]| {
        addrs
            .iter()
            .find(|a| a.contains("/webrtc-direct/certhash/"))
            .map(|a| a.split("/certhash/").nth(1).unwrap().split('/').next().unwrap().to_string())
    };
    let wait_addrs = |relay: &Relay| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let addrs = bootstrap_addrs(relay);
            if addrs.len() >= 4 {
                return addrs;
            }
            assert!(std::time::Instant::now() < deadline, "listeners never came up: {addrs:?}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    let first = {
        let relay = start_dev_relay(dir.path(), 500);
        let addrs = wait_addrs(&relay);
        assert!(
            addrs
                .iter()
                .any(|a| a.contains("/tcp/") && a.ends_with(&format!("/p2p/{}", a.rsplit('/').next().unwrap())))
        );
        assert!(addrs.iter().any(|a| a.contains("/quic-v1/")), "{addrs:?}");
        assert!(addrs.iter().any(|a| a.contains("/ws/")), "{addrs:?}");
        certhash(&addrs).expect("a /webrtc-direct address with its certhash")
    };
    let relay = start_dev_relay(dir.path(), 500);
    let again = certhash(&wait_addrs(&relay)).unwrap();
    assert_eq!(first, again, "the WebRTC certificate is persisted");
}

#[test]
fn stun_binding_requests_get_the_senders_address() {
    use stun::message::{BINDING_REQUEST, BINDING_SUCCESS, Getter, Message, Setter};
    let dir = tempfile::tempdir().unwrap();
    let relay = start_dev_relay(dir.path(), 500);
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    let mut req = Message::new();
    let setters: Vec<Box<dyn Setter>> = vec![Box::new(BINDING_REQUEST), Box::new(stun::agent::TransactionId::new())];
    req.build(&setters).unwrap();
    // Garbage first: it must be ignored, not crash the responder.
    sock.send_to(b"\x00\x01garbage", &relay.stun).unwrap();
    sock.send_to(&req.raw, &relay.stun).unwrap();
    let mut buf = [0u8; 1500];
    let (n, _) = sock.recv_from(&mut buf).expect("a STUN answer");
    let mut resp = Message::new();
    resp.unmarshal_binary(&buf[..n]).unwrap();
    assert_eq!(resp.typ, BINDING_SUCCESS);
    assert_eq!(resp.transaction_id, req.transaction_id);
    let mut x = stun::xoraddr::XorMappedAddress::default();
    x.get_from(&resp).unwrap();
    let me = sock.local_addr().unwrap();
    assert_eq!((x.ip, x.port), (me.ip(), me.port()));
}

#[test]
fn config_file_with_environment_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("relay.toml");
    std::fs::write(
        &cfg,
        format!(
            "dev = true\nblock_interval_ms = 20\nstop_at_height = 50\nhttp_listen = \"127.0.0.1:0\"\nstun_listen = \"off\"\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\ndata_dir = \"{}\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    // The environment beats the file: stop at 4, not 50.
    let out = Command::new(BIN)
        .args(["--config", cfg.to_str().unwrap()])
        .env("PROTOBLOCK_STOP_AT_HEIGHT", "4")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(heights(&String::from_utf8(out.stdout).unwrap()), vec![1, 2, 3, 4]);
    // And the command line beats both.
    let out = Command::new(BIN)
        .args(["--config", cfg.to_str().unwrap(), "--stop-at-height", "6"])
        .env("PROTOBLOCK_STOP_AT_HEIGHT", "4")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(heights(&String::from_utf8(out.stdout).unwrap()), vec![5, 6]);
    // A typo in the file is a clear error.
    std::fs::write(&cfg, "block_intervall_ms = 5\n").unwrap();
    let out = Command::new(BIN).args(["--config", cfg.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown setting `block_intervall_ms`"));
}

/// A joiner is SIGKILLed mid-sync (a real process, kill -9), restarts from
/// its redb file without starting over, and finishes.
#[test]
fn a_joiner_killed_mid_sync_resumes_and_finishes() {
    use protoblock_devnet::{DevNet, generate_chain};
    const SEED: u64 = 4242;
    const BLOCKS: u64 = 1500;
    // Pre-build the dev relay's chain: same seed and user count as --dev.
    let dev_dir = tempfile::tempdir().unwrap();
    std::fs::write(dev_dir.path().join("dev-seed"), SEED.to_string()).unwrap();
    let net = DevNet::new(SEED, 50);
    let blocks = generate_chain(&net, BLOCKS, 20);
    {
        let store = RedbStore::open(dev_dir.path().join("chain.redb")).unwrap();
        let mut chain =
            block_on(protoblock_store::open_chain(&store, net.genesis.clone(), ChainLimits::default())).unwrap();
        block_on(protoblock_tests::import(&store, &mut chain, &blocks, 128)).unwrap();
    }
    let (mut relay, addr, lines) = spawn_dev(dev_dir.path(), 1000);
    std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});

    let join_dir = tempfile::tempdir().unwrap();
    let joiner = |stop: u64| {
        Command::new(BIN)
            .args(["--bootstrap", &addr, "--listen", "/ip4/127.0.0.1/tcp/0", "--http-listen", "127.0.0.1:0"])
            .args(["--stun-listen", "off", "--stop-at-height", &stop.to_string()])
            .arg("--genesis")
            .arg(dev_dir.path().join("genesis.pb"))
            .arg("--data-dir")
            .arg(join_dir.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut first = joiner(0);
    let mut out = BufReader::new(first.stdout.take().unwrap()).lines();
    let reached = out
        .by_ref()
        .map_while(Result::ok)
        .filter_map(|l| l.strip_prefix("height ")?.split_whitespace().next()?.parse::<u64>().ok())
        .find(|h| *h >= 300)
        .expect("the joiner makes progress");
    first.kill().unwrap(); // SIGKILL, mid-sync
    first.wait().unwrap();
    assert!(reached < BLOCKS, "killed before the end");

    let mut second = joiner(BLOCKS);
    let out = BufReader::new(second.stdout.take().unwrap()).lines();
    let hs: Vec<u64> = out
        .map_while(Result::ok)
        .filter_map(|l| l.strip_prefix("height ")?.split_whitespace().next()?.parse::<u64>().ok())
        .collect();
    let status = second.wait().unwrap();
    relay.kill().unwrap();
    relay.wait().unwrap();
    assert!(status.success());
    let first_after = *hs.first().expect("the restarted joiner syncs");
    assert!(first_after > reached.saturating_sub(1), "resumed from its store at {first_after}, had {reached}");
    assert!(hs.last().copied().unwrap_or(0) >= BLOCKS, "finished: {:?}", hs.last());
}

#[test]
fn sigterm_stops_cleanly_and_loses_no_committed_block() {
    let dir = tempfile::tempdir().unwrap();
    let (mut relay, _, mut lines) = spawn_dev(dir.path(), 20);
    let _ = lines.by_ref().map_while(Result::ok).find(|l| l.starts_with("height 10 "));
    let pid = relay.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let last = lines
        .map_while(Result::ok)
        .filter_map(|l| l.strip_prefix("height ")?.split_whitespace().next()?.parse::<u64>().ok())
        .last()
        .unwrap_or(10);
    let status = relay.wait().unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    // Every block it reported is in the store.
    let store = RedbStore::open(dir.path().join("chain.redb")).unwrap();
    let head = block_on(store.head()).unwrap().unwrap();
    assert!(head.height >= last, "reported {last}, stored {}", head.height);
}

/// The dev endpoints (the oracle's seed, switching sync serving off) exist
/// only on a `--dev` relay: a node started on a genesis file answers 404 to
/// both, while the dev relay beside it answers (so the check can fail).
#[test]
fn dev_endpoints_exist_only_with_dev() {
    let dev_dir = tempfile::tempdir().unwrap();
    let dev = start_dev_relay(dev_dir.path(), 200);
    let (code, seed) = get_json(&format!("{}/api/dev/oracle-key", dev.http));
    assert_eq!(code, 200, "the dev relay serves its oracle seed: {seed}");

    let node_dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["--listen", "/ip4/127.0.0.1/tcp/0", "--http-listen", "127.0.0.1:0", "--stun-listen", "off"])
        .arg("--genesis")
        .arg(&dev.genesis)
        .arg("--data-dir")
        .arg(node_dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let http = lines.by_ref().map_while(Result::ok).find_map(|l| l.strip_prefix("http ").map(str::to_string)).unwrap();
    std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
    let (code, body) = get_json(&format!("{http}/api/dev/oracle-key"));
    let client = reqwest::blocking::Client::new();
    let serve = client.post(format!("{http}/api/dev/serve-sync")).body("false").send().unwrap().status().as_u16();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(code, 404, "no oracle seed without --dev: {body}");
    assert_eq!(serve, 404, "no sync switch without --dev");
}

/// What the HTTP face allows: any origin may read the API and submit txs
/// (GET and POST, Content-Type only, no credentials), the dev routes get no
/// CORS at all, the public status names peers but not their addresses, and
/// a client that never finishes its request body is answered 408 after the
/// request timeout instead of holding its slot for good.
#[test]
fn http_cors_peer_privacy_and_request_timeouts() {
    use std::io::{Read, Write};
    let dev_dir = tempfile::tempdir().unwrap();
    let mut child = dev_command(dev_dir.path(), 200)
        .args(["--listen", "/ip4/127.0.0.1/tcp/0", "--stun-listen", "off", "--http-request-timeout-secs", "2"])
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut addr = None;
    let mut http = None;
    for l in lines.by_ref().map_while(Result::ok) {
        if let Some(a) = l.strip_prefix("listening ") {
            addr.get_or_insert(a.to_string());
        }
        if let Some(h) = l.strip_prefix("http ") {
            http = Some(h.to_string());
        }
        if addr.is_some() && http.is_some() {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
    let relay = Relay { child, http: http.unwrap(), stun: String::new(), genesis: dev_dir.path().join("genesis.pb") };
    // A peer, so the status has one to list.
    let join_dir = tempfile::tempdir().unwrap();
    let mut joiner = Command::new(BIN)
        .args(["--bootstrap", addr.as_ref().unwrap(), "--listen", "/ip4/127.0.0.1/tcp/0"])
        .args(["--http-listen", "127.0.0.1:0", "--stun-listen", "off"])
        .arg("--genesis")
        .arg(&relay.genesis)
        .arg("--data-dir")
        .arg(join_dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        let (_, s) = get_json(&format!("{}/api/status", relay.http));
        if s["peers"].as_array().is_some_and(|p| !p.is_empty()) {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "the joiner never showed up: {s}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let text = status["peers"].to_string();
    assert!(status["peers"][0]["peer_id"].is_string(), "{text}");
    assert!(!text.contains("127.0.0.1") && !text.contains("\"addr\""), "no peer addresses: {text}");
    let _ = joiner.kill();
    let _ = joiner.wait();

    let client = reqwest::blocking::Client::new();
    let pre = client
        .request(reqwest::Method::OPTIONS, format!("{}/api/tx", relay.http))
        .header("Origin", "https://fantasy.example")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .unwrap();
    let h = pre.headers();
    assert_eq!(h.get("access-control-allow-origin").unwrap(), "*");
    let methods = h.get("access-control-allow-methods").unwrap().to_str().unwrap().to_string();
    assert!(methods.contains("POST") && !methods.contains("DELETE"), "{methods}");
    assert!(h.get("access-control-allow-credentials").is_none());
    let dev = client
        .get(format!("{}/api/dev/oracle-key", relay.http))
        .header("Origin", "https://fantasy.example")
        .send()
        .unwrap();
    assert_eq!(dev.status(), 200, "a dev relay has its dev routes");
    assert!(dev.headers().get("access-control-allow-origin").is_none(), "dev routes are same-origin only");

    // A body announced and never sent.
    let host = relay.http.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(15))).unwrap();
    write!(s, "POST /api/tx HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1000\r\n\r\npartial").unwrap();
    let t = std::time::Instant::now();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "answered: {answer:?}");
    assert!(t.elapsed() < std::time::Duration::from_secs(10), "within the 2 s timeout, not held open");
    drop(relay);
}

/// Pages read the relay's addresses from `/api/bootstrap` as soon as
/// `/health` says it is up; an answer without addresses left a page that
/// loaded in the relay's first second with nobody to dial (it then produced
/// a chain of its own, caught by the mesh tests).
#[test]
fn bootstrap_addresses_are_there_as_soon_as_health_is_ok() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = dev_command(dir.path(), 500)
        .args(["--listen", "/ip4/127.0.0.1/tcp/0,/ip4/127.0.0.1/tcp/0/ws", "--stun-listen", "off"])
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let http = lines.by_ref().map_while(Result::ok).find_map(|l| l.strip_prefix("http ").map(str::to_string)).unwrap();
    std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
    let relay = Relay { child, http, stun: String::new(), genesis: dir.path().join("genesis.pb") };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while get_json(&format!("{}/health", relay.http)).0 != 200 {
        assert!(std::time::Instant::now() < deadline, "never healthy");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let addrs = bootstrap_addrs(&relay);
    assert!(addrs.iter().any(|a| a.contains("/ws/")), "addresses right away: {addrs:?}");
}

/// The relay's secret files (its libp2p key, its WebRTC certificate's key,
/// the dev seed the dev oracle key derives from) are readable by their owner
/// only, and one that an older version left readable is narrowed.
#[cfg(unix)]
#[test]
fn secrets_on_disk_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = || {
        let out = Command::new(BIN)
            .args(["--dev", "--block-interval-ms", "20", "--stop-at-height", "2", "--http-listen", "127.0.0.1:0"])
            .args(["--stun-listen", "off", "--listen", "/ip4/127.0.0.1/tcp/0,/ip4/127.0.0.1/udp/0/webrtc-direct"])
            .arg("--data-dir")
            .arg(&data)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    let mode = |f: &str| std::fs::metadata(data.join(f)).unwrap().permissions().mode() & 0o777;
    run();
    for f in ["node.key", "webrtc.pem", "dev-seed"] {
        assert_eq!(mode(f), 0o600, "{f} is mode {:o}", mode(f));
    }
    std::fs::set_permissions(data.join("node.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    run();
    assert_eq!(mode("node.key"), 0o600, "a readable key is narrowed at start");
}

/// `--help` describes every setting (test hooks aside), `--check-config`
/// prints what a start would use, and the example config in
/// relay-server/deploy is one the relay accepts.
#[test]
fn help_lists_every_setting_and_the_example_config_is_accepted() {
    let help = Command::new(BIN).arg("--help").output().unwrap();
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    let main = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/main.rs")).unwrap();
    // Every field of `Args` (a `#[arg(long…` line then its field) is a flag in the help, hidden ones aside.
    let mut flags = Vec::new();
    let lines: Vec<&str> = main.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if l.trim_start().starts_with("#[arg(long") && !l.contains("hide = true") {
            let field = lines[i + 1..]
                .iter()
                .find(|f| f.trim_start().chars().next().is_some_and(|c| c.is_ascii_lowercase()))
                .unwrap();
            flags.push(field.trim().split(':').next().unwrap().replace('_', "-"));
        }
    }
    assert!(flags.len() >= 25, "found the settings ({})", flags.len());
    for f in &flags {
        assert!(help.contains(&format!("--{f}")), "--help lists --{f}");
    }
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/protoblock-relay.example.toml");
    let out = Command::new(BIN).args(["--config", example, "--check-config"]).env("RUST_LOG", "warn").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown = String::from_utf8(out.stdout).unwrap();
    assert!(shown.contains("/var/lib/protoblock") && shown.contains("max_connections: 4096"), "{shown}");
}

/// identify names the product and its version, not libp2p's default agent.
#[tokio::test]
async fn identify_names_the_relay_and_its_version() {
    use futures::StreamExt;
    use libp2p::{SwarmBuilder, identify, noise, swarm::SwarmEvent, tcp, yamux};
    let relay = protoblock_tests::relay_process::RelayProcess::start_dev(BIN, &["--listen", "/ip4/127.0.0.1/tcp/0"]);
    let addr = relay.bootstrap_addr(|a| a.contains("/tcp/") && !a.contains("/ws")).await;
    let mut swarm = SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)
        .unwrap()
        .with_behaviour(|k| identify::Behaviour::new(identify::Config::new("/protoblock/1.0.0".into(), k.public())))
        .unwrap()
        .build();
    swarm.dial(addr).unwrap();
    let agent = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            if let SwarmEvent::Behaviour(identify::Event::Received { info, .. }) = swarm.select_next_some().await {
                return info.agent_version;
            }
        }
    })
    .await
    .expect("identify answered");
    assert_eq!(agent, format!("protoblock-relay/{}", env!("CARGO_PKG_VERSION")));
}

/// TLS settings that cannot work stop the relay at start with a message
/// naming the problem: a wss listen address without a certificate, a file
/// that holds no certificate (an error naming it, not a panic), a
/// certificate without its key.
#[test]
fn bad_tls_settings_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&std::ffi::OsStr]| {
        let out = Command::new(BIN)
            .args(["--dev", "--http-listen", "127.0.0.1:0", "--stun-listen", "off", "--data-dir"])
            .arg(dir.path())
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let os = |s: &str| std::ffi::OsString::from(s);
    let (ok, err) = run(&[&os("--listen"), &os("/ip4/127.0.0.1/tcp/0/tls/ws")]);
    assert!(!ok && err.contains("needs --tls-cert and --tls-key"), "{err}");
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let (ok, err) = run(&[&os("--tls-cert"), junk.as_os_str(), &os("--tls-key"), junk.as_os_str()]);
    assert!(!ok && err.contains("junk.pem") && !err.contains("panicked"), "{err}");
    let (ok, err) = run(&[&os("--tls-cert"), junk.as_os_str()]);
    assert!(!ok && err.contains("--tls-key"), "{err}");
}
