//! Framing for the request-response protocols: a 4-byte big-endian length,
//! then one protobuf message. The length is checked against the protocol's
//! limit before anything is allocated, so an oversized or lying length costs
//! the sender its stream, not our memory.

use std::io;
use std::marker::PhantomData;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response::Codec;
use prost::Message;

/// Status handshake: request and response are both `Status`.
pub const STATUS_PROTOCOL: StreamProtocol = StreamProtocol::new("/protoblock/status/1");
/// Blocks by range, mempool and peer exchange.
pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/protoblock/sync/1");

pub use protoblock_node::wire::Bounded;

pub async fn read_frame<T: AsyncRead + Unpin + Send, M: Bounded>(io: &mut T, max: usize) -> io::Result<M> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes over the {max}-byte limit"),
        ));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    M::decode_bounded(&buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

pub async fn write_frame<T: AsyncWrite + Unpin + Send, M: Message>(io: &mut T, m: &M, max: usize) -> io::Result<()> {
    let len = m.encoded_len();
    if len > max {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "message over the protocol limit"));
    }
    // One write for prefix and body: libp2p-webrtc's native stream glued a
    // lone 4-byte write to the next 16 KiB chunk and then refused the
    // over-size SCTP message, resetting every large response over WebRTC.
    let mut frame = Vec::with_capacity(4 + len);
    frame.extend_from_slice(&(len as u32).to_be_bytes());
    m.encode(&mut frame).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    io.write_all(&frame).await?;
    io.close().await
}

/// A request-response codec for one prost request and response type.
pub struct ProtoCodec<Req, Resp> {
    max_request: usize,
    max_response: usize,
    _t: PhantomData<fn() -> (Req, Resp)>,
}

impl<Req, Resp> ProtoCodec<Req, Resp> {
    pub fn new(max_request: usize, max_response: usize) -> Self {
        Self { max_request, max_response, _t: PhantomData }
    }
}

impl<Req, Resp> Clone for ProtoCodec<Req, Resp> {
    fn clone(&self) -> Self {
        Self::new(self.max_request, self.max_response)
    }
}

impl<Req, Resp> Codec for ProtoCodec<Req, Resp>
where
    Req: Bounded + Send + 'static,
    Resp: Bounded + Send + 'static,
{
    type Protocol = StreamProtocol;
    type Request = Req;
    type Response = Resp;

    async fn read_request<T: AsyncRead + Unpin + Send>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Req> {
        read_frame(io, self.max_request).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Resp> {
        read_frame(io, self.max_response).await
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Req,
    ) -> io::Result<()> {
        write_frame(io, &req, self.max_request).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        resp: Resp,
    ) -> io::Result<()> {
        write_frame(io, &resp, self.max_response).await
    }
}

#[cfg(test)]
mod tests {
    use protoblock_proto::v1 as pb;

    use super::*;

    #[test]
    fn round_trip_and_limits() {
        futures::executor::block_on(async {
            let s = pb::Status { protocol_version: 1, head_height: 7, ..Default::default() };
            let mut buf = futures::io::Cursor::new(Vec::new());
            write_frame(&mut buf, &s, 1024).await.unwrap();
            let bytes = buf.into_inner();
            let back: pb::Status = read_frame(&mut futures::io::Cursor::new(bytes.clone()), 1024).await.unwrap();
            assert_eq!(back, s);
            // A length over the limit is refused before reading the body.
            let err = read_frame::<_, pb::Status>(&mut futures::io::Cursor::new(bytes.clone()), 2).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            // A lying length (longer than the stream) is an error, not a hang.
            let mut lie = (1000u32).to_be_bytes().to_vec();
            lie.extend_from_slice(&[1, 2, 3]);
            assert!(read_frame::<_, pb::Status>(&mut futures::io::Cursor::new(lie), 4096).await.is_err());
            // Garbage body: a decode error.
            let mut junk = 4u32.to_be_bytes().to_vec();
            junk.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
            assert!(read_frame::<_, pb::Status>(&mut futures::io::Cursor::new(junk), 4096).await.is_err());
        });
    }

    /// A response of a million empty block entries fits the 4 MiB frame
    /// and would decode to 24 MiB of `Vec`s; it is refused on the count.
    #[test]
    fn entries_are_counted_before_decoding() {
        futures::executor::block_on(async {
            let frame = |r: &pb::SyncResponse| {
                let body = r.encode_to_vec();
                [(body.len() as u32).to_be_bytes().to_vec(), body].concat()
            };
            let flood = pb::SyncResponse {
                kind: Some(pb::sync_response::Kind::Blocks(pb::BlockRangeResponse { blocks: vec![vec![]; 1 << 20] })),
            };
            let bytes = frame(&flood);
            assert!(bytes.len() < 4 << 20);
            let err =
                read_frame::<_, pb::SyncResponse>(&mut futures::io::Cursor::new(bytes), 4 << 20).await.unwrap_err();
            assert!(err.to_string().contains("more than 256 entries"), "{err}");
            let ok = pb::SyncResponse {
                kind: Some(pb::sync_response::Kind::Blocks(pb::BlockRangeResponse { blocks: vec![vec![1]; 256] })),
            };
            assert_eq!(
                read_frame::<_, pb::SyncResponse>(&mut futures::io::Cursor::new(frame(&ok)), 4 << 20).await.unwrap(),
                ok
            );
            let rec = pb::PeerRecord { peer_id: vec![1], addrs: vec![vec![2]; 9] };
            let peers =
                pb::SyncResponse { kind: Some(pb::sync_response::Kind::Peers(pb::PeersResponse { peers: vec![rec] })) };
            assert!(
                read_frame::<_, pb::SyncResponse>(&mut futures::io::Cursor::new(frame(&peers)), 4096).await.is_err()
            );
        });
    }
}
