//! Connection-level policy, as [`NetworkBehaviour`](libp2p::swarm::NetworkBehaviour)s
//! with no protocol of their own (dummy handlers): what needs only swarm
//! facts. [`Mesh`]: the WebRTC mesh (who offers the `/webrtc` upgrade,
//! backoff, replacing a slow direct peer, closing relayed paths once
//! direct). [`Discovery`]: bootstrap redial, relay reservations, our
//! external addresses (the circuit and its `/webrtc` form), rendezvous.
//! [`Admission`]: connection totals, per-address limits, and who is evicted
//! when full. [`RendezvousPoint`] (native): the server side of rendezvous,
//! bounded, with a protocol of its own.
//! They learn connections and listen addresses from the swarm, act through
//! `ToSwarm` (dial, close, listen, confirm an address), and are fed by the
//! driver only what other behaviours learn (identify, ping, rendezvous
//! answers) and its one timer. The decisions that are not bookkeeping are
//! pure functions, unit-tested with them.

mod admission;
mod dead_links;
mod discovery;
mod mesh;
#[cfg(not(target_arch = "wasm32"))]
mod rendezvous_point;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::task::{Context, Poll, Waker};

use libp2p::core::ConnectedPoint;
use libp2p::swarm::ToSwarm;
use libp2p::{Multiaddr, PeerId};

use crate::addr::{AddrKind, classify};

pub use admission::{Admission, AdmissionConfig, AdmissionCounts};
pub use dead_links::DeadLinks;
pub(crate) use discovery::dial_once;
pub use discovery::{
    Discovery, DiscoveryConfig, DiscoveryEvent, MAX_DISCOVERED, RENDEZVOUS_TTL_SECS, bootstrap_dials, dialable,
    discovered_dials,
};
pub use mesh::{
    INBOUND_DIRECT_SLACK, Mesh, MeshConfig, WEBRTC_SIGNALING_PROTOCOL, accept_inbound_direct, slow_direct_peer,
    we_offer,
};
#[cfg(not(target_arch = "wasm32"))]
pub use rendezvous_point::{RegistryConfig, RendezvousPoint};

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

/// The connection-handler half of a behaviour with no protocol of its own:
/// a dummy handler on every connection, and no handler events.
macro_rules! no_protocol_handler {
    () => {
        type ConnectionHandler = libp2p::swarm::dummy::ConnectionHandler;

        fn handle_established_inbound_connection(
            &mut self,
            _: libp2p::swarm::ConnectionId,
            _: libp2p::PeerId,
            _: &libp2p::Multiaddr,
            _: &libp2p::Multiaddr,
        ) -> Result<libp2p::swarm::THandler<Self>, libp2p::swarm::ConnectionDenied> {
            Ok(libp2p::swarm::dummy::ConnectionHandler)
        }

        fn handle_established_outbound_connection(
            &mut self,
            _: libp2p::swarm::ConnectionId,
            _: libp2p::PeerId,
            _: &libp2p::Multiaddr,
            _: libp2p::core::Endpoint,
            _: libp2p::core::transport::PortUse,
        ) -> Result<libp2p::swarm::THandler<Self>, libp2p::swarm::ConnectionDenied> {
            Ok(libp2p::swarm::dummy::ConnectionHandler)
        }

        fn on_connection_handler_event(
            &mut self,
            _: libp2p::PeerId,
            _: libp2p::swarm::ConnectionId,
            event: libp2p::swarm::THandlerOutEvent<Self>,
        ) {
            match event {}
        }
    };
}
pub(crate) use no_protocol_handler;

/// A behaviour's actions waiting for the swarm's next poll. Each behaviour
/// bounds what it queues by what it is fed (see theirs).
pub(crate) struct Actions<E> {
    queue: VecDeque<ToSwarm<E, Infallible>>,
    waker: Option<Waker>,
}

impl<E> Default for Actions<E> {
    fn default() -> Self {
        Self { queue: VecDeque::new(), waker: None }
    }
}

impl<E> Actions<E> {
    pub fn push(&mut self, a: ToSwarm<E, Infallible>) {
        self.queue.push_back(a);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    pub fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<E, Infallible>> {
        match self.queue.pop_front() {
            Some(a) => Poll::Ready(a),
            None => {
                self.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    #[cfg(test)]
    pub fn drain(&mut self) -> Vec<ToSwarm<E, Infallible>> {
        self.queue.drain(..).collect()
    }
}
