//! The libp2p behaviour of a Protoblock node: identify, ping (latency),
//! gossipsub for blocks and txs, two request-response protocols (status
//! handshake, sync), connection limits, and rendezvous discovery (native
//! nodes; browsers use peer exchange, see `RendezvousClient`). A relay
//! server additionally switches on the circuit relay v2 server and the
//! rendezvous point; one behaviour type keeps one node driver for all roles.

use std::time::Duration;

use libp2p::allow_block_list;
use libp2p::connection_limits::{self, ConnectionLimits};
#[cfg(not(target_arch = "wasm32"))]
use libp2p::rendezvous;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{gossipsub, identify, identity, ping, relay};
use protoblock_core::hash::sha256;
use protoblock_proto::v1 as pb;

use crate::codec::{ProtoCodec, STATUS_PROTOCOL, SYNC_PROTOCOL};
use crate::policy::AdmissionConfig;

pub const AGENT_PROTOCOL: &str = "/protoblock/1.0.0";
pub const MAX_STATUS_BYTES: usize = 1024;
pub const MAX_SYNC_REQUEST_BYTES: usize = 64 * 1024;
/// A sync response: up to a few blocks of the maximum size.
pub const MAX_SYNC_RESPONSE_BYTES: usize = 4 << 20;

/// Circuit relay v2 limits. libp2p's defaults (16 circuits of 2 min and
/// 128 KiB) are far too small for sync traffic between browsers.
#[derive(Debug, Clone)]
pub struct RelayLimits {
    pub max_reservations: usize,
    pub max_reservations_per_peer: usize,
    pub max_circuits: usize,
    pub max_circuits_per_peer: usize,
    pub max_circuit_duration: Duration,
    pub max_circuit_bytes: u64,
}

impl Default for RelayLimits {
    fn default() -> Self {
        Self {
            max_reservations: 1024,
            max_reservations_per_peer: 4,
            max_circuits: 512,
            max_circuits_per_peer: 16,
            max_circuit_duration: Duration::from_secs(30 * 60),
            max_circuit_bytes: 256 << 20,
        }
    }
}

/// What this node is, beyond a plain peer.
#[derive(Debug, Clone)]
pub struct Role {
    /// Serve circuit relay v2 reservations and circuits.
    pub relay: Option<RelayLimits>,
    /// Be a rendezvous point.
    pub rendezvous_point: bool,
    /// How many connections, from where, and who goes when full.
    pub admission: AdmissionConfig,
    /// Inbound connections still in their transport handshake, at most.
    pub max_pending: u32,
    /// What identify tells peers this node runs ("protoblock-relay/0.1.0"),
    /// instead of libp2p's default ("rust-libp2p/<its version>").
    pub agent_version: String,
}

/// The identify agent of a Protoblock program: its name and this release.
pub fn agent_version(program: &str) -> String {
    format!("{program}/{}", env!("CARGO_PKG_VERSION"))
}

impl Default for Role {
    fn default() -> Self {
        Self {
            relay: None,
            rendezvous_point: false,
            admission: AdmissionConfig::default(),
            max_pending: 64,
            agent_version: agent_version("protoblock-node"),
        }
    }
}

impl Role {
    /// A public relay's: thousands of browsers, 32 per address (a campus or
    /// office NAT), pending handshakes bounded well above a burst of page
    /// loads (see BENCHMARKS.md for what one relay holds).
    pub fn public_relay(relay: RelayLimits) -> Self {
        Self {
            relay: Some(relay),
            rendezvous_point: true,
            admission: AdmissionConfig {
                max_connections: 4096,
                max_per_ip: 32,
                loopback_exempt: true,
                handshake_grace_ms: 5_000,
            },
            max_pending: 256,
            agent_version: agent_version("protoblock-relay"),
        }
    }
}

/// The gossipsub settings every node uses (public so the gossip benchmark
/// measures exactly these). Message id = content id: the same block or tx
/// relayed by many peers is one message, and ids are hashes of the exact
/// bytes received. Every message is validated by the core before forwarding.
pub fn gossip_config(max_block_bytes: usize) -> gossipsub::ConfigBuilder {
    let mut b = gossipsub::ConfigBuilder::default();
    b.validation_mode(gossipsub::ValidationMode::Strict)
        .validate_messages()
        .message_id_fn(|m: &gossipsub::Message| gossipsub::MessageId::from(sha256(&m.data).0.to_vec()))
        .max_transmit_size(max_block_bytes + 4096)
        // A mesh of 4 (3..6) instead of libp2p's 6 (5..12): about 3 copies of
        // each block per node instead of 5, for a few ms more latency on
        // loopback (see the gossip benchmark).
        .mesh_n(4)
        .mesh_n_low(3)
        .mesh_n_high(6)
        .heartbeat_interval(Duration::from_millis(700))
        .duplicate_cache_time(Duration::from_secs(120));
    b
}

/// Gossipsub peer scoring for the two topics (`(topic, weight)`), so a
/// Reject verdict costs its sender in every node's mesh, not only where our
/// own ban catches it (invalid txs are not banned: a tx that fails on our
/// state may be our lag, but one that does not decode or verify is scored).
///
/// - P4, invalid messages: -100 per invalid block squared (one is below the
///   graylist threshold of -80), -10 per invalid tx squared (three).
/// - P3 (mesh delivery rates) is off: blocks come every few seconds and txs
///   in bursts, so any rate threshold would punish honest quiet peers.
/// - P6, IP colocation: more than 10 peers from one address start to cost,
///   loopback excepted (a relay behind a local reverse proxy sees every
///   browser from 127.0.0.1, as do the tests).
/// - Scores of peers that left are kept 10 minutes (the ban time), which
///   bounds what churned identities leave behind.
pub fn gossip_scoring(
    topics: &[(gossipsub::TopicHash, f64)],
) -> (gossipsub::PeerScoreParams, gossipsub::PeerScoreThresholds) {
    let mut params = gossipsub::PeerScoreParams {
        topic_score_cap: 100.0,
        ip_colocation_factor_weight: -5.0,
        ip_colocation_factor_threshold: 10.0,
        ip_colocation_factor_whitelist: [std::net::Ipv4Addr::LOCALHOST.into(), std::net::Ipv6Addr::LOCALHOST.into()]
            .into_iter()
            .collect(),
        decay_interval: Duration::from_secs(1),
        retain_score: Duration::from_secs(600),
        ..Default::default()
    };
    for (i, (topic, weight)) in topics.iter().enumerate() {
        let invalid_weight = if i == 0 { -100.0 } else { -10.0 };
        params.topics.insert(
            topic.clone(),
            gossipsub::TopicScoreParams {
                topic_weight: *weight,
                time_in_mesh_weight: 0.01,
                time_in_mesh_quantum: Duration::from_secs(1),
                time_in_mesh_cap: 600.0,
                first_message_deliveries_weight: 1.0,
                first_message_deliveries_decay: 0.9,
                first_message_deliveries_cap: 50.0,
                mesh_message_deliveries_weight: 0.0,
                mesh_failure_penalty_weight: 0.0,
                invalid_message_deliveries_weight: invalid_weight,
                // Halves in about a minute at one decay a second.
                invalid_message_deliveries_decay: 0.99,
                ..Default::default()
            },
        );
    }
    (params, gossipsub::PeerScoreThresholds::default())
}

// Server roles are never switched on in a browser, so the browser build
// links a do-nothing behaviour in their place (the relay server and the
// rendezvous point are a sizeable part of the wasm otherwise).
#[cfg(not(target_arch = "wasm32"))]
type RelayServer = relay::Behaviour;
#[cfg(target_arch = "wasm32")]
type RelayServer = libp2p::swarm::dummy::Behaviour;
#[cfg(not(target_arch = "wasm32"))]
type RendezvousPoint = crate::policy::RendezvousPoint;
#[cfg(target_arch = "wasm32")]
type RendezvousPoint = libp2p::swarm::dummy::Behaviour;

// Browsers find each other by peer exchange with their relay (which shares
// the identify addresses of its peers, circuit and `/webrtc` ones included),
// so the browser build also leaves out the rendezvous client: 23 KB of the
// package's gzip (it also pulled in a third request-response instantiation). Native nodes keep it (`Node` registers and discovers the
// same way on both; in a browser the calls do nothing).
#[cfg(not(target_arch = "wasm32"))]
pub type RendezvousClient = rendezvous::client::Behaviour;
#[cfg(target_arch = "wasm32")]
pub use no_rendezvous::RendezvousClient;

#[cfg(target_arch = "wasm32")]
mod no_rendezvous {
    use std::task::{Context, Poll};

    use libp2p::swarm::{FromSwarm, NetworkBehaviour, THandlerInEvent, ToSwarm};
    use libp2p::{PeerId, identity, rendezvous};

    /// `rendezvous::client::Behaviour`'s calls, doing nothing.
    pub struct RendezvousClient;

    impl RendezvousClient {
        pub fn new(_: identity::Keypair) -> Self {
            Self
        }

        pub fn register(
            &mut self,
            _: rendezvous::Namespace,
            _: PeerId,
            _: Option<rendezvous::Ttl>,
        ) -> Result<(), rendezvous::client::RegisterError> {
            Ok(())
        }

        pub fn discover(
            &mut self,
            _: Option<rendezvous::Namespace>,
            _: Option<rendezvous::Cookie>,
            _: Option<u64>,
            _: PeerId,
        ) {
        }
    }

    impl NetworkBehaviour for RendezvousClient {
        crate::policy::no_protocol_handler!();
        type ToSwarm = rendezvous::client::Event;

        fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
            Poll::Pending
        }

        fn on_swarm_event(&mut self, _: FromSwarm) {}
    }
}

/// Pings measure latency (the mesh's choice of links) and find dead
/// connections: `DEAD_AFTER_PINGS` failures in a row (about 90 s without an
/// answer) close one (`NodeConfig::dead_after_pings`). A ping's timeout runs on a timer, which a hidden tab
/// only delays, so throttling makes failures later, never false.
pub const PING_INTERVAL: Duration = Duration::from_secs(5);
pub const PING_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEAD_AFTER_PINGS: u8 = 6;

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// Banned peers, refused when a connection is established (before any
    /// other behaviour sees it). The node service's bans fill and empty it.
    pub blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    pub limits: connection_limits::Behaviour,
    /// Totals, per address, and eviction when full (`crate::policy::admission`).
    pub admission: crate::policy::Admission,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub gossipsub: gossipsub::Behaviour,
    pub status: request_response::Behaviour<ProtoCodec<pb::Status, pb::Status>>,
    pub sync: request_response::Behaviour<ProtoCodec<pb::SyncRequest, pb::SyncResponse>>,
    pub rendezvous: RendezvousClient,
    pub rendezvous_point: Toggle<RendezvousPoint>,
    pub relay: Toggle<RelayServer>,
    /// Browser nodes: reserve a slot on relays so other peers can reach us at
    /// `<relay>/p2p-circuit/p2p/<us>`. Comes from the swarm builder, which
    /// wires the matching relayed transport.
    pub relay_client: Toggle<relay::client::Behaviour>,
    /// Browser nodes: streams for `/webrtc` signalling (opened and accepted
    /// through a `libp2p_stream::Control`, see `protoblock_webrtc::private`).
    pub signaling: Toggle<libp2p_stream::Behaviour>,
    /// Connection policy (`crate::policy`), inert until the node starts it.
    pub mesh: crate::policy::Mesh,
    pub discovery: crate::policy::Discovery,
}

impl Behaviour {
    /// Switches on `/webrtc` signalling streams; the swarm must also carry
    /// the `/webrtc` transport. Returns the control its signaller uses.
    pub fn enable_signaling(&mut self) -> libp2p_stream::Control {
        let b = libp2p_stream::Behaviour::new();
        let control = b.new_control();
        self.signaling = Some(b).into();
        control
    }

    pub fn new(key: &identity::Keypair, max_block_bytes: usize, role: &Role) -> Result<Self, String> {
        Self::with_relay_client(key, max_block_bytes, role, None)
    }

    pub fn with_relay_client(
        key: &identity::Keypair,
        max_block_bytes: usize,
        role: &Role,
        relay_client: Option<relay::client::Behaviour>,
    ) -> Result<Self, String> {
        Self::with_options(
            key,
            max_block_bytes,
            role,
            relay_client,
            #[cfg(feature = "gossip-metrics")]
            None,
        )
    }

    /// With `metrics` (feature `gossip-metrics`), gossipsub records its
    /// counters there; the node reads duplicate deliveries from them (see
    /// `NodeConfig::gossip_metrics`).
    pub fn with_options(
        key: &identity::Keypair,
        max_block_bytes: usize,
        role: &Role,
        relay_client: Option<relay::client::Behaviour>,
        #[cfg(feature = "gossip-metrics")] metrics: Option<&mut prometheus_client::registry::Registry>,
    ) -> Result<Self, String> {
        let gossip_cfg = gossip_config(max_block_bytes).build().map_err(|e| e.to_string())?;
        let auth = gossipsub::MessageAuthenticity::Signed(key.clone());
        #[allow(unused_mut)]
        let mut gossipsub = gossipsub::Behaviour::new(auth, gossip_cfg)?;
        #[cfg(feature = "gossip-metrics")]
        if let Some(registry) = metrics {
            gossipsub = gossipsub.with_metrics(registry, gossipsub::MetricsConfig::default());
        }
        // Streams per connection, both ways, and how long one may take: a
        // peer that opens many, or never reads its response, costs at most
        // this many streams for this long (the serving budgets in
        // `protoblock_node::serve` bound the work behind them).
        let rr = |timeout, streams| {
            request_response::Config::default()
                .with_request_timeout(Duration::from_secs(timeout))
                .with_max_concurrent_streams(streams)
        };
        // The total is `admission`'s (it can evict to make room; a plain
        // limit here would refuse first).
        let limits = ConnectionLimits::default()
            .with_max_pending_incoming(Some(role.max_pending))
            // Two pages may meet through the relay both ways at once (and
            // through two relay addresses), and a direct `/webrtc` connection
            // joins those until they are closed.
            .with_max_established_per_peer(Some(4));
        #[cfg(not(target_arch = "wasm32"))]
        let relay = role.relay.as_ref().map(|l| {
            relay::Behaviour::new(
                key.public().to_peer_id(),
                relay::Config {
                    max_reservations: l.max_reservations,
                    max_reservations_per_peer: l.max_reservations_per_peer,
                    max_circuits: l.max_circuits,
                    max_circuits_per_peer: l.max_circuits_per_peer,
                    max_circuit_duration: l.max_circuit_duration,
                    max_circuit_bytes: l.max_circuit_bytes,
                    ..Default::default()
                },
            )
        });
        Ok(Self {
            blocked: Default::default(),
            limits: connection_limits::Behaviour::new(limits),
            admission: crate::policy::Admission::new(role.admission.clone(), crate::clock::Clock::new()),
            // Pushing listen-address changes tells peers a browser's relayed
            // address as soon as its reservation is accepted.
            identify: identify::Behaviour::new(
                identify::Config::new(AGENT_PROTOCOL.into(), key.public())
                    .with_agent_version(role.agent_version.clone())
                    .with_push_listen_addr_updates(true),
            ),
            ping: ping::Behaviour::new(ping::Config::new().with_interval(PING_INTERVAL).with_timeout(PING_TIMEOUT)),
            gossipsub,
            status: request_response::Behaviour::with_codec(
                ProtoCodec::new(MAX_STATUS_BYTES, MAX_STATUS_BYTES),
                [(STATUS_PROTOCOL, ProtocolSupport::Full)],
                rr(10, 4),
            ),
            sync: request_response::Behaviour::with_codec(
                ProtoCodec::new(MAX_SYNC_REQUEST_BYTES, MAX_SYNC_RESPONSE_BYTES),
                [(SYNC_PROTOCOL, ProtocolSupport::Full)],
                rr(15, 16),
            ),
            rendezvous: RendezvousClient::new(key.clone()),
            #[cfg(not(target_arch = "wasm32"))]
            rendezvous_point: role
                .rendezvous_point
                .then(|| crate::policy::RendezvousPoint::new(crate::policy::RegistryConfig::default()))
                .into(),
            #[cfg(not(target_arch = "wasm32"))]
            relay: relay.into(),
            #[cfg(target_arch = "wasm32")]
            rendezvous_point: None.into(),
            #[cfg(target_arch = "wasm32")]
            relay: None.into(),
            relay_client: relay_client.into(),
            signaling: None.into(),
            mesh: Default::default(),
            discovery: Default::default(),
        })
    }
}
