//! Garbage into every decoder: an error (or a harmless Ok), never a panic,
//! and the chain untouched.

mod common;

use common::*;
use proptest::prelude::*;
use prost::Message;
use protoblock_core::block::{check_tx_bytes, peek_block};
use protoblock_core::mempool::{Mempool, MempoolConfig};
use protoblock_core::proto::v1 as pb;
use protoblock_core::{Chain, ChainLimits, ChainParams, Genesis, Placement};
use protoblock_devnet::{DevNet, SplitMix64};

struct Fixture {
    net: DevNet,
    params: ChainParams,
    blocks: Vec<Vec<u8>>,
    /// A valid next block on top of `blocks`.
    next: Vec<u8>,
    /// A valid tx for the mempool on top of `blocks`.
    tx: Vec<u8>,
}

fn fixture() -> Fixture {
    let params = ChainParams { finality_depth: 8, ..ChainParams::default() };
    let net = DevNet::with_params(99, 4, params.clone());
    let mut c = new_chain(&net.genesis, &params);
    let mut rng = SplitMix64(4);
    let blocks = grow(&mut c, &net, 5, 1000, 3, 4, &mut rng);
    let ts = c.head().timestamp_ms + 1000;
    let next_txs = protoblock_devnet::user_txs(&net, &c, ts, 4, &mut rng);
    assert!(!next_txs.is_empty());
    let next = produce(&c, &net.oracle, &next_txs, ts).bytes;
    assert!(!pb::Block::decode(next.as_slice()).unwrap().txs.is_empty());
    let tx = next_txs[0].clone();
    Fixture { net, params, blocks, next, tx }
}

fn chain(f: &Fixture) -> Chain {
    replay(&f.net.genesis, &f.params, &f.blocks)
}

fn now(f: &Fixture) -> u64 {
    block_ts(&f.next)
}

/// Feeds `bytes` to every decoder. Returns whether the chain accepted it.
fn feed_all(f: &Fixture, c: &mut Chain, mp: &mut Mempool, bytes: &[u8]) -> bool {
    let before = snapshot(c);
    let _ = peek_block(bytes, &f.params);
    let _ = check_tx_bytes(bytes, &f.net.genesis);
    let _ = Genesis::from_bytes(bytes);
    let pool_before: Vec<_> = mp.iter().map(|p| p.tx.id).collect();
    if mp.insert(bytes, c, now(f)).is_err() {
        let pool_after: Vec<_> = mp.iter().map(|p| p.tx.id).collect();
        assert_eq!(pool_before, pool_after, "a refused tx changed the pool");
    }
    let _ = pb::Status::decode(bytes);
    let _ = pb::SyncRequest::decode(bytes);
    let _ = pb::SyncResponse::decode(bytes);
    let _ = pb::BlockRangeRequest::decode(bytes);
    let _ = pb::BlockRangeResponse::decode(bytes);
    let _ = pb::MempoolRequest::decode(bytes);
    let _ = pb::MempoolResponse::decode(bytes);
    let _ = pb::PeersRequest::decode(bytes);
    let _ = pb::PeersResponse::decode(bytes);
    let _ = pb::Block::decode(bytes);
    let _ = pb::BlockHeader::decode(bytes);
    let _ = pb::SignedTransaction::decode(bytes);
    let _ = pb::Transaction::decode(bytes);
    let _ = pb::Genesis::decode(bytes);
    let _ = pb::BlockUndo::decode(bytes);
    let _ = pb::AccountState::decode(bytes);
    let _ = pb::SyncRequest::decode_length_delimited(bytes);
    let _ = pb::SyncResponse::decode_length_delimited(bytes);
    match c.insert_block(bytes, now(f)) {
        Ok(u) => {
            // Only the genuine next block (or a harmless re-encoding of it) can pass.
            assert_eq!(block_id(bytes), block_id(&f.next));
            assert!(matches!(u.placement, Placement::Extended | Placement::Duplicate));
            true
        }
        Err(_) => {
            assert_untouched(c, &before, "refused garbage");
            false
        }
    }
}

/// A mutation of a valid encoding.
#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: prop::sample::Index, bit: u8 },
    Set { at: prop::sample::Index, byte: u8 },
    Truncate { at: prop::sample::Index },
    Insert { at: prop::sample::Index, bytes: Vec<u8> },
    Remove { at: prop::sample::Index, len: usize },
    Append { bytes: Vec<u8> },
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<prop::sample::Index>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        2 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Set { at, byte }),
        1 => any::<prop::sample::Index>().prop_map(|at| Mutation::Truncate { at }),
        1 => (any::<prop::sample::Index>(), prop::collection::vec(any::<u8>(), 1..12)).prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        1 => (any::<prop::sample::Index>(), 1usize..12).prop_map(|(at, len)| Mutation::Remove { at, len }),
        1 => prop::collection::vec(any::<u8>(), 1..12).prop_map(|bytes| Mutation::Append { bytes }),
    ]
}

fn mutate(mut v: Vec<u8>, ms: &[Mutation]) -> Vec<u8> {
    for m in ms {
        if v.is_empty() {
            v.push(0);
        }
        match m {
            Mutation::Flip { at, bit } => {
                let i = at.index(v.len());
                v[i] ^= 1 << bit;
            }
            Mutation::Set { at, byte } => {
                let i = at.index(v.len());
                v[i] = *byte;
            }
            Mutation::Truncate { at } => v.truncate(at.index(v.len())),
            Mutation::Insert { at, bytes } => {
                let i = at.index(v.len() + 1);
                v.splice(i..i, bytes.iter().copied());
            }
            Mutation::Remove { at, len } => {
                let i = at.index(v.len());
                let end = (i + len).min(v.len());
                v.drain(i..end);
            }
            Mutation::Append { bytes } => v.extend_from_slice(bytes),
        }
    }
    v
}

thread_local! {
    static FIXTURE: Fixture = fixture();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_into_every_decoder(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        FIXTURE.with(|f| {
            let mut c = chain(f);
            let mut mp = Mempool::new(MempoolConfig::default());
            assert!(!feed_all(f, &mut c, &mut mp, &bytes), "random bytes made a valid block");
            // Random bytes are not a valid tx either.
            assert!(mp.is_empty());
        });
    }

    #[test]
    fn protobuf_shaped_garbage(fields in prop::collection::vec((1u32..20, 0u8..6, prop::collection::vec(any::<u8>(), 0..40)), 0..12)) {
        // Well-formed tag/wire-type framing with arbitrary payloads reaches the
        // decoders' field handling rather than failing on the first byte.
        let mut bytes = Vec::new();
        for (field, wt, payload) in &fields {
            let wt = (*wt % 6) as u64;
            prost::encoding::encode_key(*field, prost::encoding::WireType::try_from(wt).unwrap_or(prost::encoding::WireType::LengthDelimited), &mut bytes);
            match wt {
                0 => prost::encoding::encode_varint(payload.iter().fold(0u64, |a, b| a.wrapping_mul(251).wrapping_add(*b as u64)), &mut bytes),
                1 => bytes.extend_from_slice(&[payload.first().copied().unwrap_or(0); 8]),
                5 => bytes.extend_from_slice(&[payload.first().copied().unwrap_or(0); 4]),
                _ => {
                    prost::encoding::encode_varint(payload.len() as u64, &mut bytes);
                    bytes.extend_from_slice(payload);
                }
            }
        }
        FIXTURE.with(|f| {
            let mut c = chain(f);
            let mut mp = Mempool::new(MempoolConfig::default());
            assert!(!feed_all(f, &mut c, &mut mp, &bytes));
        });
    }

    #[test]
    fn mutated_blocks_never_panic_and_never_poison_the_genuine_block(ms in prop::collection::vec(arb_mutation(), 1..4)) {
        FIXTURE.with(|f| {
            let mut c = chain(f);
            let mut mp = Mempool::new(MempoolConfig::default());
            let bad = mutate(f.next.clone(), &ms);
            let accepted = feed_all(f, &mut c, &mut mp, &bad);
            if !accepted {
                // The genuine block still goes in.
                let u = c.insert_block(&f.next, now(f)).expect("genuine block refused after a mutated copy");
                assert_eq!(u.placement, Placement::Extended);
            }
            let fresh = replay(&f.net.genesis, &f.params, &[f.blocks.clone(), vec![f.next.clone()]].concat());
            assert_same_chain(&c, &fresh, "after the mutated copy and the genuine block");
        });
    }

    #[test]
    fn mutated_txs_never_panic(ms in prop::collection::vec(arb_mutation(), 1..4)) {
        FIXTURE.with(|f| {
            let c = chain(f);
            let bad = mutate(f.tx.clone(), &ms);
            let _ = check_tx_bytes(&bad, &f.net.genesis);
            let mut mp = Mempool::new(MempoolConfig::default());
            let before = snapshot(&c);
            match mp.insert(&bad, &c, now(f)) {
                Ok(_) => assert_eq!(mp.len(), 1),
                Err(_) => assert!(mp.is_empty()),
            }
            assert_untouched(&c, &before, "mempool insert");
            // The genuine tx is still admitted (unless the mutation kept its id).
            match mp.insert(&f.tx, &c, now(f)) {
                Ok(_) => {}
                Err(e) => assert_eq!(e, protoblock_core::mempool::MempoolError::Duplicate),
            }
        });
    }

    #[test]
    fn mutated_genesis_never_panics(ms in prop::collection::vec(arb_mutation(), 1..4)) {
        FIXTURE.with(|f| {
            let bad = mutate(f.net.genesis.bytes.clone(), &ms);
            if let Ok(g) = Genesis::from_bytes(&bad) {
                // Whatever decodes is usable: a chain starts on it.
                let (c, batch) = Chain::new(g, ChainLimits::default()).expect("checked genesis starts a chain");
                assert_eq!(batch.state.len(), c.state().len());
                assert_eq!(c.commitment().root(), c.state().commitment().root());
            }
        });
    }
}

#[test]
fn oversized_input_is_refused_before_decoding() {
    let f = fixture();
    let mut c = chain(&f);
    let before = snapshot(&c);
    let big = vec![0u8; f.params.max_block_bytes + 1];
    assert_eq!(
        c.insert_block(&big, now(&f)).unwrap_err(),
        protoblock_core::BlockError::Oversized { size: big.len(), max: f.params.max_block_bytes }
    );
    assert_untouched(&c, &before, "oversized");
    let big_tx = vec![0u8; f.params.max_tx_bytes + 17];
    assert!(matches!(check_tx_bytes(&big_tx, &f.net.genesis), Err(protoblock_core::TxError::Oversized { .. })));
}

#[test]
fn pathological_encodings() {
    let f = fixture();
    let mut c = chain(&f);
    let mut mp = Mempool::new(MempoolConfig::default());
    let cases: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x0a],                               // field 1, length-delimited, no length
        vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f], // a 4 GiB length
        vec![0x0a; 64],
        [vec![0x08], vec![0xff; 10]].concat(), // an over-long varint
        [vec![0x08], vec![0x80; 11]].concat(),
        vec![0x00],       // field number 0
        vec![0x0b, 0x0c], // group start/end
        vec![0x0f],       // invalid wire type
        {
            // A block whose header field is a valid header of a block at u64::MAX height.
            let h = pb::BlockHeader {
                height: u64::MAX,
                timestamp_ms: u64::MAX,
                prev_hash: vec![0; 32],
                ..Default::default()
            };
            pb::Block { header: h.encode_to_vec(), ..Default::default() }.encode_to_vec()
        },
        {
            // A block linking to the genesis at height 1 with every field empty.
            let h = pb::BlockHeader { height: 1, prev_hash: f.net.genesis.hash.0.to_vec(), ..Default::default() };
            pb::Block { header: h.encode_to_vec(), ..Default::default() }.encode_to_vec()
        },
        {
            // Nested length-delimited fields, 200 levels deep (prost limits recursion).
            let mut v = vec![];
            for _ in 0..200 {
                let mut w = vec![0x1a];
                prost::encoding::encode_varint(v.len() as u64, &mut w);
                w.extend_from_slice(&v);
                v = w;
            }
            v
        },
    ];
    for bytes in &cases {
        assert!(!feed_all(&f, &mut c, &mut mp, bytes), "{bytes:02x?}");
    }
    assert!(mp.is_empty());
}

/// The rules travel in the genesis: a genesis without them is refused, one
/// with rules out of bounds is refused naming the field, and two genesis that
/// differ only in their rules are two chains (their hashes differ), so a node
/// never validates with other rules than its peers.
#[test]
fn a_genesis_states_its_rules_and_its_hash_covers_them() {
    use protoblock_core::genesis::GenesisError;
    let net = DevNet::new(5, 2);
    assert_eq!(net.genesis.params, ChainParams::default());

    let mut none = net.genesis.message.clone();
    none.params = None;
    assert_eq!(Genesis::from_bytes(&none.encode_to_vec()).err(), Some(GenesisError::NoParams));

    let mut huge = net.genesis.message.clone();
    huge.params.as_mut().unwrap().max_block_bytes = 1 << 40;
    match Genesis::from_bytes(&huge.encode_to_vec()) {
        Err(GenesisError::BadParams(e)) => assert_eq!(e.field, "max_block_bytes"),
        other => panic!("a 1 TiB block limit was not refused: {other:?}"),
    }

    let other = DevNet::with_params(5, 2, ChainParams { finality_depth: 7, ..ChainParams::default() });
    assert_eq!(other.genesis.params.finality_depth, 7);
    assert_ne!(other.genesis.hash, net.genesis.hash);
    let (chain, _) = Chain::new(other.genesis.clone(), ChainLimits::default()).unwrap();
    assert_eq!(chain.params().finality_depth, 7, "the chain validates by its genesis's rules");
}
