//! What one WebRTC connection's remote can make us hold, platform-free.
//!
//! A browser data channel has no receive-side flow control: every message
//! SCTP delivers is handed to `onmessage` whether or not anything reads the
//! stream, so unread bytes pile up in our buffers at the sender's pace. One
//! channel is capped (`MAX_CHANNEL_BYTES`), but a remote opens channels at
//! will (each libp2p stream is one), so the cap must also hold per
//! connection: all its channels draw on one [`ConnectionBudget`]. A message
//! that does not fit fails its channel (the stream errors and is reset), not
//! the page. Inbound channels are counted too: a remote may have at most
//! `max_inbound_channels` open at once, and the rest are closed on arrival.

use std::cell::Cell;
use std::rc::Rc;

use bytes::BytesMut;

/// Unread bytes one channel may hold. Our largest message is a 4 MiB sync
/// response (plus 7 bytes of framing per 16 KiB); 8 MiB leaves room for it
/// and whatever else is queued on the channel.
pub const MAX_CHANNEL_BYTES: usize = 8 * 1024 * 1024;
/// Unread bytes all channels of one connection may hold: two of the largest
/// responses at once. An honest peer's streams are read as they arrive, so
/// only a sender far ahead of us meets this.
pub const MAX_CONNECTION_BYTES: usize = 16 * 1024 * 1024;
/// Inbound channels (streams the remote opened) open at once. Our protocols
/// take about twenty at a time from one peer (16 sync and 4 status requests,
/// gossip, identify, ping, signalling).
pub const MAX_INBOUND_CHANNELS: usize = 64;

#[derive(Debug)]
struct Counts {
    max_bytes: usize,
    max_inbound: usize,
    bytes: Cell<usize>,
    inbound: Cell<usize>,
}

/// One connection's budget, shared by its channels (single-threaded: a page).
#[derive(Debug, Clone)]
pub struct ConnectionBudget(Rc<Counts>);

impl Default for ConnectionBudget {
    fn default() -> Self {
        Self::new(MAX_CONNECTION_BYTES, MAX_INBOUND_CHANNELS)
    }
}

impl ConnectionBudget {
    pub fn new(max_bytes: usize, max_inbound: usize) -> Self {
        Self(Rc::new(Counts { max_bytes, max_inbound, bytes: Cell::new(0), inbound: Cell::new(0) }))
    }

    /// Unread bytes held by all channels.
    pub fn bytes(&self) -> usize {
        self.0.bytes.get()
    }

    /// Inbound channels open.
    pub fn inbound_channels(&self) -> usize {
        self.0.inbound.get()
    }

    /// A slot for one more inbound channel, held until the slot is dropped;
    /// `None` when the remote has its maximum open.
    pub fn open_inbound(&self) -> Option<InboundSlot> {
        if self.0.inbound.get() >= self.0.max_inbound {
            return None;
        }
        self.0.inbound.set(self.0.inbound.get() + 1);
        Some(InboundSlot(self.clone()))
    }

    fn take(&self, n: usize) -> bool {
        let held = self.0.bytes.get();
        if held.saturating_add(n) > self.0.max_bytes {
            return false;
        }
        self.0.bytes.set(held + n);
        true
    }

    fn give_back(&self, n: usize) {
        self.0.bytes.set(self.0.bytes.get().saturating_sub(n));
    }
}

/// An open inbound channel's place in its connection's count.
#[derive(Debug)]
pub struct InboundSlot(ConnectionBudget);

impl Drop for InboundSlot {
    fn drop(&mut self) {
        let c = &self.0.0.inbound;
        c.set(c.get().saturating_sub(1));
    }
}

/// The remote sent more than a channel or its connection may hold unread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overloaded;

/// One channel's unread bytes, drawn from its connection's budget and given
/// back as they are read (or when the buffer is dropped). Once overloaded it
/// holds nothing and takes nothing more: the data is lost, so the stream
/// must fail.
#[derive(Debug)]
pub struct ReceiveBuffer {
    buf: BytesMut,
    budget: ConnectionBudget,
    overloaded: bool,
}

impl ReceiveBuffer {
    pub fn new(budget: ConnectionBudget) -> Self {
        Self { buf: BytesMut::new(), budget, overloaded: false }
    }

    pub fn is_overloaded(&self) -> bool {
        self.overloaded
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Appends a message of `len` bytes, written into place by `fill` (in a
    /// page: straight from the JS `ArrayBuffer`).
    pub fn push_with(&mut self, len: usize, fill: impl FnOnce(&mut [u8])) -> Result<(), Overloaded> {
        if self.overloaded {
            return Err(Overloaded);
        }
        let start = self.buf.len();
        if start.saturating_add(len) > MAX_CHANNEL_BYTES || !self.budget.take(len) {
            self.overloaded = true;
            self.budget.give_back(start);
            self.buf = BytesMut::new();
            return Err(Overloaded);
        }
        self.buf.resize(start + len, 0);
        fill(&mut self.buf[start..]);
        Ok(())
    }

    /// Moves up to `out.len()` bytes out; how many.
    pub fn read(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        let _ = self.buf.split_to(n);
        self.budget.give_back(n);
        n
    }
}

impl Drop for ReceiveBuffer {
    fn drop(&mut self) {
        self.budget.give_back(self.buf.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(b: &mut ReceiveBuffer, n: usize) -> Result<(), Overloaded> {
        b.push_with(n, |dst| dst.fill(7))
    }

    /// The attack: a remote opens channel after channel and fills each to
    /// just under the per-channel cap without our reading. With only that
    /// cap (the code before), ten channels held 80 MiB; the connection's
    /// budget stops them at 16 MiB, failing the channels that overflow.
    #[test]
    fn many_full_channels_of_one_connection_hold_at_most_its_budget() {
        let budget = ConnectionBudget::default();
        let chunk = 16 * 1024;
        let mut channels: Vec<ReceiveBuffer> = (0..10).map(|_| ReceiveBuffer::new(budget.clone())).collect();
        let mut failed = 0;
        for ch in &mut channels {
            for _ in 0..(MAX_CHANNEL_BYTES / chunk) - 1 {
                if push(ch, chunk).is_err() {
                    failed += 1;
                    break;
                }
            }
        }
        let held: usize = channels.iter().map(ReceiveBuffer::len).sum();
        assert!(held <= MAX_CONNECTION_BYTES, "held {held}");
        assert_eq!(budget.bytes(), held, "the budget counts exactly what is held");
        assert!(failed >= 7, "the channels past the budget fail ({failed})");
        assert!(channels.iter().filter(|c| c.is_overloaded()).all(ReceiveBuffer::is_empty));
        drop(channels);
        assert_eq!(budget.bytes(), 0, "dropped channels give their bytes back");
    }

    #[test]
    fn reading_gives_bytes_back_and_one_channel_keeps_its_own_cap() {
        let budget = ConnectionBudget::new(usize::MAX, 4);
        let mut ch = ReceiveBuffer::new(budget.clone());
        push(&mut ch, 1000).unwrap();
        let mut out = [0u8; 600];
        assert_eq!(ch.read(&mut out), 600);
        assert_eq!(budget.bytes(), 400);
        assert!(out.iter().all(|b| *b == 7));
        assert_eq!(push(&mut ch, MAX_CHANNEL_BYTES), Err(Overloaded), "over one channel's cap");
        assert_eq!(budget.bytes(), 0);
        assert_eq!(push(&mut ch, 1), Err(Overloaded), "an overloaded channel takes nothing more");
    }

    #[test]
    fn inbound_channels_over_the_cap_are_refused_until_one_closes() {
        let budget = ConnectionBudget::new(1024, 3);
        let slots: Vec<InboundSlot> = (0..3).map(|_| budget.open_inbound().unwrap()).collect();
        assert!(budget.open_inbound().is_none());
        assert_eq!(budget.inbound_channels(), 3);
        drop(slots);
        assert_eq!(budget.inbound_channels(), 0);
        assert!(budget.open_inbound().is_some());
    }
}
