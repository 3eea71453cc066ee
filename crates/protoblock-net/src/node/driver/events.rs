//! Swarm events into service inputs, and into the connection policy what
//! only other behaviours learn (identify, ping, rendezvous answers).

use libp2p::gossipsub::{self, MessageAcceptance};
use libp2p::request_response;
use libp2p::swarm::SwarmEvent;
use libp2p::{identify, ping};
use protoblock_node::{Input, Topic};
use protoblock_proto::v1 as pb;
use protoblock_store::Store;

use super::Node;
use crate::behaviour::BehaviourEvent;
use crate::node::NodeEvent;
use crate::policy::{DiscoveryEvent, RENDEZVOUS_TTL_SECS, discovered_dials};

impl<S: Store + 'static> Node<S> {
    pub(super) fn on_swarm_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        #[cfg(feature = "metrics")]
        if let Some(m) = &self.net_metrics {
            m.record(&ev);
        }
        match ev {
            SwarmEvent::ExpiredListenAddr { .. } | SwarmEvent::ListenerClosed { .. } => self.publish_now = true,
            SwarmEvent::NewListenAddr { address, .. } => {
                // Pages read the relay's addresses from the published status
                // (`/api/bootstrap`): publish them at once, not within a second.
                self.publish_now = true;
                tracing::info!(%address, "listening");
                if address.iter().any(|p| p == libp2p::multiaddr::Protocol::P2pCircuit) {
                    self.emit(NodeEvent::Reachable { addr: address.clone() });
                }
                self.emit(NodeEvent::Listening { addr: address });
            }
            SwarmEvent::ConnectionEstablished { peer_id, num_established, connection_id, .. } => {
                if let Some(done) = self.dials.remove(&connection_id) {
                    let _ = done.send(Ok(peer_id));
                }
                if self.service.is_banned(&peer_id, self.clock.now()) {
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                if num_established.get() == 1 {
                    self.input(Input::Connected { peer: peer_id });
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established, connection_id, .. } => {
                self.dead_links.on_closed(connection_id);
                if num_established == 0 {
                    self.input(Input::Disconnected { peer: peer_id });
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Status(e)) => self.on_status_event(e),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(e)) => self.on_sync_event(e),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(e)) => self.on_gossip_event(e),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event { peer, connection, result: Ok(rtt) })) => {
                self.dead_links.on_ping(connection, true);
                self.swarm.behaviour_mut().mesh.on_ping(peer, rtt.as_millis() as u64);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event { peer, connection, result: Err(error) })) => {
                self.on_ping_failure(peer, connection, &error)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. })) => {
                let addrs = info.listen_addrs.iter().take(8).map(|a| a.to_vec()).collect();
                self.input(Input::ListenAddrs { peer: peer_id, addrs });
                let b = self.swarm.behaviour_mut();
                b.mesh.on_identify(peer_id, &info.protocols);
                let addr = b.mesh.best_conn(&peer_id).map(|c| c.addr.clone());
                b.discovery.on_identify(peer_id, &info.protocols, addr.as_ref());
            }
            SwarmEvent::Behaviour(BehaviourEvent::Rendezvous(e)) => self.on_rendezvous_event(e),
            // Peers using us as a relay keep their connections when we are full.
            #[cfg(not(target_arch = "wasm32"))]
            SwarmEvent::Behaviour(BehaviourEvent::Relay(
                libp2p::relay::Event::ReservationReqAccepted { src_peer_id, .. }
                | libp2p::relay::Event::CircuitReqAccepted { src_peer_id, .. },
            )) => self.swarm.behaviour_mut().admission.mark_useful(src_peer_id),
            SwarmEvent::Behaviour(BehaviourEvent::Discovery(e)) => {
                let client = &mut self.swarm.behaviour_mut().rendezvous;
                match e {
                    DiscoveryEvent::Register { point, namespace } => {
                        if let Err(e) = client.register(namespace, point, Some(RENDEZVOUS_TTL_SECS)) {
                            tracing::debug!(%point, error = %e, "rendezvous register");
                        }
                    }
                    DiscoveryEvent::Discover { point, namespace, cookie } => {
                        client.discover(Some(namespace), cookie, Some(crate::policy::MAX_DISCOVERED as u64), point)
                    }
                }
            }
            SwarmEvent::OutgoingConnectionError { connection_id, error, .. } => {
                if let Some(done) = self.dials.remove(&connection_id) {
                    let _ = done.send(Err(error.to_string()));
                }
            }
            _ => {}
        }
    }

    /// Peers found at a rendezvous point (not us); dialled while the node wants peers.
    fn on_rendezvous_event(&mut self, e: libp2p::rendezvous::client::Event) {
        use libp2p::rendezvous::client::Event;
        match e {
            Event::Discovered { rendezvous_node, registrations, cookie } => {
                self.swarm.behaviour_mut().discovery.on_discovered(rendezvous_node, cookie);
                let me = *self.swarm.local_peer_id();
                let now = self.clock.now();
                let skip = |p: &libp2p::PeerId| self.service.knows_peer(p) || self.service.is_banned(p, now);
                for opts in discovered_dials(&registrations, me, skip, self.service.wants_peers()) {
                    let _ = self.swarm.dial(opts);
                }
                let found: Vec<libp2p::PeerId> = registrations
                    .iter()
                    .take(crate::policy::MAX_DISCOVERED)
                    .map(|r| r.record.peer_id())
                    .filter(|p| *p != me)
                    .collect();
                if !found.is_empty() {
                    self.emit(NodeEvent::Discovered { point: rendezvous_node, peers: found });
                }
            }
            Event::RegisterFailed { rendezvous_node, error, .. } => {
                tracing::debug!(point = %rendezvous_node, ?error, "rendezvous registration failed");
            }
            _ => {}
        }
    }

    /// See `policy::DeadLinks`.
    fn on_ping_failure(
        &mut self,
        peer: libp2p::PeerId,
        connection: libp2p::swarm::ConnectionId,
        error: &ping::Failure,
    ) {
        if self.dead_links.on_ping(connection, false) {
            tracing::info!(%peer, %error, "closing a connection that answers no pings");
            self.swarm.close_connection(connection);
        }
    }

    fn on_status_event(&mut self, e: request_response::Event<pb::Status, pb::Status>) {
        use request_response::{Event, Message as M};
        match e {
            Event::Message { peer, message: M::Request { request, channel, .. }, .. } => {
                let reply = self.reply_id();
                self.status_replies.insert(reply, channel);
                self.input(Input::StatusRequest { peer, reply, status: request });
            }
            Event::Message { peer, message: M::Response { response, .. }, .. } => {
                self.input(Input::StatusResponse { peer, status: response })
            }
            Event::OutboundFailure { peer, error, .. } => tracing::debug!(%peer, %error, "status request failed"),
            _ => {}
        }
    }

    fn on_sync_event(&mut self, e: request_response::Event<pb::SyncRequest, pb::SyncResponse>) {
        use request_response::{Event, Message as M};
        match e {
            Event::Message { peer, message: M::Request { request, channel, request_id }, .. } => {
                let reply = self.reply_id();
                self.sync_replies.insert(reply, channel);
                self.answering.insert(request_id, reply);
                self.input(Input::SyncRequest { peer, reply, request });
            }
            // libp2p reports each inbound request once, written or failed
            // (timeout, reset, connection closed, answer dropped).
            Event::ResponseSent { request_id, .. } | Event::InboundFailure { request_id, .. } => {
                if let Some(reply) = self.answering.remove(&request_id) {
                    self.sync_replies.remove(&reply);
                    self.input(Input::ReplyDone { reply });
                }
            }
            Event::Message { peer, message: M::Response { request_id, response }, .. } => {
                if let Some(id) = self.requests.remove(&request_id) {
                    self.input(Input::SyncResponse { peer, id, response });
                }
            }
            Event::OutboundFailure { peer, request_id, error, .. } => {
                tracing::debug!(%peer, %error, "sync request failed");
                if let Some(id) = self.requests.remove(&request_id) {
                    self.input(Input::SyncFailed { peer, id });
                }
            }
        }
    }

    fn on_gossip_event(&mut self, e: gossipsub::Event) {
        let gossipsub::Event::Message { propagation_source, message_id, message } = e else { return };
        let topic = if message.topic == self.blocks_topic.hash() {
            Topic::Blocks
        } else if message.topic == self.txs_topic.hash() {
            Topic::Txs
        } else {
            self.swarm.behaviour_mut().gossipsub.report_message_validation_result(
                &message_id,
                &propagation_source,
                MessageAcceptance::Reject,
            );
            return;
        };
        self.input(Input::Gossip { from: propagation_source, id: message_id.0, topic, data: message.data });
    }
}
