// Types of @protoblock/node's entry point. The payload types (NodeStatus, WalletView, ...) are the ones the
// wasm node declares from its Rust types (protoblock_wasm.d.ts).
import type {
  StartOptions, NodeStatus, WalletView, BlockSummary, BlockDetail, FantasyView,
  BlockEvent, PeerEvent, TxEvent, SyncEvent, ReachableEvent, NodeErrorEvent,
} from './protoblock_wasm.js';

// Generated from the Rust types (js/types.d.ts, included in protoblock_wasm.d.ts).
export type {
  StartOptions, NodeStatus, PeerView, WalletView, BlockSummary, BlockDetail, TxView, FantasyView, NameView,
  PlayerView, ProjectionView, ResultView, WalletBackup, BlockEvent, PeerEvent, TxEvent, SyncEvent, ReachableEvent,
  NodeErrorEvent,
} from './protoblock_wasm.js';
export * from './errors.js';

/** Page-wide settings, given once to the `Client`. */
export interface ClientSettings {
  /** Console log level: "error" | "warn" (default) | "info" (a debug build also "debug", "trace"). */
  logLevel?: string;
  /** Web Workers checking block signatures beside the page's thread, for every node (default: cores - 1, 1 to 4). */
  signatureWorkers?: number;
  /** Where the `.wasm` file is (URL, Response, or compiled module); default: beside this package's files. */
  wasm?: string | URL | Response | BufferSource | WebAssembly.Module;
}

/** A node's options: where its chain comes from and how it runs. */
export interface NodeOptions extends Omit<StartOptions, 'logLevel' | 'signatureWorkers'> {
  /** Share the node with the site's other tabs (default true): one tab runs it, the others use it. */
  share?: boolean;
}

export interface RoleEvent { role: 'leader' | 'follower'; peerId: string | null; }

/** The events of a `Node`, each a CustomEvent carrying its payload in `detail`. */
export interface NodeEventMap {
  block: CustomEvent<BlockEvent>;
  peer: CustomEvent<PeerEvent>;
  tx: CustomEvent<TxEvent>;
  sync: CustomEvent<SyncEvent>;
  reachable: CustomEvent<ReachableEvent>;
  error: CustomEvent<NodeErrorEvent>;
  /** This tab started running the node ("leader"), or uses the one another tab runs ("follower"). */
  role: CustomEvent<RoleEvent>;
}

export declare const NODE_EVENTS: readonly (keyof NodeEventMap)[];

export declare class Client {
  constructor(settings?: ClientSettings);
  /** Resolves once the wasm is instantiated. */
  readonly ready: Promise<unknown>;
  /** Starts a node, or joins the one another tab of this site runs for the same chain and database. */
  addNode(options?: NodeOptions): Promise<Node>;
  /** Stops every node of this client. */
  terminate(): Promise<void>;
}

/** A Protoblock full node: run by this tab (role "leader") or by another tab of the site ("follower"). */
export declare class Node extends EventTarget {
  readonly role: 'starting' | 'leader' | 'follower';
  readonly peerId: string | null;
  /** The IndexedDB database holding this node's chain. */
  readonly storeName: string | null;
  status(): Promise<NodeStatus>;
  wallet(): Promise<WalletView>;
  /** Registers a fantasy name for this site's wallet; resolves to the tx id. Rejects with TxRejectedError. */
  registerName(name: string): Promise<string>;
  submitProjection(playerId: string, points: number): Promise<string>;
  /** Sends `amount` (a whole number of at least 1; a bigint keeps every digit) to a registered name. */
  transfer(toName: string, amount: bigint | number): Promise<string>;
  /** The newest blocks of the main chain, newest first. */
  recentBlocks(limit: number): Promise<BlockSummary[]>;
  /** A block by height or id (hex), with its txs; null if this node does not hold it. */
  block(which: number | string): Promise<BlockDetail | null>;
  fantasy(): Promise<FantasyView>;
  /** Resolves to the peer id once connected; rejects with DialError. */
  dial(addr: string): Promise<string>;
  /** The wallet sealed under `passphrase` (a backup file's text). */
  exportWallet(passphrase: string): Promise<string>;
  importWallet(text: string, passphrase: string, replace?: boolean): Promise<WalletView>;
  /** Whether the browser promised to keep this site's storage; null when it cannot say. */
  storagePersisted(): Promise<boolean | null>;
  /** Subscribes to an event; the callback gets its payload. Returns the unsubscribe function. */
  on<K extends keyof NodeEventMap>(name: K, callback: (detail: NodeEventMap[K]['detail']) => void): () => void;
  addEventListener<K extends keyof NodeEventMap>(type: K, listener: (ev: NodeEventMap[K]) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof NodeEventMap>(type: K, listener: (ev: NodeEventMap[K]) => void, options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
  /** The leader stops the node (another tab takes over); a follower leaves it. */
  stop(): Promise<void>;
}

/** `new Client(settings).addNode(options)` in one call. */
export declare function startNode(options?: NodeOptions & ClientSettings): Promise<Node>;
