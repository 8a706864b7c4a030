//! Reading only the parts of an uncompressed module that the loader looks
//! at. A module is ~100 KB, of which `.symtab`, `.strtab`, `__versions`,
//! `.modinfo`, the section headers and the signature tail are ~15 %; the
//! rest (relocations, `.BTF`, code) is never read. [`Sparse`] holds the
//! pieces read with `pread` and serves them to `object`'s ELF parser
//! through [`ReadRef`]. A read outside the pieces is recorded as a miss;
//! the caller reads the misses and parses again, so a successful parse
//! without misses saw exactly the bytes a parse of the whole file sees.

use std::cell::RefCell;
use std::fs::File;
use std::ops::Range;

use object::elf;
use object::read::elf::{FileHeader, SectionHeader};
use object::read::ReadRef;
use object::Endianness;

/// Reads closer than this to each other are merged into one `pread`.
const MERGE_GAP: u64 = 16 * 1024;

/// Sections whose bytes the module parser reads (besides `SHT_SYMTAB`,
/// its string table and `SHT_SYMTAB_SHNDX`).
fn wanted(name: &[u8]) -> bool {
    matches!(
        name,
        b"__versions" | b"__version_ext_crcs" | b"__version_ext_names" | b".modinfo"
    ) || name.starts_with(b"__kcrctab")
        || name.starts_with(b"__ksymtab_strings")
}

/// Pieces of one file, each starting at an 8-aligned offset and stored in
/// 8-aligned memory, so `object`'s alignment checks see what they would
/// see on a memory map of the whole file.
pub(crate) struct Sparse<'f> {
    file: &'f File,
    len: u64,
    chunks: Vec<(u64, u64, Vec<u64>)>,
    misses: RefCell<Vec<Range<u64>>>,
}

impl<'f> Sparse<'f> {
    pub(crate) fn new(file: &'f File, len: u64) -> Self {
        Sparse {
            file,
            len,
            chunks: Vec::new(),
            misses: RefCell::new(Vec::new()),
        }
    }

    /// The file's length.
    pub(crate) fn file_len(&self) -> u64 {
        self.len
    }

    /// Reads the given ranges (clamped to the file, aligned, merged).
    pub(crate) fn load(&mut self, ranges: &mut [Range<u64>]) -> std::io::Result<()> {
        ranges.sort_by_key(|r| r.start);
        let mut merged: Vec<Range<u64>> = Vec::with_capacity(ranges.len());
        for r in ranges.iter() {
            let (start, end) = (r.start & !7, r.end.min(self.len));
            if start >= end {
                continue;
            }
            match merged.last_mut() {
                Some(last) if start <= last.end.saturating_add(MERGE_GAP) => {
                    last.end = last.end.max(end);
                }
                _ => merged.push(start..end),
            }
        }
        for r in merged {
            let Ok(n) = usize::try_from(r.end - r.start) else {
                continue;
            };
            let mut words = take_buffer(n.div_ceil(8));
            let buf = object::pod::bytes_of_slice_mut(&mut words[..]);
            read_exact_at(self.file, &mut buf[..n], r.start)?;
            self.chunks.push((r.start, r.end, words));
        }
        Ok(())
    }

    /// Takes the misses recorded since the last call.
    pub(crate) fn take_misses(&self) -> Vec<Range<u64>> {
        std::mem::take(&mut *self.misses.borrow_mut())
    }

    /// The loaded bytes that contain `start`, from `start` to the chunk's end.
    fn from(&self, start: u64) -> Option<&[u8]> {
        let mut best: Option<&[u8]> = None;
        for (s, end, words) in &self.chunks {
            if start < *s || start >= *end {
                continue;
            }
            let bytes = object::pod::bytes_of_slice(words);
            // `end` excludes the padding of the last word.
            let b = bytes.get((start - s) as usize..(end - s) as usize)?;
            if best.is_none_or(|x| x.len() < b.len()) {
                best = Some(b);
            }
        }
        best
    }

    /// Whether all of `r` is loaded.
    fn has(&self, r: &Range<u64>) -> bool {
        let want = r.end.saturating_sub(r.start);
        want == 0 || self.from(r.start).is_some_and(|b| b.len() as u64 >= want)
    }

    fn miss(&self, r: Range<u64>) {
        self.misses.borrow_mut().push(r);
    }
}

impl Drop for Sparse<'_> {
    fn drop(&mut self) {
        for (_, _, words) in self.chunks.drain(..) {
            give_buffer(words);
        }
    }
}

/// Buffers kept per thread for the next module's pieces: a fresh large
/// allocation is a fresh memory map, whose pages the kernel zeroes on first
/// touch and unmaps on free — more work than the `pread` itself.
const POOL_BUFFERS: usize = 8;
/// Larger buffers are not kept (a module with huge sections is rare).
const POOL_MAX_WORDS: usize = (4 << 20) / 8;

thread_local! {
    static POOL: RefCell<Vec<Vec<u64>>> = const { RefCell::new(Vec::new()) };
}

/// A buffer of `words` words from the pool (its old content is overwritten
/// by the caller's read), or a new one.
fn take_buffer(words: usize) -> Vec<u64> {
    let reused = POOL.with(|p| {
        let mut p = p.borrow_mut();
        // The smallest buffer that is large enough, else the largest.
        let fit = (0..p.len())
            .filter(|&i| p[i].capacity() >= words)
            .min_by_key(|&i| p[i].capacity());
        let pick = fit.or_else(|| (0..p.len()).max_by_key(|&i| p[i].capacity()))?;
        Some(p.swap_remove(pick))
    });
    match reused {
        Some(mut v) => {
            if v.len() >= words {
                v.truncate(words);
            } else {
                v.resize(words, 0);
            }
            v
        }
        None => vec![0u64; words],
    }
}

fn give_buffer(v: Vec<u64>) {
    if v.capacity() > POOL_MAX_WORDS {
        return;
    }
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < POOL_BUFFERS {
            p.push(v);
        }
    });
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(not(unix))]
fn read_exact_at(mut file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buf)
}

impl<'a> ReadRef<'a> for &'a Sparse<'_> {
    fn len(self) -> Result<u64, ()> {
        Ok(self.len)
    }

    fn read_bytes_at(self, offset: u64, size: u64) -> Result<&'a [u8], ()> {
        let end = offset.checked_add(size).ok_or(())?;
        if end > self.len {
            return Err(());
        }
        if size == 0 {
            return Ok(&[]);
        }
        let n = usize::try_from(size).map_err(|_| ())?;
        match self.from(offset).and_then(|b| b.get(..n)) {
            Some(b) => Ok(b),
            None => {
                self.miss(offset..end);
                Err(())
            }
        }
    }

    fn read_bytes_at_until(self, range: Range<u64>, delimiter: u8) -> Result<&'a [u8], ()> {
        if range.start > range.end || range.end > self.len {
            return Err(());
        }
        let want = usize::try_from(range.end - range.start).map_err(|_| ())?;
        let Some(have) = self.from(range.start) else {
            if want > 0 {
                self.miss(range);
            }
            return Err(());
        };
        let bytes = &have[..want.min(have.len())];
        match memchr::memchr(delimiter, bytes) {
            Some(len) => Ok(&bytes[..len]),
            None if bytes.len() < want => {
                self.miss(range);
                Err(())
            }
            None => Err(()),
        }
    }
}

/// Reads, in as few `pread`s as the layout allows, the header, the section
/// headers, the section names, the sections the module parser reads and
/// the signature tail. Anything it gets wrong shows up as misses later.
pub(crate) fn prefetch(s: &mut Sparse<'_>) -> std::io::Result<()> {
    let mut header: Range<u64> = 0..64;
    s.load(std::slice::from_mut(&mut header))?;
    for stage in 0..3 {
        let mut ranges = match object::FileKind::parse(&*s) {
            Ok(object::FileKind::Elf32) => plan::<elf::FileHeader32<Endianness>>(s, stage),
            Ok(object::FileKind::Elf64) => plan::<elf::FileHeader64<Endianness>>(s, stage),
            _ => Vec::new(),
        };
        ranges.retain(|r| !s.has(r));
        if ranges.is_empty() {
            break;
        }
        s.load(&mut ranges)?;
    }
    let _ = s.take_misses();
    Ok(())
}

/// Stage 0: the section headers through the end of the file (the
/// signature) and the section-name table. Stage 1: the wanted sections.
fn plan<Elf: FileHeader<Endian = Endianness>>(s: &Sparse<'_>, stage: u8) -> Vec<Range<u64>> {
    let mut out = Vec::new();
    let Ok(h) = Elf::parse(s) else {
        return out;
    };
    let Ok(endian) = h.endian() else {
        return out;
    };
    let shoff: u64 = h.e_shoff(endian).into();
    let len = s.file_len();
    if stage == 0 {
        if shoff > 0 {
            // The section-name table usually sits just before the headers.
            out.push(shoff.saturating_sub(4096)..len);
        }
        out.push(len.saturating_sub(crate::module::SIGNATURE_MARKER.len() as u64)..len);
        return out;
    }
    let Ok(headers) = h.section_headers(endian, s) else {
        return out;
    };
    let Ok(shstrndx) = h.shstrndx(endian, s) else {
        return out;
    };
    let range = |sh: &Elf::SectionHeader| {
        sh.file_range(endian)
            .and_then(|(off, size)| Some(off..off.checked_add(size)?))
    };
    let Some(names) = headers.get(shstrndx as usize) else {
        return out;
    };
    // The names come first: without them the wanted sections are unknown.
    if let Some(r) = range(names) {
        if !s.has(&r) {
            out.push(r);
            return out;
        }
    }
    let Ok(table) = h.sections(endian, s) else {
        return out;
    };
    for (i, sh) in headers.iter().enumerate() {
        let t = sh.sh_type(endian);
        let want = t == elf::SHT_SYMTAB
            || t == elf::SHT_SYMTAB_SHNDX
            || table.section_name(endian, sh).is_ok_and(wanted);
        if !want {
            continue;
        }
        out.extend(range(sh));
        if t == elf::SHT_SYMTAB {
            let link = sh.sh_link(endian) as usize;
            if link != i {
                out.extend(headers.get(link).and_then(range));
            }
        }
    }
    out
}
