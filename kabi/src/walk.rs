//! One walk of an input directory per command. `kabi check --format json`
//! reads a directory's modules and, on another thread, hashes the same
//! directory for the report's input digests: both need every regular file
//! under it with its identity (a stat per file, 4,023 for a kernel's
//! modules). A [`Walks`] shared by the two (it lives in the
//! [`crate::module::ModuleCache::one_pass`] they are given, for that one
//! command) walks each directory once: the first caller walks, a second
//! one waits for that walk.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::digest::Identity;
use crate::error::Result;

/// Every regular file under a directory (relative path, identity), in the
/// order of [`crate::digest`]'s directory digest; symlinks not followed.
pub(crate) type Files = Arc<Vec<(PathBuf, Identity)>>;

/// Walks made so far, by directory; a walk that failed is not kept (the
/// next caller walks again and gets its own error).
#[derive(Debug, Clone, Default)]
pub(crate) struct Walks(Arc<Mutex<HashMap<PathBuf, Arc<Walk>>>>);

/// One directory's walk: made once; `None` when it failed.
type Walk = OnceLock<Option<Files>>;

impl Walks {
    /// The files under `root`, walked once however many callers ask.
    pub(crate) fn files(&self, root: &Path) -> Result<Files> {
        let cell = match self.0.lock() {
            Ok(mut walks) => walks.entry(root.to_path_buf()).or_default().clone(),
            Err(_) => return walk_sorted(root).map(Arc::new),
        };
        let mut failed = None;
        let walked = cell.get_or_init(|| match walk_sorted(root) {
            Ok(files) => Some(Arc::new(files)),
            Err(e) => {
                failed = Some(e);
                None
            }
        });
        match (walked, failed) {
            (Some(files), _) => Ok(files.clone()),
            (None, Some(e)) => Err(e),
            (None, None) => walk_sorted(root).map(Arc::new),
        }
    }
}

/// [`crate::digest::walk`], sorted as the directory digest orders files.
pub(crate) fn walk_sorted(root: &Path) -> Result<Vec<(PathBuf, Identity)>> {
    let mut files = crate::digest::walk(root)?;
    files.sort_unstable_by(|a, b| crate::digest::cmp_paths(&a.0, &b.0));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::module::ModuleCache;

    #[test]
    fn a_pass_walks_each_directory_once_and_a_new_pass_sees_changes() {
        let d = tempfile::tempdir().unwrap();
        let tree = d.path().join("tree");
        std::fs::create_dir_all(tree.join("sub")).unwrap();
        std::fs::write(tree.join("sub/a.ko"), b"a").unwrap();
        let cache = ModuleCache::new(d.path().join("cache"));
        let pass = cache.one_pass();
        let first = pass.files(&tree).unwrap();
        std::fs::write(tree.join("b.ko"), b"b").unwrap();
        // the clone the digests get shares the walk
        let again = pass.clone().files(&tree).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "walked once in a pass");
        assert_eq!(again.len(), 1);
        // outside a pass, and in a new one, the change is seen
        let names =
            |f: &Files| -> Vec<String> { f.iter().map(|(p, _)| p.display().to_string()).collect() };
        assert_eq!(names(&cache.files(&tree).unwrap()), ["b.ko", "sub/a.ko"]);
        assert_eq!(
            names(&cache.one_pass().files(&tree).unwrap()),
            ["b.ko", "sub/a.ko"]
        );
        // a directory that cannot be walked is an error each time it is asked
        let gone = d.path().join("gone");
        assert!(pass.files(&gone).is_err());
        assert!(pass.files(&gone).is_err());
    }
}
