//! Swarm events into service inputs (and connection-policy calls).

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
use crate::node::connections::ConnInfo;

impl<S: Store + 'static> Node<S> {
    pub(super) fn on_swarm_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        let mono = self.clock.mono_ms();
        match ev {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
                if self.conns.on_new_listen_addr(&mut self.swarm, &address, mono) {
                    self.emit(NodeEvent::Reachable { addr: address.clone() });
                }
                self.emit(NodeEvent::Listening { addr: address });
            }
            SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, num_established, .. } => {
                if self.service.is_banned(&peer_id, self.clock.now()) {
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                let conn = ConnInfo {
                    peer: peer_id,
                    addr: endpoint.get_remote_address().clone(),
                    relayed: endpoint.is_relayed(),
                    dialer: endpoint.is_dialer(),
                };
                self.conns.on_established(&mut self.swarm, connection_id, conn);
                if num_established.get() == 1 {
                    self.input(Input::Connected { peer: peer_id });
                }
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.conns.on_expired_listen_addr(&mut self.swarm, &address)
            }
            SwarmEvent::ListenerClosed { listener_id, addresses, .. } => {
                self.conns.on_listener_closed(&mut self.swarm, listener_id, &addresses)
            }
            SwarmEvent::OutgoingConnectionError { peer_id: Some(peer), error, .. } => {
                if self.conns.on_dial_failed(peer, mono) {
                    tracing::info!(%peer, ?error, "no direct /webrtc path; staying relayed");
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, connection_id, num_established, .. } => {
                let last = num_established == 0;
                let was_direct = self.conns.on_closed(connection_id, peer_id, last);
                if last {
                    self.input(Input::Disconnected { peer: peer_id });
                }
                if was_direct {
                    self.conns.scan_upgrades(&mut self.swarm, mono);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Status(e)) => self.on_status_event(e),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(e)) => self.on_sync_event(e),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(e)) => self.on_gossip_event(e),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event { peer, result: Ok(rtt), .. })) => {
                if self.swarm.is_connected(&peer) {
                    self.conns.latency.insert(peer, rtt.as_millis() as u64);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. })) => {
                let addrs = info.listen_addrs.iter().take(8).map(|a| a.to_vec()).collect();
                self.input(Input::ListenAddrs { peer: peer_id, addrs });
                let connected = self.swarm.is_connected(&peer_id);
                self.conns.on_identify(&mut self.swarm, peer_id, &info, connected, mono);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Rendezvous(e)) => {
                if let Some((point, peers)) = self.conns.on_rendezvous_event(&mut self.swarm, &self.service, e, mono) {
                    self.emit(NodeEvent::Discovered { point, peers });
                }
            }
            _ => {}
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
            Event::Message { peer, message: M::Request { request, channel, .. }, .. } => {
                let reply = self.reply_id();
                self.sync_replies.insert(reply, channel);
                self.input(Input::SyncRequest { peer, reply, request });
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
            _ => {}
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
