//! A STUN Binding responder (RFC 5389) on UDP, so browsers can learn their
//! public address from the relay itself. Parsing and building use the `stun`
//! crate (webrtc-rs, already in the tree through libp2p-webrtc); this file
//! only answers Binding requests with the sender's XOR-MAPPED-ADDRESS and
//! drops everything else.

use std::net::SocketAddr;

use stun::message::{BINDING_REQUEST, BINDING_SUCCESS, Message, Setter};
use stun::xoraddr::XorMappedAddress;
use tokio::net::UdpSocket;

/// Largest datagram read; STUN requests are tiny.
const MAX_DATAGRAM: usize = 1500;

pub fn binding_response(request: &[u8], from: SocketAddr) -> Option<Vec<u8>> {
    let mut req = Message::new();
    req.unmarshal_binary(request).ok()?;
    if req.typ != BINDING_REQUEST {
        return None;
    }
    let mut resp = Message::new();
    let setters: Vec<Box<dyn Setter>> = vec![
        Box::new(req.transaction_id),
        Box::new(BINDING_SUCCESS),
        Box::new(XorMappedAddress { ip: from.ip(), port: from.port() }),
        Box::new(stun::fingerprint::FINGERPRINT),
    ];
    resp.build(&setters).ok()?;
    Some(resp.raw)
}

pub async fn serve(socket: UdpSocket) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(error = %e, "stun recv");
                continue;
            }
        };
        if let Some(resp) = binding_response(&buf[..n], from) {
            let _ = socket.send_to(&resp, from).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stun::message::Getter;

    #[test]
    fn answers_binding_requests_only() {
        let mut req = Message::new();
        let setters: Vec<Box<dyn Setter>> =
            vec![Box::new(BINDING_REQUEST), Box::new(stun::agent::TransactionId::new())];
        req.build(&setters).unwrap();
        let from: SocketAddr = "192.0.2.7:5555".parse().unwrap();
        let raw = binding_response(&req.raw, from).expect("a response");
        let mut resp = Message::new();
        resp.unmarshal_binary(&raw).unwrap();
        assert_eq!(resp.typ, BINDING_SUCCESS);
        assert_eq!(resp.transaction_id, req.transaction_id);
        let mut x = XorMappedAddress::default();
        x.get_from(&resp).unwrap();
        assert_eq!((x.ip, x.port), (from.ip(), from.port()));
        assert!(binding_response(b"not stun at all", from).is_none());
        assert!(binding_response(&[], from).is_none());
    }
}
