//! The application's side of a running node: a bounded command channel.

use futures::SinkExt;
use futures::channel::{mpsc, oneshot};
use libp2p::Multiaddr;
use protoblock_core::{Chain, Hash32};
use protoblock_node::SubmitError;

use super::NodeStatus;

/// A read of the chain run inside the node's loop (the chain is the loop's
/// alone, so readers borrow it there instead of sharing it behind a lock).
pub type ChainRead = Box<dyn FnOnce(&Chain) + Send>;

pub enum Command {
    SubmitTx(Vec<u8>, oneshot::Sender<Result<Hash32, SubmitError>>),
    Status(oneshot::Sender<NodeStatus>),
    Dial(Multiaddr),
    ReadChain(ChainRead),
    SetServeSync(bool),
    Shutdown(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct NodeHandle {
    pub(crate) commands: mpsc::Sender<Command>,
}

impl NodeHandle {
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

    pub async fn dial(&self, addr: Multiaddr) {
        let _ = self.commands.clone().send(Command::Dial(addr)).await;
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
