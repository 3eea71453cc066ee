// A hidden tab keeps validating. Chromium throttles a hidden page's timers
// (to once a second, then, with intensive wake-up throttling, to once a
// minute; the test asks for it after 10 s instead of 5 minutes, which headless
// Chromium 156 honours only in some runs: the test prints which one it got);
// the node's work is driven by network events, so it keeps up either way.
//
// Playwright keeps every page "visible" (it turns on focus emulation), so this
// test drives Chromium over the DevTools protocol itself: a page with the node,
// then a second tab in front of it, which makes the first one hidden.
// Prints the figures (how far behind the relay the hidden tab's head was).

import { Runner, assert, startRelay, waitFor, sleep, cleanup, PKG, ROOT } from './lib.mjs';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';

const GRACE_S = 10;
const HIDDEN_S = Number(process.env.PB_HIDDEN_SECS || 75);
const VISIBLE_S = 20;
const r = new Runner('hidden');
const relay = await startRelay({ args: ['--block-interval-ms', '500', '--dev-history', '100', '--dev-txs-per-block', '5'] });

const profile = mkdtempSync(join(tmpdir(), 'pb-e2e-hidden-'));
const chromium = spawn(process.env.PB_CHROMIUM || '/usr/bin/chromium', [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--remote-debugging-port=0', `--user-data-dir=${profile}`,
  `--enable-features=IntensiveWakeUpThrottling:grace_period_seconds/${GRACE_S}`,
  'about:blank',
], { stdio: 'ignore' });
const stopChromium = () => { try { chromium.kill('SIGKILL'); } catch {} try { rmSync(profile, { recursive: true, force: true }); } catch {} };
process.on('exit', stopChromium);

/** The browser's DevTools endpoint, from the file Chromium writes into its profile. */
const endpoint = await waitFor('DevToolsActivePort', () => {
  try {
    const [port, path] = readFileSync(join(profile, 'DevToolsActivePort'), 'utf8').split('\n');
    return port && path ? `ws://127.0.0.1:${port}${path}` : null;
  } catch { return null; }
}, 30_000, 100);

/** A DevTools protocol connection to the browser; `session` commands go to one page. */
const ws = new WebSocket(endpoint, { perMessageDeflate: false });
await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
let nextId = 0;
const waiting = new Map();
ws.on('message', (data) => {
  const m = JSON.parse(data);
  const w = waiting.get(m.id);
  if (!w) return;
  waiting.delete(m.id);
  if (m.error) w.reject(new Error(`${w.method}: ${m.error.message}`)); else w.resolve(m.result);
});
const send = (method, params = {}, sessionId) => new Promise((resolve, reject) => {
  const id = ++nextId;
  waiting.set(id, { resolve, reject, method });
  ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
  setTimeout(() => { if (waiting.delete(id)) reject(new Error(`${method}: no answer in 30 s`)); }, 30_000);
});
async function openTab(url) {
  const { targetId } = await send('Target.createTarget', { url, newWindow: false });
  const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
  return { targetId, sessionId };
}
/** Evaluates `expr` (awaiting a promise) in a tab and returns its JSON value. */
async function evaluate(tab, expr) {
  const res = await send('Runtime.evaluate', { expression: expr, awaitPromise: true, returnByValue: true }, tab.sessionId);
  if (res.exceptionDetails) throw new Error(`${expr}: ${res.exceptionDetails.exception?.description || res.exceptionDetails.text}`);
  return res.result.value;
}

const relayHead = async () => (await relay.status()).head.height;

await r.test('a_hidden_tab_keeps_validating_under_background_throttling', async () => {
  const tab = await openTab(`${relay.http}/?store=hidden&pkg=${PKG}`);
  await waitFor('the node started', () => evaluate(tab, 'window.pbReady === true || document.body.dataset.state === "error"'), 60_000);
  assert(await evaluate(tab, 'document.body.dataset.state') !== 'error', 'the node started');
  const target = await relayHead();
  await waitFor('the visible tab at the relay head', async () => (await evaluate(tab, 'window.pbNode.status().then((s) => s.headHeight)')) >= target, 60_000);
  // A timer the page chains (as a polling page would): how throttled this page's timers are.
  await evaluate(tab, `(() => { window.__ticks = []; const t0 = performance.now();
    const f = () => { window.__ticks.push(performance.now() - t0); setTimeout(f, 100); }; f(); return true; })()`);
  // When each block reaches the node (the block event), beside the time its producer stamped on it: the
  // delivery delay, visible for VISIBLE_S and then hidden, in one run.
  await evaluate(tab, `(() => { window.__arrivals = []; window.pbNode.on('block', (b) => window.__arrivals.push([b.height, Date.now()])); return true; })()`);
  const visibleFrom = Date.now();
  await sleep(VISIBLE_S * 1000);
  const front = await openTab('about:blank');
  await waitFor('the node tab hidden', async () => (await evaluate(tab, 'document.visibilityState')) === 'hidden', 10_000, 100);
  const hiddenAt = Date.now();
  const startHeight = await evaluate(tab, 'window.pbNode.status().then((s) => s.headHeight)');
  const startValidated = await evaluate(tab, 'window.pbNode.status().then((s) => s.blocksValidated)');
  // Sample how far behind the relay the hidden tab is, every 2 s. Asking the
  // page over DevTools runs no timer of the page's.
  const lags = [];
  while (Date.now() - hiddenAt < HIDDEN_S * 1000) {
    await sleep(2000);
    const [head, mine] = await Promise.all([relayHead(), evaluate(tab, 'window.pbNode.status().then((s) => s.headHeight)')]);
    lags.push({ t: Math.round((Date.now() - hiddenAt) / 1000), lag: head - mine });
  }
  assert(await evaluate(tab, 'document.visibilityState') === 'hidden', 'still hidden at the end');
  const delays = await evaluate(tab, `Promise.all(window.__arrivals.map(async ([h, at]) => {
    const b = await window.pbNode.block(h); return b ? [at, at - b.timestampMs] : null; })).then((x) => x.filter(Boolean))`);
  const pct = (xs, q) => { const v = xs.slice().sort((a, b) => a - b); return v.length ? v[Math.min(v.length - 1, Math.floor(q * v.length))] : NaN; };
  const visible = delays.filter(([at]) => at >= visibleFrom && at < hiddenAt).map(([, d]) => d);
  const hidden = delays.filter(([at]) => at >= hiddenAt + (GRACE_S + 5) * 1000).map(([, d]) => d);
  console.log(`  block delivery (producer's timestamp to the node's block event): visible ${visible.length} blocks p50 ${pct(visible, 0.5)} ms ` +
    `p99 ${pct(visible, 0.99)} ms; hidden (from ${GRACE_S + 5} s on), ${hidden.length} blocks p50 ${pct(hidden, 0.5)} ms p99 ${pct(hidden, 0.99)} ms`);
  const end = await evaluate(tab, 'window.pbNode.status()');
  const produced = (await relayHead()) - startHeight;
  const ticks = await evaluate(tab, 'window.__ticks.map(Math.round)');
  const hiddenMs = Date.now() - hiddenAt;
  const tickSpan = ticks[ticks.length - 1] ?? 0; // time of the last tick, from when the chain of timers began
  const lateTicks = ticks.filter((t) => t > tickSpan - (hiddenMs - (GRACE_S + 5) * 1000)).length;
  const sorted = lags.map((x) => x.lag).sort((a, b) => a - b);
  const p50 = sorted[Math.floor(sorted.length / 2)];
  const max = sorted[sorted.length - 1];
  console.log(`  hidden ${Math.round(hiddenMs / 1000)} s (intensive throttling after ${GRACE_S} s): the relay produced ${produced} blocks, ` +
    `the hidden tab validated ${end.blocksValidated - startValidated}; lag behind the relay's published head (a snapshot, so -1 is level) p50 ${p50}, max ${max} blocks ` +
    `(a block every 500 ms); a 100 ms page timer fired ${lateTicks} times in the last ${Math.round(hiddenMs / 1000) - GRACE_S - 5} s ` +
    `(${lateTicks <= 4 ? 'intensive throttling: about once a minute' : 'standard background throttling: about once a second'})`);
  console.log(`  lag samples (s:blocks): ${lags.map((x) => `${x.t}:${x.lag}`).join(' ')}`);
  // The page's timers were throttled (else this test proves nothing): a 100 ms
  // timer fires 10 times a second when visible, about once a second hidden
  // (here 1.25 a second: the page's network work lets some run between the
  // aligned wake-ups), so anything under 4 a second is throttled.
  const hiddenSecs = (hiddenMs - (GRACE_S + 5) * 1000) / 1000;
  assert(lateTicks <= hiddenSecs * 4, `the page's timers were throttled (${lateTicks} in ${hiddenSecs} s; a visible page's fire 10 a second)`);
  // The bounds leave room for a slow, loaded CI machine; a node that waited
  // on its throttled timers would be a minute (120 blocks) behind.
  const samples = lags.map((x) => `${x.t}:${x.lag}`).join(' ');
  assert(end.blocksValidated - startValidated >= produced - 6, `validated ${end.blocksValidated - startValidated} of ${produced} blocks while hidden (lags ${samples})`);
  assert(p50 <= 2 && max <= 20, `behind the relay while hidden: p50 ${p50} (at most 2), max ${max} blocks (at most 20, 10 s); lags ${samples}`);
  assert(hidden.length >= 20 && pct(hidden, 0.5) < 1000 && pct(hidden, 0.99) < 10_000,
    `hidden, blocks arrive within 1 s at p50 and 10 s at p99 (p50 ${pct(hidden, 0.5)} ms, p99 ${pct(hidden, 0.99)} ms of ${hidden.length})`);
  await send('Target.closeTarget', { targetId: front.targetId });
});

r.summary();
ws.close();
stopChromium();
cleanup();
process.exit(r.failed ? 1 : 0);
