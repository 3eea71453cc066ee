//! Connection-level policy: what needs only swarm facts. The WebRTC mesh
//! (who offers the `/webrtc` upgrade, backoff, replacing a slow direct
//! peer, closing relayed paths once direct), relay reservations, and
//! discovery (bootstrap redial, rendezvous, the circuit and `/webrtc`
//! external addresses, dial-once). Its decisions that are not plain
//! bookkeeping are pure functions, unit-tested below; it has its own
//! wake-up time instead of a tick.

mod discovery;
mod mesh;

use std::collections::{HashMap, HashSet};

use libp2p::multiaddr::Protocol;
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId, Swarm, identify, rendezvous};
use protoblock_node::NodeService;

use crate::addr::{AddrKind, classify};
use crate::behaviour::Behaviour;

pub use discovery::dialable;
use discovery::*;
pub(crate) use discovery::{dial_bootstrap, dial_once};
use mesh::*;
pub use mesh::{WEBRTC_SIGNALING_PROTOCOL, slow_direct_peer, we_offer};

/// One live connection, for choosing a peer's best path and upgrading it.
#[derive(Debug, Clone)]
pub(crate) struct ConnInfo {
    pub peer: PeerId,
    pub addr: Multiaddr,
    pub relayed: bool,
    /// We dialled it (on a relayed connection: we offer the `/webrtc` upgrade).
    pub dialer: bool,
}

impl ConnInfo {
    /// A direct browser-to-browser connection (`/webrtc`, not via a relay).
    pub fn is_direct_webrtc(&self) -> bool {
        !self.relayed && classify(&self.addr) == AddrKind::WebRtc
    }
}

pub(crate) struct Connections {
    pub bootstrap: Vec<Multiaddr>,
    target_direct_peers: usize,
    max_relay_reservations: usize,
    advertise_listen_addrs: bool,
    pub conns: HashMap<ConnectionId, ConnInfo>,
    pub latency: HashMap<PeerId, u64>,
    webrtc_capable: HashSet<PeerId>,
    /// `/webrtc` upgrades in flight (peer → started), and failed ones (peer → when, failures).
    upgrading: HashMap<PeerId, u64>,
    upgrade_failed: HashMap<PeerId, (u64, u32)>,
    last_replace_ms: u64,
    /// Relays we asked for a reservation (listening on their circuit).
    relay_listeners: HashMap<PeerId, libp2p::core::transport::ListenerId>,
    namespace: rendezvous::Namespace,
    /// Rendezvous points we use, with the last discovery cookie and time.
    rendezvous_points: HashMap<PeerId, (Option<rendezvous::Cookie>, u64)>,
    /// When to dial missing bootstrap peers again.
    next_bootstrap_ms: u64,
    pub listen: Vec<Multiaddr>,
}

impl Connections {
    pub fn new(cfg: &super::NodeConfig, namespace: rendezvous::Namespace, now: u64) -> Self {
        Self {
            bootstrap: cfg.bootstrap.clone(),
            target_direct_peers: cfg.target_direct_peers,
            max_relay_reservations: cfg.max_relay_reservations,
            advertise_listen_addrs: cfg.advertise_listen_addrs,
            conns: HashMap::new(),
            latency: HashMap::new(),
            webrtc_capable: HashSet::new(),
            upgrading: HashMap::new(),
            upgrade_failed: HashMap::new(),
            last_replace_ms: now,
            relay_listeners: HashMap::new(),
            namespace,
            rendezvous_points: HashMap::new(),
            next_bootstrap_ms: now + FIRST_FALLBACK_MS,
            listen: Vec::new(),
        }
    }

    /// When [`Connections::on_timer`] has work, if ever.
    /// Only times after `mono` count for retries already declined, so a
    /// retry that found nothing to do does not wake the loop again at once.
    pub fn next_wakeup(&self, swarm: &Swarm<Behaviour>, mono: u64) -> Option<u64> {
        let mut at: Vec<u64> = Vec::new();
        if !self.missing_bootstrap(swarm, |_| false).is_empty() {
            at.push(self.next_bootstrap_ms);
        }
        at.extend(self.rendezvous_points.values().map(|(_, last)| last + RENDEZVOUS_REFRESH_MS + 1));
        if swarm.behaviour().signaling.is_enabled() {
            at.extend(self.upgrading.values().map(|t| t + UPGRADE_FORGET_MS));
            let direct = self.direct_webrtc_peers();
            for peer in self.webrtc_capable.iter().filter(|p| !direct.contains(p) && !self.upgrading.contains_key(p)) {
                if let Some((t, f)) = self.upgrade_failed.get(peer)
                    && t + webrtc_retry_after(*f) > mono
                {
                    at.push(t + webrtc_retry_after(*f));
                }
            }
            if direct.len() >= self.target_direct_peers && self.webrtc_capable.len() > direct.len() {
                at.push(self.last_replace_ms + REPLACE_SLOW_EVERY_MS);
            }
        }
        at.into_iter().min()
    }

    fn missing_bootstrap(&self, swarm: &Swarm<Behaviour>, banned: impl Fn(&PeerId) -> bool) -> Vec<Multiaddr> {
        self.bootstrap
            .iter()
            .filter(|a| match a.iter().last() {
                Some(Protocol::P2p(peer)) => !swarm.is_connected(&peer) && !banned(&peer),
                _ => false,
            })
            .cloned()
            .collect()
    }

    pub fn on_timer(&mut self, swarm: &mut Swarm<Behaviour>, service: &NodeService<PeerId>, mono: u64) {
        if mono >= self.next_bootstrap_ms {
            self.next_bootstrap_ms = mono + BOOTSTRAP_REDIAL_MS;
            let t = service_now(mono);
            let missing = self.missing_bootstrap(swarm, |p| service.is_banned(p, t));
            if !missing.is_empty() {
                tracing::debug!(n = missing.len(), "redialling bootstrap peers");
                dial_bootstrap(swarm, &missing, false);
            }
        }
        let due: Vec<PeerId> = self
            .rendezvous_points
            .iter()
            .filter(|(_, (_, last))| mono.saturating_sub(*last) > RENDEZVOUS_REFRESH_MS)
            .map(|(p, _)| *p)
            .collect();
        for point in due {
            self.rendezvous_refresh(swarm, point, mono);
        }
        if swarm.behaviour().signaling.is_enabled() {
            // Handshakes are bounded by the transport; this only forgets
            // ones whose outcome never reached us.
            self.upgrading.retain(|_, t| mono.saturating_sub(*t) < UPGRADE_FORGET_MS);
            // Kept past the longest delay, so the count (and with it the delay) holds.
            self.upgrade_failed.retain(|_, (t, _)| mono.saturating_sub(*t) < 2 * WEBRTC_RETRY_MS);
            // Not only handshaken peers: a plain libp2p peer (js-libp2p) never
            // passes our status handshake yet may well take a direct connection.
            self.scan_upgrades(swarm, mono);
            let candidates: Vec<PeerId> = self.webrtc_capable.iter().copied().collect();
            self.maybe_replace_slow(swarm, &candidates, mono);
        }
    }

    pub fn on_new_listen_addr(&mut self, swarm: &mut Swarm<Behaviour>, address: &Multiaddr, mono: u64) -> bool {
        let relayed = address.iter().any(|p| p == Protocol::P2pCircuit);
        if self.advertise_listen_addrs || relayed {
            // A circuit address is reachable by construction: it is how
            // peers behind NAT (browsers) get dialled at all.
            swarm.add_external_address(address.clone());
        }
        if relayed && swarm.behaviour().signaling.is_enabled() {
            // `<relay>/p2p-circuit/webrtc/p2p/<us>`: the form js-libp2p
            // dials for `/webrtc`, `/webrtc` before our own `/p2p`.
            let me = *swarm.local_peer_id();
            let mut base: Vec<Protocol> = address.iter().collect();
            if base.last() == Some(&Protocol::P2p(me)) {
                base.pop();
            }
            let webrtc: Multiaddr = base.into_iter().chain([Protocol::WebRTC, Protocol::P2p(me)]).collect();
            swarm.add_external_address(webrtc);
        }
        if relayed {
            // Register the new address at once rather than at the next
            // refresh: it is how other browsers find us.
            let points: Vec<PeerId> = self.rendezvous_points.keys().copied().collect();
            for point in points {
                self.rendezvous_refresh(swarm, point, mono);
            }
        }
        if !self.listen.contains(address) {
            self.listen.push(address.clone());
        }
        relayed
    }

    pub fn on_expired_listen_addr(&mut self, swarm: &mut Swarm<Behaviour>, address: &Multiaddr) {
        self.listen.retain(|a| a != address);
        swarm.remove_external_address(address);
    }

    pub fn on_listener_closed(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        listener: libp2p::core::transport::ListenerId,
        addresses: &[Multiaddr],
    ) {
        self.relay_listeners.retain(|_, l| *l != listener);
        self.listen.retain(|a| !addresses.contains(a));
        for a in addresses {
            swarm.remove_external_address(a);
        }
    }

    pub fn on_established(&mut self, swarm: &mut Swarm<Behaviour>, id: ConnectionId, conn: ConnInfo) {
        let (peer, direct) = (conn.peer, conn.is_direct_webrtc());
        self.conns.insert(id, conn);
        if direct {
            self.on_direct_webrtc(swarm, peer);
        }
    }

    /// A connection closed; `last`: it was the peer's last. Returns whether
    /// it was a direct `/webrtc` one (a slot for another peer).
    pub fn on_closed(&mut self, id: ConnectionId, peer: PeerId, last: bool) -> bool {
        let direct = self.conns.remove(&id).is_some_and(|c| c.is_direct_webrtc());
        if last {
            self.upgrading.remove(&peer);
            self.latency.remove(&peer);
            self.webrtc_capable.remove(&peer);
        }
        direct
    }

    /// A dial failed; true if it was a `/webrtc` upgrade.
    pub fn on_dial_failed(&mut self, peer: PeerId, mono: u64) -> bool {
        if self.upgrading.remove(&peer).is_some() {
            self.upgrade_failed_now(peer, mono);
            return true;
        }
        false
    }

    pub fn on_identify(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        peer: PeerId,
        info: &identify::Info,
        connected: bool,
        mono: u64,
    ) {
        let webrtc = info.protocols.iter().any(|p| p.as_ref() == WEBRTC_SIGNALING_PROTOCOL);
        if webrtc && connected {
            self.webrtc_capable.insert(peer);
            self.maybe_upgrade(swarm, peer, mono);
        }
        if info.protocols.iter().any(|p| p.as_ref() == RELAY_HOP_PROTOCOL) {
            self.reserve_on_relay(swarm, peer);
        }
        let is_point = info.protocols.iter().any(|p| p.as_ref() == RENDEZVOUS_PROTOCOL);
        if is_point
            && !self.rendezvous_points.contains_key(&peer)
            && self.rendezvous_points.len() < MAX_RENDEZVOUS_POINTS
        {
            self.rendezvous_points.insert(peer, (None, 0));
            self.rendezvous_refresh(swarm, peer, mono);
        }
    }

    /// A peer's best live connection (direct before relayed), by which it is
    /// shown and through which a relay is asked for a reservation.
    pub fn best_conn(&self, peer: &PeerId) -> Option<&ConnInfo> {
        self.conns.values().filter(|c| c.peer == *peer).min_by_key(|c| (c.relayed, !c.is_direct_webrtc()))
    }
}
