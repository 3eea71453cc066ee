// TLS: a site served over https. The test makes its own CA and a relay
// certificate signed by it (openssl), starts the relay with them (https for the
// page and API, `/tls/ws` for wss), and runs Chromium trusting only that CA
// (`--ignore-certificate-errors-spki-list` with the CA's SPKI hash; nothing is
// added to a system store). The page, loaded over https, may not open ws://
// (mixed content), so it must find and dial the relay's wss address, and sync.

import { Runner, assert, launchBrowser, openNodePage, startRelay, waitFor, finish } from './lib.mjs';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// The harness's own requests (startRelay's /health and status polls) go
// through Node's fetch, which knows nothing of the test CA. Chromium, the
// client under test, verifies against the CA's pin.
process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

const dir = mkdtempSync(join(tmpdir(), 'pb-e2e-tls-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const ssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
  '-subj', '/CN=Protoblock test CA', '-keyout', 'ca.key', '-out', 'ca.pem',
  '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=localhost',
  '-keyout', 'relay.key', '-out', 'relay.csr');
writeFileSync(join(dir, 'relay.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
ssl('x509', '-req', '-in', 'relay.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2',
  '-extfile', 'relay.ext', '-out', 'relay.pem');
// The chain a server presents: leaf first, then the CA.
writeFileSync(join(dir, 'chain.pem'), readFileSync(join(dir, 'relay.pem'), 'utf8') + readFileSync(join(dir, 'ca.pem'), 'utf8'));
const caSpki = execFileSync('sh', ['-c',
  'openssl x509 -in ca.pem -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64'],
{ cwd: dir }).toString().trim();

const r = new Runner('tls');
// Plain ws as well as wss: the page must choose wss by itself. No
// WebRTC-direct, so WebSocket is the only way in.
const relay = await startRelay({
  listen: ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws', '/ip4/127.0.0.1/tcp/0/tls/ws'],
  args: ['--block-interval-ms', '500', '--dev-history', '60',
    '--tls-cert', join(dir, 'chain.pem'), '--tls-key', join(dir, 'relay.key')],
});
const context = await launchBrowser({ args: [`--ignore-certificate-errors-spki-list=${caSpki}`] });
const pages = [];

await r.test('the_relay_serves_https_and_announces_wss', async () => {
  assert(relay.http.startsWith('https://'), `the relay prints an https address: ${relay.http}`);
  const boot = await (await fetch(`${relay.http}/api/bootstrap`)).json();
  assert(boot.multiaddrs.some((a) => a.includes('/tls/ws/')), `wss announced: ${boot.multiaddrs}`);
  // Plain http on the https port is refused, not answered in the clear.
  const plain = relay.http.replace('https://', 'http://');
  const refused = await fetch(`${plain}/health`).then(() => false, () => true);
  assert(refused, 'no plain HTTP on the TLS listener');
});

await r.test('a_page_served_over_https_syncs_over_wss', async () => {
  const p = await openNodePage(context, relay, 'tls');
  pages.push(p);
  assert(await p.evaluate(() => location.protocol) === 'https:', 'the page came over https');
  const target = (await relay.status()).head.height;
  const s = await waitFor('the page at the relay head', async () => {
    const st = await p.evaluate(() => window.pbNode.status());
    return st.headHeight >= target && st.peers.length ? st : null;
  }, 60_000);
  const peer = s.peers.find((x) => x.peerId === relay.peerId);
  assert(peer, `the relay is a peer: ${JSON.stringify(s.peers)}`);
  assert(peer.transport === 'websocket' && peer.addr && peer.addr.includes('/tls/ws'),
    `connected over wss: ${JSON.stringify(peer)}`);
  const wssPort = relay.addrs.find((a) => a.includes('/tls/ws'))?.match(/\/tcp\/(\d+)\//)?.[1];
  assert(wssPort && peer.addr.includes(`/tcp/${wssPort}/`), `to the relay's wss port ${wssPort}: ${peer.addr}`);
  // And it keeps following the chain over it.
  const later = target + 4;
  await waitFor('new blocks over wss', async () => (await p.evaluate(() => window.pbNode.status())).headHeight >= later, 30_000);
});

await finish(r, pages, context);
