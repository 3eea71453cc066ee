//! The two sides of one signalling exchange: the offerer (who dialled the
//! relayed connection) and the answerer. Each returns the established
//! [`Connection`] or an error; on an error the `RTCPeerConnection` is dropped,
//! which closes it and detaches its handlers.

use std::task::Poll;

use futures::{
    AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt,
    channel::{mpsc, oneshot},
    future::poll_fn,
    stream::LocalBoxStream,
};
use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    RtcConfiguration, RtcDataChannel, RtcDataChannelState, RtcIceCandidateInit, RtcPeerConnectionIceEvent, RtcSdpType,
    RtcSessionDescriptionInit,
};

use crate::direct::{Connection, Error, connection::RtcPeerConnection};
use crate::ice::IceServer;
use crate::signal_codec::{Kind, SignalMessage, read_message, write_message};

type Messages<'a> = LocalBoxStream<'a, std::io::Result<SignalMessage>>;

/// Remote candidates taken in one handshake. A host has a handful; a peer
/// sending more is flooding, and the handshake ends.
const MAX_REMOTE_CANDIDATES: usize = 64;

fn rtc_configuration(ice_servers: &[IceServer]) -> Result<RtcConfiguration, Error> {
    let config = RtcConfiguration::default();
    let servers = js_sys::Array::new();
    for s in ice_servers {
        let server = Object::new();
        Reflect::set(&server, &"urls".into(), &s.url.as_str().into())?;
        if let (Some(user), Some(pass)) = (&s.username, &s.credential) {
            Reflect::set(&server, &"username".into(), &user.as_str().into())?;
            Reflect::set(&server, &"credential".into(), &pass.as_str().into())?;
        }
        servers.push(&server);
    }
    config.set_ice_servers(&servers);
    Ok(config)
}

fn description(kind: RtcSdpType, sdp: &str) -> RtcSessionDescriptionInit {
    let d = RtcSessionDescriptionInit::new(kind);
    d.set_sdp(sdp);
    d
}

/// The remote's messages, one at a time, until its side of the stream ends.
fn messages<'a, R: AsyncRead + Unpin + 'a>(reader: R) -> Messages<'a> {
    futures::stream::unfold(reader, |mut r| async move {
        match read_message(&mut r).await {
            Ok(Some(m)) => Some((Ok(m), r)),
            Ok(None) => None,
            Err(e) => Some((Err(e), r)),
        }
    })
    .boxed_local()
}

async fn send<W: AsyncWrite + Unpin>(w: &mut W, kind: Kind, data: String) -> Result<(), Error> {
    write_message(w, &SignalMessage::new(kind, data))
        .await
        .map_err(|e| Error::Connection(format!("signalling write: {e}")))
}

/// The first message, which must be of `kind` and carry an SDP.
async fn expect_sdp(messages: &mut Messages<'_>, kind: Kind) -> Result<String, Error> {
    match messages.next().await {
        Some(Ok(m)) if m.message_kind() == Some(kind) => {
            m.data.ok_or_else(|| Error::Connection(format!("{kind:?} without an SDP")))
        }
        Some(Ok(m)) => Err(Error::Connection(format!("expected {kind:?} first, got type {:?}", m.kind))),
        Some(Err(e)) => Err(Error::Connection(format!("signalling read: {e}"))),
        None => Err(Error::Connection(format!("signalling stream closed before {kind:?}"))),
    }
}

/// Our ICE candidates as they are gathered (`onicecandidate`), as the JSON
/// js-libp2p sends. Detaches the handler when dropped.
struct LocalCandidates {
    pc: web_sys::RtcPeerConnection,
    rx: mpsc::Receiver<String>,
    _on_candidate: Closure<dyn FnMut(RtcPeerConnectionIceEvent)>,
}

impl LocalCandidates {
    fn attach(pc: &web_sys::RtcPeerConnection) -> Self {
        // A host has a handful of candidates; more than this is not worth sending.
        let (mut tx, rx) = mpsc::channel(32);
        let on_candidate =
            Closure::<dyn FnMut(RtcPeerConnectionIceEvent)>::new(move |ev: RtcPeerConnectionIceEvent| {
                // `null` ends gathering; js-libp2p sends no end marker, and neither do we.
                let Some(c) = ev.candidate() else { return };
                if c.candidate().is_empty() {
                    return;
                }
                if let Ok(json) = js_sys::JSON::stringify(&c.to_json()) {
                    let _ = tx.try_send(String::from(json));
                }
            });
        pc.set_onicecandidate(Some(on_candidate.as_ref().unchecked_ref()));
        Self { pc: pc.clone(), rx, _on_candidate: on_candidate }
    }
}

impl Drop for LocalCandidates {
    fn drop(&mut self) {
        self.pc.set_onicecandidate(None);
    }
}

/// Adds one remote candidate. `null` and `""` are end-of-candidates markers
/// (js-libp2p `util.ts`); a candidate the browser refuses is skipped, as js does.
async fn add_remote_candidate(pc: &web_sys::RtcPeerConnection, data: Option<&str>) -> Result<(), Error> {
    let Some(data) = data else { return Ok(()) };
    let parsed = js_sys::JSON::parse(data).map_err(|_| Error::Connection("ICE candidate is not JSON".into()))?;
    if parsed.is_null() || parsed.as_string().is_some_and(|s| s.is_empty()) {
        return Ok(());
    }
    if !parsed.is_object() {
        return Err(Error::Connection("ICE candidate is not an object".into()));
    }
    let init: RtcIceCandidateInit = parsed.unchecked_into();
    if let Err(e) = JsFuture::from(pc.add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init))).await {
        tracing::debug!(error = ?e, "remote ICE candidate refused");
    }
    Ok(())
}

/// Trades candidates until ICE connects (or fails). A write error or the
/// remote closing its side only stops that direction: candidates already
/// exchanged may still connect.
async fn trickle<W: AsyncWrite + Unpin>(
    pc: &RtcPeerConnection,
    local: &mut LocalCandidates,
    messages: &mut Messages<'_>,
    writer: &mut W,
) -> Result<(), Error> {
    enum Step {
        Connected(Result<(), Error>),
        Local(Option<String>),
        Remote(Option<std::io::Result<SignalMessage>>),
    }
    let (mut local_done, mut remote_done) = (false, false);
    let mut remote_candidates = 0usize;
    loop {
        let step = poll_fn(|cx| {
            if let Poll::Ready(r) = pc.poll_connected(cx) {
                return Poll::Ready(Step::Connected(r));
            }
            if !local_done && let Poll::Ready(c) = local.rx.poll_next_unpin(cx) {
                return Poll::Ready(Step::Local(c));
            }
            if !remote_done && let Poll::Ready(m) = messages.poll_next_unpin(cx) {
                return Poll::Ready(Step::Remote(m));
            }
            Poll::Pending
        })
        .await;
        match step {
            Step::Connected(r) => return r,
            Step::Local(Some(json)) => {
                if let Err(e) = send(writer, Kind::IceCandidate, json).await {
                    tracing::debug!(error = %e, "cannot send more candidates");
                    local_done = true;
                }
            }
            Step::Local(None) => local_done = true,
            Step::Remote(Some(Ok(m))) => match m.message_kind() {
                Some(Kind::IceCandidate) => {
                    remote_candidates += 1;
                    if remote_candidates > MAX_REMOTE_CANDIDATES {
                        return Err(Error::Connection("too many ICE candidates".into()));
                    }
                    add_remote_candidate(pc.raw(), m.data.as_deref()).await?
                }
                other => return Err(Error::Connection(format!("unexpected {other:?} while trading candidates"))),
            },
            Step::Remote(Some(Err(e))) => return Err(Error::Connection(format!("signalling read: {e}"))),
            Step::Remote(None) => remote_done = true,
        }
    }
}

/// Waits for a data channel to open (the caller bounds the wait).
async fn opened(channel: &RtcDataChannel) {
    if channel.ready_state() == RtcDataChannelState::Open {
        return;
    }
    let (tx, rx) = oneshot::channel::<()>();
    let mut tx = Some(tx);
    let on_open = Closure::<dyn FnMut()>::new(move || {
        if let Some(tx) = tx.take() {
            let _ = tx.send(());
        }
    });
    channel.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    if channel.ready_state() != RtcDataChannelState::Open {
        let _ = rx.await;
    }
    channel.set_onopen(None);
}

/// The dialer's side: create the peer connection and the `init` channel (an
/// offer needs a data channel to carry an application section), offer,
/// take the answer, trade candidates, then close `init` and the stream.
pub(crate) async fn offer<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    ice_servers: &[IceServer],
) -> Result<Connection, Error> {
    let pc = RtcPeerConnection::with_configuration(&rtc_configuration(ice_servers)?)?;
    let mut local = LocalCandidates::attach(pc.raw());
    let init = pc.new_labelled_channel("init")?;
    let (reader, mut writer) = stream.split();
    let mut messages = messages(reader);

    let sdp = pc.create_offer().await?;
    send(&mut writer, Kind::SdpOffer, sdp.clone()).await?;
    pc.set_local_description(description(RtcSdpType::Offer, &sdp)).await?;
    let answer = expect_sdp(&mut messages, Kind::SdpAnswer).await?;
    pc.set_remote_description(description(RtcSdpType::Answer, &answer)).await?;
    trickle(&pc, &mut local, &mut messages, &mut writer).await?;
    drop(local);

    opened(&init).await;
    init.close();
    let _ = writer.close().await;
    Ok(Connection::new(pc))
}

/// The listener's side: take the offer, answer first (js-libp2p's dialer
/// refuses anything else first), trade candidates, close the stream.
pub(crate) async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    ice_servers: &[IceServer],
) -> Result<Connection, Error> {
    let pc = RtcPeerConnection::with_configuration(&rtc_configuration(ice_servers)?)?;
    let mut local = LocalCandidates::attach(pc.raw());
    let (reader, mut writer) = stream.split();
    let mut messages = messages(reader);

    let offer = expect_sdp(&mut messages, Kind::SdpOffer).await?;
    pc.set_remote_description(description(RtcSdpType::Offer, &offer)).await?;
    let sdp = pc.create_answer().await?;
    send(&mut writer, Kind::SdpAnswer, sdp.clone()).await?;
    pc.set_local_description(description(RtcSdpType::Answer, &sdp)).await?;
    trickle(&pc, &mut local, &mut messages, &mut writer).await?;
    drop(local);

    let _ = writer.close().await;
    Ok(Connection::new(pc))
}
