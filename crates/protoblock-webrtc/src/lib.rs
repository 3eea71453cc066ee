//! Browser WebRTC transports for Protoblock.
//!
//! - [`private`]: `/webrtc`, direct browser-to-browser connections signalled
//!   over a circuit relay (the libp2p private-to-private spec).
//! - [`direct`]: WebRTC-direct dialing from a page to a server (our fork of
//!   libp2p-webrtc-websys 0.5.0), whose connection and stream types `private` reuses.
//! - [`signal_codec`]: the signalling message and its framing, platform-free.
//! - [`sdp_answer`]: the SDP answer a WebRTC-direct dial gives its own peer connection, platform-free.
//! - [`budget`]: what one connection's remote can make us hold (unread bytes over all its
//!   channels, inbound channels open), platform-free.
//! - [`ice`]: ICE server entries (STUN/TURN URLs and TURN credentials), platform-free.
//! - [`dc_stream`]: the stream over one data channel (framing, half-close, FIN_ACK; our fork of
//!   libp2p-webrtc-utils 0.5.0's), platform-free and generic over the channel.
//!
//! The transports are wasm32-only; natively only the codec, the ICE entries and the stream are built.

pub mod budget;
pub mod dc_stream;
#[cfg(target_arch = "wasm32")]
pub mod direct;
pub mod ice;
#[cfg(target_arch = "wasm32")]
pub mod private;
pub mod sdp_answer;
pub mod signal_codec;
