// Derives from libp2p-webrtc-utils 0.5.0 `src/generated/webrtc.pb.rs` and `message.proto` (MIT,
// rust-libp2p; licence text in crates/protoblock-webrtc/LICENSE-libp2p-webrtc-websys).
// Changed: `FIN_ACK = 3` added (specs `webrtc/README.md`; js-libp2p `private-to-public/pb/message.proto`).

//! The frame on every `/webrtc` and WebRTC-direct data channel:
//! `message Message { optional Flag flag = 1; optional bytes message = 2; }`.

#[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
pub struct Message {
    #[prost(enumeration = "Flag", optional, tag = "1")]
    pub flag: ::core::option::Option<i32>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub message: ::core::option::Option<::prost::alloc::vec::Vec<u8>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum Flag {
    /// The sender will no longer send messages on the stream.
    Fin = 0,
    /// The sender will no longer read messages on the stream. Incoming data is
    /// being discarded on receipt.
    StopSending = 1,
    /// The sender abruptly terminates the sending part of the stream. The
    /// receiver can discard any data that it already received on that stream.
    Reset = 2,
    /// The sender received the remote's `FIN`.
    FinAck = 3,
}
