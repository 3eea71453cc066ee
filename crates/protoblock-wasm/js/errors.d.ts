/** Every code a node's promises and `error` events use. */
export type ErrorCode =
  | 'invalid' | 'duplicate' | 'signer_limit' | 'mempool_full'
  | 'stopped' | 'store_failed' | 'wallet_corrupt' | 'bootstrap' | 'bad_argument'
  | 'bad_backup' | 'bad_passphrase' | 'wallet_exists' | 'dial_failed' | 'failed';

export declare class ProtoblockError extends Error {
  constructor(message: string, options?: { code?: ErrorCode; rule?: string; cause?: unknown });
  readonly code: ErrorCode;
  /** For an invalid tx: the chain rule it broke, e.g. "name_taken", "insufficient_balance". */
  readonly rule?: string;
}
export declare class TxRejectedError extends ProtoblockError { readonly code: 'invalid' | 'duplicate' | 'signer_limit' | 'mempool_full'; }
export declare class NodeStoppedError extends ProtoblockError { readonly code: 'stopped'; }
export declare class StoreError extends ProtoblockError { readonly code: 'store_failed' | 'wallet_corrupt'; }
export declare class BootstrapError extends ProtoblockError { readonly code: 'bootstrap'; }
export declare class InvalidArgumentError extends ProtoblockError { readonly code: 'bad_argument'; }
export declare class WalletError extends ProtoblockError { readonly code: 'bad_backup' | 'bad_passphrase' | 'wallet_exists'; }
export declare class DialError extends ProtoblockError { readonly code: 'dial_failed'; }

export declare function fromWasm(e: unknown, fallback?: ErrorCode): ProtoblockError;
export declare function toWire(e: unknown): { message: string; code: ErrorCode; rule?: string };
export declare function fromWire(w: { message?: string; code?: string; rule?: string }): ProtoblockError;
