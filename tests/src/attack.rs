//! Live attackers against a real relay over WebSocket on loopback, each
//! with identities of its own (`protoblock-attacker` runs them as a program,
//! the relay's attack test in process):
//! - **liars**: crowd members that claim a head of 2^60 in the status
//!   handshake and gossip junk blocks ([`crate::crowd`]);
//! - **flooders**: connections that do nothing past noise and yamux and
//!   redial at once when dropped (a connection flood; admission evicts
//!   them for newcomers);
//! - **unread syncers**: peers that open sync streams, each asking for the
//!   longest range from height 1, and never read an answer; they keep as
//!   many open as the relay lets them and open more every second.
//!
//! Every attacker counts what it achieved, so a test can say the attack ran.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{AsyncWriteExt, StreamExt};
use libp2p::Multiaddr;
use libp2p::swarm::SwarmEvent;
use prost::Message;
use protoblock_core::Genesis;
use protoblock_net::codec::SYNC_PROTOCOL;
use protoblock_proto::v1 as pb;

use crate::crowd::{Member, spawn_member};

#[derive(Debug, Clone, Copy)]
pub struct AttackSize {
    pub liars: usize,
    pub flooders: usize,
    pub unread_syncers: usize,
}

/// What the attackers achieved so far.
#[derive(Debug, Default)]
pub struct AttackCounts {
    /// Flooders' and syncers' connections established, in all.
    pub connections: AtomicU64,
    /// Sync streams opened and sent a request that is never read.
    pub unread_streams: AtomicU64,
}

pub struct Attack {
    pub liars: Vec<Member>,
    pub counts: Arc<AttackCounts>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Attack {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts every attacker against `relay` (a `/ws` address with `/p2p`).
pub fn spawn_attack(relay: Multiaddr, genesis: &Genesis, size: AttackSize) -> Attack {
    let counts = Arc::new(AttackCounts::default());
    let liars =
        (0..size.liars).map(|i| spawn_member(relay.clone(), genesis.clone(), true, 1 << 40 | i as u64)).collect();
    let mut tasks = Vec::new();
    for i in 0..size.flooders {
        tasks.push(tokio::spawn(flooder(relay.clone(), counts.clone(), i as u64)));
    }
    for _ in 0..size.unread_syncers {
        tasks.push(tokio::spawn(unread_syncer(relay.clone(), counts.clone())));
    }
    Attack { liars, counts, tasks }
}

async fn swarm<B: libp2p::swarm::NetworkBehaviour>(
    behaviour: impl FnOnce(&libp2p::identity::Keypair) -> B,
) -> Option<libp2p::Swarm<B>> {
    let b = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_websocket(libp2p::noise::Config::new, libp2p::yamux::Config::default)
        .await
        .ok()?;
    let Ok(b) = b.with_behaviour(|key| behaviour(key));
    Some(b.with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600))).build())
}

/// One flooding identity: connect, hold, redial at once when dropped.
async fn flooder(relay: Multiaddr, counts: Arc<AttackCounts>, salt: u64) {
    let Some(mut s) = swarm(|_| libp2p::swarm::dummy::Behaviour).await else { return };
    let _ = s.dial(relay.clone());
    loop {
        match s.select_next_some().await {
            SwarmEvent::ConnectionEstablished { .. } => {
                counts.connections.fetch_add(1, Ordering::Relaxed);
            }
            SwarmEvent::ConnectionClosed { num_established: 0, .. } | SwarmEvent::OutgoingConnectionError { .. } => {
                // Not quite at once: a refused dial fails in microseconds.
                tokio::time::sleep(Duration::from_millis(50 + salt % 50)).await;
                let _ = s.dial(relay.clone());
            }
            _ => {}
        }
    }
}

/// A sync request framed as the relay's codec reads it (4-byte length).
fn range_request_frame() -> Vec<u8> {
    let kind = pb::sync_request::Kind::Blocks(pb::BlockRangeRequest { start_height: 1, count: u32::MAX });
    let body = pb::SyncRequest { kind: Some(kind) }.encode_to_vec();
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

/// One identity that asks for ranges on stream after stream and reads none.
async fn unread_syncer(relay: Multiaddr, counts: Arc<AttackCounts>) {
    let Some(peer) = relay.iter().find_map(|p| match p {
        libp2p::multiaddr::Protocol::P2p(id) => Some(id),
        _ => None,
    }) else {
        return;
    };
    let Some(mut s) = swarm(|_| libp2p_stream::Behaviour::new()).await else { return };
    let mut control = s.behaviour().new_control();
    let _ = s.dial(relay.clone());
    let on_connect = counts.clone();
    let _driver = AbortOnDrop(tokio::spawn(async move {
        loop {
            match s.select_next_some().await {
                SwarmEvent::ConnectionEstablished { .. } => {
                    on_connect.connections.fetch_add(1, Ordering::Relaxed);
                }
                SwarmEvent::ConnectionClosed { num_established: 0, .. }
                | SwarmEvent::OutgoingConnectionError { .. } => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let _ = s.dial(relay.clone());
                }
                _ => {}
            }
        }
    }));
    let frame = range_request_frame();
    // Held, never read: at most this many per identity, the oldest dropped.
    let mut held = std::collections::VecDeque::new();
    loop {
        for _ in 0..8 {
            let open = control.open_stream(peer, SYNC_PROTOCOL);
            let Ok(Ok(mut stream)) = tokio::time::timeout(Duration::from_secs(2), open).await else { break };
            if stream.write_all(&frame).await.is_ok() {
                counts.unread_streams.fetch_add(1, Ordering::Relaxed);
                held.push_back(stream);
                if held.len() > 64 {
                    held.pop_front();
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
