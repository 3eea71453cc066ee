//! Connection-level policy, as [`NetworkBehaviour`](libp2p::swarm::NetworkBehaviour)s
//! with no protocol of their own (dummy handlers): what needs only swarm
//! facts. [`Mesh`]: the WebRTC mesh (who offers the `/webrtc` upgrade,
//! backoff, replacing a slow direct peer, closing relayed paths once
//! direct). [`Discovery`]: bootstrap redial, relay reservations, our
//! external addresses (the circuit and its `/webrtc` form), rendezvous.
//! They learn connections and listen addresses from the swarm, act through
//! `ToSwarm` (dial, close, listen, confirm an address), and are fed by the
//! driver only what other behaviours learn (identify, ping, rendezvous
//! answers) and its one timer. The decisions that are not bookkeeping are
//! pure functions, unit-tested with them.

mod discovery;
mod mesh;

use libp2p::core::ConnectedPoint;
use libp2p::{Multiaddr, PeerId};

use crate::addr::{AddrKind, classify};

pub(crate) use discovery::dial_once;
pub use discovery::{
    Discovery, DiscoveryConfig, DiscoveryEvent, MAX_DISCOVERED, RENDEZVOUS_TTL_SECS, bootstrap_dials, dialable,
    discovered_dials,
};
pub use mesh::{Mesh, MeshConfig, WEBRTC_SIGNALING_PROTOCOL, slow_direct_peer, we_offer};

/// One live connection, for choosing a peer's best path and upgrading it.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: PeerId,
    pub addr: Multiaddr,
    pub relayed: bool,
    /// We dialled it (on a relayed connection: we offer the `/webrtc` upgrade).
    pub dialer: bool,
}

impl ConnInfo {
    pub fn new(peer: PeerId, endpoint: &ConnectedPoint) -> Self {
        Self {
            peer,
            addr: endpoint.get_remote_address().clone(),
            relayed: endpoint.is_relayed(),
            dialer: endpoint.is_dialer(),
        }
    }

    /// A direct browser-to-browser connection (`/webrtc`, not via a relay).
    pub fn is_direct_webrtc(&self) -> bool {
        !self.relayed && classify(&self.addr) == AddrKind::WebRtc
    }
}
