//! [`HostKey`]: an SSH server's public key, for pinning and trust on first use.

use std::fmt;

use base64::Engine as _;
use sha2::Digest as _;

/// An SSH public host key, as written in `known_hosts` and `lab.toml`
/// (`ssh-ed25519 AAAA…`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HostKey {
    algorithm: String,
    blob: Vec<u8>,
}

impl HostKey {
    /// Parses `ALGORITHM BASE64 [comment]`.
    pub fn parse(s: &str) -> Result<HostKey, String> {
        let mut parts = s.split_whitespace();
        let (Some(alg), Some(b64)) = (parts.next(), parts.next()) else {
            return Err("expected `ALGORITHM BASE64`, e.g. `ssh-ed25519 AAAA…`".to_string());
        };
        let blob = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("the key is not valid base64: {e}"))?;
        let key = HostKey::from_blob(&blob)
            .ok_or_else(|| "the key data is not an SSH public key".to_string())?;
        if key.algorithm != alg {
            return Err(format!(
                "the key says it is `{}` but is written as `{alg}`",
                key.algorithm
            ));
        }
        Ok(key)
    }

    /// A key from its SSH wire encoding (which starts with the algorithm name).
    pub fn from_blob(blob: &[u8]) -> Option<HostKey> {
        let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
        let name = std::str::from_utf8(blob.get(4..4 + len)?).ok()?;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        Some(HostKey {
            algorithm: name.to_string(),
            blob: blob.to_vec(),
        })
    }

    /// `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`, …
    pub fn algorithm(&self) -> &str {
        &self.algorithm
    }

    /// The key in SSH wire encoding.
    pub fn blob(&self) -> &[u8] {
        &self.blob
    }

    /// OpenSSH's fingerprint: `SHA256:` and the unpadded base64 digest.
    pub fn fingerprint(&self) -> String {
        let d = sha2::Sha256::digest(&self.blob);
        format!(
            "SHA256:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(d)
        )
    }

    /// The libssh2 host key algorithms that yield this key.
    pub(super) fn methods(&self) -> String {
        match self.algorithm.as_str() {
            "ssh-rsa" => "rsa-sha2-512,rsa-sha2-256,ssh-rsa".to_string(),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}",
            self.algorithm,
            base64::engine::general_purpose::STANDARD.encode(&self.blob)
        )
    }
}

impl fmt::Debug for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostKey({} {})", self.algorithm, self.fingerprint())
    }
}

impl std::str::FromStr for HostKey {
    type Err = String;

    fn from_str(s: &str) -> Result<HostKey, String> {
        HostKey::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

    #[test]
    fn host_keys_parse_print_and_fingerprint() {
        let k = HostKey::parse(&format!("{KEY} root@host")).unwrap();
        assert_eq!(k.algorithm(), "ssh-ed25519");
        assert_eq!(k.to_string(), KEY);
        assert!(k.fingerprint().starts_with("SHA256:"));
        assert_eq!(k.fingerprint().len(), 7 + 43);
        assert!(HostKey::parse("ssh-ed25519").is_err());
        assert!(HostKey::parse("ssh-ed25519 !!!").is_err());
        let e = HostKey::parse(&KEY.replace("ssh-ed25519", "ssh-rsa")).unwrap_err();
        assert!(e.contains("says it is `ssh-ed25519`"), "{e}");
    }
}
