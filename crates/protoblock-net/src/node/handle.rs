//! The application's side of a running node: a bounded command channel.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::SinkExt;
use futures::channel::{mpsc, oneshot};
use libp2p::{Multiaddr, PeerId};
use protoblock_core::{Chain, Hash32};
use protoblock_node::SubmitError;

use super::NodeStatus;
use crate::clock::Clock;

/// A read of the chain run inside the node's loop (the chain is the loop's
/// alone, so readers borrow it there instead of sharing it behind a lock).
pub type ChainRead = Box<dyn FnOnce(&Chain) + Send>;

pub enum Command {
    SubmitTx(Vec<u8>, oneshot::Sender<Result<Hash32, SubmitError>>),
    Status(oneshot::Sender<NodeStatus>),
    /// Answered once the connection is up (its peer), or the dial failed.
    Dial(Multiaddr, oneshot::Sender<Result<PeerId, String>>),
    ReadChain(ChainRead),
    SetServeSync(bool),
    Shutdown(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct NodeHandle {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) published: Arc<Published>,
}

/// The status the node loop last published (every [`PUBLISH_MS`] at most,
/// and at least once a second while the loop runs). Readers that must not
/// wait for the loop (`/health`, `/metrics`: a loop busy with a thousand
/// peers, or hung, is what they are there to show) read this instead.
pub struct Published {
    status: Mutex<Option<Arc<NodeStatus>>>,
    /// Monotonic ms (on `clock`) of the last publish.
    at_ms: AtomicU64,
    clock: Clock,
}

/// How often the loop publishes its status, at most.
pub const PUBLISH_MS: u64 = 250;

impl Published {
    pub(crate) fn new(clock: Clock) -> Self {
        Self { status: Mutex::new(None), at_ms: AtomicU64::new(0), clock }
    }

    pub(crate) fn publish(&self, status: NodeStatus) {
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(status));
        self.at_ms.store(self.clock.mono_ms(), Ordering::Relaxed);
    }

    pub(crate) fn at_ms(&self) -> u64 {
        self.at_ms.load(Ordering::Relaxed)
    }
}

impl NodeHandle {
    /// The last published status and its age in ms, without asking the
    /// loop; `None` before the first publish.
    pub fn snapshot(&self) -> Option<(Arc<NodeStatus>, u64)> {
        let st = self.published.status.lock().unwrap_or_else(|e| e.into_inner()).clone()?;
        Some((st, self.published.clock.mono_ms().saturating_sub(self.published.at_ms())))
    }

    pub async fn submit_tx(&self, tx: Vec<u8>) -> Result<Hash32, SubmitError> {
        let (tx_done, rx) = oneshot::channel();
        self.commands.clone().send(Command::SubmitTx(tx, tx_done)).await.map_err(|_| SubmitError::Stopped)?;
        rx.await.map_err(|_| SubmitError::Stopped)?
    }

    pub async fn status(&self) -> Option<NodeStatus> {
        let (tx, rx) = oneshot::channel();
        self.commands.clone().send(Command::Status(tx)).await.ok()?;
        rx.await.ok()
    }

    /// Dials `addr`; the peer once the connection is up, or why it is not.
    pub async fn dial(&self, addr: Multiaddr) -> Result<PeerId, String> {
        let (tx, rx) = oneshot::channel();
        self.commands.clone().send(Command::Dial(addr, tx)).await.map_err(|_| "the node stopped".to_string())?;
        rx.await.map_err(|_| "the node stopped".to_string())?
    }

    /// Runs `f` on the current chain (state, head, main-chain ids).
    pub async fn read_chain<R: Send + 'static>(&self, f: impl FnOnce(&Chain) -> R + Send + 'static) -> Option<R> {
        let (tx, rx) = oneshot::channel();
        let read: ChainRead = Box::new(move |chain| {
            let _ = tx.send(f(chain));
        });
        self.commands.clone().send(Command::ReadChain(read)).await.ok()?;
        rx.await.ok()
    }

    pub async fn set_serve_sync(&self, on: bool) {
        let _ = self.commands.clone().send(Command::SetServeSync(on)).await;
    }

    /// Stops the node after its current step; everything validated is committed first.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.clone().send(Command::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}
