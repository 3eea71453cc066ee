//! The swarm-facing half ([`Transport`]) and the executor-facing half
//! ([`Signaller`]) of `/webrtc`, joined by two bounded channels.

use std::{
    cell::RefCell,
    collections::HashSet,
    future::Future,
    pin::Pin,
    rc::Rc,
    task::{Context, Poll},
    time::Duration,
};

use futures::{
    FutureExt, StreamExt,
    channel::{mpsc, oneshot},
    future::{self, Either},
};
use libp2p_core::{
    multiaddr::{Multiaddr, Protocol},
    transport::{DialOpts, ListenerId, TransportError, TransportEvent},
};
use libp2p_identity::PeerId;

use super::{SIGNALING_PROTOCOL, signaling};
use crate::direct::{Connection, Error};

/// `/webrtc` settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// ICE server URLs (`stun:host:port`, `turn:…`), normally the relay's own
    /// STUN responder. Empty means host candidates only.
    pub ice_servers: Vec<crate::ice::IceServer>,
    /// The whole handshake, signalling stream to connected ICE. js-libp2p
    /// gives a listener 10 s; browsers behind NAT may need longer to
    /// connect, so 20 s (as NXM's fork).
    pub timeout: Duration,
    /// Answers in progress at once, and at most one per remote peer: a
    /// remote that opens more signalling streams has the extra ones refused,
    /// so one peer cannot hold every answer slot (each lasts up to
    /// `timeout`) and keep the others from linking with us. How many answered
    /// connections are kept is the mesh policy's call (protoblock-net).
    pub max_inbound_handshakes: usize,
    /// Test hook: accept signalling streams and never answer (a peer that
    /// never answers an offer), holding each until the handshake timeout.
    #[cfg(feature = "test-hooks")]
    pub black_hole: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            ice_servers: Vec::new(),
            timeout: Duration::from_secs(20),
            max_inbound_handshakes: 8,
            #[cfg(feature = "test-hooks")]
            black_hole: false,
        }
    }
}

struct DialRequest {
    peer: PeerId,
    reply: oneshot::Sender<Result<Connection, Error>>,
}

/// Dials `/webrtc/p2p/<peer>` and listens on `/webrtc`. A dial needs a
/// connection to `<peer>` (through a relay) to signal over, so dial the
/// circuit address first; the swarm may then hold both, and the caller
/// closes the relayed one when the direct one is up.
pub struct Transport {
    dials: mpsc::Sender<DialRequest>,
    incoming: mpsc::Receiver<(PeerId, Connection)>,
    listener: Option<ListenerId>,
}

/// Runs the signalling for [`Transport`]; see [`Signaller::run`].
pub struct Signaller {
    config: Config,
    dials: mpsc::Receiver<DialRequest>,
    connections: mpsc::Sender<(PeerId, Connection)>,
}

/// A `/webrtc` transport and the signaller that feeds it.
pub fn new(config: Config) -> (Transport, Signaller) {
    let (dial_tx, dial_rx) = mpsc::channel(16);
    let (conn_tx, conn_rx) = mpsc::channel(8);
    (
        Transport { dials: dial_tx, incoming: conn_rx, listener: None },
        Signaller { config, dials: dial_rx, connections: conn_tx },
    )
}

/// The peer of a `/webrtc/p2p/<peer>` address; nothing else is ours (a
/// `…/p2p-circuit/webrtc/p2p/<peer>` address is two steps, see [`Transport`]).
pub fn parse_dial_addr(addr: &Multiaddr) -> Option<PeerId> {
    let mut it = addr.iter();
    match (it.next(), it.next(), it.next()) {
        (Some(Protocol::WebRTC), Some(Protocol::P2p(peer)), None) => Some(peer),
        _ => None,
    }
}

fn listen_addr() -> Multiaddr {
    Multiaddr::empty().with(Protocol::WebRTC)
}

impl libp2p_core::Transport for Transport {
    type Output = (PeerId, Connection);
    type Error = Error;
    type ListenerUpgrade = future::Ready<Result<Self::Output, Self::Error>>;
    type Dial = Pin<Box<dyn Future<Output = Result<Self::Output, Self::Error>> + Send>>;

    fn listen_on(&mut self, id: ListenerId, addr: Multiaddr) -> Result<(), TransportError<Self::Error>> {
        if addr != listen_addr() {
            return Err(TransportError::MultiaddrNotSupported(addr));
        }
        if self.listener.is_some() {
            return Err(TransportError::Other(Error::Connection("already listening on /webrtc".into())));
        }
        self.listener = Some(id);
        Ok(())
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        if self.listener == Some(id) {
            self.listener = None;
            return true;
        }
        false
    }

    fn dial(&mut self, addr: Multiaddr, _opts: DialOpts) -> Result<Self::Dial, TransportError<Self::Error>> {
        let Some(peer) = parse_dial_addr(&addr) else {
            return Err(TransportError::MultiaddrNotSupported(addr));
        };
        let (reply, rx) = oneshot::channel();
        self.dials
            .try_send(DialRequest { peer, reply })
            .map_err(|_| TransportError::Other(Error::Connection("too many /webrtc dials in flight".into())))?;
        Ok(async move {
            let conn = rx.await.map_err(|_| Error::Connection("the /webrtc signaller stopped".into()))??;
            Ok((peer, conn))
        }
        .boxed())
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        while let Poll::Ready(Some((peer, conn))) = self.incoming.poll_next_unpin(cx) {
            if let Some(listener_id) = self.listener {
                return Poll::Ready(TransportEvent::Incoming {
                    listener_id,
                    upgrade: future::ready(Ok((peer, conn))),
                    local_addr: listen_addr(),
                    send_back_addr: listen_addr().with(Protocol::P2p(peer)),
                });
            }
            // Not listening: the connection is dropped, which closes it.
            tracing::debug!(%peer, "inbound /webrtc connection while not listening");
        }
        Poll::Pending
    }
}

/// `fut`, or a timeout error after `t`.
async fn bounded<T>(t: Duration, fut: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
    match future::select(fut.boxed_local(), futures_timer::Delay::new(t)).await {
        Either::Left((r, _)) => r,
        Either::Right(_) => Err(Error::Connection(format!("/webrtc handshake timed out after {t:?}"))),
    }
}

impl Signaller {
    /// Serves dials from the [`Transport`] and signalling streams from
    /// remote peers until the transport is dropped. `control` comes from
    /// the swarm's `libp2p_stream::Behaviour`. Each handshake runs in its
    /// own task on the page's executor.
    pub async fn run(self, mut control: libp2p_stream::Control) {
        let Self { config, mut dials, connections } = self;
        let mut incoming = match control.accept(SIGNALING_PROTOCOL) {
            Ok(s) => s,
            Err(_) => {
                tracing::warn!("something else already accepts {SIGNALING_PROTOCOL}; /webrtc is off");
                return;
            }
        };
        let in_flight: Rc<RefCell<HashSet<PeerId>>> = Rc::default();
        loop {
            match future::select(dials.next(), incoming.next()).await {
                Either::Left((Some(DialRequest { peer, reply }), _)) => {
                    let mut control = control.clone();
                    let config = config.clone();
                    wasm_bindgen_futures::spawn_local(async move {
                        let r = bounded(config.timeout, async {
                            let stream = control
                                .open_stream(peer, SIGNALING_PROTOCOL)
                                .await
                                .map_err(|e| Error::Connection(format!("signalling stream to {peer}: {e}")))?;
                            signaling::offer(stream, &config.ice_servers).await
                        })
                        .await;
                        match &r {
                            Ok(_) => tracing::info!(%peer, "direct /webrtc connection up (we offered)"),
                            Err(e) => tracing::info!(%peer, error = %e, "/webrtc dial failed"),
                        }
                        let _ = reply.send(r);
                    });
                }
                Either::Right((Some((peer, stream)), _)) => {
                    let busy = in_flight.borrow().len() >= config.max_inbound_handshakes;
                    if busy || !in_flight.borrow_mut().insert(peer) {
                        tracing::debug!(%peer, busy, "refusing a signalling stream (too many, or one from this peer in progress)");
                        continue;
                    }
                    let in_flight = in_flight.clone();
                    let mut connections = connections.clone();
                    let config = config.clone();
                    wasm_bindgen_futures::spawn_local(async move {
                        #[cfg(feature = "test-hooks")]
                        if config.black_hole {
                            futures_timer::Delay::new(config.timeout).await;
                            drop(stream);
                            in_flight.borrow_mut().remove(&peer);
                            return;
                        }
                        match bounded(config.timeout, signaling::answer(stream, &config.ice_servers)).await {
                            Ok(conn) => {
                                tracing::info!(%peer, "direct /webrtc connection up (we answered)");
                                if connections.try_send((peer, conn)).is_err() {
                                    tracing::debug!(%peer, "swarm not taking /webrtc connections; dropping one");
                                }
                            }
                            Err(e) => tracing::info!(%peer, error = %e, "/webrtc answer failed"),
                        }
                        in_flight.borrow_mut().remove(&peer);
                    });
                }
                Either::Left((None, _)) | Either::Right((None, _)) => return,
            }
        }
    }
}
