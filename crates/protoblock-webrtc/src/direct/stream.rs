// Derives from libp2p-webrtc-websys 0.5.0 `src/stream.rs` (MIT, rust-libp2p; licence text in
// crates/protoblock-webrtc/LICENSE-libp2p-webrtc-websys).
// Changed: `Stream::new` takes a `PollDataChannel` (so inbound channels get their handlers as soon as
// they arrive); re-exports `MAX_READ_BUFFER`; the stream state machine is our fork in
// `crate::dc_stream` (FIN_ACK) instead of libp2p-webrtc-utils's; a task that writes (or flushes) is
// woken by the next inbound message, so a FIN gets its FIN_ACK even if that task is not reading.

//! The WebRTC [Stream] over the Connection
use std::{
    pin::Pin,
    task::{Context, Poll},
};

use futures::{AsyncRead, AsyncWrite};
use send_wrapper::SendWrapper;

pub use self::poll_data_channel::MAX_READ_BUFFER;
pub(crate) use self::poll_data_channel::PollDataChannel;

mod poll_data_channel;

/// A stream over a WebRTC connection.
///
/// Backed by a WebRTC data channel.
pub struct Stream {
    /// Wrapper for the inner stream to make it Send
    inner: SendWrapper<crate::dc_stream::Stream<PollDataChannel>>,
    /// The same channel, to wake writers on inbound messages.
    channel: SendWrapper<PollDataChannel>,
}

pub(crate) type DropListener = SendWrapper<crate::dc_stream::DropListener<PollDataChannel>>;

impl Stream {
    pub(crate) fn new(data_channel: PollDataChannel) -> (Self, DropListener) {
        let channel = SendWrapper::new(data_channel.clone());
        let (inner, drop_listener) = crate::dc_stream::Stream::new(data_channel);

        (Self { inner: SendWrapper::new(inner), channel }, SendWrapper::new(drop_listener))
    }
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        this.channel.wake_writer_on_message(cx);
        Pin::new(&mut *this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        this.channel.wake_writer_on_message(cx);
        Pin::new(&mut *this.inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.get_mut().inner).poll_close(cx)
    }
}
