//! The WebRTC mesh: who offers the `/webrtc` upgrade, backoff after failed
//! upgrades, replacing a far slower direct peer, closing the relayed path
//! once a direct one is up.

use std::collections::HashSet;

use libp2p::multiaddr::Protocol;
use libp2p::swarm::ConnectionId;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{Multiaddr, PeerId, Swarm};

use super::Connections;
use crate::behaviour::Behaviour;

/// A peer that speaks this can be upgraded from a relayed connection to a
/// direct `/webrtc` one (the transport lives in protoblock-webrtc).
pub const WEBRTC_SIGNALING_PROTOCOL: &str = "/webrtc-signaling/0.0.1";
/// After failed `/webrtc` upgrades, keep the relayed path for 5 s, then 10,
/// 20, 40 and at most 60 s before trying again: a transient failure (a lost
/// signalling message, a busy page) costs seconds, and a path that never
/// works (symmetric NAT) one handshake a minute.
pub(super) const WEBRTC_RETRY_FIRST_MS: u64 = 5_000;
pub(super) const WEBRTC_RETRY_MS: u64 = 60_000;
/// Upgrades whose outcome never reached us are forgotten after this.
pub(super) const UPGRADE_FORGET_MS: u64 = 60_000;
/// How often a slow direct peer may be swapped for a waiting one.
pub(super) const REPLACE_SLOW_EVERY_MS: u64 = 30_000;

pub(crate) fn webrtc_retry_after(failures: u32) -> u64 {
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

impl Connections {
    /// Offers `/webrtc` to every capable peer that may take it now (also
    /// when a direct slot frees up).
    pub fn scan_upgrades(&mut self, swarm: &mut Swarm<Behaviour>, mono: u64) {
        let candidates: Vec<PeerId> = self.webrtc_capable.iter().copied().collect();
        for peer in candidates {
            self.maybe_upgrade(swarm, peer, mono);
        }
    }

    pub(super) fn direct_webrtc_peers(&self) -> HashSet<PeerId> {
        self.conns.values().filter(|c| c.is_direct_webrtc()).map(|c| c.peer).collect()
    }

    /// Upgrades a relayed peer to a direct `/webrtc` connection when we
    /// offer (see [`we_offer`]), the peer speaks the signalling protocol,
    /// and we are below our target of direct peers.
    pub(super) fn maybe_upgrade(&mut self, swarm: &mut Swarm<Behaviour>, peer: PeerId, mono: u64) {
        if !swarm.behaviour().signaling.is_enabled()
            || self.upgrading.contains_key(&peer)
            || self.upgrade_recently_failed(&peer, mono)
        {
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
        if !we_offer(relayed_out, relayed_in, other, *swarm.local_peer_id() < peer) {
            return;
        }
        if self.direct_webrtc_peers().len() + self.upgrading.len() >= self.target_direct_peers {
            return;
        }
        let addr = Multiaddr::empty().with(Protocol::WebRTC).with(Protocol::P2p(peer));
        // `Always`: a relayed connection to the peer exists by design.
        let opts = DialOpts::peer_id(peer).addresses(vec![addr]).condition(PeerCondition::Always).build();
        match swarm.dial(opts) {
            Ok(()) => {
                tracing::info!(%peer, "upgrading a relayed peer to /webrtc");
                self.upgrading.insert(peer, mono);
            }
            Err(e) => {
                tracing::debug!(%peer, error = %e, "/webrtc upgrade not started");
                self.upgrade_failed_now(peer, mono);
            }
        }
    }

    pub(super) fn upgrade_failed_now(&mut self, peer: PeerId, mono: u64) {
        let failures = self.upgrade_failed.get(&peer).map_or(0, |(_, f)| *f).saturating_add(1);
        self.upgrade_failed.insert(peer, (mono, failures));
    }

    pub(super) fn upgrade_recently_failed(&self, peer: &PeerId, mono: u64) -> bool {
        self.upgrade_failed.get(peer).is_some_and(|(t, f)| mono.saturating_sub(*t) < webrtc_retry_after(*f))
    }

    /// With the direct set full and a relayed peer waiting for a direct
    /// link, drops a direct peer that is far slower than the rest (see
    /// [`slow_direct_peer`]); the waiting one is upgraded in its place. Dead
    /// direct links need nothing here: ICE consent fails, the connection
    /// closes, and the next scan upgrades someone else.
    pub(super) fn maybe_replace_slow(&mut self, swarm: &mut Swarm<Behaviour>, capable: &[PeerId], mono: u64) {
        if mono.saturating_sub(self.last_replace_ms) < REPLACE_SLOW_EVERY_MS {
            return;
        }
        self.last_replace_ms = mono;
        let direct = self.direct_webrtc_peers();
        let waiting = capable.iter().any(|p| {
            !direct.contains(p)
                && !self.upgrade_recently_failed(p, mono)
                && self.conns.values().any(|c| c.peer == *p && c.relayed)
        });
        if !waiting {
            return;
        }
        let latencies: Vec<(PeerId, u64)> = direct.iter().filter_map(|p| Some((*p, *self.latency.get(p)?))).collect();
        let Some(slow) = slow_direct_peer(&latencies, self.target_direct_peers) else { return };
        tracing::info!(peer = %slow, "replacing a slow direct peer");
        let ids: Vec<ConnectionId> =
            self.conns.iter().filter(|(_, c)| c.peer == slow && c.is_direct_webrtc()).map(|(id, _)| *id).collect();
        for id in ids {
            swarm.close_connection(id);
        }
        // Not straight back into the direct set: the longest delay.
        self.upgrade_failed.insert(slow, (mono, u32::MAX));
    }

    /// A direct path to `peer` is up: its relayed connections only cost the
    /// relay bandwidth now, so close them (both sides do; either suffices).
    pub(super) fn on_direct_webrtc(&mut self, swarm: &mut Swarm<Behaviour>, peer: PeerId) {
        self.upgrading.remove(&peer);
        self.upgrade_failed.remove(&peer);
        let relayed: Vec<ConnectionId> =
            self.conns.iter().filter(|(_, c)| c.peer == peer && c.relayed).map(|(id, _)| *id).collect();
        for id in relayed {
            swarm.close_connection(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
