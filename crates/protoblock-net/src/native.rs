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
/// the relay's `/webrtc-direct` multiaddr, which browsers must know. With
/// `ws_tls` the WebSocket transport also listens on `/tls/ws` addresses
/// (wss, for pages served over https).
pub async fn build_server_swarm(
    key: identity::Keypair,
    webrtc_cert: WebRtcCertificate,
    ws_tls: Option<libp2p::websocket::tls::Config>,
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
        // WebSocket as libp2p's builder makes it (DNS over TCP, noise,
        // yamux), built here to give it the TLS configuration.
        .with_other_transport(|id_keys| -> Result<_, Box<dyn std::error::Error + Send + Sync>> {
            let tcp = libp2p::dns::tokio::Transport::system(tcp::tokio::Transport::new(
                tcp::Config::default().nodelay(true),
            ))?;
            let mut ws = libp2p::websocket::Config::new(tcp);
            if let Some(tls) = ws_tls {
                ws.set_tls_config(tls);
            }
            Ok(ws
                .upgrade(libp2p::core::upgrade::Version::V1Lazy)
                .authenticate(noise::Config::new(id_keys)?)
                .multiplex(yamux::Config::default())
                .map(|(peer_id, muxer), _| (peer_id, StreamMuxerBox::new(muxer))))
        })
        .map_err(|e| e.to_string())?
        .with_dns()
        .map_err(|e| e.to_string())?
        .with_behaviour(|key| Behaviour::new(key, max_block_bytes, role).map_err(|e| e.into()))
        .map_err(|e| e.to_string())?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE))
        .build())
}
