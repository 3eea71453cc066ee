//! Discovery and reachability as a [`NetworkBehaviour`] with no protocol of
//! its own: bootstrap dials and redials, relay reservations, our external
//! addresses (listen addresses when advertised, the circuit and its `/webrtc`
//! form), and rendezvous registration and discovery, which it asks of the
//! rendezvous client through the driver ([`DiscoveryEvent`]). It learns
//! connections and listen addresses from the swarm; the driver feeds it
//! identify's protocols, rendezvous answers and its timer.

use std::collections::{HashMap, HashSet};
use std::task::{Context, Poll};

use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{FromSwarm, ListenOpts, NetworkBehaviour, THandlerInEvent, ToSwarm};
use libp2p::{Multiaddr, PeerId, StreamProtocol, rendezvous};

use super::Actions;
use crate::addr::{AddrKind, classify};
use crate::clock::Clock;

const RELAY_HOP_PROTOCOL: &str = "/libp2p/circuit/relay/0.2.0/hop";
const RENDEZVOUS_PROTOCOL: &str = "/rendezvous/1.0.0";
const RENDEZVOUS_REFRESH_MS: u64 = 30_000;
pub const RENDEZVOUS_TTL_SECS: u64 = 2 * 60 * 60;
const MAX_RENDEZVOUS_POINTS: usize = 8;
/// Registrations read from one rendezvous answer.
pub const MAX_DISCOVERED: usize = 64;
/// Bootstrap peers we are not connected to are dialled again this often (a
/// relay that restarted, or a first dial that failed); the first time after
/// `FIRST_FALLBACK_MS`, racing every address.
const BOOTSTRAP_REDIAL_MS: u64 = 10_000;
const FIRST_FALLBACK_MS: u64 = 3_000;

/// A dial to a discovered peer, unless we are connected to it or dialing it
/// already: discovery repeats (rendezvous, peer exchange), and each plain dial
/// would open another relayed connection to the same page.
pub(crate) fn dial_once(peer: PeerId, addr: Multiaddr) -> DialOpts {
    DialOpts::peer_id(peer).addresses(vec![addr]).condition(PeerCondition::DisconnectedAndNotDialing).build()
}

/// The address to dial for a discovered one: `…/p2p-circuit/webrtc/p2p/X`
/// is reached by its circuit first (the `/webrtc` upgrade follows over it),
/// and no other transport may take that form.
pub fn dialable(addr: Multiaddr) -> Multiaddr {
    if classify(&addr) != AddrKind::CircuitWebRtc {
        return addr;
    }
    let mut out = Multiaddr::empty();
    let mut prev_circuit = false;
    for p in addr.iter() {
        if !(prev_circuit && p == Protocol::WebRTC) {
            prev_circuit = p == Protocol::P2pCircuit;
            out.push(p);
        }
    }
    out
}

/// The dials for a rendezvous answer: each registered peer (not us, not
/// skipped: known or banned) at its first address, none when the node
/// wants no more peers, at most [`MAX_DISCOVERED`].
pub fn discovered_dials(
    registrations: &[rendezvous::Registration],
    me: PeerId,
    skip: impl Fn(&PeerId) -> bool,
    wants_peers: bool,
) -> Vec<DialOpts> {
    if !wants_peers {
        return Vec::new();
    }
    registrations
        .iter()
        .take(MAX_DISCOVERED)
        .filter_map(|reg| {
            let peer = reg.record.peer_id();
            if peer == me || skip(&peer) {
                return None;
            }
            let addr = dialable(reg.record.addresses().first()?.clone()).with_p2p(peer).unwrap_or_else(|a| a);
            tracing::debug!(%addr, "dialing a peer found by rendezvous");
            Some(dial_once(peer, addr))
        })
        .collect()
}

/// Each bootstrap peer's dial. The first attempt uses stream transports
/// (TCP, QUIC, WebSocket) where a peer has any; later attempts race all its
/// addresses and keep whichever connects, so a browser falls back to
/// WebRTC-direct within seconds when WebSocket fails, even if the failed
/// WebSocket dial never reports. Decision: WebSocket first rather than racing
/// from the start, because relayed-circuit discovery over WebRTC-direct is
/// not yet reliable (see the browser issue notes); sync and gossip over it
/// are tested. Addresses without a peer id are dialled on their own.
pub fn bootstrap_dials(addrs: &[Multiaddr], first: bool) -> Vec<DialOpts> {
    bootstrap_plan(addrs, first)
        .into_iter()
        .map(|(peer, addrs)| match peer {
            Some(peer) => DialOpts::peer_id(peer).condition(PeerCondition::Disconnected).addresses(addrs).build(),
            None => DialOpts::unknown_peer_id().address(addrs[0].clone()).build(),
        })
        .collect()
}

/// [`bootstrap_dials`]' addresses: per peer (in order of first mention),
/// then one entry per address without a peer id.
fn bootstrap_plan(addrs: &[Multiaddr], first: bool) -> Vec<(Option<PeerId>, Vec<Multiaddr>)> {
    let mut by_peer: Vec<(Option<PeerId>, Vec<Multiaddr>)> = Vec::new();
    let mut anonymous = Vec::new();
    for addr in addrs {
        match addr.iter().last() {
            Some(Protocol::P2p(peer)) => match by_peer.iter_mut().find(|(p, _)| *p == Some(peer)) {
                Some((_, v)) => v.push(addr.clone()),
                None => by_peer.push((Some(peer), vec![addr.clone()])),
            },
            _ => anonymous.push((None, vec![addr.clone()])),
        }
    }
    for (_, addrs) in &mut by_peer {
        let is_rtc = |a: &Multiaddr| classify(a) == AddrKind::WebRtcDirect;
        if first && addrs.iter().any(|a| !is_rtc(a)) {
            addrs.retain(|a| !is_rtc(a));
        }
    }
    by_peer.extend(anonymous);
    by_peer
}

/// The `/webrtc` form of a circuit address, `<relay>/p2p-circuit/webrtc/p2p/<us>`:
/// the form js-libp2p dials for `/webrtc`, `/webrtc` before our own `/p2p`.
fn webrtc_form(circuit: &Multiaddr, me: PeerId) -> Multiaddr {
    let mut base: Vec<Protocol> = circuit.iter().collect();
    if base.last() == Some(&Protocol::P2p(me)) {
        base.pop();
    }
    base.into_iter().chain([Protocol::WebRTC, Protocol::P2p(me)]).collect()
}

/// What discovery asks of the rendezvous client (a sibling behaviour).
#[derive(Debug)]
pub enum DiscoveryEvent {
    Register { point: PeerId, namespace: rendezvous::Namespace },
    Discover { point: PeerId, namespace: rendezvous::Namespace, cookie: Option<rendezvous::Cookie> },
}

#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    pub bootstrap: Vec<Multiaddr>,
    /// Addresses we know others reach us at (a relay's public address).
    pub external_addrs: Vec<Multiaddr>,
    /// Our listen addresses are reachable (a server), not only circuits.
    pub advertise_listen_addrs: bool,
    pub max_relay_reservations: usize,
    /// The swarm carries the relay client (reservations are possible).
    pub relay_client: bool,
    /// The swarm carries `/webrtc` (circuits get their `/webrtc` form).
    pub webrtc: bool,
    pub namespace: rendezvous::Namespace,
    /// Take reservations on, and use as rendezvous points, any peer that
    /// says it is a relay or a point. Off by default: only the bootstrap
    /// peers (and peers the application dials itself) are trusted with our
    /// reachability and our discovery, since any peer can announce the
    /// protocols, and a reservation slot is ours to spend.
    pub trust_any_relay: bool,
}

/// The behaviour. Inert until [`Discovery::start`].
#[derive(Default)]
pub struct Discovery {
    started: Option<(DiscoveryConfig, Clock, PeerId)>,
    connected: HashSet<PeerId>,
    external: HashSet<Multiaddr>,
    /// Relays we asked for a reservation (listening on their circuit).
    relay_listeners: HashMap<PeerId, ListenerId>,
    /// Rendezvous points we use, with the last discovery cookie and time.
    rendezvous_points: HashMap<PeerId, (Option<rendezvous::Cookie>, u64)>,
    /// When to dial missing bootstrap peers again.
    next_bootstrap_ms: u64,
    listen: Vec<Multiaddr>,
    /// Peers trusted as relays and rendezvous points: the bootstrap peers
    /// (by id, or reached by dialling a bootstrap address) and those the
    /// application dialled. Bounded by the config and the application.
    trusted: HashSet<PeerId>,
    /// Bounded by what it is fed: dials per bootstrap peer, one listen per
    /// relay, two addresses per listen address, two requests per point.
    actions: Actions<DiscoveryEvent>,
}

impl Discovery {
    /// Dials the bootstrap peers and confirms the configured external addresses.
    pub fn start(&mut self, cfg: DiscoveryConfig, clock: Clock, local: PeerId) {
        self.next_bootstrap_ms = clock.mono_ms() + FIRST_FALLBACK_MS;
        for opts in bootstrap_dials(&cfg.bootstrap, true) {
            self.actions.push(ToSwarm::Dial { opts });
        }
        for addr in &cfg.external_addrs {
            self.actions.push(ToSwarm::ExternalAddrConfirmed(addr.clone()));
        }
        self.trusted.extend(cfg.bootstrap.iter().filter_map(|a| match a.iter().last() {
            Some(Protocol::P2p(peer)) => Some(peer),
            _ => None,
        }));
        self.started = Some((cfg, clock, local));
    }

    /// The application dialled `peer` itself: it may serve as our relay and
    /// rendezvous point.
    pub fn trust(&mut self, peer: PeerId) {
        self.trusted.insert(peer);
    }

    fn trusts(&self, peer: &PeerId) -> bool {
        self.trusted.contains(peer) || self.started.as_ref().is_some_and(|(c, _, _)| c.trust_any_relay)
    }

    /// The addresses we listen on (relay circuits included).
    pub fn listen(&self) -> &[Multiaddr] {
        &self.listen
    }

    fn mono(&self) -> u64 {
        self.started.as_ref().map_or(0, |(_, c, _)| c.mono_ms())
    }

    fn missing_bootstrap(&self, banned: impl Fn(&PeerId) -> bool) -> Vec<Multiaddr> {
        let Some((cfg, _, _)) = &self.started else { return Vec::new() };
        cfg.bootstrap
            .iter()
            .filter(|a| match a.iter().last() {
                Some(Protocol::P2p(peer)) => !self.connected.contains(&peer) && !banned(&peer),
                _ => false,
            })
            .cloned()
            .collect()
    }

    /// When [`Discovery::on_timer`] has work, if ever.
    pub fn next_wakeup(&self) -> Option<u64> {
        self.started.as_ref()?;
        let mut at: Vec<u64> = Vec::new();
        if !self.missing_bootstrap(|_| false).is_empty() {
            at.push(self.next_bootstrap_ms);
        }
        at.extend(self.rendezvous_points.values().map(|(_, last)| last + RENDEZVOUS_REFRESH_MS + 1));
        at.into_iter().min()
    }

    /// Redials missing bootstrap peers (not `banned` ones) and refreshes
    /// rendezvous registrations, when due.
    pub fn on_timer(&mut self, banned: impl Fn(&PeerId) -> bool) {
        if self.started.is_none() {
            return;
        }
        let mono = self.mono();
        if mono >= self.next_bootstrap_ms {
            self.next_bootstrap_ms = mono + BOOTSTRAP_REDIAL_MS;
            let missing = self.missing_bootstrap(banned);
            if !missing.is_empty() {
                tracing::debug!(n = missing.len(), "redialling bootstrap peers");
                for opts in bootstrap_dials(&missing, false) {
                    self.actions.push(ToSwarm::Dial { opts });
                }
            }
        }
        let due: Vec<PeerId> = self
            .rendezvous_points
            .iter()
            .filter(|(_, (_, last))| mono.saturating_sub(*last) > RENDEZVOUS_REFRESH_MS)
            .map(|(p, _)| *p)
            .collect();
        for point in due {
            self.rendezvous_refresh(point);
        }
    }

    /// Identify's protocols of a peer, and the address we reach it at: a relay
    /// is asked for a reservation, a rendezvous point is used.
    pub fn on_identify(&mut self, peer: PeerId, protocols: &[StreamProtocol], addr: Option<&Multiaddr>) {
        if !self.trusts(&peer) {
            return;
        }
        if protocols.iter().any(|p| p.as_ref() == RELAY_HOP_PROTOCOL)
            && let Some(addr) = addr
        {
            self.reserve_on_relay(peer, addr);
        }
        let is_point = protocols.iter().any(|p| p.as_ref() == RENDEZVOUS_PROTOCOL);
        if is_point
            && !self.rendezvous_points.contains_key(&peer)
            && self.rendezvous_points.len() < MAX_RENDEZVOUS_POINTS
        {
            self.rendezvous_points.insert(peer, (None, 0));
            self.rendezvous_refresh(peer);
        }
    }

    /// A rendezvous point answered a discovery: the next one continues from `cookie`.
    pub fn on_discovered(&mut self, point: PeerId, cookie: rendezvous::Cookie) {
        if let Some(entry) = self.rendezvous_points.get_mut(&point) {
            entry.0 = Some(cookie);
        }
    }

    /// Registers under the chain's namespace (when we have an address to
    /// give) and asks for the others registered there.
    fn rendezvous_refresh(&mut self, point: PeerId) {
        let mono = self.mono();
        let Some(namespace) = self.started.as_ref().map(|(c, _, _)| c.namespace.clone()) else { return };
        let cookie = match self.rendezvous_points.get_mut(&point) {
            Some(entry) => {
                entry.1 = mono;
                entry.0.clone()
            }
            None => return,
        };
        if !self.external.is_empty() {
            self.actions.push(ToSwarm::GenerateEvent(DiscoveryEvent::Register { point, namespace: namespace.clone() }));
        }
        self.actions.push(ToSwarm::GenerateEvent(DiscoveryEvent::Discover { point, namespace, cookie }));
    }

    /// Listens on a relay's circuit (the relay client then keeps the
    /// reservation alive), so peers that cannot dial us directly still can.
    fn reserve_on_relay(&mut self, relay: PeerId, addr: &Multiaddr) {
        let Some((cfg, _, _)) = &self.started else { return };
        if !cfg.relay_client
            || self.relay_listeners.contains_key(&relay)
            || self.relay_listeners.len() >= cfg.max_relay_reservations
        {
            return;
        }
        let addr = addr.clone().with_p2p(relay).unwrap_or_else(|a| a).with(Protocol::P2pCircuit);
        let opts = ListenOpts::new(addr.clone());
        tracing::info!(%addr, "reserving a relay slot");
        self.relay_listeners.insert(relay, opts.listener_id());
        self.actions.push(ToSwarm::ListenOn { opts });
    }

    fn on_new_listen_addr(&mut self, address: &Multiaddr) {
        let Some((cfg, _, me)) = &self.started else { return };
        let (advertise, webrtc, me) = (cfg.advertise_listen_addrs, cfg.webrtc, *me);
        let relayed = address.iter().any(|p| p == Protocol::P2pCircuit);
        if advertise || relayed {
            // A circuit address is reachable by construction: it is how
            // peers behind NAT (browsers) get dialled at all.
            self.actions.push(ToSwarm::ExternalAddrConfirmed(address.clone()));
        }
        if relayed && webrtc {
            self.actions.push(ToSwarm::ExternalAddrConfirmed(webrtc_form(address, me)));
        }
        if relayed {
            // Register the new address at once rather than at the next
            // refresh: it is how other browsers find us. (The confirmation
            // above reaches `external` before these are sent.)
            self.external.insert(address.clone());
            let points: Vec<PeerId> = self.rendezvous_points.keys().copied().collect();
            for point in points {
                self.rendezvous_refresh(point);
            }
        }
        if !self.listen.contains(address) {
            self.listen.push(address.clone());
        }
    }

    fn on_expired_listen_addr(&mut self, address: &Multiaddr) {
        self.listen.retain(|a| a != address);
        if self.external.contains(address) {
            self.actions.push(ToSwarm::ExternalAddrExpired(address.clone()));
        }
        if let Some((cfg, _, me)) = &self.started
            && cfg.webrtc
            && address.iter().any(|p| p == Protocol::P2pCircuit)
        {
            let form = webrtc_form(address, *me);
            self.actions.push(ToSwarm::ExternalAddrExpired(form));
        }
    }
}

impl NetworkBehaviour for Discovery {
    super::no_protocol_handler!();
    type ToSwarm = DiscoveryEvent;

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionEstablished(e) => {
                self.connected.insert(e.peer_id);
                // A bootstrap address given without its peer id: the peer
                // we reached by dialling it is the bootstrap peer.
                if e.endpoint.is_dialer()
                    && let Some((cfg, _, _)) = &self.started
                {
                    let bare =
                        |a: &Multiaddr| a.iter().filter(|p| !matches!(p, Protocol::P2p(_))).collect::<Multiaddr>();
                    let remote = bare(e.endpoint.get_remote_address());
                    if cfg.bootstrap.iter().any(|b| bare(b) == remote) {
                        self.trusted.insert(e.peer_id);
                    }
                }
            }
            FromSwarm::ConnectionClosed(c) if c.remaining_established == 0 => {
                self.connected.remove(&c.peer_id);
            }
            FromSwarm::NewListenAddr(e) => self.on_new_listen_addr(e.addr),
            FromSwarm::ExpiredListenAddr(e) => self.on_expired_listen_addr(e.addr),
            FromSwarm::ListenerClosed(e) => self.relay_listeners.retain(|_, l| *l != e.listener_id),
            FromSwarm::ListenerError(e) => {
                tracing::debug!(error = %e.err, "relay reservation");
                self.relay_listeners.retain(|_, l| *l != e.listener_id);
            }
            FromSwarm::ExternalAddrConfirmed(e) => {
                self.external.insert(e.addr.clone());
            }
            FromSwarm::ExternalAddrExpired(e) => {
                self.external.remove(e.addr);
            }
            _ => {}
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        self.actions.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::swarm::behaviour::NewListenAddr;
    use std::convert::Infallible;

    #[test]
    fn a_circuit_webrtc_address_is_dialled_by_its_circuit() {
        let relay: Multiaddr =
            "/ip4/127.0.0.1/tcp/4002/ws/p2p/12D3KooWAjX84smipF7zpqEeySyg2MxxFaprALC65269MpufrKgt".parse().unwrap();
        let peer = PeerId::random();
        let circuit = relay.clone().with(Protocol::P2pCircuit).with(Protocol::P2p(peer));
        let webrtc = relay.with(Protocol::P2pCircuit).with(Protocol::WebRTC).with(Protocol::P2p(peer));
        assert_eq!(dialable(webrtc), circuit);
        assert_eq!(dialable(circuit.clone()), circuit);
        let direct = Multiaddr::empty().with(Protocol::WebRTC).with(Protocol::P2p(peer));
        assert_eq!(dialable(direct.clone()), direct);
    }

    #[test]
    fn the_first_bootstrap_dial_prefers_stream_transports_and_later_ones_race_all() {
        let relay = PeerId::random();
        let ws: Multiaddr = format!("/ip4/127.0.0.1/tcp/4002/ws/p2p/{relay}").parse().unwrap();
        let rtc: Multiaddr = format!("/ip4/127.0.0.1/udp/4003/webrtc-direct/p2p/{relay}").parse().unwrap();
        let bare: Multiaddr = "/ip4/127.0.0.1/tcp/4004/ws".parse().unwrap();
        let all = [ws.clone(), bare.clone(), rtc.clone()];
        assert_eq!(bootstrap_plan(&all, true), [(Some(relay), vec![ws.clone()]), (None, vec![bare.clone()])]);
        assert_eq!(bootstrap_plan(&all, false), [(Some(relay), vec![ws, rtc.clone()]), (None, vec![bare])]);
        // Only WebRTC-direct known: the first dial uses it rather than nothing.
        assert_eq!(bootstrap_plan(std::slice::from_ref(&rtc), true), [(Some(relay), vec![rtc])]);
        assert_eq!(bootstrap_dials(&all, true).len(), 2);
    }

    fn started(webrtc: bool) -> (Discovery, PeerId) {
        let me = PeerId::random();
        let mut d = Discovery::default();
        let cfg = DiscoveryConfig {
            bootstrap: Vec::new(),
            external_addrs: Vec::new(),
            advertise_listen_addrs: false,
            max_relay_reservations: 1,
            relay_client: true,
            webrtc,
            namespace: rendezvous::Namespace::from_static("protoblock/test"),
            // The trust rule has its own test; the others take any relay.
            trust_any_relay: true,
        };
        d.start(cfg, Clock::new(), me);
        (d, me)
    }

    fn drain(d: &mut Discovery) -> Vec<ToSwarm<DiscoveryEvent, Infallible>> {
        d.actions.drain()
    }

    /// A relay is asked for one reservation (the limit), and a circuit
    /// address becomes external in both its forms; on expiry both go.
    #[test]
    fn a_relay_reservation_makes_the_circuit_and_its_webrtc_form_external() {
        let (mut d, me) = started(true);
        let relay = PeerId::random();
        let hop = [StreamProtocol::new(RELAY_HOP_PROTOCOL)];
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/4002/ws".parse().unwrap();
        d.on_identify(relay, &hop, Some(&addr));
        d.on_identify(relay, &hop, Some(&addr));
        d.on_identify(PeerId::random(), &hop, Some(&addr));
        let listens = drain(&mut d).into_iter().filter(|a| matches!(a, ToSwarm::ListenOn { .. })).count();
        assert_eq!(listens, 1, "one reservation, at most max_relay_reservations");

        let circuit = addr.with_p2p(relay).unwrap().with(Protocol::P2pCircuit).with(Protocol::P2p(me));
        d.on_swarm_event(FromSwarm::NewListenAddr(NewListenAddr { listener_id: ListenerId::next(), addr: &circuit }));
        let confirmed: Vec<Multiaddr> = drain(&mut d)
            .into_iter()
            .filter_map(|a| match a {
                ToSwarm::ExternalAddrConfirmed(a) => Some(a),
                _ => None,
            })
            .collect();
        assert_eq!(confirmed, [circuit.clone(), webrtc_form(&circuit, me)]);
        assert_eq!(d.listen(), std::slice::from_ref(&circuit));
        assert_eq!(classify(&confirmed[1]), AddrKind::CircuitWebRtc);

        d.on_swarm_event(FromSwarm::ExpiredListenAddr(libp2p::swarm::behaviour::ExpiredListenAddr {
            listener_id: ListenerId::next(),
            addr: &circuit,
        }));
        let expired = drain(&mut d).into_iter().filter(|a| matches!(a, ToSwarm::ExternalAddrExpired(_))).count();
        assert_eq!(expired, 2);
        assert!(d.listen().is_empty());
    }

    /// A rendezvous point is used once identified; registration waits for an
    /// address to give, discovery does not.
    #[test]
    fn a_rendezvous_point_is_asked_to_discover_and_to_register_once_we_have_an_address() {
        let (mut d, _) = started(false);
        let point = PeerId::random();
        d.on_identify(point, &[StreamProtocol::new(RENDEZVOUS_PROTOCOL)], None);
        let asks = drain(&mut d);
        assert!(matches!(asks.as_slice(), [ToSwarm::GenerateEvent(DiscoveryEvent::Discover { .. })]));
        let external: Multiaddr = "/ip4/127.0.0.1/tcp/9".parse().unwrap();
        d.on_swarm_event(FromSwarm::ExternalAddrConfirmed(libp2p::swarm::behaviour::ExternalAddrConfirmed {
            addr: &external,
        }));
        d.rendezvous_refresh(point);
        let asks = drain(&mut d);
        assert!(matches!(
            asks.as_slice(),
            [
                ToSwarm::GenerateEvent(DiscoveryEvent::Register { .. }),
                ToSwarm::GenerateEvent(DiscoveryEvent::Discover { .. })
            ]
        ));
        assert!(d.next_wakeup().is_some_and(|t| t > RENDEZVOUS_REFRESH_MS), "refreshed on a timer");
    }

    /// Any peer can announce the relay hop and rendezvous protocols: only
    /// the bootstrap peers and those the application dialled are asked for
    /// a reservation or used as a point (anyone else took a slot before).
    #[test]
    fn only_trusted_peers_serve_as_relays_and_rendezvous_points() {
        let me = PeerId::random();
        let boot = PeerId::random();
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/4002/ws".parse().unwrap();
        let mut d = Discovery::default();
        let cfg = DiscoveryConfig {
            bootstrap: vec![addr.clone().with_p2p(boot).unwrap()],
            external_addrs: vec![],
            advertise_listen_addrs: false,
            max_relay_reservations: 4,
            relay_client: true,
            webrtc: false,
            namespace: rendezvous::Namespace::from_static("protoblock/test"),
            trust_any_relay: false,
        };
        d.start(cfg, Clock::new(), me);
        drain(&mut d);
        let both = [StreamProtocol::new(RELAY_HOP_PROTOCOL), StreamProtocol::new(RENDEZVOUS_PROTOCOL)];
        let stranger = PeerId::random();
        d.on_identify(stranger, &both, Some(&addr));
        assert!(drain(&mut d).is_empty(), "a stranger announcing itself a relay and a point is not used");
        d.on_identify(boot, &both, Some(&addr));
        let acts = drain(&mut d);
        assert!(acts.iter().any(|a| matches!(a, ToSwarm::ListenOn { .. })), "the bootstrap relay is asked");
        assert!(acts.iter().any(|a| matches!(a, ToSwarm::GenerateEvent(DiscoveryEvent::Discover { .. }))));
        d.trust(stranger);
        d.on_identify(stranger, &both, Some(&addr));
        assert!(drain(&mut d).iter().any(|a| matches!(a, ToSwarm::ListenOn { .. })), "dialled by the application");
    }
}
