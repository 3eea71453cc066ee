//! Building a node's swarm on tokio (TCP, noise, yamux).

use std::time::Duration;

use libp2p::{Swarm, SwarmBuilder, identity, noise, tcp, yamux};

use crate::behaviour::{Behaviour, Role};

pub fn build_swarm(key: identity::Keypair, max_block_bytes: usize, role: &Role) -> Result<Swarm<Behaviour>, String> {
    Ok(SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|e| e.to_string())?
        .with_behaviour(|key| Behaviour::new(key, max_block_bytes, role).map_err(|e| e.into()))
        .map_err(|e| e.to_string())?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build())
}
