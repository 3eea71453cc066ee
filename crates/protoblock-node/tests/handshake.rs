//! The status handshake on the real service, in virtual time: a peer whose
//! handshake never completes (our request and its own both lost, as a relay
//! under a crowd drops some) is asked again a bounded number of times.

use protoblock_core::{Chain, ChainLimits};
use protoblock_devnet::DevNet;
use protoblock_node::{Action, Input, NodeService, Now, ServiceConfig};

fn node() -> NodeService<u32> {
    let net = DevNet::new(72, 4);
    let (chain, _) = Chain::new(net.genesis.clone(), ChainLimits::default()).unwrap();
    NodeService::new(0, chain, ServiceConfig::default(), false, Now { mono_ms: 0, unix_ms: 0 })
}

/// Runs the service's timers for `until_ms` of virtual time and returns when
/// each status request to `peer` was sent.
fn status_sends(s: &mut NodeService<u32>, peer: u32, from_ms: u64, until_ms: u64) -> Vec<u64> {
    let mut sent = Vec::new();
    let mut t = from_ms;
    loop {
        while let Some(a) = s.poll_action() {
            if matches!(a, Action::SendStatus { peer: p, .. } if p == peer) {
                sent.push(t);
            }
        }
        let Some(next) = s.next_wakeup() else { break };
        t = next.max(t + 1);
        if t > until_ms {
            break;
        }
        s.handle(Now { mono_ms: t, unix_ms: t }, Input::Timer);
    }
    sent
}

#[test]
fn an_unanswered_handshake_is_retried_a_few_times_then_left_alone() {
    let mut s = node();
    s.handle(Now { mono_ms: 1_000, unix_ms: 1_000 }, Input::Connected { peer: 7 });
    let sent = status_sends(&mut s, 7, 1_000, 120_000);
    assert_eq!(sent.len(), 3, "the first request and two retries in two minutes: {sent:?}");
    assert_eq!(sent[0], 1_000);
    for w in sent.windows(2) {
        // Each try outlives the transport's 10 s request timeout.
        assert!(w[1] - w[0] >= 10_000, "tries overlap: {sent:?}");
    }
}

#[test]
fn a_completed_handshake_stops_the_retries_and_the_refresh_takes_over() {
    let mut s = node();
    let genesis = s.chain().genesis().hash.0.to_vec();
    s.handle(Now { mono_ms: 1_000, unix_ms: 1_000 }, Input::Connected { peer: 7 });
    let first = status_sends(&mut s, 7, 1_000, 1_000);
    assert_eq!(first, vec![1_000]);
    // Its own request reaches us (ours to it was lost): it is a peer now.
    let status = protoblock_proto::v1::Status {
        protocol_version: protoblock_node::PROTOCOL_VERSION,
        genesis_hash: genesis,
        ..Default::default()
    };
    s.handle(Now { mono_ms: 2_000, unix_ms: 2_000 }, Input::StatusRequest { peer: 7, reply: 1, status });
    let later = status_sends(&mut s, 7, 2_000, 30_000);
    let every = ServiceConfig::default().status_refresh_ms;
    // From then on, the regular refresh of a handshaken peer.
    assert!(later.len() as u64 >= 28_000 / every - 1, "{later:?}");
    assert!(later.windows(2).all(|w| w[1] - w[0] > every), "{later:?}");
}
