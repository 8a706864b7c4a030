//! The transparency log over HTTP: the portal's log key, the signed tree
//! head, entries in pages, inclusion and consistency proofs, and the public
//! `/log` page.
//!
//! Entries are appended by the store (`store/log.rs`) in the transaction of
//! each state change; this module only reads them. The Merkle tree's leaf
//! hashes are kept in memory and extended with the rows appended since the
//! last request, and the root is cached by size, so a head costs one
//! `MAX(seq)` and a signature when nothing changed.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path as UrlPath, Query, State};
use axum::response::Html;
use axum::Json;
use certlab_reports::tlog::{consistency_proof, inclusion_proof, merkle_root, Hash, TreeHead};
use certlab_reports::{load_private, SigningKey, SigningKeyPair, PRIVATE_KEY_FILE};
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::EncodePublicKey;
use ed25519_dalek::Signer;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::Viewer;
use crate::error::WebError;
use crate::store::{ts, PortalStore};
use crate::AppState;

/// The folder of the data directory that holds the log key.
pub const LOG_KEY_DIR: &str = "log-key";
/// The most entries one page of `GET /api/v1/log/entries` holds.
pub const MAX_ENTRIES_PAGE: u64 = 1000;
/// How many entries the `/log` page shows.
const PAGE_RECENT: u64 = 50;

/// The log key and the cached tree.
pub struct LogState {
    key: SigningKey,
    key_id: String,
    public_pem: String,
    tree: Mutex<Tree>,
}

impl std::fmt::Debug for LogState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogState")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Tree {
    leaves: Vec<Hash>,
    /// The root of the first `.0` leaves.
    root: Option<(usize, Hash)>,
}

impl Tree {
    fn root(&mut self, size: usize) -> Hash {
        match self.root {
            Some((n, r)) if n == size => r,
            _ => {
                let r = merkle_root(&self.leaves[..size]);
                if size == self.leaves.len() {
                    self.root = Some((size, r));
                }
                r
            }
        }
    }
}

impl LogState {
    /// The log key of the data directory `data_dir`
    /// (`log-key/certlab-signing.key`, PKCS#8 PEM, mode 0600), created on
    /// first start.
    pub fn open(data_dir: &Path) -> Result<LogState, WebError> {
        let dir = data_dir.join(LOG_KEY_DIR);
        let path = dir.join(PRIVATE_KEY_FILE);
        let key = if path.exists() {
            load_private(&path).map_err(WebError::internal)?
        } else {
            let pair = SigningKeyPair::generate();
            match pair.write_pair(&dir) {
                Ok(_) => pair.signing_key().clone(),
                // another process created it meanwhile
                Err(_) if path.exists() => load_private(&path).map_err(WebError::internal)?,
                Err(e) => return Err(WebError::internal(e)),
            }
        };
        let public_pem = key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(WebError::internal)?;
        Ok(LogState {
            key_id: certlab_reports::key_id(&key.verifying_key()),
            key,
            public_pem,
            tree: Mutex::new(Tree::default()),
        })
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    fn lock(&self) -> MutexGuard<'_, Tree> {
        // a panic under the lock leaves a tree that is still a prefix of the log
        self.tree.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Brings the cached leaves up to the stored log; the log's size.
    async fn sync(&self, store: &PortalStore) -> Result<usize, WebError> {
        let have = self.lock().leaves.len() as u64;
        let size = store.log_size().await?;
        if size > have {
            let new = store.log_leaves(have, size).await?;
            let mut tree = self.lock();
            if tree.leaves.len() as u64 == have {
                tree.leaves.extend(new);
            }
        }
        Ok(self.lock().leaves.len())
    }

    /// A head of the current tree, signed now.
    pub(crate) async fn head(&self, store: &PortalStore, now: &str) -> Result<TreeHead, WebError> {
        let size = self.sync(store).await?;
        let root = self.lock().root(size);
        Ok(self.sign(size as u64, &root, now))
    }

    fn sign(&self, size: u64, root: &Hash, time: &str) -> TreeHead {
        let mut head = TreeHead {
            size,
            root: hex::encode(root),
            time: time.to_string(),
            key_id: self.key_id.clone(),
            signature: String::new(),
        };
        head.signature = hex::encode(self.key.sign(&head.signed_message()).to_bytes());
        head
    }
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, WebError> {
    q.map(|Query(q)| q)
        .map_err(|e| WebError::bad_request("bad_query", e.body_text()))
}

fn hexes(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(hex::encode).collect()
}

/// `GET /api/v1/log/head`: the tree head, signed now.
pub async fn head(State(state): State<AppState>) -> Result<Json<TreeHead>, WebError> {
    let now = ts(state.now());
    Ok(Json(state.log().head(state.store(), &now).await?))
}

/// The public log key.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyView {
    pub key_id: String,
    /// SubjectPublicKeyInfo PEM, as `certlab portal verify-log --pubkey` reads it.
    pub public_key_pem: String,
    pub algorithm: &'static str,
}

/// `GET /api/v1/log/key`.
pub async fn key(State(state): State<AppState>) -> Json<KeyView> {
    let log = state.log();
    Json(KeyView {
        key_id: log.key_id.clone(),
        public_key_pem: log.public_pem.clone(),
        algorithm: "ed25519",
    })
}

#[derive(Debug, Deserialize)]
pub struct RangeQuery {
    from: Option<u64>,
    to: Option<u64>,
}

/// `GET /api/v1/log/entries?from=&to=`: entries `from` (default 0,
/// inclusive) to `to` (exclusive; default and at most `from` + 1000, and at
/// most the log's size), with the log's size.
pub async fn entries(
    State(state): State<AppState>,
    q: Result<Query<RangeQuery>, QueryRejection>,
) -> Result<Json<Value>, WebError> {
    let q = query(q)?;
    let size = state.store().log_size().await?;
    let from = q.from.unwrap_or(0);
    if from > size {
        return Err(WebError::bad_request(
            "bad_range",
            format!("from={from} is past the end of the log ({size} entries)"),
        ));
    }
    let limit = from.saturating_add(MAX_ENTRIES_PAGE).min(size);
    let to = q.to.map_or(limit, |t| t.min(limit));
    if to < from {
        return Err(WebError::bad_request(
            "bad_range",
            format!("to={to} is before from={from}"),
        ));
    }
    let rows = state.store().log_entries(from, to).await?;
    let entries = rows
        .iter()
        .map(|e| {
            serde_json::from_str::<Value>(&e.json).map_err(|err| {
                WebError::internal(format!("log entry {} is not JSON: {err}", e.index))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(serde_json::json!({
        "size": size, "from": from, "to": to, "entries": entries,
    })))
}

#[derive(Debug, Deserialize)]
pub struct ProofQuery {
    size: Option<u64>,
}

/// The tree of the first `size` leaves of the current log (default: all),
/// or a 400 naming a size past the log's end.
async fn tree_of(state: &AppState, size: Option<u64>) -> Result<(usize, usize), WebError> {
    let have = state.log().sync(state.store()).await?;
    let size = match size {
        None => have,
        Some(s) if s <= have as u64 => s as usize,
        Some(s) => {
            return Err(WebError::bad_request(
                "bad_range",
                format!("size={s} is past the end of the log ({have} entries)"),
            ))
        }
    };
    Ok((have, size))
}

/// `GET /api/v1/log/proof/{n}?size=`: the audit path of entry `n` in the
/// tree of the first `size` entries (default: the whole log).
pub async fn proof(
    State(state): State<AppState>,
    n: Result<UrlPath<u64>, PathRejection>,
    q: Result<Query<ProofQuery>, QueryRejection>,
) -> Result<Json<Value>, WebError> {
    let UrlPath(n) = n.map_err(|e| {
        WebError::bad_request(
            "bad_index",
            format!("expected an entry number: {}", e.body_text()),
        )
    })?;
    let q = query(q)?;
    let (_, size) = tree_of(&state, q.size).await?;
    if n >= size as u64 {
        return Err(WebError::not_found(format!(
            "log entry {n} is not in a tree of {size} entries"
        )));
    }
    let mut tree = state.log().lock();
    let index = n as usize;
    let path = inclusion_proof(&tree.leaves[..size], index)
        .ok_or_else(|| WebError::internal(format!("no inclusion proof of {n} in {size}")))?;
    let leaf = tree.leaves[index];
    let root = tree.root(size);
    Ok(Json(serde_json::json!({
        "index": n, "size": size, "leaf_hash": hex::encode(leaf),
        "root": hex::encode(root), "path": hexes(&path),
    })))
}

/// `GET /api/v1/log/consistency?from=&to=`: the proof that the tree of the
/// first `from` entries is a prefix of the tree of the first `to` (default:
/// the whole log).
pub async fn consistency(
    State(state): State<AppState>,
    q: Result<Query<RangeQuery>, QueryRejection>,
) -> Result<Json<Value>, WebError> {
    let q = query(q)?;
    let (_, to) = tree_of(&state, q.to).await?;
    let from = q.from.ok_or_else(|| {
        WebError::bad_request(
            "bad_range",
            "from= (the size of the older tree) is required",
        )
    })?;
    if from == 0 || from > to as u64 {
        return Err(WebError::bad_request(
            "bad_range",
            format!("from={from}: expected 1 to {to}"),
        ));
    }
    let old = from as usize;
    let mut tree = state.log().lock();
    let proof = consistency_proof(&tree.leaves[..to], old)
        .ok_or_else(|| WebError::internal(format!("no consistency proof {from}..{to}")))?;
    let old_root = merkle_root(&tree.leaves[..old]);
    let new_root = tree.root(to);
    Ok(Json(serde_json::json!({
        "from": from, "to": to, "from_root": hex::encode(old_root),
        "to_root": hex::encode(new_root), "proof": hexes(&proof),
    })))
}

/// `GET /log`: the signed head and the most recent entries, newest first.
pub async fn page(State(state): State<AppState>, viewer: Viewer) -> Result<Html<String>, WebError> {
    let now = ts(state.now());
    let head = state.log().head(state.store(), &now).await?;
    let from = head.size.saturating_sub(PAGE_RECENT);
    let mut rows = state.store().log_entries(from, head.size).await?;
    rows.reverse();
    let entries: Vec<Value> = rows
        .iter()
        .map(|e| {
            serde_json::from_str::<Value>(&e.json).unwrap_or_else(
                |_| serde_json::json!({ "index": e.index, "event": "(unreadable entry)" }),
            )
        })
        .collect();
    let mut ctx = crate::pages::context(&viewer);
    ctx.insert("head", &head);
    ctx.insert("entries", &entries);
    ctx.insert("key_pem", &state.log().public_pem);
    state
        .templates()
        .render("log.html", &ctx)
        .map(Html)
        .map_err(|e| WebError::internal(format!("render log.html: {e:?}")))
}
