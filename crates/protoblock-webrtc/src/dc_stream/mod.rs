// Derives from libp2p-webrtc-utils 0.5.0 `src/stream.rs` (MIT, rust-libp2p; licence text in
// crates/protoblock-webrtc/LICENSE-libp2p-webrtc-websys; the copyright notices below are upstream's).
// Changed (the upstream stream has no FIN_ACK: rust-libp2p #4600, PR #5687):
// - a `FIN` from the remote is answered with `FIN_ACK` (specs `webrtc/README.md`, "Closing"; js-libp2p
//   waits up to 10 s for it in every `close()`);
// - a received `FIN_ACK` is accepted (upstream failed the read with InvalidData), and any unknown flag
//   is ignored instead of failing the stream;
// - a frame without data (FIN_ACK, STOP_SENDING, an empty message) no longer reads as the end of the
//   stream; only FIN (or the channel ending) does, and a closed read half reads as the end every time
//   instead of `BrokenPipe` after the first `Ok(0)`; data in the same frame as a FIN is delivered;
// - `poll_close` does not panic when called after a failed close; `poll_close_read` needs no `Clone`.
// - platform-free (generic over the channel), so it is tested natively below.

// Copyright 2022 Parity Technologies (UK) Ltd.
// Copyright 2023 Protocol Labs.
//
// Permission is hereby granted, free of charge, to any person obtaining a
// copy of this software and associated documentation files (the "Software"),
// to deal in the Software without restriction, including without limitation
// the rights to use, copy, modify, merge, publish, distribute, sublicense,
// and/or sell copies of the Software, and to permit persons to whom the
// Software is furnished to do so, subject to the following conditions:
//
// The above copyright notice and this permission notice shall be included in
// all copies or substantial portions of the Software.
//
// THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS
// OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
// FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
// AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
// LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING
// FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER
// DEALINGS IN THE SOFTWARE.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use futures::{channel::oneshot, prelude::*, ready};

use self::{
    drop_listener::GracefullyClosed,
    framed_dc::FramedDc,
    proto::{Flag, Message},
    state::{Closing, State},
};

mod drop_listener;
mod framed_dc;
mod proto;
mod state;

/// Maximum length of a message.
///
/// "As long as message interleaving is not supported, the sender SHOULD limit the maximum message
/// size to 16 KB to avoid monopolization."
/// Source: <https://www.rfc-editor.org/rfc/rfc8831#name-transferring-user-data-on-a>
pub const MAX_MSG_LEN: usize = 16 * 1024;
/// Length of varint, in bytes.
const VARINT_LEN: usize = 2;
/// Overhead of the protobuf encoding, in bytes.
const PROTO_OVERHEAD: usize = 5;
/// Maximum length of data, in bytes.
const MAX_DATA_LEN: usize = MAX_MSG_LEN - VARINT_LEN - PROTO_OVERHEAD;

pub use drop_listener::DropListener;
/// A stream backed by a WebRTC data channel.
///
/// To be a proper libp2p stream, we need to implement [`AsyncRead`] and [`AsyncWrite`] as well
/// as support a half-closed state which we do by framing messages in a protobuf envelope.
pub struct Stream<T> {
    io: FramedDc<T>,
    state: State,
    read_buffer: Bytes,
    /// The remote's `FIN` arrived and our `FIN_ACK` is not yet handed to the channel.
    fin_ack_due: bool,
    /// Dropping this will close the oneshot and notify the receiver by emitting `Canceled`.
    drop_notifier: Option<oneshot::Sender<GracefullyClosed>>,
}

impl<T> Stream<T>
where
    T: AsyncRead + AsyncWrite + Unpin + Clone,
{
    /// Returns a new [`Stream`] and a [`DropListener`],
    /// which will notify the receiver when/if the stream is dropped.
    pub fn new(data_channel: T) -> (Self, DropListener<T>) {
        let (sender, receiver) = oneshot::channel();

        let stream = Self {
            io: framed_dc::new(data_channel.clone()),
            state: State::Open,
            read_buffer: Bytes::default(),
            fin_ack_due: false,
            drop_notifier: Some(sender),
        };
        let listener = DropListener::new(framed_dc::new(data_channel), receiver);

        (stream, listener)
    }
}

impl<T> Stream<T>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    /// Gracefully closes the "read-half" of the stream.
    pub fn poll_close_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            match self.state.close_read_barrier()? {
                Some(Closing::Requested) => {
                    ready!(self.io.poll_ready_unpin(cx))?;

                    self.io.start_send_unpin(Message { flag: Some(Flag::StopSending as i32), message: None })?;
                    self.state.close_read_message_sent();

                    continue;
                }
                Some(Closing::MessageSent) => {
                    ready!(self.io.poll_flush_unpin(cx))?;

                    self.state.read_closed();

                    return Poll::Ready(Ok(()));
                }
                None => return Poll::Ready(Ok(())),
            }
        }
    }

    /// Handles a flag from the remote; a `FIN` is answered with `FIN_ACK` (specs `webrtc/README.md`,
    /// "Closing"; js-libp2p waits up to 10 s for it in `close()`).
    fn on_flag(&mut self, flag: Flag) {
        if flag == Flag::Fin && !matches!(self.state, State::BothClosed { reset: true }) {
            self.fin_ack_due = true;
        }
        self.state.handle_inbound_flag(flag, &mut self.read_buffer);
    }

    /// Hands a due `FIN_ACK` to the channel and flushes it, as far as that goes without waiting. A
    /// channel that cannot take it now gets it at the next poll of any kind; a channel that fails
    /// does not get it (the remote then sees the channel close, which js also takes as the end).
    fn poll_fin_ack(&mut self, cx: &mut Context<'_>) {
        if !self.fin_ack_due {
            return;
        }
        match self.io.poll_ready_unpin(cx) {
            Poll::Ready(Ok(())) => {
                self.fin_ack_due = false;
                if let Err(e) = self.io.start_send_unpin(Message { flag: Some(Flag::FinAck as i32), message: None }) {
                    tracing::debug!(error = %e, "cannot send FIN_ACK");
                    return;
                }
                if let Poll::Ready(Err(e)) = self.io.poll_flush_unpin(cx) {
                    tracing::debug!(error = %e, "cannot flush FIN_ACK");
                }
            }
            Poll::Ready(Err(e)) => {
                self.fin_ack_due = false;
                tracing::debug!(error = %e, "cannot send FIN_ACK");
            }
            Poll::Pending => {}
        }
    }
}

impl<T> AsyncRead for Stream<T>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        this.poll_fin_ack(cx);
        loop {
            // Data that came with (or before) a FIN is still delivered; upstream dropped it.
            if !this.read_buffer.is_empty() && !matches!(this.state, State::BothClosed { reset: true }) {
                let n = std::cmp::min(this.read_buffer.len(), buf.len());
                let data = this.read_buffer.split_to(n);
                buf[0..n].copy_from_slice(&data[..]);

                return Poll::Ready(Ok(n));
            }

            // A closed read half reads as the end of the stream, every time (upstream: one `Ok(0)`,
            // then `BrokenPipe`); a reset stays an error.
            match this.state.read_barrier() {
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Poll::Ready(Ok(0)),
                r => r?,
            }

            match ready!(io_poll_next(&mut this.io, cx))? {
                Some((flag, message)) => {
                    if let Some(flag) = flag {
                        this.on_flag(flag);
                        this.poll_fin_ack(cx);
                    }

                    debug_assert!(this.read_buffer.is_empty());
                    match message {
                        Some(msg) if !msg.is_empty() => {
                            this.read_buffer = msg.into();
                        }
                        // No data: the state decides (a FIN reads as the end, a RESET as an
                        // error); FIN_ACK, STOP_SENDING or an empty message leave the read half
                        // open. Upstream took any frame without data for the end of the stream.
                        _ => continue,
                    }
                }
                None => {
                    this.state.handle_inbound_flag(Flag::Fin, &mut this.read_buffer);
                    return Poll::Ready(Ok(0));
                }
            }
        }
    }
}

impl<T> AsyncWrite for Stream<T>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        while this.state.read_flags_in_async_write() {
            // TODO: In case AsyncRead::poll_read encountered an error or returned None earlier, we
            // will poll the underlying I/O resource once more. Is that allowed? How
            // about introducing a state IoReadClosed?
            match io_poll_next(&mut this.io, cx)? {
                Poll::Ready(Some((Some(flag), message))) => {
                    // Read side is closed. Discard any incoming messages.
                    drop(message);
                    // But still handle flags, e.g. a `Flag::StopSending`.
                    this.on_flag(flag);
                }
                Poll::Ready(Some((None, message))) => drop(message),
                Poll::Ready(None) | Poll::Pending => break,
            }
        }
        this.poll_fin_ack(cx);

        this.state.write_barrier()?;

        ready!(this.io.poll_ready_unpin(cx))?;

        let n = usize::min(buf.len(), MAX_DATA_LEN);

        Pin::new(&mut this.io).start_send(Message { flag: None, message: Some(buf[0..n].into()) })?;

        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_fin_ack(cx);
        self.io.poll_flush_unpin(cx).map_err(Into::into)
    }

    /// Sends `FIN` and returns once it is flushed. The spec counts the write half closed only on
    /// the remote's `FIN_ACK`; we do not wait for it, because peers on upstream
    /// libp2p-webrtc-utils (the relay's WebRTC-direct, webrtc-rs) never send one and every close to
    /// them would stall. A `FIN_ACK` that arrives later is read and ignored.
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_fin_ack(cx);
        loop {
            match self.state.close_write_barrier()? {
                Some(Closing::Requested) => {
                    ready!(self.io.poll_ready_unpin(cx))?;

                    self.io.start_send_unpin(Message { flag: Some(Flag::Fin as i32), message: None })?;
                    self.state.close_write_message_sent();

                    continue;
                }
                Some(Closing::MessageSent) => {
                    ready!(self.io.poll_flush_unpin(cx))?;

                    self.state.write_closed();
                    if let Some(notifier) = self.drop_notifier.take() {
                        let _ = notifier.send(GracefullyClosed {});
                    }

                    return Poll::Ready(Ok(()));
                }
                None => return Poll::Ready(Ok(())),
            }
        }
    }
}

/// A frame's flag, if any, and its data, if any.
type FlagAndData = (Option<Flag>, Option<Vec<u8>>);

/// The next frame. A flag this code does not know is dropped (with its frame's data kept), not an
/// error: upstream failed the stream on any unknown flag, which is how it broke on `FIN_ACK`.
fn io_poll_next<T>(io: &mut FramedDc<T>, cx: &mut Context<'_>) -> Poll<io::Result<Option<FlagAndData>>>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match ready!(io.poll_next_unpin(cx)).transpose().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))? {
            Some(Message { flag, message }) => {
                let flag = flag.and_then(|f| match Flag::try_from(f) {
                    Ok(f) => Some(f),
                    Err(_) => {
                        tracing::debug!(flag = f, "unknown data channel flag ignored");
                        None
                    }
                });
                if flag.is_none() && message.is_none() {
                    continue;
                }
                return Poll::Ready(Ok(Some((flag, message))));
            }
            None => return Poll::Ready(Ok(None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{cell::RefCell, collections::VecDeque, rc::Rc};

    use asynchronous_codec::{Decoder, Encoder};
    use bytes::BytesMut;
    use futures::{AsyncReadExt, AsyncWriteExt, FutureExt};

    use super::*;
    use crate::dc_stream::framed_dc::codec;

    /// One side of a data channel: what the remote sent us, and what we sent.
    #[derive(Clone, Default)]
    struct Channel {
        inbound: Rc<RefCell<VecDeque<u8>>>,
        outbound: Rc<RefCell<Vec<u8>>>,
    }

    impl AsyncRead for Channel {
        fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
            let mut q = self.inbound.borrow_mut();
            if q.is_empty() {
                return Poll::Pending;
            }
            let n = buf.len().min(q.len());
            for (b, x) in buf.iter_mut().zip(q.drain(..n)) {
                *b = x;
            }
            Poll::Ready(Ok(n))
        }
    }

    impl AsyncWrite for Channel {
        fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            self.outbound.borrow_mut().extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    impl Channel {
        fn remote_sends(&self, flag: Option<Flag>, data: Option<&[u8]>) {
            let mut dst = BytesMut::new();
            codec()
                .encode(Message { flag: flag.map(|f| f as i32), message: data.map(|d| d.to_vec()) }, &mut dst)
                .unwrap();
            self.inbound.borrow_mut().extend(dst.iter());
        }
        /// The frames we sent, decoded.
        fn sent(&self) -> Vec<Message> {
            let mut src = BytesMut::from(&self.outbound.borrow()[..]);
            let mut out = Vec::new();
            while let Some(m) = codec().decode(&mut src).unwrap() {
                out.push(m);
            }
            out
        }
    }

    fn read_now(s: &mut Stream<Channel>) -> Option<io::Result<Vec<u8>>> {
        let mut buf = [0u8; 64];
        s.read(&mut buf).now_or_never().map(|r| r.map(|n| buf[..n].to_vec()))
    }

    #[test]
    fn a_fin_is_answered_with_fin_ack_and_reads_as_the_end() {
        let ch = Channel::default();
        let (mut s, _drop) = Stream::new(ch.clone());
        ch.remote_sends(None, Some(b"ping"));
        ch.remote_sends(Some(Flag::Fin), None);
        assert_eq!(read_now(&mut s).unwrap().unwrap(), b"ping");
        assert_eq!(read_now(&mut s).unwrap().unwrap(), b"");
        assert_eq!(ch.sent(), vec![Message { flag: Some(Flag::FinAck as i32), message: None }]);
        // The end again, not an error; one FIN_ACK only.
        assert_eq!(read_now(&mut s).unwrap().unwrap(), b"");
        assert_eq!(ch.sent().len(), 1);
        // The write half is still open (a request-response server answers now).
        s.write_all(b"pong").now_or_never().unwrap().unwrap();
        s.close().now_or_never().unwrap().unwrap();
        let sent = ch.sent();
        assert_eq!(sent[1].message.as_deref(), Some(&b"pong"[..]));
        assert_eq!(sent[2].flag, Some(Flag::Fin as i32));
    }

    #[test]
    fn a_fin_ack_is_not_an_error() {
        // Upstream: a FIN_ACK followed by data made `read` fail with InvalidData.
        let ch = Channel::default();
        let (mut s, _drop) = Stream::new(ch.clone());
        s.close().now_or_never().unwrap().unwrap();
        assert_eq!(ch.sent(), vec![Message { flag: Some(Flag::Fin as i32), message: None }]);
        ch.remote_sends(Some(Flag::FinAck), None);
        ch.remote_sends(None, Some(b"response"));
        assert_eq!(read_now(&mut s).unwrap().unwrap(), b"response");
        assert!(read_now(&mut s).is_none(), "nothing more yet: pending, not the end");
        ch.remote_sends(Some(Flag::Fin), None);
        assert_eq!(read_now(&mut s).unwrap().unwrap(), b"");
        assert_eq!(ch.sent().last().unwrap().flag, Some(Flag::FinAck as i32));
    }

    #[test]
    fn data_in_the_fin_frame_is_delivered_and_unknown_flags_are_ignored() {
        let ch = Channel::default();
        let (mut s, _drop) = Stream::new(ch.clone());
        ch.remote_sends(Some(Flag::StopSending), None);
        ch.remote_sends(None, Some(b""));
        let mut dst = BytesMut::new();
        codec().encode(Message { flag: Some(9), message: Some(b"a".to_vec()) }, &mut dst).unwrap();
        ch.inbound.borrow_mut().extend(dst.iter());
        ch.remote_sends(Some(Flag::Fin), Some(b"last"));
        assert_eq!(read_now(&mut s).unwrap().unwrap(), b"a");
        assert_eq!(read_now(&mut s).unwrap().unwrap(), b"last");
        assert_eq!(read_now(&mut s).unwrap().unwrap(), b"");
        // STOP_SENDING closed our write half.
        assert!(s.write_all(b"x").now_or_never().unwrap().is_err());
    }

    #[test]
    fn a_reset_is_an_error() {
        let ch = Channel::default();
        let (mut s, _drop) = Stream::new(ch.clone());
        ch.remote_sends(Some(Flag::Reset), None);
        assert_eq!(read_now(&mut s).unwrap().unwrap_err().kind(), io::ErrorKind::ConnectionReset);
        assert!(ch.sent().is_empty(), "no FIN_ACK for a reset");
    }

    #[test]
    fn a_stream_dropped_unclosed_is_reset_and_a_closed_one_is_not() {
        let ch = Channel::default();
        let (s, drop_listener) = Stream::new(ch.clone());
        drop(s);
        drop_listener.now_or_never().unwrap().unwrap();
        assert_eq!(ch.sent(), vec![Message { flag: Some(Flag::Reset as i32), message: None }]);

        let ch = Channel::default();
        let (mut s, drop_listener) = Stream::new(ch.clone());
        s.close().now_or_never().unwrap().unwrap();
        drop(s);
        drop_listener.now_or_never().unwrap().unwrap();
        assert_eq!(ch.sent(), vec![Message { flag: Some(Flag::Fin as i32), message: None }]);
    }

    #[test]
    fn max_data_len() {
        // Largest possible message.
        let message = [0; MAX_DATA_LEN];
        let protobuf = Message { flag: Some(Flag::Fin as i32), message: Some(message.to_vec()) };
        let mut dst = BytesMut::new();
        codec().encode(protobuf, &mut dst).unwrap();
        // The varint-prefixed largest message is no longer than the spec's limit.
        assert_eq!(dst.len(), MAX_MSG_LEN);
    }
}
