//! The `/webrtc-signaling/0.0.1` message and its framing: an unsigned-varint
//! length, then a protobuf `Message { optional Type type = 1; optional string
//! data = 2 }` (specs `webrtc/webrtc.md`). Platform-free, so it is tested
//! natively.
//!
//! `type` is proto3 `optional` on purpose: js-libp2p's decoder leaves it
//! undefined when absent and then refuses the offer, whose type is 0. prost
//! writes an `Option<i32>` even when it is `Some(0)`.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use prost::Message as _;

/// The largest signalling message accepted or sent. An SDP offer with a few
/// dozen candidates is a few KiB; anything near this is not signalling.
pub const MAX_MESSAGE: usize = 64 * 1024;

#[derive(Clone, PartialEq, prost::Message)]
pub struct SignalMessage {
    #[prost(enumeration = "Kind", optional, tag = "1")]
    pub kind: Option<i32>,
    #[prost(string, optional, tag = "2")]
    pub data: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Kind {
    SdpOffer = 0,
    SdpAnswer = 1,
    IceCandidate = 2,
}

impl SignalMessage {
    pub fn new(kind: Kind, data: String) -> Self {
        Self { kind: Some(kind as i32), data: Some(data) }
    }

    /// The message's type; `None` when absent or unknown.
    pub fn message_kind(&self) -> Option<Kind> {
        self.kind.and_then(|k| Kind::try_from(k).ok())
    }
}

/// The framed bytes of `msg`, or an error when it is over [`MAX_MESSAGE`].
pub fn encode(msg: &SignalMessage) -> io::Result<Vec<u8>> {
    if msg.encoded_len() > MAX_MESSAGE {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "signalling message over 64 KiB"));
    }
    Ok(msg.encode_length_delimited_to_vec())
}

/// Writes one framed message (one write, then a flush).
pub async fn write_message<W: AsyncWrite + Unpin>(w: &mut W, msg: &SignalMessage) -> io::Result<()> {
    w.write_all(&encode(msg)?).await?;
    w.flush().await
}

/// Reads one framed message. `Ok(None)` is a clean end of stream before a
/// message starts; a length over [`MAX_MESSAGE`], a broken varint, a stream
/// that ends mid-message or bytes that are not the message are errors, and
/// the length is checked before anything is buffered.
pub async fn read_message<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Option<SignalMessage>> {
    let mut len: u64 = 0;
    for i in 0..10 {
        let mut b = [0u8; 1];
        if r.read(&mut b).await? == 0 {
            if i == 0 {
                return Ok(None);
            }
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        len |= u64::from(b[0] & 0x7f) << (7 * i);
        if len > MAX_MESSAGE as u64 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "signalling message over 64 KiB"));
        }
        if b[0] & 0x80 == 0 {
            let mut body = vec![0u8; len as usize];
            r.read_exact(&mut body).await?;
            let msg = SignalMessage::decode(body.as_slice())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("signalling message: {e}")))?;
            return Ok(Some(msg));
        }
    }
    Err(io::Error::new(io::ErrorKind::InvalidData, "signalling length varint too long"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    fn read_all(bytes: &[u8]) -> Vec<io::Result<Option<SignalMessage>>> {
        let mut r = futures::io::Cursor::new(bytes.to_vec());
        let mut out = Vec::new();
        loop {
            let m = block_on(read_message(&mut r));
            let stop = !matches!(m, Ok(Some(_)));
            out.push(m);
            if stop {
                return out;
            }
        }
    }

    #[test]
    fn offer_writes_its_zero_type_as_js_libp2p_needs() {
        let bytes = encode(&SignalMessage::new(Kind::SdpOffer, "v=0".into())).unwrap();
        // The fixture from the spec's implementations: length 7, field 1 = 0, field 2 = "v=0".
        assert_eq!(bytes, [0x07, 0x08, 0x00, 0x12, 0x03, b'v', b'=', b'0']);
    }

    #[test]
    fn messages_round_trip_and_a_clean_end_is_none() {
        let mut wire = Vec::new();
        let sent = [
            SignalMessage::new(Kind::SdpAnswer, "v=0\r\na=x".into()),
            SignalMessage::new(Kind::IceCandidate, r#"{"candidate":"c","sdpMid":"0","sdpMLineIndex":0}"#.into()),
            SignalMessage { kind: Some(Kind::IceCandidate as i32), data: None },
        ];
        let mut w = futures::io::Cursor::new(&mut wire);
        for m in &sent {
            block_on(write_message(&mut w, m)).unwrap();
        }
        let got = read_all(&wire);
        assert_eq!(got.len(), sent.len() + 1);
        for (g, s) in got.iter().zip(&sent) {
            assert_eq!(g.as_ref().unwrap().as_ref(), Some(s));
        }
        assert!(matches!(got.last(), Some(Ok(None))));
        assert_eq!(SignalMessage { kind: Some(7), data: None }.message_kind(), None);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        // Oversized: a length over the cap is refused before any body is read.
        let mut big = Vec::new();
        prost::encoding::encode_varint((MAX_MESSAGE + 1) as u64, &mut big);
        let e = read_all(&big).pop().unwrap().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        // A varint that never ends.
        assert!(read_all(&[0xff; 12]).pop().unwrap().is_err());
        // The stream ends inside the length, and inside the body.
        assert_eq!(read_all(&[0x80]).pop().unwrap().unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(read_all(&[0x05, 0x08]).pop().unwrap().unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        // A body that is not the message (field 2 as a varint with a bad wire type for a string).
        assert_eq!(read_all(&[0x02, 0x10, 0x01]).pop().unwrap().unwrap_err().kind(), io::ErrorKind::InvalidData);
        // Invalid UTF-8 in `data`.
        assert!(read_all(&[0x04, 0x12, 0x02, 0xc3, 0x28]).pop().unwrap().is_err());
        // Sending an oversized message is refused too.
        assert!(encode(&SignalMessage::new(Kind::SdpOffer, "x".repeat(MAX_MESSAGE))).is_err());
        // Random garbage never panics.
        let mut x: u32 = 12345;
        for _ in 0..2000 {
            let bytes: Vec<u8> = (0..(x % 40))
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let _ = read_all(&bytes);
        }
    }
}
