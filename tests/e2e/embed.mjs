// Embedding: a third-party fantasy site on another origin (its own HTTP
// server, another port) adds a node with the package's custom elements, loaded
// from the relay with one script tag, and it syncs, shows the chain and uses
// its wallet. Also the embed example as the relay serves it (same origin).

import { Runner, assert, launchBrowser, startRelay, waitFor, cleanup, PKG, ROOT, OUT_DIR, finish } from './lib.mjs';
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const r = new Runner('embed');
const relay = await startRelay({ args: ['--block-interval-ms', '500', '--dev-history', '150'] });
const context = await launchBrowser();
const pages = [];

/** The site's page: embed.html as a site would copy it, pointed at the relay. */
const example = readFileSync(join(ROOT, 'www/embed.html'), 'utf8');
const sitePage = example
  .replace('<script type="module" src="./pkg/elements.js"></script>', `<script type="module" src="${relay.http}/${PKG}/elements.js"></script>`)
  .replace('<protoblock-node id="pb" store="sunday-league">', `<protoblock-node id="pb" store="sunday-league" relay="${relay.http}">`);
assert(sitePage.includes(`${relay.http}/${PKG}/elements.js`) && sitePage.includes(`relay="${relay.http}"`), 'the example has the snippet the test rewrites');
const site = createServer((req, res) => {
  if (req.url === '/' || req.url.startsWith('/?')) {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(sitePage);
  } else {
    res.writeHead(404).end();
  }
});
await new Promise((resolve) => site.listen(0, '127.0.0.1', resolve));
const siteUrl = `http://127.0.0.1:${site.address().port}/`;

async function openPage(url) {
  const page = await context.newPage();
  page.pbErrors = [];
  page.on('pageerror', (e) => page.pbErrors.push(String(e && e.stack || e)));
  page.on('console', (m) => { if (m.type() === 'error' && /closure invoked|RuntimeError|panicked/.test(m.text())) page.pbErrors.push(m.text()); });
  pages.push(page);
  await page.goto(url);
  return page;
}

/** The elements' view of the chain: the status's height and state, the blocks listed, the wallet. */
const shown = (p) => p.evaluate(() => ({
  state: document.querySelector('protoblock-status')?.dataset.state,
  height: Number(document.querySelector('protoblock-status')?.dataset.height ?? -1),
  blocks: document.querySelectorAll('protoblock-blocks li').length,
  topBlock: Number(document.querySelector('protoblock-blocks')?.dataset.height ?? -1),
  key: document.querySelector('protoblock-wallet .pb-key')?.title || '',
  name: document.querySelector('protoblock-wallet')?.dataset.name ?? null,
  error: document.querySelector('.pb-error')?.textContent || null,
}));

await r.test('a_site_on_another_origin_embeds_a_node_with_the_custom_elements_and_syncs', async () => {
  const p = await openPage(siteUrl);
  const origin = await p.evaluate(() => location.origin);
  assert(origin !== new URL(relay.http).origin, `the site is another origin (${origin} vs ${relay.http})`);
  const target = (await relay.status()).head.height;
  const s = await waitFor('the elements show the relay head, live', async () => {
    const v = await shown(p);
    if (v.error) throw new Error(`the widget shows an error: ${v.error}`);
    return v.state === 'live' && v.height >= target && v.topBlock >= target && v.blocks === 5 ? v : null;
  }, 90_000);
  assert(/^[0-9a-f]{64}$/.test(s.key), `the wallet element shows a key (${s.key})`);
  // The node is the site's: its database is in the site's origin.
  const dbs = await p.evaluate(async () => (await indexedDB.databases()).map((d) => d.name));
  assert(dbs.some((n) => n.startsWith('sunday-league-')), `the chain database is the site's: ${dbs}`);
  const st = await p.evaluate(() => document.getElementById('pb').node.status());
  assert(st.blocksValidated >= target, `the embedded node validated every block (${st.blocksValidated} of ${target})`);
  // The wallet element registers a name; the status element keeps following.
  await p.fill('protoblock-wallet input[name=name]', 'embedded-fan');
  await p.click('protoblock-wallet button[type=submit]');
  await waitFor('the name on chain, shown by the wallet element', async () => (await shown(p)).name === 'embedded-fan', 30_000);
  await p.screenshot({ path: join(OUT_DIR, 'embed-live.png') });
  const later = (await relay.status()).head.height;
  await waitFor('still following', async () => (await shown(p)).height >= later, 30_000);
});

await r.test('the_embed_example_served_by_the_relay_runs_on_the_product_package', async () => {
  const p = await openPage(`${relay.http}/embed.html`);
  const target = (await relay.status()).head.height;
  await waitFor('the example at the relay head', async () => {
    const v = await shown(p);
    if (v.error) throw new Error(`the widget shows an error: ${v.error}`);
    return v.state === 'live' && v.height >= target;
  }, 90_000);
});

await r.test('errors_are_classes_with_codes_bootstrap_stopped_and_invalid_argument', async () => {
  const p = await openPage(`${relay.http}/embed.html`);
  const got = await p.evaluate(async (pkg) => {
    const { startNode, Client, BootstrapError, NodeStoppedError, InvalidArgumentError, ProtoblockError } = await import(`/${pkg}/index.js`);
    const seen = {};
    const name = (e) => `${e.name}/${e.code}/${e instanceof ProtoblockError}`;
    // A relay nobody answers at.
    await startNode({ relay: 'http://127.0.0.1:9', share: false }).then(() => { seen.bootstrap = 'started'; }, (e) => { seen.bootstrap = name(e) + `/${e instanceof BootstrapError}`; });
    await startNode({ relay: location.origin, storeName: 'errors', oracleKey: 'zz', share: false }).then(() => { seen.arg = 'started'; }, (e) => { seen.arg = name(e) + `/${e instanceof InvalidArgumentError}`; });
    const node = await new Client().addNode({ relay: location.origin, storeName: 'errors', share: false });
    seen.badHeight = await node.block(1.5).then(() => 'ok', name);
    await node.stop();
    seen.stopped = await node.status().then(() => 'ok', (e) => name(e) + `/${e instanceof NodeStoppedError}`);
    return seen;
  }, PKG);
  assert(got.bootstrap === 'BootstrapError/bootstrap/true/true', `an unreachable relay: ${got.bootstrap}`);
  assert(got.arg === 'InvalidArgumentError/bad_argument/true/true', `a bad option: ${got.arg}`);
  assert(got.badHeight === 'InvalidArgumentError/bad_argument/true', `a bad height: ${got.badHeight}`);
  assert(got.stopped === 'NodeStoppedError/stopped/true/true', `after stop: ${got.stopped}`);
});

site.close();
await finish(r, pages, context);
