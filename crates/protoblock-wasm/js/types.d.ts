// Generated from the Rust types by `PB_BLESS=1 cargo test -p protoblock-wasm ts_types`; do not edit.
/**
 * How a node starts: where its chain comes from, and how it runs.
 */
export type StartOptions = { 
/**
 * Base URL of a relay; the node reads `${relay}/api/bootstrap` (its multiaddrs and the genesis).
 */
relay?: string, 
/**
 * Multiaddrs to dial (WebSocket or WebRTC-direct with certhash), used with `genesis`.
 */
bootstrap?: Array<string>, 
/**
 * The encoded genesis, hex. Needed when `relay` is not given.
 */
genesis?: string, 
/**
 * Refuse to start unless the genesis has this hash (hex).
 */
genesisHash?: string, 
/**
 * IndexedDB database prefix (default "protoblock"); one database per chain.
 */
storeName?: string, 
/**
 * Hex seed of a producer (oracle) key: this node then produces blocks in its slots.
 */
oracleKey?: string, blockIntervalMs?: number, targetPeers?: number, 
/**
 * How many relayed browser peers to upgrade to direct WebRTC (default 6).
 */
targetDirectPeers?: number, 
/**
 * Extra ICE servers for direct WebRTC: "stun:host:port", or TURN with credentials
 * "turn:user:pass@host:port"; the relay's own come from `relay`.
 */
iceServers?: Array<string>, 
/**
 * Console log level, "error" | "warn" (default) | "info". Page-wide: the first node of a page sets it.
 * The release package compiles out "debug" and "trace" (package size); a debug build honours them.
 */
logLevel?: string, 
/**
 * Web Workers that check block signatures beside the page's thread (default: one fewer than the
 * machine's cores, 1 to 4; at most 8). 0 checks them on the page's thread.
 */
signatureWorkers?: number, 
/**
 * Keep only the newest this many blocks in IndexedDB (default 10,000:
 * about five and a half hours of 2-second blocks, some tens of MB); 0
 * keeps every block. The node serves what it keeps and says so to its
 * peers, which ask others for older ranges.
 */
retainBlocks?: bigint, };
export type NodeStatus = { peerId: string, genesis: string, headHeight: number, headId: string, finalHeight: number, 
/**
 * The lowest height this node serves blocks from (it keeps the newest
 * `retainBlocks`); 0: every block.
 */
lowestHeight: number, syncing: boolean, targetHeight: number, mempool: number, blocksValidated: number, blocksDownloaded: number, blocksServed: number, 
/**
 * Synced blocks whose signatures a Web Worker checked.
 */
blocksVerifiedByWorkers: number, gossipAccepted: number, gossipRejected: number, 
/**
 * Gossip messages received, duplicates included, and the distinct ones.
 */
gossipReceived: number | null, gossipUnique: number | null, peers: Array<PeerView>, 
/**
 * Connected peers not past the status handshake (a handshake in flight, or a libp2p peer
 * that does not speak our protocols).
 */
otherPeers: Array<PeerView>, listen: Array<string>, 
/**
 * Set once a store commit failed: the node is not live (see `NodeEvent::StoreFailed`).
 */
storeError: string | null, };
export type PeerView = { peerId: string, head: number, latencyMs: number | null, addr: string | null, transport: "websocket" | "webrtc-direct" | "webrtc" | "relayed" | "tcp" | "quic" | "other", };
export type BlockSummary = { height: number, id: string, timestampMs: number, producer: string, txCount: number, size: number, };
export type BlockDetail = { height: number, id: string, prevHash: string, timestampMs: number, producer: string, stateRoot: string, txRoot: string, size: number, txs: Array<TxView>, };
export type TxView = { id: string, signer: string, signerName: string | null, kind: "name" | "projection" | "transfer" | "data" | "unknown", summary: string, };
export type FantasyView = { season: number, week: number, phase: "preseason" | "in-season" | "offseason", names: Array<NameView>, players: Array<PlayerView>, projections: Array<ProjectionView>, results: Array<ResultView>, };
export type NameView = { name: string, publicKey: string, 
/**
 * Exact: a `bigint` in JS.
 */
balance: bigint, };
export type PlayerView = { playerId: string, teamId: string, 
/**
 * The player's team is in a game or the result is in: no projections.
 */
locked: boolean, };
export type ProjectionView = { playerId: string, name: string, points: number, };
export type ResultView = { playerId: string, points: number, };
export type WalletView = { publicKey: string, name: string | null, 
/**
 * Exact: a `bigint` in JS.
 */
balance: bigint, };
/**
 * A wallet backup file's content (`exportWallet`): the seed sealed under a
 * passphrase (PBKDF2-SHA256, AES-256-GCM), the public key in the clear.
 */
export type WalletBackup = { format: "protoblock-wallet-backup", version: 1, 
/**
 * The wallet's public key, hex.
 */
publicKey: string, kdf: Kdf, cipher: Cipher, 
/**
 * The sealed seed, hex.
 */
sealed: string, };
export type Kdf = { name: "PBKDF2", hash: "SHA-256", iterations: number, 
/**
 * Hex.
 */
salt: string, };
export type Cipher = { name: "AES-GCM", 
/**
 * Hex.
 */
iv: string, };
/**
 * The payload of a `block` event: a new head.
 */
export type BlockEvent = { height: number, id: string, 
/**
 * Its txs' ids, hex.
 */
txs: Array<string>, };
/**
 * The payload of a `peer` event: a peer connected (`up`), left, or was banned.
 */
export type PeerEvent = { peerId: string, up: boolean, reason: string | null, banned: boolean, };
/**
 * The payload of a `tx` event: a tx entered the mempool.
 */
export type TxEvent = { id: string, };
/**
 * The payload of a `sync` event.
 */
export type SyncEvent = { headHeight: number, targetHeight: number, syncing: boolean, };
/**
 * The payload of a `reachable` event: an address other browsers can dial.
 */
export type ReachableEvent = { addr: string, };
/**
 * The payload of an `error` event; `code` as the error classes use it
 * ("store_failed": the node stopped following the chain).
 */
export type NodeErrorEvent = { message: string, code: string, };
