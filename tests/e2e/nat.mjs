// The "laptop in Starbucks" test: two browsers, each behind its own NAT,
// reach a direct /webrtc connection through STUN on the relay.
//
// It builds its own network of namespaces (root only) and tears it down:
//
//   lan1 (browser 1)            pub (relay, STUN, this script)            lan2 (browser 2)
//   192.168.71.2 ── r1 NAT ── 10.71.1.2 ─ 10.71.1.1  10.71.2.1 ─ 10.71.2.2 ── r2 NAT ── 192.168.72.2
//
// r1 and r2 masquerade (nftables) everything leaving their WAN side, so each
// browser's host candidate is unreachable from the other and only the
// STUN-learned (server-reflexive) addresses can connect. Every address lives
// in these namespaces only.

import { execFileSync } from 'node:child_process';
import { writeFileSync, mkdtempSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Runner, assert, launchBrowser, openNodePage, startRelay, status, waitFor, sleep, cleanup, trackPeerConnections,
} from './lib.mjs';

const r = new Runner('nat');
const TEST = 'two_browsers_behind_separate_nats_connect_directly_through_stun';
const SYMMETRIC = 'behind_symmetric_nats_pages_fall_back_to_the_relay_and_say_so';
const isRoot = process.getuid && process.getuid() === 0;
const have = (bin) => { try { execFileSync('sh', ['-c', `command -v ${bin}`]); return true; } catch { return false; } };
if (!isRoot || !have('nft') || !have('ip')) {
  r.skip(TEST, 'needs root, ip and nft to build the NAT namespaces');
  r.skip(SYMMETRIC, 'needs root, ip and nft to build the NAT namespaces');
  r.summary();
  process.exit(0);
}

// Phase 1 (root namespace) builds the network and reruns this script on the
// public side (phase 2), which runs the test; phase 1 then tears it down.
const inside = process.argv[2] === '--inside';
const tag = inside ? process.argv[3] : String(process.pid % 100000);
const ns = { pub: `pbn-pub-${tag}`, r1: `pbn-r1-${tag}`, r2: `pbn-r2-${tag}`, lan1: `pbn-lan1-${tag}`, lan2: `pbn-lan2-${tag}` };
const sh = (...args) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
const inNs = (n, ...cmd) => execFileSync('ip', ['netns', 'exec', n, ...cmd], { stdio: ['ignore', 'ignore', 'pipe'] });
function teardown() { if (!inside) for (const n of Object.values(ns)) { try { sh('netns', 'del', n); } catch {} } }
process.on('exit', teardown);

function link(a, aIf, aAddr, b, bIf, bAddr) {
  sh('-n', a, 'link', 'add', aIf, 'type', 'veth', 'peer', 'name', bIf, 'netns', b);
  sh('-n', a, 'addr', 'add', aAddr, 'dev', aIf);
  sh('-n', b, 'addr', 'add', bAddr, 'dev', bIf);
  sh('-n', a, 'link', 'set', aIf, 'up');
  sh('-n', b, 'link', 'set', bIf, 'up');
}
function natRouter(n) {
  inNs(n, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
  inNs(n, 'nft', 'add', 'table', 'ip', 'nat');
  inNs(n, 'nft', 'add chain ip nat post { type nat hook postrouting priority 100 ; }');
  inNs(n, 'nft', 'add', 'rule', 'ip', 'nat', 'post', 'oifname', 'wan', 'masquerade');
  // Like a home router, drop unsolicited packets from the outside. Dropped before conntrack confirms
  // them, they leave no entry behind; an accepted one would claim the mapping's public port, and the
  // browser's own packet to that peer would then be masqueraded to another port (hole punching fails).
  inNs(n, 'nft', 'add', 'table', 'inet', 'filter');
  inNs(n, 'nft', 'add chain inet filter input { type filter hook input priority 0 ; }');
  inNs(n, 'nft', 'add', 'rule', 'inet', 'filter', 'input', 'iifname', 'wan', 'ct', 'state', 'new', 'drop');
}

if (!inside) {
  let code = 1;
  let built = false;
  try {
    for (const n of Object.values(ns)) { sh('netns', 'add', n); sh('-n', n, 'link', 'set', 'lo', 'up'); }
    link(ns.pub, 'to1', '10.71.1.1/24', ns.r1, 'wan', '10.71.1.2/24');
    link(ns.pub, 'to2', '10.71.2.1/24', ns.r2, 'wan', '10.71.2.2/24');
    link(ns.r1, 'lan', '192.168.71.1/24', ns.lan1, 'eth0', '192.168.71.2/24');
    link(ns.r2, 'lan', '192.168.72.1/24', ns.lan2, 'eth0', '192.168.72.2/24');
    // The public side routes between the two WANs; each LAN's only way out is its NAT.
    inNs(ns.pub, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
    sh('-n', ns.r1, 'route', 'add', 'default', 'via', '10.71.1.1');
    sh('-n', ns.r2, 'route', 'add', 'default', 'via', '10.71.2.1');
    sh('-n', ns.lan1, 'route', 'add', 'default', 'via', '192.168.71.1');
    sh('-n', ns.lan2, 'route', 'add', 'default', 'via', '192.168.72.1');
    natRouter(ns.r1);
    natRouter(ns.r2);
    built = true;
    execFileSync('ip', ['netns', 'exec', ns.pub, process.execPath, process.argv[1], '--inside', tag], { stdio: 'inherit' });
    code = 0;
  } catch (e) {
    if (!built) {
      console.log(`test nat::${TEST} ... FAILED\n  building the NAT network: ${e.message}`);
      console.log('test result: FAILED. 0 passed; 1 failed; 0 ignored');
    }
  } finally {
    teardown();
  }
  process.exit(code);
}

let pages = [];
let relay;
const browsers = [];
try {
  await r.test(TEST, async () => {
    // The relay lives on the public side. This script runs there too (xtask
    // starts it with `ip netns exec`), so it can reach the relay's HTTP API.
    relay = await startRelay({
      args: ['--block-interval-ms', '1000'],
      listen: ['/ip4/10.71.1.1/tcp/0/ws'],
      httpListen: '10.71.1.1:0',
      stunListen: '10.71.1.1:0',
      webrtcIp: null,
    });
    const boot = await (await fetch(relay.http + '/api/bootstrap')).json();
    assert(boot.ice_servers.some((s) => s.urls.startsWith('stun:10.71.1.1:')), `the relay hands out its STUN: ${JSON.stringify(boot.ice_servers)}`);
    const dir = mkdtempSync(join(tmpdir(), 'pbn-chromium-'));
    for (const lan of [ns.lan1, ns.lan2]) {
      const wrapper = join(dir, `chromium-${lan}`);
      writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${lan} /usr/bin/chromium "$@"\n`);
      chmodSync(wrapper, 0o755);
      const ctx = await launchBrowser({ executablePath: wrapper });
      await trackPeerConnections(ctx);
      browsers.push(ctx);
    }
    const q = process.env.PB_E2E_VERBOSE ? '&logLevel=info' : '';
    pages = [await openNodePage(browsers[0], relay, 'nat1', q), await openNodePage(browsers[1], relay, 'nat2', q)];
    const ids = await Promise.all(pages.map((p) => p.evaluate(() => window.pbNode.peerId)));
    for (const [i, p] of pages.entries()) {
      const other = ids[1 - i];
      await waitFor(`browser ${i + 1} directly connected to the other`, async () =>
        (await status(p)).peers.some((x) => x.peerId === other && x.transport === 'webrtc'), 90_000, 500);
    }
    // The selected ICE pair goes between the two NATs' public addresses:
    // the connection is direct and it crossed both NATs.
    // (Polled: the answering side may report the nominated pair a moment after it shows connected.)
    const pairs = await Promise.all(pages.map((p) => waitFor('the selected ICE pair', () => p.evaluate(async () => {
      for (const pc of window.__pcs.filter((x) => x.connectionState === 'connected')) {
        const stats = [...(await pc.getStats()).values()];
        const pair = stats.find((s) => s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded');
        if (!pair) continue;
        const local = stats.find((s) => s.id === pair.localCandidateId);
        const remote = stats.find((s) => s.id === pair.remoteCandidateId);
        return { local: [local.candidateType, local.address], remote: [remote.candidateType, remote.address] };
      }
      return null;
    }), 10_000, 200)));
    console.log(`  selected pairs: ${JSON.stringify(pairs)}`);
    assert(pairs[0] && pairs[0].remote[1] === '10.71.2.2', `browser 1 talks to NAT 2's public address: ${JSON.stringify(pairs[0])}`);
    assert(pairs[1] && pairs[1].remote[1] === '10.71.1.2', `browser 2 talks to NAT 1's public address: ${JSON.stringify(pairs[1])}`);
    // And it carries the chain: both follow the relay's head.
    const target = (await relay.status()).head.height + 2;
    for (const p of pages) await waitFor('the page at the relay head', async () => (await status(p)).headHeight >= target, 60_000, 500);
    const errs = pages.flatMap((p) => p.pbErrors);
    assert(errs.length === 0, `page errors: ${errs.join('\n')}`);
  });

  await r.test(SYMMETRIC, async () => {
    assert(browsers.length === 2, 'the first test set the browsers up');
    // Both routers turn symmetric: every new flow gets a random public port, so the port STUN saw is
    // not the one a peer would reach, and no TURN server is configured: WebRTC cannot connect.
    for (const n of [ns.r1, ns.r2]) {
      inNs(n, 'nft', 'flush', 'chain', 'ip', 'nat', 'post');
      inNs(n, 'nft', 'add', 'rule', 'ip', 'nat', 'post', 'oifname', 'wan', 'masquerade', 'fully-random');
    }
    // The first pair leaves: a page in the same LAN would (rightly) connect directly over host candidates.
    for (const p of pages) await p.close();
    const q = process.env.PB_E2E_VERBOSE ? '&logLevel=info' : '';
    const fresh = [await openNodePage(browsers[0], relay, 'sym1', q), await openNodePage(browsers[1], relay, 'sym2', q)];
    pages.push(...fresh);
    const ids = await Promise.all(fresh.map((p) => p.evaluate(() => window.pbNode.peerId)));
    for (const [i, p] of fresh.entries()) {
      await waitFor(`symmetric page ${i + 1} meets the other through the relay`, async () =>
        (await status(p)).peers.some((x) => x.peerId === ids[1 - i]), 60_000, 500);
    }
    // Give the upgrade time to be tried and to fail (the handshake is bounded at 20 s).
    await waitFor('an upgrade tried and failed', () => fresh[1].evaluate(() =>
      window.__pcs.some((pc) => pc.signalingState === 'closed') || window.__pcs.some((pc) => pc.connectionState === 'connected')), 60_000, 500);
    await sleep(2_000);
    for (const [i, p] of fresh.entries()) {
      const s = await status(p);
      const other = s.peers.find((x) => x.peerId === ids[1 - i]);
      assert(other && other.transport === 'relayed', `page ${i + 1} falls back to the relayed path: ${JSON.stringify(other)}`);
      assert(!s.peers.some((x) => x.transport === 'webrtc'), `no direct peer behind a symmetric NAT: ${JSON.stringify(s.peers)}`);
      const note = await p.evaluate(() => document.getElementById('listen-note').textContent);
      assert(/through the relay/.test(note), `the page says so: "${note}"`);
    }
    // Still a full peer: both follow the chain over the relay.
    const target = (await relay.status()).head.height + 2;
    for (const p of fresh) await waitFor('the page at the relay head', async () => (await status(p)).headHeight >= target, 60_000, 500);
    const errs = fresh.flatMap((p) => p.pbErrors);
    assert(errs.length === 0, `page errors: ${errs.join('\n')}`);
  });
} finally {
  for (const b of browsers) await b.close().catch(() => {});
  r.summary();
  cleanup();
  teardown();
}
process.exit(r.failed ? 1 : 0);
