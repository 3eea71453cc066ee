//! The SDP answer a page hands its own `RTCPeerConnection` when it dials a
//! server over WebRTC-direct (the server never sends one: the page builds it
//! from the multiaddr's address and certhash).
//!
//! libp2p-webrtc-utils renders the same text through tinytemplate, which
//! brought tinytemplate and serde_json into the browser package for one
//! fixed string. This is that template as a `format!`; a native test checks
//! it byte for byte against upstream's rendering.

use std::net::{IpAddr, SocketAddr};

/// `fingerprint_algorithm` and `fingerprint_sdp` as upstream's
/// `Fingerprint::algorithm()` and `Fingerprint::to_sdp_format()` give them;
/// the ICE password equals the ufrag, as the spec says.
pub fn server_answer(addr: SocketAddr, fingerprint_algorithm: &str, fingerprint_sdp: &str, ufrag: &str) -> String {
    let (version, ip) = match addr.ip() {
        IpAddr::V4(ip) => ("IP4", ip.to_string()),
        IpAddr::V6(ip) => ("IP6", ip.to_string()),
    };
    let port = addr.port();
    format!(
        "v=0\n\
         o=- 0 0 IN {version} {ip}\n\
         s=-\n\
         t=0 0\n\
         a=ice-lite\n\
         m=application {port} UDP/DTLS/SCTP webrtc-datachannel\n\
         c=IN {version} {ip}\n\
         a=mid:0\n\
         a=ice-options:ice2\n\
         a=ice-ufrag:{ufrag}\n\
         a=ice-pwd:{ufrag}\n\
         a=fingerprint:{fingerprint_algorithm} {fingerprint_sdp}\n\
         a=setup:passive\n\
         a=sctp-port:5000\n\
         a=max-message-size:16384\n\
         a=candidate:1467250027 1 UDP 1467250027 {ip} {port} typ host\n\
         a=end-of-candidates\n"
    )
}

#[cfg(test)]
mod tests {
    use libp2p_webrtc_utils::Fingerprint;

    use super::*;

    #[test]
    fn same_bytes_as_libp2p_webrtc_utils() {
        let ufrag = "libp2p+webrtc+v1/Xa7Qm2ZkT0yBq9Lr4WcN8sVdE1fHjG6uP3iKoY5nRtMlZbAeCxSgDwF0hJ2k4mQ7";
        for (addr, digest) in [
            ("127.0.0.1:4003", [0xA5; 32]),
            ("[::1]:9090", [0x01; 32]),
            ("[2001:db8::7]:443", core::array::from_fn(|i| i as u8)),
        ] {
            let addr: SocketAddr = addr.parse().unwrap();
            let fp = Fingerprint::raw(digest);
            assert_eq!(
                server_answer(addr, &fp.algorithm(), &fp.to_sdp_format(), ufrag),
                libp2p_webrtc_utils::sdp::answer(addr, fp, ufrag),
                "{addr}"
            );
        }
    }
}
