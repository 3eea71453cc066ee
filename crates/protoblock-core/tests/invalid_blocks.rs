//! Every class of invalid block or tx is refused with its own error, and a
//! refused block leaves the chain exactly as it was.

mod common;

use common::*;
use ed25519_dalek::SigningKey;
use prost::Message;
use protoblock_core::block::{MAX_RUN_SIGNATURES, Signatures, verify_signatures, verify_signatures_run};
use protoblock_core::crypto::{KeyCache, KeyError, sign_block};
use protoblock_core::hash::{Hash32, sha256};
use protoblock_core::proto::v1 as pb;
use protoblock_core::{BlockError, Chain, ChainParams, Placement, TxError};
use protoblock_devnet::DevNet;

const MAX_BLOCK_BYTES: usize = 4096;
const MAX_TXS: usize = 16;
const STARTING: u64 = 1_000_000;

fn params() -> ChainParams {
    ChainParams {
        finality_depth: 8,
        max_block_bytes: MAX_BLOCK_BYTES,
        max_tx_bytes: MAX_BLOCK_BYTES / 2,
        max_txs_per_block: MAX_TXS,
        ..ChainParams::default()
    }
}

/// A chain two blocks in: block 1 starts the season and names users 0 and 1,
/// block 2 starts every team's week-1 game and carries a transfer.
struct Base {
    net: DevNet,
    params: ChainParams,
    blocks: Vec<Vec<u8>>,
    /// The transfer included in block 2, to replay.
    included_tx: Vec<u8>,
    /// Timestamp for the next block.
    ts: u64,
}

fn base() -> Base {
    let params = params();
    let net = DevNet::with_params(7, 4, params.clone());
    let g = net.genesis.clone();
    let mut chain = new_chain(&g, &params);
    let t1 = T0 + 1000;
    let (b1, _) = extend(
        &mut chain,
        &net.oracle,
        &[
            tx(&net.oracle, &g, t1, 0, season_start(SEASON)),
            tx(&net.users[0], &g, t1, 1, name("Bo.Jackson")),
            tx(&net.users[1], &g, t1, 2, name("coach-1")),
        ],
        t1,
    );
    let t2 = T0 + 2000;
    let included_tx = tx(&net.users[1], &g, t2, 0, transfer("Bo.Jackson", 10));
    let (b2, _) = extend(
        &mut chain,
        &net.oracle,
        &[tx(&net.oracle, &g, t2, 1, game_start(1, &net.teams)), included_tx.clone()],
        t2,
    );

    // Check the preconditions the cases rely on, rather than assuming them.
    let s = chain.state();
    let season = season_of(s);
    assert_eq!((season.season, season.week, season.phase()), (SEASON, 1, pb::SeasonPhase::InSeason));
    for t in &net.teams {
        assert_eq!(team_phase(s, t), pb::TeamPhase::InGame, "team {t}");
    }
    assert_eq!(net.players[0], ("ARI-P1".to_string(), "ARI".to_string()));
    assert_eq!(balance_of(s, &net.users[2]), STARTING);
    assert_eq!(balance_of(s, &net.users[0]), STARTING + 10);
    Base { net, params, blocks: vec![b1, b2], included_tx, ts: T0 + 3000 }
}

impl Base {
    fn chain(&self) -> Chain {
        replay(&self.net.genesis, &self.params, &self.blocks)
    }
    fn g(&self) -> &protoblock_core::Genesis {
        &self.net.genesis
    }
    fn user(&self, i: usize) -> &SigningKey {
        &self.net.users[i]
    }
    /// The honest next block: two user txs.
    fn honest(&self, chain: &Chain) -> Vec<u8> {
        let txs = [
            tx(self.user(2), self.g(), self.ts, 0, transfer("coach-1", 5)),
            tx(self.user(3), self.g(), self.ts, 1, name("coach-3")),
        ];
        let p = produce(chain, &self.net.oracle, &txs, self.ts);
        assert_eq!(p.tx_ids.len(), 2);
        p.bytes
    }
}

struct Case {
    name: &'static str,
    block: Vec<u8>,
    now: u64,
    expected: BlockError,
}

fn flip_bit(v: &mut [u8], i: usize) {
    v[i % v.len()] ^= 1 << (i % 8);
}

/// Encoding of the identity point, and of the point of order 2 (0, -1):
/// both small-order, both "weak".
const IDENTITY: [u8; 32] = {
    let mut a = [0u8; 32];
    a[0] = 1;
    a
};
const ORDER_TWO: [u8; 32] = {
    let mut a = [0xffu8; 32];
    a[0] = 0xec;
    a[31] = 0x7f;
    a
};

fn cases(b: &Base, chain: &Chain) -> Vec<Case> {
    let g = b.g();
    let oracle = &b.net.oracle;
    let head = chain.head();
    let ts = b.ts;
    let h = head.height + 1;
    let honest = b.honest(chain);
    let honest_header = header_of(&honest);
    let good_root = Hash32::from_slice(&honest_header.state_root).unwrap();
    let on_head = |txs: &[Vec<u8>]| build_on_head(chain, oracle, ts, txs, head.state_root);
    let user_tx = |u: usize, salt: u64, body: Body| tx(b.user(u), g, ts, salt, body);
    let mut cases = Vec::new();

    // --- header ---
    cases.push(Case {
        name: "bad header signature (bit flipped)",
        block: rebody(&honest, |blk| flip_bit(&mut blk.signature, 77)),
        now: ts,
        expected: BlockError::BadSignature,
    });
    cases.push(Case {
        name: "header names the oracle but is signed by another key",
        block: reheader(&honest, b.user(0), |_| {}),
        now: ts,
        expected: BlockError::BadSignature,
    });
    cases.push(Case {
        name: "unauthorised producer (a user key, self-signed)",
        block: reheader(&honest, b.user(0), |hd| hd.producer = pk(b.user(0)).to_vec()),
        now: ts,
        expected: BlockError::UnauthorizedProducer { height: h },
    });
    cases.push(Case {
        name: "wrong height",
        block: reheader(&honest, oracle, |hd| hd.height = h + 2),
        now: ts,
        expected: BlockError::WrongHeight { expected: h, got: h + 2 },
    });
    cases.push(Case {
        name: "broken prev hash (31 bytes)",
        block: reheader(&honest, oracle, |hd| {
            hd.prev_hash.pop();
        }),
        now: ts,
        expected: BlockError::BrokenPrevHash,
    });
    let nowhere = sha256(b"no such parent");
    cases.push(Case {
        name: "unknown parent",
        block: reheader(&honest, oracle, |hd| hd.prev_hash = nowhere.0.to_vec()),
        now: ts,
        expected: BlockError::UnknownParent(nowhere),
    });
    cases.push(Case {
        name: "tx_root mismatch (header re-signed with another root)",
        block: reheader(&honest, oracle, |hd| hd.tx_root = sha256(b"other root").0.to_vec()),
        now: ts,
        expected: BlockError::TxRootMismatch,
    });
    cases.push(Case {
        name: "tx_root mismatch (txs swapped under the signed header)",
        block: rebody(&honest, |blk| blk.txs.swap(0, 1)),
        now: ts,
        expected: BlockError::TxRootMismatch,
    });
    cases.push(Case {
        name: "tx_root mismatch (a tx dropped under the signed header)",
        block: rebody(&honest, |blk| {
            blk.txs.pop();
        }),
        now: ts,
        expected: BlockError::TxRootMismatch,
    });
    let wrong_root = sha256(b"wrong state");
    let honest_txs: Vec<Vec<u8>> =
        pb::Block::decode(honest.as_slice()).unwrap().txs.iter().map(|t| t.encode_to_vec()).collect();
    cases.push(Case {
        name: "state_root mismatch",
        block: build_on_head(chain, oracle, ts, &honest_txs, wrong_root),
        now: ts,
        expected: BlockError::StateRootMismatch { expected: good_root, got: wrong_root },
    });
    cases.push(Case {
        name: "state_root mismatch (empty block claiming the parent's root plus nothing)",
        block: build_on_head(chain, oracle, ts, &[], wrong_root),
        now: ts,
        // An empty block changes no committed key: the root stays the parent's.
        expected: BlockError::StateRootMismatch { expected: head.state_root, got: wrong_root },
    });
    cases.push(Case {
        name: "timestamp equal to the parent's",
        block: reheader(&honest, oracle, |hd| hd.timestamp_ms = head.timestamp_ms),
        now: ts,
        expected: BlockError::TimestampNotAfterParent { parent: head.timestamp_ms, got: head.timestamp_ms },
    });
    cases.push(Case {
        name: "timestamp before the parent's",
        block: reheader(&honest, oracle, |hd| hd.timestamp_ms = head.timestamp_ms - 1),
        now: ts,
        expected: BlockError::TimestampNotAfterParent { parent: head.timestamp_ms, got: head.timestamp_ms - 1 },
    });
    let drift = b.params.max_future_drift_ms;
    cases.push(Case {
        name: "timestamp too far in the future",
        block: honest.clone(),
        now: ts - drift - 1,
        expected: BlockError::TimestampInFuture { now: ts - drift - 1, got: ts },
    });
    cases.push(Case {
        name: "unsupported block version",
        block: reheader(&honest, oracle, |hd| hd.version = 2),
        now: ts,
        expected: BlockError::UnsupportedVersion(2),
    });
    cases.push(Case {
        name: "kind DATA without a data tx",
        block: reheader(&honest, oracle, |hd| hd.kind = pb::BlockKind::Data as i32),
        now: ts,
        expected: BlockError::MalformedHeader,
    });
    cases.push(Case {
        name: "state_root of the wrong length",
        block: reheader(&honest, oracle, |hd| hd.state_root.truncate(16)),
        now: ts,
        expected: BlockError::MalformedHeader,
    });
    cases.push(Case {
        name: "header bytes that do not decode",
        block: rebody(&honest, |blk| blk.header = vec![0xff; 8]),
        now: ts,
        expected: BlockError::MalformedHeader,
    });
    cases.push(Case {
        name: "block bytes that do not decode",
        block: vec![0xff; 12],
        now: ts,
        expected: BlockError::Malformed,
    });

    // --- size limits ---
    let many: Vec<Vec<u8>> = (0..40).map(|i| user_tx(2, 100 + i, transfer("coach-1", 1))).collect();
    let oversized = on_head(&many);
    assert!(oversized.len() > MAX_BLOCK_BYTES);
    cases.push(Case {
        name: "oversized block",
        expected: BlockError::Oversized { size: oversized.len(), max: MAX_BLOCK_BYTES },
        block: oversized,
        now: ts,
    });
    let too_many = on_head(&many[..MAX_TXS + 1]);
    assert!(too_many.len() <= MAX_BLOCK_BYTES);
    cases.push(Case {
        name: "too many txs",
        block: too_many,
        now: ts,
        expected: BlockError::TooManyTxs { count: MAX_TXS + 1, max: MAX_TXS },
    });

    // --- txs ---
    cases.push(Case {
        name: "tx with a bad signature (header untouched)",
        block: rebody(&honest, |blk| flip_bit(&mut blk.txs[1].signature, 3)),
        now: ts,
        expected: BlockError::Tx { index: 1, error: TxError::BadSignature },
    });
    let good = user_tx(3, 0, name("coach-3"));
    let mut forged = pb::SignedTransaction::decode(user_tx(2, 1, transfer("coach-1", 1)).as_slice()).unwrap();
    forged.signer = pk(b.user(3)).to_vec(); // claims another signer
    cases.push(Case {
        name: "tx signed by one key, claiming another",
        block: on_head(&[good.clone(), forged.encode_to_vec()]),
        now: ts,
        expected: BlockError::Tx { index: 1, error: TxError::BadSignature },
    });
    cases.push(Case {
        name: "tx signed for another chain",
        block: on_head(&[protoblock_devnet::sign_transaction(
            b.user(2),
            &sha256(b"another genesis"),
            ts * 1_000_000,
            transfer("coach-1", 1),
        )]),
        now: ts,
        expected: BlockError::Tx { index: 0, error: TxError::BadSignature },
    });
    cases.push(Case {
        name: "replayed tx (already in block 2)",
        block: on_head(std::slice::from_ref(&b.included_tx)),
        now: ts,
        expected: BlockError::Tx { index: 0, error: TxError::Replayed },
    });
    cases.push(Case {
        name: "the same tx twice in one block",
        block: on_head(&[good.clone(), good.clone()]),
        now: ts,
        expected: BlockError::Tx { index: 1, error: TxError::Replayed },
    });
    cases.push(Case {
        name: "duplicate name after folding (Bo.Jackson vs b0_jacks0n)",
        block: on_head(&[good.clone(), user_tx(2, 1, name("b0_jacks0n"))]),
        now: ts,
        expected: BlockError::Tx { index: 1, error: TxError::NameTaken },
    });
    cases.push(Case {
        name: "two registrations of look-alike names in one block",
        block: on_head(&[user_tx(2, 0, name("SLOB-8")), user_tx(3, 1, name("s1ob_b"))]),
        now: ts,
        expected: BlockError::Tx { index: 1, error: TxError::NameTaken },
    });
    cases.push(Case {
        name: "second name for a named key",
        block: on_head(&[user_tx(0, 0, name("another-name"))]),
        now: ts,
        expected: BlockError::Tx { index: 0, error: TxError::AlreadyNamed },
    });
    cases.push(Case {
        name: "transfer beyond balance",
        block: on_head(&[user_tx(2, 0, transfer("Bo.Jackson", STARTING + 1))]),
        now: ts,
        expected: BlockError::Tx {
            index: 0,
            error: TxError::InsufficientBalance { have: STARTING, need: STARTING + 1 },
        },
    });
    cases.push(Case {
        name: "double spend across two txs of one block",
        block: on_head(&[
            user_tx(2, 0, transfer("Bo.Jackson", STARTING - 100)),
            user_tx(2, 1, transfer("coach-1", 101)),
        ]),
        now: ts,
        expected: BlockError::Tx { index: 1, error: TxError::InsufficientBalance { have: 100, need: 101 } },
    });
    cases.push(Case {
        name: "transfer to an unregistered name",
        block: on_head(&[user_tx(2, 0, transfer("nobody-here", 1))]),
        now: ts,
        expected: BlockError::Tx { index: 0, error: TxError::UnknownName },
    });
    cases.push(Case {
        name: "projection after game start (team IN_GAME)",
        block: on_head(&[user_tx(0, 0, projection(1, "ARI-P1", 10))]),
        now: ts,
        expected: BlockError::Tx { index: 0, error: TxError::ProjectionLocked },
    });
    cases.push(Case {
        name: "projection by a key without a name",
        block: on_head(&[user_tx(2, 0, projection(1, "ARI-P1", 10))]),
        now: ts,
        expected: BlockError::Tx { index: 0, error: TxError::NoName },
    });
    let weak = |signer: [u8; 32]| {
        pb::SignedTransaction {
            tx: pb::Transaction { version: 1, nonce: ts * 1_000_000, body: Some(transfer("coach-1", 1)) }
                .encode_to_vec(),
            signer: signer.to_vec(),
            signature: vec![0; 64],
        }
        .encode_to_vec()
    };
    cases.push(Case {
        name: "weak signer key (identity point)",
        block: on_head(&[good.clone(), weak(IDENTITY)]),
        now: ts,
        expected: BlockError::Tx { index: 1, error: TxError::BadSignerKey(KeyError::Weak) },
    });
    cases.push(Case {
        name: "weak signer key (point of order 2)",
        block: on_head(&[weak(ORDER_TWO)]),
        now: ts,
        expected: BlockError::Tx { index: 0, error: TxError::BadSignerKey(KeyError::Weak) },
    });
    cases.push(Case {
        name: "signer key of the wrong length",
        block: on_head(&[rebody_tx(&good, |st| st.signer.truncate(31))]),
        now: ts,
        expected: BlockError::Tx { index: 0, error: TxError::BadSignerKey(KeyError::Length(31)) },
    });
    cases.push(Case {
        name: "non-oracle key signing a DataTransition",
        block: on_head(&[user_tx(0, 0, week_over(1))]),
        now: ts,
        expected: BlockError::Tx { index: 0, error: TxError::NotOracle },
    });
    let day = 24 * 3600 * 1000;
    cases.push(Case {
        name: "nonce too old (48 h + 1 ms before the block)",
        block: on_head(&[tx(b.user(2), g, ts - 2 * day - 1, 0, transfer("coach-1", 1))]),
        now: ts,
        expected: BlockError::Tx { index: 0, error: TxError::NonceTooOld },
    });
    cases.push(Case {
        name: "nonce too new (60 min + 1 ms after the block)",
        block: on_head(&[tx(b.user(2), g, ts + 3600 * 1000 + 1, 0, transfer("coach-1", 1))]),
        now: ts,
        expected: BlockError::Tx { index: 0, error: TxError::NonceTooNew },
    });
    let bad_version = {
        let t =
            pb::Transaction { version: 9, nonce: ts * 1_000_000, body: Some(transfer("coach-1", 1)) }.encode_to_vec();
        let sig = protoblock_core::crypto::sign_tx(b.user(2), &g.hash, &t).to_vec();
        pb::SignedTransaction { tx: t, signer: pk(b.user(2)).to_vec(), signature: sig }.encode_to_vec()
    };
    cases.push(Case {
        name: "unsupported tx version",
        block: on_head(&[bad_version]),
        now: ts,
        expected: BlockError::Tx { index: 0, error: TxError::UnsupportedVersion(9) },
    });
    let undecodable = {
        let t = vec![0xff, 0xff, 0xff];
        let sig = protoblock_core::crypto::sign_tx(b.user(2), &g.hash, &t).to_vec();
        pb::SignedTransaction { tx: t, signer: pk(b.user(2)).to_vec(), signature: sig }.encode_to_vec()
    };
    cases.push(Case {
        name: "tx bytes that do not decode",
        block: on_head(&[undecodable]),
        now: ts,
        expected: BlockError::Tx { index: 0, error: TxError::Malformed },
    });
    let no_body = {
        let t = pb::Transaction { version: 1, nonce: ts * 1_000_000, body: None }.encode_to_vec();
        let sig = protoblock_core::crypto::sign_tx(b.user(2), &g.hash, &t).to_vec();
        pb::SignedTransaction { tx: t, signer: pk(b.user(2)).to_vec(), signature: sig }.encode_to_vec()
    };
    cases.push(Case {
        name: "tx without a body",
        block: on_head(&[no_body]),
        now: ts,
        expected: BlockError::Tx { index: 0, error: TxError::MissingBody },
    });
    cases.push(Case {
        name: "oracle: game start for a week not in progress",
        block: on_head(&[tx(oracle, g, ts, 0, game_start(2, &b.net.teams))]),
        now: ts,
        expected: BlockError::Tx { index: 0, error: TxError::WrongWeek },
    });
    cases.push(Case {
        name: "oracle: second season start while in season",
        block: on_head(&[tx(oracle, g, ts, 0, season_start(SEASON + 1))]),
        now: ts,
        expected: BlockError::Tx { index: 0, error: TxError::BadTransition("season start out of order") },
    });
    cases.push(Case {
        name: "oracle: result above max points",
        block: on_head(&[tx(oracle, g, ts, 0, game_result(1, &[("ARI-P1", b.params.max_points + 1)]))]),
        now: ts,
        expected: BlockError::Tx { index: 0, error: TxError::PointsOutOfRange },
    });
    cases.push(Case {
        name: "oracle: two results for one player in one tx",
        block: on_head(&[tx(oracle, g, ts, 0, game_result(1, &[("ARI-P1", 3), ("ARI-P1", 4)]))]),
        now: ts,
        expected: BlockError::Tx { index: 0, error: TxError::ResultAlreadyPosted },
    });
    cases
}

fn rebody_tx(signed: &[u8], f: impl FnOnce(&mut pb::SignedTransaction)) -> Vec<u8> {
    let mut st = pb::SignedTransaction::decode(signed).unwrap();
    f(&mut st);
    st.encode_to_vec()
}

#[test]
fn every_invalid_class_is_refused_with_its_own_error_and_changes_nothing() {
    let b = base();
    let template = b.chain();
    let all = cases(&b, &template);
    assert!(all.len() >= 40, "{} cases", all.len());
    let mut variants = std::collections::BTreeSet::new();
    for case in all {
        // A fresh chain per case, so no case sees another's invalid-block cache.
        let mut chain = b.chain();
        let before = snapshot(&chain);
        let got = chain.insert_block(&case.block, case.now);
        match got {
            Err(e) => assert_eq!(e, case.expected, "case {:?}", case.name),
            Ok(u) => panic!("case {:?}: accepted as {:?}", case.name, u.placement),
        }
        assert_untouched(&chain, &before, case.name);
        assert_eq!(chain.side_len(), 0, "case {:?}: an invalid block is held", case.name);
        // Sending it again never makes it valid.
        let again = chain.insert_block(&case.block, case.now).unwrap_err();
        assert!(
            again == case.expected || again == BlockError::KnownInvalid,
            "case {:?} (second time): {again:?}",
            case.name
        );
        assert_untouched(&chain, &before, case.name);
        variants.insert(format!("{:?}", std::mem::discriminant(&case.expected)) + &tx_variant(&case.expected));
    }
    // At least the 17 required classes map to distinct variants.
    assert!(variants.len() >= 17, "only {} distinct variants: {variants:?}", variants.len());
}

/// The browser checks signatures in a Web Worker (`verify_signatures`) and
/// inserts what passed as `AlreadyChecked`. Between them the two halves must
/// enforce every rule: the worker refuses every case whose error is about a
/// signature, producer or key; every case it passes still gets its own error
/// from the chain and changes nothing; the honest block passes both halves.
#[test]
fn the_signature_worker_and_the_chain_split_the_rules_without_a_gap() {
    let b = base();
    let template = b.chain();
    let mut keys = KeyCache::default();
    let honest = b.honest(&template);
    assert_eq!(verify_signatures(&honest, b.g(), &mut keys), Ok(()));
    let mut chain = b.chain();
    let placed = chain.insert_block_with(&honest, b.ts, Signatures::AlreadyChecked).unwrap();
    assert_eq!(placed.placement, Placement::Extended);
    assert_eq!(placed.head_txs.len(), 2, "the new head's txs, for the node's new-head event");
    let (mut refused_by_worker, mut left_to_chain) = (0, 0);
    for case in cases(&b, &template) {
        let signature_rule = matches!(
            case.expected,
            BlockError::BadSignature
                | BlockError::UnauthorizedProducer { .. }
                | BlockError::Tx { error: TxError::BadSignature | TxError::BadSignerKey(_), .. }
        );
        let worker = verify_signatures(&case.block, b.g(), &mut keys);
        if signature_rule {
            assert!(worker.is_err(), "case {:?}: the worker passed a signature fault", case.name);
            refused_by_worker += 1;
            continue;
        }
        if worker.is_err() {
            // Refused for its encoding or size, which the chain refuses too.
            continue;
        }
        let mut chain = b.chain();
        let before = snapshot(&chain);
        let got = chain.insert_block_with(&case.block, case.now, Signatures::AlreadyChecked);
        assert_eq!(got.err(), Some(case.expected.clone()), "case {:?}", case.name);
        assert_untouched(&chain, &before, case.name);
        left_to_chain += 1;
    }
    assert!(refused_by_worker >= 5 && left_to_chain >= 20, "{refused_by_worker} / {left_to_chain}");
}

fn tx_variant(e: &BlockError) -> String {
    match e {
        BlockError::Tx { error, .. } => format!("/{:?}", std::mem::discriminant(error)),
        _ => String::new(),
    }
}

#[test]
fn a_future_block_is_not_condemned_and_is_accepted_once_its_time_comes() {
    let b = base();
    let mut chain = b.chain();
    let honest = b.honest(&chain);
    let early = b.ts - b.params.max_future_drift_ms - 1;
    assert!(matches!(chain.insert_block(&honest, early), Err(BlockError::TimestampInFuture { .. })));
    // Exactly at the drift limit it is fine.
    let u = chain.insert_block(&honest, b.ts - b.params.max_future_drift_ms).unwrap();
    assert_eq!(u.placement, Placement::Extended);
    assert_eq!(chain.head().id, block_id(&honest));
}

/// Copies of a valid block whose header (and so id) is unchanged but whose
/// signature or body was tampered with must not stop the genuine block.
#[test]
fn tampered_copies_do_not_poison_the_genuine_block() {
    let b = base();
    let probe = b.chain();
    let honest = b.honest(&probe);
    let other = key_from("attacker");
    let swapped_signer = rebody(&honest, |blk| {
        // Same tx bytes (same id, same tx_root), re-signed by another key.
        let st = &mut blk.txs[0];
        st.signer = pk(&other).to_vec();
        st.signature = protoblock_core::crypto::sign_tx(&other, &b.g().hash, &st.tx).to_vec();
    });
    let tampered = [
        ("block signature flipped", rebody(&honest, |blk| flip_bit(&mut blk.signature, 5))),
        (
            "block signature of another key",
            rebody(&honest, |blk| blk.signature = sign_block(&other, &blk.header).to_vec()),
        ),
        ("tx signature flipped", rebody(&honest, |blk| flip_bit(&mut blk.txs[0].signature, 9))),
        ("txs swapped", rebody(&honest, |blk| blk.txs.swap(0, 1))),
        (
            "tx appended",
            rebody(&honest, |blk| {
                let extra = pb::SignedTransaction::decode(
                    tx(&b.net.users[2], b.g(), b.ts, 55, transfer("coach-1", 1)).as_slice(),
                )
                .unwrap();
                blk.txs.push(extra);
            }),
        ),
        ("tx signer swapped", swapped_signer),
    ];
    for (what, bad) in &tampered {
        let mut chain = b.chain();
        assert_eq!(block_id(bad), block_id(&honest), "{what}: same header");
        let before = snapshot(&chain);
        assert!(chain.insert_block(bad, b.ts).is_err(), "{what}: accepted");
        assert_untouched(&chain, &before, what);
        let u = chain.insert_block(&honest, b.ts).unwrap_or_else(|e| panic!("{what}: genuine block refused: {e}"));
        assert_eq!(u.placement, Placement::Extended, "{what}");
        assert_eq!(chain.head().id, block_id(&honest));
        // The bad bytes are refused, or seen as the block already held.
        let after = snapshot(&chain);
        if let Ok(u) = chain.insert_block(bad, b.ts) {
            assert_eq!(u.placement, Placement::Duplicate, "{what}");
        }
        assert_untouched(&chain, &after, what);
    }
}

#[test]
fn round_robin_producers_with_two_oracle_keys() {
    let net = DevNet::with_params(11, 2, params());
    let second = key_from("second oracle");
    let g = multi_oracle_genesis(&net, &[&net.oracle, &second]);
    let p = params();
    let mut chain = new_chain(&g, &p);
    let t1 = T0 + 1000;
    // Height 1 belongs to key 0: key 1 is refused even though it is an oracle.
    let by_second = build_on_head(&chain, &second, t1, &[], chain.head().state_root);
    let before = snapshot(&chain);
    assert_eq!(chain.insert_block(&by_second, t1).unwrap_err(), BlockError::UnauthorizedProducer { height: 1 });
    assert_untouched(&chain, &before, "second oracle at height 1");
    // And a non-oracle key is refused too.
    let by_user = build_on_head(&chain, &net.users[0], t1, &[], chain.head().state_root);
    assert_eq!(chain.insert_block(&by_user, t1).unwrap_err(), BlockError::UnauthorizedProducer { height: 1 });
    assert_untouched(&chain, &before, "user key at height 1");
    // The producer refuses to produce out of its slot.
    assert!(protoblock_core::producer::produce_block(&chain, std::iter::empty(), &second, t1).is_err());
    // Key 0 at height 1, key 1 at height 2, key 0 at height 3.
    extend(&mut chain, &net.oracle, &[], t1);
    let by_first = build_on_head(&chain, &net.oracle, t1 + 1000, &[], chain.head().state_root);
    let before = snapshot(&chain);
    assert_eq!(chain.insert_block(&by_first, t1 + 1000).unwrap_err(), BlockError::UnauthorizedProducer { height: 2 });
    assert_untouched(&chain, &before, "first oracle at height 2");
    extend(&mut chain, &second, &[], t1 + 1000);
    // Either oracle may sign data transitions, whatever the slot.
    extend(&mut chain, &net.oracle, &[tx(&second, &g, t1 + 2000, 0, season_start(SEASON))], t1 + 2000);
    assert_eq!(season_of(chain.state()).phase(), pb::SeasonPhase::InSeason);
    assert_eq!(chain.head().height, 3);
}

#[test]
fn block_at_or_below_finality_is_refused() {
    let b = base();
    let mut chain = b.chain();
    let honest = b.honest(&chain);
    let at_zero = reheader(&honest, &b.net.oracle, |hd| {
        hd.height = 0;
    });
    let before = snapshot(&chain);
    assert_eq!(
        chain.insert_block(&at_zero, b.ts).unwrap_err(),
        BlockError::BelowFinality { height: 0, final_height: 0 }
    );
    assert_untouched(&chain, &before, "height 0");
}

#[test]
fn a_swapped_tx_signer_breaks_the_tx_root() {
    // The header commits to (tx id, signer) pairs, so a relay that re-signs a
    // tx's exact bytes with another key is caught before any state is touched.
    let b = base();
    let mut chain = b.chain();
    let honest = b.honest(&chain);
    let other = key_from("attacker");
    let swapped = rebody(&honest, |blk| {
        let st = &mut blk.txs[0];
        st.signer = pk(&other).to_vec();
        st.signature = protoblock_core::crypto::sign_tx(&other, &b.g().hash, &st.tx).to_vec();
    });
    let before = snapshot(&chain);
    assert_eq!(chain.insert_block(&swapped, b.ts).unwrap_err(), BlockError::TxRootMismatch);
    assert_untouched(&chain, &before, "signer swapped");
    assert_eq!(chain.insert_block(&honest, b.ts).unwrap().placement, Placement::Extended);
}

/// The worker checks a synced range with `verify_signatures_run` (many
/// blocks' txs in one batch). Its answer for every block must be exactly what
/// `verify_signatures` says of that block alone: runs of honest blocks only
/// (the one-batch path, and batches split at `MAX_RUN_SIGNATURES`), and runs
/// where every invalid case sits between honest blocks (the fallback path).
#[test]
fn a_run_checked_in_one_batch_answers_as_each_block_alone() {
    let b = base();
    let template = b.chain();
    let honest = b.honest(&template);
    let mut keys = KeyCache::default();
    let alone = |block: &[u8], keys: &mut KeyCache| verify_signatures(block, b.g(), keys).is_ok();

    let many = MAX_RUN_SIGNATURES / 2 + 3; // two txs each: more than one batch
    let run: Vec<&[u8]> = vec![honest.as_slice(); many];
    assert_eq!(verify_signatures_run(&run, b.g(), &mut keys), vec![true; many]);
    assert!(verify_signatures_run(&[], b.g(), &mut keys).is_empty());

    let cases = cases(&b, &template);
    let mut run: Vec<&[u8]> = vec![&honest];
    for case in &cases {
        run.push(&case.block);
        run.push(&honest);
    }
    let want: Vec<bool> = run.iter().map(|block| alone(block, &mut keys)).collect();
    assert!(want.iter().filter(|ok| !**ok).count() >= 5, "the cases include signature faults");
    assert_eq!(verify_signatures_run(&run, b.g(), &mut keys), want);
    // Each fault alone in a run of honest blocks.
    for case in &cases {
        let run: Vec<&[u8]> = vec![&honest, &case.block, &honest];
        let want = vec![true, alone(&case.block, &mut keys), true];
        assert_eq!(verify_signatures_run(&run, b.g(), &mut keys), want, "case {:?}", case.name);
    }
}

/// The sync planner reads only headers (`peek_header`). On any bytes,
/// honest, from the invalid cases, or damaged at random, it must never panic,
/// and whenever a full decode (`peek_block`) succeeds it must give the same
/// header; it may accept more (undecodable txs), which the chain refuses.
#[test]
fn a_header_peek_agrees_with_a_full_decode() {
    use proptest::prelude::*;
    use protoblock_core::block::{peek_block, peek_header};
    let b = base();
    let template = b.chain();
    let honest = b.honest(&template);
    let agree = |bytes: &[u8]| {
        let header = peek_header(bytes, &b.params);
        if let Ok((_, full, _)) = peek_block(bytes, &b.params) {
            assert_eq!(header.as_ref().ok(), Some(&full), "the peek disagrees with the full decode");
        }
        header.is_ok()
    };
    assert!(agree(&honest));
    for case in cases(&b, &template) {
        agree(&case.block);
    }
    assert!(!agree(b"\x0a\xff\xff\xff\xff\x0f"), "a header longer than the block");
    assert!(!agree(b"\x0b"), "a group tag");
    let mut runner = proptest::test_runner::TestRunner::default();
    let damage =
        (proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6), any::<prop::sample::Index>());
    runner
        .run(&damage, |(flips, cut)| {
            let mut bytes = honest.clone();
            for (i, v) in flips {
                let i = i.index(bytes.len());
                bytes[i] = v;
            }
            let cut = cut.index(bytes.len() + 1);
            agree(&bytes[..cut]);
            Ok(())
        })
        .unwrap();
}

/// A signature whose R carries a small-order point (valid by the cofactored
/// equation, refused by `verify_strict`) is judged by one rule everywhere:
/// the mempool's check, the block's own check, and a run in one batch at any
/// position, so nodes that batch differently cannot disagree about it.
#[test]
fn a_signature_with_a_small_order_part_is_judged_alike_on_every_path() {
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
    use curve25519_dalek::{Scalar, edwards::CompressedEdwardsY};
    use ed25519_dalek::Signature;
    use sha2::Digest;

    let b = base();
    let mut chain = b.chain();
    let honest = b.honest(&chain);
    let user = b.user(2);
    let plain = tx(user, b.g(), b.ts, 7, transfer("coach-1", 3));
    // Re-sign it by hand with R = rB + T, T of order 8.
    let torsioned = rebody_tx(&plain, |st| {
        let r = Scalar::from(0x5eed_u64) * Scalar::from(u64::MAX);
        let big_r: CompressedEdwardsY = (r * ED25519_BASEPOINT_POINT + EIGHT_TORSION[1]).compress();
        let mut h = sha2::Sha512::new();
        h.update(big_r.as_bytes());
        h.update(user.verifying_key().as_bytes());
        h.update(protoblock_core::crypto::tx_message(&b.g().hash, &st.tx));
        let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
        let s = r + k * user.to_scalar();
        st.signature = [big_r.as_bytes().as_slice(), s.as_bytes().as_slice()].concat();
    });
    let st = pb::SignedTransaction::decode(torsioned.as_slice()).unwrap();
    let sig = Signature::from_slice(&st.signature).unwrap();
    let msg = protoblock_core::crypto::tx_message(&b.g().hash, &st.tx);
    assert!(user.verifying_key().verify_strict(&msg, &sig).is_err(), "the cofactorless rule refuses it");

    assert!(protoblock_core::block::check_tx_bytes(&torsioned, b.g()).is_ok());
    let produced = produce(&chain, &b.net.oracle, std::slice::from_ref(&torsioned), b.ts);
    assert_eq!(produced.tx_ids.len(), 1, "the block carries it");
    let block = produced.bytes;
    let mut keys = KeyCache::default();
    assert_eq!(verify_signatures(&block, b.g(), &mut keys), Ok(()));
    for run in [vec![&block[..]], vec![&honest[..], &block[..]], vec![&block[..], &honest[..], &honest[..]]] {
        assert!(verify_signatures_run(&run, b.g(), &mut keys).iter().all(|ok| *ok));
    }
    chain.insert_block(&block, b.ts).expect("the chain accepts it too");
}
