//! Block production: given the slot's oracle key, candidate txs and `now`,
//! build and sign a valid block. The result is inserted through
//! [`Chain::insert_block`] like any other block, so a producer bug cannot
//! put an invalid block on the chain.

use ed25519_dalek::SigningKey;
use prost::Message;
use protoblock_proto::v1 as pb;

use crate::block::{CheckedTx, apply_tx_at, tx_root};
use crate::chain::Chain;
use crate::crypto::{public_key_of, sign_block};
use crate::hash::Hash32;
use crate::params::BLOCK_VERSION;
use crate::state::Overlay;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProduceError {
    #[error("this key is not the producer for height {0}")]
    NotOurSlot(u64),
}

/// A produced block and the ids of the txs it carries.
#[derive(Debug, Clone)]
pub struct Produced {
    pub bytes: Vec<u8>,
    pub id: Hash32,
    pub height: u64,
    pub tx_ids: Vec<Hash32>,
}

/// Builds the next block on the head from `candidates` (encoded tx bytes and
/// their checked form, in preference order). Candidates that do not apply are
/// skipped; size and count limits are respected.
pub fn produce_block<'a>(
    chain: &Chain,
    candidates: impl IntoIterator<Item = (&'a [u8], &'a CheckedTx)>,
    key: &SigningKey,
    now_ms: u64,
) -> Result<Produced, ProduceError> {
    let head = chain.head();
    let height = head.height + 1;
    let genesis = chain.genesis();
    let params = chain.params();
    let me = public_key_of(key);
    if genesis.producer_for(height).0 != &me {
        return Err(ProduceError::NotOurSlot(height));
    }
    let ts = now_ms.max(head.timestamp_ms + 1);
    let mut ov = Overlay::new(chain.state());
    let mut taken = crate::hash::FastSet::default();
    let mut txs: Vec<pb::SignedTransaction> = Vec::new();
    let mut ids = Vec::new();
    let mut signed_ids = Vec::new();
    let mut size = 512; // header, signature and framing
    let mut has_data = false;
    for (bytes, tx) in candidates {
        if txs.len() >= params.max_txs_per_block {
            break;
        }
        if size + bytes.len() + 8 > params.max_block_bytes {
            continue;
        }
        let sp = ov.savepoint();
        if apply_tx_at(&mut ov, genesis, tx, ts, chain.replay(), &mut taken).is_err() {
            ov.rollback_to(sp);
            continue;
        }
        let Ok(st) = pb::SignedTransaction::decode(bytes) else {
            ov.rollback_to(sp);
            continue;
        };
        size += bytes.len() + 8;
        has_data |= tx.is_data;
        ids.push(tx.id);
        signed_ids.push((tx.id, tx.signer));
        txs.push(st);
    }
    let state_root = ov.commitment_after(chain.commitment()).root();
    let header = pb::BlockHeader {
        version: BLOCK_VERSION,
        height,
        prev_hash: head.id.0.to_vec(),
        timestamp_ms: ts,
        producer: me.0.to_vec(),
        tx_root: tx_root(signed_ids.iter().map(|(id, signer)| (id, signer))).0.to_vec(),
        state_root: state_root.0.to_vec(),
        kind: if has_data { pb::BlockKind::Data } else { pb::BlockKind::Normal } as i32,
    };
    let header_bytes = header.encode_to_vec();
    let signature = sign_block(key, &header_bytes).to_vec();
    let id = crate::hash::sha256(&header_bytes);
    let block = pb::Block { header: header_bytes, signature, txs };
    Ok(Produced { bytes: block.encode_to_vec(), id, height, tx_ids: ids })
}
