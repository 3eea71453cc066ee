// Browser-to-browser mesh tests (issue 5): pages that meet through the relay
// upgrade to direct `/webrtc` connections, blocks produced in a browser reach
// every page over them, a fresh page syncs from browsers, and the mesh keeps
// the chain growing when the relay process is killed, then reconnects to it.
// Real relay process, real Chromium, run inside the test network namespace.

import {
  Runner, assert, launchBrowser, openNodePage, startRelay, status, waitFor, sleep, trackPeerConnections, finish,
} from './lib.mjs';

const r = new Runner('mesh');
if (!process.env.PB_E2E_WEBRTC_IP) {
  // Outside a namespace of our own, Chromium's WebRTC would use this machine's interface address.
  for (const t of ['four_pages_each_reach_two_direct_webrtc_peers', 'a_block_produced_in_a_browser_reaches_every_page',
    'a_fresh_page_syncs_from_browser_peers', 'relay_killed_the_mesh_keeps_the_chain_growing_then_reconnects']) {
    r.skip(t, 'needs the test network namespace (run as root)');
  }
  r.summary();
  process.exit(0);
}
const HISTORY = 200;
const DIRECT = 'webrtc';

// The relay keeps the dev chain's history but produces nothing: page 1 holds
// the dev oracle key and is the chain's only producer.
let relay = await startRelay({ args: ['--no-produce', '--dev-history', String(HISTORY), '--dev-txs-per-block', '10'] });
const oracle = (await (await fetch(relay.http + '/api/dev/oracle-key')).json()).seed;
assert(/^[0-9a-f]{64}$/.test(oracle), 'dev oracle seed');
const context = await launchBrowser();
// Every RTCPeerConnection a page makes is recorded, so a test can prove none
// is left open after a failed handshake.
await trackPeerConnections(context);
const pages = [];
const open = async (store, q = '') => { const p = await openNodePage(context, relay, store, q); pages.push(p); return p; };
const directPeers = async (p) => (await status(p)).peers.filter((x) => x.transport === DIRECT).map((x) => x.peerId);
const heads = async (ps) => Promise.all(ps.map(async (p) => (await status(p)).headHeight));

let mesh = [];
let ids = [];

await r.test('four_pages_each_reach_two_direct_webrtc_peers', async () => {
  mesh = [
    await open('m1', `&oracleKey=${oracle}&blockIntervalMs=1000`),
    await open('m2'), await open('m3'), await open('m4'),
  ];
  ids = await Promise.all(mesh.map((p) => p.evaluate(() => window.pbNode.peerId)));
  const t0 = Date.now();
  for (const [i, p] of mesh.entries()) {
    const direct = await waitFor(`page ${i + 1} with 2 direct WebRTC peers`, async () => {
      const d = await directPeers(p);
      return d.length >= 2 && d;
    }, 120_000, 500);
    // Direct peers are other pages (the relay is never reached over /webrtc),
    // and the status says so from the connection, not from delivery.
    assert(direct.every((id) => ids.includes(id) && id !== ids[i]), `direct peers are pages: ${direct}`);
    const s = await status(p);
    for (const peer of s.peers.filter((x) => x.transport === DIRECT)) {
      assert(peer.addr && !peer.addr.includes('p2p-circuit') && peer.addr.includes('/webrtc/'), `direct address ${peer.addr}`);
    }
  }
  console.log(`  4 pages with >= 2 direct peers each after ${Date.now() - t0} ms`);
});

await r.test('a_block_produced_in_a_browser_reaches_every_page', async () => {
  const start = Math.max(...(await heads(mesh)));
  // Page 1 produces; wait for a block above every page's current head.
  const target = start + 3;
  await waitFor('a new block on every page', async () => (await heads(mesh)).every((h) => h >= target), 60_000, 300);
  const blocks = await Promise.all(mesh.map((p) => p.evaluate((h) => window.pbNode.block(h), target)));
  assert(blocks.every((b) => b && b.id === blocks[0].id), `same block at ${target} everywhere: ${blocks.map((b) => b && b.id)}`);
  const relayBlock = await relay.block(target);
  assert(relayBlock.id === blocks[0].id, 'the relay validated the same block');
});

await r.test('a_fresh_page_syncs_from_browser_peers', async () => {
  const off = await fetch(relay.http + '/api/dev/serve-sync', { method: 'POST', body: 'false' });
  assert(off.ok, 'relay stops serving sync');
  const served = async () => (await Promise.all(mesh.map(async (p) => (await status(p)).blocksServed))).reduce((a, b) => a + b, 0);
  const before = await served();
  const fresh = await open('m5');
  const target = (await relay.status()).head.height;
  await waitFor('the fresh page at the head', async () => (await status(fresh)).headHeight >= target, 120_000, 500);
  const s = await status(fresh);
  assert(s.blocksDownloaded >= HISTORY, `downloaded ${s.blocksDownloaded} blocks from browsers`);
  const after = await served();
  assert(after - before >= HISTORY, `pages served ${after - before} blocks`);
  await fetch(relay.http + '/api/dev/serve-sync', { method: 'POST', body: 'true' });
  mesh.push(fresh);
  ids.push(await fresh.evaluate(() => window.pbNode.peerId));
});

await r.test('relay_killed_the_mesh_keeps_the_chain_growing_then_reconnects', async () => {
  // Every page needs a direct path before the relay goes.
  for (const p of mesh) await waitFor('a direct peer', async () => (await directPeers(p)).length >= 1, 60_000, 500);
  const again = relay.sameAddresses();
  await relay.kill('SIGKILL');
  const h0 = await heads(mesh);
  const t0 = Date.now();
  // For 30 s every page keeps getting new blocks, only over direct links.
  let checks = 0;
  while (Date.now() - t0 < 30_000) {
    await sleep(5_000);
    for (const p of mesh) {
      const s = await status(p);
      assert(!s.peers.some((x) => x.peerId === relay.peerId), 'the relay is gone');
      assert(s.peers.length > 0 && s.peers.every((x) => x.transport === DIRECT), `only direct peers: ${JSON.stringify(s.peers.map((x) => x.transport))}`);
    }
    checks++;
  }
  const h1 = await heads(mesh);
  const grown = h1.map((h, i) => h - h0[i]);
  assert(grown.every((g) => g >= 15), `every page grew by >= 15 blocks in 30 s: ${grown}`);
  const tips = await Promise.all(mesh.map((p, i) => p.evaluate((h) => window.pbNode.block(h), Math.min(...h1) - 2)));
  assert(tips.every((b) => b && b.id === tips[0].id), 'pages agree on the chain');
  // Back on the same ports and identity: pages reconnect without a reload.
  relay = await startRelay({ ...again, args: ['--no-produce'] });
  for (const p of mesh) {
    await waitFor('the page reconnected to the relay', async () => (await status(p)).peers.some((x) => x.peerId === relay.peerId), 60_000, 500);
  }
  const top = Math.max(...(await heads(mesh)));
  await waitFor('the relay caught up from the browsers', async () => (await relay.status()).head.height >= top, 60_000, 500);
  console.log(`  grown ${grown} blocks in 30 s without the relay (${checks} checks); reconnected`);
});

await r.test('bad_signalling_times_out_is_cleaned_up_and_the_page_keeps_working', async () => {
  const victim = mesh[1];
  const vid = ids[1];
  const host = mesh[mesh.length - 1];
  // A hostile node (a second node in another tab): it never answers offers,
  // upgrades nothing itself, and sends bad signalling on purpose.
  const evil = await host.evaluate(async () => {
    const { ProtoblockNode } = await import(`./${window.pbPkg}/protoblock_wasm.js`);
    window.evil = await ProtoblockNode.start({
      // targetPeers 0: it dials nobody itself (only its relay), so the victim is the dialer and offers.
      relay: location.origin, storeName: 'evil', targetPeers: 0, targetDirectPeers: 0, _testBlackHole: true,
    });
    return window.evil.peerId;
  });
  const evilAddr = await waitFor('the hostile node reachable through the relay', () => host.evaluate(async () => {
    const s = await window.evil.status();
    return s.listen.find((a) => a.includes('/ws/') && a.includes('/p2p-circuit'));
  }), 60_000, 300);
  const pcsBefore = await victim.evaluate(() => window.__pcs.length);
  const headBefore = (await status(victim)).headHeight;
  // The victim dials it, so if it offers /webrtc, the offer is never answered.
  await victim.evaluate((a) => window.pbNode.dial(a), evilAddr);
  await waitFor('victim and hostile node connected', async () => (await status(victim)).peers.some((x) => x.peerId === evil), 30_000, 300);
  // Meanwhile the hostile node sends garbage, an oversized length, nothing,
  // and an offer it never follows up, each on its own signalling stream.
  const modes = ['garbage', 'oversized', 'silent', 'offer'];
  const attacks = host.evaluate(([v, ms]) => Promise.allSettled(ms.map((m) => window.evil._testSignal(v, m, 25_000)))
    .then((rs) => rs.map((x) => x.status)), [vid, modes]);
  // Every handshake is bounded at 20 s, so every peer connection the victim
  // makes must be closed (or connected) 23 s after its making. The check
  // waits for one peer connection per attack (the victim answers each
  // signalling stream with one), however long a loaded machine takes to get
  // there, and then checks those and any made meanwhile once the youngest is
  // that old (retries made later are left out). The victim's own offer to
  // the hostile node comes on top only when it still wants direct peers
  // (below targetDirectPeers), which depends on what the mesh tests before
  // left it with: two CI rehearsals had it at its target and no offer.
  const snapshot = () => victim.evaluate((from) => window.__pcs.slice(from)
    .map((pc) => ({ sig: pc.signalingState, conn: pc.connectionState, age: performance.now() - pc.__created })), pcsBefore);
  await waitFor('the victim made a peer connection per attack', async () => (await snapshot()).length >= modes.length, 60_000, 500);
  const first = await snapshot();
  const youngest = Math.min(...first.map((p) => p.age));
  if (youngest < 23_000) await sleep(23_000 - youngest);
  const pcs = (await snapshot()).slice(0, first.length);
  const open = pcs.filter((p) => p.sig !== 'closed' && p.conn !== 'connected');
  assert(pcs.length >= modes.length, `the victim made a peer connection per attack (${pcs.length})`);
  assert(open.length === 0, `no peer connection left open: ${JSON.stringify(pcs)}`);
  const s = await status(victim);
  const e = s.peers.find((x) => x.peerId === evil);
  assert(e && e.transport === 'relayed', `the hostile peer stays on the relayed path: ${JSON.stringify(e)}`);
  assert(s.peers.filter((x) => x.transport === DIRECT).length >= 1, 'the victim keeps its direct peers');
  await waitFor('the victim still follows the chain', async () => (await status(victim)).headHeight > headBefore + 5, 30_000, 500);
  console.log(`  attacks: ${JSON.stringify(await attacks)}; victim peer connections: ${pcs.length} made (${pcs.length > modes.length ? 'its own offer among them' : 'no offer of its own'}), ${open.length} left open`);
  await host.evaluate(() => window.evil.stop());
});

await finish(r, pages, context);
