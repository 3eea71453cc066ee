//! Building swarms on tokio. Plain nodes speak TCP; the relay server adds
//! QUIC, WebSocket (browsers) and WebRTC-direct (browsers, with a certhash).

use std::time::Duration;

use libp2p::core::muxing::StreamMuxerBox;
use libp2p::{Swarm, SwarmBuilder, Transport, identity, noise, tcp, yamux};

use crate::behaviour::{Behaviour, Role};

pub use libp2p_webrtc::tokio::Certificate as WebRtcCertificate;

const IDLE: Duration = Duration::from_secs(60);

pub fn build_swarm(key: identity::Keypair, max_block_bytes: usize, role: &Role) -> Result<Swarm<Behaviour>, String> {
    Ok(SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|e| e.to_string())?
        .with_behaviour(|key| Behaviour::new(key, max_block_bytes, role).map_err(|e| e.into()))
        .map_err(|e| e.to_string())?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE))
        .build())
}

/// TCP, QUIC, WebRTC-direct and WebSocket. The WebRTC certificate is the
/// caller's so it can be persisted: its fingerprint is in the certhash of
/// the relay's `/webrtc-direct` multiaddr, which browsers must know.
pub async fn build_server_swarm(
    key: identity::Keypair,
    webrtc_cert: WebRtcCertificate,
    max_block_bytes: usize,
    role: &Role,
) -> Result<Swarm<Behaviour>, String> {
    Ok(SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|e| e.to_string())?
        .with_quic()
        .with_other_transport(|id_keys| {
            Ok(libp2p_webrtc::tokio::Transport::new(id_keys.clone(), webrtc_cert)
                .map(|(peer_id, conn), _| (peer_id, StreamMuxerBox::new(conn))))
        })
        .map_err(|e| e.to_string())?
        .with_dns()
        .map_err(|e| e.to_string())?
        .with_websocket(noise::Config::new, yamux::Config::default)
        .await
        .map_err(|e| e.to_string())?
        .with_behaviour(|key| Behaviour::new(key, max_block_bytes, role).map_err(|e| e.into()))
        .map_err(|e| e.to_string())?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE))
        .build())
}
