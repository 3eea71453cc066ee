//! The peer table, status refresh and peer exchange.

use protoblock_proto::v1 as pb;

use crate::PeerKey;
use crate::io::{Action, Event, Now};
use crate::service::{NodeService, PEERS_SHARED, Purpose};

// Addresses kept per peer and taken per peer record, at most.
use crate::config::MAX_ADDRS_SHARED as MAX_ADDRS;

#[derive(Debug, Default)]
pub(crate) struct PeerInfo {
    /// Past the handshake.
    pub ready: bool,
    /// Its claimed head (a hint until it serves it).
    pub head: u64,
    pub listen: Vec<Vec<u8>>,
    pub last_status: u64,
    pub last_peers_asked: u64,
    /// Status requests sent while not yet past the handshake.
    pub handshake_tries: u8,
}

/// A peer whose handshake has not completed (its answer and its own request
/// both lost: a relay under load drops some) is asked again after this long,
/// longer than the transport's 10 s request timeout so tries never overlap,
/// and at most `HANDSHAKE_TRIES` times in all. After that the connection is
/// left to the admission policy, which evicts connections that never
/// handshake when room is needed (a non-Protoblock libp2p peer using only
/// the relay stays).
pub(crate) const HANDSHAKE_RETRY_MS: u64 = 12_000;
pub(crate) const HANDSHAKE_TRIES: u8 = 3;

impl<P: PeerKey> NodeService<P> {
    pub(crate) fn on_connected(&mut self, now: Now, peer: P) {
        if self.bans.is_banned(&peer, now.mono_ms) {
            self.actions.push_back(Action::Disconnect { peer });
            return;
        }
        let info = self.peers.entry(peer).or_default();
        info.last_status = now.mono_ms;
        info.handshake_tries = 1;
        self.actions.push_back(Action::SendStatus { peer, status: self.my_status() });
    }

    pub(crate) fn on_disconnected(&mut self, peer: P) {
        self.planner.peer_gone(&peer);
        self.budgets.peer_gone(&peer);
        if self.peers.remove(&peer).is_some_and(|p| p.ready) {
            self.emit(Event::PeerDown { peer });
        }
    }

    pub(crate) fn on_listen_addrs(&mut self, peer: P, addrs: Vec<Vec<u8>>) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.listen = addrs.into_iter().take(MAX_ADDRS).collect();
        }
    }

    pub(crate) fn ask_for_peers(&mut self, peer: P, now: Now) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.last_peers_asked = now.mono_ms;
        }
        let kind = pb::sync_request::Kind::Peers(pb::PeersRequest { max: PEERS_SHARED as u32 });
        self.send_request(peer, Purpose::Peers, kind);
    }

    /// Handshaken peers are asked for their status every `status_refresh_ms`
    /// (gossip keeps heads current too), and for their peers every
    /// `peer_exchange_ms` while we have fewer than we want.
    pub(crate) fn refresh_peers(&mut self, now: Now) {
        let t = now.mono_ms;
        let (status_every, exchange_every) = (self.cfg.status_refresh_ms, self.cfg.peer_exchange_ms);
        if self.wants_peers() {
            let due: Vec<P> = self
                .peers
                .iter()
                .filter(|(_, p)| p.ready && t.saturating_sub(p.last_peers_asked) > exchange_every)
                .map(|(id, _)| *id)
                .collect();
            for peer in due {
                self.ask_for_peers(peer, now);
            }
        }
        let status = self.my_status();
        for (peer, p) in self.peers.iter_mut() {
            let due = if p.ready {
                t.saturating_sub(p.last_status) > status_every
            } else {
                p.handshake_tries < HANDSHAKE_TRIES && t.saturating_sub(p.last_status) >= HANDSHAKE_RETRY_MS
            };
            if due {
                p.last_status = t;
                p.handshake_tries = p.handshake_tries.saturating_add(u8::from(!p.ready));
                self.actions.push_back(Action::SendStatus { peer: *peer, status: status.clone() });
            }
        }
    }

    pub(crate) fn next_peer_refresh(&self) -> Option<u64> {
        let wants = self.wants_peers();
        self.peers
            .values()
            .flat_map(|p| {
                if !p.ready {
                    let retry = (p.handshake_tries < HANDSHAKE_TRIES).then_some(p.last_status + HANDSHAKE_RETRY_MS);
                    return [retry, None];
                }
                let exchange = wants.then(|| p.last_peers_asked + self.cfg.peer_exchange_ms + 1);
                [Some(p.last_status + self.cfg.status_refresh_ms + 1), exchange]
            })
            .flatten()
            .min()
    }

    /// A peer-exchange answer: dial whom we do not know, up to `target_peers`.
    pub(crate) fn on_peers(&mut self, now: Now, resp: pb::PeersResponse) {
        let mut dialed = 0;
        for rec in resp.peers.into_iter().take(PEERS_SHARED) {
            if self.peers.len() + dialed >= self.cfg.target_peers {
                break;
            }
            let Some(id) = P::from_bytes(&rec.peer_id) else { continue };
            if id == self.me || self.peers.contains_key(&id) || self.bans.is_banned(&id, now.mono_ms) {
                continue;
            }
            let addrs: Vec<Vec<u8>> = rec.addrs.into_iter().take(MAX_ADDRS).collect();
            if !addrs.is_empty() {
                self.actions.push_back(Action::Dial { peer: id, addrs });
                dialed += 1;
            }
        }
    }
}
