//! `/webrtc`: direct browser-to-browser connections, after the libp2p WebRTC
//! private-to-private spec (specs `webrtc/webrtc.md`), interoperable in shape
//! with js-libp2p's `@libp2p/webrtc`.
//!
//! Two peers that already share a connection through a circuit relay trade
//! an SDP offer and answer and their ICE candidates over a
//! `/webrtc-signaling/0.0.1` stream on that connection; ICE then punches a
//! direct path (through STUN-learned addresses behind NAT) and the data
//! channels of the new `RTCPeerConnection` carry every libp2p protocol. There
//! is no Noise handshake on the direct connection: the DTLS fingerprints in
//! the SDP travelled over the Noise-authenticated relayed connection, so the
//! remote's identity is that connection's peer id.
//!
//! rust-libp2p's `Transport::dial` cannot open a stream on an existing
//! connection, so the work is split (the shape of rust-libp2p PR 5978 and its
//! forks):
//! - [`Transport`] is what the swarm dials (`/webrtc/p2p/<peer>`) and listens
//!   on (`/webrtc`); it hands the request to the [`Signaller`] and yields the
//!   connection the signaller makes;
//! - [`Signaller`] runs on the page's executor with a `libp2p_stream::Control`
//!   of the swarm: it opens signalling streams for dials (we offer) and
//!   answers the streams remote peers open (they offer).
//!
//! Roles follow the spec and js-libp2p: whoever dialled the relayed
//! connection offers, the other side answers, so two pages never glare.
//! Every handshake is bounded ([`Config::timeout`]), and a failed or timed-out
//! one drops its `RTCPeerConnection`, which closes it and clears its handlers.

mod signaling;
#[cfg(feature = "test-hooks")]
pub mod testing;
mod transport;

pub use transport::{Config, Signaller, Transport, new};

/// The signalling protocol (specs `webrtc/webrtc.md`; js-libp2p `SIGNALING_PROTOCOL`).
pub const SIGNALING_PROTOCOL: libp2p_swarm::StreamProtocol =
    libp2p_swarm::StreamProtocol::new("/webrtc-signaling/0.0.1");
