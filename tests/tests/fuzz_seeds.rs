//! Writes the fuzz targets' seed corpus (`fuzz/corpus/<target>/`): valid
//! inputs of each kind, so the fuzzer starts from the real formats. Run by
//! hand when the formats change:
//! `cargo test -p protoblock-tests --test fuzz_seeds -- --ignored`.

use std::path::Path;

use prost::Message;
use protoblock_core::proto::v1 as pb;
use protoblock_devnet::{DevNet, generate_chain, sign_transaction};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

#[test]
#[ignore = "writes the committed seed corpus; run by hand"]
fn write_fuzz_seeds() {
    let net = DevNet::new(1, 4);
    let blocks = generate_chain(&net, 3, 2);
    for (i, b) in blocks.iter().enumerate() {
        write("block", &format!("dev-block-{i}"), b);
    }
    let net2 = DevNet::new(2, 4);
    let tx = sign_transaction(
        &net2.users[0],
        &net2.genesis.hash,
        (protoblock_devnet::DEV_GENESIS_TIME_MS + 1_000) * 1_000_000,
        pb::transaction::Body::Name(pb::NameRegistration { fantasy_name: "seed".into() }),
    );
    write("tx", "name-registration", &tx);
    let range = pb::SyncResponse {
        kind: Some(pb::sync_response::Kind::Blocks(pb::BlockRangeResponse { blocks: blocks.clone() })),
    };
    write("wire", "blocks-response", &range.encode_to_vec());
    let peers = pb::SyncResponse {
        kind: Some(pb::sync_response::Kind::Peers(pb::PeersResponse {
            peers: vec![pb::PeerRecord { peer_id: vec![1; 38], addrs: vec![b"/ip4/127.0.0.1/tcp/1".to_vec()] }],
        })),
    };
    write("wire", "peers-response", &peers.encode_to_vec());
    let req = pb::SyncRequest {
        kind: Some(pb::sync_request::Kind::Mempool(pb::MempoolRequest { known_ids: vec![vec![7; 32]], max: 10 })),
    };
    write("wire", "mempool-request", &req.encode_to_vec());
    let status = pb::Status {
        protocol_version: 1,
        genesis_hash: net.genesis.hash.0.to_vec(),
        head_height: 3,
        head_hash: vec![0; 32],
        final_height: 0,
        lowest_height: 2,
    };
    write("wire", "status", &status.encode_to_vec());
    write("stored", "genesis", &net.genesis.bytes);
    // A signalling offer as the codec frames it (varint length, then the message).
    let offer = protoblock_webrtc::signal_codec::SignalMessage::new(
        protoblock_webrtc::signal_codec::Kind::SdpOffer,
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n".into(),
    );
    write("signal", "offer", &protoblock_webrtc::signal_codec::encode(&offer).unwrap());
    write("planner", "mixed", &[0, 1, 10, 4, 1, 0, 5, 0, 2, 1, 0, 0, 4, 4, 2, 2, 1, 1, 9, 0, 5, 0, 0, 0, 6, 1, 0, 0]);
}
