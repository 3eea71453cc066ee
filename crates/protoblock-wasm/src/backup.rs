//! The wallet's backup file, platform-free: what it holds and how a file is
//! checked before anything is derived from it. The sealing itself is
//! WebCrypto's in a page (`wallet_store`): PBKDF2-SHA256 turns the
//! passphrase into an AES-256-GCM key that seals the 32-byte seed. The public
//! key rides in the clear so a page can say whose wallet a file holds before
//! asking for the passphrase, and so an opened seed is proven to be that key.
//!
//! A backup is user input from a file: every field is bounded (the iteration
//! count too, or a crafted file would make a page derive for hours).

use serde::{Deserialize, Serialize};

use protoblock_core::crypto::{public_key_of, signing_key_from_seed};

pub const FORMAT: &str = "protoblock-wallet-backup";
pub const VERSION: u32 = 1;
/// OWASP's 2023 figure for PBKDF2-HMAC-SHA256: about half a second in a page.
pub const ITERATIONS: u32 = 600_000;
pub const MIN_ITERATIONS: u32 = 100_000;
pub const MAX_ITERATIONS: u32 = 5_000_000;
pub const SALT_LEN: usize = 16;
pub const IV_LEN: usize = 12;
/// The seed and GCM's 16-byte tag.
pub const SEALED_LEN: usize = 32 + 16;
pub const MIN_PASSPHRASE_CHARS: usize = 8;
pub const MAX_PASSPHRASE_BYTES: usize = 1024;

/// A wallet backup file's content (`exportWallet`): the seed sealed under a
/// passphrase (PBKDF2-SHA256, AES-256-GCM), the public key in the clear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "WalletBackup"))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Backup {
    #[cfg_attr(test, ts(type = "\"protoblock-wallet-backup\""))]
    pub format: String,
    #[cfg_attr(test, ts(type = "1"))]
    pub version: u32,
    /// The wallet's public key, hex.
    pub public_key: String,
    pub kdf: Kdf,
    pub cipher: Cipher,
    /// The sealed seed, hex.
    pub sealed: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct Kdf {
    #[cfg_attr(test, ts(type = "\"PBKDF2\""))]
    pub name: String,
    #[cfg_attr(test, ts(type = "\"SHA-256\""))]
    pub hash: String,
    pub iterations: u32,
    /// Hex.
    pub salt: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct Cipher {
    #[cfg_attr(test, ts(type = "\"AES-GCM\""))]
    pub name: String,
    /// Hex.
    pub iv: String,
}

/// A backup whose fields all check out, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub public_key: [u8; 32],
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub iv: Vec<u8>,
    pub sealed: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupError {
    NotABackup,
    Version(u32),
    Field(&'static str),
    /// The passphrase does not open it (or the file was altered: GCM cannot tell which).
    Passphrase,
    /// It opened to a key other than the one it names.
    Mismatch,
    WeakPassphrase,
}

impl BackupError {
    /// The `code` of the `ProtoblockError` a page sees.
    pub fn code(&self) -> &'static str {
        match self {
            BackupError::Passphrase => "bad_passphrase",
            BackupError::WeakPassphrase => "bad_argument",
            _ => "bad_backup",
        }
    }
}

impl std::fmt::Display for BackupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackupError::NotABackup => write!(f, "not a Protoblock wallet backup"),
            BackupError::Version(v) => write!(f, "backup version {v}; this node reads version {VERSION}"),
            BackupError::Field(name) => write!(f, "backup field `{name}` is malformed"),
            BackupError::Passphrase => write!(f, "the passphrase does not open this backup"),
            BackupError::Mismatch => write!(f, "the backup holds another key than the one it names"),
            BackupError::WeakPassphrase => write!(
                f,
                "passphrase: at least {MIN_PASSPHRASE_CHARS} characters, at most {MAX_PASSPHRASE_BYTES} bytes"
            ),
        }
    }
}

pub fn check_passphrase(p: &str) -> Result<(), BackupError> {
    if p.chars().count() < MIN_PASSPHRASE_CHARS || p.len() > MAX_PASSPHRASE_BYTES {
        return Err(BackupError::WeakPassphrase);
    }
    Ok(())
}

fn hex_field(v: &str, name: &'static str, len: usize) -> Result<Vec<u8>, BackupError> {
    if v.len() != len * 2 {
        return Err(BackupError::Field(name));
    }
    hex::decode(v).map_err(|_| BackupError::Field(name))
}

impl Backup {
    pub fn new(public_key: [u8; 32], iterations: u32, salt: &[u8], iv: &[u8], sealed: &[u8]) -> Self {
        Self {
            format: FORMAT.into(),
            version: VERSION,
            public_key: hex::encode(public_key),
            kdf: Kdf { name: "PBKDF2".into(), hash: "SHA-256".into(), iterations, salt: hex::encode(salt) },
            cipher: Cipher { name: "AES-GCM".into(), iv: hex::encode(iv) },
            sealed: hex::encode(sealed),
        }
    }

    pub fn check(&self) -> Result<Checked, BackupError> {
        if self.format != FORMAT {
            return Err(BackupError::NotABackup);
        }
        if self.version != VERSION {
            return Err(BackupError::Version(self.version));
        }
        if self.kdf.name != "PBKDF2" || self.kdf.hash != "SHA-256" {
            return Err(BackupError::Field("kdf"));
        }
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&self.kdf.iterations) {
            return Err(BackupError::Field("kdf.iterations"));
        }
        if self.cipher.name != "AES-GCM" {
            return Err(BackupError::Field("cipher"));
        }
        let public_key = hex_field(&self.public_key, "public_key", 32)?;
        Ok(Checked {
            public_key: public_key.try_into().map_err(|_| BackupError::Field("public_key"))?,
            iterations: self.kdf.iterations,
            salt: hex_field(&self.kdf.salt, "kdf.salt", SALT_LEN)?,
            iv: hex_field(&self.cipher.iv, "cipher.iv", IV_LEN)?,
            sealed: hex_field(&self.sealed, "sealed", SEALED_LEN)?,
        })
    }
}

impl Checked {
    /// The seed an opened backup gave, if it is the key the backup names.
    pub fn seed(&self, opened: &[u8]) -> Result<[u8; 32], BackupError> {
        let seed: [u8; 32] = opened.try_into().map_err(|_| BackupError::Mismatch)?;
        match public_key_of(&signing_key_from_seed(&seed)).0 == self.public_key {
            true => Ok(seed),
            false => Err(BackupError::Mismatch),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Backup {
        let pk = public_key_of(&signing_key_from_seed(&[7; 32])).0;
        Backup::new(pk, ITERATIONS, &[1; SALT_LEN], &[2; IV_LEN], &[3; SEALED_LEN])
    }

    #[test]
    fn a_backup_made_here_checks_out_and_opens_only_to_its_own_key() {
        let c = sample().check().unwrap();
        assert_eq!(c.iterations, ITERATIONS);
        assert_eq!(c.seed(&[7; 32]), Ok([7; 32]));
        assert_eq!(c.seed(&[8; 32]), Err(BackupError::Mismatch));
        assert_eq!(c.seed(&[7; 31]), Err(BackupError::Mismatch));
    }

    #[test]
    fn every_field_is_bounded() {
        let mut b = sample();
        b.format = "something else".into();
        assert_eq!(b.check(), Err(BackupError::NotABackup));
        let mut b = sample();
        b.version = 2;
        assert_eq!(b.check(), Err(BackupError::Version(2)));
        for iterations in [0, MIN_ITERATIONS - 1, MAX_ITERATIONS + 1, u32::MAX] {
            let mut b = sample();
            b.kdf.iterations = iterations;
            assert_eq!(b.check(), Err(BackupError::Field("kdf.iterations")), "{iterations}");
        }
        let mut b = sample();
        b.kdf.salt = "00".repeat(SALT_LEN + 1);
        assert_eq!(b.check(), Err(BackupError::Field("kdf.salt")));
        let mut b = sample();
        b.sealed = "zz".repeat(SEALED_LEN);
        assert_eq!(b.check(), Err(BackupError::Field("sealed")));
        let mut b = sample();
        b.cipher.iv.push('0');
        assert_eq!(b.check(), Err(BackupError::Field("cipher.iv")));
        let mut b = sample();
        b.kdf.hash = "SHA-1".into();
        assert_eq!(b.check(), Err(BackupError::Field("kdf")));
    }

    #[test]
    fn passphrases_are_at_least_eight_characters() {
        assert_eq!(check_passphrase("seven77"), Err(BackupError::WeakPassphrase));
        assert!(check_passphrase("eight888").is_ok());
        assert!(check_passphrase("ümläute!").is_ok(), "characters, not bytes");
        assert_eq!(check_passphrase(&"x".repeat(MAX_PASSPHRASE_BYTES + 1)), Err(BackupError::WeakPassphrase));
    }
}
