//! Browser WebRTC transports for Protoblock.
//!
//! [`direct`] is WebRTC-direct dialing from a page to a server (our fork of
//! libp2p-webrtc-websys 0.5.0). Everything here is wasm32-only; natively the crate is empty.

#[cfg(target_arch = "wasm32")]
pub mod direct;
