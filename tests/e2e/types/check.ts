// Compiled (never run) by types.mjs with `tsc --noEmit --strict`: the package's declarations are valid
// TypeScript, and a program written against them type-checks. The `@ts-expect-error` lines must fail to
// compile: they prove the types are not `any`.
import { Client, Node, TxRejectedError, NodeStoppedError, startNode } from '@protoblock/node';
import type { NodeStatus, BlockEvent, WalletView, StartOptions, WalletBackup } from '@protoblock/node';
import '@protoblock/node/elements';

export async function embed(): Promise<void> {
  const client = new Client({ logLevel: 'warn', signatureWorkers: 1 });
  const node: Node = await client.addNode({ relay: 'https://relay.example', storeName: 'league', share: true });
  const st: NodeStatus = await node.status();
  const height: number = st.headHeight + st.finalHeight;
  const role: 'starting' | 'leader' | 'follower' = node.role;
  node.addEventListener('block', (e) => {
    const b: BlockEvent = e.detail;
    const ids: string[] = b.txs;
    void ids;
  });
  const off = node.on('sync', (s) => s.targetHeight.toFixed(0));
  off();
  const w: WalletView = await node.wallet();
  const balance: bigint = w.balance;
  await node.transfer('gridiron-gus', 5n);
  await node.transfer('gridiron-gus', 5);
  try {
    await node.registerName('gus');
  } catch (e) {
    if (e instanceof TxRejectedError) {
      const rule: string | undefined = e.rule;
      const code: 'invalid' | 'duplicate' | 'signer_limit' | 'mempool_full' = e.code;
      void rule; void code;
    }
    if (e instanceof NodeStoppedError) console.log(e.code === 'stopped');
  }
  const el = document.querySelector('protoblock-node');
  if (el) (await el.ready).peerId?.toUpperCase();
  const opts: StartOptions = { relay: 'https://relay.example', targetDirectPeers: 4 };
  const other = await startNode({ ...opts, logLevel: 'info' });
  const backup: WalletBackup = JSON.parse(await other.exportWallet('a passphrase'));
  const version: 1 = backup.version;
  void height; void role; void balance; void version;

  // @ts-expect-error a balance is a bigint, not a number
  const wrong: number = w.balance;
  // @ts-expect-error no such event
  node.on('nope', () => {});
  // @ts-expect-error heights are numbers
  const h: string = st.headHeight;
  // @ts-expect-error no such option
  const bad: StartOptions = { relays: ['x'] };
  void wrong; void h; void bad;
}
