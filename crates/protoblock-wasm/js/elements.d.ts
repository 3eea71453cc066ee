// Importing './elements' defines the custom elements below (a side effect).
import type { Node } from './index.js';

/** `<protoblock-node relay store share genesis-hash target-peers target-direct-peers retain-blocks ice-servers
 *  bootstrap genesis oracle-key block-interval-ms log-level signature-workers>` (the options as attributes):
 *  starts a node (shared with the site's other tabs). Fires `protoblock-ready` (detail: the Node) and
 *  `protoblock-error` (detail: { message, code }). `data-state`: starting | running | error; `data-role`. */
export declare class ProtoblockNodeElement extends HTMLElement {
  readonly ready: Promise<Node>;
  node: Node | null;
}
/** `<protoblock-status node?>`: live or syncing, height, final height, peers; `data-state`, `data-height`. */
export declare class ProtoblockStatusElement extends HTMLElement { node: Node | null; }
/** `<protoblock-blocks node? limit>`: the newest blocks (limit 1 to 50, default 5). */
export declare class ProtoblockBlocksElement extends HTMLElement { node: Node | null; }
/** `<protoblock-wallet node?>`: the site's wallet: key, name, balance, register a name, export a backup. */
export declare class ProtoblockWalletElement extends HTMLElement { node: Node | null; }

/** Seals the node's wallet under `passphrase` and offers the backup file as a download. */
export declare function saveWalletBackup(node: Node, passphrase: string): Promise<void>;

declare global {
  interface HTMLElementTagNameMap {
    'protoblock-node': ProtoblockNodeElement;
    'protoblock-status': ProtoblockStatusElement;
    'protoblock-blocks': ProtoblockBlocksElement;
    'protoblock-wallet': ProtoblockWalletElement;
  }
}
