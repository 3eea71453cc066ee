//! Wire limits checked on the encoding, before a peer's frame is decoded:
//! repeated fields are counted first (`protoblock_proto::repeated`), since a
//! frame's byte limit alone lets two-byte empty entries decode to tens of
//! times their size. The driver's codec calls these; the fuzz targets too.

use protoblock_proto::repeated::{self, DecodeError};
use protoblock_proto::v1 as pb;

use crate::config::{MAX_ADDRS_SHARED, MAX_MEMPOOL_SYNC, MAX_PEERS_SHARED, MAX_RANGE};

/// A wire message whose repeated fields are bounded.
pub trait Bounded: prost::Message + Default {
    fn check_repeated(_bytes: &[u8]) -> Result<(), DecodeError> {
        Ok(())
    }

    /// Counts, then decodes.
    fn decode_bounded(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::check_repeated(bytes)?;
        Ok(Self::decode(bytes)?)
    }
}

impl Bounded for pb::Status {}

impl Bounded for pb::SyncRequest {
    fn check_repeated(bytes: &[u8]) -> Result<(), DecodeError> {
        // The mempool request's known ids.
        repeated::nested_at_most(bytes, 2, 1, MAX_MEMPOOL_SYNC)
    }
}

impl Bounded for pb::SyncResponse {
    fn check_repeated(bytes: &[u8]) -> Result<(), DecodeError> {
        repeated::nested_at_most(bytes, 1, 1, MAX_RANGE as usize)?;
        repeated::nested_at_most(bytes, 2, 1, MAX_MEMPOOL_SYNC)?;
        repeated::nested_at_most(bytes, 3, 1, MAX_PEERS_SHARED)?;
        // Each peer record's addresses.
        for peers in repeated::occurrences(bytes, 3)? {
            for record in repeated::occurrences(peers, 1)? {
                repeated::at_most(record, 2, MAX_ADDRS_SHARED)?;
            }
        }
        Ok(())
    }
}
