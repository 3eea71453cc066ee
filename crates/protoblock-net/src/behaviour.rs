//! The libp2p behaviour of a Protoblock node: identify, ping (latency),
//! gossipsub for blocks and txs, and two request-response protocols (status
//! handshake, sync).

use std::time::Duration;

use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{gossipsub, identify, identity, ping};
use protoblock_core::hash::sha256;
use protoblock_proto::v1 as pb;

use crate::codec::{ProtoCodec, STATUS_PROTOCOL, SYNC_PROTOCOL};

pub const AGENT_PROTOCOL: &str = "/protoblock/1.0.0";
pub const MAX_STATUS_BYTES: usize = 1024;
pub const MAX_SYNC_REQUEST_BYTES: usize = 64 * 1024;
/// A sync response: up to a few blocks of the maximum size.
pub const MAX_SYNC_RESPONSE_BYTES: usize = 4 << 20;

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub gossipsub: gossipsub::Behaviour,
    pub status: request_response::Behaviour<ProtoCodec<pb::Status, pb::Status>>,
    pub sync: request_response::Behaviour<ProtoCodec<pb::SyncRequest, pb::SyncResponse>>,
}

impl Behaviour {
    pub fn new(key: &identity::Keypair, max_block_bytes: usize) -> Result<Self, String> {
        // Message id = content id: the same block or tx relayed by many peers
        // is one message, and ids are hashes of the exact bytes received.
        let gossip_cfg = gossipsub::ConfigBuilder::default()
            .validation_mode(gossipsub::ValidationMode::Strict)
            .validate_messages()
            .message_id_fn(|m: &gossipsub::Message| gossipsub::MessageId::from(sha256(&m.data).0.to_vec()))
            .max_transmit_size(max_block_bytes + 4096)
            .heartbeat_interval(Duration::from_millis(700))
            .duplicate_cache_time(Duration::from_secs(120))
            .build()
            .map_err(|e| e.to_string())?;
        let gossipsub = gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Signed(key.clone()), gossip_cfg)?;
        let rr = |timeout| request_response::Config::default().with_request_timeout(Duration::from_secs(timeout));
        Ok(Self {
            identify: identify::Behaviour::new(identify::Config::new(AGENT_PROTOCOL.into(), key.public())),
            ping: ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_secs(5))),
            gossipsub,
            status: request_response::Behaviour::with_codec(
                ProtoCodec::new(MAX_STATUS_BYTES, MAX_STATUS_BYTES),
                [(STATUS_PROTOCOL, ProtocolSupport::Full)],
                rr(10),
            ),
            sync: request_response::Behaviour::with_codec(
                ProtoCodec::new(MAX_SYNC_REQUEST_BYTES, MAX_SYNC_RESPONSE_BYTES),
                [(SYNC_PROTOCOL, ProtocolSupport::Full)],
                rr(15),
            ),
        })
    }
}
