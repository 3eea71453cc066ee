// Shared harness for the browser tests and the browser benchmark: real relay
// processes (the protoblock-relay binary), Debian's Chromium driven by
// playwright-core, fresh profiles, and bounded waits everywhere.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

export const ROOT = resolve(new URL('../..', import.meta.url).pathname);
export const RELAY_BIN = process.env.PB_RELAY_BIN || join(ROOT, 'target/debug/protoblock-relay');
export const OUT_DIR = join(ROOT, 'target/e2e');
// The package build pages load (www/<PB_E2E_PKG>): `cargo xtask test` runs the browser tests on
// www/pkg-test-hooks, the product package plus the hooks they drive; benchmarks run the product's.
export const PKG = process.env.PB_E2E_PKG || 'pkg';
mkdirSync(OUT_DIR, { recursive: true });

const children = new Set();
const tmpDirs = new Set();
export function cleanup() {
  for (const c of children) { try { c.kill('SIGKILL'); } catch {} }
  for (const d of tmpDirs) { try { rmSync(d, { recursive: true, force: true }); } catch {} }
}
process.on('exit', cleanup);
process.on('SIGINT', () => { cleanup(); process.exit(130); });

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value, at most `ms`. */
export async function waitFor(what, fn, ms = 60_000, every = 250) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; if (/relay exited/.test(e.message)) throw e; }
    await sleep(every);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}

/**
 * Starts a relay process. `dev` makes it produce a dev chain; otherwise give
 * `genesis` (a file) and `bootstrap`. Ports are chosen by the OS. Resolves
 * once its HTTP API answers, with { http, proc, addrs, dataDir, peerId, kill }.
 */
export async function startRelay({
  dev = true, args = [], dataDir, genesis, bootstrap = [], webrtcIp = process.env.PB_E2E_WEBRTC_IP,
  listen, httpListen = '127.0.0.1:0', stunListen = '127.0.0.1:0',
} = {}) {
  dataDir = dataDir || mkdtempSync(join(tmpdir(), 'pb-e2e-relay-'));
  tmpDirs.add(dataDir);
  if (!listen) {
    listen = ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws'];
    // WebRTC-direct needs an address with a route (not lo): the test
    // namespace's veth address when there is one.
    if (webrtcIp) listen.push(`/ip4/${webrtcIp}/udp/0/webrtc-direct`);
  }
  const full = [
    ...(dev ? ['--dev'] : ['--genesis', genesis]),
    '--data-dir', dataDir,
    '--listen', listen.join(','),
    '--http-listen', httpListen,
    '--stun-listen', stunListen,
    '--www-dir', join(ROOT, 'www'),
    ...(bootstrap.length ? ['--bootstrap', bootstrap.join(',')] : []),
    ...args,
  ];
  const proc = spawn(RELAY_BIN, full, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' } });
  children.add(proc);
  const relay = { proc, dataDir, addrs: [], http: null, height: 0, lines: [] };
  proc.stderr.on('data', (d) => { if (process.env.PB_E2E_VERBOSE) process.stderr.write(`[relay] ${d}`); });
  let buf = '';
  proc.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i); buf = buf.slice(i + 1);
      if (relay.lines.length < 200) relay.lines.push(line);
      if (line.startsWith('http ')) relay.http = line.slice(5).trim();
      if (line.startsWith('listening ')) relay.addrs.push(line.slice(10).trim());
      if (line.startsWith('stun ')) relay.stun = line.slice(5).trim();
      const m = /^height (\d+)/.exec(line);
      if (m) relay.height = Number(m[1]);
    }
  });
  relay.exited = new Promise((r) => proc.on('exit', (code, sig) => { children.delete(proc); relay.dead = { code, sig }; r({ code, sig }); }));
  await waitFor('relay HTTP', () => {
    if (relay.dead) throw new Error(`relay exited (${JSON.stringify(relay.dead)}): ${relay.lines.join(' | ')}`);
    return relay.http;
  }, 120_000, 100);
  await waitFor('relay health', async () => (await fetch(relay.http + '/health')).ok, 30_000, 100);
  const st = await (await fetch(relay.http + '/api/status')).json();
  relay.peerId = st.peer_id;
  relay.kill = async (signal = 'SIGTERM') => { proc.kill(signal); return relay.exited; };
  relay.status = async () => (await fetch(relay.http + '/api/status')).json();
  relay.block = async (h) => (await fetch(`${relay.http}/api/blocks/${h}`)).json();
  /** The arguments that restart this relay on the same ports, data dir and so identity. */
  relay.sameAddresses = () => ({
    dataDir,
    listen: [...new Set(relay.addrs.map((a) => a.replace(/\/p2p\/[^/]+$/, '').replace(/\/certhash\/[^/]+/, '')))],
    httpListen: new URL(relay.http).host,
    stunListen: relay.stun,
  });
  relay.tcpAddr = () => relay.addrs.find((a) => /\/tcp\/\d+\/p2p\//.test(a) && !a.includes('/ws'));
  return relay;
}

/** Launches Chromium with the flags this machine needs, on `profile` (a folder; default a fresh one). */
export async function launchBrowser({ executablePath = process.env.PB_CHROMIUM || '/usr/bin/chromium', profile, args = [] } = {}) {
  profile = profile || mkdtempSync(join(tmpdir(), 'pb-e2e-chromium-'));
  tmpDirs.add(profile);
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    viewport: { width: 1360, height: 900 },
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-features=WebRtcHideLocalIpsWithMdns',
      '--allow-loopback-in-peer-connection',
      '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
      '--enable-precise-memory-info',
      ...args,
    ],
  });
  return context;
}

/**
 * Opens the relay's page as a node with its own IndexedDB database. Records
 * uncaught page errors: a page that embeds the node must stay free of them.
 */
export async function openNodePage(context, relay, store, extraQuery = '') {
  const page = await context.newPage();
  page.pbErrors = [];
  page.on('pageerror', (e) => page.pbErrors.push(String(e && e.stack || e)));
  page.on('console', (m) => {
    const t = m.text();
    if (m.type() === 'error' && /closure invoked|RuntimeError|panicked/.test(t)) page.pbErrors.push(t);
    if (process.env.PB_E2E_VERBOSE) console.log(`[page ${store}] ${m.type()}: ${t}`);
  });
  const t0 = Date.now();
  const pkg = /[?&]pkg=/.test(extraQuery) ? '' : `&pkg=${PKG}`;
  await page.goto(`${relay.http}/?store=${encodeURIComponent(store)}${pkg}${extraQuery}`);
  // Polled inside the page every 5 ms (a 250 ms poll from here added up to
  // 250 ms to every page's start, and to the benchmark's first-peer figure).
  await page.waitForFunction(() => window.pbReady === true || document.body.dataset.state === 'error', null, { polling: 5, timeout: 60_000 })
    .catch((e) => { throw new Error(`node ${store} did not start in 60 s: ${e.message}`); });
  const state = await page.evaluate(() => document.body.dataset.state);
  if (state === 'error') {
    const msg = await page.evaluate(() => document.getElementById('error-banner')?.innerText);
    throw new Error(`page ${store} failed to start: ${msg}`);
  }
  page.openedAt = t0;
  return page;
}

export const status = (page) => page.evaluate(() => window.pbNode.status());

/** Collects results: each test is a named async function that throws on failure. */
export class Runner {
  constructor(name) { this.name = name; this.passed = 0; this.failed = 0; this.skipped = 0; }
  async test(name, fn) {
    const t0 = Date.now();
    try {
      await fn();
      this.passed++;
      console.log(`test ${this.name}::${name} ... ok (${Date.now() - t0} ms)`);
    } catch (e) {
      this.failed++;
      console.log(`test ${this.name}::${name} ... FAILED (${Date.now() - t0} ms)\n  ${e && e.stack || e}`);
    }
  }
  skip(name, why) { this.skipped++; console.log(`test ${this.name}::${name} ... skipped (${why})`); }
  summary() {
    console.log(`test result: ${this.failed ? 'FAILED' : 'ok'}. ${this.passed} passed; ${this.failed} failed; ${this.skipped} ignored`);
  }
}

/**
 * Records every RTCPeerConnection each page of `context` makes (in `window.__pcs`), so tests can look at
 * ICE stats and prove that failed handshakes leave none open. Call before opening pages.
 */
export async function trackPeerConnections(context) {
  await context.addInitScript(() => {
    const Orig = window.RTCPeerConnection;
    window.__pcs = [];
    if (Orig) window.RTCPeerConnection = class extends Orig { constructor(...a) { super(...a); this.__created = performance.now(); window.__pcs.push(this); } };
  });
}

/** The last test of a browser suite: no page logged an uncaught error. Then ends the process. */
export async function finish(r, pages, context) {
  await r.test('no_uncaught_errors_in_any_page', async () => {
    const errs = pages.flatMap((p) => p.pbErrors);
    assert(errs.length === 0, `page errors: ${errs.join('\n')}`);
  });
  r.summary();
  await context.close();
  cleanup();
  process.exit(r.failed ? 1 : 0);
}

export function assert(cond, msg) { if (!cond) throw new Error(`assertion failed: ${msg}`); }
