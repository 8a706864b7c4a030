//! sha256 digests of inputs, so that reports say exactly what they checked.
//!
//! [`sha256_paths`] hashes many inputs at once: every regular file on a
//! pool of threads (one per core), and — given a [`DigestCache`] — only the
//! files whose identity changed since the last run. A file's identity is
//! its path, size, modification and status-change times (nanoseconds) and
//! inode: what `git`'s index and `make` trust. Rewriting a file changes its
//! ctime, which no user can set back, so a stale digest needs a change that
//! keeps size, both times and inode (a clock set back by root while the
//! file is rewritten).

use rustc_hash::FxHashMap;
use std::io::{Read, Write as _};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The hex sha256 of a file's content; for a directory, of the sorted list
/// of `relative/path\0<sha256 of content>\n` of every regular file in it
/// (symlinks not followed).
pub fn sha256_path(path: &Path) -> Result<String> {
    let mut v = sha256_paths(&[path], None)?;
    Ok(v.pop().unwrap_or_default())
}

/// [`sha256_path`] of each of `paths`, in order: the files hashed in
/// parallel, those unchanged since the last run taken from `cache`.
pub fn sha256_paths<P: AsRef<Path>>(
    paths: &[P],
    cache: Option<&DigestCache>,
) -> Result<Vec<String>> {
    // Every file to hash, as (input, relative path, full path, identity).
    let mut inputs: Vec<Input> = Vec::with_capacity(paths.len());
    for p in paths {
        let p = p.as_ref();
        let meta = std::fs::metadata(p).map_err(|e| Error::io(p.display(), e))?;
        let files = if meta.is_dir() {
            match cache.and_then(|c| c.walks.as_ref()) {
                // the walk the module reader makes of the same directory
                Some(w) => w.files(p)?,
                None => std::sync::Arc::new(crate::walk::walk_sorted(p)?),
            }
        } else {
            std::sync::Arc::new(vec![(PathBuf::new(), Identity::of(&meta))])
        };
        inputs.push(Input {
            root: p.to_path_buf(),
            is_dir: meta.is_dir(),
            files,
        });
    }

    // Digests known from the last run.
    let texts: Vec<String> = inputs
        .iter()
        .map(|i| cache.map(|c| c.read(&i.root)).unwrap_or_default())
        .collect();
    let known: Vec<FxHashMap<&str, (Identity, &str)>> =
        texts.iter().map(|t| DigestCache::parse(t)).collect();
    let mut digests: Vec<Vec<Option<String>>> = inputs
        .iter()
        .zip(&known)
        .map(|(i, k)| {
            i.files
                .iter()
                .map(|(rel, id)| {
                    k.get(rel.to_str()?)
                        .filter(|(kid, _)| kid == id)
                        .map(|(_, d)| d.to_string())
                })
                .collect()
        })
        .collect();

    // The rest, largest first, on one thread per core.
    let mut todo: Vec<(usize, usize, u64)> = Vec::new();
    for (i, (input, d)) in inputs.iter().zip(&digests).enumerate() {
        for (j, ((_, id), known)) in input.files.iter().zip(d).enumerate() {
            if known.is_none() {
                todo.push((i, j, id.size));
            }
        }
    }
    todo.sort_by_key(|t| std::cmp::Reverse(t.2));
    let hashed = hash_all(&inputs, &todo)?;
    let changed = !hashed.is_empty();
    for ((i, j), d) in hashed {
        if let Some(slot) = digests.get_mut(i).and_then(|v| v.get_mut(j)) {
            *slot = Some(d);
        }
    }

    let mut out = Vec::with_capacity(inputs.len());
    for (input, d) in inputs.iter().zip(&digests) {
        let d: Vec<&str> = d.iter().map(|x| x.as_deref().unwrap_or("")).collect();
        if changed {
            if let Some(c) = cache {
                c.store(input, &d);
            }
        }
        if !input.is_dir {
            out.push(d.first().copied().unwrap_or_default().to_string());
            continue;
        }
        let mut h = Sha256::new();
        for ((rel, _), digest) in input.files.iter().zip(&d) {
            h.update(rel.to_string_lossy().as_bytes());
            h.update([0]);
            h.update(digest.as_bytes());
            h.update(b"\n");
        }
        out.push(hex::encode(h.finalize()));
    }
    Ok(out)
}

/// One input: a file (one entry, empty relative path) or a directory.
struct Input {
    root: PathBuf,
    is_dir: bool,
    files: crate::walk::Files,
}

impl Input {
    fn full(&self, rel: &Path) -> PathBuf {
        if self.is_dir {
            self.root.join(rel)
        } else {
            self.root.clone()
        }
    }
}

/// What says a file is unchanged (also the key of the parsed-module cache,
/// [`crate::parsed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) size: u64,
    pub(crate) mtime_ns: i128,
    pub(crate) ctime_ns: i128,
    pub(crate) ino: u64,
}

impl Identity {
    pub(crate) fn of(m: &std::fs::Metadata) -> Self {
        Identity {
            size: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
            ino: m.ino(),
        }
    }
}

/// `a.cmp(b)` for relative paths as [`walk`] makes them (no `.`, no empty
/// components): component by component, without `Path`'s parsing.
///
/// That is the byte order with `/` taken as lower than any byte a name can
/// hold (names hold no NUL): at the first byte that differs, a component
/// that ends sorts before one that goes on.
pub(crate) fn cmp_paths(a: &Path, b: &Path) -> std::cmp::Ordering {
    let (a, b) = (
        a.as_os_str().as_encoded_bytes(),
        b.as_os_str().as_encoded_bytes(),
    );
    let key = |c: u8| if c == b'/' { 0 } else { c };
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => key(a[i]).cmp(&key(b[i])),
        None => a.len().cmp(&b.len()),
    }
}

/// Every regular file under `root` (relative path, identity), symlinks not followed.
///
/// Subdirectories are walked in parallel: a kernel's module tree is some
/// 900 directories and 4,000 files, and the walk — a `getdents` per
/// directory, a `statx` per file, all kernel time — is the first step of
/// every check of it.
pub(crate) fn walk(root: &Path) -> Result<Vec<(PathBuf, Identity)>> {
    walk_dir(root, PathBuf::new())
}

/// The files under `root/rel`, with paths relative to `root`.
fn walk_dir(root: &Path, rel: PathBuf) -> Result<Vec<(PathBuf, Identity)>> {
    use rayon::prelude::*;
    let d = root.join(&rel);
    let rd = std::fs::read_dir(&d).map_err(|e| Error::io(d.display(), e))?;
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(d.display(), e))?;
        let ft = entry
            .file_type()
            .map_err(|e| Error::io(entry.path().display(), e))?;
        if ft.is_dir() {
            dirs.push(rel.join(entry.file_name()));
        } else if ft.is_file() {
            let meta = entry
                .metadata()
                .map_err(|e| Error::io(entry.path().display(), e))?;
            files.push((rel.join(entry.file_name()), Identity::of(&meta)));
        }
    }
    let below: Vec<Vec<(PathBuf, Identity)>> = dirs
        .into_par_iter()
        .map(|sub| walk_dir(root, sub))
        .collect::<Result<_>>()?;
    for mut b in below {
        files.append(&mut b);
    }
    Ok(files)
}

/// Hashes the files `todo` names ((input, file, size)) on one thread per
/// core; the first error wins.
fn hash_all(
    inputs: &[Input],
    todo: &[(usize, usize, u64)],
) -> Result<Vec<((usize, usize), String)>> {
    let threads = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
        .min(todo.len());
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<((usize, usize), String)>> = Mutex::new(Vec::with_capacity(todo.len()));
    let failed: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut buf = vec![0u8; 1 << 18];
                let mut mine = Vec::new();
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(i, j, _)) = todo.get(k) else {
                        break;
                    };
                    let Some((input, (rel, _))) =
                        inputs.get(i).and_then(|x| Some((x, x.files.get(j)?)))
                    else {
                        continue;
                    };
                    match sha256_file(&input.full(rel), &mut buf) {
                        Ok(d) => mine.push(((i, j), d)),
                        Err(e) => {
                            if let Ok(mut f) = failed.lock() {
                                f.get_or_insert(e);
                            }
                            next.store(todo.len(), Ordering::Relaxed);
                            break;
                        }
                    }
                }
                if let Ok(mut d) = done.lock() {
                    d.append(&mut mine);
                }
            });
        }
    });
    if let Some(e) = failed.into_inner().ok().flatten() {
        return Err(e);
    }
    let done = done.into_inner().unwrap_or_default();
    if done.len() != todo.len() {
        return Err(Error::Unrecognised {
            path: String::new(),
            msg: "a digest thread panicked".to_string(),
        });
    }
    Ok(done)
}

fn sha256_file(path: &Path, buf: &mut [u8]) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path.display(), e))?;
    let mut h = Sha256::new();
    loop {
        let n = f.read(buf).map_err(|e| Error::io(path.display(), e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Digests of earlier runs, one file per input under a directory the
/// caller chooses (the CLI: `digests/` in its module cache). A cache that
/// cannot be read or written is ignored: the files are hashed again.
#[derive(Debug, Clone)]
pub struct DigestCache {
    dir: PathBuf,
    /// Directory walks shared with the module reader of the same pass
    /// ([`crate::module::ModuleCache::one_pass`]).
    walks: Option<crate::walk::Walks>,
}

/// First line of a cache file; bump when its layout changes.
const HEADER: &str = "certlab-digests 1";

impl DigestCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        DigestCache {
            dir: dir.into(),
            walks: None,
        }
    }

    /// This cache, taking its directory walks from `walks`.
    pub(crate) fn sharing(mut self, walks: Option<crate::walk::Walks>) -> Self {
        self.walks = walks;
        self
    }

    /// The cache file of an input, named by the sha256 of its absolute path.
    fn file(&self, root: &Path) -> PathBuf {
        let abs = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
        let h = hex::encode(Sha256::digest(abs.as_os_str().as_encoded_bytes()));
        self.dir.join(format!("{}.tsv", &h[..32]))
    }

    /// The cache file of an input; empty when there is none.
    fn read(&self, root: &Path) -> String {
        std::fs::read_to_string(self.file(root)).unwrap_or_default()
    }

    /// Lines `sha256 size mtime_ns ctime_ns ino relative/path` (tabs).
    fn parse(text: &str) -> FxHashMap<&str, (Identity, &str)> {
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return FxHashMap::default();
        }
        // A line per file: sized once, not rehashed as it grows.
        let mut map = FxHashMap::default();
        map.reserve(memchr::memchr_iter(b'\n', text.as_bytes()).count());
        map.extend(lines.filter_map(|l| {
            let mut f = l.splitn(6, '\t');
            let digest = f.next()?;
            if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            let id = Identity {
                size: f.next()?.parse().ok()?,
                mtime_ns: f.next()?.parse().ok()?,
                ctime_ns: f.next()?.parse().ok()?,
                ino: f.next()?.parse().ok()?,
            };
            Some((f.next()?, (id, digest)))
        }));
        map
    }

    fn store(&self, input: &Input, digests: &[&str]) {
        let mut text = String::with_capacity(input.files.len() * 160);
        text.push_str(HEADER);
        text.push('\n');
        for ((rel, id), d) in input.files.iter().zip(digests) {
            let Some(rel) = rel.to_str() else {
                continue; // not representable in the text file: hashed each run
            };
            if rel.contains(['\n', '\t']) || d.len() != 64 {
                continue;
            }
            use std::fmt::Write as _;
            let _ = writeln!(
                text,
                "{d}\t{}\t{}\t{}\t{}\t{rel}",
                id.size, id.mtime_ns, id.ctime_ns, id.ino
            );
        }
        let file = self.file(&input.root);
        let tmp = file.with_extension(format!("tmp{}", std::process::id()));
        let _ = std::fs::create_dir_all(&self.dir)
            .and_then(|()| std::fs::File::create(&tmp))
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .and_then(|()| std::fs::rename(&tmp, &file));
        let _ = std::fs::remove_file(&tmp);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn reference(path: &Path) -> String {
        // The definition, written out: sorted `rel\0sha\n` lines.
        let meta = std::fs::metadata(path).unwrap();
        let file = |p: &Path| hex::encode(Sha256::digest(std::fs::read(p).unwrap()));
        if !meta.is_dir() {
            return file(path);
        }
        let mut files = walk(path).unwrap();
        files.sort_by(|a, b| a.0.cmp(&b.0));
        let mut h = Sha256::new();
        for (rel, _) in files {
            h.update(format!("{}\0{}\n", rel.display(), file(&path.join(&rel))));
        }
        hex::encode(h.finalize())
    }

    #[test]
    fn paths_sort_as_path_sorts_them() {
        let mut names = vec![
            "a/b", "a.b", "a-b/c", "ab", "a", "a/b/c", "b", "a/b.c", "a/b-c/d", "A", "é/x", "e",
            // bytes below '/' in names: space, '!', '+', '-', '.'
            "a b", "a!/x", "a/ b", "a+/c", "a/b!", "a/b /c", "a.b/c", "a-",
        ];
        let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        want.sort_by(|a, b| Path::new(a).cmp(Path::new(b)));
        names.sort_by(|a, b| cmp_paths(Path::new(a), Path::new(b)));
        assert_eq!(names, want);
    }

    #[test]
    fn parallel_cached_digests_equal_the_definition_and_see_changes() {
        let d = tempfile::tempdir().unwrap();
        let tree = d.path().join("tree");
        std::fs::create_dir_all(tree.join("a/b")).unwrap();
        for (i, name) in ["x.ko", "a/y.ko", "a/b/z.ko", "a/b/empty"]
            .iter()
            .enumerate()
        {
            std::fs::write(tree.join(name), vec![i as u8; i * 100_000]).unwrap();
        }
        let single = tree.join("x.ko");
        let cache = DigestCache::new(d.path().join("cache"));
        let want = vec![reference(&tree), reference(&single)];
        let paths = [tree.clone(), single.clone()];
        assert_eq!(sha256_paths(&paths, None).unwrap(), want);
        assert_eq!(sha256_paths(&paths, Some(&cache)).unwrap(), want, "cold");
        assert_eq!(sha256_paths(&paths, Some(&cache)).unwrap(), want, "warm");
        assert_eq!(
            std::fs::read_dir(d.path().join("cache")).unwrap().count(),
            2
        );
        // A changed file is hashed again.
        std::fs::write(tree.join("a/y.ko"), b"changed").unwrap();
        let want2 = vec![reference(&tree), reference(&single)];
        assert_ne!(want2[0], want[0]);
        assert_eq!(sha256_paths(&paths, Some(&cache)).unwrap(), want2);
        // A corrupt cache file is ignored.
        for e in std::fs::read_dir(d.path().join("cache")).unwrap() {
            std::fs::write(e.unwrap().path(), "garbage\n1\t2").unwrap();
        }
        assert_eq!(sha256_paths(&paths, Some(&cache)).unwrap(), want2);
        assert_eq!(sha256_path(&single).unwrap(), want2[1]);
        // A missing input is an I/O error naming it.
        let e = sha256_paths(&[d.path().join("nope")], Some(&cache)).unwrap_err();
        assert!(!e.is_bad_input() && e.to_string().contains("nope"), "{e}");
    }
}
