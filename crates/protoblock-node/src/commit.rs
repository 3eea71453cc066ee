//! Group commit. Placed chain changes go to the store in one atomic commit
//! at a time: while one is out, what the node places meanwhile is staged
//! and merged into the next (more writes overwrite each other and are
//! compacted away, and a browser validates the next run while IndexedDB
//! writes the last). A new head is announced once the commit that carries
//! it is durable. Staged blocks are in the chain but not yet in the store: a
//! crash loses them (synced again), a stop commits them ([`NodeService::flush`]).
//!
//! A failed commit stops the node from placing or producing blocks: it
//! would run ahead of its store. It reports the failure and says it is not
//! live; a restart resumes from the last durable head.

use protoblock_core::{ChainUpdate, Hash32, WriteBatch};
use protoblock_proto::v1 as pb;

use crate::PeerKey;
use crate::io::{Action, Event, Now, Token};
use crate::service::NodeService;

type Head = (u64, Hash32, Vec<Hash32>);

#[derive(Debug)]
pub(crate) struct GroupCommit {
    /// The newest head the store holds (what a restart resumes from and what
    /// block reads see).
    durable: (u64, Hash32),
    staged: Option<WriteBatch>,
    staged_heads: Vec<Head>,
    in_flight: Option<(Token, Vec<Head>)>,
    failed: Option<String>,
}

impl GroupCommit {
    pub fn new(durable: (u64, Hash32)) -> Self {
        Self { durable, staged: None, staged_heads: Vec::new(), in_flight: None, failed: None }
    }

    pub fn durable(&self) -> (u64, Hash32) {
        self.durable
    }

    pub fn failed(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    pub fn busy(&self) -> bool {
        self.in_flight.is_some()
    }

    pub fn has_staged(&self) -> bool {
        self.staged.is_some()
    }

    pub fn staged_blocks(&self) -> usize {
        self.staged.as_ref().map_or(0, |b| b.put_blocks.len())
    }

    fn stage(&mut self, batch: WriteBatch, heads: Vec<Head>) {
        match self.staged.as_mut() {
            Some(s) => s.merge(batch),
            None => self.staged = Some(batch),
        }
        self.staged_heads.extend(heads);
    }
}

impl<P: PeerKey> NodeService<P> {
    /// Takes placed chain changes: the mempool follows the chain at once,
    /// the store through staging.
    pub(crate) fn apply_updates(&mut self, now: Now, updates: Vec<ChainUpdate>) {
        let mut merged: Option<WriteBatch> = None;
        let mut heads = Vec::new();
        let mut reverted = Vec::new();
        for mut update in updates {
            let Some(batch) = update.batch.take() else { continue };
            if let Some(h) = batch.head {
                heads.push((h.height, h.id, update.head_txs));
            }
            reverted.extend(update.reverted);
            match merged.as_mut() {
                Some(m) => m.merge(batch),
                None => merged = Some(batch),
            }
        }
        let Some(batch) = merged else { return };
        self.counters.blocks_validated += heads.len() as u64;
        self.commit.stage(batch, heads);
        for bytes in &reverted {
            if let Ok(b) = <pb::Block as prost::Message>::decode(&bytes[..]) {
                for st in b.txs {
                    let _ = self.mempool.insert(&prost::Message::encode_to_vec(&st), &self.chain, now.unix_ms);
                }
            }
        }
        self.mempool.rebuild(&self.chain, now.unix_ms);
        self.commit_staged();
    }

    /// Sends what is staged to the store unless a commit is out (or failed).
    pub(crate) fn commit_staged(&mut self) {
        if self.commit.failed.is_some() || self.commit.in_flight.is_some() {
            return;
        }
        let Some(mut batch) = self.commit.staged.take() else { return };
        let floor = self.lowest_served();
        if floor > 1 {
            batch.prune_below = Some(floor);
        }
        let heads = std::mem::take(&mut self.commit.staged_heads);
        let token = self.token();
        self.commit.in_flight = Some((token, heads));
        self.actions.push_back(Action::Commit { token, batch });
    }

    pub(crate) fn on_committed(&mut self, _now: Now, token: Token, result: Result<(), String>) {
        let Some((t, heads)) = self.commit.in_flight.take() else { return };
        if t != token {
            self.commit.in_flight = Some((t, heads));
            return;
        }
        match result {
            Ok(()) => {
                self.counters.commits += 1;
                if let Some((height, id, _)) = heads.last() {
                    self.commit.durable = (*height, *id);
                }
                for (height, id, txs) in heads {
                    self.emit(Event::NewHead { height, id, txs });
                }
                self.commit_staged();
                // Placing may have paused for the store.
                self.more_ready = true;
            }
            Err(error) => {
                self.commit.failed = Some(error.clone());
                self.commit.staged = None;
                self.commit.staged_heads.clear();
                self.emit(Event::StoreFailed { error });
            }
        }
    }
}
