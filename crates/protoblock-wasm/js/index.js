// @protoblock/node: the package's entry point. A `Client` holds what is
// page-wide (the wasm instance, the log level, signature workers); it starts
// one or more `Node`s, each a full Protoblock node.
//
// One node per site, not per tab: tabs of one origin that ask for the same
// chain and database share one node. The tab holding a Web Lock named after
// them runs it (the leader); the others are followers that reach it over a
// BroadcastChannel of the same name: their calls run in the leader, its
// events are re-dispatched in every tab. When the leader's tab closes, the
// browser hands the lock to a waiting tab, which starts the node from the
// same IndexedDB database, so one tab writes it at a time.
//
// Why a leader tab and not a SharedWorker: RTCPeerConnection exists only in
// windows, so a worker node would need a window for every direct link anyway
// and would split the node across two contexts; a leader tab keeps the whole
// node, unchanged, in one place, and costs a takeover (a restart from
// IndexedDB, about a second) when that tab closes. A page whose browser has no
// Web Locks (or that passes `share: false`) runs its own node, as before.

import init, { ProtoblockNode } from './protoblock_wasm.js';

export * from './errors.js';
import { InvalidArgumentError, NodeStoppedError, fromWasm, fromWire, toWire } from './errors.js';

/** Events a node dispatches (as CustomEvents whose `detail` is the payload). */
export const NODE_EVENTS = ['block', 'peer', 'tx', 'sync', 'reachable', 'error', 'role'];

/** Calls that only read: a follower re-sends them to a new leader instead of failing. */
const READS = new Set(['status', 'wallet', 'recentBlocks', 'block', 'fantasy', 'storagePersisted']);
/** Calls a follower may make in the leader. */
const CALLS = new Set([...READS, 'registerName', 'submitProjection', 'transfer', 'dial', 'exportWallet', 'importWallet']);
/** Test hooks `_hook` may run (only the test build of the wasm has them). */
const HOOKS = new Set(['storedBlocks', '_testSignal']);
/** How long a follower waits for an answer (a dial can take 30 s). */
const CALL_TIMEOUT_MS = 45_000;
/** Calls a follower keeps waiting at once; past it a call fails at once rather than queueing without bound. */
const MAX_PENDING_CALLS = 256;

export class Client {
  #ready;
  #settings;
  #nodes = new Set();

  /**
   * @param {{logLevel?: string, signatureWorkers?: number, wasm?: any}} [settings] page-wide settings:
   *   the console log level, the signature workers of every node, and where the `.wasm` is (default: beside
   *   this file).
   */
  constructor(settings = {}) {
    const { wasm, ...rest } = settings;
    this.#settings = rest;
    this.#ready = init(wasm === undefined ? undefined : { module_or_path: wasm });
  }

  /** The wasm exports, once instantiated (tests read its memory). */
  get ready() { return this.#ready; }

  /** Starts a node, or joins the one another tab of this site already runs for the same chain and database. */
  async addNode(options = {}) {
    await this.#ready;
    const node = await Node._open({ ...options, ...this.#settings }, () => this.#nodes.delete(node));
    this.#nodes.add(node);
    return node;
  }

  /** Stops every node this client started. */
  async terminate() {
    await Promise.all([...this.#nodes].map((n) => n.stop()));
  }
}

/** What tabs sharing a node agree on: the database prefix and the chain (its relay, or its genesis). */
function shareKey(opts) {
  const store = opts.storeName || 'protoblock';
  let chain = opts.genesisHash || '';
  if (!chain && opts.relay) {
    try { chain = new URL(opts.relay, location.href).href.replace(/\/+$/, ''); } catch { chain = String(opts.relay); }
  }
  if (!chain && opts.genesis) chain = `genesis:${String(opts.genesis).length}:${String(opts.genesis).slice(-64)}`;
  return `protoblock-node|${store}|${chain}`;
}

const randomId = () => Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, '0')).join('');

export class Node extends EventTarget {
  #opts;
  #key;
  #tab = randomId();
  #local = null; // ProtoblockNode, in the leader
  #channel = null;
  #leader = null; // { id, peerId, storeName } as announced
  #pending = new Map(); // call id -> { method, args, resolve, reject, timer, sentTo }
  #nextCall = 1;
  #abort = new AbortController();
  #release = null; // resolves the lock callback: the leader steps down
  #stopped = false;
  #onStop;
  #role = 'starting';
  #joined = null; // settles the first join: as leader or as follower

  constructor(opts, key, onStop) {
    super();
    this.#opts = opts;
    this.#key = key;
    this.#onStop = onStop;
  }

  static async _open(opts, onStop) {
    const { share = true, ...nodeOpts } = opts;
    const node = new Node(nodeOpts, shareKey(nodeOpts), onStop);
    const canShare = share && typeof navigator !== 'undefined' && navigator.locks && typeof BroadcastChannel === 'function';
    if (!canShare) {
      await node.#startLocal();
      node.#setRole('leader');
      return node;
    }
    await node.#join();
    return node;
  }

  /** "leader" when this tab runs the node, "follower" when another tab does. */
  get role() { return this.#role; }
  get peerId() { return this.#local ? this.#local.peerId : this.#leader?.peerId ?? null; }
  get storeName() { return this.#local ? this.#local.storeName : this.#leader?.storeName ?? null; }

  // ---------- the API (the same in every tab) ----------
  status() { return this.#call('status', []); }
  wallet() { return this.#call('wallet', []); }
  registerName(name) { return this.#call('registerName', [name]); }
  submitProjection(playerId, points) { return this.#call('submitProjection', [playerId, points]); }
  transfer(toName, amount) { return this.#call('transfer', [toName, amount]); }
  recentBlocks(limit) { return this.#call('recentBlocks', [limit]); }
  block(which) { return this.#call('block', [which]); }
  fantasy() { return this.#call('fantasy', []); }
  dial(addr) { return this.#call('dial', [addr]); }
  exportWallet(passphrase) { return this.#call('exportWallet', [passphrase]); }
  importWallet(text, passphrase, replace = false) { return this.#call('importWallet', [text, passphrase, replace]); }
  storagePersisted() { return this.#call('storagePersisted', []); }
  /** A test hook of the test build (e.g. "storedBlocks"), run wherever the node runs. */
  _hook(method, ...args) { return this.#call(`_hook:${method}`, args); }

  /** Subscribes to an event; the callback gets its payload. Returns the unsubscribe function. */
  on(name, callback) {
    const f = (e) => callback(e.detail);
    this.addEventListener(name, f);
    return () => this.removeEventListener(name, f);
  }

  /** Stops this tab's part: the leader stops the node (another tab takes over); a follower leaves. */
  async stop() {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#abort.abort();
    if (this.#local) {
      const local = this.#local;
      this.#local = null;
      this.#post({ t: 'bye', id: this.#tab });
      try { await local.stop(); } finally { local.free?.(); }
    }
    if (this.#release) this.#release();
    for (const id of [...this.#pending.keys()]) this.#fail(id, new NodeStoppedError('node stopped'));
    this.#channel?.close();
    this.#onStop?.();
  }

  // ---------- leader election ----------
  async #join() {
    const channel = new BroadcastChannel(this.#key);
    this.#channel = channel;
    channel.onmessage = (m) => this.#onMessage(m.data);
    let settle;
    const joined = new Promise((resolve, reject) => { settle = { resolve, reject }; });
    this.#joined = settle;
    navigator.locks.request(this.#key, { signal: this.#abort.signal }, () => this.#lead())
      .catch((e) => { if (e?.name !== 'AbortError') settle.reject(fromWasm(e)); });
    // A leader that exists answers this with its announcement.
    this.#post({ t: 'hello', tab: this.#tab });
    try {
      await joined;
    } catch (e) {
      // Not started: leave the lock queue and the channel.
      this.#stopped = true;
      this.#abort.abort();
      channel.close();
      throw e;
    } finally {
      this.#joined = null;
    }
  }

  /** Runs while this tab holds the lock: starts the node, serves the other tabs, and holds on until stopped. */
  async #lead() {
    if (this.#stopped) return;
    try {
      await this.#startLocal();
    } catch (e) {
      const err = fromWasm(e);
      if (this.#joined) { this.#joined.reject(err); return; }
      // A follower promoted to leader whose start failed: say so, let another tab try, and try again later.
      this.#emit('error', { message: `taking over the node failed: ${err.message}`, code: err.code });
      setTimeout(() => { if (!this.#stopped) navigator.locks.request(this.#key, { signal: this.#abort.signal }, () => this.#lead()).catch(() => {}); }, 5_000);
      return;
    }
    this.#leader = { id: this.#tab, peerId: this.#local.peerId, storeName: this.#local.storeName };
    this.#setRole('leader');
    this.#announce();
    // Calls that were waiting for (or sent to) a leader that is gone now run here.
    for (const id of [...this.#pending.keys()]) this.#redirect(id);
    this.#joined?.resolve();
    addEventListener('pagehide', (e) => { if (!e.persisted) this.#post({ t: 'bye', id: this.#tab }); });
    await new Promise((resolve) => { this.#release = resolve; });
  }

  async #startLocal() {
    const local = await ProtoblockNode.start(this.#opts).catch((e) => { throw fromWasm(e, 'bootstrap'); });
    this.#local = local;
    for (const name of NODE_EVENTS) {
      if (name === 'role') continue;
      local.on(name, (detail) => {
        this.#emit(name, detail);
        this.#post({ t: 'event', from: this.#tab, name, detail });
      });
    }
  }

  #announce() { this.#post({ t: 'leader', ...this.#leader }); }

  #setRole(role) {
    if (this.#role === role) return;
    this.#role = role;
    this.#emit('role', { role, peerId: this.peerId });
  }

  #emit(name, detail) { this.dispatchEvent(new CustomEvent(name, { detail })); }

  #post(msg) {
    try { this.#channel?.postMessage(msg); } catch (e) { console.warn('protoblock: a message to the other tabs failed', e); }
  }

  #onMessage(m) {
    if (!m || typeof m !== 'object' || this.#stopped) return;
    switch (m.t) {
      case 'hello':
        if (this.#local) this.#announce();
        break;
      case 'leader':
        if (this.#local || typeof m.id !== 'string') break;
        if (this.#leader?.id !== m.id) {
          this.#leader = { id: m.id, peerId: m.peerId, storeName: m.storeName };
          for (const id of [...this.#pending.keys()]) this.#redirect(id);
        }
        this.#setRole('follower');
        this.#joined?.resolve();
        break;
      case 'bye':
        if (this.#leader?.id === m.id && !this.#local) this.#leader = null;
        break;
      case 'event':
        if (!this.#local && this.#leader?.id === m.from && NODE_EVENTS.includes(m.name)) this.#emit(m.name, m.detail);
        break;
      case 'call':
        if (this.#local) this.#serve(m);
        break;
      case 'reply':
        if (m.tab === this.#tab) this.#answer(m);
        break;
    }
  }

  // ---------- calls ----------
  #call(method, args) {
    if (this.#stopped) return Promise.reject(new NodeStoppedError('node stopped'));
    if (this.#local) return this.#runLocal(method, args);
    if (this.#pending.size >= MAX_PENDING_CALLS) return Promise.reject(new NodeStoppedError('too many calls waiting for the tab that runs the node'));
    return new Promise((resolve, reject) => {
      const id = this.#nextCall++;
      const timer = setTimeout(() => this.#fail(id, new NodeStoppedError(`no answer from the tab running the node in ${CALL_TIMEOUT_MS / 1000} s`)), CALL_TIMEOUT_MS);
      this.#pending.set(id, { method, args, resolve, reject, timer, sentTo: null });
      this.#send(id);
    });
  }

  async #runLocal(method, args) {
    const local = this.#local;
    const hook = method.startsWith('_hook:') ? method.slice(6) : null;
    const name = hook ?? method;
    if (!(hook ? HOOKS.has(hook) : CALLS.has(method)) || typeof local[name] !== 'function') {
      throw new InvalidArgumentError(`no such call: ${name}`);
    }
    try { return await local[name](...args); } catch (e) { throw fromWasm(e); }
  }

  #send(id) {
    const p = this.#pending.get(id);
    if (!p) return;
    if (!this.#leader) { p.sentTo = null; return; } // sent when a leader announces itself
    p.sentTo = this.#leader.id;
    this.#post({ t: 'call', tab: this.#tab, id, method: p.method, args: p.args });
  }

  /** A call whose leader is gone: a read goes to the new one; a write fails, since it may have run. */
  #redirect(id) {
    const p = this.#pending.get(id);
    if (!p) return;
    if (p.sentTo && p.sentTo !== this.#leader?.id && !READS.has(p.method)) {
      this.#fail(id, new NodeStoppedError('the tab running the node closed before it answered; try again'));
      return;
    }
    if (this.#local) {
      this.#pending.delete(id);
      clearTimeout(p.timer);
      this.#runLocal(p.method, p.args).then(p.resolve, p.reject);
    } else if (p.sentTo !== this.#leader?.id) {
      this.#send(id);
    }
  }

  async #serve(m) {
    if (typeof m.tab !== 'string' || typeof m.id !== 'number' || typeof m.method !== 'string' || !Array.isArray(m.args)) return;
    let reply;
    try {
      reply = { t: 'reply', tab: m.tab, id: m.id, ok: true, value: await this.#runLocal(m.method, m.args) };
    } catch (e) {
      reply = { t: 'reply', tab: m.tab, id: m.id, ok: false, error: toWire(e) };
    }
    this.#post(reply);
  }

  #answer(m) {
    const p = this.#pending.get(m.id);
    if (!p) return;
    this.#pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.ok) p.resolve(m.value); else p.reject(fromWire(m.error));
  }

  #fail(id, err) {
    const p = this.#pending.get(id);
    if (!p) return;
    this.#pending.delete(id);
    clearTimeout(p.timer);
    p.reject(err);
  }
}

/** Starts one node with a client of its own: the short form of `new Client(settings).addNode(options)`. */
export async function startNode(options = {}) {
  const { logLevel, signatureWorkers, wasm, ...rest } = options;
  return new Client({ logLevel, signatureWorkers, wasm }).addNode(rest);
}
