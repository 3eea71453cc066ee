// Derives from libp2p-webrtc-websys 0.5.0 `src/connection.rs` (MIT, rust-libp2p; licence text in
// crates/protoblock-webrtc/LICENSE-libp2p-webrtc-websys).
// Changed:
// - `ondatachannel` is attached when the peer connection is created (not after the Noise handshake),
//   and each inbound channel is wrapped in a `PollDataChannel` at once, so its messages are buffered
//   before the swarm accepts the stream;
// - inbound channels wait in a queue of `INBOUND_QUEUE` (upstream: 4) and a channel that does not fit
//   is closed, not silently dropped; at most `budget::MAX_INBOUND_CHANNELS` inbound channels are open
//   at once, and all channels' unread bytes share one budget per connection (`crate::budget`);
// - `onconnectionstatechange`: a failed peer connection fails the muxer, so the swarm closes it;
// - every handler is cleared before its closure is freed, and the peer connection is closed when it
//   is dropped (also when the upgrade fails);
// - no `expect`/`unwrap`: certificate, data channel creation (`createDataChannel` can throw) and SDP
//   parsing return errors;
// - for the `/webrtc` (private-to-private) transport in `crate::private`: a peer connection can be made
//   from any `RTCConfiguration` (ICE servers, no pinned certificate), `connected` is tracked beside
//   `failed`, an answer can be created, and the dialer's in-band `init` channel is not taken for a
//   stream (the dialer closes it itself once the connection is up).

//! A libp2p connection backed by an [RtcPeerConnection](https://developer.mozilla.org/en-US/docs/Web/API/RTCPeerConnection).

use std::{
    cell::{Cell, RefCell},
    pin::Pin,
    rc::Rc,
    task::{Context, Poll, Waker, ready},
};

use futures::{StreamExt, channel::mpsc, stream::FuturesUnordered, task::AtomicWaker};
use js_sys::{Object, Reflect};
use libp2p_core::muxing::{StreamMuxer, StreamMuxerEvent};
use libp2p_webrtc_utils::Fingerprint;
use send_wrapper::SendWrapper;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Event, RtcConfiguration, RtcDataChannel, RtcDataChannelEvent, RtcDataChannelInit, RtcPeerConnectionState,
    RtcSessionDescriptionInit,
};

use crate::budget::ConnectionBudget;

use super::{
    Error, Stream,
    stream::{DropListener, PollDataChannel},
};

/// How many inbound data channels may wait for the swarm to accept them. A remote opens one per
/// stream; more than this many not yet accepted means the remote opens streams faster than we can
/// take them, and further channels are closed (the remote sees its stream fail).
const INBOUND_QUEUE: usize = 32;

#[wasm_bindgen]
extern "C" {
    /// An `RTCPeerConnection`, for the binding below.
    type PeerConnectionExt;

    /// `RTCPeerConnection.createDataChannel`, which throws (e.g. when the connection is closed or
    /// out of stream ids); web-sys's binding does not catch that.
    #[wasm_bindgen(method, catch, js_name = createDataChannel)]
    fn try_create_data_channel(
        this: &PeerConnectionExt,
        label: &str,
        init: &RtcDataChannelInit,
    ) -> Result<RtcDataChannel, JsValue>;
}

/// A WebRTC Connection.
///
/// All connections need to be [`Send`] which is why some fields are wrapped in [`SendWrapper`].
/// This is safe because WASM is single-threaded.
pub struct Connection {
    /// The [RtcPeerConnection] that is used for the WebRTC Connection
    inner: SendWrapper<RtcPeerConnection>,

    /// Whether the connection is closed
    closed: bool,
    /// A list of futures, which, once completed, signal that a [`Stream`] has been dropped.
    drop_listeners: FuturesUnordered<DropListener>,
    no_drop_listeners_waker: Option<Waker>,
}

impl Connection {
    /// Create a new inner WebRTC Connection
    pub(crate) fn new(peer_connection: RtcPeerConnection) -> Self {
        Self {
            inner: SendWrapper::new(peer_connection),
            closed: false,
            drop_listeners: FuturesUnordered::default(),
            no_drop_listeners_waker: None,
        }
    }

    fn new_stream_from_data_channel(&mut self, data_channel: PollDataChannel) -> Stream {
        let (stream, drop_listener) = Stream::new(data_channel);

        self.drop_listeners.push(drop_listener);
        if let Some(waker) = self.no_drop_listeners_waker.take() {
            waker.wake()
        }
        stream
    }

    /// Closes the Peer Connection.
    ///
    /// This closes the data channels also and they will return an error
    /// if they are used.
    fn close_connection(&mut self) {
        if !self.closed {
            tracing::trace!("connection::close_connection");
            self.inner.inner.close();
            self.closed = true;
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.close_connection();
    }
}

/// WebRTC native multiplexing
/// Allows users to open substreams
impl StreamMuxer for Connection {
    type Substream = Stream;
    type Error = Error;

    fn poll_inbound(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Self::Substream, Self::Error>> {
        match ready!(self.inner.inbound.poll_next_unpin(cx)) {
            Some(data_channel) => {
                let stream = self.new_stream_from_data_channel(data_channel);

                Poll::Ready(Ok(stream))
            }
            None => {
                // The sender is dropped when the peer connection failed or is being dropped.
                tracing::debug!("`Sender` for inbound data channels has been dropped");
                Poll::Ready(Err(Error::Connection("connection closed".to_owned())))
            }
        }
    }

    fn poll_outbound(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<Self::Substream, Self::Error>> {
        tracing::trace!("Creating outbound data channel");

        let data_channel = self.inner.new_regular_data_channel()?;
        let stream = self.new_stream_from_data_channel(data_channel);

        Poll::Ready(Ok(stream))
    }

    /// Closes the Peer Connection.
    fn poll_close(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tracing::trace!("connection::poll_close");

        self.close_connection();
        Poll::Ready(Ok(()))
    }

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<StreamMuxerEvent, Self::Error>> {
        if self.inner.state.failed.get() {
            return Poll::Ready(Err(Error::Connection("peer connection failed".to_owned())));
        }
        self.inner.state.waker.register(cx.waker());

        loop {
            match ready!(self.drop_listeners.poll_next_unpin(cx)) {
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    tracing::debug!("a DropListener failed: {e}")
                }
                None => {
                    self.no_drop_listeners_waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        }
    }
}

/// Peer connection state the JS handlers update.
#[derive(Default)]
struct PeerState {
    /// `connectionState` became `failed` (or `closed`).
    failed: Cell<bool>,
    /// `connectionState` became `connected` (ICE and DTLS are up).
    connected: Cell<bool>,
    /// Woken when `failed` or `connected` is set.
    waker: AtomicWaker,
}

pub(crate) struct RtcPeerConnection {
    inner: web_sys::RtcPeerConnection,
    /// What the remote can make us hold: unread bytes over all channels, inbound channels open.
    budget: ConnectionBudget,
    /// Inbound data channels, with their handlers already attached.
    inbound: mpsc::Receiver<PollDataChannel>,
    state: Rc<PeerState>,
    _on_data_channel: Closure<dyn FnMut(RtcDataChannelEvent)>,
    _on_connection_state_change: Closure<dyn FnMut(Event)>,
}

impl Drop for RtcPeerConnection {
    fn drop(&mut self) {
        // Detach the handlers before the closures are freed (right after this body).
        self.inner.set_ondatachannel(None);
        self.inner.set_onconnectionstatechange(None);
        // Also when the upgrade failed: do not leave a peer connection (and its ICE agent) behind.
        self.inner.close();
    }
}

impl RtcPeerConnection {
    pub(crate) async fn new(algorithm: String) -> Result<Self, Error> {
        let config = RtcConfiguration::default();
        config.set_certificates(&js_sys::Array::of1(&Self::certificate(algorithm).await?));
        Self::with_configuration(&config)
    }

    /// A certificate for `algorithm` (WebRTC-direct pins its hash in the server's multiaddr).
    async fn certificate(algorithm: String) -> Result<JsValue, Error> {
        let algo: Object = Object::new();
        Reflect::set(&algo, &"name".into(), &"ECDSA".into())?;
        Reflect::set(&algo, &"namedCurve".into(), &"P-256".into())?;
        Reflect::set(&algo, &"hash".into(), &algorithm.into())?;

        let certificate_promise = web_sys::RtcPeerConnection::generate_certificate_with_object(&algo)?;

        Ok(JsFuture::from(certificate_promise).await?)
    }

    /// A peer connection with `config`, its handlers attached at once.
    pub(crate) fn with_configuration(config: &RtcConfiguration) -> Result<Self, Error> {
        let inner = web_sys::RtcPeerConnection::new_with_configuration(config)?;

        // Attach `ondatachannel` now: a channel the remote opens right after the handshake, before
        // `Connection` exists, must not be missed.
        let (tx, inbound) = mpsc::channel::<PollDataChannel>(INBOUND_QUEUE);
        let sender = Rc::new(RefCell::new(Some(tx)));
        let budget = ConnectionBudget::default();
        let on_data_channel = Closure::<dyn FnMut(RtcDataChannelEvent)>::new({
            let sender = sender.clone();
            let budget = budget.clone();
            move |ev: RtcDataChannelEvent| {
                tracing::trace!("New data channel");
                // The `/webrtc` dialer's readiness channel: it opens and closes it itself (js-libp2p
                // awaits its `open`), so it is neither a stream nor ours to close.
                if ev.channel().label() == "init" {
                    return;
                }
                let Some(slot) = budget.open_inbound() else {
                    tracing::warn!(
                        open = budget.inbound_channels(),
                        "Remote has its maximum of inbound data channels open; closing a new one"
                    );
                    ev.channel().close();
                    return;
                };
                // Handlers first, so messages that arrive before the swarm accepts it are kept.
                let channel = PollDataChannel::new(ev.channel(), &budget, Some(slot));
                let refused = match sender.borrow_mut().as_mut() {
                    Some(tx) => match tx.try_send(channel) {
                        Ok(()) => None,
                        Err(e) => {
                            if e.is_full() {
                                tracing::warn!(
                                    "Remote is opening too many data channels, we can't keep up! Closing one"
                                );
                            } else {
                                tracing::debug!("Receiver is gone, closing an inbound data channel");
                            }
                            Some(e.into_inner())
                        }
                    },
                    None => {
                        tracing::debug!("Connection failed, closing an inbound data channel");
                        Some(channel)
                    }
                };
                if let Some(channel) = refused {
                    channel.close_channel();
                }
            }
        });
        inner.set_ondatachannel(Some(on_data_channel.as_ref().unchecked_ref()));

        let state = Rc::new(PeerState::default());
        let on_connection_state_change = Closure::<dyn FnMut(Event)>::new({
            let pc = inner.clone();
            let state = state.clone();
            move |_: Event| {
                let connection_state = pc.connection_state();
                tracing::trace!(?connection_state, "Peer connection state changed");
                if connection_state == RtcPeerConnectionState::Connected {
                    state.connected.set(true);
                    state.waker.wake();
                }
                if matches!(connection_state, RtcPeerConnectionState::Failed | RtcPeerConnectionState::Closed) {
                    state.failed.set(true);
                    // Ends the inbound queue: `poll_inbound` fails once it is drained.
                    drop(sender.borrow_mut().take());
                    state.waker.wake();
                }
            }
        });
        inner.set_onconnectionstatechange(Some(on_connection_state_change.as_ref().unchecked_ref()));

        Ok(Self {
            inner,
            budget,
            inbound,
            state,
            _on_data_channel: on_data_channel,
            _on_connection_state_change: on_connection_state_change,
        })
    }

    /// Creates the stream for the initial noise handshake.
    ///
    /// The underlying data channel MUST have `negotiated` set to `true` and carry the ID 0.
    pub(crate) fn new_handshake_stream(&self) -> Result<(Stream, DropListener), Error> {
        Ok(Stream::new(self.new_data_channel(true)?))
    }

    /// Creates a regular data channel for when the connection is already established.
    pub(crate) fn new_regular_data_channel(&self) -> Result<PollDataChannel, Error> {
        self.new_data_channel(false)
    }

    fn new_data_channel(&self, negotiated: bool) -> Result<PollDataChannel, Error> {
        const LABEL: &str = "";

        let options = RtcDataChannelInit::new();
        if negotiated {
            options.set_negotiated(true);
            options.set_id(0); // id is only ever set to zero when negotiated is true
        }
        let dc = self.inner.unchecked_ref::<PeerConnectionExt>().try_create_data_channel(LABEL, &options)?;

        Ok(PollDataChannel::new(dc, &self.budget, None))
    }

    /// The `RTCPeerConnection` itself, for signalling.
    pub(crate) fn raw(&self) -> &web_sys::RtcPeerConnection {
        &self.inner
    }

    /// Resolves when the connection is `connected`; fails when it is `failed` or `closed`.
    pub(crate) fn poll_connected(&self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.state.waker.register(cx.waker());
        if self.state.failed.get() {
            return Poll::Ready(Err(Error::Connection("ICE failed".to_owned())));
        }
        if self.state.connected.get() || self.inner.connection_state() == RtcPeerConnectionState::Connected {
            return Poll::Ready(Ok(()));
        }
        Poll::Pending
    }

    /// A data channel labelled `label` (the `/webrtc` dialer's `init`), not wrapped as a stream.
    pub(crate) fn new_labelled_channel(&self, label: &str) -> Result<RtcDataChannel, Error> {
        let options = RtcDataChannelInit::new();
        Ok(self.inner.unchecked_ref::<PeerConnectionExt>().try_create_data_channel(label, &options)?)
    }

    pub(crate) async fn create_answer(&self) -> Result<String, Error> {
        let answer = JsFuture::from(self.inner.create_answer()).await?;
        Reflect::get(&answer, &JsValue::from_str("sdp"))?
            .as_string()
            .ok_or_else(|| Error::Js("answer has no SDP string".to_string()))
    }

    pub(crate) async fn create_offer(&self) -> Result<String, Error> {
        let offer = JsFuture::from(self.inner.create_offer()).await?;

        let offer = Reflect::get(&offer, &JsValue::from_str("sdp"))?
            .as_string()
            .ok_or_else(|| Error::Js("offer has no SDP string".to_string()))?;

        Ok(offer)
    }

    pub(crate) async fn set_local_description(&self, sdp: RtcSessionDescriptionInit) -> Result<(), Error> {
        let promise = self.inner.set_local_description(&sdp);
        JsFuture::from(promise).await?;

        Ok(())
    }

    pub(crate) fn local_fingerprint(&self) -> Result<Fingerprint, Error> {
        let sdp = &self.inner.local_description().ok_or_else(|| Error::Js("No local description".to_string()))?.sdp();

        let fingerprint = parse_fingerprint(sdp).ok_or_else(|| Error::Js("No fingerprint in SDP".to_string()))?;

        Ok(fingerprint)
    }

    pub(crate) async fn set_remote_description(&self, sdp: RtcSessionDescriptionInit) -> Result<(), Error> {
        let promise = self.inner.set_remote_description(&sdp);
        JsFuture::from(promise).await?;

        Ok(())
    }
}

/// Parse Fingerprint from a SDP: the first `a=fingerprint:` line, if it holds a SHA-256 fingerprint.
fn parse_fingerprint(sdp: &str) -> Option<Fingerprint> {
    // `lines` accepts "\r\n" and "\n"
    for line in sdp.lines() {
        if line.starts_with("a=fingerprint:") {
            let fingerprint = line.split(' ').nth(1)?;
            let bytes = hex::decode(fingerprint.replace(':', "")).ok()?;
            let arr: [u8; 32] = bytes.as_slice().try_into().ok()?;
            return Some(Fingerprint::raw(arr));
        }
    }
    None
}

#[cfg(test)]
mod sdp_tests {
    use super::*;

    #[test]
    fn test_fingerprint() {
        let sdp = "v=0\r\no=- 0 0 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\na=ice-lite\r\nm=application 61885 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:0\r\na=setup:passive\r\na=ice-ufrag:libp2p+webrtc+v1/YwapWySn6fE6L9i47PhlB6X4gzNXcgFs\r\na=ice-pwd:libp2p+webrtc+v1/YwapWySn6fE6L9i47PhlB6X4gzNXcgFs\r\na=fingerprint:sha-256 A8:17:77:1E:02:7E:D1:2B:53:92:70:A6:8E:F9:02:CC:21:72:3A:92:5D:F4:97:5F:27:C4:5E:75:D4:F4:31:89\r\na=sctp-port:5000\r\na=max-message-size:16384\r\na=candidate:1467250027 1 UDP 1467250027 ::1 61885 typ host\r\n";

        let fingerprint = parse_fingerprint(sdp).unwrap();

        assert_eq!(fingerprint.algorithm(), "sha-256");
        assert_eq!(
            fingerprint.to_sdp_format(),
            "A8:17:77:1E:02:7E:D1:2B:53:92:70:A6:8E:F9:02:CC:21:72:3A:92:5D:F4:97:5F:27:C4:5E:75:D4:F4:31:89"
        );
        assert!(parse_fingerprint("a=fingerprint:sha-256 zz\r\n").is_none());
    }
}
