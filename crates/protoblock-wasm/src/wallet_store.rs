//! Where the wallet's key lives in a browser: an IndexedDB database of its
//! own (`protoblock-wallet`), apart from any chain's, so clearing or
//! rebuilding a chain never touches it. The record is written with `add`,
//! never `put`, except by an import the user confirmed: a key is never
//! overwritten or silently replaced, and a record that is not a 32-byte seed
//! is an error, not a reason to make a new one. Backups are sealed and
//! opened with WebCrypto (see [`crate::backup`]).

use js_sys::{Object, Promise, Reflect, Uint8Array};
use rexie::{ObjectStore, Rexie, TransactionMode};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::backup::{Backup, BackupError, Checked, ITERATIONS, IV_LEN, SALT_LEN};
use protoblock_core::crypto::{public_key_of, signing_key_from_seed};

/// The database and its one record, per origin.
pub const WALLET_DB: &str = "protoblock-wallet";
const KEYS: &str = "keys";
const DEFAULT: &str = "default";

/// A wallet failure, with the `code` a page branches on.
#[derive(Debug, Clone)]
pub struct WalletError {
    pub code: &'static str,
    pub message: String,
}

impl WalletError {
    fn new(code: &'static str, message: impl std::fmt::Display) -> Self {
        Self { code, message: message.to_string() }
    }

    fn store(e: impl std::fmt::Display) -> Self {
        Self::new("store_failed", format!("wallet database: {e}"))
    }
}

impl From<BackupError> for WalletError {
    fn from(e: BackupError) -> Self {
        Self::new(e.code(), e)
    }
}

async fn open_db() -> Result<Rexie, WalletError> {
    Rexie::builder(WALLET_DB)
        .version(1)
        .add_object_store(ObjectStore::new(KEYS))
        .build()
        .await
        .map_err(WalletError::store)
}

/// The stored record, as bytes (`None`: no wallet yet).
async fn read(db: &Rexie) -> Result<Option<Vec<u8>>, WalletError> {
    let tx = db.transaction(&[KEYS], TransactionMode::ReadOnly).map_err(WalletError::store)?;
    let v = tx
        .store(KEYS)
        .map_err(WalletError::store)?
        .get(JsValue::from_str(DEFAULT))
        .await
        .map_err(WalletError::store)?;
    Ok(v.filter(|v| !v.is_undefined()).map(|v| Uint8Array::new(&v).to_vec()))
}

fn seed_of(record: Vec<u8>) -> Result<[u8; 32], WalletError> {
    let len = record.len();
    record.try_into().map_err(|_| {
        WalletError::new(
            "wallet_corrupt",
            format!("the stored wallet is {len} bytes, not a 32-byte key; it is kept as it is (export what you can, then clear it yourself)"),
        )
    })
}

// Every call opens its own connection and closes it after: a connection left
// open would block another tab's upgrade or a deletion of the database (both
// wait for every connection to close).

/// The wallet's seed: the stored one; else `legacy` (the key an older
/// version kept in the chain database), moved here; else a new one.
pub async fn load_or_make(legacy: Option<Vec<u8>>) -> Result<[u8; 32], WalletError> {
    let db = open_db().await?;
    let out = load_or_make_in(&db, legacy).await;
    db.close();
    out
}

async fn load_or_make_in(db: &Rexie, legacy: Option<Vec<u8>>) -> Result<[u8; 32], WalletError> {
    if let Some(record) = read(db).await? {
        return seed_of(record);
    }
    let seed = match legacy.and_then(|l| <[u8; 32]>::try_from(l).ok()) {
        Some(s) => s,
        None => {
            let mut s = [0u8; 32];
            getrandom::fill(&mut s).map_err(|e| WalletError::new("store_failed", format!("no randomness: {e}")))?;
            s
        }
    };
    if write(db, &seed, false).await.is_err() {
        // Another tab made one meanwhile: that one is the wallet.
        return seed_of(read(db).await?.ok_or_else(|| WalletError::store("the wallet record vanished"))?);
    }
    Ok(seed)
}

/// Writes the record: `add` (fails if one exists) unless `replace`.
async fn write(db: &Rexie, seed: &[u8; 32], replace: bool) -> Result<(), WalletError> {
    let tx = db.transaction(&[KEYS], TransactionMode::ReadWrite).map_err(WalletError::store)?;
    let store = tx.store(KEYS).map_err(WalletError::store)?;
    let (value, key) = (Uint8Array::from(&seed[..]).into(), JsValue::from_str(DEFAULT));
    match replace {
        true => store.put(&value, Some(&key)).await,
        false => store.add(&value, Some(&key)).await,
    }
    .map_err(WalletError::store)?;
    tx.done().await.map_err(WalletError::store)?;
    Ok(())
}

/// Replaces the wallet with `seed` (an import the user confirmed).
pub async fn replace(seed: &[u8; 32]) -> Result<(), WalletError> {
    let db = open_db().await?;
    let out = write(&db, seed, true).await;
    db.close();
    out
}

/// The raw record, for the browser tests (a corrupt one is put there by hand).
pub async fn stored_record() -> Result<Option<Vec<u8>>, WalletError> {
    let db = open_db().await?;
    let out = read(&db).await;
    db.close();
    out
}

#[wasm_bindgen]
extern "C" {
    /// `crypto.subtle`, in a page or a worker.
    type Subtle;
    #[wasm_bindgen(method, catch, js_name = importKey)]
    fn import_key(
        this: &Subtle,
        format: &str,
        data: &Uint8Array,
        algorithm: &JsValue,
        extractable: bool,
        usages: &js_sys::Array,
    ) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = deriveKey)]
    fn derive_key(
        this: &Subtle,
        algorithm: &JsValue,
        base: &JsValue,
        derived: &JsValue,
        extractable: bool,
        usages: &js_sys::Array,
    ) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn encrypt(this: &Subtle, algorithm: &JsValue, key: &JsValue, data: &Uint8Array) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn decrypt(this: &Subtle, algorithm: &JsValue, key: &JsValue, data: &Uint8Array) -> Result<Promise, JsValue>;
}

fn crypto_err(e: JsValue) -> WalletError {
    WalletError::new("store_failed", format!("WebCrypto: {e:?}"))
}

fn subtle() -> Result<Subtle, WalletError> {
    let crypto = Reflect::get(&js_sys::global(), &"crypto".into()).map_err(crypto_err)?;
    let subtle = Reflect::get(&crypto, &"subtle".into()).map_err(crypto_err)?;
    if subtle.is_undefined() {
        // WebCrypto's subtle half exists only in secure contexts (https, localhost).
        return Err(WalletError::new("store_failed", "WebCrypto is unavailable here (not a secure context)"));
    }
    Ok(subtle.unchecked_into())
}

fn object(fields: &[(&str, JsValue)]) -> Result<JsValue, WalletError> {
    let o = Object::new();
    for (k, v) in fields {
        Reflect::set(&o, &(*k).into(), v).map_err(crypto_err)?;
    }
    Ok(o.into())
}

fn usages(u: &[&str]) -> js_sys::Array {
    u.iter().map(|s| JsValue::from_str(s)).collect()
}

/// The AES-256-GCM key PBKDF2-SHA256 derives from `passphrase`.
async fn derive(subtle: &Subtle, passphrase: &str, salt: &[u8], iterations: u32) -> Result<JsValue, WalletError> {
    let raw = Uint8Array::from(passphrase.as_bytes());
    let base = JsFuture::from(
        subtle.import_key("raw", &raw, &"PBKDF2".into(), false, &usages(&["deriveKey"])).map_err(crypto_err)?,
    )
    .await
    .map_err(crypto_err)?;
    let pbkdf2 = object(&[
        ("name", "PBKDF2".into()),
        ("hash", "SHA-256".into()),
        ("salt", Uint8Array::from(salt).into()),
        ("iterations", iterations.into()),
    ])?;
    let aes = object(&[("name", "AES-GCM".into()), ("length", 256.into())])?;
    let promise =
        subtle.derive_key(&pbkdf2, &base, &aes, false, &usages(&["encrypt", "decrypt"])).map_err(crypto_err)?;
    JsFuture::from(promise).await.map_err(crypto_err)
}

/// A backup of `seed` sealed under `passphrase` (checked by the caller).
pub async fn seal(seed: &[u8; 32], passphrase: &str) -> Result<Backup, WalletError> {
    let subtle = subtle()?;
    let mut salt = [0u8; SALT_LEN];
    let mut iv = [0u8; IV_LEN];
    getrandom::fill(&mut salt)
        .and_then(|_| getrandom::fill(&mut iv))
        .map_err(|e| WalletError::new("store_failed", e))?;
    let key = derive(&subtle, passphrase, &salt, ITERATIONS).await?;
    let alg = object(&[("name", "AES-GCM".into()), ("iv", Uint8Array::from(&iv[..]).into())])?;
    let sealed = JsFuture::from(subtle.encrypt(&alg, &key, &Uint8Array::from(&seed[..])).map_err(crypto_err)?)
        .await
        .map_err(crypto_err)?;
    let sealed = Uint8Array::new(&sealed).to_vec();
    Ok(Backup::new(public_key_of(&signing_key_from_seed(seed)).0, ITERATIONS, &salt, &iv, &sealed))
}

/// The seed a checked backup holds, if `passphrase` opens it.
pub async fn open(backup: &Checked, passphrase: &str) -> Result<[u8; 32], WalletError> {
    let subtle = subtle()?;
    let key = derive(&subtle, passphrase, &backup.salt, backup.iterations).await?;
    let alg = object(&[("name", "AES-GCM".into()), ("iv", Uint8Array::from(&backup.iv[..]).into())])?;
    let opened =
        match JsFuture::from(subtle.decrypt(&alg, &key, &Uint8Array::from(&backup.sealed[..])).map_err(crypto_err)?)
            .await
        {
            Ok(v) => Uint8Array::new(&v).to_vec(),
            // GCM's tag fails: a wrong passphrase (or an altered file).
            Err(_) => return Err(BackupError::Passphrase.into()),
        };
    Ok(backup.seed(&opened)?)
}
