//! Keeping what the user owns: persistent storage for the site, and the
//! wallet's backups (exported sealed, imported only when confirmed).

use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, spawn_local};

use super::{ProtoblockNode, coded_err, describe, to_js};
use crate::wallet::Wallet;

/// `navigator.storage`, where the page has it.
fn storage_manager() -> Option<JsValue> {
    let nav = js_sys::Reflect::get(&js_sys::global(), &"navigator".into()).ok()?;
    let storage = js_sys::Reflect::get(&nav, &"storage".into()).ok()?;
    (!storage.is_undefined()).then_some(storage)
}

/// Calls `name()` on `navigator.storage` and awaits its boolean.
async fn storage_flag(name: &str) -> Option<bool> {
    let storage = storage_manager()?;
    let f: js_sys::Function = js_sys::Reflect::get(&storage, &name.into()).ok()?.dyn_into().ok()?;
    let p: js_sys::Promise = f.call0(&storage).ok()?.dyn_into().ok()?;
    JsFuture::from(p).await.ok()?.as_bool()
}

/// Asks the browser to keep this origin's storage (the wallet and the chain)
/// through storage pressure; it may say no, which `storagePersisted` shows.
pub(super) fn request_persistent_storage() {
    spawn_local(async {
        let granted = storage_flag("persist").await;
        tracing::info!(?granted, "persistent storage requested");
    });
}

fn wallet_err(e: crate::wallet_store::WalletError) -> JsValue {
    coded_err(e.code, None, &e.message)
}

#[wasm_bindgen]
impl ProtoblockNode {
    /// Whether the browser keeps this origin's storage through storage
    /// pressure (`navigator.storage.persisted()`); `null` where it cannot
    /// say. While it is false, the wallet may be lost with the site's data:
    /// a page should offer `exportWallet`.
    #[wasm_bindgen(js_name = storagePersisted, unchecked_return_type = "boolean | null")]
    pub async fn storage_persisted(&self) -> JsValue {
        storage_flag("persisted").await.map_or(JsValue::NULL, JsValue::from_bool)
    }

    /// The wallet sealed under `passphrase` (at least 8 characters), as the
    /// JSON text of a backup file (`WalletBackup`). The seed leaves the node
    /// only like this.
    #[wasm_bindgen(js_name = exportWallet)]
    pub async fn export_wallet(&self, passphrase: String) -> Result<String, JsValue> {
        crate::backup::check_passphrase(&passphrase).map_err(|e| coded_err(e.code(), None, &e.to_string()))?;
        let seed = self.inner.wallet.borrow().seed();
        let backup = crate::wallet_store::seal(&seed, &passphrase).await.map_err(wallet_err)?;
        let v = to_js(&backup).map_err(JsValue::from)?;
        let text = js_sys::JSON::stringify_with_replacer_and_space(&v, &JsValue::NULL, &2.into())
            .map_err(|e| coded_err("store_failed", None, &describe(&e)))?;
        Ok(String::from(text))
    }

    /// Restores the wallet from a backup file's text. A backup of another
    /// key than this browser's wallet is refused ("wallet_exists") unless
    /// `replace` is true: the page asks the user first, since the current key
    /// is then gone unless it was exported. Resolves to the wallet.
    #[wasm_bindgen(js_name = importWallet, unchecked_return_type = "WalletView")]
    pub async fn import_wallet(&self, backup: String, passphrase: String, replace: bool) -> Result<JsValue, JsValue> {
        use crate::backup::{Backup, BackupError};
        const MAX_BACKUP_BYTES: usize = 4096;
        let bad = |e: BackupError| coded_err(e.code(), None, &e.to_string());
        if backup.len() > MAX_BACKUP_BYTES {
            return Err(bad(BackupError::NotABackup));
        }
        let parsed = js_sys::JSON::parse(&backup).map_err(|_| bad(BackupError::NotABackup))?;
        let parsed: Backup = serde_wasm_bindgen::from_value(parsed).map_err(|_| bad(BackupError::NotABackup))?;
        let checked = parsed.check().map_err(bad)?;
        let seed = crate::wallet_store::open(&checked, &passphrase).await.map_err(wallet_err)?;
        if self.inner.wallet.borrow().public_key() != checked.public_key {
            if !replace {
                return Err(coded_err(
                    "wallet_exists",
                    None,
                    "this browser has another wallet; export it first, then import with replace",
                ));
            }
            crate::wallet_store::replace(&seed).await.map_err(wallet_err)?;
            *self.inner.wallet.borrow_mut() = Wallet::from_seed(&seed);
        }
        self.wallet().await
    }
}
