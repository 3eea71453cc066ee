//! The sync planner: which block ranges to ask which peers for, and in what
//! order to hand received blocks to the chain. Sans-IO and generic over the
//! peer id type, so the same planner drives libp2p nodes and the
//! deterministic many-node simulations in the tests.
//!
//! Rules:
//! - ranges of `range_len` blocks above the local head are asked of peers
//!   whose announced head covers them, least-loaded peer first, with at most
//!   `max_in_flight` requests overall and `per_peer_in_flight` per peer;
//! - a request not answered by its deadline is dropped, the peer gets a
//!   strike, and the range is asked of another peer where there is one;
//! - responses must be consecutive blocks starting at the requested height
//!   (fewer is fine: a size cap); anything else is the peer's fault;
//! - received blocks wait in a buffer until the chain reaches them, and
//!   leave it strictly in height order. Blocks that arrive by gossip ahead of
//!   the head share that buffer. It is bounded in blocks, in bytes, in bytes
//!   per peer (half the total: one peer cannot take every slot) and by a
//!   window of `max_buffered` heights above the head.

use std::collections::BTreeMap;

use crate::block::peek_header;
use crate::params::ChainParams;

#[derive(Debug, Clone)]
pub struct SyncConfig {
    pub range_len: u32,
    pub max_in_flight: usize,
    pub per_peer_in_flight: usize,
    pub timeout_ms: u64,
    /// Blocks held ahead of the head, over all peers (and how far above the
    /// head a gossiped block may be to be held).
    pub max_buffered: usize,
    /// Bytes held ahead of the head, over all peers; one peer's blocks may
    /// take half of it at most.
    pub max_buffered_bytes: usize,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            range_len: 64,
            max_in_flight: 8,
            per_peer_in_flight: 2,
            timeout_ms: 10_000,
            max_buffered: 2048,
            max_buffered_bytes: 32 << 20,
        }
    }
}

/// A request to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeRequest<P> {
    pub id: u64,
    pub peer: P,
    pub start: u64,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncFault {
    #[error("response to an unknown or expired request")]
    UnknownRequest,
    #[error("response came from another peer than asked")]
    WrongPeer,
    #[error("response holds more blocks than asked")]
    TooMany,
    #[error("block {index} of the response does not decode")]
    Undecodable { index: usize },
    #[error("block {index} of the response is at height {got}, expected {expected}")]
    WrongHeight { index: usize, expected: u64, got: u64 },
}

#[derive(Debug, Clone, Default)]
struct PeerSync {
    head: u64,
    /// The lowest height it serves (its retention window); 0 for all.
    lowest: u64,
    in_flight: usize,
    strikes: u32,
    /// Requests that timed out since its last useful response: silence, not
    /// an answer ("busy" and "not serving" are answers, and honest).
    timeouts: u32,
}

#[derive(Debug, Clone)]
struct Pending<P> {
    peer: P,
    start: u64,
    count: u32,
    deadline: u64,
}

/// `B` is a received block: its bytes, and whatever the node carries with
/// them to the chain (the browser node: whether a worker verified their
/// signatures already).
#[derive(Debug)]
pub struct SyncPlanner<P, B = Vec<u8>> {
    cfg: SyncConfig,
    params: ChainParams,
    peers: BTreeMap<P, PeerSync>,
    /// Outstanding requests by id.
    pending: BTreeMap<u64, Pending<P>>,
    /// Blocks received ahead of the head, by height.
    buffered: Buffer<P, B>,
    /// Peer that last timed out on a range start, to try someone else first.
    avoid: BTreeMap<u64, P>,
    next_id: u64,
}

impl<P: Clone + Ord, B: AsRef<[u8]>> SyncPlanner<P, B> {
    pub fn new(cfg: SyncConfig, params: ChainParams) -> Self {
        Self {
            cfg,
            params,
            peers: BTreeMap::new(),
            pending: BTreeMap::new(),
            buffered: Buffer::default(),
            avoid: BTreeMap::new(),
            next_id: 0,
        }
    }

    /// A peer announced its head (handshake or later status).
    pub fn peer_head(&mut self, peer: P, head: u64) {
        self.peers.entry(peer).or_default().head = head;
    }

    /// A peer announced the lowest height it serves (it keeps only its
    /// newest blocks): ranges below it go to other peers.
    pub fn peer_lowest(&mut self, peer: P, lowest: u64) {
        self.peers.entry(peer).or_default().lowest = lowest;
    }

    /// The peer disconnected or was banned: its requests and the blocks it
    /// sent that are still buffered are dropped, to be asked again elsewhere.
    pub fn peer_gone(&mut self, peer: &P) {
        self.peers.remove(peer);
        self.pending.retain(|_, p| &p.peer != peer);
        self.buffered.retain(|_, p| p != peer);
    }

    pub fn strikes(&self, peer: &P) -> u32 {
        self.peers.get(peer).map(|p| p.strikes).unwrap_or(0)
    }

    /// Peers whose last `min` requests (or more) timed out without a useful
    /// response between: a claimed head they do not serve is a lie, and the
    /// node drops them.
    pub fn struck(&self, min: u32) -> Vec<P> {
        self.peers.iter().filter(|(_, s)| s.timeouts >= min).map(|(p, _)| p.clone()).collect()
    }

    /// Highest head announced by any peer.
    pub fn best_peer_head(&self) -> u64 {
        self.peers.values().map(|p| p.head).max().unwrap_or(0)
    }

    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    pub fn buffered(&self) -> usize {
        self.buffered.len()
    }

    /// Whether the node is behind the best peer it knows of.
    pub fn is_syncing(&self, local_head: u64) -> bool {
        self.best_peer_head() > local_head
    }

    /// Expires overdue requests, then plans new ones.
    pub fn poll_requests(&mut self, local_head: u64, now_ms: u64) -> Vec<RangeRequest<P>> {
        let overdue: Vec<u64> = self.pending.iter().filter(|(_, p)| p.deadline <= now_ms).map(|(id, _)| *id).collect();
        for id in overdue {
            if let Some(p) = self.pending.remove(&id) {
                if let Some(ps) = self.peers.get_mut(&p.peer) {
                    ps.in_flight = ps.in_flight.saturating_sub(1);
                    ps.strikes += 1;
                    ps.timeouts += 1;
                }
                self.avoid.insert(p.start, p.peer);
            }
        }
        self.avoid.retain(|start, _| *start > local_head);
        self.buffered.retain(|h, _| *h > local_head);

        let mut out = Vec::new();
        let best = self.best_peer_head();
        let mut start = local_head + 1;
        // Bounded by what can be requested, never by the claimed `best`: a
        // window is skipped only while covered by a request in flight or by
        // buffered blocks (both bounded), and a full buffer ends the walk.
        while start <= best
            && self.pending.len() < self.cfg.max_in_flight
            && self.buffered.len() + self.pending_blocks() < self.cfg.max_buffered
            // Full of bytes, one request still goes out: blocks below the
            // buffered ones push those out (`make_room`), so it drains.
            && (self.buffered.bytes() < self.cfg.max_buffered_bytes || (out.is_empty() && self.pending.is_empty()))
        {
            let count = (self.cfg.range_len as u64).min(best - start + 1) as u32;
            let end = start + count as u64 - 1;
            let covered = self.pending.values().any(|p| p.start <= end && start < p.start + p.count as u64)
                || (start..=end).all(|h| self.buffered.contains_key(&h));
            if !covered {
                let avoid = self.avoid.get(&start);
                let candidate = self
                    .peers
                    .iter()
                    .filter(|(_, s)| s.head >= start && s.lowest <= start && s.in_flight < self.cfg.per_peer_in_flight)
                    .min_by_key(|(p, s)| (Some(*p) == avoid, s.in_flight, s.strikes))
                    .map(|(p, _)| p.clone());
                let Some(peer) = candidate else { break };
                let count = count.min((self.peers[&peer].head - start + 1) as u32);
                let id = self.next_id;
                self.next_id += 1;
                self.peers.get_mut(&peer).expect("candidate").in_flight += 1;
                let deadline = now_ms.saturating_add(self.cfg.timeout_ms);
                self.pending.insert(id, Pending { peer: peer.clone(), start, count, deadline });
                out.push(RangeRequest { id, peer, start, count });
                start += count as u64;
                continue;
            }
            start = end + 1;
        }
        out
    }

    fn pending_blocks(&self) -> usize {
        self.pending.values().map(|p| p.count as usize).sum()
    }

    /// The earliest deadline of an outstanding request (for the driver's timer).
    pub fn next_deadline(&self) -> Option<u64> {
        self.pending.values().map(|p| p.deadline).min()
    }

    /// Takes a response. Blocks are checked only for shape here (decodable,
    /// consecutive heights from the requested start); the chain validates
    /// them when they come out of [`SyncPlanner::take_ready`].
    pub fn on_response(&mut self, id: u64, from: &P, blocks: Vec<B>) -> Result<usize, SyncFault> {
        let p = self.pending.get(&id).ok_or(SyncFault::UnknownRequest)?;
        if &p.peer != from {
            return Err(SyncFault::WrongPeer);
        }
        let p = self.pending.remove(&id).expect("present");
        if let Some(ps) = self.peers.get_mut(&p.peer) {
            ps.in_flight = ps.in_flight.saturating_sub(1);
        }
        let fault = |s: &mut Self, f: SyncFault| {
            if let Some(ps) = s.peers.get_mut(&p.peer) {
                ps.strikes += 1;
            }
            Err(f)
        };
        if blocks.len() > p.count as usize {
            return fault(self, SyncFault::TooMany);
        }
        let mut checked = Vec::with_capacity(blocks.len());
        for (index, b) in blocks.into_iter().enumerate() {
            let expected = p.start + index as u64;
            match peek_header(b.as_ref(), &self.params) {
                Ok(header) if header.height == expected => checked.push((expected, b)),
                Ok(header) => {
                    return fault(self, SyncFault::WrongHeight { index, expected, got: header.height });
                }
                Err(_) => return fault(self, SyncFault::Undecodable { index }),
            }
        }
        let n = checked.len();
        if n > 0
            && let Some(ps) = self.peers.get_mut(&p.peer)
        {
            // It served what it claimed: earlier timeouts were the network's.
            ps.timeouts = 0;
        }
        for (h, b) in checked {
            if !self.make_room(&p.peer, h, b.as_ref().len()) {
                break;
            }
            self.buffered.insert(h, p.peer.clone(), b);
        }
        Ok(n)
    }

    /// The request failed at the transport (stream reset, peer refused).
    pub fn on_failure(&mut self, id: u64) {
        if let Some(p) = self.pending.remove(&id) {
            if let Some(ps) = self.peers.get_mut(&p.peer) {
                ps.in_flight = ps.in_flight.saturating_sub(1);
                ps.strikes += 1;
            }
            self.avoid.insert(p.start, p.peer);
        }
    }

    /// A block that arrived by gossip ahead of the head; kept if there is room.
    pub fn buffer_gossip(&mut self, from: P, height: u64, bytes: B, local_head: u64) -> bool {
        if height <= local_head + 1
            || height > local_head.saturating_add(self.cfg.max_buffered as u64)
            || self.buffered.contains_key(&height)
            || !self.make_room(&from, height, bytes.as_ref().len())
        {
            return false;
        }
        self.buffered.insert(height, from, bytes);
        true
    }

    /// Makes room for `len` bytes from `peer` at `height` under every bound
    /// of the buffer, by dropping blocks above `height` (highest first: the
    /// lowest heights are what the head needs next, so a full buffer can
    /// never keep out the block that would let it drain). False if it would
    /// take dropping a block at or below `height`.
    fn make_room(&mut self, peer: &P, height: u64, len: usize) -> bool {
        loop {
            let peer_over = self.buffered.bytes_of(peer) + len > self.cfg.max_buffered_bytes / 2;
            let over = peer_over
                || self.buffered.len() >= self.cfg.max_buffered
                || self.buffered.bytes() + len > self.cfg.max_buffered_bytes;
            if !over {
                return true;
            }
            let victim = match peer_over {
                true => self.buffered.highest_of(peer),
                false => self.buffered.highest(),
            };
            match victim {
                Some(h) if h > height => {
                    self.buffered.remove(h);
                }
                _ => return false,
            }
        }
    }

    /// Bytes held ahead of the head (what a peer can make us hold).
    pub fn buffered_bytes(&self) -> usize {
        self.buffered.bytes()
    }

    /// Buffered blocks that now extend the head, in height order, with the
    /// peer each came from (to blame if the chain refuses it).
    pub fn take_ready(&mut self, local_head: u64) -> Vec<(P, B)> {
        let mut out = Vec::new();
        let mut next = local_head + 1;
        while let Some(entry) = self.buffered.remove(next) {
            out.push(entry);
            next += 1;
        }
        self.buffered.retain(|h, _| *h > local_head);
        out
    }

    /// The chain refused a block from `peer`: drop everything else it sent
    /// that is still buffered, so it is asked of someone else.
    pub fn on_invalid(&mut self, peer: &P) {
        self.buffered.retain(|_, p| p != peer);
        if let Some(ps) = self.peers.get_mut(peer) {
            ps.strikes += 1;
        }
    }
}

/// The blocks held ahead of the head, by height, with their bytes counted
/// in all and per peer as they come and go.
#[derive(Debug)]
struct Buffer<P, B> {
    blocks: BTreeMap<u64, (P, B)>,
    bytes: usize,
    per_peer: BTreeMap<P, usize>,
}

impl<P, B> Default for Buffer<P, B> {
    fn default() -> Self {
        Self { blocks: BTreeMap::new(), bytes: 0, per_peer: BTreeMap::new() }
    }
}

impl<P: Clone + Ord, B: AsRef<[u8]>> Buffer<P, B> {
    fn len(&self) -> usize {
        self.blocks.len()
    }

    fn bytes(&self) -> usize {
        self.bytes
    }

    fn bytes_of(&self, peer: &P) -> usize {
        self.per_peer.get(peer).copied().unwrap_or(0)
    }

    fn contains_key(&self, height: &u64) -> bool {
        self.blocks.contains_key(height)
    }

    fn highest(&self) -> Option<u64> {
        self.blocks.last_key_value().map(|(h, _)| *h)
    }

    fn highest_of(&self, peer: &P) -> Option<u64> {
        self.blocks.iter().rev().find(|(_, (p, _))| p == peer).map(|(h, _)| *h)
    }

    fn insert(&mut self, height: u64, peer: P, block: B) {
        self.add(&peer, block.as_ref().len());
        if let Some((old_peer, old)) = self.blocks.insert(height, (peer, block)) {
            self.sub(&old_peer, old.as_ref().len());
        }
    }

    fn remove(&mut self, height: u64) -> Option<(P, B)> {
        let (peer, block) = self.blocks.remove(&height)?;
        self.sub(&peer, block.as_ref().len());
        Some((peer, block))
    }

    fn retain(&mut self, mut keep: impl FnMut(&u64, &P) -> bool) {
        let gone: Vec<u64> = self.blocks.iter().filter(|(h, (p, _))| !keep(h, p)).map(|(h, _)| *h).collect();
        for h in gone {
            self.remove(h);
        }
    }

    fn add(&mut self, peer: &P, len: usize) {
        self.bytes += len;
        *self.per_peer.entry(peer.clone()).or_default() += len;
    }

    fn sub(&mut self, peer: &P, len: usize) {
        self.bytes -= len;
        if let Some(n) = self.per_peer.get_mut(peer) {
            *n -= len;
            if *n == 0 {
                self.per_peer.remove(peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The planner's work per call is bounded by what it can request, not by
    /// a claimed head: with the buffer full and a peer claiming 2^60, a poll
    /// returns at once (it used to walk towards the claim 16 heights a step).
    #[test]
    fn a_claim_of_2_pow_60_with_a_full_buffer_costs_nothing() {
        let cfg = SyncConfig {
            range_len: 16,
            max_in_flight: 4,
            per_peer_in_flight: 2,
            timeout_ms: 1_000,
            max_buffered: 32,
            max_buffered_bytes: 1 << 20,
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut p: SyncPlanner<u32, Vec<u8>> = SyncPlanner::new(cfg, ChainParams::default());
            p.peer_head(1, 1 << 60);
            // Heights 100..=130: all the window above head 98 holds but
            // the next one (99).
            for h in 100..=130 {
                assert!(p.buffer_gossip(1, h, vec![0], 98));
            }
            let _ = tx.send(p.poll_requests(98, 0).len());
        });
        let requests = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("poll_requests returned (it did not walk to the claimed head)");
        assert_eq!(requests, 1, "only the gap below the buffered blocks can be requested");
    }

    fn blocks_of(len: usize) -> Vec<u8> {
        vec![0; len]
    }

    /// What peers can make us hold ahead of the head is bounded in bytes,
    /// one peer takes half of it at most, gossip far above the head is not
    /// held at all, and a block below the buffered ones pushes the highest
    /// out, so a full buffer always drains.
    #[test]
    fn the_buffer_is_bounded_in_bytes_per_peer_and_by_a_window() {
        let cfg = SyncConfig {
            range_len: 4,
            max_in_flight: 2,
            per_peer_in_flight: 2,
            timeout_ms: 100,
            max_buffered: 64,
            max_buffered_bytes: 1_000,
        };
        let mut p: SyncPlanner<u32, Vec<u8>> = SyncPlanner::new(cfg, ChainParams::default());
        let kept = (10..20).filter(|h| p.buffer_gossip(1, *h, blocks_of(100), 0)).count();
        assert_eq!((kept, p.buffered_bytes()), (5, 500), "one peer: half the bytes");
        let kept = (20..30).filter(|h| p.buffer_gossip(2, *h, blocks_of(100), 0)).count();
        assert_eq!((kept, p.buffered_bytes()), (5, 1_000), "the other half for another peer");
        assert!(!p.buffer_gossip(3, 40, blocks_of(100), 0), "full: a higher block is refused");
        assert!(p.buffer_gossip(3, 5, blocks_of(100), 0), "a lower one pushes the highest out");
        assert_eq!(p.buffered_bytes(), 1_000);
        assert!(p.buffer_gossip(1, 6, blocks_of(100), 0), "its own highest makes room for peer 1");
        assert!(!p.buffer_gossip(4, 65, blocks_of(1), 0), "beyond the window of 64 heights");
        // Placing drains it: what comes out is counted out.
        assert!(p.buffer_gossip(4, 2, blocks_of(10), 0), "pushing out peer 2's highest (100 bytes)");
        assert_eq!(p.buffered_bytes(), 910);
        let (_, b) = p.take_ready(1).pop().expect("height 2 is next");
        assert_eq!(b.len(), 10);
        assert_eq!(p.buffered_bytes(), 900);
        p.peer_gone(&1);
        p.peer_gone(&2);
        p.peer_gone(&3);
        assert_eq!((p.buffered(), p.buffered_bytes()), (0, 0));
    }

    /// A peer whose requests time out gathers strikes and is reported.
    #[test]
    fn timeouts_strike_a_peer_until_it_is_reported() {
        let cfg = SyncConfig {
            range_len: 4,
            max_in_flight: 1,
            per_peer_in_flight: 1,
            timeout_ms: 100,
            max_buffered: 64,
            max_buffered_bytes: 1 << 20,
        };
        let mut p: SyncPlanner<u32, Vec<u8>> = SyncPlanner::new(cfg, ChainParams::default());
        p.peer_head(7, 1_000);
        let mut t = 0;
        for _ in 0..3 {
            assert_eq!(p.poll_requests(0, t).len(), 1);
            t += 101;
        }
        p.poll_requests(0, t);
        assert_eq!(p.struck(3), vec![7]);
        assert!(p.struck(4).is_empty());
    }
}
