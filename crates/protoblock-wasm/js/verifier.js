// Web Workers that check block signatures for the node (see src/verifier.rs).
// Each worker runs this same package (the page's compiled module, handed over,
// so the wasm is neither downloaded nor compiled again) and its
// `SignatureChecker`, so the main thread keeps applying blocks and drawing the
// page while signatures, half of a sync's work, are checked beside it.
//
// wasm-bindgen copies this file to <pkg>/snippets/<crate-hash>/js/verifier.js;
// the package's entry module is three folders up.
const ENTRY = new URL('../../../protoblock_wasm.js', import.meta.url).href;

const WORKER_SOURCE = `
import init, { SignatureChecker } from ${JSON.stringify(ENTRY)};
let checker = null;
let ready = null;
onmessage = async (e) => {
  const m = e.data;
  try {
    if (m.genesis) {
      // The first message: the page's compiled module (or none: then the worker fetches it).
      ready = init(m.module ? { module_or_path: m.module } : undefined)
        .then(() => { checker = new SignatureChecker(m.genesis); });
      await ready;
      return;
    }
    await ready;
    // The range's txs in one batch (half the cost per signature of block by block).
    const ok = checker.checkRun(m.blocks);
    postMessage({ id: m.id, ok }, [ok.buffer]);
  } catch (err) {
    postMessage({ id: m.id, error: String(err && err.message || err) });
  }
};
`;

export class WorkerPool {
  constructor(module, genesis, count) {
    if (typeof Worker === 'undefined' || typeof Blob === 'undefined') throw new Error('no Web Workers here');
    this.url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: 'text/javascript' }));
    this.waiting = new Map();
    this.nextId = 0;
    this.workers = [];
    for (let i = 0; i < count; i++) {
      const w = new Worker(this.url, { type: 'module', name: `protoblock-signatures-${i}` });
      const slot = { w, load: 0 };
      w.onmessage = (e) => this.settle(e.data.id, e.data.error ? new Error(e.data.error) : null, e.data.ok);
      // A worker that fails to load or crashes fails what it holds; the node then checks
      // those blocks itself and stops using the pool.
      w.onerror = (e) => {
        e.preventDefault();
        this.fail(new Error(`signature worker failed: ${e.message || 'could not load'}`));
      };
      w.postMessage({ module: module instanceof WebAssembly.Module ? module : null, genesis });
      this.workers.push(slot);
    }
  }

  settle(id, err, ok) {
    const job = this.waiting.get(id);
    if (!job) return;
    this.waiting.delete(id);
    job.slot.load -= 1;
    if (err) job.reject(err); else job.resolve(ok);
  }

  fail(err) {
    this.broken = err;
    for (const id of [...this.waiting.keys()]) this.settle(id, err);
  }

  // blocks: Uint8Array[] (their buffers are handed over to the worker).
  verify(blocks) {
    if (this.broken) return Promise.reject(this.broken);
    const slot = this.workers.reduce((a, b) => (b.load < a.load ? b : a));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, slot });
      slot.load += 1;
      slot.w.postMessage({ id, blocks }, blocks.map((b) => b.buffer));
    });
  }

  close() {
    for (const { w } of this.workers) w.terminate();
    this.fail(new Error('closed'));
    URL.revokeObjectURL(this.url);
  }
}
