// The js-libp2p peer of the interop test (tests/e2e/interop.mjs): stock npm
// packages, pinned in tests/e2e/package-lock.json, bundled for the browser by
// esbuild at test time into www/interop/peer.js (gitignored) and loaded by
// www/interop/index.html, which the relay serves like the rest of www/.
//
// Only what /webrtc needs: WebSocket to the relay, circuit relay v2 (a
// reservation, so our wasm node can reach us), /webrtc with no ICE servers
// but the relay's own STUN, noise + yamux for the relayed connection, and
// identify + ping. It is not on the Protoblock chain and speaks none of our
// protocols.

import { circuitRelayTransport } from '@libp2p/circuit-relay-v2';
import { identify } from '@libp2p/identify';
import { noise } from '@libp2p/noise';
import { ping } from '@libp2p/ping';
import { webRTC } from '@libp2p/webrtc';
import { webSockets } from '@libp2p/websockets';
import { yamux } from '@libp2p/yamux';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2p } from 'libp2p';

/** Starts the peer; `iceServers` are URLs (the relay's `stun:` one, or none). */
async function start({ iceServers = [] } = {}) {
  const node = await createLibp2p({
    addresses: { listen: ['/p2p-circuit', '/webrtc'] },
    transports: [
      webSockets(),
      webRTC({ rtcConfiguration: { iceServers: iceServers.map((urls) => ({ urls })) } }),
      circuitRelayTransport(),
    ],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // The browser default refuses ws:// and private addresses; the test's
    // relay is ws:// on 127.0.0.1.
    connectionGater: { denyDialMultiaddr: () => false },
    services: { identify: identify(), ping: ping() },
  });
  await node.start();
  return node;
}

const describe = (c) => ({
  id: c.id,
  remotePeer: c.remotePeer.toString(),
  remoteAddr: c.remoteAddr.toString(),
  direction: c.direction,
  // libp2p's own test: the address is not a circuit (a `/p2p-circuit/webrtc`
  // one is direct: the circuit only carried the signalling).
  direct: c.direct,
  limited: c.limits != null,
  status: c.status,
  streams: c.streams.map((s) => s.protocol),
});

window.interop = { start, multiaddr, describe };
window.interopReady = true;
