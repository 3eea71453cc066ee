//! Block and transaction validation.
//!
//! Checks run cheapest first, so garbage costs little: size, decoding,
//! linkage, producer, timestamp, header signature, tx decoding and keys,
//! merkle root, batched tx signatures, and only then the state transition
//! (on an overlay) and the state root.

use ed25519_dalek::{Signature, VerifyingKey};
use prost::Message;
use protoblock_proto::v1 as pb;

use crate::crypto::{self, KeyCache, PublicKey};
use crate::error::{BlockError, TxError};
use crate::fantasy::{TxContext, apply_tx};
use crate::genesis::Genesis;
use crate::hash::{FastSet, Hash32, sha256};
use crate::lthash::LtHash;
use crate::merkle::merkle_root;
use crate::params::{BLOCK_VERSION, ChainParams, TX_VERSION};
use crate::replay::ReplayIndex;
use crate::state::{Key, Overlay, StateMap, Value};

/// What the chain remembers of a block on or near the main chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockMeta {
    pub id: Hash32,
    pub height: u64,
    pub timestamp_ms: u64,
    pub state_root: Hash32,
}

/// A transaction whose encoding, key and (for blocks) signature are checked.
#[derive(Debug, Clone)]
pub struct CheckedTx {
    pub id: Hash32,
    pub signer: PublicKey,
    pub tx: pb::Transaction,
    pub is_data: bool,
}

/// A block that passed every check that does not need the parent's state.
#[derive(Debug, Clone)]
pub struct CheckedBlock {
    pub id: Hash32,
    pub header: pb::BlockHeader,
    pub prev: Hash32,
    pub state_root: Hash32,
    pub txs: Vec<CheckedTx>,
}

impl CheckedBlock {
    pub fn meta(&self) -> BlockMeta {
        BlockMeta {
            id: self.id,
            height: self.header.height,
            timestamp_ms: self.header.timestamp_ms,
            state_root: self.state_root,
        }
    }
}

/// The merkle leaf of a tx: its id bound to its signer. The tx id alone
/// (sha256 of the tx bytes) does not cover who signed, so a header committing
/// only to ids would let a relay swap in another signer's valid signature over
/// the same bytes under the same block id. Domain-separated from inner nodes.
pub fn tx_leaf(id: &Hash32, signer: &PublicKey) -> Hash32 {
    crate::hash::sha256_concat(&[b"protoblock/tx-leaf/v1", &id.0, &signer.0])
}

/// `BlockHeader.tx_root` for txs in block order.
pub fn tx_root<'a>(txs: impl IntoIterator<Item = (&'a Hash32, &'a PublicKey)>) -> Hash32 {
    let leaves: Vec<Hash32> = txs.into_iter().map(|(id, signer)| tx_leaf(id, signer)).collect();
    merkle_root(&leaves)
}

/// Decodes just enough to place a block: its id, height and parent.
pub fn peek_block(bytes: &[u8], params: &ChainParams) -> Result<(Hash32, pb::BlockHeader, pb::Block), BlockError> {
    if bytes.len() > params.max_block_bytes {
        return Err(BlockError::Oversized { size: bytes.len(), max: params.max_block_bytes });
    }
    // Counted before decoding: an empty tx entry is 2 bytes on the wire and
    // a 72-byte struct decoded (see `protoblock_proto::repeated`).
    let txs = protoblock_proto::repeated::count(bytes, 3).map_err(|_| BlockError::Malformed)?;
    if txs > params.max_txs_per_block {
        return Err(BlockError::TooManyTxs { count: txs, max: params.max_txs_per_block });
    }
    let block = pb::Block::decode(bytes).map_err(|_| BlockError::Malformed)?;
    let header = pb::BlockHeader::decode(block.header.as_slice()).map_err(|_| BlockError::MalformedHeader)?;
    Ok((sha256(&block.header), header, block))
}

/// The header of an encoded block, its txs skipped, not decoded: what the
/// sync planner needs (the height) of every block of a response, at a small
/// part of [`peek_block`]'s cost. A block whose txs do not decode passes
/// here and is refused by the chain (and its sender banned) instead.
pub fn peek_header(bytes: &[u8], params: &ChainParams) -> Result<pb::BlockHeader, BlockError> {
    use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};
    if bytes.len() > params.max_block_bytes {
        return Err(BlockError::Oversized { size: bytes.len(), max: params.max_block_bytes });
    }
    let mut buf = bytes;
    // As in a full decode, the last occurrence of the field wins.
    let mut header: &[u8] = &[];
    while !buf.is_empty() {
        let (tag, wire_type) = decode_key(&mut buf).map_err(|_| BlockError::Malformed)?;
        if tag == 1 {
            if wire_type != WireType::LengthDelimited {
                return Err(BlockError::Malformed);
            }
            let len = decode_varint(&mut buf).map_err(|_| BlockError::Malformed)?;
            let len = usize::try_from(len).ok().filter(|l| *l <= buf.len()).ok_or(BlockError::Malformed)?;
            (header, buf) = buf.split_at(len);
        } else {
            skip_field(wire_type, tag, &mut buf, DecodeContext::default()).map_err(|_| BlockError::Malformed)?;
        }
    }
    pb::BlockHeader::decode(header).map_err(|_| BlockError::MalformedHeader)
}

/// Decodes a signed tx and checks its size, key and version; not its signature.
pub fn decode_tx(
    st: &pb::SignedTransaction,
    params: &ChainParams,
) -> Result<(CheckedTx, VerifyingKey, Signature), TxError> {
    decode_tx_cached(st, params, &mut KeyCache::default())
}

/// [`decode_tx`] with parsed keys remembered across calls.
pub fn decode_tx_cached(
    st: &pb::SignedTransaction,
    params: &ChainParams,
    keys: &mut KeyCache,
) -> Result<(CheckedTx, VerifyingKey, Signature), TxError> {
    let size = st.tx.len() + st.signer.len() + st.signature.len();
    if size > params.max_tx_bytes {
        return Err(TxError::Oversized { size, max: params.max_tx_bytes });
    }
    let (signer, vk) = keys.parse(&st.signer).map_err(TxError::BadSignerKey)?;
    let sig = crypto::parse_signature(&st.signature).ok_or(TxError::BadSignature)?;
    let tx = pb::Transaction::decode(st.tx.as_slice()).map_err(|_| TxError::Malformed)?;
    if tx.version != TX_VERSION {
        return Err(TxError::UnsupportedVersion(tx.version));
    }
    let is_data = matches!(tx.body, Some(pb::transaction::Body::Data(_)));
    Ok((CheckedTx { id: sha256(&st.tx), signer, tx, is_data }, vk, sig))
}

/// Decodes and fully checks one signed tx on its own (mempool admission).
pub fn check_tx_bytes(bytes: &[u8], genesis: &Genesis) -> Result<CheckedTx, TxError> {
    let params = &genesis.params;
    if bytes.len() > params.max_tx_bytes + 16 {
        return Err(TxError::Oversized { size: bytes.len(), max: params.max_tx_bytes });
    }
    let st = pb::SignedTransaction::decode(bytes).map_err(|_| TxError::Malformed)?;
    let (tx, vk, sig) = decode_tx(&st, params)?;
    if !crypto::verify_one(&crypto::tx_message(&genesis.hash, &st.tx), &sig, &vk) {
        return Err(TxError::BadSignature);
    }
    Ok(tx)
}

/// Signs a tx body for the chain whose genesis hash is `genesis` and returns
/// the encoded `SignedTransaction`, the bytes a wallet submits and gossips.
/// The inverse of [`check_tx_bytes`].
pub fn sign_transaction(
    key: &ed25519_dalek::SigningKey,
    genesis: &Hash32,
    nonce: u64,
    body: pb::transaction::Body,
) -> Vec<u8> {
    let tx = pb::Transaction { version: TX_VERSION, nonce, body: Some(body) }.encode_to_vec();
    let signature = crypto::sign_tx(key, genesis, &tx).to_vec();
    pb::SignedTransaction { tx, signer: key.verifying_key().to_bytes().to_vec(), signature }.encode_to_vec()
}

/// Whether [`check_decoded_block`] verifies the block's signatures itself or
/// they were verified already, over these exact bytes, by
/// [`verify_signatures`] (the browser runs that in a Web Worker while the main
/// thread applies earlier blocks: signatures are half its sync time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signatures {
    Check,
    /// The header's signature was checked by [`check_header`] (before the
    /// block took a buffer slot); the txs' were not.
    HeaderChecked,
    AlreadyChecked,
}

/// The checks that cost one signature and need nothing but the genesis:
/// version, the producer the genesis schedules at this height, and that
/// producer's signature over the header. They come first for anything a
/// peer sends (before a parent lookup, a buffer slot or a backfill), so
/// junk costs its sender a ban and us one verification, and no block can
/// claim a place without the producer's key behind it.
pub fn check_header(header: &pb::BlockHeader, block: &pb::Block, genesis: &Genesis) -> Result<(), BlockError> {
    if header.version != BLOCK_VERSION {
        return Err(BlockError::UnsupportedVersion(header.version));
    }
    verify_header_signature(header, block, genesis)
}

/// Every signature in a block and nothing that needs the chain: the header's
/// producer (by height, from the genesis) and its signature, each tx's key and
/// the txs' signatures (batched). A block that passes may be inserted with
/// [`Signatures::AlreadyChecked`], but only as the very bytes checked here: the
/// block id covers the header, not the signatures.
pub fn verify_signatures(bytes: &[u8], genesis: &Genesis, keys: &mut KeyCache) -> Result<(), BlockError> {
    let params = &genesis.params;
    let (_, header, block) = peek_block(bytes, params)?;
    verify_header_signature(&header, &block, genesis)?;
    let (_, vks, sigs) = decode_txs(&block, params, keys)?;
    verify_tx_signatures(&block, genesis, &sigs, &vks)
}

/// Signatures in one batch of [`verify_signatures_run`], at most (a bound on
/// its buffers whatever the run's length).
pub const MAX_RUN_SIGNATURES: usize = 4096;

/// [`verify_signatures`] for a run of blocks, answering per block, with the
/// txs of many blocks in one batch. A batch of hundreds of signatures is
/// checked by one Pippenger multi-scalar multiplication, which costs about
/// half as much per signature as the Straus method a block's few dozen get.
/// A batch that fails is bisected by block, so the answers are exactly those
/// of [`verify_signatures`] on each block (tested), and a bad block costs its
/// run about 2 log2(blocks) smaller checks.
pub fn verify_signatures_run(blocks: &[&[u8]], genesis: &Genesis, keys: &mut KeyCache) -> Vec<bool> {
    let params = &genesis.params;
    let mut ok = vec![false; blocks.len()];
    let mut batch = RunBatch::default();
    for (i, bytes) in blocks.iter().enumerate() {
        let Ok((_, header, block)) = peek_block(bytes, params) else { continue };
        let Ok((producer_vk, header_sig)) = header_signature(&header, &block, genesis) else { continue };
        let Ok((_, vks, sigs)) = decode_txs(&block, params, keys) else { continue };
        if !batch.members.is_empty() && batch.sigs.len() + 1 + sigs.len() > MAX_RUN_SIGNATURES {
            batch.settle(&mut ok);
        }
        // The header's signature joins the batch too: one key (the
        // producer's) signs every header of a run, so its point is added
        // once whatever the run's length.
        let from = batch.sigs.len();
        crypto::push_block_message(&mut batch.buf, &block.header);
        batch.ends.push(batch.buf.len());
        batch.sigs.push(header_sig);
        batch.vks.push(producer_vk);
        for st in &block.txs {
            crypto::push_tx_message(&mut batch.buf, &genesis.hash, &st.tx);
            batch.ends.push(batch.buf.len());
        }
        batch.sigs.extend(sigs);
        batch.vks.extend(vks);
        batch.members.push((i, from..batch.sigs.len()));
    }
    batch.settle(&mut ok);
    ok
}

/// Messages written back to back into `buf`, each ending at its offset in
/// `ends` (ascending, as pushed after each message).
fn split_at_ends<'a>(buf: &'a [u8], ends: &[usize]) -> Vec<&'a [u8]> {
    ends.iter().scan(0, |start, &end| Some(&buf[std::mem::replace(start, end)..end])).collect()
}

/// The tx signatures of several blocks, back to back.
#[derive(Default)]
struct RunBatch {
    buf: Vec<u8>,
    ends: Vec<usize>,
    sigs: Vec<Signature>,
    vks: Vec<VerifyingKey>,
    /// (index in the run, its signatures' range here)
    members: Vec<(usize, core::ops::Range<usize>)>,
}

impl RunBatch {
    fn settle(&mut self, ok: &mut [bool]) {
        let refs = split_at_ends(&self.buf, &self.ends);
        self.settle_members(&refs, 0..self.members.len(), false, ok);
        self.buf.clear();
        self.ends.clear();
        self.sigs.clear();
        self.vks.clear();
        self.members.clear();
    }

    /// Bisection over the members (blocks) `m`: a batch that passes clears
    /// all of them; one that fails is split in halves. `known_bad` says the
    /// caller saw this range fail already (its left sibling passed), so the
    /// check is not repeated. One bad block in a run of n costs about
    /// 2 log2(n) batch checks of shrinking size, not n more.
    fn settle_members(&self, refs: &[&[u8]], m: core::ops::Range<usize>, known_bad: bool, ok: &mut [bool]) {
        if m.is_empty() {
            return;
        }
        let sigs = self.members[m.start].1.start..self.members[m.end - 1].1.end;
        let passes =
            !known_bad && crypto::verify_batch(&refs[sigs.clone()], &self.sigs[sigs.clone()], &self.vks[sigs.clone()]);
        if passes {
            for (i, _) in &self.members[m] {
                ok[*i] = true;
            }
            return;
        }
        if m.len() == 1 {
            return;
        }
        let mid = m.start + m.len() / 2;
        let left_ok = {
            self.settle_members(refs, m.start..mid, false, ok);
            self.members[m.start..mid].iter().all(|(i, _)| ok[*i])
        };
        // The whole range failed and its left half passed: the right half fails.
        self.settle_members(refs, mid..m.end, left_ok, ok);
    }
}

/// The block's txs decoded and their keys parsed, in block order, with their
/// signatures (not yet verified).
type DecodedTxs = (Vec<CheckedTx>, Vec<VerifyingKey>, Vec<Signature>);

fn decode_txs(block: &pb::Block, params: &ChainParams, keys: &mut KeyCache) -> Result<DecodedTxs, BlockError> {
    if block.txs.len() > params.max_txs_per_block {
        return Err(BlockError::TooManyTxs { count: block.txs.len(), max: params.max_txs_per_block });
    }
    let mut txs = Vec::with_capacity(block.txs.len());
    let mut vks = Vec::with_capacity(block.txs.len());
    let mut sigs = Vec::with_capacity(block.txs.len());
    for (index, st) in block.txs.iter().enumerate() {
        let (tx, vk, sig) = decode_tx_cached(st, params, keys).map_err(|error| BlockError::Tx { index, error })?;
        txs.push(tx);
        vks.push(vk);
        sigs.push(sig);
    }
    Ok((txs, vks, sigs))
}

/// The key the genesis schedules for the block's height, and the header's
/// signature, parsed (not yet verified).
fn header_signature(
    header: &pb::BlockHeader,
    block: &pb::Block,
    genesis: &Genesis,
) -> Result<(VerifyingKey, Signature), BlockError> {
    let (producer, producer_vk) = genesis.producer_for(header.height);
    if header.producer.as_slice() != producer.0.as_slice() {
        return Err(BlockError::UnauthorizedProducer { height: header.height });
    }
    let sig = crypto::parse_signature(&block.signature).ok_or(BlockError::BadSignature)?;
    Ok((*producer_vk, sig))
}

/// The header's signature, by the same rule as the txs' ([`crypto::verify_batch`]).
fn verify_header_signature(header: &pb::BlockHeader, block: &pb::Block, genesis: &Genesis) -> Result<(), BlockError> {
    let (vk, sig) = header_signature(header, block, genesis)?;
    match crypto::verify_one(&crypto::block_message(&block.header), &sig, &vk) {
        true => Ok(()),
        false => Err(BlockError::BadSignature),
    }
}

fn verify_tx_signatures(
    block: &pb::Block,
    genesis: &Genesis,
    sigs: &[Signature],
    vks: &[VerifyingKey],
) -> Result<(), BlockError> {
    // Every signed message, back to back in one buffer (one allocation per
    // block rather than one per tx).
    let mut buf = Vec::with_capacity(block.txs.iter().map(|st| crypto::TX_DOMAIN.len() + 32 + st.tx.len()).sum());
    let mut ends = Vec::with_capacity(block.txs.len());
    for st in &block.txs {
        crypto::push_tx_message(&mut buf, &genesis.hash, &st.tx);
        ends.push(buf.len());
    }
    let refs = split_at_ends(&buf, &ends);
    crypto::verify_batch_or_find(&refs, sigs, vks)
        .map_err(|index| BlockError::Tx { index, error: TxError::BadSignature })
}

/// Every check that needs only the parent's header.
pub fn check_block(
    bytes: &[u8],
    parent: &BlockMeta,
    genesis: &Genesis,
    now_ms: u64,
    keys: &mut KeyCache,
) -> Result<CheckedBlock, BlockError> {
    let params = &genesis.params;
    let (id, header, block) = peek_block(bytes, params)?;
    check_decoded_block(id, header, block, parent, genesis, now_ms, keys, Signatures::Check)
}

/// [`check_block`] on a block already decoded by [`peek_block`], so callers
/// that peeked to place it do not decode it twice.
#[allow(clippy::too_many_arguments)]
pub fn check_decoded_block(
    id: Hash32,
    header: pb::BlockHeader,
    block: pb::Block,
    parent: &BlockMeta,
    genesis: &Genesis,
    now_ms: u64,
    keys: &mut KeyCache,
    signatures: Signatures,
) -> Result<CheckedBlock, BlockError> {
    let params = &genesis.params;
    if header.version != BLOCK_VERSION {
        return Err(BlockError::UnsupportedVersion(header.version));
    }
    if header.height != parent.height + 1 {
        return Err(BlockError::WrongHeight { expected: parent.height + 1, got: header.height });
    }
    let prev = Hash32::from_slice(&header.prev_hash).ok_or(BlockError::BrokenPrevHash)?;
    if prev != parent.id {
        return Err(BlockError::BrokenPrevHash);
    }
    let (producer, _) = genesis.producer_for(header.height);
    if header.producer.as_slice() != producer.0.as_slice() {
        return Err(BlockError::UnauthorizedProducer { height: header.height });
    }
    if header.timestamp_ms <= parent.timestamp_ms {
        return Err(BlockError::TimestampNotAfterParent { parent: parent.timestamp_ms, got: header.timestamp_ms });
    }
    if header.timestamp_ms > now_ms.saturating_add(params.max_future_drift_ms) {
        return Err(BlockError::TimestampInFuture { now: now_ms, got: header.timestamp_ms });
    }
    if signatures == Signatures::Check {
        verify_header_signature(&header, &block, genesis)?;
    }
    let (txs, vks, sigs) = decode_txs(&block, params, keys)?;
    if Hash32::from_slice(&header.tx_root) != Some(tx_root(txs.iter().map(|t| (&t.id, &t.signer)))) {
        return Err(BlockError::TxRootMismatch);
    }
    let has_data = txs.iter().any(|t| t.is_data);
    let kind_data = header.kind == pb::BlockKind::Data as i32;
    if has_data != kind_data {
        return Err(BlockError::MalformedHeader);
    }
    if signatures != Signatures::AlreadyChecked {
        verify_tx_signatures(&block, genesis, &sigs, &vks)?;
    }
    let state_root = Hash32::from_slice(&header.state_root).ok_or(BlockError::MalformedHeader)?;
    Ok(CheckedBlock { id, prev, state_root, header, txs })
}

/// Applies one checked tx inside a block with timestamp `block_ts_ms`:
/// replay window, replay check (against the chain's index and the ids
/// already taken in this block or pool), then the fantasy rules. On success
/// the id is added to `taken`.
pub fn apply_tx_at(
    ov: &mut Overlay<'_>,
    genesis: &Genesis,
    tx: &CheckedTx,
    block_ts_ms: u64,
    replay: &ReplayIndex,
    taken: &mut FastSet<Hash32>,
) -> Result<(), TxError> {
    let params = &genesis.params;
    let nonce_ms = tx.tx.nonce / 1_000_000;
    if nonce_ms.saturating_add(params.nonce_max_age_ms) < block_ts_ms {
        return Err(TxError::NonceTooOld);
    }
    if nonce_ms > block_ts_ms.saturating_add(params.nonce_max_lead_ms) {
        return Err(TxError::NonceTooNew);
    }
    if replay.contains(&tx.id) || taken.contains(&tx.id) {
        return Err(TxError::Replayed);
    }
    let ctx = TxContext { params, oracle_keys: &genesis.oracle_keys };
    apply_tx(ov, &ctx, &tx.signer, &tx.tx)?;
    taken.insert(tx.id);
    Ok(())
}

/// The outcome of applying a block to its parent's state.
pub struct AppliedBlock {
    pub writes: Vec<(Key, Option<Value>)>,
    pub commitment: LtHash,
}

/// Runs a checked block's txs against the parent state and checks the root.
pub fn apply_block(
    block: &CheckedBlock,
    state: &StateMap,
    commitment: &LtHash,
    replay: &ReplayIndex,
    genesis: &Genesis,
) -> Result<AppliedBlock, BlockError> {
    // A tx writes one to three keys (a transfer two balances; the oracle's
    // results more, and the map grows for those).
    let mut ov = Overlay::with_capacity(state, 2 * block.txs.len() + 8);
    let ts = block.header.timestamp_ms;
    let mut taken = FastSet::with_capacity_and_hasher(block.txs.len(), Default::default());
    for (index, tx) in block.txs.iter().enumerate() {
        apply_tx_at(&mut ov, genesis, tx, ts, replay, &mut taken).map_err(|error| BlockError::Tx { index, error })?;
    }
    let (writes, after) = ov.finish(commitment);
    let got = after.root();
    if got != block.state_root {
        return Err(BlockError::StateRootMismatch { expected: got, got: block.state_root });
    }
    Ok(AppliedBlock { writes, commitment: after })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1 MiB block of empty tx entries would decode to 36 MiB of structs;
    /// it is refused on the count, before decoding.
    #[test]
    fn tx_entries_are_counted_before_the_block_is_decoded() {
        let params = ChainParams::default();
        let block = pb::Block { header: vec![], signature: vec![], txs: vec![Default::default(); 400_000] };
        let bytes = block.encode_to_vec();
        assert!(bytes.len() <= params.max_block_bytes);
        assert_eq!(
            peek_block(&bytes, &params).unwrap_err(),
            BlockError::TooManyTxs { count: 400_000, max: params.max_txs_per_block }
        );
    }
}
