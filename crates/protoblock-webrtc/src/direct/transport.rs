// Derives from libp2p-webrtc-websys 0.5.0 `src/transport.rs` (MIT, rust-libp2p; licence text in
// crates/protoblock-webrtc/LICENSE-libp2p-webrtc-websys).
// Changed: `maybe_local_firefox` reads `navigator` and `location` from the global object, so it
// works in Workers (upstream: `window().expect(..)` panicked there) and never panics.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use futures::future::FutureExt;
use js_sys::Reflect;
use libp2p_core::{
    multiaddr::Multiaddr,
    muxing::StreamMuxerBox,
    transport::{Boxed, DialOpts, ListenerId, Transport as _, TransportError, TransportEvent},
};
use libp2p_identity::{Keypair, PeerId};
use wasm_bindgen::JsValue;

use super::{Connection, Error, upgrade};

/// Config for the [`Transport`].
#[derive(Clone)]
pub struct Config {
    keypair: Keypair,
}

/// A WebRTC-direct [`Transport`](libp2p_core::Transport) that works with `web-sys`: dials only.
pub struct Transport {
    config: Config,
}

impl Config {
    /// Constructs a new configuration for the [`Transport`].
    pub fn new(keypair: &Keypair) -> Self {
        Config { keypair: keypair.to_owned() }
    }
}

impl Transport {
    /// Constructs a new `Transport` with the given [`Config`].
    pub fn new(config: Config) -> Transport {
        Transport { config }
    }

    /// Wraps `Transport` in [`Boxed`] and makes it ready to be consumed by
    /// SwarmBuilder.
    pub fn boxed(self) -> Boxed<(PeerId, StreamMuxerBox)> {
        self.map(|(peer_id, muxer), _| (peer_id, StreamMuxerBox::new(muxer))).boxed()
    }
}

impl libp2p_core::Transport for Transport {
    type Output = (PeerId, Connection);
    type Error = Error;
    type ListenerUpgrade = Pin<Box<dyn Future<Output = Result<Self::Output, Self::Error>> + Send>>;
    type Dial = Pin<Box<dyn Future<Output = Result<Self::Output, Self::Error>> + Send>>;

    fn listen_on(&mut self, _id: ListenerId, addr: Multiaddr) -> Result<(), TransportError<Self::Error>> {
        Err(TransportError::MultiaddrNotSupported(addr))
    }

    fn remove_listener(&mut self, _id: ListenerId) -> bool {
        false
    }

    fn dial(&mut self, addr: Multiaddr, dial_opts: DialOpts) -> Result<Self::Dial, TransportError<Self::Error>> {
        if dial_opts.role.is_listener() {
            return Err(TransportError::MultiaddrNotSupported(addr));
        }

        let (sock_addr, server_fingerprint) = libp2p_webrtc_utils::parse_webrtc_dial_addr(&addr)
            .ok_or_else(|| TransportError::MultiaddrNotSupported(addr.clone()))?;

        if sock_addr.port() == 0 || sock_addr.ip().is_unspecified() {
            return Err(TransportError::MultiaddrNotSupported(addr));
        }

        if maybe_local_firefox() {
            return Err(TransportError::Other(Error::Connection(
                "Firefox does not support WebRTC over localhost or 127.0.0.1".to_string(),
            )));
        }

        let config = self.config.clone();

        Ok(async move {
            let (peer_id, connection) =
                upgrade::outbound(sock_addr, server_fingerprint, config.keypair.clone()).await?;

            Ok((peer_id, connection))
        }
        .boxed())
    }

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        Poll::Pending
    }
}

/// Reads `object[key]` as a string; `None` if it is missing, not a string, or reading throws.
fn js_string(object: &JsValue, key: &str) -> Option<String> {
    if object.is_undefined() || object.is_null() {
        return None;
    }
    Reflect::get(object, &JsValue::from_str(key)).ok()?.as_string()
}

/// Checks if local Firefox.
///
/// See: `<https://bugzilla.mozilla.org/show_bug.cgi?id=1659672>` for more details
///
/// Reads `navigator.userAgent` and `location.hostname` of the global object, which a Window and a
/// Worker both have; anything missing means "not local Firefox".
fn maybe_local_firefox() -> bool {
    let global: JsValue = js_sys::global().into();
    let Some(navigator) = Reflect::get(&global, &JsValue::from_str("navigator")).ok() else {
        return false;
    };
    let Some(location) = Reflect::get(&global, &JsValue::from_str("location")).ok() else {
        return false;
    };
    let Some(ua) = js_string(&navigator, "userAgent").map(|ua| ua.to_lowercase()) else {
        return false;
    };
    let Some(hostname) = js_string(&location, "hostname") else {
        return false;
    };

    // check if the user agent matches any of the following:
    // - firefox
    // - seamonkey
    // - iceape
    // AND hostname is either localhost or  "127.0.0.1"
    (ua.contains("firefox") || ua.contains("seamonkey") || ua.contains("iceape"))
        && (hostname == "localhost" || hostname == "127.0.0.1" || hostname == "[::1]")
}
