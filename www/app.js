// Protoblock page: this tab runs a full p2p node (the wasm package in ./pkg) and shows what it sees.
// Plain ES module, no build step. Test hooks: window.pbNode, window.pbReady, body[data-state].

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const opts = {
  relay: params.get('relay') || location.origin,
  storeName: params.get('store') || 'protoblock',
};
if (params.get('bootstrap')) opts.bootstrap = params.get('bootstrap').split(',').filter(Boolean);
if (params.get('genesis')) opts.genesis = params.get('genesis');
// ?oracleKey=<hex seed>&blockIntervalMs=N: this tab also produces blocks (the dev relay hands out its
// dev oracle seed at /api/dev/oracle-key). ?targetDirectPeers=N: direct WebRTC peers to keep.
if (params.get('oracleKey')) opts.oracleKey = params.get('oracleKey');
// ?retainBlocks=N: keep only the newest N blocks (0: all).
for (const k of ['blockIntervalMs', 'targetPeers', 'targetDirectPeers', 'signatureWorkers', 'retainBlocks']) if (params.get(k)) opts[k] = Number(params.get(k));
if (params.get('logLevel')) opts.logLevel = params.get('logLevel');
// ?pkg=pkg-metrics: load another build of the package from www/ (the mesh benchmark's build with gossip
// counters; the browser tests' build with test hooks, pkg-test-hooks). window.pbPkg says which one loaded.
const PKG = /^pkg(-[a-z0-9]+)*$/.test(params.get('pkg') || '') ? params.get('pkg') : 'pkg';
// ?relay=none: start from ?genesis= and ?bootstrap= alone (no bootstrap fetch).
if (opts.relay === 'none') delete opts.relay;

let node = null;
let elements = null; // the package's custom elements module (its helpers too)
let status = null;
let fantasy = null;
let wallet = null;
const rateSamples = []; // [timeMs, headHeight]
const pendingTxs = new Map(); // tx id -> output element
let blocksBusy = false;
let blocksAgain = false;
let explorerShown = null; // height of the block shown in the explorer

// ---------- small helpers ----------
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const short = (h, n = 8) => { h = String(h ?? ''); return h.length > n * 2 + 1 ? `${h.slice(0, n)}…${h.slice(-4)}` : h; };
const fmt = (n) => ((typeof n === 'number' && isFinite(n)) || typeof n === 'bigint' ? n.toLocaleString('en-US') : n == null ? '—' : String(n));
const cmp = (a, b) => (a < b ? -1 : a > b ? 1 : 0); // numbers or bigints (balances are bigints)
const errMsg = (e) => (e && e.message) || (typeof e === 'string' ? e : JSON.stringify(e));
const setText = (el, t) => { if (typeof el === 'string') el = $(el); t = String(t); if (el && el.textContent !== t) el.textContent = t; };
const setHtml = (el, html) => { if (typeof el === 'string') el = $(el); if (el && el.__html !== html) { el.__html = html; el.innerHTML = html; } };
const headOf = (h) => (h && typeof h === 'object' ? h.height ?? h.headHeight ?? '' : h);
function ago(ms) {
  if (!ms) return '';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return new Date(ms).toLocaleDateString();
}
function bytes(n) {
  if (typeof n !== 'number') return '—';
  return n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} kB` : `${(n / 1048576).toFixed(2)} MB`;
}
const TRANSPORTS = { websocket: 'WebSocket', 'webrtc-direct': 'WebRTC-direct', webrtc: 'Direct WebRTC', relayed: 'Relayed', tcp: 'TCP', other: 'Other' };
const transportBadge = (t) => `<span class="badge t-${esc(t || 'other')}">${esc(TRANSPORTS[t] || t || 'Other')}</span>`;
function latency(ms) {
  if (ms == null) return '<span class="muted">—</span>';
  const cls = ms < 80 ? 'good' : ms < 250 ? 'ok' : 'slow';
  return `<span class="lat ${cls}">${Math.round(ms)} ms</span>`;
}
function initials(name) { return name ? name.replace(/[^A-Za-z0-9]/g, '').slice(0, 2).toUpperCase() || '#' : '?'; }

// ---------- state + error banner ----------
function setState(s) { if (document.body.dataset.state !== s) document.body.dataset.state = s; }
function showError(msg) {
  setText('error-text', msg);
  $('error-banner').hidden = false;
}
$('error-close').addEventListener('click', () => { $('error-banner').hidden = true; });

// ---------- status ----------
function isSyncing(st) { return !!st.syncing || st.headHeight < st.targetHeight; }

function blocksPerSecond() {
  if (rateSamples.length < 2) return null;
  const [t0, h0] = rateSamples[0];
  const [t1, h1] = rateSamples[rateSamples.length - 1];
  return t1 > t0 ? ((h1 - h0) * 1000) / (t1 - t0) : null;
}
function sampleRate(h) {
  const now = Date.now();
  rateSamples.push([now, h]);
  while (rateSamples.length > 2 && now - rateSamples[0][0] > 8000) rateSamples.shift();
}

function renderSync(headHeight, targetHeight, syncing) {
  const on = syncing || headHeight < targetHeight;
  $('sync-card').hidden = !on;
  if (!on) return;
  const target = Math.max(targetHeight || 0, headHeight || 0, 1);
  const bar = $('sync-bar');
  bar.max = target;
  bar.value = headHeight || 0;
  setText('sync-text', `${fmt(headHeight)} / ${fmt(target)} blocks (${Math.floor((100 * (headHeight || 0)) / target)}%)`);
  const r = blocksPerSecond();
  setText('sync-rate', r == null ? '– blocks/s' : `${r.toFixed(r < 10 ? 1 : 0)} blocks/s`);
  const left = target - (headHeight || 0);
  setText('sync-eta', r > 0 && left > 0 ? `~${left / r < 90 ? Math.ceil(left / r) + 's' : Math.ceil(left / r / 60) + 'm'} left` : '');
}

function renderPill(st) {
  const pill = $('conn-pill');
  let cls, text;
  if (!st) { cls = 'starting'; text = 'Starting node…'; }
  else if (st.storeError) { cls = 'alone'; text = 'Stopped · storage failed'; }
  else if (isSyncing(st)) {
    cls = 'syncing';
    text = `Syncing ${Math.floor((100 * st.headHeight) / Math.max(st.targetHeight, st.headHeight, 1))}%`;
  } else if (!st.peers.length) { cls = 'alone'; text = 'Live · no peers'; }
  else { cls = 'live'; text = `Live · ${st.peers.length} peer${st.peers.length === 1 ? '' : 's'}`; }
  pill.className = `pill ${cls}`;
  setText('conn-text', text);
}

// A catch-up sends a sync event per commit and a block event per block (tens
// a second): the page draws them at most 5 times a second, since every frame
// drawn is CPU taken from the node validating those blocks.
let lastSync = null;
function showSync() {
  const s = lastSync;
  if (!s) return;
  renderSync(s.headHeight, s.targetHeight, s.syncing);
  setText('height', s.headHeight);
  if (status) renderPill(status);
  setState(s.syncing || s.headHeight < s.targetHeight ? 'syncing' : 'live');
}
function showHeight() { if (status) setText('height', status.headHeight); }

// One beat of the live dot per new block (none while a beat is running, so a
// burst of blocks is one beat, and none while syncing: the dot only beats live).
function beat() {
  const dot = document.querySelector('#conn-pill.live .dot');
  if (!dot || dot.classList.contains('beat')) return;
  dot.classList.add('beat');
  const done = () => dot.classList.remove('beat');
  dot.addEventListener('animationend', done, { once: true });
  dot.addEventListener('animationcancel', done, { once: true });
}

function renderStatus(st) {
  status = st;
  sampleRate(st.headHeight);
  setState(isSyncing(st) ? 'syncing' : 'live');
  renderPill(st);
  renderSync(st.headHeight, st.targetHeight, st.syncing);
  setText('height', st.headHeight);
  const head = $('head-id');
  setText(head, short(st.headId, 6));
  head.title = st.headId || '';
  head.dataset.id = st.headId || '';
  setText('final-height', st.finalHeight);
  setText('peers-count', st.peers.length);
  setText('blocks-validated', fmt(st.blocksValidated));
  setText('mempool', fmt(st.mempool));
  // Say how other browsers reach this tab: directly, or only through the relay (e.g. behind a symmetric NAT).
  const direct = st.peers.filter((p) => p.transport === 'webrtc').length;
  const relayed = st.peers.filter((p) => p.transport === 'relayed').length;
  const path = direct ? `${direct} direct WebRTC` : relayed ? 'no direct WebRTC path yet: browsers reach this tab through the relay' : '';
  const addrs = st.listen && st.listen.length ? `${st.listen.length} listen addr${st.listen.length === 1 ? '' : 's'}` : '';
  setText('listen-note', [path, addrs].filter(Boolean).join(' · '));
  const rows = st.peers
    .slice()
    .sort((a, b) => (a.latencyMs ?? 1e9) - (b.latencyMs ?? 1e9))
    .map((p) => `<tr><td class="mono" title="${esc(p.peerId)}\n${esc(p.addr)}">${esc(short(p.peerId, 6))}</td>` +
      `<td>${transportBadge(p.transport)}</td><td class="num">${latency(p.latencyMs)}</td><td class="num">${esc(headOf(p.head))}</td></tr>`)
    .join('');
  setHtml('peers-table', rows || '<tr class="empty"><td colspan="4">Looking for peers…</td></tr>');
}

async function pollStatus() {
  if (!node) return;
  try { renderStatus(await node.status()); } catch (e) { showError(`status: ${errMsg(e)}`); }
}

// ---------- blocks ----------
async function refreshBlocks() {
  if (!node) return;
  if (blocksBusy) { blocksAgain = true; return; }
  blocksBusy = true;
  try {
    renderBlocks(await node.recentBlocks(20));
  } catch (e) {
    showError(`blocks: ${errMsg(e)}`);
  } finally {
    blocksBusy = false;
    if (blocksAgain) { blocksAgain = false; setTimeout(refreshBlocks, 300); }
  }
}

function blockItem(b) {
  const li = document.createElement('li');
  li.dataset.id = b.id;
  li.dataset.height = b.height;
  li.tabIndex = 0;
  li.innerHTML = `<span class="bh">#${esc(fmt(b.height))}</span>` +
    `<span class="bid mono">${esc(short(b.id, 8))}</span>` +
    `<span class="btx"><b>${esc(b.txCount)}</b> tx${b.txCount === 1 ? '' : 's'}</span>` +
    `<span class="bmeta muted"><span class="when" data-ts="${Number(b.timestampMs) || 0}">${esc(ago(b.timestampMs))}</span> · ${esc(bytes(b.size))}</span>`;
  return li;
}

function renderBlocks(list) {
  const ol = $('blocks-list');
  const have = new Map([...ol.children].map((li) => [li.dataset.id, li]));
  const first = ol.children.length === 0;
  const want = list.slice(0, 20);
  want.forEach((b, i) => {
    let li = have.get(b.id);
    if (!li) { li = blockItem(b); if (!first && !isSyncing(status || {})) li.classList.add('fresh'); }
    have.delete(b.id);
    if (ol.children[i] !== li) ol.insertBefore(li, ol.children[i] || null);
    li.classList.toggle('sel', explorerShown === b.height);
  });
  for (const li of have.values()) li.remove();
  ol.__html = null;
  if (!want.length) setHtml(ol, '<li class="empty muted">No blocks yet</li>');
  else if (explorerShown == null && !isSyncing(status || {})) showBlock(want[0].id); // something to look at
}

function openBlockFrom(ev) {
  const li = ev.target.closest('li[data-id]');
  if (li) showBlock(li.dataset.id);
}
$('blocks-list').addEventListener('click', openBlockFrom);
$('blocks-list').addEventListener('keydown', (e) => { if (e.key === 'Enter') openBlockFrom(e); });

// ---------- explorer ----------
// Answers come back in any order (a block read from IndexedDB or the
// chain); only the one asked for last is rendered.
let explorerAsked = 0;
async function showBlock(query) {
  const body = $('explorer-body');
  if (!node) return;
  const q = String(query).trim();
  explorerShown = explorerShown ?? -1;
  if (!q) return;
  const key = /^\d+$/.test(q) ? Number(q) : q.toLowerCase().replace(/^0x/, '');
  const asked = ++explorerAsked;
  body.innerHTML = '<p class="muted">Loading…</p>';
  let b;
  try { b = await node.block(key); } catch (e) {
    if (asked === explorerAsked) body.innerHTML = `<p class="err">${esc(errMsg(e))}</p>`;
    return;
  }
  if (asked !== explorerAsked) return;
  if (!b) { body.innerHTML = `<p class="muted">No block <span class="mono">${esc(q)}</span> on this node's chain.</p>`; return; }
  explorerShown = b.height;
  for (const li of $('blocks-list').children) li.classList.toggle('sel', li.dataset.id === b.id);
  const field = (k, v, cls = '') => `<dt>${k}</dt><dd class="${cls}">${v}</dd>`;
  const txs = (b.txs || []).map((t) => `<tr><td><span class="badge k-${esc(t.kind)}">${esc(t.kind)}</span></td>` +
    `<td>${esc(t.summary)}</td><td title="${esc(t.signer)}">${t.signerName ? esc(t.signerName) : `<span class="mono">${esc(short(t.signer, 6))}</span>`}</td>` +
    `<td class="mono muted" title="${esc(t.id)}">${esc(short(t.id, 6))}</td></tr>`).join('');
  body.innerHTML = `
    <div class="xhead"><button class="btn-ghost" data-go="${b.height - 1}" ${b.height > 0 ? '' : 'disabled'}>‹ Prev</button>
      <span class="xtitle">Block #${esc(fmt(b.height))}</span>
      <button class="btn-ghost" data-go="${b.height + 1}">Next ›</button></div>
    <dl class="fields">
      ${field('Id', esc(b.id), 'mono wrapx')}
      ${field('Previous', `<a href="#" data-go="${esc(b.prevHash)}" class="mono wrapx">${esc(b.prevHash)}</a>`)}
      ${field('Time', b.timestampMs ? `${esc(new Date(b.timestampMs).toLocaleString())} <span class="muted">(${esc(ago(b.timestampMs))})</span>` : '—')}
      ${field('Producer', esc(b.producer), 'mono wrapx')}
      ${field('State root', esc(b.stateRoot), 'mono wrapx')}
      ${field('Tx root', esc(b.txRoot), 'mono wrapx')}
      ${field('Size', esc(bytes(b.size)))}
    </dl>
    <h3>${(b.txs || []).length} transaction${(b.txs || []).length === 1 ? '' : 's'}</h3>
    ${txs ? `<div class="scroll"><table class="tbl"><thead><tr><th>Kind</th><th>What</th><th>Signer</th><th>Id</th></tr></thead><tbody>${txs}</tbody></table></div>` : '<p class="muted">Empty block.</p>'}`;
}
$('explorer-body').addEventListener('click', (e) => {
  const t = e.target.closest('[data-go]');
  if (!t) return;
  e.preventDefault();
  if (!t.disabled) showBlock(t.dataset.go);
});
$('explorer-form').addEventListener('submit', (e) => { e.preventDefault(); showBlock($('explorer-input').value); });

// ---------- fantasy ----------
function renderFantasy(f) {
  fantasy = f;
  setText('season-title', `Season ${f.season} · Week ${f.week}`);
  const ph = $('phase');
  setText(ph, f.phase);
  ph.className = `phase ph-${f.phase}`;

  const mine = wallet && wallet.publicKey;
  const names = (f.names || []).slice().sort((a, b) => cmp(b.balance, a.balance) || a.name.localeCompare(b.name));
  setHtml('leaderboard', names.map((n, i) => `<tr class="${n.publicKey === mine ? 'me' : ''}"><td class="rank r${i + 1}">${i + 1}</td>` +
    `<td><b>${esc(n.name)}</b>${n.publicKey === mine ? ' <span class="badge you">you</span>' : ''}</td><td class="num">${esc(fmt(n.balance))}</td></tr>`).join('') ||
    '<tr class="empty"><td colspan="3">No names registered yet</td></tr>');

  const results = new Map((f.results || []).map((r) => [String(r.playerId), r.points]));
  const proj = (f.projections || []).slice().sort((a, b) => String(a.playerId).localeCompare(String(b.playerId), undefined, { numeric: true }) || b.points - a.points);
  setHtml('projections', proj.map((p) => {
    const r = results.get(String(p.playerId));
    return `<tr><td><b>${esc(p.playerId)}</b></td><td>${esc(p.name)}</td><td class="num">${esc(fmt(p.points))}</td>` +
      `<td class="num">${r == null ? '<span class="muted">—</span>' : `<b>${esc(fmt(r))}</b>`}</td></tr>`;
  }).join('') || '<tr class="empty"><td colspan="4">No projections this week</td></tr>');

  renderPlayers();
  renderPlayerSelect();
}

function renderPlayers() {
  if (!fantasy) return;
  const q = $('players-filter').value.trim().toLowerCase();
  const all = fantasy.players || [];
  setText('players-count', all.length);
  const list = all.filter((p) => !q || String(p.playerId).toLowerCase().includes(q) || String(p.teamId).toLowerCase().includes(q));
  setHtml('players', list.map((p) => `<div class="player ${p.locked ? 'locked' : ''}" title="${p.locked ? 'Locked: game started or result in' : 'Open for projections'}">` +
    `<span class="pid">${esc(p.playerId)}</span><span class="team">${esc(p.teamId)}</span>` +
    `<span class="badge ${p.locked ? 'lock' : 'open'}">${p.locked ? 'locked' : 'open'}</span></div>`).join('') ||
    `<p class="muted">${all.length ? 'No player matches.' : 'No roster yet.'}</p>`);
}
$('players-filter').addEventListener('input', renderPlayers);

const playerKeys = new Map(); // option value -> original playerId
function renderPlayerSelect() {
  const sel = $('projection-player');
  const open = (fantasy.players || []).filter((p) => !p.locked);
  const sig = open.map((p) => `${p.playerId}:${p.teamId}`).join('|');
  if (sel.dataset.sig === sig) return; // unchanged: keep focus and selection untouched
  sel.dataset.sig = sig;
  const keep = sel.value;
  playerKeys.clear();
  const frag = document.createDocumentFragment();
  frag.append(new Option(open.length ? 'Select a player' : 'No open players', ''));
  for (const p of open) {
    playerKeys.set(String(p.playerId), p.playerId);
    frag.append(new Option(`${p.playerId} · ${p.teamId}`, String(p.playerId)));
  }
  sel.replaceChildren(frag);
  if (playerKeys.has(keep)) sel.value = keep;
}

// ---------- wallet ----------
function renderWallet(w) {
  wallet = w;
  const key = $('wallet-key');
  setText(key, short(w.publicKey, 8));
  key.title = w.publicKey;
  setText('wallet-name', w.name || '');
  setText('wallet-balance', fmt(w.balance ?? 0));
  setText('wallet-avatar', initials(w.name));
  $('wallet-avatar').classList.toggle('anon', !w.name);
  const reg = $('register-form');
  reg.classList.toggle('done', !!w.name);
}
$('copy-key').addEventListener('click', async () => {
  if (!wallet) return;
  const btn = $('copy-key');
  try { await navigator.clipboard.writeText(wallet.publicKey); } catch {
    const ta = Object.assign(document.createElement('textarea'), { value: wallet.publicKey });
    document.body.append(ta); ta.select(); document.execCommand('copy'); ta.remove();
  }
  btn.textContent = 'Copied'; setTimeout(() => { btn.textContent = 'Copy'; }, 1200);
});

// Backups: the seed leaves the node only sealed under the user's passphrase.
async function showStorageWarning() {
  const persisted = await node.storagePersisted().catch(() => null);
  $('storage-warning').hidden = persisted !== false;
}
$('export-wallet').addEventListener('click', async () => {
  const out = $('backup-result');
  if (!node) return;
  const pass = prompt('A passphrase for the backup (at least 8 characters). You need it to restore the wallet.');
  if (pass === null) return;
  try {
    await elements.saveWalletBackup(node, pass);
    out.className = 'result ok'; out.textContent = 'Backup saved. Keep the file and the passphrase apart.';
  } catch (e) { out.className = 'result err'; out.textContent = errMsg(e); }
});
$('import-wallet-file').addEventListener('change', async (ev) => {
  const out = $('backup-result');
  const file = ev.target.files && ev.target.files[0];
  ev.target.value = '';
  if (!node || !file) return;
  try {
    const text = await file.text();
    const pass = prompt('The backup\'s passphrase');
    if (pass === null) return;
    let w;
    try { w = await node.importWallet(text, pass, false); } catch (e) {
      if (e.code !== 'wallet_exists') throw e;
      const keep = wallet ? wallet.publicKey.slice(0, 16) : '';
      if (!confirm(`This browser has another wallet (${keep}…). Replace it with the backup's? The current one is lost unless you exported it.`)) return;
      w = await node.importWallet(text, pass, true);
    }
    renderWallet(w);
    out.className = 'result ok'; out.textContent = 'Wallet restored.';
  } catch (e) { out.className = 'result err'; out.textContent = errMsg(e); }
});

async function pollAccount() {
  if (!node) return;
  try {
    const [w, f] = await Promise.all([node.wallet(), node.fantasy()]);
    renderWallet(w);
    renderFantasy(f);
  } catch (e) { showError(`fantasy: ${errMsg(e)}`); }
}

// A form submit: run the call, show the tx id (or the error) inline.
function txForm(formId, outId, run) {
  const form = $(formId);
  const out = $(outId);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!node) { out.className = 'result err'; out.textContent = 'The node is not running yet.'; return; }
    const btn = form.querySelector('button[type=submit]');
    btn.disabled = true;
    out.className = 'result';
    out.textContent = 'Signing and broadcasting…';
    try {
      const id = await run();
      out.className = 'result ok';
      out.innerHTML = `Sent · tx <span class="mono" title="${esc(id)}">${esc(short(id, 8))}</span> <span class="txstate">pending</span>`;
      out.dataset.txId = id;
      pendingTxs.set(id, out);
      form.reset();
      schedule(pollAccount, 200);
    } catch (err) {
      out.className = 'result err';
      out.textContent = errMsg(err);
    } finally {
      btn.disabled = false;
    }
  });
}
txForm('register-form', 'register-result', () => node.registerName($('register-name-input').value.trim()));
txForm('projection-form', 'projection-result', () => {
  const v = $('projection-player').value;
  return node.submitProjection(playerKeys.has(v) ? playerKeys.get(v) : v, Number($('projection-points').value));
});
txForm('transfer-form', 'transfer-result', () => node.transfer($('transfer-to').value.trim(), Number($('transfer-amount').value)));

function markTx(id, text) {
  const out = pendingTxs.get(id);
  const s = out && out.querySelector('.txstate');
  if (s) { s.textContent = text; s.classList.add('in'); }
}

// ---------- scheduling ----------
const timers = new Map();
function schedule(fn, ms) {
  if (timers.has(fn)) return;
  timers.set(fn, setTimeout(() => { timers.delete(fn); fn(); }, ms));
}
function loop(fn, ms) {
  const tick = async () => { await fn(); setTimeout(tick, ms); };
  tick();
}
setInterval(() => { for (const el of document.querySelectorAll('.when[data-ts]')) setText(el, ago(Number(el.dataset.ts))); }, 1000);

// ---------- start ----------
async function main() {
  setState('starting');
  // The node is the package's <protoblock-node> element, as on any site that embeds it; this page
  // draws its own richer view of it.
  const attrs = {
    relay: opts.relay || 'none', store: opts.storeName, genesis: opts.genesis, bootstrap: (opts.bootstrap || []).join(','),
    'oracle-key': opts.oracleKey, 'block-interval-ms': opts.blockIntervalMs, 'target-peers': opts.targetPeers,
    'target-direct-peers': opts.targetDirectPeers, 'retain-blocks': opts.retainBlocks, 'signature-workers': opts.signatureWorkers, 'log-level': opts.logLevel,
  };
  let el;
  try {
    performance.mark('pb:import');
    elements = await import(`./${PKG}/elements.js`);
    window.pbPkg = PKG;
    el = document.createElement('protoblock-node');
    for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== '') el.setAttribute(k, String(v));
    el.hidden = true;
    performance.mark('pb:instantiate');
    window.pbWasm = await el.client.ready; // the wasm exports (tests read its memory size)
    performance.mark('pb:start');
  } catch (e) {
    setState('error');
    $('conn-pill').className = 'pill error';
    setText('conn-text', 'Offline');
    showError(`Could not load the node package (${PKG}/elements.js): ${errMsg(e)}`);
    return;
  }
  try {
    // Tabs of this site share one node: this tab runs it, or uses the one another tab runs.
    document.body.append(el);
    node = await el.ready;
  } catch (e) {
    setState('error');
    $('conn-pill').className = 'pill error';
    setText('conn-text', 'Not started');
    showError(`The node could not start: ${errMsg(e)}`);
    return;
  }
  performance.mark('pb:started');
  window.pbNode = node;
  const showRole = () => {
    setText('node-id', short(node.peerId, 6));
    $('node-id').title = `This browser's peer id: ${node.peerId}\n` +
      (node.role === 'leader' ? 'This tab runs the node for every tab of this site.' : 'Another tab of this site runs the node; this one uses it.');
    document.body.dataset.role = node.role;
  };
  showRole();
  node.on('role', () => { showRole(); schedule(pollStatus, 0); });

  node.on('block', (b) => {
    if (status && b.height > status.headHeight) { status.headHeight = b.height; status.headId = b.id; schedule(showHeight, 200); }
    beat();
    schedule(refreshBlocks, 250);
    schedule(pollStatus, 250);
    schedule(pollAccount, 800);
    for (const id of b.txs) markTx(id, `in block #${b.height}`);
  });
  node.on('peer', () => schedule(pollStatus, 100));
  node.on('tx', (t) => { markTx(t.id, 'in mempool'); schedule(pollStatus, 200); });
  node.on('sync', (s) => {
    sampleRate(s.headHeight);
    lastSync = s;
    if (status) { status.headHeight = s.headHeight; status.targetHeight = s.targetHeight; status.syncing = s.syncing; }
    schedule(showSync, 200);
  });
  node.on('error', (e) => showError(errMsg(e))); // the element stops the node when the page goes

  await pollStatus();
  showStorageWarning();
  window.pbReady = true;
  loop(pollStatus, 1000);
  loop(pollAccount, 3000);
  loop(refreshBlocks, 5000);
}
main();
