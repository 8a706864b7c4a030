//! Kernels as distributions ship them: a `Module.symvers` file (plain or
//! gzip'ed), a directory (`/lib/modules/VER`, a headers tree, or both), or
//! `.deb` packages read directly (ar + `data.tar.{xz,zst,gz}`), never
//! installed. Several paths may make up one kernel (image + headers).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rayon::prelude::*;
use serde::Serialize;

use crate::compress::{decoder, over_limit_message, Bounded, Compression, LimitedReader, Limits};
use crate::error::{Error, Result};
use crate::module::{is_module_name, Module, ModuleCache};
use crate::symvers::{Export, Symvers};

const AR_MAGIC: &[u8] = b"!<arch>\n";

/// One kernel: its exports (Module.symvers) and, when the input had them,
/// the modules it ships.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// How reports name the kernel: its release when known, else its first path.
    pub name: String,
    /// `6.1.0-56-amd64`, from the package layout or the modules' vermagic.
    pub release: Option<String>,
    /// The vermagic its own modules carry (needs the modules).
    pub vermagic: Option<String>,
    /// Debian architecture name, from the modules' ELF or the release suffix.
    pub arch: Option<String>,
    pub symvers: Symvers,
    /// The kernel's own modules, sorted by path (empty for a bare Module.symvers).
    pub modules: Vec<Module>,
    /// The paths it was read from.
    pub sources: Vec<String>,
}

impl Kernel {
    /// Reads a kernel from one or more paths (Module.symvers files, kernel
    /// directories, `.deb` packages), merged.
    pub fn load<P: AsRef<Path>>(paths: &[P]) -> Result<Kernel> {
        Self::load_cached(paths, None)
    }

    /// [`Kernel::load`], reading compressed modules through `cache`.
    pub fn load_cached<P: AsRef<Path>>(paths: &[P], cache: Option<&ModuleCache>) -> Result<Kernel> {
        Self::load_with(paths, cache, &Limits::DEFAULT)
    }

    /// [`Kernel::load_cached`], decompressing every input within `limits`.
    pub fn load_with<P: AsRef<Path>>(
        paths: &[P],
        cache: Option<&ModuleCache>,
        limits: &Limits,
    ) -> Result<Kernel> {
        let mut g = Gathered {
            cache: cache.cloned(),
            limits: *limits,
            ..Gathered::default()
        };
        for p in paths {
            g.add(p.as_ref())?;
        }
        let sources: Vec<String> = paths
            .iter()
            .map(|p| p.as_ref().display().to_string())
            .collect();
        g.finish(sources)
    }

    /// A kernel from the bytes of one file — a `.deb` or `.rpm` package, a
    /// kernel image, a module or a `Module.symvers` — read as [`Kernel::load`]
    /// reads a file of that kind; `shown` names it in errors. For input
    /// that is already in memory (and for the fuzz targets in `fuzz/`).
    pub fn from_file_bytes(bytes: &[u8], shown: &str) -> Result<Kernel> {
        let mut g = Gathered::default();
        let name = shown.rsplit('/').next().unwrap_or(shown);
        g.add_bytes(bytes, name, shown)?;
        g.finish(vec![shown.to_string()])
    }
}

impl Gathered {
    fn finish(self, sources: Vec<String>) -> Result<Kernel> {
        let g = self;
        let limits = &g.limits;
        let first = sources.first().cloned().unwrap_or_default();
        let mut modules = g.modules;
        modules.sort_by(|a, b| a.path.cmp(&b.path));
        let symvers = match (g.symvers, g.image) {
            (Some(s), _) => s,
            // No Module.symvers: vmlinux's rows from the image, the
            // modules' rows from their own __ksymtab.
            (None, Some((name, bytes))) => rebuilt_symvers(&bytes, &name, &modules, limits)?,
            (None, None) => return Err(Error::NoSymvers { path: first }),
        };
        let vermagic = modules
            .iter()
            .find(|m| m.modinfo.intree())
            .or(modules.first())
            .and_then(|m| m.modinfo.vermagic())
            .map(str::to_string);
        let release = g.release.or_else(|| {
            vermagic
                .as_deref()
                .and_then(|v| v.split_whitespace().next())
                .map(str::to_string)
        });
        let arch = modules
            .first()
            .and_then(|m| m.elf.arch())
            .map(str::to_string)
            .or_else(|| arch_of_release(release.as_deref()?));
        Ok(Kernel {
            name: release.clone().unwrap_or(first),
            release,
            vermagic,
            arch,
            symvers,
            modules,
            sources,
        })
    }
}

impl Kernel {
    /// A kernel known only by its Module.symvers.
    pub fn from_symvers(name: impl Into<String>, symvers: Symvers) -> Kernel {
        let name = name.into();
        Kernel {
            release: None,
            vermagic: None,
            arch: None,
            symvers,
            modules: Vec::new(),
            sources: vec![name.clone()],
            name,
        }
    }

    /// Whether the kernel checks symbol CRCs (built with modversions).
    pub fn modversions(&self) -> bool {
        self.symvers.has_crcs()
    }

    pub fn export(&self, symbol: &str) -> Option<crate::symvers::ExportRef<'_>> {
        self.symvers.get(symbol)
    }
}

fn arch_of_release(release: &str) -> Option<String> {
    let last = release.rsplit('-').next()?;
    [
        "amd64", "arm64", "armmp", "ppc64el", "s390x", "riscv64", "loong64", "686",
    ]
    .contains(&last)
    .then(|| last.to_string())
}

/// Reads every module in `path`: a module file, a directory (searched
/// recursively) or a `.deb` package.
pub fn load_modules(path: &Path) -> Result<Vec<Module>> {
    load_modules_cached(path, None)
}

/// [`load_modules`], reading compressed modules through `cache`.
pub fn load_modules_cached(path: &Path, cache: Option<&ModuleCache>) -> Result<Vec<Module>> {
    load_modules_with(path, cache, &Limits::DEFAULT)
}

/// [`load_modules_cached`], decompressing every input within `limits`.
pub fn load_modules_with(
    path: &Path,
    cache: Option<&ModuleCache>,
    limits: &Limits,
) -> Result<Vec<Module>> {
    let mut g = Gathered {
        cache: cache.cloned(),
        limits: *limits,
        ..Gathered::default()
    };
    g.add(path)?;
    let mut m = g.modules;
    m.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(m)
}

/// What a set of inputs contained.
#[derive(Default)]
struct Gathered {
    symvers: Option<Symvers>,
    modules: Vec<Module>,
    release: Option<String>,
    /// A kernel image (`boot/vmlinuz-*`) seen among the inputs: where, and its bytes.
    image: Option<(String, Vec<u8>)>,
    cache: Option<ModuleCache>,
    limits: Limits,
}

/// Module.symvers as the build would have written it: the vmlinux rows
/// rebuilt from the kernel image, then every module's exports under the
/// module's path below `kernel/` (`drivers/net/mii`).
fn rebuilt_symvers(
    image: &[u8],
    path: &str,
    modules: &[Module],
    limits: &Limits,
) -> Result<Symvers> {
    let mut s = crate::vmlinuz::symvers_from_image_with(image, path, limits)?;
    for m in modules {
        let p = m.path.rsplit(':').next().unwrap_or(&m.path);
        let rel = p.rsplit_once("/kernel/").map(|(_, r)| r).unwrap_or(p);
        let rel = rel.split(".ko").next().unwrap_or(rel);
        for e in &m.exports {
            s.push(Export {
                module: rel.to_string(),
                crc: e.crc.or(Some(0)),
                ..e.clone()
            });
        }
    }
    Ok(s)
}

impl Gathered {
    fn add(&mut self, path: &Path) -> Result<()> {
        let shown = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|e| Error::io(&shown, e))?;
        if meta.is_dir() {
            return self.add_dir(path);
        }
        let file = std::fs::File::open(path).map_err(|e| Error::io(&shown, e))?;
        let bytes = crate::mmap::map(&file).map_err(|e| Error::io(&shown, e))?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        self.add_bytes(&bytes, name, &shown)
    }

    /// One file's bytes; `name` is its file name, `shown` its path.
    fn add_bytes(&mut self, bytes: &[u8], name: &str, shown: &str) -> Result<()> {
        let shown = shown.to_string();
        if bytes.starts_with(AR_MAGIC) {
            return self.add_deb(bytes, &shown);
        }
        if crate::rpm::is_rpm(bytes) {
            let stream = crate::rpm::tar_stream_with(bytes, &shown, &self.limits)?;
            return self.add_tar(stream, &shown, "payload");
        }
        if crate::vmlinuz::is_image_name(name) || crate::vmlinuz::looks_like_image(bytes) {
            self.image
                .get_or_insert_with(|| (shown.clone(), bytes.to_vec()));
            return Ok(());
        }
        if is_module_name(name) || bytes.starts_with(b"\x7fELF") {
            self.modules
                .push(Module::parse_with(bytes, &shown, &self.limits)?);
            return Ok(());
        }
        let s = Symvers::parse_bytes_with(bytes, &shown, &self.limits)?;
        self.symvers.get_or_insert(s);
        Ok(())
    }

    fn add_dir(&mut self, dir: &Path) -> Result<()> {
        // The headers of an installed kernel hang off /lib/modules/VER/build.
        for cand in ["Module.symvers", "build/Module.symvers"] {
            let p = dir.join(cand);
            if self.symvers.is_none() && p.is_file() {
                self.symvers = Some(Symvers::read_with(&p, &self.limits)?);
            }
        }
        let mut modules = Vec::new();
        // The first Module.symvers in path order (the walk is sorted).
        let mut symvers: Option<PathBuf> = None;
        let mut images: Vec<PathBuf> = Vec::new();
        // Every regular file with its identity: the command's one walk of
        // the directory with the cache (the input digests use it too).
        let files = match &self.cache {
            Some(c) => c.files(dir)?,
            None => std::sync::Arc::new(crate::walk::walk_sorted(dir)?),
        };
        let mut ids = Vec::new();
        for (rel, id) in files.iter() {
            let p = dir.join(rel);
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if is_module_name(name) {
                modules.push(p);
                ids.push(Some(*id));
            } else if crate::vmlinuz::is_image_name(name) && images.is_empty() {
                images.push(p);
            } else if name == "Module.symvers"
                || (name.starts_with("symvers-") && name.ends_with(".gz"))
            {
                symvers.get_or_insert(p);
            }
        }
        if self.symvers.is_none() {
            if let Some(p) = &symvers {
                self.symvers = Some(Symvers::read_with(p, &self.limits)?);
            }
        }
        if self.release.is_none() {
            self.release = release_of_path(&dir.display().to_string());
        }
        if let (None, Some(p)) = (&self.image, images.first()) {
            let bytes = std::fs::read(p).map_err(|e| Error::io(p.display(), e))?;
            self.image = Some((p.display().to_string(), bytes));
        }
        let (cache, limits) = (self.cache.as_ref(), &self.limits);
        let parsed: Vec<Result<Module>> = match cache {
            Some(c) => crate::parsed::read_all(c, dir, &modules, &ids, limits),
            None => modules
                .par_iter()
                .map(|p| crate::module::read_file(p, None, limits))
                .collect(),
        };
        for m in parsed {
            self.modules.push(m?);
        }
        Ok(())
    }

    fn add_deb(&mut self, bytes: &[u8], shown: &str) -> Result<()> {
        let arch_err = |member: &str, msg: String| Error::Archive {
            path: shown.to_string(),
            member: member.to_string(),
            msg,
        };
        let mut ar = ar::Archive::new(bytes);
        let mut found_data = false;
        while let Some(entry) = ar.next_entry() {
            let entry = entry.map_err(|e| arch_err("ar", e.to_string()))?;
            let id = String::from_utf8_lossy(entry.header().identifier()).into_owned();
            if !id.starts_with("data.tar") {
                continue;
            }
            found_data = true;
            let mut buf = BufReader::with_capacity(1 << 16, entry);
            let head = buf.fill_buf().map_err(|e| arch_err(&id, e.to_string()))?;
            let kind = Compression::sniff(head);
            let limit = self.limits.payload;
            let reader = LimitedReader::new(decoder(kind, buf, shown)?, Bounded::Payload, limit);
            self.add_tar(Box::new(reader), shown, &id)?;
        }
        if !found_data {
            return Err(arch_err("data.tar.*", "no such member".to_string()));
        }
        Ok(())
    }

    fn add_tar(&mut self, reader: Box<dyn Read + Send + '_>, shown: &str, id: &str) -> Result<()> {
        let err = |member: &str, msg: String| Error::Archive {
            path: shown.to_string(),
            member: member.to_string(),
            msg,
        };
        let results: Mutex<Vec<Result<Module>>> = Mutex::new(Vec::new());
        let mut outcome = Ok(());
        rayon::scope(|scope| {
            let mut tar = tar::Archive::new(reader);
            let entries = match tar.entries() {
                Ok(e) => e,
                Err(e) => {
                    outcome = Err(err(id, e.to_string()));
                    return;
                }
            };
            for entry in entries {
                let mut entry = match entry {
                    Ok(e) => e,
                    Err(e) => {
                        outcome = Err(err(id, e.to_string()));
                        return;
                    }
                };
                if !entry.header().entry_type().is_file() {
                    continue;
                }
                let member = match entry.path() {
                    Ok(p) => p.to_string_lossy().trim_start_matches("./").to_string(),
                    Err(e) => {
                        outcome = Err(err(id, e.to_string()));
                        return;
                    }
                };
                let role = member_role(&member);
                let wanted_symvers = role == Some(MemberRole::Symvers);
                let wanted_image = role == Some(MemberRole::Image) && self.image.is_none();
                if !wanted_symvers && !wanted_image && role != Some(MemberRole::Module) {
                    continue;
                }
                // The size is the member header's: refuse before reading.
                let bound = if wanted_image {
                    Bounded::Image
                } else if wanted_symvers {
                    Bounded::Symvers
                } else {
                    Bounded::Module
                };
                let limit = bound.limit(&self.limits);
                if entry.size() > limit {
                    outcome = Err(err(&member, over_limit_message(bound, limit)));
                    return;
                }
                let mut data = Vec::with_capacity(entry.size() as usize);
                if let Err(e) = entry.read_to_end(&mut data) {
                    outcome = Err(err(&member, e.to_string()));
                    return;
                }
                let name = format!("{shown}:{member}");
                if wanted_image {
                    self.image = Some((name, data));
                } else if wanted_symvers {
                    if self.release.is_none() {
                        self.release = release_of_path(&member);
                    }
                    if self.symvers.is_none() {
                        match Symvers::parse_bytes_with(&data, &name, &self.limits) {
                            Ok(s) => self.symvers = Some(s),
                            Err(e) => {
                                outcome = Err(e);
                                return;
                            }
                        }
                    }
                } else {
                    if self.release.is_none() {
                        self.release = release_of_path(&member);
                    }
                    let results = &results;
                    let (cache, limits) = (self.cache.clone(), self.limits);
                    scope.spawn(move |_| {
                        let m = match &cache {
                            Some(c) => c.parse_with(&data, &name, &limits),
                            None => Module::parse_with(&data, &name, &limits),
                        };
                        if let Ok(mut r) = results.lock() {
                            r.push(m);
                        }
                    });
                }
            }
        });
        outcome?;
        let results = results
            .into_inner()
            .map_err(|_| err(id, "a module parser panicked".to_string()))?;
        for m in results {
            self.modules.push(m?);
        }
        Ok(())
    }
}

/// `6.1.0-56-amd64` from `lib/modules/6.1.0-56-amd64/…` or
/// `usr/src/linux-headers-6.1.0-56-amd64/…`.
/// What a file inside a kernel package is to a kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MemberRole {
    Symvers,
    Image,
    Module,
}

/// Picks the files of a package that make up a kernel: `Module.symvers`
/// (Debian headers, RHEL kernel-devel), `boot/symvers-VER.gz` and RHEL 8+'s
/// `lib/modules/VER/symvers.gz` (kernel-core); the image under `boot/` or,
/// as RHEL/Fedora ship it, `lib/modules/VER/vmlinuz`; and modules.
fn member_role(member: &str) -> Option<MemberRole> {
    let file_name = member.rsplit('/').next().unwrap_or("");
    let in_modules_dir = {
        let parts: Vec<&str> = member.split('/').collect();
        parts.len() == 4 && parts[0] == "lib" && parts[1] == "modules"
            || parts.len() == 5 && parts[..3] == ["usr", "lib", "modules"]
    };
    if file_name == "Module.symvers"
        || (file_name.starts_with("symvers-") && file_name.ends_with(".gz"))
        || (in_modules_dir && file_name == "symvers.gz")
    {
        return Some(MemberRole::Symvers);
    }
    if crate::vmlinuz::is_image_name(file_name)
        && (member.starts_with("boot/") || (in_modules_dir && file_name == "vmlinuz"))
    {
        return Some(MemberRole::Image);
    }
    is_module_name(file_name).then_some(MemberRole::Module)
}

fn release_of_path(p: &str) -> Option<String> {
    let parts: Vec<&str> = p.split('/').collect();
    for w in parts.windows(2) {
        if w[0] == "modules" && w[1].chars().next().is_some_and(|c| c.is_ascii_digit()) {
            return Some(w[1].to_string());
        }
    }
    parts
        .iter()
        .find_map(|s| s.strip_prefix("linux-headers-"))
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Summary counts of a kernel, as the issue states its facts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KernelStats {
    pub modules: usize,
    pub imports: usize,
    pub exports: usize,
    pub vmlinux_exports: usize,
    pub gpl_exports: usize,
    pub namespaced_exports: usize,
    pub signed_modules: usize,
}

impl Kernel {
    /// Counts of modules, imports and exports.
    pub fn stats(&self) -> KernelStats {
        let e = self.symvers.exports();
        KernelStats {
            modules: self.modules.len(),
            imports: self.modules.iter().map(|m| m.imports().len()).sum(),
            exports: e.len(),
            vmlinux_exports: e.iter().filter(|x| x.is_vmlinux()).count(),
            gpl_exports: e.iter().filter(|x| x.export_type.gpl_only()).count(),
            namespaced_exports: e.iter().filter(|x| x.namespace.is_some()).count(),
            signed_modules: self.modules.iter().filter(|m| m.signed).count(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn package_members_by_role() {
        use MemberRole::*;
        for (member, role) in [
            (
                "usr/src/linux-headers-6.1.0-56-amd64/Module.symvers",
                Some(Symvers),
            ),
            (
                "usr/src/kernels/5.14.0-427.el9.x86_64/Module.symvers",
                Some(Symvers),
            ),
            ("boot/symvers-5.14.0-427.el9.x86_64.gz", Some(Symvers)),
            (
                "lib/modules/5.14.0-427.el9.x86_64/symvers.gz",
                Some(Symvers),
            ),
            (
                "usr/lib/modules/6.8.5-301.fc40.x86_64/symvers.gz",
                Some(Symvers),
            ),
            ("boot/vmlinuz-6.1.0-56-amd64", Some(Image)),
            ("lib/modules/5.14.0-427.el9.x86_64/vmlinuz", Some(Image)),
            ("usr/lib/modules/6.8.5-301.fc40.x86_64/vmlinuz", Some(Image)),
            (
                "lib/modules/5.14.0-427.el9.x86_64/kernel/fs/ext4/ext4.ko.xz",
                Some(Module),
            ),
            // Not a kernel's own symvers or image.
            (
                "lib/modules/5.14.0-427.el9.x86_64/extra/foo/symvers.gz",
                None,
            ),
            ("usr/share/doc/vmlinuz", None),
            ("boot/vmlinuz-6.1.0-56-amd64.sig", None),
        ] {
            assert_eq!(member_role(member), role, "{member}");
        }
    }

    #[test]
    fn releases_from_paths() {
        assert_eq!(
            release_of_path("lib/modules/6.1.0-56-amd64/kernel/x.ko").as_deref(),
            Some("6.1.0-56-amd64")
        );
        assert_eq!(
            release_of_path("usr/src/linux-headers-6.1.0-56-amd64/Module.symvers").as_deref(),
            Some("6.1.0-56-amd64")
        );
        assert_eq!(arch_of_release("6.1.0-56-amd64").as_deref(), Some("amd64"));
    }
}
