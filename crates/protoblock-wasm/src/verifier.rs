//! Block signatures checked in Web Workers while the page's own thread applies
//! blocks: signatures are about half of a browser's sync time, and a page has
//! more than one core. Each worker runs this same package (`js/verifier.js`
//! loads it) and answers with [`SignatureChecker`]; the node loop sends it
//! whole synced ranges through a [`SignatureVerifier`] and inserts the blocks
//! that passed without checking their signatures again. A block that failed
//! goes to the chain unchecked, which names the rule and bans the peer, so a
//! worker can make the node slower but never accept less.

use futures::channel::mpsc;
use futures::stream::FuturesUnordered;
use futures::{SinkExt, StreamExt};
use protoblock_core::Genesis;
use protoblock_core::crypto::KeyCache;
use protoblock_net::{SignatureVerifier, VerifyDone, VerifyJob};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, spawn_local};

#[wasm_bindgen(module = "/js/verifier.js")]
extern "C" {
    type WorkerPool;
    #[wasm_bindgen(constructor, catch)]
    fn new(module: &JsValue, genesis: &[u8], count: u32) -> Result<WorkerPool, JsValue>;
    #[wasm_bindgen(method)]
    fn verify(this: &WorkerPool, blocks: js_sys::Array) -> js_sys::Promise;
    #[wasm_bindgen(method)]
    fn close(this: &WorkerPool);
}

/// The worker's half: every signature of one block, as
/// `protoblock_core::block::verify_signatures` checks them. Exported for the
/// workers; a page has no use for it.
#[wasm_bindgen]
pub struct SignatureChecker {
    genesis: Genesis,
    keys: KeyCache,
}

#[wasm_bindgen]
impl SignatureChecker {
    #[wasm_bindgen(constructor)]
    pub fn new(genesis: &[u8]) -> Result<SignatureChecker, JsError> {
        let genesis = Genesis::from_bytes(genesis).map_err(|e| JsError::new(&format!("genesis: {e}")))?;
        Ok(Self { genesis, keys: KeyCache::default() })
    }

    /// Whether every signature in `block` verifies (false for anything that
    /// does not decode).
    pub fn check(&mut self, block: &[u8]) -> bool {
        protoblock_core::block::verify_signatures(block, &self.genesis, &mut self.keys).is_ok()
    }

    /// [`SignatureChecker::check`] for each block of a range (an array of
    /// `Uint8Array`s), 1 or 0 per block, with the range's txs batched together
    /// (`protoblock_core::block::verify_signatures_run`). Anything in the array
    /// that is not a byte array is a block that fails.
    #[wasm_bindgen(js_name = checkRun)]
    pub fn check_run(&mut self, blocks: js_sys::Array) -> Vec<u8> {
        let owned: Vec<Option<Vec<u8>>> =
            blocks.iter().map(|b| b.dyn_into::<js_sys::Uint8Array>().ok().map(|b| b.to_vec())).collect();
        let present: Vec<&[u8]> = owned.iter().flatten().map(Vec::as_slice).collect();
        let mut verdicts =
            protoblock_core::block::verify_signatures_run(&present, &self.genesis, &mut self.keys).into_iter();
        owned.iter().map(|b| u8::from(b.is_some() && verdicts.next().unwrap_or(false))).collect()
    }
}

/// Ranges waiting for the pool, at most. The node checks a range itself when
/// this is full, so a slow pool costs nothing but the overlap.
const QUEUE: usize = 16;

/// Starts `count` workers for `genesis` and a task bridging them to the node.
/// `None` when the page cannot run module workers (the node then checks
/// signatures on its own loop, as before).
pub fn start(genesis: &[u8], count: u32) -> Option<SignatureVerifier> {
    // The page's compiled module goes to the workers: no second download or compile.
    let pool = match WorkerPool::new(&wasm_bindgen::module(), genesis, count) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = ?e, "no signature workers; checking signatures on the page's thread");
            return None;
        }
    };
    let (jobs_tx, mut jobs_rx) = mpsc::channel::<VerifyJob>(QUEUE);
    let (mut done_tx, done_rx) = mpsc::channel::<VerifyDone>(QUEUE);
    spawn_local(async move {
        let mut out = FuturesUnordered::new();
        let mut open = true;
        loop {
            futures::select! {
                job = jobs_rx.next() => match job {
                    Some(job) => {
                        let arr = js_sys::Array::new();
                        for b in &job.blocks {
                            arr.push(&js_sys::Uint8Array::from(&b[..]));
                        }
                        let promise = JsFuture::from(pool.verify(arr));
                        out.push(async move { (job, promise.await) });
                    }
                    // The node stopped.
                    None => break,
                },
                (job, verdict) = out.select_next_some() => {
                    let ok = match verdict.ok().map(js_sys::Uint8Array::from) {
                        Some(flags) if flags.length() as usize == job.blocks.len() => {
                            flags.to_vec().into_iter().map(|f| f == 1).collect()
                        }
                        _ => {
                            // The pool broke: the node checks this range itself,
                            // and the closed channel tells it to stop using the pool.
                            if open {
                                tracing::warn!("signature workers failed; checking signatures on the page's thread");
                            }
                            open = false;
                            vec![false; job.blocks.len()]
                        }
                    };
                    if done_tx.send(VerifyDone { token: job.token, blocks: job.blocks, ok }).await.is_err() {
                        break;
                    }
                    if !open && out.is_empty() {
                        break;
                    }
                },
            }
        }
        pool.close();
    });
    Some(SignatureVerifier { jobs: jobs_tx, done: done_rx })
}
