//! The rendezvous point (libp2p `/rendezvous/1.0.0`, server side), bounded.
//!
//! libp2p-rendezvous 0.18's server keeps a replaced registration until its
//! TTL ends (a peer re-registering one namespace in a loop grows it without
//! bound), accepts signed records up to its 1 MiB message limit, answers a
//! discover with every registration it holds, and keeps registrations of
//! peers long gone for up to 72 hours, so a few sybil identities fill its
//! 10,000 slots and honest nodes are refused. This one speaks the same wire
//! format (`proto/libp2p/rendezvous.proto`; libp2p's client is unchanged) and
//! holds, per the [`RegistryConfig`]:
//! - at most `max_per_peer` namespaces per peer, `max_total` in all; a
//!   refresh replaces the peer's entry in place;
//! - records of at most `max_record_bytes` (the exact bytes received, which
//!   are what discoverers get);
//! - TTLs within `[min_ttl_secs, max_ttl_secs]`;
//! - a registration only while its peer stays connected to us: slots then
//!   cost a live connection, which [`Admission`](super::Admission) bounds per
//!   address, not a key, which is free. Our nodes keep their bootstrap
//!   connection, so an honest registration lives as long as it is useful;
//! - discover answers of at most `max_discover` registrations, paged by a
//!   stateless cookie (the last sequence number served), so no per-enquirer
//!   state is kept at all.
//!
//! [`Registry`] is the policy, sans-IO (time comes in); [`RendezvousPoint`]
//! is the behaviour around it and a request-response codec.

mod registry;

use std::io;
use std::task::{Context, Poll};

use asynchronous_codec::{FramedRead, FramedWrite};
use futures::{AsyncRead, AsyncWrite, SinkExt, StreamExt};
use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::{
    ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use protoblock_proto::rendezvous::Message;

use registry::Registry;
pub use registry::RegistryConfig;

use crate::clock::Clock;

pub const RENDEZVOUS_PROTOCOL: StreamProtocol = StreamProtocol::new("/rendezvous/1.0.0");

/// The spec's framing (an unsigned varint length, then the message), by
/// prost-codec: the length is checked against the limit before the body is
/// read.
#[derive(Debug, Clone)]
pub struct RendezvousCodec {
    max_request: usize,
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

fn no_requests() -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, "a rendezvous point sends no requests")
}

impl request_response::Codec for RendezvousCodec {
    type Protocol = StreamProtocol;
    type Request = Message;
    type Response = Message;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Message> {
        let codec = prost_codec::Codec::<Message, Message>::new(self.max_request);
        FramedRead::new(io, codec).next().await.ok_or(io::ErrorKind::UnexpectedEof)?.map_err(invalid)
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
    ) -> io::Result<Message> {
        Err(no_requests())
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
        _: Message,
    ) -> io::Result<()> {
        Err(no_requests())
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        m: Message,
    ) -> io::Result<()> {
        // Our answers are bounded by the registry (at most `max_discover` records).
        let codec = prost_codec::Codec::<Message, Message>::new(usize::MAX);
        let mut w = FramedWrite::new(io, codec);
        w.send(m).await.map_err(invalid)?;
        w.close().await.map_err(invalid)
    }
}

/// The behaviour: inbound `/rendezvous/1.0.0` requests answered from the
/// [`Registry`]; a peer's registrations dropped with its last connection.
pub struct RendezvousPoint {
    inner: request_response::Behaviour<RendezvousCodec>,
    registry: Registry,
    clock: Clock,
}

impl RendezvousPoint {
    pub fn new(cfg: RegistryConfig) -> Self {
        let codec = RendezvousCodec { max_request: cfg.max_request_bytes() };
        let rr = request_response::Config::default()
            .with_request_timeout(std::time::Duration::from_secs(10))
            .with_max_concurrent_streams(4);
        Self {
            inner: request_response::Behaviour::with_codec(
                codec,
                [(RENDEZVOUS_PROTOCOL, ProtocolSupport::Inbound)],
                rr,
            ),
            registry: Registry::new(cfg),
            clock: Clock::new(),
        }
    }
}

impl NetworkBehaviour for RendezvousPoint {
    type ConnectionHandler = <request_response::Behaviour<RendezvousCodec> as NetworkBehaviour>::ConnectionHandler;
    type ToSwarm = std::convert::Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.inner.handle_established_inbound_connection(id, peer, local, remote)
    }

    fn handle_established_outbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        role: Endpoint,
        port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.inner.handle_established_outbound_connection(id, peer, addr, role, port_use)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        if let FromSwarm::ConnectionClosed(ConnectionClosed { peer_id, remaining_established: 0, .. }) = &event {
            self.registry.peer_gone(*peer_id);
        }
        self.inner.on_swarm_event(event);
    }

    fn on_connection_handler_event(&mut self, peer: PeerId, id: ConnectionId, event: THandlerOutEvent<Self>) {
        self.inner.on_connection_handler_event(peer, id, event);
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        loop {
            let to_swarm = match self.inner.poll(cx) {
                Poll::Ready(t) => t,
                Poll::Pending => return Poll::Pending,
            };
            match to_swarm {
                ToSwarm::GenerateEvent(request_response::Event::Message {
                    peer,
                    message: request_response::Message::Request { request, channel, .. },
                    ..
                }) => {
                    if let Some(response) = self.registry.handle(self.clock.mono_ms(), peer, request) {
                        // Fails only when the peer has gone meanwhile.
                        let _ = self.inner.send_response(channel, response);
                    }
                }
                ToSwarm::GenerateEvent(request_response::Event::InboundFailure { peer, error, .. }) => {
                    tracing::debug!(%peer, %error, "rendezvous request failed");
                }
                ToSwarm::GenerateEvent(_) => {}
                other => return Poll::Ready(other.map_out(|_| unreachable!("events are handled above"))),
            }
        }
    }
}
