//! IndexedDB plumbing for the store: requests and transactions awaited
//! through promises (no Rust closures to keep alive), values to and from
//! bytes, and the store's error values.

use js_sys::Uint8Array;
use protoblock_core::hash::Hash32;
use protoblock_store::StoreError;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{IdbDatabase, IdbFactory, IdbTransaction};

pub(super) fn poisoned() -> StoreError {
    StoreError::Backend("an earlier commit failed; reopen to resume from its head".into())
}

pub(super) fn superseded() -> StoreError {
    StoreError::Backend("a newer version of this site opened the database: reload the page".into())
}

pub(super) fn js(e: JsValue) -> StoreError {
    StoreError::Backend(format!("{e:?}"))
}

/// Resolves when `tx` commits, fails when it errors or aborts. The handlers
/// are the promise's own JS functions: no Rust closure to keep alive.
pub(super) fn transaction_done(
    tx: &IdbTransaction,
) -> impl std::future::Future<Output = Result<(), StoreError>> + use<> {
    let p = js_sys::Promise::new(&mut |resolve, reject| {
        tx.set_oncomplete(Some(&resolve));
        tx.set_onerror(Some(&reject));
        tx.set_onabort(Some(&reject));
    });
    let tx = tx.clone();
    async move {
        match wasm_bindgen_futures::JsFuture::from(p).await {
            Ok(_) => Ok(()),
            Err(_) => Err(StoreError::Backend(match tx.error() {
                Some(e) => format!("transaction failed: {}: {}", e.name(), e.message()),
                None => "transaction aborted".to_string(),
            })),
        }
    }
}

/// Opens a raw connection to a database that already exists at `version`.
pub(super) async fn open_raw(name: &str, version: u32) -> Result<IdbDatabase, StoreError> {
    let factory: IdbFactory = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("indexedDB"))
        .map_err(js)?
        .dyn_into()
        .map_err(|_| StoreError::Backend("no indexedDB here".into()))?;
    let req = factory.open_with_u32(name, version).map_err(js)?;
    let db = request(req.into()).await?;
    db.dyn_into().map_err(|_| StoreError::Backend("open gave no database".into()))
}

pub(super) fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

pub(super) fn bytes(v: &[u8]) -> JsValue {
    Uint8Array::from(v).into()
}

/// Values come back as the `Uint8Array`s stored; binary keys come back as
/// `ArrayBuffer`s (IndexedDB normalises them).
pub(super) fn to_vec(v: &JsValue) -> Result<Vec<u8>, StoreError> {
    if let Some(a) = v.dyn_ref::<Uint8Array>() {
        return Ok(a.to_vec());
    }
    v.dyn_ref::<js_sys::ArrayBuffer>().map(|b| Uint8Array::new(b).to_vec()).ok_or(StoreError::Corrupt("expected bytes"))
}

pub(super) fn to_hash(v: &JsValue) -> Result<Hash32, StoreError> {
    Hash32::from_slice(&to_vec(v)?).ok_or(StoreError::Corrupt("expected a 32-byte id"))
}

/// Awaits an IndexedDB request's result. The handlers are the promise's own
/// JS functions: no Rust closure to keep alive; they are taken off once it
/// settles. Every read a peer can cause goes through here rather than
/// rexie: rexie's handlers are Rust closures owned by the future, so a read
/// dropped in flight (the node stopping while it serves) left a request
/// that threw "closure invoked ... after being dropped" when it completed.
pub(super) async fn request(req: web_sys::IdbRequest) -> Result<JsValue, StoreError> {
    let p = js_sys::Promise::new(&mut |resolve, reject| {
        req.set_onsuccess(Some(&resolve));
        req.set_onerror(Some(&reject));
    });
    let r = wasm_bindgen_futures::JsFuture::from(p).await;
    req.set_onsuccess(None);
    req.set_onerror(None);
    r.map_err(js)?;
    req.result().map_err(js)
}

/// A `get` result: `undefined` when the key is absent.
pub(super) fn optional_bytes(v: &JsValue) -> Result<Option<Vec<u8>>, StoreError> {
    if v.is_undefined() { Ok(None) } else { to_vec(v).map(Some) }
}
