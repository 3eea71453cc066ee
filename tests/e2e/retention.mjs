// Retention: a page that keeps only its newest blocks (`retainBlocks`) prunes
// IndexedDB as it goes, keeps validating new blocks, says in its status
// handshake from which height it serves, and serves what it holds: with the
// relay not serving, a page behind by a few blocks catches up from it, and a
// fresh page asks it for nothing it lacks (and keeps it as a peer) until an
// archive serves again. A real dev relay, real Chromium, real IndexedDB.

import { Runner, assert, launchBrowser, openNodePage, startRelay, status, waitFor, sleep, finish } from './lib.mjs';

const r = new Runner('retention');
const HISTORY = 300;
const KEEP = 200; // two minutes of blocks: room for the test's steps before the window moves past them
const relay = await startRelay({ args: ['--block-interval-ms', '600', '--dev-history', String(HISTORY)] });
const context = await launchBrowser();
const pages = [];
const open = async (store, q = '') => { const p = await openNodePage(context, relay, store, q); pages.push(p); return p; };
const serveSync = async (on) => assert((await fetch(`${relay.http}/api/dev/serve-sync`, { method: 'POST', body: String(on) })).ok, 'dev serve-sync');
const stored = (p) => p.evaluate(() => window.pbNode._hook('storedBlocks'));

let pruned;
await r.test('a_page_that_keeps_few_blocks_prunes_indexeddb_and_keeps_validating', async () => {
  pruned = await open('pruned', `&retainBlocks=${KEEP}`);
  const target = (await relay.status()).head.height;
  await waitFor('the pruned page at the head', async () => (await status(pruned)).headHeight >= target, 120_000);
  const st = await status(pruned);
  assert(st.blocksValidated >= target, `validated every block (${st.blocksValidated} of ${target})`);
  assert(st.lowestHeight > 1 && st.lowestHeight >= st.headHeight - KEEP && st.lowestHeight <= st.finalHeight,
    `serves from ${st.lowestHeight} (head ${st.headHeight}, final ${st.finalHeight})`);
  await waitFor('IndexedDB pruned to the window', async () => (await stored(pruned)) <= KEEP + 8, 30_000);
  assert(await pruned.evaluate((h) => window.pbNode.block(h).then((b) => b === null), st.lowestHeight - 1), 'a block below the window is gone');
  // New blocks go on being validated and stored, old ones pruned.
  const later = st.headHeight + 10;
  await waitFor('10 more blocks validated', async () => (await status(pruned)).headHeight >= later, 30_000);
  const n = await stored(pruned);
  assert(n <= KEEP + 8, `still about ${KEEP} blocks stored (${n})`);
});

await r.test('a_pruned_page_serves_what_it_holds_and_is_asked_for_nothing_else', async () => {
  // A page that synced everything, then was closed for a while.
  let behind = await open('behind');
  const t0 = (await relay.status()).head.height;
  await waitFor('behind at the head', async () => (await status(behind)).headHeight >= t0, 120_000);
  await behind.close();
  pages.splice(pages.indexOf(behind), 1);
  await waitFor('the relay 15 blocks on', async () => (await relay.status()).head.height >= t0 + 15, 60_000);
  await serveSync(false);
  try {
    const served0 = (await status(pruned)).blocksServed;
    behind = await open('behind');
    const target = (await relay.status()).head.height;
    // Peer exchange through the relay links the two pages. Once in CI (in the namespace, where pages upgrade to
    // direct WebRTC) the link went and did not come back within the minute; the mesh's reconnection is not what
    // this test is about, so a page without the pruned one as a peer dials its relayed address, as an app could.
    const prunedId = (await status(pruned)).peerId;
    const relayedAddr = async () => (await status(pruned)).listen.find((a) => a.includes('/p2p-circuit') && !a.includes('/webrtc'));
    let redials = 0;
    await waitFor('behind caught up from the pruned page', async () => {
      const b = await status(behind);
      if (b.headHeight >= target) return true;
      if (!b.peers.some((x) => x.peerId === prunedId) && Date.now() - behind.openedAt > 10_000) {
        const addr = await relayedAddr();
        if (addr) { redials++; await behind.evaluate((a) => window.pbNode.dial(a).catch(() => null), addr); }
      }
      return false;
    }, 90_000, 1000)
      .catch(async (e) => {
        const b = await status(behind);
        const p = await status(pruned);
        throw new Error(`${e.message}; behind at ${b.headHeight} (target ${target}), peers ${JSON.stringify(b.peers.map((x) => [x.peerId.slice(-6), x.transport, x.head]))}; ` +
          `pruned ${p.peerId.slice(-6)} head ${p.headHeight} lowest ${p.lowestHeight} served ${p.blocksServed - served0}`);
      });
    const served = (await status(pruned)).blocksServed - served0;
    assert(served >= 10, `the pruned page served the missing blocks (${served})`);
    console.log(`  the pruned page served ${served} blocks to a page closed for 15 blocks (${redials} redials); it stores ${await stored(pruned)} (retainBlocks ${KEEP})`);

    await behind.close();
    pages.splice(pages.indexOf(behind), 1);
    // A fresh page: nobody serving holds block 1. It asks the pruned page nothing and keeps it as a peer.
    const fresh = await open('fresh');
    const before = (await status(pruned)).blocksServed;
    await waitFor('the fresh page meets the pruned one', async () => (await status(fresh)).peers.some((p) => p.peerId === prunedId), 30_000);
    await sleep(5000);
    const f = await status(fresh);
    assert(f.headHeight === 0 || f.headHeight < (await status(pruned)).lowestHeight, `the fresh page could not sync yet (${f.headHeight})`);
    assert((await status(pruned)).blocksServed === before, 'the pruned page was asked for nothing it lacks');
    assert(f.peers.some((p) => p.peerId === prunedId), 'and is still a peer');
    await serveSync(true);
    const t = (await relay.status()).head.height;
    await waitFor('the fresh page synced once an archive serves', async () => (await status(fresh)).headHeight >= t, 120_000);
  } finally {
    await serveSync(true);
  }
});

await finish(r, pages, context);
