// Browser end-to-end tests: a real dev relay process, real Chromium pages
// running the wasm node, real IndexedDB. Run by `cargo xtask test` (inside a
// network namespace of its own when it can make one). Prints cargo-style
// result lines that xtask adds to its totals.

import {
  Runner, assert, launchBrowser, openNodePage, startRelay, status, waitFor, sleep, OUT_DIR, ROOT, PKG, cleanup,
} from './lib.mjs';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';

const r = new Runner('e2e');
const HISTORY = 600; // blocks of dev history before the pages open

const relay = await startRelay({ args: ['--block-interval-ms', '700', '--dev-history', String(HISTORY), '--dev-txs-per-block', '20'] });
const context = await launchBrowser();
// Every download of the wasm, the pages' and their workers' (Playwright reports both on the context).
let wasmDownloads = 0;
context.on('request', (req) => { if (req.url().endsWith('/protoblock_wasm_bg.wasm')) wasmDownloads += 1; });
const pages = [];
const open = async (store, q = '', rel = relay) => { const p = await openNodePage(context, rel, store, q); pages.push(p); return p; };

let p1, p2, p3;

await r.test('three_pages_sync_to_the_relay_head_and_validate', async () => {
  [p1, p2, p3] = [await open('p1'), await open('p2'), await open('p3')];
  const target = (await relay.status()).head.height;
  assert(target >= HISTORY, `relay has its history (${target})`);
  for (const p of [p1, p2, p3]) {
    await waitFor('page at the relay head', async () => (await status(p)).headHeight >= target, 120_000);
  }
  for (const p of [p1, p2, p3]) {
    const s = await status(p);
    assert(s.blocksValidated >= target, `page validated every block (${s.blocksValidated} of ${target})`);
    // Signatures were checked in the page's Web Worker, not skipped: the chain
    // inserts a block unchecked only after the worker passed those bytes.
    assert(s.blocksVerifiedByWorkers > 0, `signature worker used (${s.blocksVerifiedByWorkers} blocks)`);
  }
  // The workers run the page's compiled module: the wasm is downloaded once per page, not again per worker.
  assert(wasmDownloads === 3, `the wasm was requested ${wasmDownloads} times for 3 pages and their workers`);
  for (const p of [p1, p2, p3]) {
    const s = await status(p);
    const mine = await p.evaluate((h) => window.pbNode.block(h), target);
    const theirs = await relay.block(target);
    assert(mine && mine.id === theirs.id, `same block at ${target}: ${mine && mine.id} vs ${theirs.id}`);
    assert(mine.stateRoot === theirs.state_root, 'same state root');
    assert(s.peers.some((x) => x.peerId === relay.peerId), 'relay is a peer');
    assert(s.peers.every((x) => ['websocket', 'webrtc-direct', 'relayed', 'webrtc'].includes(x.transport)), `transports: ${JSON.stringify(s.peers)}`);
  }
  await p1.screenshot({ path: join(OUT_DIR, 'page-live.png'), fullPage: true });
});

await r.test('a_tx_from_page1s_wallet_is_in_a_block_seen_by_page3', async () => {
  const name = `E2E Coach ${Date.now() % 100000}`;
  const txId = await p1.evaluate((n) => window.pbNode.registerName(n), name);
  assert(/^[0-9a-f]{64}$/.test(txId), `tx id ${txId}`);
  const wallet = await p1.evaluate(() => window.pbNode.wallet());
  // Page 3 validated a block carrying the tx: find it in page 3's own store.
  const found = await waitFor('the tx in a block on page 3', () => p3.evaluate(async (id) => {
    for (const b of await window.pbNode.recentBlocks(30)) {
      if (b.txCount === 0) continue;
      const d = await window.pbNode.block(b.height);
      const tx = d.txs.find((t) => t.id === id);
      if (tx) return { height: d.height, tx };
    }
    return null;
  }, txId), 60_000, 500);
  assert(found.tx.kind === 'name' && found.tx.signer === wallet.publicKey, `the tx is page 1's: ${JSON.stringify(found)}`);
  const names = await p3.evaluate(() => window.pbNode.fantasy().then((f) => f.names.map((n) => n.name)));
  assert(names.includes(name), 'page 3 state has the name');
  // Page 2 shares page 1's wallet (one per site): a second name for it is refused with a plain error.
  const err = await p2.evaluate((n) => window.pbNode.registerName(n)
    .then(() => null, (e) => ({ name: e.name, code: e.code, rule: e.rule, message: e.message, base: e instanceof Error })), `${name} II`);
  assert(err && /already has/i.test(err.message), `a second name refused: ${JSON.stringify(err)}`);
  // Programs branch on names, not on the message.
  assert(err.base && err.name === 'TxRejectedError' && err.code === 'invalid' && err.rule === 'already_named', `typed error: ${JSON.stringify(err)}`);
  const bad = await p2.evaluate(() => window.pbNode.transfer('nobody', 0.5).then(() => null, (e) => `${e.name}/${e.code}`));
  assert(bad === 'InvalidArgumentError/bad_argument', `a bad amount is a bad_argument: ${bad}`);
});

await r.test('a_wallet_exported_in_the_page_restores_in_a_fresh_profile', async () => {
  const pass = 'e2e backup passphrase';
  const mine = await p1.evaluate(() => window.pbNode.wallet());
  assert(mine.name, `page 1's wallet has a name: ${JSON.stringify(mine, (k, v) => (typeof v === "bigint" ? `${v}n` : v))}`);
  // Tabs of one site share one wallet (its own database, per origin).
  const p2w = await p2.evaluate(() => window.pbNode.wallet());
  assert(p2w.publicKey === mine.publicKey, 'pages of one profile share the wallet');
  // Export through the page: its passphrase prompt, then the download.
  p1.once('dialog', (d) => d.accept(pass));
  const [dl] = await Promise.all([p1.waitForEvent('download'), p1.click('#export-wallet')]);
  const text = readFileSync(await dl.path(), 'utf8');
  const file = JSON.parse(text);
  assert(file.format === 'protoblock-wallet-backup' && file.publicKey === mine.publicKey && file.kdf.iterations >= 100000,
    `a backup of page 1's wallet: ${text}`);
  const context2 = await launchBrowser();
  try {
    const fresh = await openNodePage(context2, relay, 'restored');
    const own = await fresh.evaluate(() => window.pbNode.wallet());
    assert(own.publicKey !== mine.publicKey, 'a fresh profile has a wallet of its own');
    const head = (await relay.status()).head.height;
    await waitFor('the fresh profile synced', async () => (await status(fresh)).headHeight >= head, 120_000);
    // Another key: page 1's name is taken for it.
    const taken = await fresh.evaluate((n) => window.pbNode.registerName(n).then(() => null, (e) => e.rule), mine.name);
    assert(taken === 'name_taken', `page 1's name is taken for another key: ${taken}`);
    // Its own name, through the page's form: the page marks the tx "in block" when a block carries it
    // (the block event lists its txs' ids; before, it gave a count and nothing was ever marked).
    await fresh.fill('#register-name-input', `Restored ${Date.now() % 100000}`);
    await fresh.click('#register-name-btn');
    await waitFor('the tx marked in block', () => fresh.evaluate(() => {
      const s = document.querySelector('#register-result .txstate');
      return s && /^in block #\d+$/.test(s.textContent) ? s.textContent : null;
    }), 60_000, 250);
    const code = (t, p, replace) => fresh.evaluate(([t, p, replace]) => window.pbNode.importWallet(t, p, replace)
      .then(() => null, (e) => e.code), [t, p, replace]);
    assert(await code(text, 'not the passphrase', true) === 'bad_passphrase', 'a wrong passphrase is refused');
    assert(await code(text, pass, false) === 'wallet_exists', 'another wallet is not replaced unasked');
    assert(await code('{"format":"nope"}', pass, true) === 'bad_backup', 'a file that is no backup is refused');
    // Import through the page: the file input, the passphrase prompt, the confirmation to replace.
    fresh.on('dialog', (d) => d.accept(d.type() === 'prompt' ? pass : undefined));
    await fresh.setInputFiles('#import-wallet-file', { name: 'backup.json', mimeType: 'application/json', buffer: Buffer.from(text) });
    await waitFor('the restored wallet', async () => {
      const w = await fresh.evaluate(() => window.pbNode.wallet());
      return w.publicKey === mine.publicKey;
    }, 60_000, 250);
    const target = (await relay.status()).head.height;
    await waitFor('the fresh profile at the head', async () => (await status(fresh)).headHeight >= target, 120_000);
    const [w, again] = await Promise.all([fresh.evaluate(() => window.pbNode.wallet()), p1.evaluate(() => window.pbNode.wallet())]);
    // Balances are bigints (exact at any size).
    assert(typeof w.balance === 'bigint', `a balance is a bigint (${typeof w.balance})`);
    assert(w.name === again.name && w.balance === again.balance, `same name and balance: ${[w.name, w.balance, again.name, again.balance]}`);
    const shown = await fresh.evaluate(() => document.getElementById('backup-result').textContent);
    assert(/restored/i.test(shown), `the page says so: ${shown}`);
    // Stored, not only in memory: a reload keeps it.
    await fresh.reload();
    await fresh.waitForFunction(() => window.pbReady === true, null, { timeout: 60_000 });
    const kept = await fresh.evaluate(() => window.pbNode.wallet());
    assert(kept.publicKey === mine.publicKey, 'the restored wallet survives a reload');
  } finally {
    await context2.close();
  }
});

await r.test('the_explorer_shows_the_block_asked_for_last', async () => {
  // The first answer is held back 500 ms, so it arrives after the second: before, it was rendered last.
  await p1.evaluate(() => {
    const node = window.pbNode;
    const block = Object.getPrototypeOf(node).block;
    let n = 0;
    node.block = (k) => (n++ === 0 ? new Promise((r) => setTimeout(r, 500)).then(() => block.call(node, k)) : block.call(node, k));
  });
  try {
    await p1.fill('#explorer-input', '3');
    await p1.press('#explorer-input', 'Enter');
    await p1.fill('#explorer-input', '5');
    await p1.press('#explorer-input', 'Enter');
    await sleep(1_000);
    const shown = await p1.evaluate(() => document.querySelector('#explorer-body .xtitle')?.textContent);
    assert(shown === 'Block #5', `the explorer shows "${shown}", asked for block 5 last`);
  } finally {
    await p1.evaluate(() => { delete window.pbNode.block; });
  }
});

await r.test('a_full_storage_quota_is_an_error_event_and_a_banner', async () => {
  // A profile of its own whose origin may store 1 MB (DevTools' quota override): the fresh page's commits
  // of the relay's history outgrow it. The node stops placing blocks and says so; the page shows it.
  const context3 = await launchBrowser();
  try {
    const page = await context3.newPage();
    const cdp = await context3.newCDPSession(page);
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(relay.http).origin, quotaSize: 1024 * 1024 });
    await page.goto(`${relay.http}/?store=quota&pkg=${PKG}`);
    await page.waitForFunction(() => window.pbReady === true || document.body.dataset.state === 'error', null, { timeout: 60_000 });
    await page.evaluate(() => { window.__errors = []; window.pbNode.on('error', (e) => window.__errors.push(e.message)); });
    const failed = await waitFor('the store failure', () => page.evaluate(async () => {
      const s = await window.pbNode.status();
      return s.storeError ? { error: s.storeError, events: window.__errors, head: s.headHeight } : null;
    }), 120_000, 250);
    assert(/quota/i.test(failed.error), `a quota error: ${JSON.stringify(failed)}`);
    await waitFor('the error event', () => page.evaluate(() => window.__errors.length > 0), 10_000);
    const banner = await page.evaluate(() => ({
      shown: !document.getElementById('error-banner').hidden,
      text: document.getElementById('error-text').textContent,
      pill: document.getElementById('conn-text').textContent,
    }));
    assert(banner.shown && /quota|storage/i.test(banner.text), `the banner: ${JSON.stringify(banner)}`);
    await waitFor('the status says so', () => page.evaluate(() => /storage failed/i.test(document.getElementById('conn-text').textContent)), 10_000);
  } finally {
    await context3.close();
  }
});

await r.test('dial_resolves_once_connected_and_fails_with_a_code', async () => {
  // Before, `dial` resolved as soon as the dial was asked for, whatever became of it.
  const boot = await (await fetch(`${relay.http}/api/bootstrap`)).json();
  const ws = boot.multiaddrs.find((a) => a.includes('/ws/'));
  const dial = (a) => p2.evaluate((a) => window.pbNode.dial(a).then((peer) => ({ peer }), (e) => ({ code: e.code, message: e.message })), a);
  const ok = await dial(ws);
  assert(ok.peer === relay.peerId, `dial resolves to the relay's peer id once connected: ${JSON.stringify(ok)}`);
  const refused = await dial(`/ip4/127.0.0.1/tcp/1/ws/p2p/${relay.peerId}`);
  assert(refused.code === 'dial_failed', `a refused dial rejects with dial_failed: ${JSON.stringify(refused)}`);
  const junk = await dial('not a multiaddr');
  assert(junk.code === 'bad_argument', `an address that does not parse: ${JSON.stringify(junk)}`);
});

await r.test('one_page_runs_two_more_independent_nodes_and_stops_them', async () => {
  const target = (await relay.status()).head.height;
  const out = await p2.evaluate(async (target) => {
    const { ProtoblockNode } = await import(`./${window.pbPkg}/protoblock_wasm.js`);
    const a = await ProtoblockNode.start({ relay: location.origin, storeName: 'multi-a' });
    const b = await ProtoblockNode.start({ relay: location.origin, storeName: 'multi-b' });
    const heights = [];
    const t0 = Date.now();
    while (Date.now() - t0 < 90000) {
      const [sa, sb] = [await a.status(), await b.status()];
      if (sa.headHeight >= target && sb.headHeight >= target) { heights.push(sa.headHeight, sb.headHeight); break; }
      await new Promise((r) => setTimeout(r, 250));
    }
    const ids = [a.peerId, b.peerId, window.pbNode.peerId];
    const stores = [a.storeName, b.storeName];
    await a.stop();
    const after = await a.status().then(() => 'still running', (e) => e.message);
    const bStill = (await b.status()).headHeight;
    await b.stop();
    return { heights, ids, stores, after, bStill };
  }, target);
  assert(out.heights.length === 2, `both extra nodes synced: ${JSON.stringify(out)}`);
  assert(new Set(out.ids).size === 3, 'three distinct node identities in one page');
  assert(out.stores[0] !== out.stores[1], 'separate databases');
  assert(/stopped/.test(out.after), `a stopped node says so: ${out.after}`);
  assert(out.bStill >= target, 'stopping one node leaves the other running');
  assert((await status(p2)).headHeight >= target, "the page's own node is unaffected");
});

await r.test('a_reloaded_page_resumes_from_indexeddb_and_downloads_less', async () => {
  // A fresh page against a longer history: reload it mid-sync. Its signatures are checked on the page's
  // thread (`signatureWorkers=0`): with a worker its head can leap hundreds of blocks between two polls,
  // past the window this test needs, and resuming from IndexedDB is what is tested here.
  const p = await open('reload', '&signatureWorkers=0');
  const target = (await relay.status()).head.height;
  const before = await waitFor('page partly synced', async () => {
    const s = await status(p);
    return s.headHeight >= 200 && s.headHeight < target - 50 ? s : null;
  }, 60_000, 20);
  await p.reload();
  await waitFor('restarted', () => p.evaluate(() => window.pbReady === true), 60_000);
  const resumed = await status(p);
  // Commits are pipelined (one IndexedDB transaction in flight while the next runs validate), runs validated
  // meanwhile are staged into the next commit (group commit, at most 256 blocks), and a page unload aborts
  // an unfinished transaction: at most the staged runs and that transaction's are lost.
  assert(resumed.headHeight > 0 && resumed.headHeight >= before.headHeight - 2 * 256, `resumed at ${resumed.headHeight} (had ${before.headHeight})`);
  const target2 = (await relay.status()).head.height;
  await waitFor('reloaded page synced', async () => (await status(p)).headHeight >= target2, 120_000);
  const after = await status(p);
  assert(after.blocksDownloaded < target2, `second session downloaded ${after.blocksDownloaded} < ${target2} blocks`);
  // Ranges in flight at the reload may be fetched again: allow two ranges.
  assert(after.blocksDownloaded <= target2 - resumed.headHeight + 128, `only what was missing (${after.blocksDownloaded}, resumed at ${resumed.headHeight}, head ${target2})`);
  const stored = await p.evaluate(() => window.pbNode._hook('storedBlocks'));
  assert(stored >= target2, `IndexedDB holds ${stored} blocks`);
});

await r.test('a_browser_serves_sync_to_a_fresh_page', async () => {
  const others = [...pages];
  const served = async () => (await Promise.all(others.map(status))).reduce((n, s) => n + s.blocksServed, 0);
  const served0 = await served();
  const res = await fetch(`${relay.http}/api/dev/serve-sync`, { method: 'POST', body: 'false' });
  assert(res.ok, 'relay stopped serving sync');
  try {
    const p4 = await open('p4');
    const target = (await relay.status()).head.height;
    let seen;
    await waitFor('fresh page synced from browsers', async () => {
      seen = await status(p4);
      return seen.headHeight >= target;
    }, 120_000, 500).catch((e) => {
      const peers = seen && seen.peers.map((x) => `${x.peerId.slice(-6)} ${x.transport} head ${x.head}`);
      throw new Error(`${e.message}; page 4 at ${seen && seen.headHeight}, downloaded ${seen && seen.blocksDownloaded}, peers ${JSON.stringify(peers)}`);
    });
    const s4 = await status(p4);
    const servedByPages = await served();
    assert(servedByPages - served0 >= HISTORY, `pages served ${servedByPages - served0} blocks (page 4 is at ${s4.headHeight})`);
    const relayed = s4.peers.filter((x) => x.transport === 'relayed' || x.transport === 'webrtc');
    assert(relayed.length > 0, `page 4 has browser peers: ${JSON.stringify(s4.peers)}`);
  } finally {
    await fetch(`${relay.http}/api/dev/serve-sync`, { method: 'POST', body: 'true' });
  }
});

await r.test('a_tampered_block_is_rejected_and_not_stored', async () => {
  // A second relay that syncs genuinely, then serves blocks with a broken
  // signature. A fresh page that knows only it must refuse and ban it.
  const liar = await startRelay({
    dev: false, genesis: join(relay.dataDir, 'genesis.pb'), bootstrap: [relay.tcpAddr()],
    args: ['--serve-tampered-blocks'],
  });
  await waitFor('liar synced', async () => (await liar.status()).head.height >= HISTORY, 120_000);
  const p5 = await open('p5', '', liar);
  const banned = await waitFor('the liar banned', () => p5.evaluate(async (liarId) => {
    window.__bans = window.__bans || [];
    if (!window.__banHook) { window.__banHook = true; window.pbNode.on('peer', (e) => { if (e.banned) window.__bans.push(e); }); }
    const s = await window.pbNode.status();
    return window.__bans.find((b) => b.peerId === liarId) || (s.peers.every((p) => p.peerId !== liarId) && s.gossipRejected + window.__bans.length > 0 ? { peerId: liarId } : null);
  }, liar.peerId), 60_000, 200);
  assert(banned.peerId === liar.peerId, 'liar banned');
  const s = await status(p5);
  assert(!s.peers.some((p) => p.peerId === liar.peerId), 'liar disconnected');
  // Whatever the page stored is the genuine chain.
  const h = s.headHeight;
  if (h > 0) {
    const mine = await p5.evaluate((x) => window.pbNode.block(x), h);
    const theirs = await relay.block(h);
    assert(mine.id === theirs.id, 'stored blocks are genuine');
  }
  await liar.kill();
});

await r.test('a_page_syncs_while_the_relay_is_under_attack', async () => {
  // The live attackers (tests/src/attack.rs, the protoblock-attacker
  // program): liars with junk gossip, a connection flood, and sync streams
  // never read, all against this relay, while a fresh page joins.
  const bin = process.env.PB_ATTACKER_BIN || join(ROOT, 'target/debug/protoblock-attacker');
  const attacker = spawn(bin, ['--relay', relay.http, '--secs', '90', '--liars', '10', '--flooders', '100', '--unread-syncers', '5'],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  attacker.stdout.on('data', (d) => { out += d; });
  const done = new Promise((res) => attacker.on('exit', res));
  try {
    await waitFor('the attack under way', async () => out.includes('attacking'), 30_000);
    await sleep(5_000);
    const p6 = await open('p6');
    const target = (await relay.status()).head.height;
    await waitFor('page under attack at the relay head', async () => (await status(p6)).headHeight >= target, 120_000);
    const h = (await status(p6)).headHeight;
    await waitFor('page follows new blocks under attack', async () => (await status(p6)).headHeight > h + 3, 30_000);
    const health = await fetch(`${relay.http}/health`);
    assert(health.ok, `/health under attack: ${health.status}`);
  } finally {
    attacker.kill('SIGINT');
    await done;
  }
  const last = out.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  const got = last ? JSON.parse(last) : {};
  assert(got.connections > 100 && got.unread_streams > 0 && got.liar_connections > 0, `the attack ran: ${last}`);
});

// Transports to the relay: both are dialled together and whichever
// connects is kept, so a page gets in when either one is broken.
if (process.env.PB_E2E_WEBRTC_IP) {
  const boot = await (await fetch(`${relay.http}/api/bootstrap`)).json();
  const ws = boot.multiaddrs.find((a) => a.includes('/ws/'));
  const rtc = boot.multiaddrs.find((a) => a.includes('/webrtc-direct/'));
  const q = (addrs) => `&relay=none&genesis=${boot.genesis_pb}&bootstrap=${encodeURIComponent(addrs.join(','))}`;
  const transportTo = async (p) => {
    const s = await waitFor('connected to the relay', async () => {
      const st = await status(p);
      return st.peers.find((x) => x.peerId === relay.peerId) ? st : null;
    }, 90_000);
    return s.peers.find((x) => x.peerId === relay.peerId).transport;
  };
  await r.test('webrtc_direct_when_websocket_fails', async () => {
    assert(rtc, `relay announces webrtc-direct: ${boot.multiaddrs}`);
    const deadWs = ws.replace(/\/tcp\/\d+\//, '/tcp/9/');
    const p = await open('rtc', q([deadWs, rtc]));
    assert((await transportTo(p)) === 'webrtc-direct', 'connected over WebRTC-direct');
    // The status handshake (a request-response round trip) and ping ran
    // over the WebRTC-direct connection.
    const s = await waitFor('handshake and ping over WebRTC-direct', async () => {
      const st = await status(p);
      const r = st.peers.find((x) => x.peerId === relay.peerId);
      return r && r.head > 0 && r.latencyMs != null ? r : null;
    }, 60_000);
    assert(s.transport === 'webrtc-direct', 'still on WebRTC-direct');
    // And a full sync runs over it. (It once stalled in 2 of 6 runs and was
    // only reported; since the data-channel stream fork (FIN/FIN_ACK) it
    // completed 16 of 16, in about 5 s each, so it is asserted.)
    const target = (await relay.status()).head.height;
    await waitFor('synced over WebRTC-direct', async () => (await status(p)).headHeight >= target, 60_000);
    const after = await status(p);
    assert(after.peers.find((x) => x.peerId === relay.peerId)?.transport === 'webrtc-direct', 'synced over WebRTC-direct');
  });
  await r.test('websocket_when_webrtc_direct_fails', async () => {
    const deadRtc = rtc.replace(/\/udp\/\d+\//, '/udp/9/');
    const p = await open('ws-only', q([deadRtc, ws]));
    assert((await transportTo(p)) === 'websocket', 'connected over WebSocket');
  });
} else {
  r.skip('webrtc_direct_when_websocket_fails', 'no network namespace (PB_E2E_WEBRTC_IP unset)');
  r.skip('websocket_when_webrtc_direct_fails', 'no network namespace (PB_E2E_WEBRTC_IP unset)');
}

// The other tests drive hooks only the test build has (PB_E2E_PKG); this one runs the package
// users get, www/pkg, in a page, and proves the hooks are not in it.
await r.test('the_product_package_syncs_and_carries_no_test_hooks', async () => {
  const hooks = ['_testSignal', 'storedBlocks', '_testBlackHole', 'pbStoreStats'];
  const files = (pkg) => ['protoblock_wasm.js', 'protoblock_wasm_bg.wasm']
    .map((f) => readFileSync(join(ROOT, 'www', pkg, f)).toString('latin1')).join('');
  const shipped = hooks.filter((h) => files('pkg').includes(h));
  assert(shipped.length === 0, `the product package carries test hooks: ${shipped}`);
  if (PKG !== 'pkg') {
    const inTest = files(PKG);
    assert(hooks.slice(0, 3).every((h) => inTest.includes(h)), `the check can fail: ${PKG} has the hooks`);
  }
  const p = await open('product', '&pkg=pkg');
  assert(await p.evaluate(() => window.pbPkg) === 'pkg', 'the page loaded the product package');
  const target = (await relay.status()).head.height;
  await waitFor('the product package at the relay head', async () => (await status(p)).headHeight >= target, 120_000);
  const refused = await p.evaluate(() => window.pbNode._hook('storedBlocks').then(() => 'ran', (e) => `${e.name}/${e.code}`));
  assert(refused === 'InvalidArgumentError/bad_argument', `the product node ran a test hook: ${refused}`);
});

await r.test('no_uncaught_errors_in_any_page', async () => {
  const errs = pages.flatMap((p) => p.pbErrors);
  assert(errs.length === 0, `page errors:\n${errs.slice(0, 5).join('\n')}`);
});

r.summary();
await context.close().catch(() => {});
await relay.kill();
cleanup();
process.exit(r.failed ? 1 : 0);
