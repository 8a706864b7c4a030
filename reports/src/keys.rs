//! Ed25519 signing keys for bundles: generation, PEM files, key ids.
//!
//! The private key is written as PKCS#8 PEM (`certlab-signing.key`, mode 0600),
//! the public key as SubjectPublicKeyInfo PEM (`certlab-signing.pub`); both are
//! what `openssl pkey` reads and writes for Ed25519.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand_core::OsRng;

use crate::artifacts::sha256_hex;
use crate::error::ReportError;

/// File name of the private key written by [`SigningKeyPair::write_pair`].
pub const PRIVATE_KEY_FILE: &str = "certlab-signing.key";
/// File name of the public key written by [`SigningKeyPair::write_pair`].
pub const PUBLIC_KEY_FILE: &str = "certlab-signing.pub";

/// The id of a public key: the first 16 hex characters of the sha256 of its raw 32 bytes.
pub fn key_id(key: &VerifyingKey) -> String {
    let mut id = sha256_hex(key.as_bytes());
    id.truncate(16);
    id
}

/// A signing key with its public half.
pub struct SigningKeyPair {
    signing: SigningKey,
}

impl std::fmt::Debug for SigningKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyPair")
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

impl SigningKeyPair {
    /// A new key from the operating system's random number generator.
    pub fn generate() -> SigningKeyPair {
        SigningKeyPair {
            signing: SigningKey::generate(&mut OsRng),
        }
    }

    /// Wraps an existing key (for example one from [`load_private`]).
    pub fn from_signing_key(signing: SigningKey) -> SigningKeyPair {
        SigningKeyPair { signing }
    }

    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// See [`key_id`].
    pub fn key_id(&self) -> String {
        key_id(&self.verifying_key())
    }

    /// Writes `certlab-signing.key` (PKCS#8 PEM, mode 0600) and
    /// `certlab-signing.pub` (SPKI PEM) into `dir`, creating `dir` if needed,
    /// and returns their paths (private, public).
    ///
    /// Refuses to overwrite an existing key file.
    pub fn write_pair(&self, dir: &Path) -> Result<(PathBuf, PathBuf), ReportError> {
        fs::create_dir_all(dir).map_err(|e| ReportError::io("create directory", dir, e))?;
        let private_path = dir.join(PRIVATE_KEY_FILE);
        let public_path = dir.join(PUBLIC_KEY_FILE);

        let private_pem = self
            .signing
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| key_error(&private_path, e))?;
        let public_pem = self
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| key_error(&public_path, e))?;

        write_new(&private_path, private_pem.as_bytes(), 0o600)?;
        write_new(&public_path, public_pem.as_bytes(), 0o644)?;
        Ok((private_path, public_path))
    }
}

/// Reads a PKCS#8 PEM Ed25519 private key.
pub fn load_private(path: &Path) -> Result<SigningKey, ReportError> {
    let pem = fs::read_to_string(path).map_err(|e| ReportError::io("read", path, e))?;
    SigningKey::from_pkcs8_pem(&pem).map_err(|e| key_error(path, e))
}

/// Reads an SPKI PEM Ed25519 public key.
pub fn load_public(path: &Path) -> Result<VerifyingKey, ReportError> {
    let pem = fs::read_to_string(path).map_err(|e| ReportError::io("read", path, e))?;
    VerifyingKey::from_public_key_pem(&pem).map_err(|e| key_error(path, e))
}

fn key_error(path: &Path, e: impl std::fmt::Display) -> ReportError {
    ReportError::Key {
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}

/// Creates `path` (failing if it exists) with `mode` on Unix and writes
/// `bytes`. The file appears whole or not at all: it is written and synced
/// under a temporary name beside it, then linked to `path` (a link fails
/// if `path` exists), so a process that finds `path` — several daemons
/// creating the default key at once — never reads half a key.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), ReportError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = path.with_file_name(format!(".{name}.{}-{nanos}.tmp", std::process::id()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let written = options
        .open(&tmp)
        .map_err(|e| ReportError::io("create", &tmp, e))
        .and_then(|mut file| {
            file.write_all(bytes)
                .and_then(|()| file.sync_all())
                .map_err(|e| ReportError::io("write", &tmp, e))
        })
        .and_then(|()| fs::hard_link(&tmp, path).map_err(|e| ReportError::io("create", path, e)));
    let _ = fs::remove_file(&tmp);
    written
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, Verifier};

    #[test]
    fn key_id_is_sha256_prefix_of_raw_key() {
        // RFC 8032 test 1 public key.
        let raw = hex::decode("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
            .unwrap();
        let key = VerifyingKey::from_bytes(&raw.clone().try_into().unwrap()).unwrap();
        let id = key_id(&key);
        assert_eq!(id.len(), 16);
        assert_eq!(id, sha256_hex(&raw)[..16]);
    }

    #[test]
    fn write_and_load_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let pair = SigningKeyPair::generate();
        let (private, public) = pair.write_pair(&tmp.path().join("keys")).unwrap();
        assert_eq!(private.file_name().unwrap(), PRIVATE_KEY_FILE);
        assert_eq!(public.file_name().unwrap(), PUBLIC_KEY_FILE);
        let pem = fs::read_to_string(&private).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
        let pub_pem = fs::read_to_string(&public).unwrap();
        assert!(
            pub_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"),
            "{pub_pem}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&private).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        let signing = load_private(&private).unwrap();
        let verifying = load_public(&public).unwrap();
        assert_eq!(signing.to_bytes(), pair.signing_key().to_bytes());
        assert_eq!(verifying, pair.verifying_key());
        let sig = signing.sign(b"manifest");
        verifying.verify(b"manifest", &sig).unwrap();
        assert!(format!("{pair:?}").contains(&pair.key_id()));
        assert!(!format!("{pair:?}").contains(&hex::encode(signing.to_bytes())));
    }

    #[test]
    fn refuses_to_overwrite_and_errors_name_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let pair = SigningKeyPair::generate();
        pair.write_pair(tmp.path()).unwrap();
        let err = SigningKeyPair::generate()
            .write_pair(tmp.path())
            .unwrap_err();
        assert!(err.to_string().contains(PRIVATE_KEY_FILE), "{err}");

        let garbage = tmp.path().join("garbage.key");
        fs::write(
            &garbage,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let err = load_private(&garbage).unwrap_err();
        assert!(err.to_string().contains("garbage.key"), "{err}");
        let err = load_public(&garbage).unwrap_err();
        assert!(err.to_string().contains("garbage.key"), "{err}");
        let err = load_public(&tmp.path().join("absent.pub")).unwrap_err();
        assert!(err.to_string().contains("absent.pub"), "{err}");
        // A public key is not a private key.
        let err = load_private(&tmp.path().join(PUBLIC_KEY_FILE)).unwrap_err();
        assert!(err.to_string().contains(PUBLIC_KEY_FILE), "{err}");
    }

    #[test]
    fn racing_writers_leave_one_whole_key_and_no_temporary_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("keys");
        let winners: Vec<Option<String>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let dir = dir.clone();
                    scope.spawn(move || {
                        let pair = SigningKeyPair::generate();
                        pair.write_pair(&dir).ok().map(|_| pair.key_id())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let won: Vec<&String> = winners.iter().flatten().collect();
        assert_eq!(
            won.len(),
            1,
            "exactly one writer creates the key: {winners:?}"
        );
        let loaded = load_private(&dir.join(PRIVATE_KEY_FILE)).unwrap();
        assert_eq!(&key_id(&loaded.verifying_key()), won[0]);
        assert_eq!(
            key_id(&load_public(&dir.join(PUBLIC_KEY_FILE)).unwrap()),
            *won[0]
        );
        let names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
}
