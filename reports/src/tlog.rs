//! The portal's transparency log: every state change of every submission and
//! certification, as an append-only list of entries that anyone can check.
//!
//! Two structures cover the same entries:
//!
//! - a **hash chain**: each entry carries `prev`, the leaf hash of the entry
//!   before it (64 zeros for the first), so an edited, dropped or reordered
//!   entry breaks every link after it and [`verify_log`] names the first one;
//! - a **Merkle tree** over the leaf hashes, built as RFC 9162 (Certificate
//!   Transparency 2.0, §2.1) builds it: leaf `SHA-256(0x00 ‖ entry)`, node
//!   `SHA-256(0x01 ‖ left ‖ right)`, split at the largest power of two below
//!   the size. Its root is what the portal signs ([`TreeHead`]), and it gives
//!   logarithmic proofs: that an entry is in the log ([`inclusion_proof`]) and
//!   that a later head extends an earlier one ([`consistency_proof`]), so a
//!   client that remembers one head can tell whether history was rewritten.
//!
//! An entry is hashed in a canonical JSON form ([`canonical_json`]: object
//! keys sorted by their UTF-8 bytes, no whitespace, serde_json's escaping and
//! number formatting), so a verifier re-derives the bytes from the JSON it
//! received, whatever order its parser keeps keys in.
//!
//! The signed tree head is `certlab-tlog-v1`, size, root and time, one per
//! line (see [`TreeHead::signed_message`]), signed with the portal's Ed25519
//! key.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::keys::key_id;

/// A SHA-256 value of the tree.
pub type Hash = [u8; 32];

/// The `prev` of the first entry.
pub const GENESIS_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The first line of every signed tree head.
pub const HEAD_CONTEXT: &str = "certlab-tlog-v1";

/// One entry of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Position in the log, from 0.
    pub index: u64,
    /// When it was appended (RFC 3339, UTC).
    pub time: String,
    /// What changed: `submission/<id>` or `certification/<id>`.
    pub subject: String,
    /// The change (`submitted`, `in_review`, `approved`, `revoked`, …).
    pub event: String,
    /// Who made it (an account's e-mail, or `portal`).
    pub actor: String,
    /// Details: states, digests, comments.
    pub data: Value,
    /// Hex leaf hash of the entry before, or [`GENESIS_PREV`].
    pub prev: String,
}

impl LogEntry {
    /// The entry that follows `prev` (`None`: the first entry of the log).
    pub fn next(
        prev: Option<&LogEntry>,
        time: &str,
        subject: &str,
        event: &str,
        actor: &str,
        data: Value,
    ) -> LogEntry {
        LogEntry {
            index: prev.map_or(0, |p| p.index + 1),
            time: time.to_owned(),
            subject: subject.to_owned(),
            event: event.to_owned(),
            actor: actor.to_owned(),
            data,
            prev: prev.map_or_else(|| GENESIS_PREV.to_owned(), |p| hex::encode(p.leaf_hash())),
        }
    }

    /// The entry in canonical JSON, the bytes its leaf hash covers.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let value = serde_json::json!({
            "index": self.index,
            "time": self.time,
            "subject": self.subject,
            "event": self.event,
            "actor": self.actor,
            "data": self.data,
            "prev": self.prev,
        });
        canonical_json(&value)
    }

    /// `SHA-256(0x00 ‖ canonical bytes)`.
    pub fn leaf_hash(&self) -> Hash {
        leaf_hash(&self.canonical_bytes())
    }
}

/// Writes `value` as canonical JSON: keys sorted, no insignificant whitespace.
pub fn canonical_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push(b'{');
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_scalar(&Value::String((*key).clone()), out);
                out.push(b':');
                if let Some(v) = map.get(*key) {
                    write_canonical(v, out);
                }
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(value: &Value, out: &mut Vec<u8>) {
    // Serialising a scalar Value into a Vec cannot fail.
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.extend_from_slice(b"null");
    }
}

/// `SHA-256(0x00 ‖ data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two strictly below `n` (`n` ≥ 2).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// The Merkle tree hash of `leaves` (leaf hashes), RFC 9162 §2.1.1.
pub fn merkle_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&merkle_root(&leaves[..k]), &merkle_root(&leaves[k..]))
        }
    }
}

/// The audit path of leaf `index` in the tree of `leaves`, RFC 9162 §2.1.3.1.
/// `None` when `index` is not a leaf of it.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    let mut path = Vec::new();
    path_into(leaves, index, &mut path);
    Some(path)
}

fn path_into(leaves: &[Hash], index: usize, path: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if index < k {
        path_into(&leaves[..k], index, path);
        path.push(merkle_root(&leaves[k..]));
    } else {
        path_into(&leaves[k..], index - k, path);
        path.push(merkle_root(&leaves[..k]));
    }
}

/// Whether `path` proves that `leaf` is leaf `index` of the tree of `size`
/// leaves whose root is `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, path: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

/// The proof that the tree of the first `old_size` of `leaves` is a prefix of
/// the tree of all of them, RFC 9162 §2.1.4.1. `None` unless
/// `0 < old_size ≤ leaves.len()`; empty when the sizes are equal.
pub fn consistency_proof(leaves: &[Hash], old_size: usize) -> Option<Vec<Hash>> {
    if old_size == 0 || old_size > leaves.len() {
        return None;
    }
    let mut proof = Vec::new();
    if old_size < leaves.len() {
        subproof(old_size, leaves, true, &mut proof);
    }
    Some(proof)
}

fn subproof(m: usize, leaves: &[Hash], complete: bool, proof: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !complete {
            proof.push(merkle_root(leaves));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, &leaves[..k], complete, proof);
        proof.push(merkle_root(&leaves[k..]));
    } else {
        subproof(m - k, &leaves[k..], false, proof);
        proof.push(merkle_root(&leaves[..k]));
    }
}

/// Whether `proof` shows that the tree (`old_size`, `old_root`) is a prefix of
/// (`new_size`, `new_root`), RFC 9162 §2.1.4.2.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old_size == 0 || old_size > new_size {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    if proof.is_empty() {
        return false;
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let (mut f, mut s) = (old_size - 1, new_size - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    fr == *old_root && sr == *new_root && s == 0
}

/// A signed statement of the log's size and Merkle root at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeHead {
    pub size: u64,
    /// Hex Merkle root over the first `size` leaves.
    pub root: String,
    /// RFC 3339, UTC.
    pub time: String,
    /// Id of the portal key that signed it ([`key_id`]).
    pub key_id: String,
    /// Hex Ed25519 signature over [`TreeHead::signed_message`].
    pub signature: String,
}

impl TreeHead {
    /// Signs the head of a tree of `leaves`.
    pub fn sign(leaves: &[Hash], time: &str, key: &SigningKey) -> TreeHead {
        let root = hex::encode(merkle_root(leaves));
        let size = leaves.len() as u64;
        let message = signed_message(size, &root, time);
        TreeHead {
            size,
            root,
            time: time.to_owned(),
            key_id: key_id(&key.verifying_key()),
            signature: hex::encode(key.sign(&message).to_bytes()),
        }
    }

    /// The bytes the signature covers.
    pub fn signed_message(&self) -> Vec<u8> {
        signed_message(self.size, &self.root, &self.time)
    }

    /// Checks the signature with `key`.
    pub fn verify_signature(&self, key: &VerifyingKey) -> Result<(), TlogError> {
        if self.key_id != key_id(key) {
            return Err(TlogError::Head(format!(
                "signed by key {}, not by the expected key {}",
                self.key_id,
                key_id(key)
            )));
        }
        let bytes = hex::decode(&self.signature)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b.as_slice()).ok())
            .ok_or_else(|| TlogError::Head("signature is not 64 hex-encoded bytes".into()))?;
        key.verify(&self.signed_message(), &Signature::from_bytes(&bytes))
            .map_err(|_| TlogError::Head("signature does not verify".into()))
    }

    /// The root as bytes.
    pub fn root_hash(&self) -> Result<Hash, TlogError> {
        parse_hash(&self.root).ok_or_else(|| TlogError::Head("root is not 32 hex bytes".into()))
    }
}

fn signed_message(size: u64, root: &str, time: &str) -> Vec<u8> {
    format!("{HEAD_CONTEXT}\n{size}\n{root}\n{time}\n").into_bytes()
}

/// Parses 64 hex characters.
pub fn parse_hash(text: &str) -> Option<Hash> {
    let bytes = hex::decode(text).ok()?;
    <Hash>::try_from(bytes.as_slice()).ok()
}

/// What is wrong with a log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlogError {
    #[error("log entry {index}: {reason}")]
    Entry { index: u64, reason: String },
    #[error("tree head: {0}")]
    Head(String),
}

/// Checks a whole log against its signed head: indices in order from 0, each
/// `prev` the leaf hash of the entry before, as many entries as the head
/// says, their Merkle root the head's root, and the head's signature by
/// `key`. Names the first entry that is wrong.
///
/// When the root disagrees although the chain holds (every entry was
/// rewritten consistently), the error names entry 0: the chain cannot say
/// where the rewrite began, only that the signed head does not cover it.
pub fn verify_log(
    entries: &[LogEntry],
    head: &TreeHead,
    key: &VerifyingKey,
) -> Result<(), TlogError> {
    head.verify_signature(key)?;
    let mut leaves = Vec::with_capacity(entries.len());
    let mut prev = GENESIS_PREV.to_owned();
    for (i, entry) in entries.iter().enumerate() {
        let index = i as u64;
        if entry.index != index {
            return Err(TlogError::Entry {
                index,
                reason: format!("carries index {}", entry.index),
            });
        }
        if entry.prev != prev {
            let reason = if i == 0 {
                format!("prev is {}, not the genesis value", entry.prev)
            } else {
                format!(
                    "prev is {}, but entry {} hashes to {prev}: entry {} was changed",
                    entry.prev,
                    i - 1,
                    i - 1
                )
            };
            // The entry that was edited is the one before the broken link.
            let bad = if i == 0 { 0 } else { index - 1 };
            return Err(TlogError::Entry { index: bad, reason });
        }
        let leaf = entry.leaf_hash();
        prev = hex::encode(leaf);
        leaves.push(leaf);
    }
    if head.size != entries.len() as u64 {
        return Err(TlogError::Head(format!(
            "covers {} entries, the log has {}",
            head.size,
            entries.len()
        )));
    }
    if merkle_root(&leaves) != head.root_hash()? {
        // Every link holds, so the entry no later `prev` covers — the last —
        // was changed (or the whole log was rewritten consistently, which
        // only the signed head can reveal).
        return Err(TlogError::Entry {
            index: entries.len().saturating_sub(1) as u64,
            reason: "its hash is not what the signed tree head covers".to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect()
    }

    #[test]
    fn empty_tree_root_is_the_hash_of_nothing() {
        assert_eq!(
            hex::encode(merkle_root(&[])),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn every_inclusion_proof_verifies_and_a_wrong_one_does_not() {
        for n in 1..=33 {
            let l = leaves(n);
            let root = merkle_root(&l);
            let grown = merkle_root(&leaves(n + 1));
            for i in 0..n {
                let path = inclusion_proof(&l, i).unwrap();
                assert!(
                    verify_inclusion(&l[i], i as u64, n as u64, &path, &root),
                    "n={n} i={i}"
                );
                // The same path does not prove membership in a grown tree.
                assert!(
                    !verify_inclusion(&l[i], i as u64, n as u64 + 1, &path, &grown),
                    "n={n} i={i}"
                );
                let other = (i + 1) % n;
                if other != i {
                    assert!(!verify_inclusion(
                        &l[other], i as u64, n as u64, &path, &root
                    ));
                }
            }
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_a_forked_one_does_not() {
        for n in 1..=33 {
            let l = leaves(n);
            let root = merkle_root(&l);
            for m in 1..=n {
                let old_root = merkle_root(&l[..m]);
                let proof = consistency_proof(&l, m).unwrap();
                assert!(
                    verify_consistency(m as u64, n as u64, &old_root, &root, &proof),
                    "m={m} n={n}"
                );
                if m < n {
                    let mut forked = l[..m].to_vec();
                    forked[m - 1] = leaf_hash(b"rewritten");
                    let forked_root = merkle_root(&forked);
                    assert!(!verify_consistency(
                        m as u64,
                        n as u64,
                        &forked_root,
                        &root,
                        &proof
                    ));
                }
            }
        }
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let v: Value =
            serde_json::from_str(r#"{"b":1,"a":{"z":[2,{"y":1,"x":"é"}],"c":null}}"#).unwrap();
        assert_eq!(
            String::from_utf8(canonical_json(&v)).unwrap(),
            r#"{"a":{"c":null,"z":[2,{"x":"é","y":1}]},"b":1}"#
        );
    }
}
