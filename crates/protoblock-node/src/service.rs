//! [`NodeService`]: the state, the dispatch of inputs, the action queue and
//! the next wake-up. The rules live in the modules named after them.

use std::collections::{BTreeMap, VecDeque};

use protoblock_core::mempool::Mempool;
use protoblock_core::sync::SyncPlanner;
use protoblock_core::{Chain, Hash32};
use protoblock_proto::v1 as pb;

use crate::bans::Bans;
use crate::commit::GroupCommit;
use crate::config::{PROTOCOL_VERSION, ServiceConfig, TxSource};
use crate::counters::Counters;
use crate::io::{Action, Event, Input, Now, RequestId, SubmitError, Token, Topic};
use crate::peers::PeerInfo;
use crate::sync::SyncedBlock;
use crate::verify::Verifying;
use crate::{PeerKey, config};

/// What an outbound sync request was for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Purpose {
    /// A range the planner asked for (its request id).
    Blocks(u64),
    /// A forked peer's branch below a block that did not attach.
    Backfill,
    Mempool,
    Peers,
}

/// A peer as the status reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerView<P> {
    pub peer: P,
    pub head: u64,
    /// Past our handshake (same chain and version).
    pub ready: bool,
}

#[derive(Debug, Clone)]
pub struct ServiceStatus<P> {
    pub genesis: Hash32,
    /// The head the store holds: what block reads see and a restart resumes
    /// from. It trails `validated_height` by what is staged or being written.
    pub head_height: u64,
    pub head_id: Hash32,
    /// The head of the chain in memory, validated and placed.
    pub validated_height: u64,
    pub final_height: u64,
    /// The lowest height it serves blocks from (0: every block; see `retain_blocks`).
    pub lowest_height: u64,
    pub syncing: bool,
    /// The best head any peer has told us about (a claim, not a fact).
    pub target_height: u64,
    pub mempool: usize,
    pub peers: Vec<PeerView<P>>,
    pub serve_sync: bool,
    pub bans: usize,
    pub counters: Counters,
    /// Blocks refused as the sender's fault, by the rule they broke
    /// (`BlockError::rule`), in all.
    pub refused_by_rule: Vec<(&'static str, u64)>,
    /// Set once a store commit failed: the node is not live.
    pub store_error: Option<String>,
    /// Bytes peers made us hold: blocks buffered ahead of the head, txs in
    /// the mempool, and range answers the transport is still writing (each
    /// bounded by its config).
    pub sync_buffer_bytes: usize,
    pub mempool_bytes: usize,
    pub answering_bytes: usize,
}

pub struct NodeService<P: PeerKey> {
    pub(crate) cfg: ServiceConfig,
    pub(crate) me: P,
    pub(crate) chain: Chain,
    pub(crate) mempool: Mempool,
    pub(crate) planner: SyncPlanner<P, SyncedBlock>,
    pub(crate) tx_source: Option<TxSource>,
    pub(crate) peers: BTreeMap<P, PeerInfo>,
    pub(crate) bans: Bans<P>,
    pub(crate) requests: BTreeMap<RequestId, Purpose>,
    pub(crate) next_request: RequestId,
    /// Store reads out for peers' range requests: token → reply id, asker.
    pub(crate) reads: BTreeMap<Token, (crate::ReplyId, P)>,
    pub(crate) budgets: crate::serve::ServeBudgets<P>,
    pub(crate) next_token: Token,
    pub(crate) verifying: Verifying<P>,
    pub(crate) commit: GroupCommit,
    /// Blocks taken from the planner that extend the head, placed a step at
    /// a time (see `sync::place_ready`).
    pub(crate) ready_backlog: VecDeque<(P, SyncedBlock)>,
    /// More ready blocks to place: wake at once.
    pub(crate) more_ready: bool,
    /// A backfill request is out (since when); one at a time.
    pub(crate) backfilling: Option<crate::backfill::Backfill<P>>,
    /// The peer whose last backfills placed nothing new, and how many.
    pub(crate) fruitless_backfills: Option<(P, u32)>,
    pub(crate) next_produce_ms: u64,
    /// When synced blocks last extended the head: evidence of a longer chain,
    /// which (unlike a claimed head) may pause production.
    pub(crate) last_sync_progress_ms: Option<u64>,
    /// Some peer passed the handshake (so the chain's height is known).
    pub(crate) met_a_peer: bool,
    pub(crate) counters: Counters,
    /// Bounded: the rules are a fixed set of names.
    refused_by_rule: std::collections::BTreeMap<&'static str, u64>,
    pub(crate) actions: VecDeque<Action<P>>,
    /// The time of the last input (for `next_wakeup` when work is ready now).
    pub(crate) last_now: Now,
}

impl<P: PeerKey> NodeService<P> {
    /// A service for `me` over a chain resumed from its store (or new at
    /// genesis). `verifier`: whether the driver can check signatures off
    /// the loop ([`Action::Verify`]).
    pub fn new(me: P, chain: Chain, cfg: ServiceConfig, verifier: bool, now: Now) -> Self {
        let planner = SyncPlanner::new(cfg.sync.clone(), chain.params().clone());
        let mempool = Mempool::new(cfg.mempool.clone());
        Self {
            bans: Bans::new(cfg.max_bans),
            verifying: Verifying::new(verifier),
            commit: GroupCommit::new((chain.head().height, chain.head().id)),
            cfg,
            me,
            chain,
            mempool,
            planner,
            tx_source: None,
            peers: BTreeMap::new(),
            requests: BTreeMap::new(),
            next_request: 0,
            reads: BTreeMap::new(),
            budgets: Default::default(),
            next_token: 0,
            ready_backlog: VecDeque::new(),
            more_ready: false,
            backfilling: None,
            fruitless_backfills: None,
            next_produce_ms: 0,
            last_sync_progress_ms: None,
            met_a_peer: false,
            counters: Counters::default(),
            refused_by_rule: Default::default(),
            actions: VecDeque::new(),
            last_now: now,
        }
    }

    /// The driver has a signature verifier after all ([`Action::Verify`]).
    pub fn enable_verifier(&mut self) {
        self.verifying = Verifying::new(true);
    }

    pub fn with_tx_source(mut self, source: TxSource) -> Self {
        self.tx_source = Some(source);
        self
    }

    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    pub fn mempool(&self) -> &Mempool {
        &self.mempool
    }

    pub fn local_peer(&self) -> P {
        self.me
    }

    pub fn is_banned(&self, peer: &P, now: Now) -> bool {
        self.bans.is_banned(peer, now.mono_ms)
    }

    /// Peers connected (handshake passed or not).
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    pub fn knows_peer(&self, peer: &P) -> bool {
        self.peers.contains_key(peer)
    }

    /// Below the wanted number of peers: discovery should dial more.
    pub fn wants_peers(&self) -> bool {
        self.peers.len() < self.cfg.target_peers
    }

    /// Takes one input. Local work first: what it makes ready is placed
    /// before new remote work is planned (at the end of every input).
    pub fn handle(&mut self, now: Now, input: Input<P>) {
        self.last_now = now;
        match input {
            Input::Connected { peer } => self.on_connected(now, peer),
            Input::Disconnected { peer } => self.on_disconnected(peer),
            Input::ListenAddrs { peer, addrs } => self.on_listen_addrs(peer, addrs),
            Input::StatusRequest { peer, reply, status } => {
                self.actions.push_back(Action::ReplyStatus { reply, status: self.my_status() });
                self.on_peer_status(now, peer, &status);
            }
            Input::StatusResponse { peer, status } => self.on_peer_status(now, peer, &status),
            Input::SyncRequest { peer, reply, request } => self.serve(now, peer, reply, request),
            Input::ReplyDone { reply } => self.budgets.reply_done(reply),
            Input::SyncResponse { peer, id, response } => {
                let purpose = self.requests.remove(&id);
                self.on_sync_response(now, peer, purpose, response);
            }
            Input::SyncFailed { peer: _, id } => match self.requests.remove(&id) {
                Some(Purpose::Blocks(planner_id)) => self.planner.on_failure(planner_id),
                Some(Purpose::Backfill) => self.backfilling = None,
                _ => {}
            },
            Input::Gossip { from, id, topic, data } => {
                let verdict = match topic {
                    Topic::Blocks => self.on_gossip_block(now, from, data),
                    Topic::Txs => self.on_gossip_tx(now, data),
                };
                self.count_verdict(verdict);
                self.actions.push_back(Action::ReportVerdict { from, id, verdict });
            }
            Input::Verified { token, blocks, ok } => self.on_verified(now, token, blocks, ok),
            Input::VerifierGone => self.verifying.stop(),
            Input::BlocksRead { token, result } => self.on_blocks_read(token, result),
            Input::Committed { token, result } => self.on_committed(now, token, result),
            Input::Timer => self.on_timer(now),
            Input::SetServeSync(on) => self.cfg.serve_sync = on,
        }
        // Whatever came in may have freed a request slot or buffer room (a
        // failure, a departure, a commit), raised a peer's head (gossip) or
        // expired a deadline: plan at once rather than on a tick. Cheap when
        // nothing is to be asked.
        self.plan_sync(now);
    }

    /// The next thing to do, if any. Drain it after every `handle`.
    pub fn poll_action(&mut self) -> Option<Action<P>> {
        self.actions.pop_front()
    }

    /// When to send [`Input::Timer`] (monotonic ms), if ever.
    pub fn next_wakeup(&self) -> Option<u64> {
        if self.more_ready {
            return Some(self.last_now.mono_ms);
        }
        let mut next: Option<u64> = None;
        let mut at = |t: Option<u64>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        at(self.planner.next_deadline());
        at(self.bans.next_expiry());
        at(self.next_production());
        at(self.next_peer_refresh());
        at(self.backfill_deadline());
        next
    }

    fn on_timer(&mut self, now: Now) {
        for peer in self.bans.expire(now.mono_ms) {
            self.actions.push_back(Action::Unban { peer });
        }
        self.backfill_expire(now);
        self.refresh_peers(now);
        if self.more_ready {
            self.place_ready(now);
        }
        self.plan_sync(now);
        self.maybe_produce(now);
    }

    /// Local command: a tx from this node's user. Admitted to the mempool and
    /// published, or refused with the reason.
    pub fn submit_tx(&mut self, now: Now, bytes: Vec<u8>) -> Result<Hash32, SubmitError> {
        self.last_now = now;
        if let Some(e) = self.commit.failed() {
            return Err(SubmitError::StoreFailed(e.to_string()));
        }
        let id = self.mempool.insert(&bytes, &self.chain, now.unix_ms)?;
        self.actions.push_back(Action::Publish { topic: Topic::Txs, data: bytes });
        self.emit(Event::TxAccepted { id });
        Ok(id)
    }

    pub fn status(&self) -> ServiceStatus<P> {
        let h = self.chain.head();
        let (durable_height, durable_id) = self.commit.durable();
        ServiceStatus {
            genesis: self.chain.genesis().hash,
            head_height: durable_height,
            head_id: durable_id,
            validated_height: h.height,
            final_height: self.chain.final_height(),
            lowest_height: self.lowest_served(),
            syncing: self.planner.is_syncing(h.height),
            target_height: self.planner.best_peer_head().max(h.height),
            mempool: self.mempool.len(),
            peers: self.peers.iter().map(|(p, i)| PeerView { peer: *p, head: i.head, ready: i.ready }).collect(),
            serve_sync: self.cfg.serve_sync,
            bans: self.bans.len(),
            counters: self.counters,
            refused_by_rule: self.refused_by_rule.iter().map(|(r, n)| (*r, *n)).collect(),
            store_error: self.commit.failed().map(str::to_string),
            sync_buffer_bytes: self.planner.buffered_bytes(),
            mempool_bytes: self.mempool.bytes(),
            answering_bytes: self.budgets.answering_bytes(),
        }
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Commits what is staged (on stop); answer with [`Input::Committed`] as usual.
    pub fn flush(&mut self) {
        self.commit_staged();
    }

    /// Whether a commit is out or staged blocks wait for one.
    pub fn has_uncommitted(&self) -> bool {
        self.commit.busy() || self.commit.has_staged()
    }

    pub(crate) fn emit(&mut self, e: Event<P>) {
        self.actions.push_back(Action::Event(e));
    }

    pub(crate) fn my_status(&self) -> pb::Status {
        let h = self.chain.head();
        pb::Status {
            protocol_version: PROTOCOL_VERSION,
            genesis_hash: self.chain.genesis().hash.0.to_vec(),
            head_height: h.height,
            head_hash: h.id.0.to_vec(),
            final_height: self.chain.final_height(),
            lowest_height: self.lowest_served(),
        }
    }

    /// The lowest height this node keeps blocks from: with a retention
    /// window, the newest `retain_blocks` up to the head, but never above the
    /// final block; 0 when it keeps every block. What a store holds lags it
    /// by at most a few commits (pruning is bounded per commit), so this says
    /// a little less than the node may still have, never more.
    pub(crate) fn lowest_served(&self) -> u64 {
        match self.cfg.retain_blocks {
            Some(n) => {
                let floor = self.chain.head().height.saturating_add(1).saturating_sub(n.max(1));
                let floor = floor.min(self.chain.final_height());
                if floor > 1 { floor } else { 0 }
            }
            None => 0,
        }
    }

    pub(crate) fn send_request(&mut self, peer: P, purpose: Purpose, kind: pb::sync_request::Kind) {
        let id = self.next_request;
        self.next_request += 1;
        self.requests.insert(id, purpose);
        self.actions.push_back(Action::SendRequest { peer, id, request: pb::SyncRequest { kind: Some(kind) } });
    }

    pub(crate) fn token(&mut self) -> Token {
        let t = self.next_token;
        self.next_token += 1;
        t
    }

    /// Bans `peer` for `ban_ms`: its requests and buffered blocks are
    /// dropped, the driver refuses it and drops it from gossip.
    /// A block refused as its sender's fault, for the metrics.
    pub(crate) fn count_refusal(&mut self, e: &protoblock_core::BlockError) {
        *self.refused_by_rule.entry(e.rule()).or_default() += 1;
    }

    pub(crate) fn ban(&mut self, now: Now, peer: P, reason: String) {
        self.counters.bans += 1;
        if let Some(evicted) = self.bans.insert(peer, now.mono_ms.saturating_add(self.cfg.ban_ms)) {
            self.actions.push_back(Action::Unban { peer: evicted });
        }
        self.planner.peer_gone(&peer);
        self.peers.remove(&peer);
        self.ready_backlog.retain(|(p, _)| *p != peer);
        self.actions.push_back(Action::Ban { peer, reason: reason.clone() });
        self.emit(Event::PeerBanned { peer, reason });
    }
}

/// Limits re-exported for the modules.
pub(crate) use config::{MAX_MEMPOOL_SYNC as MEMPOOL_SYNC, MAX_PEERS_SHARED as PEERS_SHARED, MAX_RANGE as RANGE};
