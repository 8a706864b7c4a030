//! Content-addressed storage of evidence: each blob is stored once as
//! `evidence/<sha256>`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::error::ReportError;
use crate::model::ArtifactRef;

/// The lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Whether `s` is a lowercase hex sha256 (64 characters of `0-9a-f`), the only
/// form of artifact name that is turned into a path or a link.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Prefix of the temporary files [`ArtifactStore::put`] renames into place.
/// Bundles leave out files whose name starts with a dot.
const TEMP_PREFIX: &str = ".tmp-";

/// A directory of blobs named by the sha256 of their content (usually `<out>/evidence/`).
#[derive(Debug, Clone)]
pub struct ArtifactStore {
    dir: PathBuf,
}

impl ArtifactStore {
    /// Opens the store in `dir`, creating the directory (and its parents) if needed.
    pub fn open(dir: impl Into<PathBuf>) -> Result<ArtifactStore, ReportError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| ReportError::io("create directory", &dir, e))?;
        Ok(ArtifactStore { dir })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores `bytes` unless a blob with the same digest is already there.
    ///
    /// The content is written to a temporary file in the same directory and
    /// renamed into place, so `evidence/<sha256>` is either absent or complete.
    pub fn put(&self, bytes: &[u8]) -> Result<ArtifactRef, ReportError> {
        let artifact = ArtifactRef {
            sha256: sha256_hex(bytes),
            size: bytes.len() as u64,
        };
        let path = self.dir.join(&artifact.sha256);
        if let Ok(meta) = fs::metadata(&path) {
            if meta.is_file() && meta.len() == artifact.size {
                return Ok(artifact);
            }
        }
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let temp = self.dir.join(format!(
            "{TEMP_PREFIX}{}-{}-{}",
            artifact.sha256,
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let written = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .and_then(|mut f| {
                f.write_all(bytes)?;
                f.sync_all()
            });
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(ReportError::io("write", &temp, e));
        }
        if let Err(e) = fs::rename(&temp, &path) {
            let _ = fs::remove_file(&temp);
            return Err(ReportError::io("rename into", &path, e));
        }
        Ok(artifact)
    }

    /// Where the blob of `artifact` is (or would be) stored.
    ///
    /// The sha256 is joined as it is: check untrusted references with
    /// [`is_sha256_hex`] first, or use [`ArtifactStore::read`], which does.
    pub fn path_of(&self, artifact: &ArtifactRef) -> PathBuf {
        self.dir.join(&artifact.sha256)
    }

    /// Reads the blob of `artifact` and checks its digest.
    pub fn read(&self, artifact: &ArtifactRef) -> Result<Vec<u8>, ReportError> {
        let path = self.path_of(artifact);
        if !is_sha256_hex(&artifact.sha256) {
            return Err(ReportError::io(
                "read",
                path,
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a sha256 name"),
            ));
        }
        let bytes = fs::read(&path).map_err(|e| ReportError::io("read", &path, e))?;
        if sha256_hex(&bytes) != artifact.sha256 {
            return Err(ReportError::io(
                "read",
                path,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "content does not match its sha256",
                ),
            ));
        }
        Ok(bytes)
    }
}

/// Whether a file name in an evidence directory is a temporary file of [`ArtifactStore::put`]
/// or otherwise hidden.
pub(crate) fn is_hidden_name(name: &str) -> bool {
    name.starts_with('.')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_and_abc() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(is_sha256_hex(&sha256_hex(b"abc")));
        assert!(!is_sha256_hex("../../etc/passwd"));
        assert!(!is_sha256_hex(&sha256_hex(b"abc").to_uppercase()));
    }

    #[test]
    fn put_stores_once_and_reads_back() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(tmp.path().join("out/evidence")).unwrap();
        let a = store.put(b"hello\n").unwrap();
        assert_eq!(a.size, 6);
        assert_eq!(a.sha256, sha256_hex(b"hello\n"));
        let b = store.put(b"hello\n").unwrap();
        assert_eq!(a, b);
        assert_eq!(store.path_of(&a), store.dir().join(&a.sha256));
        assert_eq!(fs::read(store.path_of(&a)).unwrap(), b"hello\n");
        assert_eq!(store.read(&a).unwrap(), b"hello\n");
        let names: Vec<_> = fs::read_dir(store.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            names,
            vec![a.sha256.clone()],
            "no temporary file left behind"
        );
        let empty = store.put(b"").unwrap();
        assert_eq!(empty.size, 0);
        assert!(store.path_of(&empty).is_file());
    }

    #[test]
    fn read_rejects_bad_names_and_corrupt_content() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(tmp.path()).unwrap();
        let bad = ArtifactRef {
            sha256: "../x".into(),
            size: 0,
        };
        assert!(store.read(&bad).unwrap_err().to_string().contains("../x"));
        let a = store.put(b"data").unwrap();
        fs::write(store.path_of(&a), b"DATA").unwrap();
        let err = store.read(&a).unwrap_err().to_string();
        assert!(err.contains(&a.sha256), "{err}");
    }

    #[test]
    fn open_names_the_directory_on_error() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("plain-file");
        fs::write(&file, b"x").unwrap();
        let err = ArtifactStore::open(file.join("evidence")).unwrap_err();
        assert!(err.to_string().contains("plain-file"), "{err}");
    }
}
