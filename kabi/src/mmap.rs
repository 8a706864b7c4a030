//! Read-only memory maps of input files: modules are read in place, and only
//! the pages of the sections the loader looks at are touched.

use std::fs::File;
use std::ops::Deref;

/// A file's bytes: memory-mapped, or read into memory when mapping is not
/// possible (empty files, special files).
pub enum Bytes {
    Map(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Map(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// Maps `file` read-only.
#[allow(unsafe_code)]
pub fn map(file: &File) -> std::io::Result<Bytes> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(Bytes::Owned(Vec::new()));
    }
    // SAFETY: the map is read-only and private to this process. Inputs are
    // kernel packages and modules that nothing modifies while certlab reads
    // them; were one truncated underneath us, the process would take SIGBUS,
    // which is the documented limit of reading by mmap.
    match unsafe { memmap2::Mmap::map(file) } {
        Ok(m) => Ok(Bytes::Map(m)),
        Err(_) => {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut &*file, &mut v)?;
            Ok(Bytes::Owned(v))
        }
    }
}
