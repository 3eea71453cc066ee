//! The browser's swarm: WebSocket and WebRTC-direct to relays (dialled
//! together; whichever connects first is kept), the circuit relay v2
//! client so other peers can reach this page through a relay, and `/webrtc`
//! so two pages that met through a relay talk directly.

use std::time::Duration;

use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::upgrade;
use libp2p::{Swarm, SwarmBuilder, Transport, identity, noise, websocket_websys, yamux};
use protoblock_net::behaviour::{Behaviour, Role};
use protoblock_net::policy::AdmissionConfig;

const IDLE: Duration = Duration::from_secs(60);

/// The swarm, the `/webrtc` signaller the caller must run (with
/// `spawn_local`) for direct browser connections to happen, and a control
/// for opening streams (test hooks use it).
pub fn build(
    key: identity::Keypair,
    max_block_bytes: usize,
    webrtc: protoblock_webrtc::private::Config,
    #[cfg(feature = "gossip-metrics")] metrics: &std::sync::Mutex<prometheus_client::registry::Registry>,
) -> Result<(Swarm<Behaviour>, impl std::future::Future<Output = ()> + use<>, libp2p_stream::Control), String> {
    let (webrtc, signaller) = protoblock_webrtc::private::new(webrtc);
    // A page is a small node: fewer connections than a server.
    let admission = AdmissionConfig { max_connections: 48, ..AdmissionConfig::default() };
    let role = Role {
        relay: None,
        rendezvous_point: false,
        admission,
        max_pending: 16,
        agent_version: protoblock_net::behaviour::agent_version("protoblock-browser"),
    };
    let mut swarm = SwarmBuilder::with_existing_identity(key)
        .with_wasm_bindgen()
        // First: only it takes `/webrtc/p2p/<peer>`, and `listen_on("/webrtc")`.
        .with_other_transport(|_| webrtc.map(|(peer, conn), _| (peer, StreamMuxerBox::new(conn))))
        .map_err(|e| e.to_string())?
        .with_other_transport(|key| {
            Ok(websocket_websys::Transport::default()
                .upgrade(upgrade::Version::V1Lazy)
                .authenticate(noise::Config::new(key)?)
                .multiplex(yamux::Config::default())
                // A browser may never report a failed WebSocket (e.g. an
                // unsafe port): bound the dial so it cannot hang forever.
                .timeout(Duration::from_secs(20))
                .boxed())
        })
        .map_err(|e| e.to_string())?
        .with_other_transport(|key| {
            protoblock_webrtc::direct::Transport::new(protoblock_webrtc::direct::Config::new(key))
                .map(|(peer, conn), _| (peer, StreamMuxerBox::new(conn)))
        })
        .map_err(|e| e.to_string())?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| e.to_string())?
        .with_behaviour(|key, relay| {
            #[cfg(feature = "gossip-metrics")]
            let mut registry = metrics.lock().map_err(|_| "metrics registry poisoned")?;
            Behaviour::with_options(
                key,
                max_block_bytes,
                &role,
                Some(relay),
                #[cfg(feature = "gossip-metrics")]
                Some(&mut registry),
            )
            .map_err(|e| e.into())
        })
        .map_err(|e| e.to_string())?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE))
        .build();
    let control = swarm.behaviour_mut().enable_signaling();
    Ok((swarm, signaller.run(control.clone()), control))
}
