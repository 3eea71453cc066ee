// The browser mesh benchmark (issue 5), run by `cargo xtask bench-mesh`:
// six pages of one Chromium against a real relay, page 1 producing a block a
// second with the dev oracle key, measured on two paths in one run:
//   direct:  pages upgraded to /webrtc, then the relay killed, so every block
//            travels page to page over direct WebRTC only;
//   relayed: six fresh pages with `targetDirectPeers: 0`, so page-to-page
//            traffic goes through relay circuits (and the relay itself).
// Figures: page open to first direct peer; block delivery latency p50/p99
// (block timestamp on the producer to commit on each other page; one clock,
// one machine); duplicate copies per page per block (gossipsub's own
// counters); bytes received per page per block on each path (WebRTC
// transport stats for direct links, WebSocket frames for the relay).

import { launchBrowser, openNodePage, startRelay, status, waitFor, sleep, cleanup, trackPeerConnections } from './lib.mjs';

const PAGES = 6;
const BLOCKS = Number(process.env.PB_BENCH_MESH_BLOCKS || 40);
if (!process.env.PB_E2E_WEBRTC_IP) throw new Error('run inside the test network namespace (cargo xtask bench-mesh)');

async function openPages(relay, context, prefix, extra) {
  const oracle = (await (await fetch(relay.http + '/api/dev/oracle-key')).json()).seed;
  const pages = [];
  for (let i = 0; i < PAGES; i++) {
    // The package built with gossip counters (cargo xtask bench-mesh builds it into www/pkg-metrics).
    const q = (i === 0 ? `&oracleKey=${oracle}&blockIntervalMs=1000` : '') + extra + '&pkg=pkg-metrics';
    const p = await openNodePage(context, relay, `${prefix}${i + 1}`, q);
    await p.evaluate(() => {
      window.__arrivals = [];
      window.pbNode.on('block', (b) => window.__arrivals.push({ height: b.height, id: b.id, at: Date.now() }));
    });
    pages.push(p);
  }
  return pages;
}

/** Bytes received so far over this page's connected RTCPeerConnections. */
const pcBytes = (p) => p.evaluate(async () => {
  let total = 0;
  for (const pc of window.__pcs.filter((x) => x.connectionState === 'connected')) {
    for (const s of (await pc.getStats()).values()) if (s.type === 'transport') total += s.bytesReceived || 0;
  }
  return total;
});

async function snapshot(pages) {
  return Promise.all(pages.map(async (p) => {
    const s = await status(p);
    if (s.gossipReceived == null) throw new Error('this package has no gossip counters: build it with `cargo xtask bench-mesh`');
    return { head: s.headHeight, dupes: (s.gossipReceived ?? 0) - (s.gossipUnique ?? 0), pc: await pcBytes(p), ws: p.wsBytes };
  }));
}

/** Lets `BLOCKS` blocks flow, then measures latency, duplicates and bytes per page per block. */
async function measure(pages) {
  const startHead = Math.max(...(await Promise.all(pages.map(async (p) => (await status(p)).headHeight))));
  const before = await snapshot(pages);
  const last = startHead + BLOCKS;
  await waitFor(`${BLOCKS} blocks on every page`, async () => (await snapshot(pages)).every((s) => s.head >= last), BLOCKS * 3000 + 30_000, 500);
  await sleep(1500);
  const after = await snapshot(pages);
  const lat = [];
  let size = 0;
  for (let h = startHead + 1; h <= last; h++) {
    const b = await pages[0].evaluate((x) => window.pbNode.block(x), h);
    size += b.size;
    for (const p of pages.slice(1)) {
      const a = await p.evaluate((x) => window.__arrivals.find((e) => e.height === x), h);
      if (a && a.id === b.id) lat.push(a.at - b.timestampMs);
    }
  }
  lat.sort((x, y) => x - y);
  const q = (f) => lat[Math.min(lat.length - 1, Math.floor((lat.length - 1) * f))];
  const per = (k) => after.slice(1).reduce((acc, s, i) => acc + (s[k] - before[i + 1][k]), 0) / (pages.length - 1) / BLOCKS;
  return { p50: q(0.5), p99: q(0.99), n: lat.length, dupes: per('dupes'), pc: per('pc'), ws: per('ws'), size: size / BLOCKS };
}

const context = await launchBrowser();
// Count WebSocket bytes from the first frame: attach before each page loads.
context.on('page', (p) => {
  p.wsBytes = 0;
  p.on('websocket', (ws) => ws.on('framereceived', (f) => { p.wsBytes += typeof f.payload === 'string' ? Buffer.byteLength(f.payload) : f.payload.length; }));
});
await trackPeerConnections(context);

// Direct mesh.
let relay = await startRelay({ args: ['--no-produce', '--dev-history', '10'] });
const direct = await openPages(relay, context, 'bd', '');
const firstDirect = [];
for (const p of direct.slice(1)) {
  // Milliseconds since this page's navigation started, read in the page.
  firstDirect.push(await p.evaluate(async () => {
    for (;;) {
      const s = await window.pbNode.status();
      if (s.peers.some((x) => x.transport === 'webrtc')) return performance.now();
      await new Promise((r) => setTimeout(r, 25));
    }
  }));
}
for (const p of direct) await waitFor('2 direct peers', async () => (await status(p)).peers.filter((x) => x.transport === 'webrtc').length >= 2, 60_000, 300);
await relay.kill('SIGKILL');
await sleep(2000);
const d = await measure(direct);
for (const p of direct) await p.close();

// Relayed path: a new relay and chain, pages that never upgrade.
relay = await startRelay({ args: ['--no-produce', '--dev-history', '10'] });
const relayed = await openPages(relay, context, 'br', '&targetDirectPeers=0');
for (const p of relayed) await waitFor('3 browser peers through the relay', async () => (await status(p)).peers.filter((x) => x.transport === 'relayed').length >= 3, 60_000, 300);
const r = await measure(relayed);

firstDirect.sort((a, b) => a - b);
console.log(`\nBrowser mesh, ${PAGES} pages in one headless Chromium, page 1 producing 1 block/s, ${BLOCKS} blocks per path`);
console.log(`page open to first direct WebRTC peer (pages 2-${PAGES}): median ${firstDirect[Math.floor(firstDirect.length / 2)].toFixed(0)} ms, max ${firstDirect[firstDirect.length - 1].toFixed(0)} ms`);
console.log('\n| path | delivery p50 ms | p99 ms | samples | duplicates per page per block | bytes in per page per block | mean block size |');
console.log('|---|---|---|---|---|---|---|');
console.log(`| direct /webrtc mesh (relay killed) | ${d.p50} | ${d.p99} | ${d.n} | ${d.dupes.toFixed(2)} | ${(d.pc + d.ws).toFixed(0)} (WebRTC ${d.pc.toFixed(0)}) | ${d.size.toFixed(0)} |`);
console.log(`| relayed circuits + relay | ${r.p50} | ${r.p99} | ${r.n} | ${r.dupes.toFixed(2)} | ${(r.pc + r.ws).toFixed(0)} (WebSocket ${r.ws.toFixed(0)}) | ${r.size.toFixed(0)} |`);
console.log(`\nratio relayed/direct bytes per block: ${((r.pc + r.ws) / (d.pc + d.ws)).toFixed(2)}`);
await context.close();
cleanup();
process.exit(0);
