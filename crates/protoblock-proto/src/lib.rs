//! Protobuf types for Protoblock, generated from `proto/protoblock/v1/*.proto`.
//!
//! Hashed and signed payloads (`SignedTransaction.tx`, `Block.header`) are
//! `bytes` fields on purpose: ids and signatures are computed over the exact
//! bytes received, never over a re-encoding of the decoded message.

#![forbid(unsafe_code)]

/// Package `protoblock.v1`.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/protoblock.v1.rs"));
}

/// The libp2p rendezvous protocol's messages (package `rendezvous.pb`), for
/// the rendezvous point in `protoblock-net`.
pub mod rendezvous {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/rendezvous.pb.rs"));
}

pub mod repeated;

pub use prost::Message;
