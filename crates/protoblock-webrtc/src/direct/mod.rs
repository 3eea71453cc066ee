// Derives from libp2p-webrtc-websys 0.5.0 `src/lib.rs` (MIT, rust-libp2p; licence text in
// crates/protoblock-webrtc/LICENSE-libp2p-webrtc-websys).
// Changed: a module of this crate instead of a crate root; same public surface.

//! WebRTC-direct dialing from the browser: the same API as `libp2p::webrtc_websys`
//! ([`Transport`], [`Config`], [`Connection`], [`Stream`], [`Error`]), with these fixes:
//!
//! - a stream buffers up to [`MAX_READ_BUFFER`] of unread data instead of 16 KiB, so a burst of
//!   SCTP messages that arrives before the Rust future is polled no longer breaks the stream, and
//!   all channels of a connection share one budget of unread bytes and a cap on inbound channels
//!   ([`crate::budget`]), so a remote opening channel after channel cannot exhaust the page;
//! - every `on*` handler is cleared before its closure is freed (no "closure invoked recursively
//!   or after being dropped");
//! - inbound data channels get their handlers when they arrive (no message is lost before the
//!   swarm accepts the stream), are queued in a bounded queue, and are closed when it is full;
//! - nothing panics: JS failures are errors (also in Workers, where there is no `window`).

pub(crate) mod connection;
mod error;
mod sdp;
pub(crate) mod stream;
mod transport;
mod upgrade;

pub use self::{
    connection::Connection,
    error::Error,
    stream::{MAX_READ_BUFFER, Stream},
    transport::{Config, Transport},
};
