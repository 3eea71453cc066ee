//! A crowd of lightweight browser-like clients for load tests and the crowd
//! benchmark: each is its own rust-libp2p swarm over WebSocket (noise,
//! yamux) with what a page runs against its relay: identify, ping every 5 s,
//! the status handshake, and gossipsub subscribed to both topics (blocks
//! arrive by the relay's mesh or its gossip). An attacking member also lies
//! in its status (a head of 2^60) and gossips junk blocks (a decodable header
//! above the head, a random parent, no valid signature) a few a second.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, identify, ping};
use prost::Message;
use protoblock_core::Genesis;
use protoblock_net::behaviour::{MAX_STATUS_BYTES, PING_INTERVAL, PING_TIMEOUT, gossip_config};
use protoblock_net::codec::{ProtoCodec, STATUS_PROTOCOL};
use protoblock_proto::v1 as pb;

/// A member whose handshake has not completed closes its connection as dead
/// (and redials) after this many of its status requests time out in a row.
/// Under a thousand-client crowd on two cores a few connections (about 1 in
/// 200 here) stalled whole before their handshake, neither side reading, and
/// neither closed them. The node's own rule for dead links (pings failing,
/// `NodeConfig::dead_after_pings`) is not copied here: this process runs a
/// thousand swarms on two threads, and under the attack phase its own ping
/// timings fail for everyone (copying it closed every member's connection
/// within a minute and the redials kept the relay saturated).
const DEAD_AFTER_STATUS_TIMEOUTS: u8 = 2;

#[derive(NetworkBehaviour)]
pub struct Client {
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    gossipsub: gossipsub::Behaviour,
    status: request_response::Behaviour<ProtoCodec<pb::Status, pb::Status>>,
}

/// What one member saw, shared with whoever counts the crowd.
#[derive(Default)]
pub struct MemberState {
    pub connected: AtomicBool,
    /// Our status handshake was answered: the relay takes us as a peer.
    pub handshaken: AtomicBool,
    pub blocks: AtomicU64,
    pub connections: AtomicU64,
    /// Dials that failed (refused, reset, timed out); the member redials
    /// after a second, as a page's node does.
    pub dial_failures: AtomicU64,
    /// Connections the relay closed while they worked (no ping or status
    /// request of ours had just failed on them).
    pub drops: AtomicU64,
    /// Connections we closed as dead (see `spawn_member`), and dead ones
    /// the relay closed first; the member redials after either.
    pub recycled: AtomicU64,
    pub dead_closed: AtomicU64,
    /// Our status requests that failed: timed out, and otherwise (stream
    /// refused or reset). The member asks again a second later, as a
    /// node does for a peer whose handshake has not completed.
    pub status_timeouts: AtomicU64,
    pub status_failures: AtomicU64,
}

pub struct Member {
    pub state: Arc<MemberState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Member {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn status(genesis: &Genesis, attack: bool) -> pb::Status {
    pb::Status {
        protocol_version: protoblock_node::PROTOCOL_VERSION,
        genesis_hash: genesis.hash.0.to_vec(),
        head_height: if attack { 1 << 60 } else { 0 },
        head_hash: genesis.hash.0.to_vec(),
        final_height: 0,
        lowest_height: 0,
    }
}

fn junk_block(genesis: &Genesis, height: u64, salt: u64) -> Vec<u8> {
    let header = pb::BlockHeader {
        version: 1,
        height,
        prev_hash: protoblock_core::hash::sha256(&salt.to_le_bytes()).0.to_vec(),
        timestamp_ms: 1,
        producer: genesis.producer_for(height).0.0.to_vec(),
        tx_root: vec![0; 32],
        state_root: vec![0; 32],
        ..Default::default()
    };
    pb::Block { header: header.encode_to_vec(), signature: vec![0; 64], txs: Vec::new() }.encode_to_vec()
}

/// Starts one member dialing `relay` (a `/ws` address with `/p2p`).
pub fn spawn_member(relay: Multiaddr, genesis: Genesis, attack: bool, salt: u64) -> Member {
    let state = Arc::new(MemberState::default());
    let shared = state.clone();
    let task = tokio::spawn(async move {
        let max = genesis.params.max_block_bytes;
        let swarm = libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_websocket(libp2p::noise::Config::new, libp2p::yamux::Config::default)
            .await;
        let Ok(swarm) = swarm else { return };
        let swarm = swarm.with_behaviour(|key| Client {
            identify: identify::Behaviour::new(identify::Config::new("/protoblock/1.0.0".into(), key.public())),
            ping: ping::Behaviour::new(ping::Config::new().with_interval(PING_INTERVAL).with_timeout(PING_TIMEOUT)),
            gossipsub: gossipsub::Behaviour::new(
                gossipsub::MessageAuthenticity::Signed(key.clone()),
                gossip_config(max).build().expect("gossip config"),
            )
            .expect("gossipsub"),
            status: request_response::Behaviour::with_codec(
                ProtoCodec::new(MAX_STATUS_BYTES, MAX_STATUS_BYTES),
                [(STATUS_PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(10)),
            ),
        });
        let Ok(swarm) = swarm;
        let mut swarm = swarm.with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60))).build();
        let tag = &genesis.hash.to_hex()[..16];
        let blocks = IdentTopic::new(format!("/protoblock/{tag}/blocks/1"));
        let txs = IdentTopic::new(format!("/protoblock/{tag}/txs/1"));
        let _ = swarm.behaviour_mut().gossipsub.subscribe(&blocks);
        let _ = swarm.behaviour_mut().gossipsub.subscribe(&txs);
        if swarm.dial(relay.clone()).is_err() {
            return;
        }
        let mut redial: Option<tokio::time::Instant> = None;
        let mut retry_status: Option<(libp2p::PeerId, tokio::time::Instant)> = None;
        // The connection's health as the node's driver judges it: pings
        // failed in a row, status requests timed out in a row, and whether
        // we are closing it as dead.
        let (mut ping_failures, mut status_timeouts, mut closing) = (0u8, 0u8, false);
        let mut flood = tokio::time::interval(Duration::from_millis(250));
        let mut n = 0u64;
        loop {
            tokio::select! {
                ev = swarm.select_next_some() => match ev {
                    SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                        (ping_failures, status_timeouts, closing) = (0, 0, false);
                        shared.connected.store(true, Ordering::Relaxed);
                        shared.connections.fetch_add(1, Ordering::Relaxed);
                        swarm.behaviour_mut().status.send_request(&peer_id, status(&genesis, attack));
                    }
                    SwarmEvent::ConnectionClosed { num_established: 0, .. } => {
                        shared.connected.store(false, Ordering::Relaxed);
                        shared.handshaken.store(false, Ordering::Relaxed);
                        let counter = if closing {
                            &shared.recycled
                        } else if ping_failures > 0 || status_timeouts > 0 {
                            &shared.dead_closed
                        } else {
                            &shared.drops
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                        // A page's node redials its relay; an attacker is banned anyway.
                        if !attack {
                            redial = Some(tokio::time::Instant::now() + Duration::from_millis(1000 + salt % 500));
                        }
                    }
                    SwarmEvent::OutgoingConnectionError { .. } => {
                        shared.dial_failures.fetch_add(1, Ordering::Relaxed);
                        redial = Some(tokio::time::Instant::now() + Duration::from_millis(1000 + salt % 500));
                    }
                    SwarmEvent::Behaviour(ClientEvent::Status(request_response::Event::Message { message, .. })) => {
                        match message {
                            request_response::Message::Request { channel, .. } => {
                                let _ = swarm.behaviour_mut().status.send_response(channel, status(&genesis, attack));
                            }
                            request_response::Message::Response { .. } => {
                                status_timeouts = 0;
                                shared.handshaken.store(true, Ordering::Relaxed);
                            }
                        }
                    }
                    SwarmEvent::Behaviour(ClientEvent::Status(request_response::Event::OutboundFailure { peer, error, .. })) => {
                        let counter = match error {
                            request_response::OutboundFailure::Timeout => {
                                status_timeouts += 1;
                                &shared.status_timeouts
                            }
                            _ => &shared.status_failures,
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                        let handshaken = shared.handshaken.load(Ordering::Relaxed);
                        if !handshaken && status_timeouts >= DEAD_AFTER_STATUS_TIMEOUTS && !closing {
                            closing = swarm.disconnect_peer_id(peer).is_ok();
                        } else if swarm.is_connected(&peer) {
                            retry_status = Some((peer, tokio::time::Instant::now() + Duration::from_millis(1000 + salt % 500)));
                        }
                    }
                    SwarmEvent::Behaviour(ClientEvent::Ping(ping::Event { result, .. })) => {
                        ping_failures = if result.is_ok() { 0 } else { ping_failures.saturating_add(1) };
                    }
                    SwarmEvent::Behaviour(ClientEvent::Gossipsub(gossipsub::Event::Message { message, .. }))
                        if message.topic == blocks.hash() =>
                    {
                        shared.blocks.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {}
                },
                _ = tokio::time::sleep_until(redial.unwrap_or_else(tokio::time::Instant::now)), if redial.is_some() => {
                    redial = None;
                    let _ = swarm.dial(relay.clone());
                }
                _ = tokio::time::sleep_until(retry_status.map_or_else(tokio::time::Instant::now, |r| r.1)), if retry_status.is_some() => {
                    let (peer, _) = retry_status.take().expect("guarded");
                    if swarm.is_connected(&peer) {
                        swarm.behaviour_mut().status.send_request(&peer, status(&genesis, attack));
                    }
                }
                _ = flood.tick(), if attack => {
                    n += 1;
                    let data = junk_block(&genesis, 2 + n, salt << 32 | n);
                    let _ = swarm.behaviour_mut().gossipsub.publish(blocks.clone(), data);
                }
            }
        }
    });
    Member { state, task }
}

/// Counts over a crowd.
#[derive(Debug, Clone, Copy, Default)]
pub struct CrowdCounts {
    pub connected: usize,
    pub handshaken: usize,
    /// Members that received at least one block by gossip.
    pub receiving: usize,
    /// Connections made in all.
    pub connections: u64,
    pub dial_failures: u64,
    pub drops: u64,
    pub status_timeouts: u64,
    pub status_failures: u64,
    pub recycled: u64,
    pub dead_closed: u64,
}

pub fn count(members: &[Member]) -> CrowdCounts {
    let mut c = CrowdCounts::default();
    for m in members {
        let s = &m.state;
        c.connected += usize::from(s.connected.load(Ordering::Relaxed));
        c.handshaken += usize::from(s.handshaken.load(Ordering::Relaxed));
        c.receiving += usize::from(s.blocks.load(Ordering::Relaxed) > 0);
        c.connections += s.connections.load(Ordering::Relaxed);
        c.dial_failures += s.dial_failures.load(Ordering::Relaxed);
        c.drops += s.drops.load(Ordering::Relaxed);
        c.status_timeouts += s.status_timeouts.load(Ordering::Relaxed);
        c.recycled += s.recycled.load(Ordering::Relaxed);
        c.dead_closed += s.dead_closed.load(Ordering::Relaxed);
        c.status_failures += s.status_failures.load(Ordering::Relaxed);
    }
    c
}

/// Raises this process's soft limit on open files to its hard limit (a
/// crowd of N members needs N sockets, and so does the relay).
pub fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    lim.rlim_cur
}

/// Resident memory and CPU time (user + system, in clock ticks' ms) of a
/// process, from /proc.
pub fn proc_usage(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb: u64 = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some((rss_kb * 1024, ticks * 1000 / hz))
}
