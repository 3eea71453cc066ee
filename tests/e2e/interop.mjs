// Interop with js-libp2p over `/webrtc` (issue 5): an unmodified js-libp2p
// browser peer (npm `libp2p`, `@libp2p/webrtc`, `@libp2p/circuit-relay-v2`,
// `@libp2p/websockets`, noise, yamux, identify, ping; versions pinned in
// package-lock.json) and our wasm node meet through our relay and reach each
// other directly over `/webrtc`, each side dialling once, and ping over it.
//
// The js peer's page is tests/e2e/interop/index.html plus peer.js, bundled by
// esbuild at the start of the run into www/interop/ (gitignored), which the
// relay serves like the rest of www/. The js peer is not on our chain: it
// speaks none of our protocols, and our node keeps it as a connected peer that
// never passes the status handshake (`status().otherPeers`).
//
// Real relay process, real Chromium, run inside the test network namespace.

import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  ROOT, Runner, assert, launchBrowser, openNodePage, startRelay, status, waitFor, cleanup, finish,
} from './lib.mjs';

const r = new Runner('interop');
const TESTS = [
  'js_libp2p_dials_the_wasm_node_over_webrtc_and_pings_it',
  'the_wasm_node_dials_js_libp2p_over_webrtc_and_pings_it',
  'no_uncaught_errors_in_any_page',
];
if (!process.env.PB_E2E_WEBRTC_IP) {
  // Outside a namespace of our own, Chromium's WebRTC would use this machine's interface address.
  for (const t of TESTS) r.skip(t, 'needs the test network namespace (run as root)');
  r.summary();
  process.exit(0);
}

// Bundle the js peer for the page (esbuild is a pinned devDependency).
const esbuild = await import('esbuild');
const out = join(ROOT, 'www/interop');
mkdirSync(out, { recursive: true });
await esbuild.build({
  entryPoints: [new URL('./interop/peer.js', import.meta.url).pathname],
  bundle: true, format: 'esm', platform: 'browser', target: 'es2022',
  outfile: join(out, 'peer.js'), logLevel: 'warning',
});
copyFileSync(new URL('./interop/index.html', import.meta.url).pathname, join(out, 'index.html'));

const DIRECT = 'webrtc';
const LOG = process.env.PB_E2E_VERBOSE ? '&logLevel=info' : '';
const relay = await startRelay();
const boot = await (await fetch(relay.http + '/api/bootstrap')).json();
// The relay's own STUN responder, as RTCIceServer objects (no public STUN).
const iceServers = (boot.ice_servers || []).map((s) => (typeof s === 'string' ? s : s.urls));
const relayWs = relay.addrs.find((a) => /\/ws\/p2p\//.test(a));
assert(relayWs, `relay has a /ws address: ${relay.addrs}`);
const context = await launchBrowser();
const pages = [];

/** A page with a started js-libp2p peer, connected to the relay with a circuit reservation. */
async function openJsPage(name) {
  const page = await context.newPage();
  page.pbErrors = [];
  page.on('pageerror', (e) => page.pbErrors.push(String(e && e.stack || e)));
  page.on('console', (m) => { if (process.env.PB_E2E_VERBOSE) console.log(`[js ${name}] ${m.type()}: ${m.text()}`); });
  pages.push(page);
  await page.goto(`${relay.http}/interop/index.html`);
  await waitFor('the js peer bundle loaded', () => page.evaluate(() => window.interopReady === true), 30_000);
  const id = await page.evaluate(async ({ iceServers, relayWs }) => {
    const node = await window.interop.start({ iceServers });
    window.jsNode = node;
    // Count the pings our node sends, by the connection they come over: the
    // stock ping handler, registered again with a wrapper that records.
    window.pingsIn = [];
    const p = node.services.ping;
    await node.unhandle(p.protocol);
    await node.handle(p.protocol, (stream, conn) => {
      window.pingsIn.push(window.interop.describe(conn));
      return p.handlePing(stream, conn);
    }, { runOnLimitedConnection: true });
    await node.dial(window.interop.multiaddr(relayWs), { signal: AbortSignal.timeout(20_000) });
    return node.peerId.toString();
  }, { iceServers, relayWs });
  const addr = await waitFor('the js peer has a /p2p-circuit/webrtc address', () => page.evaluate(() =>
    window.jsNode.getMultiaddrs().map(String).find((a) => a.includes('/p2p-circuit/webrtc/'))), 30_000, 250);
  return { page, id, addr };
}

const jsConns = (page, peer) => page.evaluate((peer) =>
  window.jsNode.getConnections().filter((c) => c.remotePeer.toString() === peer).map(window.interop.describe), peer);
/** Our node's view of a peer (past the handshake or not). */
const ourView = async (page, peer) => {
  const s = await status(page);
  return [...s.peers, ...(s.otherPeers || [])].find((x) => x.peerId === peer);
};
// js's own verdict (`direct`: not a circuit address), over /webrtc, and not
// limited. The dialler's remoteAddr is the address it dialled
// (`…/p2p-circuit/webrtc/p2p/<id>`), the listener's is `/webrtc/p2p/<id>`.
const isDirect = (c) => c.direct === true && /\/webrtc(\/|$)/.test(c.remoteAddr) && !c.limited;

// js's ping closes its write half and waits up to 10 s for our FIN_ACK (then
// fails). We answer a FIN as soon as our side reads it, but libp2p-ping's
// responder does not poll its next read after answering, so when the FIN came
// with the ping it waits for the handler's next wake (its 5 s ping timer at
// worst). Usually a few ms; the bound allows that worst case, below js's 10 s.
const FIN_ACK_BOUND = 8_000;
/** js pings `peer` (stock `services.ping.ping`): its rtt and the wall time of the whole call. */
const jsPing = (page, peer) => page.evaluate(async (peer) => {
  const id = window.jsNode.getConnections().find((c) => c.remotePeer.toString() === peer).remotePeer;
  const t0 = performance.now();
  const rtt = await window.jsNode.services.ping.ping(id, { signal: AbortSignal.timeout(15_000) });
  return { rtt, took: Math.round(performance.now() - t0) };
}, peer);

/** Waits until js reaches `peer` only directly (our node closes the relayed connection once direct). */
async function onlyDirect(page, peer) {
  return waitFor('js connected to the wasm node only over direct /webrtc', async () => {
    const cs = await jsConns(page, peer);
    return cs.length > 0 && cs.every(isDirect) && cs;
  }, 30_000, 250);
}

await r.test('js_libp2p_dials_the_wasm_node_over_webrtc_and_pings_it', async () => {
  const wasm = await openNodePage(context, relay, 'interop-a', LOG);
  pages.push(wasm);
  const wasmId = await wasm.evaluate(() => window.pbNode.peerId);
  // Our node's reservation: it lists its circuit address once the relay accepted it.
  await waitFor('the wasm node has a relay reservation', async () =>
    (await status(wasm)).listen.some((a) => a.includes('/p2p-circuit')), 60_000, 250);
  const js = await openJsPage('a');
  // The address our pages advertise, built on the relay address js reaches it by.
  const target = `${relayWs}/p2p-circuit/webrtc/p2p/${wasmId}`;
  const t0 = Date.now();
  const dialled = await js.page.evaluate(async (target) => {
    const conn = await window.jsNode.dial(window.interop.multiaddr(target), { signal: AbortSignal.timeout(30_000) });
    return window.interop.describe(conn);
  }, target);
  assert(dialled.remotePeer === wasmId, `js reached ${dialled.remotePeer}`);
  assert(isDirect(dialled), `js's dial gave a direct /webrtc connection: ${JSON.stringify(dialled)}`);
  await onlyDirect(js.page, wasmId);
  const { rtt, took } = await jsPing(js.page, wasmId);
  assert(Number.isFinite(rtt), `ping rtt ${rtt}`);
  assert(took < FIN_ACK_BOUND, `js's ping (write, close, read) took ${took} ms: our FIN_ACK is missing`);
  // Still (only) the direct connection after the ping: that is what it used.
  const after = await jsConns(js.page, wasmId);
  assert(after.length > 0 && after.every(isDirect), `js's connections after the ping: ${JSON.stringify(after)}`);
  // Our side sees the js peer over /webrtc and has pinged it there.
  const seen = await waitFor('our node shows the js peer as webrtc with a latency', async () => {
    const v = await ourView(wasm, js.id);
    return v && v.transport === DIRECT && v.latencyMs != null && v;
  }, 30_000, 500);
  assert(!seen.addr.includes('p2p-circuit') && seen.addr.includes('/webrtc/'), `our address for js: ${seen.addr}`);
  const pingsIn = await waitFor('a ping from our node over the direct connection', async () => {
    const ps = await js.page.evaluate((peer) => window.pingsIn.filter((p) => p.remotePeer === peer), wasmId);
    return ps.some(isDirect) && ps;
  }, 30_000, 250);
  console.log(`  js dialled ${target.replace(/\/p2p\/[^/]+/g, '/p2p/…')}; js ping ${rtt} ms (${took} ms with the close); ours ${seen.latencyMs} ms; ${pingsIn.filter(isDirect).length} of our pings over /webrtc (${Date.now() - t0} ms)`);
});

await r.test('the_wasm_node_dials_js_libp2p_over_webrtc_and_pings_it', async () => {
  const wasm = await openNodePage(context, relay, 'interop-b', LOG);
  pages.push(wasm);
  const wasmId = await wasm.evaluate(() => window.pbNode.peerId);
  const js = await openJsPage('b');
  const t0 = Date.now();
  // The js peer's own advertised address: `<relay>/p2p-circuit/webrtc/p2p/<js>`.
  await wasm.evaluate((a) => window.pbNode.dial(a), js.addr);
  // Our node reaches js through the circuit, sees `/webrtc-signaling/0.0.1` in
  // identify, offers (it dialled the relayed connection), and js answers.
  const seen = await waitFor('our node shows the js peer as webrtc', async () => {
    const v = await ourView(wasm, js.id);
    return v && v.transport === DIRECT && v;
  }, 45_000, 250).catch(async (e) => {
    throw new Error(`${e.message}; ours: ${JSON.stringify(await ourView(wasm, js.id))}; js: ${JSON.stringify(await jsConns(js.page, wasmId))}`);
  });
  assert(!seen.addr.includes('p2p-circuit') && seen.addr.includes('/webrtc'), `our address for js: ${seen.addr}`);
  const cs = await onlyDirect(js.page, wasmId);
  assert(cs.some((c) => c.direction === 'inbound'), `js accepted the direct connection: ${JSON.stringify(cs)}`);
  // Our node pings every connection (5 s): js answers on the direct one.
  const pings = await waitFor('a ping from our node over the direct connection', async () => {
    const ps = await js.page.evaluate((peer) => window.pingsIn.filter((p) => p.remotePeer === peer), wasmId);
    return ps.some(isDirect) && ps;
  }, 30_000, 250);
  // (The view, not the number: a loopback ping rounds to 0 ms, which is falsy.)
  const latency = (await waitFor('our node has a latency for the js peer', async () => {
    const v = await ourView(wasm, js.id);
    return v && v.transport === DIRECT && v.latencyMs != null && v;
  }, 30_000, 250)).latencyMs;
  // And js can ping back over the same connection.
  const { rtt, took } = await jsPing(js.page, wasmId);
  assert(Number.isFinite(rtt), `js ping rtt ${rtt}`);
  assert(took < FIN_ACK_BOUND, `js's ping took ${took} ms: our FIN_ACK is missing`);
  const after = await jsConns(js.page, wasmId);
  assert(after.length > 0 && after.every(isDirect), `js's connections after the ping: ${JSON.stringify(after)}`);
  console.log(`  wasm dialled js: ${seen.addr}; our ping ${latency} ms (${pings.filter(isDirect).length} over /webrtc); js ping ${rtt} ms (${took} ms with the close) (${Date.now() - t0} ms)`);
});

await finish(r, pages, context);
