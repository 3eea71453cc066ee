//! The WebRTC mesh as a [`NetworkBehaviour`] with no protocol of its own: who
//! offers the `/webrtc` upgrade, backoff after failed upgrades, replacing a
//! far slower direct peer, closing the relayed path once a direct one is up.
//! It learns connections from the swarm itself; the driver feeds it what
//! other behaviours learn (identify's protocols, ping's round trips) and its
//! timer. Its decisions are the pure functions below.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::task::{Context, Poll};

use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{
    CloseConnection, ConnectionClosed, ConnectionDenied, ConnectionId, DialFailure, FromSwarm, NetworkBehaviour,
    THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId, StreamProtocol};

use super::{Actions, ConnInfo};
use crate::clock::Clock;

/// A peer that speaks this can be upgraded from a relayed connection to a
/// direct `/webrtc` one (the transport lives in protoblock-webrtc).
pub const WEBRTC_SIGNALING_PROTOCOL: &str = "/webrtc-signaling/0.0.1";
/// After failed `/webrtc` upgrades, keep the relayed path for 5 s, then 10,
/// 20, 40 and at most 60 s before trying again: a transient failure (a lost
/// signalling message, a busy page) costs seconds, and a path that never
/// works (symmetric NAT) one handshake a minute.
const WEBRTC_RETRY_FIRST_MS: u64 = 5_000;
const WEBRTC_RETRY_MS: u64 = 60_000;
/// Upgrades whose outcome never reached us are forgotten after this.
const UPGRADE_FORGET_MS: u64 = 60_000;
/// How often a slow direct peer may be swapped for a waiting one.
const REPLACE_SLOW_EVERY_MS: u64 = 30_000;

/// Direct peers we answer beyond our own target: the offerers decide whom to
/// link with, so a page at its target still takes a couple of newcomers (who
/// would otherwise find every page full), but a flood of offers cannot make
/// it hold a direct connection (an ICE agent, DTLS, SCTP) per offerer.
pub const INBOUND_DIRECT_SLACK: usize = 2;

/// Whether an answered `/webrtc` connection is kept: below the target plus
/// the slack, and not a second direct connection to the same peer.
pub fn accept_inbound_direct(direct_peers: usize, already_direct: bool, target: usize) -> bool {
    !already_direct && direct_peers < target.saturating_add(INBOUND_DIRECT_SLACK)
}

fn webrtc_retry_after(failures: u32) -> u64 {
    (WEBRTC_RETRY_FIRST_MS << failures.saturating_sub(1).min(8)).min(WEBRTC_RETRY_MS)
}

/// The direct peer to give up for a better one, once the direct set is full:
/// the slowest, if its ping is over both 500 ms and four times the median of
/// the set. A fixed bar alone would churn a mesh that is slow everywhere (a
/// phone on 3G); the median alone would churn a fast mesh over noise.
pub fn slow_direct_peer<P: Copy>(latencies: &[(P, u64)], target: usize) -> Option<P> {
    if target == 0 || latencies.len() < target {
        return None;
    }
    let mut sorted: Vec<u64> = latencies.iter().map(|(_, l)| *l).collect();
    sorted.sort_unstable();
    let median = sorted[sorted.len() / 2];
    let (slowest, l) = latencies.iter().max_by_key(|(_, l)| *l)?;
    (*l > 500 && *l > median.saturating_mul(4)).then_some(*slowest)
}

/// Whether we offer the `/webrtc` upgrade to a peer, from the relayed and
/// other connections we have to it: the dialer of the relayed connection
/// offers (as in the spec and js-libp2p, so two pages never both offer);
/// when both dialled each other through the relay, the lower peer id.
pub fn we_offer(relayed_out: bool, relayed_in: bool, other: bool, we_are_lower: bool) -> bool {
    relayed_out && (!relayed_in || we_are_lower) && !other
}

#[derive(Debug)]
struct DirectSetFull;

impl std::fmt::Display for DirectSetFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("direct /webrtc peers at their target")
    }
}

impl std::error::Error for DirectSetFull {}

/// What the mesh needs from the node's configuration.
#[derive(Debug, Clone, Copy)]
pub struct MeshConfig {
    /// The swarm carries `/webrtc` (signalling and transport); without it the
    /// mesh only keeps the connection table.
    pub webrtc: bool,
    pub target_direct_peers: usize,
}

/// The behaviour. Inert until [`Mesh::start`], so the swarm can be built
/// before the node's configuration is known.
#[derive(Default)]
pub struct Mesh {
    started: Option<(MeshConfig, Clock, PeerId)>,
    conns: HashMap<ConnectionId, ConnInfo>,
    latency: HashMap<PeerId, u64>,
    webrtc_capable: HashSet<PeerId>,
    /// `/webrtc` upgrades in flight (peer → started, its dial), and failed ones (peer → when, failures).
    upgrading: HashMap<PeerId, (u64, ConnectionId)>,
    upgrade_failed: HashMap<PeerId, (u64, u32)>,
    last_replace_ms: u64,
    /// Bounded by what it is fed: a dial and a close per connection or capable peer.
    actions: Actions<Infallible>,
}

impl Mesh {
    pub fn start(&mut self, cfg: MeshConfig, clock: Clock, local: PeerId) {
        self.last_replace_ms = clock.mono_ms();
        self.started = Some((cfg, clock, local));
    }

    fn webrtc(&self) -> bool {
        self.started.as_ref().is_some_and(|(c, _, _)| c.webrtc)
    }

    fn mono(&self) -> u64 {
        self.started.as_ref().map_or(0, |(_, c, _)| c.mono_ms())
    }

    fn target(&self) -> usize {
        self.started.as_ref().map_or(0, |(c, _, _)| c.target_direct_peers)
    }

    /// A peer's best live connection (direct before relayed), by which it is
    /// shown and through which a relay is asked for a reservation.
    pub fn best_conn(&self, peer: &PeerId) -> Option<&ConnInfo> {
        self.conns.values().filter(|c| c.peer == *peer).min_by_key(|c| (c.relayed, !c.is_direct_webrtc()))
    }

    pub fn latency(&self, peer: &PeerId) -> Option<u64> {
        self.latency.get(peer).copied()
    }

    /// Ping's round trip to a connected peer.
    pub fn on_ping(&mut self, peer: PeerId, rtt_ms: u64) {
        if self.conns.values().any(|c| c.peer == peer) {
            self.latency.insert(peer, rtt_ms);
        }
    }

    /// Identify's protocols of a peer: one that speaks `/webrtc` signalling
    /// may be upgraded.
    pub fn on_identify(&mut self, peer: PeerId, protocols: &[StreamProtocol]) {
        let connected = self.conns.values().any(|c| c.peer == peer);
        if connected && protocols.iter().any(|p| p.as_ref() == WEBRTC_SIGNALING_PROTOCOL) {
            self.webrtc_capable.insert(peer);
            self.maybe_upgrade(peer);
        }
    }

    /// When [`Mesh::on_timer`] has work, if ever. Only times after now count
    /// for retries already declined, so a retry that found nothing to do
    /// does not wake the loop again at once.
    pub fn next_wakeup(&self) -> Option<u64> {
        if !self.webrtc() {
            return None;
        }
        let mono = self.mono();
        let mut at: Vec<u64> = self.upgrading.values().map(|(t, _)| t + UPGRADE_FORGET_MS).collect();
        let direct = self.direct_webrtc_peers();
        for peer in self.webrtc_capable.iter().filter(|p| !direct.contains(p) && !self.upgrading.contains_key(p)) {
            if let Some((t, f)) = self.upgrade_failed.get(peer)
                && t + webrtc_retry_after(*f) > mono
            {
                at.push(t + webrtc_retry_after(*f));
            }
        }
        if direct.len() >= self.target() && self.webrtc_capable.len() > direct.len() {
            at.push(self.last_replace_ms + REPLACE_SLOW_EVERY_MS);
        }
        at.into_iter().min()
    }

    pub fn on_timer(&mut self) {
        if !self.webrtc() {
            return;
        }
        let mono = self.mono();
        // Handshakes are bounded by the transport; this only forgets ones
        // whose outcome never reached us.
        self.upgrading.retain(|_, (t, _)| mono.saturating_sub(*t) < UPGRADE_FORGET_MS);
        // Kept past the longest delay, so the count (and with it the delay) holds.
        self.upgrade_failed.retain(|_, (t, _)| mono.saturating_sub(*t) < 2 * WEBRTC_RETRY_MS);
        // Not only handshaken peers: a plain libp2p peer (js-libp2p) never
        // passes our status handshake yet may well take a direct connection.
        self.scan_upgrades();
        self.maybe_replace_slow();
    }

    /// Offers `/webrtc` to every capable peer that may take it now (also
    /// when a direct slot frees up).
    fn scan_upgrades(&mut self) {
        let candidates: Vec<PeerId> = self.webrtc_capable.iter().copied().collect();
        for peer in candidates {
            self.maybe_upgrade(peer);
        }
    }

    fn direct_webrtc_peers(&self) -> HashSet<PeerId> {
        self.conns.values().filter(|c| c.is_direct_webrtc()).map(|c| c.peer).collect()
    }

    /// Upgrades a relayed peer to a direct `/webrtc` connection when we
    /// offer (see [`we_offer`]), the peer speaks the signalling protocol,
    /// and we are below our target of direct peers.
    fn maybe_upgrade(&mut self, peer: PeerId) {
        let Some((cfg, clock, local)) = self.started else { return };
        let mono = clock.mono_ms();
        if !cfg.webrtc || self.upgrading.contains_key(&peer) || self.upgrade_recently_failed(&peer, mono) {
            return;
        }
        let (mut relayed_out, mut relayed_in, mut other) = (false, false, false);
        for c in self.conns.values().filter(|c| c.peer == peer) {
            match (c.relayed, c.dialer) {
                (true, true) => relayed_out = true,
                (true, false) => relayed_in = true,
                (false, _) => other = true,
            }
        }
        if !we_offer(relayed_out, relayed_in, other, local < peer) {
            return;
        }
        if self.direct_webrtc_peers().len() + self.upgrading.len() >= cfg.target_direct_peers {
            return;
        }
        let addr = Multiaddr::empty().with(Protocol::WebRTC).with(Protocol::P2p(peer));
        // `Always`: a relayed connection to the peer exists by design.
        let opts = DialOpts::peer_id(peer).addresses(vec![addr]).condition(PeerCondition::Always).build();
        tracing::info!(%peer, "upgrading a relayed peer to /webrtc");
        self.upgrading.insert(peer, (mono, opts.connection_id()));
        self.actions.push(ToSwarm::Dial { opts });
    }

    fn upgrade_failed_now(&mut self, peer: PeerId, mono: u64) {
        let failures = self.upgrade_failed.get(&peer).map_or(0, |(_, f)| *f).saturating_add(1);
        self.upgrade_failed.insert(peer, (mono, failures));
    }

    fn upgrade_recently_failed(&self, peer: &PeerId, mono: u64) -> bool {
        self.upgrade_failed.get(peer).is_some_and(|(t, f)| mono.saturating_sub(*t) < webrtc_retry_after(*f))
    }

    /// With the direct set full and a relayed peer waiting for a direct
    /// link, drops a direct peer that is far slower than the rest (see
    /// [`slow_direct_peer`]); the waiting one is upgraded in its place. Dead
    /// direct links need nothing here: ICE consent fails, the connection
    /// closes, and the next scan upgrades someone else.
    fn maybe_replace_slow(&mut self) {
        let mono = self.mono();
        if mono.saturating_sub(self.last_replace_ms) < REPLACE_SLOW_EVERY_MS {
            return;
        }
        self.last_replace_ms = mono;
        let direct = self.direct_webrtc_peers();
        let waiting = self.webrtc_capable.iter().any(|p| {
            !direct.contains(p)
                && !self.upgrade_recently_failed(p, mono)
                && self.conns.values().any(|c| c.peer == *p && c.relayed)
        });
        if !waiting {
            return;
        }
        let latencies: Vec<(PeerId, u64)> = direct.iter().filter_map(|p| Some((*p, *self.latency.get(p)?))).collect();
        let Some(slow) = slow_direct_peer(&latencies, self.target()) else { return };
        tracing::info!(peer = %slow, "replacing a slow direct peer");
        let ids: Vec<ConnectionId> =
            self.conns.iter().filter(|(_, c)| c.peer == slow && c.is_direct_webrtc()).map(|(id, _)| *id).collect();
        for id in ids {
            self.actions.push(ToSwarm::CloseConnection { peer_id: slow, connection: CloseConnection::One(id) });
        }
        // Not straight back into the direct set: the longest delay.
        self.upgrade_failed.insert(slow, (mono, u32::MAX));
    }

    /// A direct path to `peer` is up: its relayed connections only cost the
    /// relay bandwidth now, so close them (both sides do; either suffices).
    fn on_direct_webrtc(&mut self, peer: PeerId) {
        self.upgrading.remove(&peer);
        self.upgrade_failed.remove(&peer);
        let relayed: Vec<ConnectionId> =
            self.conns.iter().filter(|(_, c)| c.peer == peer && c.relayed).map(|(id, _)| *id).collect();
        for id in relayed {
            self.actions.push(ToSwarm::CloseConnection { peer_id: peer, connection: CloseConnection::One(id) });
        }
    }

    fn on_established(&mut self, id: ConnectionId, conn: ConnInfo) {
        let (peer, direct) = (conn.peer, conn.is_direct_webrtc());
        self.conns.insert(id, conn);
        if direct {
            self.on_direct_webrtc(peer);
        }
    }

    fn on_closed(&mut self, c: ConnectionClosed) {
        let direct = self.conns.remove(&c.connection_id).is_some_and(|c| c.is_direct_webrtc());
        if c.remaining_established == 0 {
            self.upgrading.remove(&c.peer_id);
            self.latency.remove(&c.peer_id);
            self.webrtc_capable.remove(&c.peer_id);
        }
        if direct {
            // A direct slot is free.
            self.scan_upgrades();
        }
    }

    fn on_dial_failure(&mut self, f: DialFailure) {
        let Some(peer) = f.peer_id else { return };
        if self.upgrading.get(&peer).is_some_and(|(_, id)| *id == f.connection_id) {
            self.upgrading.remove(&peer);
            tracing::info!(%peer, error = %f.error, "no direct /webrtc path; staying relayed");
            let mono = self.mono();
            self.upgrade_failed_now(peer, mono);
        }
    }
}

impl NetworkBehaviour for Mesh {
    type ConnectionHandler = libp2p::swarm::dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    /// Answered `/webrtc` connections over the direct-peer target (and its
    /// slack) are refused here; the transport bounds the handshakes.
    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        if self.webrtc() && crate::addr::classify(remote) == crate::addr::AddrKind::WebRtc {
            let direct = self.direct_webrtc_peers();
            if !accept_inbound_direct(direct.len(), direct.contains(&peer), self.target()) {
                tracing::debug!(%peer, direct = direct.len(), "refusing an answered /webrtc connection: direct set full");
                return Err(ConnectionDenied::new(DirectSetFull));
            }
        }
        Ok(libp2p::swarm::dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: libp2p::core::Endpoint,
        _: libp2p::core::transport::PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(libp2p::swarm::dummy::ConnectionHandler)
    }

    fn on_connection_handler_event(&mut self, _: PeerId, _: ConnectionId, event: THandlerOutEvent<Self>) {
        match event {}
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionEstablished(e) => {
                self.on_established(e.connection_id, ConnInfo::new(e.peer_id, e.endpoint))
            }
            FromSwarm::ConnectionClosed(c) => self.on_closed(c),
            FromSwarm::DialFailure(f) => self.on_dial_failure(f),
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
    use libp2p::core::transport::PortUse;
    use libp2p::core::{ConnectedPoint, Endpoint};

    #[test]
    fn failed_webrtc_upgrades_back_off_from_5_s_to_a_minute() {
        let delays: Vec<u64> = (1..=7).map(webrtc_retry_after).collect();
        assert_eq!(delays, [5_000, 10_000, 20_000, 40_000, 60_000, 60_000, 60_000]);
        assert_eq!(webrtc_retry_after(u32::MAX), 60_000);
    }

    #[test]
    fn a_slow_direct_peer_is_picked_only_when_the_set_is_full_and_it_stands_out() {
        let fast = [(1, 20), (2, 25), (3, 30), (4, 22), (5, 18)];
        // Full set (target 6) with one far slower peer: that one goes.
        let mut full: Vec<(u32, u64)> = fast.to_vec();
        full.push((6, 900));
        assert_eq!(slow_direct_peer(&full, 6), Some(6));
        // Below target: nobody is replaced, there is room for the waiting peer anyway.
        assert_eq!(slow_direct_peer(&full[1..], 6), None);
        // Slow, but not over 500 ms: kept.
        let mut mild = fast.to_vec();
        mild.push((6, 450));
        assert_eq!(slow_direct_peer(&mild, 6), None);
        // Everyone slow (a phone on 3G): no churn.
        let all_slow: Vec<(u32, u64)> = (1..=6).map(|i| (i, 800 + i as u64 * 10)).collect();
        assert_eq!(slow_direct_peer(&all_slow, 6), None);
        assert_eq!(slow_direct_peer::<u32>(&[], 0), None);
    }

    #[test]
    fn the_dialer_of_the_relayed_connection_offers_and_the_lower_id_breaks_ties() {
        assert!(we_offer(true, false, false, false));
        assert!(!we_offer(false, true, false, true), "the callee never offers");
        assert!(we_offer(true, true, false, true) && !we_offer(true, true, false, false));
        assert!(!we_offer(true, false, true, true), "a direct connection exists already");
    }

    fn relayed_dialer(relay: PeerId, peer: PeerId) -> ConnectedPoint {
        let address = Multiaddr::empty()
            .with(Protocol::Ip4([127, 0, 0, 1].into()))
            .with(Protocol::Tcp(1))
            .with(Protocol::P2p(relay))
            .with(Protocol::P2pCircuit)
            .with(Protocol::P2p(peer));
        ConnectedPoint::Dialer { address, role_override: Endpoint::Dialer, port_use: PortUse::Reuse }
    }

    fn established(mesh: &mut Mesh, id: ConnectionId, peer: PeerId, endpoint: &ConnectedPoint) {
        mesh.on_swarm_event(FromSwarm::ConnectionEstablished(libp2p::swarm::behaviour::ConnectionEstablished {
            peer_id: peer,
            connection_id: id,
            endpoint,
            failed_addresses: &[],
            other_established: 0,
        }));
    }

    fn drain(mesh: &mut Mesh) -> Vec<ToSwarm<Infallible, Infallible>> {
        mesh.actions.drain()
    }

    /// The behaviour on swarm facts alone: a relayed peer we dialled that
    /// speaks signalling is offered `/webrtc` once; when the direct
    /// connection comes up, the relayed one is closed; a failed upgrade is
    /// not retried within its backoff.
    #[test]
    fn a_relayed_peer_is_upgraded_once_and_its_relayed_path_closed_when_direct() {
        let (me, relay, peer) = (PeerId::random(), PeerId::random(), PeerId::random());
        let mut mesh = Mesh::default();
        mesh.start(MeshConfig { webrtc: true, target_direct_peers: 4 }, Clock::new(), me);
        let relayed = ConnectionId::new_unchecked(1);
        established(&mut mesh, relayed, peer, &relayed_dialer(relay, peer));
        let webrtc = [StreamProtocol::new(WEBRTC_SIGNALING_PROTOCOL)];
        mesh.on_identify(peer, &webrtc);
        let dials = drain(&mut mesh);
        assert!(matches!(dials.as_slice(), [ToSwarm::Dial { .. }]), "one upgrade dial");
        mesh.on_identify(peer, &webrtc);
        assert!(drain(&mut mesh).is_empty(), "no second offer while one is in flight");

        let direct = ConnectionId::new_unchecked(2);
        let addr = Multiaddr::empty().with(Protocol::WebRTC).with(Protocol::P2p(peer));
        let endpoint =
            ConnectedPoint::Dialer { address: addr, role_override: Endpoint::Dialer, port_use: PortUse::Reuse };
        established(&mut mesh, direct, peer, &endpoint);
        let closes = drain(&mut mesh);
        assert!(
            matches!(closes.as_slice(), [ToSwarm::CloseConnection { connection: CloseConnection::One(id), .. }] if *id == relayed),
            "the relayed path is closed"
        );
        assert!(mesh.best_conn(&peer).is_some_and(|c| c.is_direct_webrtc()), "direct is its best path");

        // Another peer whose upgrade fails: backed off.
        let other = PeerId::random();
        established(&mut mesh, ConnectionId::new_unchecked(3), other, &relayed_dialer(relay, other));
        mesh.on_identify(other, &webrtc);
        let Some(ToSwarm::Dial { opts }) = drain(&mut mesh).pop() else { panic!("an upgrade dial") };
        let err = libp2p::swarm::DialError::Aborted;
        mesh.on_swarm_event(FromSwarm::DialFailure(DialFailure {
            peer_id: Some(other),
            error: &err,
            connection_id: opts.connection_id(),
        }));
        mesh.on_timer();
        assert!(drain(&mut mesh).is_empty(), "no retry within the backoff");
        assert!(mesh.next_wakeup().is_some_and(|t| t >= WEBRTC_RETRY_FIRST_MS), "it wakes for the retry");
    }

    fn answered(peer: PeerId) -> Multiaddr {
        Multiaddr::empty().with(Protocol::WebRTC).with(Protocol::P2p(peer))
    }

    /// A page at its direct-peer target takes two more answered `/webrtc`
    /// connections, then refuses; a second direct connection from a peer
    /// already linked is refused too. Before, the answerer kept every
    /// connection an offerer completed.
    #[test]
    fn answered_webrtc_connections_over_the_target_are_refused() {
        let me = PeerId::random();
        let mut mesh = Mesh::default();
        mesh.start(MeshConfig { webrtc: true, target_direct_peers: 3 }, Clock::new(), me);
        let local = Multiaddr::empty().with(Protocol::WebRTC);
        let mut linked = Vec::new();
        for i in 0..10u32 {
            let peer = PeerId::random();
            let id = ConnectionId::new_unchecked(i as usize);
            let remote = answered(peer);
            if mesh.handle_established_inbound_connection(id, peer, &local, &remote).is_ok() {
                let endpoint = ConnectedPoint::Listener { local_addr: local.clone(), send_back_addr: remote };
                established(&mut mesh, id, peer, &endpoint);
                linked.push(peer);
            }
        }
        assert_eq!(linked.len(), 3 + INBOUND_DIRECT_SLACK);
        let again = mesh.handle_established_inbound_connection(
            ConnectionId::new_unchecked(99),
            linked[0],
            &local,
            &answered(linked[0]),
        );
        assert!(again.is_err(), "one direct connection per peer");
        // Not direct (a relayed or WebSocket connection): never refused here.
        let tcp: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
        assert!(
            mesh.handle_established_inbound_connection(ConnectionId::new_unchecked(100), PeerId::random(), &tcp, &tcp)
                .is_ok()
        );
        assert!(accept_inbound_direct(0, false, 0) && !accept_inbound_direct(2, false, 0));
    }
}
