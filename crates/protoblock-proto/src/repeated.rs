//! Counting a repeated field on the encoding, before decoding it.
//!
//! A size limit alone does not bound what decoding allocates: an empty
//! entry of a repeated message or `bytes` field is two bytes on the wire and
//! a struct of tens of bytes once decoded (a 4 MiB frame of empty entries
//! decodes to hundreds of MiB). Every decoder of peer input therefore counts
//! the entries first, which costs one pass without allocating.

use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};

/// The encoding does not parse, or a repeated field has too many entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    Malformed(String),
    TooMany { field: String, max: usize },
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Malformed(e) => write!(f, "malformed protobuf: {e}"),
            Self::TooMany { field, max } => write!(f, "field {field} has more than {max} entries"),
        }
    }
}

impl std::error::Error for DecodeError {}

impl From<prost::DecodeError> for DecodeError {
    fn from(e: prost::DecodeError) -> Self {
        Self::Malformed(e.to_string())
    }
}

/// The length-delimited payloads of every top-level occurrence of field
/// `tag` in `buf`, in order (prost merges repeated occurrences of a message
/// field, so a bound must hold over all of them together).
pub fn occurrences(mut buf: &[u8], tag: u32) -> Result<Vec<&[u8]>, DecodeError> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let (t, wire_type) = decode_key(&mut buf)?;
        if t == tag && wire_type == WireType::LengthDelimited {
            let len = decode_varint(&mut buf)?;
            let len = usize::try_from(len).ok().filter(|l| *l <= buf.len()).ok_or_else(truncated)?;
            let (payload, rest) = buf.split_at(len);
            out.push(payload);
            buf = rest;
        } else {
            skip_field(wire_type, t, &mut buf, DecodeContext::default())?;
        }
    }
    Ok(out)
}

/// How many times field `tag` occurs at the top level of `buf` (a repeated
/// field has one occurrence per entry, packed scalars aside).
pub fn count(mut buf: &[u8], tag: u32) -> Result<usize, DecodeError> {
    let mut n = 0usize;
    while !buf.is_empty() {
        let (t, wire_type) = decode_key(&mut buf)?;
        n += usize::from(t == tag);
        skip_field(wire_type, t, &mut buf, DecodeContext::default())?;
    }
    Ok(n)
}

/// Fails unless field `tag` occurs at most `max` times in `buf`.
pub fn at_most(buf: &[u8], tag: u32, max: usize) -> Result<(), DecodeError> {
    match count(buf, tag)? {
        n if n <= max => Ok(()),
        _ => Err(DecodeError::TooMany { field: tag.to_string(), max }),
    }
}

/// Fails unless the entries of repeated field `inner`, summed over every
/// occurrence of message field `outer` in `buf`, are at most `max`.
pub fn nested_at_most(buf: &[u8], outer: u32, inner: u32, max: usize) -> Result<(), DecodeError> {
    let mut n = 0usize;
    for payload in occurrences(buf, outer)? {
        n += count(payload, inner)?;
        if n > max {
            return Err(DecodeError::TooMany { field: format!("{outer}.{inner}"), max });
        }
    }
    Ok(())
}

fn truncated() -> DecodeError {
    DecodeError::Malformed("a length-delimited field runs past the end".into())
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::v1 as pb;

    #[test]
    fn counts_match_what_decoding_finds() {
        let r = pb::BlockRangeResponse { blocks: vec![vec![]; 1000] };
        let bytes = r.encode_to_vec();
        assert_eq!(bytes.len(), 2000, "an empty entry is two bytes");
        assert_eq!(count(&bytes, 1).unwrap(), 1000);
        assert!(at_most(&bytes, 1, 999).is_err() && at_most(&bytes, 1, 1000).is_ok());
        // Two occurrences of the oneof's message field merge when decoded.
        let one = pb::SyncResponse { kind: Some(pb::sync_response::Kind::Blocks(r.clone())) }.encode_to_vec();
        let twice = [one.clone(), one].concat();
        let decoded = pb::SyncResponse::decode(twice.as_slice()).unwrap();
        let Some(pb::sync_response::Kind::Blocks(b)) = decoded.kind else { panic!("blocks") };
        assert_eq!(b.blocks.len(), 2000);
        assert!(nested_at_most(&twice, 1, 1, 1999).is_err());
        assert!(nested_at_most(&twice, 1, 1, 2000).is_ok());
        // Truncated and garbage input is an error, not a panic.
        assert!(count(&twice[..twice.len() - 1], 1).is_err());
        assert!(occurrences(&[0x0a, 0xff, 0x01], 1).is_err());
    }
}
