//! Operator metrics the driver records as things happen (feature `metrics`):
//! libp2p-metrics' recorders for the swarm and the behaviours that have one
//! (identify, ping, gossipsub, relay), and the store's commit latency. The
//! chain's own figures come from the published status instead (the relay
//! encodes them beside these).

use libp2p::metrics::{Metrics, Recorder};
use libp2p::swarm::SwarmEvent;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::behaviour::BehaviourEvent;

pub(super) struct NetMetrics {
    libp2p: Metrics,
    commit_seconds: Histogram,
}

impl NetMetrics {
    pub(super) fn new(registry: &mut Registry) -> Self {
        let libp2p = Metrics::new(registry);
        // 1 ms to about 8 s: an fsync on a good disk, a slow one, a stall.
        let commit_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 14));
        registry.register_with_unit(
            "protoblock_store_commit",
            "Time from handing a batch to the store to its durable commit",
            Unit::Seconds,
            commit_seconds.clone(),
        );
        Self { libp2p, commit_seconds }
    }

    pub(super) fn commit_done(&self, ms: u64) {
        self.commit_seconds.observe(ms as f64 / 1000.0);
    }

    pub(super) fn record(&self, ev: &SwarmEvent<BehaviourEvent>) {
        self.libp2p.record(ev);
        match ev {
            SwarmEvent::Behaviour(BehaviourEvent::Identify(e)) => self.libp2p.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(e)) => self.libp2p.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(e)) => self.libp2p.record(e),
            #[cfg(not(target_arch = "wasm32"))]
            SwarmEvent::Behaviour(BehaviourEvent::Relay(e)) => self.libp2p.record(e),
            _ => {}
        }
    }
}
