// Browser sync benchmark (`cargo xtask bench-web`, also part of `cargo xtask
// bench`): a fresh browser node in headless Chromium syncs a dev chain into
// IndexedDB with full validation, beside a fresh native node (the relay
// binary joining as a plain full node on redb) syncing the same chain from
// the same relay over the same transport (WebSocket), interleaved in one run.
// Prints a table; timing is a measurement here, never an assertion.

import { gzipSync } from 'node:zlib';
import { availableParallelism } from 'node:os';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, launchBrowser, openNodePage, startRelay, status, waitFor, cleanup } from './lib.mjs';

const OS_CORES = availableParallelism();
const BLOCKS = Number(process.env.PB_BENCH_BLOCKS || 5000);
const TXS = Number(process.env.PB_BENCH_TXS || 20);
const ROUNDS = Number(process.env.PB_BENCH_ROUNDS || 2);

const source = await startRelay({
  args: ['--dev-history', String(BLOCKS), '--dev-txs-per-block', String(TXS), '--block-interval-ms', '3600000'],
});
const target = (await source.status()).head.height;
const boot = await (await fetch(`${source.http}/api/bootstrap`)).json();
const ws = boot.multiaddrs.find((a) => a.includes('/ws/'));
console.log(`chain: ${target} blocks, ${TXS} txs per block of history; source relay ${source.peerId}`);

async function nativeRound() {
  const t0 = performance.now();
  const node = await startRelay({ dev: false, genesis: join(source.dataDir, 'genesis.pb'), bootstrap: [ws], args: ['--stun-listen', 'off'] });
  const tUp = performance.now();
  await waitFor('native node synced', () => node.height >= target, 600_000, 20);
  const t1 = performance.now();
  await node.kill();
  return { ms: t1 - t0, syncMs: t1 - tUp };
}

async function browserRound(i, query = '') {
  const context = await launchBrowser();
  const t0 = performance.now();
  // PB_BENCH_PKG=pkg-prof: another build of the package in www/ (e.g. one that
  // keeps wasm function names, for PB_BENCH_CPUPROFILE).
  const pkg = process.env.PB_BENCH_PKG ? `&pkg=${process.env.PB_BENCH_PKG}` : '';
  const page = await openNodePage(context, source, `bench-${i}`, `&bootstrap=${encodeURIComponent(ws)}${pkg}${query}`);
  await waitFor('first peer', async () => (await status(page)).peers.length > 0, 60_000, 5);
  const firstPeerMs = performance.now() - t0;
  // Main-thread time of the page (script = JS and wasm) during the sync, from
  // the DevTools protocol, to split the sync time into CPU and waiting.
  const cdp = await context.newCDPSession(page);
  await cdp.send('Performance.enable');
  const metrics = async () => Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]));
  const m0 = await metrics();
  // PB_BENCH_CPUPROFILE=<file>: a DevTools CPU profile of the page over the
  // sync (build the package without --remove-name-section for wasm names).
  if (process.env.PB_BENCH_CPUPROFILE) { await cdp.send('Profiler.enable'); await cdp.send('Profiler.start'); }
  const tSync = performance.now();
  // The page itself notes when its head reaches the target and the longest
  // stretch without a new head, from the node's own events: polling status()
  // every few ms from here would load the very CPU being measured (2 cores
  // are ~95% busy during this sync). The bench reads the note 4 times a second.
  await page.evaluate((target) => {
    const b = (window.__pbBench = { done: null, last: Date.now(), h: -1, stall: 0 });
    const seen = (h) => {
      const t = Date.now();
      if (h > b.h) { b.stall = Math.max(b.stall, t - b.last); b.last = t; b.h = h; }
      if (h >= target && b.done == null) b.done = t;
    };
    window.pbNode.on('sync', (s) => seen(s.headHeight));
    window.pbNode.on('block', (e) => seen(e.height));
  }, target);
  const note = await waitFor('browser node synced', async () => {
    const b = await page.evaluate(() => window.__pbBench);
    if (b.done == null && (await status(page)).headHeight >= target) b.done = Date.now(); // synced before the listeners
    return b.done != null && b;
  }, 900_000, 250);
  const lag = Date.now() - note.done;
  const ms = performance.now() - lag - t0;
  const syncMs = performance.now() - lag - tSync;
  const stall = note.stall;
  const m1 = await metrics();
  if (process.env.PB_BENCH_CPUPROFILE) {
    const { profile } = await cdp.send('Profiler.stop');
    writeFileSync(`${process.env.PB_BENCH_CPUPROFILE}.${i}.cpuprofile`, JSON.stringify(profile));
  }
  const cpu = { script: (m1.ScriptDuration - m0.ScriptDuration) * 1000, task: (m1.TaskDuration - m0.TaskDuration) * 1000 };
  // Only the bench build publishes store counters (PB_BENCH_PKG=pkg-bench); the product package has none.
  const store = await page.evaluate(() => globalThis.pbStoreStats || null);
  const heap = await page.evaluate(() => performance.memory ? performance.memory.usedJSHeapSize : null);
  // The wasm instance's linear memory: where the node's own heap lives.
  const wasmBytes = await page.evaluate(() => window.pbWasm && window.pbWasm.memory ? window.pbWasm.memory.buffer.byteLength : null);
  const s = await status(page);
  await context.close();
  return { ms, firstPeerMs, heap, wasmBytes, stall, validated: s.blocksValidated, syncMs, cpu, store };
}

const native = [];
const browser = [];
// The same page with its signature workers switched off: every signature on
// the page's thread, as before they existed (the gain, side by side).
const browserOneThread = [];
for (let i = 0; i < ROUNDS; i++) {
  native.push(await nativeRound());
  browser.push(await browserRound(i));
  browserOneThread.push(await browserRound(i + ROUNDS, '&signatureWorkers=0'));
}
// The browser's signature bound: the same chain's signatures alone, verified
// in a page by the package (per block: verify_strict on the header, one
// verify_batch over the txs, inputs decoded beforehand, as the native chain
// benchmark's bound). Whatever else the browser does, its sync cannot take
// less than this on one thread. (The hook is only in the `bench` build, www/pkg-bench.)
async function browserSignatureBound() {
  const context = await launchBrowser();
  const page = await context.newPage();
  await page.goto(`${source.http}/health`);
  const ms = await page.evaluate(async ({ target }) => {
    const m = await import('/pkg-bench/protoblock_wasm.js');
    await m.default();
    const boot = await (await fetch('/api/bootstrap')).json();
    const genesis = Uint8Array.from(boot.genesis_pb.match(/../g).map((h) => parseInt(h, 16)));
    const blocks = new Array(target);
    let next = 1;
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next <= target) {
        const h = next++;
        blocks[h - 1] = new Uint8Array(await (await fetch(`/api/blocks/${h}/raw`)).arrayBuffer());
      }
    }));
    // Interleaved: block by block and a sync range (64 blocks) per batch,
    // with ed25519-dalek's verify_batch (what the chain used before) and
    // the chain's own (cofactored, one point per distinct key).
    const perBlock = [], perRange = [], perRangeDalek = [];
    for (let r = 0; r < 2; r++) {
      perBlock.push(m._benchSignatureBound(genesis, blocks, 1, false));
      perRangeDalek.push(m._benchSignatureBound(genesis, blocks, 64, true));
      perRange.push(m._benchSignatureBound(genesis, blocks, 64, false));
    }
    return { perBlock: Math.min(...perBlock), perRange: Math.min(...perRange), perRangeDalek: Math.min(...perRangeDalek) };
  }, { target });
  await context.close();
  return ms;
}
const { perBlock: sigBoundMs, perRange: sigRangeMs, perRangeDalek: sigDalekMs } = await browserSignatureBound();

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const nativeMs = median(native.map((r) => r.ms));
const browserMs = median(browser.map((r) => r.ms));
const oneThreadMs = median(browserOneThread.map((r) => r.ms));
const wasm = readFileSync(join(ROOT, 'www/pkg/protoblock_wasm_bg.wasm'));
const f = (n) => n.toLocaleString('en-US', { maximumFractionDigits: 0 });

console.log('\n| node (fresh, syncing over WebSocket from the same relay) | rounds | median s | blocks/s | ratio |');
console.log('|---|---|---|---|---|');
console.log(`| native (protoblock-relay as a full node, redb, release) | ${native.map((r) => (r.ms / 1000).toFixed(1)).join(', ')} | ${(nativeMs / 1000).toFixed(1)} | ${f(target / nativeMs * 1000)} | 1.00 |`);
console.log(`| browser (wasm in headless Chromium, IndexedDB) | ${browser.map((r) => (r.ms / 1000).toFixed(1)).join(', ')} | ${(browserMs / 1000).toFixed(1)} | ${f(target / browserMs * 1000)} | **${(nativeMs / browserMs).toFixed(2)}** |`);
console.log(`| browser, signature workers off (signatures on the page's thread) | ${browserOneThread.map((r) => (r.ms / 1000).toFixed(1)).join(', ')} | ${(oneThreadMs / 1000).toFixed(1)} | ${f(target / oneThreadMs * 1000)} | ${(nativeMs / oneThreadMs).toFixed(2)} |`);
console.log(`| browser, signatures alone (no sync: verify only, inputs decoded beforehand), one batch per block | 2 (best) | ${(sigBoundMs / 1000).toFixed(1)} | ${f(target / sigBoundMs * 1000)} | ceiling ${(nativeMs / sigBoundMs).toFixed(2)} |`);
console.log(`| browser, signatures alone, one batch per 64-block range, ed25519-dalek's verify_batch | 2 (best) | ${(sigDalekMs / 1000).toFixed(1)} | ${f(target / sigDalekMs * 1000)} | ${(sigBoundMs / sigDalekMs).toFixed(2)}x the per-block speed |`);
console.log(`| browser, signatures alone, one batch per 64-block range, the chain's verify_batch (what the workers run) | 2 (best) | ${(sigRangeMs / 1000).toFixed(1)} | ${f(target / sigRangeMs * 1000)} | ${(sigBoundMs / sigRangeMs).toFixed(2)}x the per-block speed, ${(sigDalekMs / sigRangeMs).toFixed(2)}x dalek's |`);
console.log('\nBoth sync times run from process start or page open to the head (startup included).');
console.log('The per-block signatures row is the floor of a sync that checks signatures on one thread as the chain does');
console.log('(the ceiling of the workers-off ratio); the workers batch a whole range (the last row) beside the page thread\'s work.');
console.log(`Signature workers: ${OS_CORES} cores here, so ${Math.min(4, Math.max(1, OS_CORES - 1))} worker(s) by default.`);
console.log(`\n| figure | value |\n|---|---|`);
console.log(`| page open to first peer connected (median of ${ROUNDS}) | ${f(median(browser.map((r) => r.firstPeerMs)))} ms (${browser.map((r) => f(r.firstPeerMs)).join(', ')}) |`);
console.log(`| wasm size raw | ${f(wasm.length)} bytes |`);
console.log(`| wasm size gzip -9 | ${f(gzipSync(wasm, { level: 9 }).length)} bytes |`);
console.log(`| JS heap after sync (usedJSHeapSize) | ${browser.map((r) => r.heap == null ? 'n/a' : (r.heap / 1048576).toFixed(1) + ' MiB').join(', ')} |`);
console.log(`| wasm linear memory after sync | ${browser.map((r) => r.wasmBytes == null ? 'n/a' : (r.wasmBytes / 1048576).toFixed(1) + ' MiB').join(', ')} |`);
console.log(`| longest browser sync stall (no new head) | ${browser.map((r) => f(r.stall) + ' ms').join(', ')} |`);
const pct = (a, b) => `${(100 * a / b).toFixed(0)}%`;
console.log(`| browser sync time: main-thread tasks / of which script (JS+wasm) | ${browser.map((r) => `${f(r.cpu.task)} / ${f(r.cpu.script)} ms of ${f(r.syncMs)} ms (${pct(r.cpu.task, r.syncMs)} / ${pct(r.cpu.script, r.syncMs)})`).join(', ')} |`);
console.log(`| browser store commits: count, blocks, requests (deletes), ms awaiting (max) | ${browser.map((r) => r.store ? `${f(r.store.commits)}, ${f(r.store.blocks)}, ${f(r.store.requests)} (${f(r.store.deletes)}), ${f(r.store.ms)} ms (${f(r.store.maxMs)}) = ${pct(r.store.ms, r.syncMs)}` : 'n/a').join('; ')} |`);
console.log(`| blocks validated by the browser | ${browser.map((r) => r.validated).join(', ')} |`);
await source.kill();
cleanup();
