//! The one multiaddr classifier: how an address is reached, by its
//! `Protocol`s (never by substrings of its text).

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrKind {
    /// Through a circuit relay (whatever follows the circuit, except `/webrtc`).
    Relayed,
    /// `<relay>/p2p-circuit/webrtc/p2p/<peer>`: a page reached through a relay
    /// first, then upgraded to a direct `/webrtc` connection.
    CircuitWebRtc,
    /// A direct browser-to-browser connection.
    WebRtc,
    WebRtcDirect,
    WebSocket,
    Quic,
    Tcp,
    Other,
}

impl AddrKind {
    /// The name pages and the JSON API use.
    pub fn name(self) -> &'static str {
        match self {
            AddrKind::Relayed | AddrKind::CircuitWebRtc => "relayed",
            AddrKind::WebRtc => "webrtc",
            AddrKind::WebRtcDirect => "webrtc-direct",
            AddrKind::WebSocket => "websocket",
            AddrKind::Quic => "quic",
            AddrKind::Tcp => "tcp",
            AddrKind::Other => "other",
        }
    }
}

pub fn classify(addr: &Multiaddr) -> AddrKind {
    let protos: Vec<Protocol> = addr.iter().collect();
    if let Some(i) = protos.iter().position(|p| *p == Protocol::P2pCircuit) {
        return match protos.get(i + 1) {
            Some(Protocol::WebRTC) => AddrKind::CircuitWebRtc,
            _ => AddrKind::Relayed,
        };
    }
    let has = |f: fn(&Protocol) -> bool| protos.iter().any(f);
    if has(|p| matches!(p, Protocol::WebRTCDirect)) {
        AddrKind::WebRtcDirect
    } else if has(|p| matches!(p, Protocol::WebRTC)) {
        AddrKind::WebRtc
    } else if has(|p| matches!(p, Protocol::Ws(_) | Protocol::Wss(_))) {
        AddrKind::WebSocket
    } else if has(|p| matches!(p, Protocol::Quic | Protocol::QuicV1)) {
        AddrKind::Quic
    } else if has(|p| matches!(p, Protocol::Tcp(_))) {
        AddrKind::Tcp
    } else {
        AddrKind::Other
    }
}

/// Addresses a browser can dial: WebSocket, WebRTC-direct with its
/// certhash, and circuits through a relay.
pub fn browser_dialable(addr: &Multiaddr) -> bool {
    match classify(addr) {
        AddrKind::WebSocket | AddrKind::Relayed | AddrKind::CircuitWebRtc => true,
        AddrKind::WebRtcDirect => addr.iter().any(|p| matches!(p, Protocol::Certhash(_))),
        _ => false,
    }
}

/// A WebSocket address without TLS (`/ws`, not `/tls/ws` or `/wss`), as
/// the address itself or as the first hop of a circuit (the part a browser
/// dials). A page served over https cannot open it: mixed content.
pub fn is_plain_websocket(addr: &Multiaddr) -> bool {
    let mut tls = false;
    for p in addr.iter() {
        match p {
            Protocol::P2pCircuit => return false,
            Protocol::Ws(_) if !tls => return true,
            _ => {}
        }
        // `/tls/ws`, or `/tls/sni/<host>/ws`.
        tls = matches!(p, Protocol::Tls) || (tls && matches!(p, Protocol::Sni(_)));
    }
    false
}

/// What a page can dial: `browser_dialable`, and on a page served over
/// https (`secure_page`) nothing over plain WebSocket.
pub fn page_dialable(addr: &Multiaddr, secure_page: bool) -> bool {
    browser_dialable(addr) && !(secure_page && is_plain_websocket(addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_classified_by_their_protocols() {
        let peer = "12D3KooWAjX84smipF7zpqEeySyg2MxxFaprALC65269MpufrKgt";
        let kind = |s: &str| classify(&s.replace("PEER", peer).parse().unwrap());
        assert_eq!(kind("/ip4/127.0.0.1/tcp/4002/ws/p2p/PEER"), AddrKind::WebSocket);
        assert_eq!(kind("/ip4/127.0.0.1/tcp/443/wss/p2p/PEER"), AddrKind::WebSocket);
        assert_eq!(kind("/ip4/127.0.0.1/udp/4003/webrtc-direct/p2p/PEER"), AddrKind::WebRtcDirect);
        assert_eq!(kind("/ip4/127.0.0.1/tcp/4002/ws/p2p/PEER/p2p-circuit/p2p/PEER"), AddrKind::Relayed);
        assert_eq!(kind("/ip4/127.0.0.1/tcp/4002/ws/p2p/PEER/p2p-circuit/webrtc/p2p/PEER"), AddrKind::CircuitWebRtc);
        assert_eq!(kind("/webrtc/p2p/PEER"), AddrKind::WebRtc);
        assert_eq!(kind("/ip4/127.0.0.1/udp/4001/quic-v1"), AddrKind::Quic);
        assert_eq!(kind("/ip4/127.0.0.1/tcp/4001"), AddrKind::Tcp);
        // A dns name that merely contains "ws" is not a WebSocket.
        assert_eq!(kind("/dns4/wsserver.example/tcp/4001"), AddrKind::Tcp);
        // The page's names: through a relay is relayed, whatever follows the circuit.
        let name = |s: &str| kind(s).name();
        assert_eq!(name("/ip4/127.0.0.1/tcp/4002/ws/p2p/PEER/p2p-circuit/webrtc/p2p/PEER"), "relayed");
        assert_eq!(name("/webrtc/p2p/PEER"), "webrtc");
        assert_eq!(name("/ip4/127.0.0.1/udp/4003/webrtc-direct/p2p/PEER"), "webrtc-direct");
        assert_eq!(name("/ip4/127.0.0.1/tcp/4002/ws/p2p/PEER"), "websocket");
        assert!(!browser_dialable(&"/ip4/127.0.0.1/udp/4003/webrtc-direct".parse().unwrap()));
        assert!(browser_dialable(&"/ip4/127.0.0.1/tcp/4002/ws".parse().unwrap()));
    }

    #[test]
    fn an_https_page_dials_only_secure_websockets() {
        let peer = "12D3KooWAjX84smipF7zpqEeySyg2MxxFaprALC65269MpufrKgt";
        let ok = |s: &str, secure| page_dialable(&s.replace("PEER", peer).parse().unwrap(), secure);
        for plain in ["/ip4/127.0.0.1/tcp/4002/ws/p2p/PEER", "/ip4/127.0.0.1/tcp/4002/ws/p2p/PEER/p2p-circuit/p2p/PEER"]
        {
            assert!(ok(plain, false), "{plain} from an http page");
            assert!(!ok(plain, true), "{plain} is mixed content on an https page");
        }
        for secure in [
            "/ip4/127.0.0.1/tcp/4443/tls/ws/p2p/PEER",
            "/dns4/relay.example.org/tcp/443/wss/p2p/PEER",
            "/ip4/127.0.0.1/tcp/4443/tls/ws/p2p/PEER/p2p-circuit/webrtc/p2p/PEER",
        ] {
            assert!(ok(secure, true), "{secure} from an https page");
        }
        // WebRTC-direct needs no CA and is not mixed content.
        let rtc =
            "/ip4/127.0.0.1/udp/4003/webrtc-direct/certhash/uEiDDq4_xNyDorZBH3TlGazyJdOWSwvo4PUo5YHFMrvDE8g/p2p/PEER";
        assert!(ok(rtc, true));
    }
}
