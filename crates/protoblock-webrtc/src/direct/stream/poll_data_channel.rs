// Derives from libp2p-webrtc-websys 0.5.0 `src/stream/poll_data_channel.rs` (MIT, rust-libp2p; licence
// text in crates/protoblock-webrtc/LICENSE-libp2p-webrtc-websys).
// Changed:
// - the read buffer holds up to 8 MiB instead of `MAX_MSG_LEN` (16 KiB), and every channel of a
//   connection draws on one byte budget (`crate::budget`); an inbound channel holds a slot of its
//   connection's inbound-channel count while it lives;
// - every `on*` handler is cleared (in `Handlers::drop`) before its closure is freed;
// - `onerror` is handled, and `onclose`/`onerror` wake every waiting task, not only `poll_close`;
// - data already received is still readable after the channel closed;
// - binaryType is set to arraybuffer on every channel (inbound ones too), non-binary messages are
//   ignored with a warning, and bytes are copied straight into the buffer;
// - `RefCell`/`Cell` instead of `Mutex`/`AtomicBool` (single-threaded), no `unwrap`, and
//   `saturating_sub` where upstream only had a `debug_assert`;
// - the task that last wrote is woken by inbound messages too (`writer_waker`), so flags such as FIN
//   are handled (and FIN_ACKed) even when nothing reads.

use std::{
    cell::RefCell,
    cmp::min,
    io,
    pin::Pin,
    rc::Rc,
    task::{Context, Poll},
};

use crate::budget::{ConnectionBudget, InboundSlot, MAX_CHANNEL_BYTES, ReceiveBuffer};
use crate::dc_stream::MAX_MSG_LEN;
use futures::{AsyncRead, AsyncWrite, task::AtomicWaker};
use wasm_bindgen::prelude::*;
use web_sys::{Event, MessageEvent, RtcDataChannel, RtcDataChannelState, RtcDataChannelType};

/// Unread data one data channel may hold (see [`crate::budget`]): the browser has no receive-side
/// flow control on a data channel, so messages land in this buffer whether or not the Rust future
/// reading the stream has been polled. Upstream allowed only 16 KiB, which broke any response that
/// arrived in a burst; a sender that gets further ahead of us than the channel's or its
/// connection's budget is misbehaving, and the stream then fails (and is reset when dropped).
pub const MAX_READ_BUFFER: usize = MAX_CHANNEL_BYTES;

/// State shared between the [`PollDataChannel`] handles and the JS event handlers.
struct Shared {
    /// Overloaded when the remote sent more than the channel's or the connection's budget ahead
    /// of us; the buffered data is then dropped and reads and writes fail.
    read_buffer: RefCell<ReceiveBuffer>,
    /// An inbound channel's place in its connection's count, freed with the channel.
    _slot: Option<InboundSlot>,
    new_data_waker: AtomicWaker,
    /// Waker for when we are waiting for the DC to be opened.
    open_waker: AtomicWaker,
    /// Waker for when we are waiting to write (again) to the DC because we previously exceeded the
    /// [`MAX_MSG_LEN`] threshold, or for the buffered data to drain (flush).
    write_waker: AtomicWaker,
    /// Waker for when we are waiting for the DC to be closed.
    close_waker: AtomicWaker,
    /// The task that last wrote to the stream, woken by any inbound message: a frame may carry a
    /// flag that wants an answer (a FIN wants our FIN_ACK) even when nobody is reading, e.g.
    /// libp2p-ping's responder does not poll its next read after answering. A slot of its own, so
    /// a reader in another task is never displaced.
    writer_waker: AtomicWaker,
}

impl Shared {
    fn wake_all(&self) {
        self.new_data_waker.wake();
        self.open_waker.wake();
        self.write_waker.wake();
        self.close_waker.wake();
        self.writer_waker.wake();
    }
}

/// The JS event handlers of one data channel. Dropped once, with the last [`PollDataChannel`] clone
/// (the closures hold only [`Shared`], so there is no cycle).
struct Handlers {
    channel: RtcDataChannel,
    _on_open: Closure<dyn FnMut(Event)>,
    _on_close: Closure<dyn FnMut(Event)>,
    _on_error: Closure<dyn FnMut(Event)>,
    _on_buffered_amount_low: Closure<dyn FnMut(Event)>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
}

impl Drop for Handlers {
    fn drop(&mut self) {
        // Detach the handlers before the closures are freed (right after this body): otherwise a
        // later event on the channel calls a freed closure ("closure invoked recursively or after
        // being dropped").
        self.channel.set_onopen(None);
        self.channel.set_onclose(None);
        self.channel.set_onerror(None);
        self.channel.set_onbufferedamountlow(None);
        self.channel.set_onmessage(None);
    }
}

/// [`PollDataChannel`] is a wrapper around [`RtcDataChannel`] which implements [`AsyncRead`] and
/// [`AsyncWrite`].
#[derive(Clone)]
pub(crate) struct PollDataChannel {
    /// The [`RtcDataChannel`] being wrapped.
    inner: RtcDataChannel,
    shared: Rc<Shared>,
    _handlers: Rc<Handlers>,
}

impl PollDataChannel {
    /// Wraps `inner` and attaches its handlers at once, so nothing that arrives from now on is lost.
    /// Its unread bytes count against `budget`; an inbound channel holds its `slot`.
    pub(crate) fn new(inner: RtcDataChannel, budget: &ConnectionBudget, slot: Option<InboundSlot>) -> Self {
        // Hardcoded here, it's the only type we read; set on inbound channels too.
        inner.set_binary_type(RtcDataChannelType::Arraybuffer);
        let shared = Rc::new(Shared {
            read_buffer: RefCell::new(ReceiveBuffer::new(budget.clone())),
            _slot: slot,
            new_data_waker: AtomicWaker::new(),
            open_waker: AtomicWaker::new(),
            write_waker: AtomicWaker::new(),
            close_waker: AtomicWaker::new(),
            writer_waker: AtomicWaker::new(),
        });

        let on_open = Closure::<dyn FnMut(Event)>::new({
            let shared = shared.clone();
            move |_: Event| {
                tracing::trace!("DataChannel opened");
                shared.open_waker.wake();
                shared.write_waker.wake();
            }
        });
        inner.set_onopen(Some(on_open.as_ref().unchecked_ref()));

        inner.set_buffered_amount_low_threshold(0);
        let on_buffered_amount_low = Closure::<dyn FnMut(Event)>::new({
            let shared = shared.clone();
            move |_: Event| {
                tracing::trace!("DataChannel available for writing (again)");
                shared.write_waker.wake();
            }
        });
        inner.set_onbufferedamountlow(Some(on_buffered_amount_low.as_ref().unchecked_ref()));

        let on_close = Closure::<dyn FnMut(Event)>::new({
            let shared = shared.clone();
            move |_: Event| {
                tracing::trace!("DataChannel closed");
                shared.wake_all();
            }
        });
        inner.set_onclose(Some(on_close.as_ref().unchecked_ref()));

        let on_error = Closure::<dyn FnMut(Event)>::new({
            let shared = shared.clone();
            move |_: Event| {
                tracing::debug!("DataChannel error");
                shared.wake_all();
            }
        });
        inner.set_onerror(Some(on_error.as_ref().unchecked_ref()));

        let on_message = Closure::<dyn FnMut(MessageEvent)>::new({
            let shared = shared.clone();
            move |ev: MessageEvent| {
                let data = ev.data();
                let Some(buffer) = data.dyn_ref::<js_sys::ArrayBuffer>() else {
                    tracing::warn!("Ignoring a non-binary message on a data channel");
                    return;
                };
                let data = js_sys::Uint8Array::new(buffer);
                let len = data.length() as usize;

                let mut read_buffer = shared.read_buffer.borrow_mut();
                if read_buffer.is_overloaded() {
                    return;
                }
                let unread = read_buffer.len();
                let pushed = read_buffer.push_with(len, |dst| data.copy_to(dst));
                drop(read_buffer);
                if pushed.is_err() {
                    tracing::warn!(
                        unread,
                        incoming = len,
                        "Remote is sending more than this channel or its connection may hold unread, failing the stream"
                    );
                    shared.wake_all();
                    return;
                }
                shared.new_data_waker.wake();
                shared.writer_waker.wake();
            }
        });
        inner.set_onmessage(Some(on_message.as_ref().unchecked_ref()));

        let handlers = Handlers {
            channel: inner.clone(),
            _on_open: on_open,
            _on_close: on_close,
            _on_error: on_error,
            _on_buffered_amount_low: on_buffered_amount_low,
            _on_message: on_message,
        };

        Self { inner, shared, _handlers: Rc::new(handlers) }
    }

    /// Wakes the current task at the next inbound message (see `Shared::writer_waker`).
    pub(crate) fn wake_writer_on_message(&self, cx: &Context<'_>) {
        self.shared.writer_waker.register(cx.waker());
    }

    /// Closes the underlying data channel (handlers stay until the last handle is dropped).
    pub(crate) fn close_channel(&self) {
        self.inner.close();
    }

    /// Returns the [RtcDataChannelState] of the [RtcDataChannel]
    fn ready_state(&self) -> RtcDataChannelState {
        self.inner.ready_state()
    }

    /// Returns the current [RtcDataChannel] BufferedAmount
    fn buffered_amount(&self) -> usize {
        self.inner.buffered_amount() as usize
    }

    fn overloaded_error() -> io::Error {
        io::Error::new(io::ErrorKind::BrokenPipe, "remote sent more than the channel or its connection may hold unread")
    }

    fn overloaded(&self) -> bool {
        self.shared.read_buffer.borrow().is_overloaded()
    }

    /// Whether the data channel is ready for writing.
    fn poll_ready(&mut self, cx: &mut Context) -> Poll<io::Result<()>> {
        match self.ready_state() {
            RtcDataChannelState::Connecting => {
                self.shared.open_waker.register(cx.waker());
                return Poll::Pending;
            }
            RtcDataChannelState::Closing | RtcDataChannelState::Closed => {
                return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
            }
            _ => {}
        }

        if self.overloaded() {
            self.inner.close();
            return Poll::Ready(Err(Self::overloaded_error()));
        }

        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for PollDataChannel {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();

        if this.overloaded() {
            // Data was lost: tell the remote by closing the channel (a RESET frame cannot be sent,
            // writes fail too).
            this.inner.close();
            return Poll::Ready(Err(Self::overloaded_error()));
        }

        let mut read_buffer = this.shared.read_buffer.borrow_mut();

        // Data that arrived is returned even when the channel has closed since; reading gives
        // the bytes back to the connection's budget.
        if !read_buffer.is_empty() {
            return Poll::Ready(Ok(read_buffer.read(buf)));
        }

        match this.ready_state() {
            RtcDataChannelState::Closing | RtcDataChannelState::Closed => {
                Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()))
            }
            _ => {
                this.shared.new_data_waker.register(cx.waker());
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for PollDataChannel {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();

        futures::ready!(this.poll_ready(cx))?;

        // Backpressure as upstream: at most `MAX_MSG_LEN` waits in the channel's send buffer;
        // `onbufferedamountlow` (threshold 0) wakes us when it has drained.
        let remaining_space = MAX_MSG_LEN.saturating_sub(this.buffered_amount());

        if remaining_space == 0 {
            this.shared.write_waker.register(cx.waker());
            return Poll::Pending;
        }

        let bytes_to_send = min(buf.len(), remaining_space);

        if this.inner.send_with_u8_array(&buf[..bytes_to_send]).is_err() {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }

        Poll::Ready(Ok(bytes_to_send))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.buffered_amount() == 0 {
            return Poll::Ready(Ok(()));
        }
        if self.ready_state() == RtcDataChannelState::Closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }

        self.shared.write_waker.register(cx.waker());
        Poll::Pending
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.ready_state() == RtcDataChannelState::Closed {
            return Poll::Ready(Ok(()));
        }

        if self.ready_state() != RtcDataChannelState::Closing {
            self.inner.close();
        }

        self.shared.close_waker.register(cx.waker());
        Poll::Pending
    }
}
