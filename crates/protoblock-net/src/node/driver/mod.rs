//! [`Node`]: the thin driver. It owns the swarm, the store and one timer
//! armed from the service's (and the connection policy's) next wake-up; it
//! turns swarm events, commands, verifier and store completions into
//! service inputs, and the service's actions into swarm calls and store
//! operations. Store reads and commits run beside the loop (never awaited
//! in it), so serving one peer or committing never blocks the others.
//!
//! Priorities are explicit (`select_biased!`): store completions, then local
//! commands, verifier results, work due now, the timer, then remote input;
//! after each local event the swarm gets one turn, so neither starves.

use std::collections::HashMap;
use std::sync::Arc;

use futures::channel::mpsc;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{InboundRequestId, OutboundRequestId, ResponseChannel};
use libp2p::{Multiaddr, PeerId, Swarm, rendezvous};
use protoblock_core::Chain;
use protoblock_node::{Action, Event, Input, NodeService, ReplyId, RequestId, Token, Topic, Verdict};
use protoblock_proto::v1 as pb;
use protoblock_store::Store;

mod events;
#[cfg(feature = "metrics")]
mod metrics;
mod status;

use super::handle::{Command, NodeHandle, PUBLISH_MS, Published};
use super::{NodeConfig, NodeEvent, SignatureVerifier, VerifyJob};
use crate::behaviour::Behaviour;
use crate::clock::Clock;
use crate::policy::{DiscoveryConfig, MeshConfig, dial_once, dialable};

/// The application's dials in progress at once, at most.
const MAX_APP_DIALS: usize = 64;

/// A store operation's outcome, back to the loop.
enum StoreDone {
    Read { token: Token, result: Result<Vec<Vec<u8>>, String> },
    Committed { token: Token, result: Result<(), String>, started_ms: u64 },
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
    /// Give the swarm an event before the next local one.
    swarm_turn: bool,
    verifier: Option<SignatureVerifier>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NodeEvent>,
    blocks_topic: IdentTopic,
    txs_topic: IdentTopic,
    /// Inbound requests waiting for the service's answer.
    status_replies: HashMap<ReplyId, ResponseChannel<pb::Status>>,
    sync_replies: HashMap<ReplyId, ResponseChannel<pb::SyncResponse>>,
    /// Inbound sync requests until libp2p reports their answer written or
    /// failed, which the service hears as `ReplyDone` (bounded by libp2p's
    /// concurrent streams per connection).
    answering: HashMap<InboundRequestId, ReplyId>,
    next_reply: ReplyId,
    /// The application's dials, answered when their connection is up or failed.
    dials: HashMap<libp2p::swarm::ConnectionId, futures::channel::oneshot::Sender<Result<PeerId, String>>>,
    /// Outbound sync requests: libp2p's id → the service's.
    requests: HashMap<OutboundRequestId, RequestId>,
    /// Connections whose pings keep failing (`NodeConfig::dead_after_pings`).
    dead_links: crate::policy::DeadLinks<libp2p::swarm::ConnectionId>,
    #[cfg(feature = "metrics")]
    net_metrics: Option<metrics::NetMetrics>,
    #[cfg(feature = "gossip-metrics")]
    gossip_metrics: Option<std::sync::Arc<std::sync::Mutex<prometheus_client::registry::Registry>>>,
    /// The status as last published for readers outside the loop.
    published: Arc<Published>,
    /// Something readers need at once changed (our listen addresses).
    publish_now: bool,
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
        let (score, thresholds) =
            crate::behaviour::gossip_scoring(&[(blocks_topic.hash(), 1.0), (txs_topic.hash(), 0.5)]);
        swarm.behaviour_mut().gossipsub.with_peer_score(score, thresholds)?;
        swarm.behaviour_mut().gossipsub.subscribe(&blocks_topic).map_err(|e| e.to_string())?;
        swarm.behaviour_mut().gossipsub.subscribe(&txs_topic).map_err(|e| e.to_string())?;
        let namespace = rendezvous::Namespace::new(format!("protoblock/{tag}")).map_err(|e| e.to_string())?;
        let clock = Clock::new();
        let me = *swarm.local_peer_id();
        let webrtc = swarm.behaviour().signaling.is_enabled();
        let relay_client = swarm.behaviour().relay_client.is_enabled();
        let b = swarm.behaviour_mut();
        b.mesh.start(MeshConfig { webrtc, target_direct_peers: cfg.target_direct_peers }, clock, me);
        let discovery = DiscoveryConfig {
            bootstrap: cfg.bootstrap.clone(),
            external_addrs: cfg.external_addrs.clone(),
            advertise_listen_addrs: cfg.advertise_listen_addrs,
            max_relay_reservations: cfg.max_relay_reservations,
            relay_client,
            webrtc,
            namespace,
            trust_any_relay: cfg.trust_any_relay,
        };
        b.discovery.start(discovery, clock, me);
        if webrtc {
            // Inbound `/webrtc` connections (we answered a peer's offer) arrive on this listener.
            if let Err(e) = swarm.listen_on(Multiaddr::empty().with(Protocol::WebRTC)) {
                tracing::warn!(error = %e, "cannot listen on /webrtc");
            }
        }
        let now = clock.now();
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        let (ev_tx, ev_rx) = mpsc::channel(1024);
        let service = NodeService::new(*swarm.local_peer_id(), chain, cfg.service(), false, now);
        let node = Self {
            swarm,
            service,
            store: Arc::new(store),
            store_ops: FuturesUnordered::new(),
            clock,
            timer: None,
            armed: None,
            swarm_turn: false,
            verifier: None,
            commands: cmd_rx,
            events: ev_tx,
            blocks_topic,
            txs_topic,
            status_replies: HashMap::new(),
            dead_links: crate::policy::DeadLinks::new(cfg.dead_after_pings),
            #[cfg(feature = "metrics")]
            net_metrics: cfg.metrics.as_ref().and_then(|r| r.lock().ok().map(|mut r| metrics::NetMetrics::new(&mut r))),
            sync_replies: HashMap::new(),
            answering: HashMap::new(),
            dials: HashMap::new(),
            next_reply: 0,
            requests: HashMap::new(),
            #[cfg(feature = "gossip-metrics")]
            gossip_metrics: cfg.gossip_metrics.clone(),
            published: Arc::new(Published::new(clock)),
            publish_now: false,
        };
        // Readers never see "no status yet".
        node.published.publish(node.status());
        let handle = NodeHandle { commands: cmd_tx, published: node.published.clone() };
        Ok((node, handle, ev_rx))
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
            if std::mem::take(&mut self.publish_now) || self.clock.mono_ms() >= self.published.at_ms() + PUBLISH_MS {
                self.published.publish(self.status());
            }
            // Work that is due now (ready blocks to place, an expired
            // deadline) runs without a timer: a timer in a hidden tab is
            // throttled to once a second or less. Local work goes before
            // remote input, but the swarm gets one event after each local
            // one, so a long catch-up (verifier and store completions one
            // after another) never starves the network: peers' requests,
            // pings and our own responses keep moving.
            let due_now = self.arm_timer();
            if std::mem::take(&mut self.swarm_turn)
                && let Some(Some(ev)) = self.swarm.next().now_or_never()
            {
                self.on_swarm_event(ev);
                continue;
            }
            self.swarm_turn = true;
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
                _ = ready_if(due_now).fuse() => self.on_timer(),
                _ = wait(&mut self.timer).fuse() => self.on_timer(),
                ev = self.swarm.select_next_some() => {
                    // It had its turn.
                    self.swarm_turn = false;
                    self.on_swarm_event(ev);
                }
            }
        }
    }

    fn on_timer(&mut self) {
        self.timer = None;
        self.armed = None;
        self.input(Input::Timer);
        let now = self.clock.now();
        let b = self.swarm.behaviour_mut();
        b.mesh.on_timer();
        b.discovery.on_timer(|p| self.service.is_banned(p, now));
    }

    /// Commits what is validated and waits for the store, then returns.
    /// Reads still in flight are awaited too (at most `max_reads`, each
    /// short): a store future dropped mid-request leaves the backend to
    /// complete a request nobody owns (in the browser, a rexie handler that
    /// throws once its closure is gone).
    async fn stop(&mut self) {
        tracing::info!(height = self.service.chain().head().height, "node stopping");
        self.service.flush();
        loop {
            self.perform_actions();
            if !self.service.has_uncommitted() {
                break;
            }
            match self.store_ops.next().await {
                Some(done) => self.on_store_done(done),
                None => return,
            }
            self.service.flush();
        }
        while self.store_ops.next().await.is_some() {}
    }

    fn input(&mut self, input: Input<PeerId>) {
        self.service.handle(self.clock.now(), input);
    }

    /// Arms the one timer for the next wake-up; true if that is now.
    fn arm_timer(&mut self) -> bool {
        let mono = self.clock.mono_ms();
        let b = self.swarm.behaviour();
        // Publishing the status is due once a second even when idle, so
        // its age tells a hung loop from a quiet one.
        let publish = self.published.at_ms() + 1_000;
        let wake = [self.service.next_wakeup(), b.mesh.next_wakeup(), b.discovery.next_wakeup(), Some(publish)]
            .into_iter()
            .flatten()
            .min();
        if wake.is_some_and(|t| t <= mono) {
            self.timer = None;
            self.armed = None;
            return true;
        }
        if wake != self.armed {
            self.armed = wake;
            self.timer = wake.map(|t| futures_timer::Delay::new(self.clock.until(t)));
        }
        false
    }

    fn on_store_done(&mut self, done: StoreDone) {
        match done {
            StoreDone::Read { token, result } => self.input(Input::BlocksRead { token, result }),
            StoreDone::Committed { token, result, started_ms } => {
                #[cfg(feature = "metrics")]
                if let Some(m) = &self.net_metrics {
                    m.commit_done(self.clock.mono_ms().saturating_sub(started_ms));
                }
                #[cfg(not(feature = "metrics"))]
                let _ = started_ms;
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
            Command::Dial(addr, done) => {
                if let Some(Protocol::P2p(peer)) = addr.iter().last() {
                    self.swarm.behaviour_mut().discovery.trust(peer);
                }
                if self.dials.len() >= MAX_APP_DIALS {
                    let _ = done.send(Err(format!("{MAX_APP_DIALS} dials in progress already")));
                    return;
                }
                let addr = dialable(addr);
                let opts: libp2p::swarm::dial_opts::DialOpts = addr.clone().into();
                let id = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.dials.insert(id, done);
                    }
                    Err(e) => {
                        tracing::warn!(%addr, error = %e, "dial failed");
                        let _ = done.send(Err(e.to_string()));
                    }
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
                    // A closed channel (the peer gone) is reported as an
                    // InboundFailure, which gives the service its ReplyDone.
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
                    let started_ms = self.clock.mono_ms();
                    self.store_ops.push(Box::pin(async move {
                        let result = store.commit(batch).await.map_err(|e| e.to_string());
                        StoreDone::Committed { token, result, started_ms }
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
                    let b = self.swarm.behaviour_mut();
                    b.gossipsub.blacklist_peer(&peer);
                    // Refuses its new connections, and closes the ones open.
                    b.blocked.block_peer(peer);
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
                Action::Unban { peer } => {
                    let b = self.swarm.behaviour_mut();
                    b.gossipsub.remove_blacklisted_peer(&peer);
                    b.blocked.unblock_peer(peer);
                }
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
                Action::Event(e) => {
                    if let Event::PeerUp { peer } = &e {
                        self.swarm.behaviour_mut().admission.mark_useful(*peer);
                    }
                    self.emit(match e {
                        Event::NewHead { height, id, txs } => NodeEvent::NewHead { height, id, txs },
                        Event::PeerUp { peer } => NodeEvent::PeerUp { peer },
                        Event::PeerDown { peer } => NodeEvent::PeerDown { peer },
                        Event::PeerIncompatible { peer, reason } => {
                            tracing::warn!(%peer, %reason, "dropping peer at handshake");
                            NodeEvent::PeerIncompatible { peer, reason }
                        }
                        Event::PeerBanned { peer, reason } => NodeEvent::PeerBanned { peer, reason },
                        Event::TxAccepted { id } => NodeEvent::TxAccepted { id },
                        Event::SyncProgress { head, target, syncing } => {
                            NodeEvent::SyncProgress { head, target, syncing }
                        }
                        Event::StoreFailed { error } => NodeEvent::StoreFailed { error },
                    })
                }
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
}

/// Ready at once when `go`, else never.
async fn ready_if(go: bool) {
    if !go {
        futures::future::pending::<()>().await;
    }
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
