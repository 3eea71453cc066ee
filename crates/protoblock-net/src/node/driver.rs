//! [`Node`]: the thin driver. It owns the swarm, the store and one timer
//! armed from the service's (and the connection policy's) next wake-up; it
//! turns swarm events, commands, verifier and store completions into
//! service inputs, and the service's actions into swarm calls and store
//! operations. Store reads and commits run beside the loop (never awaited
//! in it), so serving one peer or committing never blocks the others.
//!
//! Priorities are explicit (`select_biased!`): store completions, then local
//! commands, then verifier results, then the timer, then remote input.

use std::collections::HashMap;
use std::sync::Arc;

use futures::channel::mpsc;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, identify, ping, rendezvous};
use protoblock_core::Chain;
use protoblock_node::{Action, Event, Input, NodeService, ReplyId, RequestId, Token, Topic, Verdict};
use protoblock_proto::v1 as pb;
use protoblock_store::Store;

use super::connections::{ConnInfo, Connections, dial_bootstrap, dial_once, dialable};
use super::handle::{Command, NodeHandle};
use super::{NodeConfig, NodeEvent, NodeStatus, PeerStatus, SignatureVerifier, VerifyJob};
use crate::behaviour::{Behaviour, BehaviourEvent};
use crate::clock::Clock;

/// A store operation's outcome, back to the loop.
enum StoreDone {
    Read { token: Token, result: Result<Vec<Vec<u8>>, String> },
    Committed { token: Token, result: Result<(), String> },
}

#[cfg(not(target_arch = "wasm32"))]
type StoreFuture = futures::future::BoxFuture<'static, StoreDone>;
#[cfg(target_arch = "wasm32")]
type StoreFuture = futures::future::LocalBoxFuture<'static, StoreDone>;

pub struct Node<S: Store> {
    swarm: Swarm<Behaviour>,
    service: NodeService<PeerId>,
    store: Arc<S>,
    store_ops: FuturesUnordered<StoreFuture>,
    clock: Clock,
    timer: Option<futures_timer::Delay>,
    armed: Option<u64>,
    conns: Connections,
    verifier: Option<SignatureVerifier>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NodeEvent>,
    blocks_topic: IdentTopic,
    txs_topic: IdentTopic,
    /// Inbound requests waiting for the service's answer.
    status_replies: HashMap<ReplyId, ResponseChannel<pb::Status>>,
    sync_replies: HashMap<ReplyId, ResponseChannel<pb::SyncResponse>>,
    next_reply: ReplyId,
    /// Outbound sync requests: libp2p's id → the service's.
    requests: HashMap<OutboundRequestId, RequestId>,
    #[cfg(feature = "gossip-metrics")]
    gossip_metrics: Option<std::sync::Arc<std::sync::Mutex<prometheus_client::registry::Registry>>>,
}

impl<S: Store + 'static> Node<S> {
    /// Wires a node. Events go to the returned receiver (bounded; a full
    /// receiver drops events rather than stalling the node).
    pub fn new(
        mut swarm: Swarm<Behaviour>,
        chain: Chain,
        store: S,
        cfg: NodeConfig,
    ) -> Result<(Self, NodeHandle, mpsc::Receiver<NodeEvent>), String> {
        let tag = &chain.genesis().hash.to_hex()[..16];
        let blocks_topic = IdentTopic::new(format!("/protoblock/{tag}/blocks/1"));
        let txs_topic = IdentTopic::new(format!("/protoblock/{tag}/txs/1"));
        swarm.behaviour_mut().gossipsub.subscribe(&blocks_topic).map_err(|e| e.to_string())?;
        swarm.behaviour_mut().gossipsub.subscribe(&txs_topic).map_err(|e| e.to_string())?;
        dial_bootstrap(&mut swarm, &cfg.bootstrap, true);
        let namespace = rendezvous::Namespace::new(format!("protoblock/{tag}")).map_err(|e| e.to_string())?;
        for addr in &cfg.external_addrs {
            swarm.add_external_address(addr.clone());
        }
        if swarm.behaviour().signaling.is_enabled() {
            // Inbound `/webrtc` connections (we answered a peer's offer) arrive on this listener.
            if let Err(e) = swarm.listen_on(Multiaddr::empty().with(Protocol::WebRTC)) {
                tracing::warn!(error = %e, "cannot listen on /webrtc");
            }
        }
        let clock = Clock::new();
        let now = clock.now();
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        let (ev_tx, ev_rx) = mpsc::channel(1024);
        let service = NodeService::new(*swarm.local_peer_id(), chain, cfg.service(), false, now);
        let node = Self {
            conns: Connections::new(&cfg, namespace, now.mono_ms),
            swarm,
            service,
            store: Arc::new(store),
            store_ops: FuturesUnordered::new(),
            clock,
            timer: None,
            armed: None,
            verifier: None,
            commands: cmd_rx,
            events: ev_tx,
            blocks_topic,
            txs_topic,
            status_replies: HashMap::new(),
            sync_replies: HashMap::new(),
            next_reply: 0,
            requests: HashMap::new(),
            #[cfg(feature = "gossip-metrics")]
            gossip_metrics: cfg.gossip_metrics.clone(),
        };
        Ok((node, NodeHandle { commands: cmd_tx }, ev_rx))
    }

    pub fn with_signature_verifier(mut self, verifier: SignatureVerifier) -> Self {
        self.verifier = Some(verifier);
        self.service.enable_verifier();
        self
    }

    pub fn with_tx_source(mut self, source: super::TxSource) -> Self {
        self.service = self.service.with_tx_source(source);
        self
    }

    pub fn chain(&self) -> &Chain {
        self.service.chain()
    }

    /// Runs until shut down.
    pub async fn run(mut self) {
        loop {
            self.perform_actions();
            self.arm_timer();
            futures::select_biased! {
                done = self.store_ops.select_next_some() => self.on_store_done(done),
                cmd = self.commands.next() => match cmd {
                    Some(Command::Shutdown(done)) => {
                        self.stop().await;
                        let _ = done.send(());
                        return;
                    }
                    Some(c) => self.on_command(c),
                    None => {
                        self.stop().await;
                        return;
                    }
                },
                done = next_verdict(&mut self.verifier).fuse() => match done {
                    Some(d) => self.input(Input::Verified { token: d.token, blocks: d.blocks, ok: d.ok }),
                    None => {
                        // The verifier is gone (a worker crashed): check here from now on;
                        // the ranges it held time out and are asked again.
                        tracing::warn!("signature verifier stopped; verifying on the node loop");
                        self.verifier = None;
                        self.input(Input::VerifierGone);
                    }
                },
                _ = wait(&mut self.timer).fuse() => {
                    self.timer = None;
                    self.armed = None;
                    self.input(Input::Timer);
                    let mono = self.clock.mono_ms();
                    self.conns.on_timer(&mut self.swarm, &self.service, mono);
                }
                ev = self.swarm.select_next_some() => self.on_swarm_event(ev),
            }
        }
    }

    /// Commits what is validated and waits for the store, then returns.
    async fn stop(&mut self) {
        tracing::info!(height = self.service.chain().head().height, "node stopping");
        self.service.flush();
        loop {
            self.perform_actions();
            if !self.service.has_uncommitted() {
                return;
            }
            match self.store_ops.next().await {
                Some(done) => self.on_store_done(done),
                None => return,
            }
            self.service.flush();
        }
    }

    fn input(&mut self, input: Input<PeerId>) {
        self.service.handle(self.clock.now(), input);
    }

    fn arm_timer(&mut self) {
        let mono = self.clock.mono_ms();
        let wake = match (self.service.next_wakeup(), self.conns.next_wakeup(&self.swarm, mono)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if wake != self.armed {
            self.armed = wake;
            self.timer = wake.map(|t| futures_timer::Delay::new(self.clock.until(t)));
        }
    }

    fn on_store_done(&mut self, done: StoreDone) {
        match done {
            StoreDone::Read { token, result } => self.input(Input::BlocksRead { token, result }),
            StoreDone::Committed { token, result } => {
                if let Err(e) = &result {
                    tracing::error!(error = %e, "store commit failed; the node stops placing blocks");
                }
                self.input(Input::Committed { token, result })
            }
        }
    }

    fn on_command(&mut self, c: Command) {
        match c {
            Command::SubmitTx(bytes, done) => {
                let r = self.service.submit_tx(self.clock.now(), bytes);
                let _ = done.send(r);
            }
            Command::Status(done) => {
                let _ = done.send(self.status());
            }
            Command::Dial(addr) => {
                let addr = dialable(addr);
                if let Err(e) = self.swarm.dial(addr.clone()) {
                    tracing::warn!(%addr, error = %e, "dial failed");
                }
            }
            Command::ReadChain(read) => read(self.service.chain()),
            Command::SetServeSync(on) => {
                tracing::info!(on, "serving sync");
                self.input(Input::SetServeSync(on));
            }
            Command::Shutdown(_) => unreachable!("handled in run"),
        }
    }

    /// Carries out what the service asked for.
    fn perform_actions(&mut self) {
        while let Some(action) = self.service.poll_action() {
            match action {
                Action::SendStatus { peer, status } => {
                    self.swarm.behaviour_mut().status.send_request(&peer, status);
                }
                Action::ReplyStatus { reply, status } => {
                    if let Some(ch) = self.status_replies.remove(&reply) {
                        let _ = self.swarm.behaviour_mut().status.send_response(ch, status);
                    }
                }
                Action::SendRequest { peer, id, request } => {
                    let rid = self.swarm.behaviour_mut().sync.send_request(&peer, request);
                    self.requests.insert(rid, id);
                }
                Action::Reply { reply, response } => {
                    if let Some(ch) = self.sync_replies.remove(&reply) {
                        let _ = self.swarm.behaviour_mut().sync.send_response(ch, response);
                    }
                }
                Action::ReadBlocks { token, start, count, max_bytes } => {
                    let store = self.store.clone();
                    self.store_ops.push(Box::pin(async move {
                        let result = store.blocks_range(start, count, max_bytes).await.map_err(|e| e.to_string());
                        StoreDone::Read { token, result }
                    }));
                }
                Action::Commit { token, batch } => {
                    let store = self.store.clone();
                    self.store_ops.push(Box::pin(async move {
                        let result = store.commit(batch).await.map_err(|e| e.to_string());
                        StoreDone::Committed { token, result }
                    }));
                }
                Action::Publish { topic, data } => {
                    let t = match topic {
                        Topic::Blocks => self.blocks_topic.clone(),
                        Topic::Txs => self.txs_topic.clone(),
                    };
                    if let Err(e) = self.swarm.behaviour_mut().gossipsub.publish(t, data) {
                        tracing::debug!(error = %e, ?topic, "publish (no peers yet?)");
                    }
                }
                Action::ReportVerdict { from, id, verdict } => {
                    let acceptance = match verdict {
                        Verdict::Accept => MessageAcceptance::Accept,
                        Verdict::Reject => MessageAcceptance::Reject,
                        Verdict::Ignore => MessageAcceptance::Ignore,
                    };
                    let id = gossipsub::MessageId::new(&id);
                    self.swarm.behaviour_mut().gossipsub.report_message_validation_result(&id, &from, acceptance);
                }
                Action::Verify { token, blocks } => self.verify(token, blocks),
                Action::Ban { peer, reason } => {
                    tracing::warn!(%peer, %reason, "banning peer");
                    self.swarm.behaviour_mut().gossipsub.blacklist_peer(&peer);
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
                Action::Unban { peer } => self.swarm.behaviour_mut().gossipsub.remove_blacklisted_peer(&peer),
                Action::Disconnect { peer } => {
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
                Action::Dial { peer, addrs } => {
                    let addr = addrs.into_iter().find_map(|a| Multiaddr::try_from(a).ok());
                    if let Some(addr) = addr {
                        let addr = dialable(addr).with_p2p(peer).unwrap_or_else(|a| a);
                        let _ = self.swarm.dial(dial_once(peer, addr));
                    }
                }
                Action::Event(e) => self.emit(match e {
                    Event::NewHead { height, id, txs } => NodeEvent::NewHead { height, id, txs },
                    Event::PeerUp { peer } => NodeEvent::PeerUp { peer },
                    Event::PeerDown { peer } => NodeEvent::PeerDown { peer },
                    Event::PeerIncompatible { peer, reason } => {
                        tracing::warn!(%peer, %reason, "dropping peer at handshake");
                        NodeEvent::PeerIncompatible { peer, reason }
                    }
                    Event::PeerBanned { peer, reason } => NodeEvent::PeerBanned { peer, reason },
                    Event::TxAccepted { id } => NodeEvent::TxAccepted { id },
                    Event::SyncProgress { head, target, syncing } => NodeEvent::SyncProgress { head, target, syncing },
                    Event::StoreFailed { error } => NodeEvent::StoreFailed { error },
                }),
            }
        }
    }

    /// A range to the verifier; when it is busy or gone, straight back
    /// unverified (the chain checks it).
    fn verify(&mut self, token: Token, blocks: Vec<Vec<u8>>) {
        let blocks = match self.verifier.as_mut() {
            Some(v) => match v.jobs.try_send(VerifyJob { token, blocks }) {
                Ok(()) => return,
                Err(e) => e.into_inner().blocks,
            },
            None => blocks,
        };
        self.input(Input::Verified { token, blocks, ok: Vec::new() });
    }

    fn emit(&mut self, e: NodeEvent) {
        let _ = self.events.try_send(e);
    }

    fn reply_id(&mut self) -> ReplyId {
        let r = self.next_reply;
        self.next_reply += 1;
        r
    }

    fn on_swarm_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
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

    fn peer_statuses(&self, s: &protoblock_node::ServiceStatus<PeerId>, ready: bool) -> Vec<PeerStatus> {
        s.peers
            .iter()
            .filter(|p| p.ready == ready)
            .map(|p| {
                let best = self.conns.best_conn(&p.peer);
                PeerStatus {
                    peer: p.peer,
                    head: p.head,
                    latency_ms: self.conns.latency.get(&p.peer).copied(),
                    addr: best.map(|c| c.addr.clone()),
                    // A relayed inbound connection's remote address is just
                    // `/p2p/<peer>`; the endpoint knows it came via a circuit.
                    relayed: best.is_some_and(|c| c.relayed),
                }
            })
            .collect()
    }

    fn status(&self) -> NodeStatus {
        let s = self.service.status();
        NodeStatus {
            peer_id: *self.swarm.local_peer_id(),
            genesis: s.genesis,
            head_height: s.head_height,
            head_id: s.head_id,
            final_height: s.final_height,
            syncing: s.syncing,
            target_height: s.target_height,
            mempool: s.mempool,
            peers: self.peer_statuses(&s, true),
            others: self.peer_statuses(&s, false),
            listen: self.conns.listen.clone(),
            blocks_validated: s.counters.blocks_validated,
            blocks_downloaded: s.counters.blocks_downloaded,
            blocks_served: s.counters.blocks_served,
            blocks_verified_off_loop: s.counters.blocks_verified_off_loop,
            serve_sync: s.serve_sync,
            gossip_accepted: s.counters.gossip_accepted,
            gossip_rejected: s.counters.gossip_rejected,
            gossip_received: self.gossip_received(),
            store_error: s.store_error,
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

async fn wait(timer: &mut Option<futures_timer::Delay>) {
    match timer {
        Some(t) => t.await,
        None => futures::future::pending().await,
    }
}

async fn next_verdict(verifier: &mut Option<SignatureVerifier>) -> Option<super::VerifyDone> {
    match verifier {
        Some(v) => v.done.next().await,
        None => futures::future::pending().await,
    }
}
