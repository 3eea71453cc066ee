// The errors a node's promises reject with: one class per kind of failure,
// each with a stable `name` and `code`, so a page branches on them
// (`e instanceof TxRejectedError`, `e.rule === 'insufficient_balance'`), never
// on message text. The codes are the ones the wasm node
// sets (and the relay's `POST /api/tx` answers as `kind`).

export class ProtoblockError extends Error {
  constructor(message, { code = 'failed', rule, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'ProtoblockError';
    this.code = code;
    if (rule) this.rule = rule;
  }
}

/** A tx the node refused: `code` "invalid" (with the chain `rule` it broke), "duplicate", "signer_limit", "mempool_full". */
export class TxRejectedError extends ProtoblockError {
  constructor(message, opts) { super(message, opts); this.name = 'TxRejectedError'; }
}
/** The node is stopped, or the tab that ran it closed before answering (code "stopped"). */
export class NodeStoppedError extends ProtoblockError {
  constructor(message, opts = {}) { super(message, { code: 'stopped', ...opts }); this.name = 'NodeStoppedError'; }
}
/** IndexedDB failed: a commit, the quota, or a stored record that does not decode ("store_failed", "wallet_corrupt"). */
export class StoreError extends ProtoblockError {
  constructor(message, opts) { super(message, opts); this.name = 'StoreError'; }
}
/** The relay's bootstrap answer could not be fetched or used (code "bootstrap"). */
export class BootstrapError extends ProtoblockError {
  constructor(message, opts = {}) { super(message, { code: 'bootstrap', ...opts }); this.name = 'BootstrapError'; }
}
/** An argument the node cannot use (code "bad_argument"). */
export class InvalidArgumentError extends ProtoblockError {
  constructor(message, opts = {}) { super(message, { code: 'bad_argument', ...opts }); this.name = 'InvalidArgumentError'; }
}
/** A wallet backup that does not open ("bad_backup", "bad_passphrase") or would replace a wallet ("wallet_exists"). */
export class WalletError extends ProtoblockError {
  constructor(message, opts) { super(message, opts); this.name = 'WalletError'; }
}
/** A connection that could not be made (code "dial_failed"). */
export class DialError extends ProtoblockError {
  constructor(message, opts = {}) { super(message, { code: 'dial_failed', ...opts }); this.name = 'DialError'; }
}

const CLASS_OF_CODE = {
  invalid: TxRejectedError, duplicate: TxRejectedError, signer_limit: TxRejectedError, mempool_full: TxRejectedError,
  stopped: NodeStoppedError,
  store_failed: StoreError, wallet_corrupt: StoreError,
  bootstrap: BootstrapError,
  bad_argument: InvalidArgumentError,
  bad_backup: WalletError, bad_passphrase: WalletError, wallet_exists: WalletError,
  dial_failed: DialError,
};

function make(message, code, rule, cause) {
  const C = CLASS_OF_CODE[code] || ProtoblockError;
  return new C(message, { code: code || 'failed', rule, cause });
}

/** The class for what the wasm node rejected with (an Error with `code`, or a plain one: `fallback`). */
export function fromWasm(e, fallback = 'failed') {
  if (e instanceof ProtoblockError) return e;
  const message = (e && e.message) || String(e);
  const code = (e && typeof e.code === 'string' && e.code) || (message === 'node stopped' ? 'stopped' : fallback);
  return make(message, code, e && e.rule, e);
}

/** An error as it crosses to another tab (structured clone keeps neither classes nor extra fields). */
export function toWire(e) {
  const p = fromWasm(e);
  return { message: p.message, code: p.code, rule: p.rule };
}

export function fromWire(w) {
  return make(String(w?.message ?? 'failed'), typeof w?.code === 'string' ? w.code : 'failed', w?.rule);
}
