//! Who you are, on disk: an RSA identity key in a PKCS#8 PEM file.
//!
//! - Written atomically (temporary file, then rename) with mode 0600.
//! - Optionally encrypted: PBES2 with PBKDF2-HMAC-SHA256
//!   ([`PBKDF2_ITERATIONS`] iterations, 16-byte random salt) and AES-256-CBC.
//! - Loading gives a clear error for each way a file can be wrong, and a
//!   warning when group or others may read it.
//!
//! This module never logs and never puts key bytes or passphrases in errors.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use pkcs8::der::pem::PemLabel;
use pkcs8::der::Decode;
use pkcs8::pkcs5::pbes2;
use pkcs8::{EncryptedPrivateKeyInfo, LineEnding, PrivateKeyInfo, SecretDocument};
use rsa::RsaPrivateKey;
use zeroize::Zeroizing;

use crate::crypto::{KeyError, PrivateKey};

/// PBKDF2-HMAC-SHA256 iterations for passphrase-protected key files
/// (OWASP 2023 guidance for PBKDF2-SHA256).
pub const PBKDF2_ITERATIONS: u32 = 600_000;
/// Largest key file read, in bytes.
pub const MAX_KEY_FILE: u64 = 64 * 1024;
/// Most PBKDF2 iterations accepted when loading (bounds the time a crafted
/// file can cost).
pub const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;

const RSA_ENCRYPTION_OID: &str = "1.2.840.113549.1.1.1";

/// What went wrong with an identity file. Messages name the file and say
/// what to do; none carries key material.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// No file at the path.
    #[error("identity file {0} does not exist (the apps create it on first start; --identity FILE names another)")]
    NotFound(PathBuf),
    /// The file could not be read or written.
    #[error("cannot access identity file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Larger than [`MAX_KEY_FILE`].
    #[error("identity file {0} is too large to be a key file")]
    TooLarge(PathBuf),
    /// Encrypted, and no passphrase was given.
    #[error("identity file {0} is encrypted: a passphrase is required")]
    PassphraseRequired(PathBuf),
    /// Encrypted, and the passphrase does not decrypt it.
    #[error("wrong passphrase for identity file {0} (or the file is damaged)")]
    WrongPassphrase(PathBuf),
    /// The encryption parameters would take unreasonably long to try.
    #[error("identity file {0} uses key-derivation parameters beyond the allowed cost")]
    ExcessiveCost(PathBuf),
    /// Not a PEM-encoded PKCS#8 key.
    #[error("identity file {path} is not a PKCS#8 PEM private key: {why}")]
    NotPkcs8 {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        why: String,
    },
    /// A PKCS#8 key of another algorithm.
    #[error("identity file {path} holds a non-RSA key (algorithm {oid}); TeamChat identities are RSA-3072")]
    WrongKeyType {
        /// The file.
        path: PathBuf,
        /// The algorithm OID found.
        oid: String,
    },
    /// An RSA key that is too small, too large, or inconsistent.
    #[error("identity file {path}: {source}")]
    BadKey {
        /// The file.
        path: PathBuf,
        /// The problem.
        source: KeyError,
    },
    /// Encoding for writing failed.
    #[error("cannot encode identity key: {0}")]
    Encode(String),
}

/// Warnings about a key file that loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityWarning {
    /// Group or others may read or write the file.
    LoosePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

impl std::fmt::Display for IdentityWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdentityWarning::LoosePermissions { path, mode } => write!(
                f,
                "identity file {} has mode {:04o}: others may read your key; run `chmod 600 {}`",
                path.display(),
                mode,
                path.display()
            ),
        }
    }
}

/// A loaded identity and anything the user should be told about its file.
#[derive(Debug)]
pub struct Loaded {
    /// The key.
    pub key: PrivateKey,
    /// Problems that did not stop loading.
    pub warnings: Vec<IdentityWarning>,
}

/// Writes `key` to `path` as PKCS#8 PEM with mode 0600, encrypted when a
/// passphrase is given. Replaces an existing file atomically.
pub fn save(path: &Path, key: &PrivateKey, passphrase: Option<&[u8]>) -> Result<(), IdentityError> {
    let pem = encode_pem(key, passphrase)?;
    write_private(path, pem.as_bytes())
}

/// The PEM text [`save`] writes (zeroized when dropped).
pub fn encode_pem(
    key: &PrivateKey,
    passphrase: Option<&[u8]>,
) -> Result<Zeroizing<String>, IdentityError> {
    use pkcs8::EncodePrivateKey;
    let doc = key
        .rsa()
        .to_pkcs8_der()
        .map_err(|e| IdentityError::Encode(e.to_string()))?;
    let Some(pass) = passphrase else {
        return doc
            .to_pem(PrivateKeyInfo::PEM_LABEL, LineEnding::LF)
            .map_err(|e| IdentityError::Encode(e.to_string()));
    };
    let salt: [u8; 16] = crate::crypto::random_array();
    let iv: [u8; 16] = crate::crypto::random_array();
    let params = pbes2::Parameters::pbkdf2_sha256_aes256cbc(PBKDF2_ITERATIONS, &salt, &iv)
        .map_err(|e| IdentityError::Encode(e.to_string()))?;
    let info = PrivateKeyInfo::try_from(doc.as_bytes())
        .map_err(|e| IdentityError::Encode(e.to_string()))?;
    let encrypted = info
        .encrypt_with_params(params, pass)
        .map_err(|e| IdentityError::Encode(e.to_string()))?;
    encrypted
        .to_pem(EncryptedPrivateKeyInfo::PEM_LABEL, LineEnding::LF)
        .map_err(|e| IdentityError::Encode(e.to_string()))
}

/// Reads the identity at `path`, decrypting it with `passphrase` if it is
/// encrypted.
pub fn load(path: &Path, passphrase: Option<&[u8]>) -> Result<Loaded, IdentityError> {
    let io_err = |source: io::Error| {
        if source.kind() == io::ErrorKind::NotFound {
            IdentityError::NotFound(path.to_path_buf())
        } else {
            IdentityError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    };
    // Check before opening: opening a FIFO for reading would block.
    let meta = fs::metadata(path).map_err(io_err)?;
    if !meta.is_file() {
        return Err(IdentityError::NotPkcs8 {
            path: path.to_path_buf(),
            why: "not a regular file".into(),
        });
    }
    if meta.len() > MAX_KEY_FILE {
        return Err(IdentityError::TooLarge(path.to_path_buf()));
    }
    let file = fs::File::open(path).map_err(io_err)?;
    // Sized up front so the key text is never reallocated (a reallocation
    // would leave an unzeroized copy in freed memory).
    let mut text = Zeroizing::new(String::with_capacity(MAX_KEY_FILE as usize + 1));
    file.take(MAX_KEY_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| match e.kind() {
            io::ErrorKind::InvalidData => IdentityError::NotPkcs8 {
                path: path.to_path_buf(),
                why: "the file is not text".into(),
            },
            _ => io_err(e),
        })?;
    let key = decode_pem(path, &text, passphrase)?;
    let mut warnings = Vec::new();
    if let Some(mode) = loose_mode(&meta) {
        warnings.push(IdentityWarning::LoosePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(Loaded { key, warnings })
}

/// Decodes PEM text read from `path` (used in error messages only).
pub fn decode_pem(
    path: &Path,
    pem: &str,
    passphrase: Option<&[u8]>,
) -> Result<PrivateKey, IdentityError> {
    let p = || path.to_path_buf();
    let not_pkcs8 = |why: String| IdentityError::NotPkcs8 { path: p(), why };
    let (label, doc) = SecretDocument::from_pem(pem)
        .map_err(|e| not_pkcs8(format!("no valid PEM block ({e})")))?;
    let plain: SecretDocument = match label {
        "PRIVATE KEY" => doc,
        "ENCRYPTED PRIVATE KEY" => {
            let pass = passphrase.ok_or_else(|| IdentityError::PassphraseRequired(p()))?;
            let info = EncryptedPrivateKeyInfo::from_der(doc.as_bytes())
                .map_err(|e| not_pkcs8(format!("malformed encrypted key ({e})")))?;
            check_kdf_cost(&info).map_err(|()| IdentityError::ExcessiveCost(p()))?;
            info.decrypt(pass)
                .map_err(|_| IdentityError::WrongPassphrase(p()))?
        }
        "RSA PRIVATE KEY" => {
            return Err(not_pkcs8(
                "found PKCS#1 (\"RSA PRIVATE KEY\"); convert it with `openssl pkcs8 -topk8`".into(),
            ))
        }
        other => return Err(not_pkcs8(format!("found a PEM block labelled {other:?}"))),
    };
    let info = PrivateKeyInfo::from_der(plain.as_bytes()).map_err(|e| {
        if label == "ENCRYPTED PRIVATE KEY" {
            // Wrong passphrases that happen to unpad land here.
            IdentityError::WrongPassphrase(p())
        } else {
            not_pkcs8(format!("malformed key ({e})"))
        }
    })?;
    let oid = info.algorithm.oid.to_string();
    if oid != RSA_ENCRYPTION_OID {
        return Err(IdentityError::WrongKeyType { path: p(), oid });
    }
    let rsa = RsaPrivateKey::try_from(info).map_err(|_| IdentityError::BadKey {
        path: p(),
        source: KeyError::InconsistentPrivateKey,
    })?;
    PrivateKey::from_rsa(rsa).map_err(|source| IdentityError::BadKey { path: p(), source })
}

/// The PBKDF2 rounds an encrypted identity file asks for, if it is one
/// (for the fuzz target, which skips the costliest).
#[cfg(feature = "test-support")]
pub(crate) fn kdf_iterations(pem: &str) -> Option<u32> {
    let (label, doc) = SecretDocument::from_pem(pem).ok()?;
    if label != "ENCRYPTED PRIVATE KEY" {
        return None;
    }
    pbkdf2_rounds(&EncryptedPrivateKeyInfo::from_der(doc.as_bytes()).ok()?)
}

/// The PBKDF2 rounds of an encrypted key; `None` for scrypt or anything
/// else.
fn pbkdf2_rounds(info: &EncryptedPrivateKeyInfo<'_>) -> Option<u32> {
    match &info.encryption_algorithm.pbes2()?.kdf {
        pbes2::Kdf::Pbkdf2(p) => Some(p.iteration_count),
        _ => None,
    }
}

/// TeamChat never writes scrypt, and its memory cost is set by the file: a
/// 300-byte file could ask for gigabytes. Refused, as is PBKDF2 above
/// [`MAX_PBKDF2_ITERATIONS`].
fn check_kdf_cost(info: &EncryptedPrivateKeyInfo<'_>) -> Result<(), ()> {
    match pbkdf2_rounds(info) {
        Some(n) if n <= MAX_PBKDF2_ITERATIONS => Ok(()),
        _ => Err(()),
    }
}

#[cfg(unix)]
fn loose_mode(meta: &fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    (mode & 0o077 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn loose_mode(_meta: &fs::Metadata) -> Option<u32> {
    None
}

/// Writes `bytes` to a new file beside `path` with mode 0600, syncs it, and
/// renames it over `path`.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), IdentityError> {
    let io_err = |source| IdentityError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| {
        io_err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "path has no file name",
        ))
    })?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        hex::encode(crate::crypto::random_array::<6>())
    ));
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let result = (|| {
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(e));
    }
    Ok(())
}
