//! The node's status: the service's, with what only the swarm knows
//! (addresses, latency, relayed paths) and gossip's own counters.

use libp2p::PeerId;
use protoblock_store::Store;

use super::Node;
use crate::node::{NodeStatus, PeerStatus};

impl<S: Store + 'static> Node<S> {
    fn peer_statuses(&self, s: &protoblock_node::ServiceStatus<PeerId>, ready: bool) -> Vec<PeerStatus> {
        s.peers
            .iter()
            .filter(|p| p.ready == ready)
            .map(|p| {
                let mesh = &self.swarm.behaviour().mesh;
                let best = mesh.best_conn(&p.peer);
                PeerStatus {
                    peer: p.peer,
                    head: p.head,
                    latency_ms: mesh.latency(&p.peer),
                    addr: best.map(|c| c.addr.clone()),
                    // A relayed inbound connection's remote address is just
                    // `/p2p/<peer>`; the endpoint knows it came via a circuit.
                    relayed: best.is_some_and(|c| c.relayed),
                }
            })
            .collect()
    }

    pub(super) fn status(&self) -> NodeStatus {
        let s = self.service.status();
        NodeStatus {
            peer_id: *self.swarm.local_peer_id(),
            genesis: s.genesis,
            head_height: s.head_height,
            head_id: s.head_id,
            final_height: s.final_height,
            lowest_height: s.lowest_height,
            syncing: s.syncing,
            target_height: s.target_height,
            mempool: s.mempool,
            peers: self.peer_statuses(&s, true),
            others: self.peer_statuses(&s, false),
            listen: self.swarm.behaviour().discovery.listen().to_vec(),
            blocks_validated: s.counters.blocks_validated,
            blocks_downloaded: s.counters.blocks_downloaded,
            blocks_served: s.counters.blocks_served,
            blocks_verified_off_loop: s.counters.blocks_verified_off_loop,
            serve_sync: s.serve_sync,
            gossip_accepted: s.counters.gossip_accepted,
            gossip_rejected: s.counters.gossip_rejected,
            bans: s.bans,
            bans_total: s.counters.bans,
            refused_by_rule: s.refused_by_rule,
            gossip_received: self.gossip_received(),
            store_error: s.store_error,
            admission: self.swarm.behaviour().admission.counts(),
        }
    }

    #[cfg(feature = "gossip-metrics")]
    fn gossip_received(&self) -> Option<(u64, u64)> {
        self.gossip_metrics.as_ref().and_then(|m| m.lock().ok()).map(|r| {
            (
                counter_total(&r, "topic_msg_recv_counts_unfiltered_total"),
                counter_total(&r, "topic_msg_recv_counts_total"),
            )
        })
    }

    #[cfg(not(feature = "gossip-metrics"))]
    fn gossip_received(&self) -> Option<(u64, u64)> {
        None
    }
}

/// Sums the samples of counter `name` (over all labels) in `registry`.
#[cfg(feature = "gossip-metrics")]
fn counter_total(registry: &prometheus_client::registry::Registry, name: &str) -> u64 {
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, registry).is_err() {
        return 0;
    }
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}
