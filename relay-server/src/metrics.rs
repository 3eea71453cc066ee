//! `/metrics`: one OpenMetrics registry. libp2p's recorders (swarm,
//! identify, ping, gossipsub, relay) and the
//! store's commit latency are recorded by the node's driver as they happen
//! (`protoblock_net` feature `metrics`); the chain's figures are read at each
//! scrape from the status the node loop publishes, by [`ChainCollector`], so
//! a scrape never waits on the loop.
//!
//! The names of the relay's first metrics are kept: a counter's samples are
//! still `protoblock_…_total`. What changed with the move to OpenMetrics: a
//! counter's `# TYPE` line names it without `_total`, and the exposition ends
//! with `# EOF`.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use protoblock_net::node::NodeHandle;

use crate::http::RateSampler;

pub struct ChainCollector {
    pub node: NodeHandle,
    pub rate: Arc<RateSampler>,
}

impl std::fmt::Debug for ChainCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainCollector")
    }
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: f64) -> std::fmt::Result {
    ConstGauge::new(v).encode(e.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

/// `name` without `_total`: the encoder adds it to the sample.
fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    ConstCounter::new(v).encode(e.encode_descriptor(name, help, None, MetricType::Counter)?)
}

impl Collector for ChainCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let Some((st, age_ms)) = self.node.snapshot() else { return Ok(()) };
        let a = st.admission;
        gauge(&mut e, "protoblock_peers", "Connected peers past the handshake.", st.peers.len() as f64)?;
        gauge(&mut e, "protoblock_head_height", "Height of the chain head.", st.head_height as f64)?;
        gauge(&mut e, "protoblock_final_height", "Height of the final block.", st.final_height as f64)?;
        gauge(&mut e, "protoblock_mempool_txs", "Transactions in the mempool.", st.mempool as f64)?;
        counter(&mut e, "protoblock_blocks_validated", "Blocks validated and committed.", st.blocks_validated)?;
        counter(&mut e, "protoblock_gossip_accepted", "Gossip messages accepted.", st.gossip_accepted)?;
        counter(&mut e, "protoblock_gossip_rejected", "Gossip messages rejected as invalid.", st.gossip_rejected)?;
        {
            let mut family = e.encode_descriptor(
                "protoblock_blocks_refused",
                "Blocks refused as their sender's fault (gossip and sync), by the rule they broke.",
                None,
                MetricType::Counter,
            )?;
            for (rule, n) in &st.refused_by_rule {
                ConstCounter::new(*n).encode(family.encode_family(&[("rule", *rule)])?)?;
            }
        }
        gauge(&mut e, "protoblock_bans", "Peers banned now (bans expire).", st.bans as f64)?;
        counter(&mut e, "protoblock_peers_banned", "Bans made since start.", st.bans_total)?;
        gauge(&mut e, "protoblock_sync_blocks_per_second", "Head growth rate over the last sample.", self.rate.rate())?;
        gauge(&mut e, "protoblock_connections", "Connections held.", a.connections as f64)?;
        counter(
            &mut e,
            "protoblock_connections_refused",
            "Inbound connections refused (full or over the per-address limit).",
            a.refused_full + a.refused_per_ip,
        )?;
        counter(&mut e, "protoblock_connections_evicted", "Connections closed to make room for newcomers.", a.evicted)?;
        gauge(&mut e, "protoblock_status_age_seconds", "Age of the node's published status.", age_ms as f64 / 1000.0)
    }
}
