// One node per site: tabs of one browser profile share one node (a leader tab
// chosen with Web Locks, the others reaching it over a BroadcastChannel), a
// closed leader is replaced without a reload, and the database has one writer
// at a time. A real dev relay, real Chromium, real IndexedDB.

import { Runner, assert, launchBrowser, openNodePage, startRelay, status, waitFor, sleep, finish } from './lib.mjs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const r = new Runner('tabs');
const relay = await startRelay({ args: ['--block-interval-ms', '500', '--dev-history', '200'] });
const profile = mkdtempSync(join(tmpdir(), 'pb-e2e-tabs-profile-'));
let context = await launchBrowser({ profile });
const pages = [];
const allPages = [];
const open = async (store = 'tabs') => {
  const p = await openNodePage(context, relay, store);
  pages.push(p);
  allPages.push(p);
  return p;
};
const role = (p) => p.evaluate(() => window.pbNode.role);
const metric = async (name) => {
  const text = await (await fetch(`${relay.http}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
};
/** Every height from 1 to the head is in the node's database (asked through `page`'s node). */
const gaps = (p) => p.evaluate(async () => {
  const node = window.pbNode;
  const head = (await node.status()).headHeight;
  const missing = [];
  for (let h = 1; h <= head; h++) if (!(await node.block(h))) missing.push(h);
  return { head, missing: missing.slice(0, 10), stored: await node._hook('storedBlocks') };
});

await r.test('three_tabs_of_one_profile_run_one_node', async () => {
  const before = await metric('protoblock_connections');
  const tabs = [await open(), await open(), await open()];
  const roles = await Promise.all(tabs.map(role));
  assert(roles.filter((x) => x === 'leader').length === 1 && roles.filter((x) => x === 'follower').length === 2, `roles ${roles}`);
  const ids = await Promise.all(tabs.map((p) => p.evaluate(() => window.pbNode.peerId)));
  assert(new Set(ids).size === 1 && ids[0], `one peer id in every tab: ${ids}`);
  const target = (await relay.status()).head.height;
  for (const p of tabs) {
    await waitFor('the head shown in every tab', async () => Number(await p.evaluate(() => document.getElementById('height').textContent)) >= target, 60_000);
  }
  // One connection to the relay for the three tabs (the relay may still hold its other connections, none here).
  await waitFor('one more relay connection, not three', async () => (await metric('protoblock_connections')) === before + 1, 10_000)
    .catch(async (e) => { throw new Error(`${e.message}; connections ${before} -> ${await metric('protoblock_connections')}`); });
  await sleep(1500);
  assert((await metric('protoblock_connections')) === before + 1, 'still one connection');
  // Every tab can use the wallet: a follower's call signs in the leader.
  const follower = tabs[roles.indexOf('follower')];
  const keys = await Promise.all(tabs.map((p) => p.evaluate(async () => (await window.pbNode.wallet()).publicKey)));
  assert(new Set(keys).size === 1, `one wallet: ${keys}`);
  const id = await follower.evaluate(() => window.pbNode.registerName('tab-fan'));
  assert(/^[0-9a-f]{64}$/.test(id), `a follower registered a name (${id})`);
  await waitFor('the name on chain, seen by every tab', async () => {
    const names = await Promise.all(tabs.map((p) => p.evaluate(async () => (await window.pbNode.wallet()).name)));
    return names.every((n) => n === 'tab-fan');
  }, 30_000);
});

await r.test('closing_the_leader_hands_the_node_to_another_tab_without_a_gap', async () => {
  const roles = await Promise.all(pages.map(role));
  const leader = pages[roles.indexOf('leader')];
  const peerId = await leader.evaluate(() => window.pbNode.peerId);
  const rest = pages.filter((p) => p !== leader);
  const t0 = Date.now();
  await leader.close({ runBeforeUnload: true });
  pages.splice(pages.indexOf(leader), 1);
  const next = await waitFor('a new leader', async () => {
    for (const p of rest) if ((await role(p)) === 'leader') return p;
    return null;
  }, 20_000, 50);
  await waitFor('the new leader answers', async () => (await status(next)).peerId === peerId, 10_000, 50);
  const takeover = Date.now() - t0;
  console.log(`  takeover: ${takeover} ms from closing the leader's tab to a node answering in another tab`);
  assert(takeover < 10_000, `took over in ${takeover} ms`);
  const other = rest.find((p) => p !== next);
  const target = (await relay.status()).head.height;
  for (const p of rest) {
    await waitFor('every remaining tab follows the head', async () => (await status(p)).headHeight >= target, 60_000);
    assert(!(await p.evaluate(() => document.getElementById('error-banner').hidden === false)), 'no error banner');
  }
  assert((await role(other)) === 'follower', 'the other tab follows the new leader');
  const g = await gaps(other);
  assert(g.missing.length === 0, `IndexedDB has every height to ${g.head}; missing ${g.missing}`);
  assert(g.stored >= g.head, `stored ${g.stored} blocks for head ${g.head}`);
});

await r.test('a_later_tab_joins_and_a_reopened_profile_resumes', async () => {
  // Staggered: a tab opened now joins the running node.
  const late = await open();
  assert((await role(late)) === 'follower', 'a later tab follows');
  const before = await status(late);
  for (const p of pages.splice(0)) await p.close({ runBeforeUnload: true });
  await context.close();
  await sleep(3000); // the relay goes on producing
  context = await launchBrowser({ profile });
  const again = await open();
  assert((await role(again)) === 'leader', 'the first tab of a reopened profile runs the node');
  const resumed = await status(again);
  assert(resumed.peerId === before.peerId, 'same node identity after reopening');
  assert(resumed.headHeight >= before.headHeight - 1, `resumed at ${resumed.headHeight} (had ${before.headHeight})`);
  const target = (await relay.status()).head.height;
  await waitFor('the reopened node at the head', async () => (await status(again)).headHeight >= target, 60_000);
  const after = await status(again);
  assert(after.blocksDownloaded <= target - before.headHeight + 128, `downloaded only what was missing (${after.blocksDownloaded})`);
  assert(after.storeError === null, `no store error (${after.storeError})`);
  const g = await gaps(again);
  assert(g.missing.length === 0, `no gap after reopening; missing ${g.missing}`);
});

await r.test('a_newer_schema_opened_elsewhere_stops_the_old_node_with_an_error_not_a_hang', async () => {
  const leader = pages[0];
  await leader.evaluate(() => {
    window.__errors = [];
    window.pbNode.on('error', (e) => window.__errors.push(e));
  });
  const db = await leader.evaluate(() => window.pbNode.storeName);
  // Another tab of the site, with code that wants the next schema version.
  const other = await context.newPage();
  allPages.push(other);
  other.pbErrors = [];
  await other.goto(`${relay.http}/style.css`);
  const upgraded = await other.evaluate((name) => new Promise((resolve) => {
    const probe = indexedDB.open(name);
    probe.onsuccess = () => {
      const v = probe.result.version;
      probe.result.close();
      const req = indexedDB.open(name, v + 1);
      const t = setTimeout(() => resolve({ blocked: true }), 10_000);
      req.onblocked = () => { /* waits for the old connection to close; the timeout says if it never does */ };
      req.onsuccess = () => { clearTimeout(t); req.result.close(); resolve({ from: v, to: v + 1 }); };
      req.onerror = () => { clearTimeout(t); resolve({ error: String(req.error) }); };
    };
  }), db);
  assert(upgraded.to === upgraded.from + 1, `the newer schema opened, not blocked: ${JSON.stringify(upgraded)}`);
  // The old node's next commit fails: an error event with a code, and the page's banner.
  await waitFor('a store error event in the old node', async () => (await leader.evaluate(() => window.__errors.length)) > 0, 20_000);
  const ev = await leader.evaluate(() => window.__errors[0]);
  assert(ev.code === 'store_failed', `error event ${JSON.stringify(ev)}`);
  await waitFor('the banner', () => leader.evaluate(() => !document.getElementById('error-banner').hidden), 10_000);
});

await finish(r, allPages, context);
