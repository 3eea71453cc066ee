// Custom elements: a site adds a Protoblock node to its pages with one script
// tag and markup, no code:
//
//   <script type="module" src="https://relay.example/pkg/elements.js"></script>
//   <protoblock-node relay="https://relay.example" store="my-league"></protoblock-node>
//   <protoblock-status></protoblock-status>
//   <protoblock-blocks limit="5"></protoblock-blocks>
//   <protoblock-wallet></protoblock-wallet>
//
// `<protoblock-node>` starts the node (shared with the site's other tabs, see
// index.js); the others show it. They find their node by the `node`
// attribute (the id of a `<protoblock-node>`), else the nearest enclosing one,
// else the page's first. They render plain light DOM with `part`-like
// classes (`pb-…`) and `data-state`, so the site styles them with its own CSS.
// Every element redraws on the node's events, at most a few times a second.

import { Client } from './index.js';

let client = null;
/** One client per page: the first `<protoblock-node>`'s page-wide attributes set it up. */
function pageClient(el) {
  if (!client) {
    const num = (a) => (el.hasAttribute(a) ? Number(el.getAttribute(a)) : undefined);
    client = new Client({ logLevel: el.getAttribute('log-level') || undefined, signatureWorkers: num('signature-workers') });
  }
  return client;
}

/**
 * Seals the node's wallet under `passphrase` and offers the backup file as a
 * download (`protoblock-wallet-<key>.json`). The seed leaves the node only
 * sealed. Shared by `<protoblock-wallet>` and pages with a wallet view of their own.
 */
export async function saveWalletBackup(node, passphrase) {
  const text = await node.exportWallet(passphrase);
  const key = (() => { try { return JSON.parse(text).publicKey.slice(0, 8); } catch { return 'backup'; } })();
  const url = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
  const a = Object.assign(document.createElement('a'), { href: url, download: `protoblock-wallet-${key}.json` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const short = (h, n = 8) => { h = String(h ?? ''); return h.length > n * 2 + 1 ? `${h.slice(0, n)}…${h.slice(-4)}` : h; };
const message = (e) => (e && e.message) || String(e);

/**
 * `<protoblock-node relay store share genesis-hash target-peers target-direct-peers retain-blocks ice-servers bootstrap
 * genesis oracle-key block-interval-ms log-level signature-workers>`: the node's options as attributes (lists
 * comma-separated); `relay` defaults to the page's origin, `relay="none"` starts from `genesis` and `bootstrap`.
 */
export class ProtoblockNodeElement extends HTMLElement {
  #ready = null;
  #resolve;
  #reject;
  node = null;

  constructor() {
    super();
    this.#ready = new Promise((resolve, reject) => { this.#resolve = resolve; this.#reject = reject; });
    this.#ready.catch(() => {}); // observed through `ready` or the `protoblock-error` event
  }

  /** Resolves to the started `Node`. */
  get ready() { return this.#ready; }

  /** The page's client (shared by every `<protoblock-node>` of the page). */
  get client() { return pageClient(this); }

  connectedCallback() {
    if (this.node || this.dataset.state === 'starting') return;
    this.dataset.state = 'starting';
    const num = (a) => (this.hasAttribute(a) ? Number(this.getAttribute(a)) : undefined);
    const str = (a) => this.getAttribute(a) || undefined;
    const list = (a) => (this.getAttribute(a) ? this.getAttribute(a).split(',').map((x) => x.trim()).filter(Boolean) : undefined);
    const relay = str('relay') || location.origin;
    const opts = {
      relay: relay === 'none' ? undefined : relay,
      storeName: str('store'),
      genesisHash: str('genesis-hash'),
      genesis: str('genesis'),
      bootstrap: list('bootstrap'),
      iceServers: list('ice-servers'),
      oracleKey: str('oracle-key'),
      blockIntervalMs: num('block-interval-ms'),
      targetPeers: num('target-peers'),
      targetDirectPeers: num('target-direct-peers'),
      retainBlocks: num('retain-blocks'),
      share: this.getAttribute('share') !== 'false',
    };
    for (const k of Object.keys(opts)) if (opts[k] === undefined) delete opts[k];
    pageClient(this).addNode(opts).then((node) => {
      this.node = node;
      this.dataset.state = 'running';
      this.dataset.role = node.role;
      node.on('role', ({ role }) => { this.dataset.role = role; });
      node.on('error', (e) => this.dispatchEvent(new CustomEvent('protoblock-error', { detail: e, bubbles: true })));
      addEventListener('pagehide', (e) => { if (!e.persisted) node.stop().catch(() => {}); });
      this.#resolve(node);
      this.dispatchEvent(new CustomEvent('protoblock-ready', { detail: node, bubbles: true }));
    }, (e) => {
      this.dataset.state = 'error';
      this.dataset.error = message(e);
      this.#reject(e);
      this.dispatchEvent(new CustomEvent('protoblock-error', { detail: { message: message(e), code: e && e.code }, bubbles: true }));
    });
  }
}

/** What the showing elements share: finding their node, and redrawing (throttled) on its events. */
class NodeView extends HTMLElement {
  node = null;
  #timer = null;
  #unsubscribe = [];
  /** The events this element redraws on. */
  static events = ['block', 'sync', 'peer', 'role'];
  /** Redraw at least this often (ms), for what no event announces. */
  static every = 3000;

  async connectedCallback() {
    const host = this.getAttribute('node') ? document.getElementById(this.getAttribute('node'))
      : this.closest('protoblock-node') || document.querySelector('protoblock-node');
    if (!host) { this.fail('no <protoblock-node> on this page'); return; }
    await customElements.whenDefined('protoblock-node');
    try { this.node = await host.ready; } catch (e) { this.fail(message(e)); return; }
    if (!this.isConnected) return;
    for (const name of this.constructor.events) this.#unsubscribe.push(this.node.on(name, () => this.soon()));
    this.#unsubscribe.push(this.node.on('error', (e) => this.fail(e.message)));
    const every = setInterval(() => this.soon(), this.constructor.every);
    this.#unsubscribe.push(() => clearInterval(every));
    this.refresh();
  }

  disconnectedCallback() {
    for (const u of this.#unsubscribe.splice(0)) u();
  }

  soon(ms = 250) {
    if (this.#timer) return;
    this.#timer = setTimeout(() => { this.#timer = null; this.refresh(); }, ms);
  }

  async refresh() {
    if (!this.node) return;
    try {
      await this.draw(this.node);
      this.querySelector(':scope > .pb-error')?.remove();
    } catch (e) { if (e?.code !== 'stopped') this.fail(message(e)); }
  }

  fail(msg) {
    this.dataset.state = 'error';
    let el = this.querySelector(':scope > .pb-error');
    if (!el) { el = document.createElement('div'); el.className = 'pb-error'; el.setAttribute('role', 'alert'); this.append(el); }
    el.textContent = msg;
  }

  /** Sets the element's content, keeping what did not change (and the error line). */
  show(html) {
    if (this.__html === html) return;
    this.__html = html;
    let body = this.querySelector(':scope > .pb-body');
    if (!body) { body = document.createElement('div'); body.className = 'pb-body'; this.prepend(body); }
    body.innerHTML = html;
  }
}

/** `<protoblock-status>`: live / syncing, height, final height, peers. */
export class ProtoblockStatusElement extends NodeView {
  async draw(node) {
    const st = await node.status();
    const syncing = st.syncing || st.headHeight < st.targetHeight;
    this.dataset.state = st.storeError ? 'error' : syncing ? 'syncing' : 'live';
    this.dataset.height = st.headHeight;
    const state = st.storeError ? 'storage failed' : syncing ? `syncing ${st.headHeight}/${st.targetHeight}` : 'live';
    this.show(`<span class="pb-state">${esc(state)}</span>` +
      `<span class="pb-height"><span class="pb-k">Height</span> <b>${esc(st.headHeight)}</b></span>` +
      `<span class="pb-final"><span class="pb-k">Final</span> <b>${esc(st.finalHeight)}</b></span>` +
      `<span class="pb-peers"><span class="pb-k">Peers</span> <b>${esc(st.peers.length)}</b></span>`);
  }
}

/** `<protoblock-blocks limit="5">`: the newest blocks. */
export class ProtoblockBlocksElement extends NodeView {
  static events = ['block'];
  async draw(node) {
    const limit = Math.min(Math.max(Number(this.getAttribute('limit')) || 5, 1), 50);
    const blocks = await node.recentBlocks(limit);
    this.dataset.height = blocks.length ? blocks[0].height : 0;
    this.show(`<ol class="pb-blocks">${blocks.map((b) => `<li data-height="${esc(b.height)}"><b>#${esc(b.height)}</b> ` +
      `<code>${esc(short(b.id, 6))}</code> <span>${esc(b.txCount)} tx</span></li>`).join('')}</ol>`);
  }
}

/** `<protoblock-wallet>`: this site's wallet: key, name, balance, registering a name, backups. */
export class ProtoblockWalletElement extends NodeView {
  static events = ['block', 'role'];
  #built = false;
  async draw(node) {
    if (!this.#built) this.#build();
    const [w, persisted] = await Promise.all([node.wallet(), node.storagePersisted().catch(() => null)]);
    this.dataset.name = w.name || '';
    const set = (cls, t) => { const el = this.querySelector(cls); if (el && el.textContent !== String(t)) el.textContent = t; };
    set('.pb-key', short(w.publicKey, 8));
    this.querySelector('.pb-key').title = w.publicKey;
    set('.pb-name', w.name || 'no name yet');
    set('.pb-balance', String(w.balance));
    this.querySelector('.pb-register').hidden = !!w.name;
    this.querySelector('.pb-warning').hidden = persisted !== false;
  }

  #build() {
    this.#built = true;
    const body = document.createElement('div');
    body.className = 'pb-body';
    body.innerHTML = `<div><span class="pb-name"></span> · <code class="pb-key"></code></div>
      <div><span class="pb-k">Balance</span> <b class="pb-balance">—</b></div>
      <form class="pb-register"><input name="name" maxlength="64" placeholder="Your fantasy name" required>
        <button type="submit">Register</button></form>
      <div class="pb-backup"><button type="button" class="pb-export">Export backup</button></div>
      <p class="pb-warning" hidden>This browser may clear this site's data: export a backup of your wallet.</p>
      <output class="pb-result"></output>`;
    this.prepend(body);
    const out = body.querySelector('.pb-result');
    const say = (t, ok) => { out.textContent = t; out.dataset.ok = ok ? 'true' : 'false'; };
    body.querySelector('.pb-register').addEventListener('submit', async (e) => {
      e.preventDefault();
      const name = e.target.elements.name.value.trim();
      try { const id = await this.node.registerName(name); say(`Sent: tx ${short(id, 8)}`, true); e.target.reset(); }
      catch (err) { say(message(err), false); }
    });
    body.querySelector('.pb-export').addEventListener('click', async () => {
      const pass = prompt('A passphrase for the backup (at least 8 characters).');
      if (pass === null) return;
      try {
        await saveWalletBackup(this.node, pass);
        say('Backup saved. Keep the file and the passphrase apart.', true);
      } catch (err) { say(message(err), false); }
    });
  }
}

const define = (name, cls) => { if (!customElements.get(name)) customElements.define(name, cls); };
define('protoblock-node', ProtoblockNodeElement);
define('protoblock-status', ProtoblockStatusElement);
define('protoblock-blocks', ProtoblockBlocksElement);
define('protoblock-wallet', ProtoblockWalletElement);
