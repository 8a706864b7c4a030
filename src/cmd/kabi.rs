//! `certlab kabi …`: the kernel-ABI commands. Wiring only: parse, call
//! `certlab_kabi`, print human text or deterministic JSON, map the outcome
//! to an exit code.
//!
//! Exit codes (`crate::exit`):
//! 0 compatible / no break, 1 incompatible or release-blocking break,
//! 2 usage or infrastructure error (an input cannot be read),
//! 3 bad input file (corrupt ELF, Module.symvers, package or allowlist).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use certlab_kabi::{
    allowlist::AllowlistDiff, diff, digest::sha256_paths, load_modules, load_modules_cached,
    Allowlist, Checker, Kernel, KernelDiff, ListFormat, Module, ModuleCache, ModuleReport,
};
use serde::Serialize;

use crate::error::CliError;
use crate::exit;
use crate::format::Format;

mod explain_cmd;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFmt {
    Rhel,
    Openeuler,
    Android,
    Symvers,
    Json,
    Toml,
}

impl From<ListFmt> for ListFormat {
    fn from(f: ListFmt) -> Self {
        match f {
            ListFmt::Rhel => ListFormat::Rhel,
            ListFmt::Openeuler => ListFormat::OpenEuler,
            ListFmt::Android => ListFormat::Android,
            ListFmt::Symvers => ListFormat::Symvers,
            ListFmt::Json => ListFormat::Json,
            ListFmt::Toml => ListFormat::Toml,
        }
    }
}

/// Kernel ABI: check drivers against kernels, diff kernels, manage the allowlist.
#[derive(Debug, clap::Subcommand)]
pub enum KabiCmd {
    /// Check modules the way the kernel's loader would, offline.
    ///
    /// KERNEL is a Module.symvers file (plain or .gz), a kernel directory
    /// (/lib/modules/VER, a headers tree) or a .deb package; join several
    /// paths that make one kernel with commas (image.deb,headers.deb).
    /// Several --kernel give a compatibility matrix.
    Check {
        /// A kernel: PATH[,PATH…] (repeatable).
        #[arg(long = "kernel", required = true, value_name = "KERNEL")]
        kernels: Vec<String>,
        /// Every import resolved from the kernel must be on this allowlist.
        #[arg(long)]
        allowlist: Option<PathBuf>,
        /// Modules (or packages) loaded first whose exports resolve imports; not checked themselves.
        #[arg(long = "with", value_name = "DEP")]
        with: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        /// Cache parsed modules and input digests in DIR: a directory's
        /// modules keyed by each file's identity (size, times, inode), so a
        /// second run over an unchanged tree reads no module; compressed
        /// modules also by their sha256. Default:
        /// $XDG_CACHE_HOME/certlab/kabi-cache, else ~/.cache/certlab/kabi-cache.
        #[arg(long, value_name = "DIR", conflicts_with = "no_cache")]
        cache: Option<PathBuf>,
        /// Do not read or write the module cache.
        #[arg(long)]
        no_cache: bool,
        /// Modules: .ko[.xz|.zst|.gz] files, directories (searched recursively) or .deb packages.
        #[arg(required = true, value_name = "MODULE_OR_PACKAGE")]
        inputs: Vec<PathBuf>,
    },
    /// Compare the exports of two kernels.
    Diff {
        /// The old kernel: PATH[,PATH…].
        old: String,
        /// The new kernel: PATH[,PATH…].
        new: String,
        /// Breaks of allowlisted symbols are release-blocking (exit 1); others are reported only.
        #[arg(long)]
        allowlist: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        /// Then explain every CRC change by type, from both kernels' BTF (needs their images).
        #[arg(long)]
        explain: bool,
    },
    /// The type-level reason for CRC changes, from both kernels' BTF.
    ///
    /// OLD and NEW are kernels as for diff (PATH[,PATH…]) that include the
    /// kernel image: the linux-image package, a directory with vmlinuz, a
    /// vmlinux, or /sys/kernel/btf/vmlinux. Exit 1 when a symbol reaches a
    /// changed struct, union, enum or typedef.
    Explain {
        old: String,
        new: String,
        #[arg(required = true, value_name = "SYMBOL")]
        symbols: Vec<String>,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Generate, convert, merge, compare and show KABI allowlists.
    #[command(subcommand)]
    Allowlist(AllowlistCmd),
}

#[derive(Debug, clap::Subcommand)]
pub enum AllowlistCmd {
    /// The union of the kernel symbols a set of drivers uses, with usage.
    Generate {
        #[arg(long, value_name = "KERNEL")]
        kernel: String,
        /// Drivers: modules, directories or packages.
        #[arg(long = "from", required = true, value_name = "DRIVER")]
        from: Vec<PathBuf>,
        /// Output format.
        #[arg(long = "to", value_enum, default_value = "toml")]
        to: ListFmt,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Read a list in a foreign format into certlab's format.
    Import {
        file: PathBuf,
        /// The format of FILE [default: guessed from its name and content].
        #[arg(long = "from-format", value_enum)]
        from_format: Option<ListFmt>,
        #[arg(long = "to", value_enum, default_value = "toml")]
        to: ListFmt,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write a list in another format.
    Export {
        file: PathBuf,
        #[arg(long = "to", value_enum)]
        to: ListFmt,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The union of several lists.
    Merge {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long = "to", value_enum, default_value = "toml")]
        to: ListFmt,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Symbols added, removed and CRC-changed between two lists (exit 1 when any was removed).
    Diff {
        old: PathBuf,
        new: PathBuf,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Print a list.
    Show {
        file: PathBuf,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
}

/// Runs a `kabi` subcommand; returns the exit code. An unreadable input
/// is exit 2, a corrupt one 3 (`From<certlab_kabi::Error> for CliError`).
pub fn run(cmd: KabiCmd) -> Result<i32, CliError> {
    execute(cmd)
}

fn execute(cmd: KabiCmd) -> Result<i32, CliError> {
    match cmd {
        KabiCmd::Check {
            kernels,
            allowlist,
            with,
            format,
            cache,
            no_cache,
            inputs,
        } => {
            let cache = module_cache(cache, no_cache);
            let (code, text) = check(
                &kernels,
                allowlist.as_deref(),
                &with,
                format,
                &inputs,
                cache.as_ref(),
            )?;
            print_text(&text)?;
            Ok(code)
        }
        KabiCmd::Diff {
            old,
            new,
            allowlist,
            format,
            explain,
        } => {
            let code = diff_cmd(&old, &new, allowlist.as_deref(), format)?;
            if explain {
                explain_cmd::diff_explain(&old, &new, format)?;
            }
            Ok(code)
        }
        KabiCmd::Explain {
            old,
            new,
            symbols,
            format,
        } => explain_cmd::explain_cmd(&old, &new, &symbols, format),
        KabiCmd::Allowlist(cmd) => allowlist_cmd(cmd),
    }
}

fn kernel_paths(spec: &str) -> Vec<PathBuf> {
    spec.split(',')
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect()
}

fn load_kernel(spec: &str) -> Result<Kernel, CliError> {
    Ok(Kernel::load(&kernel_paths(spec))?)
}

/// The module cache `check` uses: `--cache DIR`, else the default
/// directory (`$XDG_CACHE_HOME/certlab/kabi-cache`, else
/// `~/.cache/certlab/kabi-cache`); none with `--no-cache` or when neither
/// variable is set.
pub(crate) fn module_cache(dir: Option<PathBuf>, disabled: bool) -> Option<ModuleCache> {
    if disabled {
        return None;
    }
    let dir = dir.or_else(|| {
        let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
        std::env::var_os("XDG_CACHE_HOME")
            .and_then(absolute)
            .or_else(|| {
                std::env::var_os("HOME")
                    .and_then(absolute)
                    .map(|h| h.join(".cache"))
            })
            .map(|c| c.join("certlab").join("kabi-cache"))
    })?;
    Some(ModuleCache::new(dir))
}

#[derive(Serialize)]
struct InputDigest {
    path: String,
    sha256: String,
}

/// The sha256 of every input (a directory: of its files' digests), each
/// path once, in order; files hashed in parallel, unchanged ones taken from
/// the module cache's digest cache.
fn digests(paths: &[PathBuf], cache: Option<&ModuleCache>) -> Result<Vec<InputDigest>, CliError> {
    // Thousands of file arguments: a set, not a scan of the list per path.
    let mut seen: HashSet<&Path> = HashSet::with_capacity(paths.len());
    let unique: Vec<&PathBuf> = paths.iter().filter(|p| seen.insert(p.as_path())).collect();
    let digests = sha256_paths(&unique, cache.map(ModuleCache::digests).as_ref())?;
    Ok(unique
        .into_iter()
        .zip(digests)
        .map(|(p, sha256)| InputDigest {
            path: p.display().to_string(),
            sha256,
        })
        .collect())
}

#[derive(Serialize)]
struct KernelJson<'a> {
    name: &'a str,
    release: Option<&'a str>,
    arch: Option<&'a str>,
    vermagic: Option<&'a str>,
    modversions: bool,
    exports: usize,
    sources: &'a [String],
}

fn kernel_json(k: &Kernel) -> KernelJson<'_> {
    KernelJson {
        name: &k.name,
        release: k.release.as_deref(),
        arch: k.arch.as_deref(),
        vermagic: k.vermagic.as_deref(),
        modversions: k.modversions(),
        exports: k.symvers.len(),
        sources: &k.sources,
    }
}

fn print_json<T: Serialize>(value: &T) -> Result<(), CliError> {
    print_text(&json_text(value)?)
}

fn json_text<T: Serialize>(value: &T) -> Result<String, CliError> {
    json_text_sized(value, 0)
}

/// [`json_text`] into a buffer of `capacity` bytes to start with (a
/// report of thousands of modules grows by doubling otherwise: each step
/// copies the text into fresh pages).
fn json_text_sized<T: Serialize>(value: &T, capacity: usize) -> Result<String, CliError> {
    let mut out = Vec::with_capacity(capacity);
    serde_json::to_writer_pretty(&mut out, value)?;
    out.push(b'\n');
    // serde_json writes only UTF-8.
    String::from_utf8(out).map_err(|e| CliError::msg(exit::INFRA, format!("JSON output: {e}")))
}

fn print_text(s: &str) -> Result<(), CliError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(s.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// `kabi check`: the exit code and the report text (human or JSON).
pub(crate) fn check(
    kernel_specs: &[String],
    allowlist: Option<&Path>,
    with: &[PathBuf],
    format: Format,
    inputs: &[PathBuf],
    cache: Option<&ModuleCache>,
) -> Result<(i32, String), CliError> {
    // The JSON records the sha256 of every input: hashed on threads of
    // their own while the inputs are read and checked.
    let input_paths: Vec<PathBuf> = kernel_specs
        .iter()
        .flat_map(|s| kernel_paths(s))
        .chain(allowlist.map(Path::to_path_buf))
        .chain(with.iter().cloned())
        .chain(inputs.iter().cloned())
        .collect();
    // One walk of each input directory for the digests and the reader.
    let pass = cache.map(ModuleCache::one_pass);
    let cache = pass.as_ref();
    std::thread::scope(|scope| {
        let hashing = (format == Format::Json).then(|| {
            let (paths, cache) = (&input_paths, cache);
            scope.spawn(move || digests(paths, cache))
        });
        let digests = move || match hashing {
            Some(h) => h
                .join()
                .unwrap_or_else(|_| Err(CliError::msg(exit::INFRA, "input digests failed"))),
            None => Ok(Vec::new()),
        };
        check_inner(
            kernel_specs,
            allowlist,
            with,
            format,
            inputs,
            cache,
            digests,
        )
    })
}

/// The modules of every input, in order; an input without any is an error.
fn read_inputs(inputs: &[PathBuf], cache: Option<&ModuleCache>) -> Result<Vec<Module>, CliError> {
    let mut modules: Vec<Module> = Vec::new();
    for p in inputs {
        let found = load_modules_cached(p, cache)?;
        if found.is_empty() {
            return Err(certlab_kabi::Error::Unrecognised {
                path: p.display().to_string(),
                msg: "no kernel modules found".to_string(),
            }
            .into());
        }
        modules.extend(found);
    }
    Ok(modules)
}

/// [`check`] once the digests are under way; `digests` waits for them.
fn check_inner(
    kernel_specs: &[String],
    allowlist: Option<&Path>,
    with: &[PathBuf],
    format: Format,
    inputs: &[PathBuf],
    cache: Option<&ModuleCache>,
    digests: impl FnOnce() -> Result<Vec<InputDigest>, CliError>,
) -> Result<(i32, String), CliError> {
    // The kernels (Module.symvers) are read while the modules are: the
    // errors are reported in the order of the command line all the same.
    let (kernels, list, mut modules) = std::thread::scope(|scope| {
        let kernels = scope.spawn(|| {
            kernel_specs
                .iter()
                .map(|s| Kernel::load_cached(&kernel_paths(s), cache))
                .collect::<Result<Vec<_>, _>>()
        });
        let modules = read_inputs(inputs, cache);
        let kernels = kernels.join().unwrap_or_else(|_| {
            Err(certlab_kabi::Error::Unrecognised {
                path: kernel_specs.join(" "),
                msg: "reading the kernel failed".to_string(),
            })
        });
        let kernels = kernels?;
        let list = allowlist.map(|p| Allowlist::read(p, None)).transpose()?;
        Ok::<_, CliError>((kernels, list, modules?))
    })?;
    // Modules shipped together resolve each other's symbols: the checked
    // ones first, then the --with ones, in one list (no copies).
    let checked = modules.len();
    for p in with {
        modules.extend(load_modules_cached(p, cache)?);
    }
    let all = modules;
    let (alongside, modules) = (&all[..], &all[..checked]);

    let mut reports: Vec<ModuleReport> = Vec::new();
    for k in &kernels {
        let mut checker = Checker::new(k).with_modules(alongside);
        if let Some(l) = &list {
            checker = checker.with_allowlist(l);
        }
        reports.extend(checker.check_all(modules));
    }
    let incompatible = reports.iter().filter(|r| !r.compatible).count();
    let code = if incompatible > 0 {
        exit::TEST_FAILURE
    } else {
        exit::OK
    };

    let text = match format {
        Format::Json => {
            #[derive(Serialize)]
            struct Summary {
                checks: usize,
                compatible: usize,
                incompatible: usize,
            }
            #[derive(Serialize)]
            struct Out<'a> {
                command: &'static str,
                inputs: Vec<InputDigest>,
                kernels: Vec<KernelJson<'a>>,
                modules: &'a [ModuleReport],
                summary: Summary,
            }
            // ~290 bytes per module (its report and its input's digest),
            // measured on a kernel's tree of 4,023.
            let capacity = 320 * reports.len() + 4096;
            json_text_sized(
                &Out {
                    command: "kabi check",
                    inputs: digests()?,
                    kernels: kernels.iter().map(kernel_json).collect(),
                    modules: &reports,
                    summary: Summary {
                        checks: reports.len(),
                        compatible: reports.len() - incompatible,
                        incompatible,
                    },
                },
                capacity,
            )?
        }
        Format::Human => {
            let mut s = String::new();
            for k in &kernels {
                if !k.modversions() {
                    let _ = writeln!(
                        s,
                        "note: {} was built without modversions (all CRCs 0): presence-only checking",
                        k.name
                    );
                }
            }
            for r in &reports {
                let verdict = if r.compatible { "ok  " } else { "FAIL" };
                let _ = writeln!(s, "{verdict} {} on {} ({})", r.name, r.kernel, r.path);
                for p in &r.problems {
                    let kind = p.kind.as_str();
                    let sym = if p.symbol.is_empty() {
                        String::new()
                    } else {
                        format!("{}: ", p.symbol)
                    };
                    let _ = write!(s, "     {kind:<10} {sym}{}", p.message);
                    match (&p.expected, &p.found) {
                        (Some(e), Some(f)) => {
                            let _ = write!(s, " (kernel {e}, module {f})");
                        }
                        (Some(e), None) => {
                            let _ = write!(s, " (kernel {e})");
                        }
                        _ => {}
                    }
                    let _ = writeln!(s, "\n                fix: {}", p.fix);
                }
                for w in &r.warnings {
                    if !w.symbol.is_empty() {
                        let _ = writeln!(s, "     warning    {}", w.message);
                    }
                }
            }
            if kernels.len() > 1 {
                let _ = writeln!(s, "\nmatrix (module × kernel):");
                let _ = write!(s, "{:<32}", "module");
                for k in &kernels {
                    let _ = write!(s, " {:<20}", k.name);
                }
                s.push('\n');
                for (i, m) in modules.iter().enumerate() {
                    let _ = write!(s, "{:<32}", m.name);
                    for (j, _) in kernels.iter().enumerate() {
                        let ok = reports
                            .get(j * modules.len() + i)
                            .is_some_and(|r| r.compatible);
                        let _ = write!(s, " {:<20}", if ok { "ok" } else { "FAIL" });
                    }
                    s.push('\n');
                }
            }
            let _ = writeln!(
                s,
                "{} of {} checks compatible, {incompatible} incompatible",
                reports.len() - incompatible,
                reports.len()
            );
            s
        }
        Format::Junit => certlab_kabi::junit::check_junit(&reports),
    };
    // Half a million names are freed on another thread while the report
    // is printed (a one-shot command exits before it is done).
    let _ = std::thread::Builder::new().spawn(move || drop((reports, all, kernels)));
    Ok((code, text))
}

fn diff_cmd(
    old: &str,
    new: &str,
    allowlist: Option<&Path>,
    format: Format,
) -> Result<i32, CliError> {
    let (o, n) = (load_kernel(old)?, load_kernel(new)?);
    let list = allowlist.map(|p| Allowlist::read(p, None)).transpose()?;
    let d = diff(&o, &n, list.as_ref());
    let breaks = if list.is_some() {
        !d.blocking.is_empty()
    } else {
        !(d.removed.is_empty()
            && d.crc_changed.is_empty()
            && d.export_type_changed.is_empty()
            && d.namespace_changed.is_empty())
    };
    match format {
        Format::Json => {
            #[derive(Serialize)]
            struct Out<'a> {
                command: &'static str,
                inputs: Vec<InputDigest>,
                old_kernel: KernelJson<'a>,
                new_kernel: KernelJson<'a>,
                #[serde(flatten)]
                diff: &'a KernelDiff,
                release_blocking: bool,
            }
            let paths: Vec<PathBuf> = kernel_paths(old)
                .into_iter()
                .chain(kernel_paths(new))
                .chain(allowlist.map(Path::to_path_buf))
                .collect();
            print_json(&Out {
                command: "kabi diff",
                inputs: digests(&paths, None)?,
                old_kernel: kernel_json(&o),
                new_kernel: kernel_json(&n),
                diff: &d,
                release_blocking: list.is_some() && !d.blocking.is_empty(),
            })?;
        }
        Format::Human => print_text(&diff_text(&d, list.is_some()))?,
        Format::Junit => print_text(&certlab_kabi::junit::diff_junit(&d, list.as_ref()))?,
    }
    Ok(if breaks { exit::TEST_FAILURE } else { exit::OK })
}

fn diff_text(d: &KernelDiff, with_list: bool) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "kabi diff {} → {}", d.old, d.new);
    if !d.crcs_compared {
        let _ = writeln!(
            s,
            "note: a kernel was built without modversions: CRCs not compared"
        );
    }
    let mark = |al: bool| if al { " [allowlisted]" } else { "" };
    for e in &d.added {
        let _ = writeln!(
            s,
            "added     {} ({}, {})",
            e.symbol, e.module, e.export_type
        );
    }
    for e in &d.removed {
        let _ = writeln!(
            s,
            "removed   {} ({}){}",
            e.symbol,
            e.module,
            mark(e.allowlisted)
        );
    }
    for (label, v) in [
        ("crc", &d.crc_changed),
        ("type", &d.export_type_changed),
        ("namespace", &d.namespace_changed),
        ("module", &d.module_changed),
    ] {
        for c in v {
            let _ = writeln!(
                s,
                "{label:<9} {}: {} → {}{}",
                c.symbol,
                c.old,
                c.new,
                mark(c.allowlisted)
            );
        }
    }
    let _ = writeln!(
        s,
        "{} added, {} removed, {} CRC changed, {} export type changed, {} namespace changed, {} moved",
        d.added.len(),
        d.removed.len(),
        d.crc_changed.len(),
        d.export_type_changed.len(),
        d.namespace_changed.len(),
        d.module_changed.len()
    );
    if with_list {
        if d.blocking.is_empty() {
            let _ = writeln!(s, "no allowlisted symbol broke");
        } else {
            let _ = writeln!(
                s,
                "RELEASE-BLOCKING: {} allowlisted symbols broke: {}",
                d.blocking.len(),
                d.blocking.join(", ")
            );
        }
    }
    s
}

fn write_out(text: &str, out: Option<&Path>) -> Result<(), CliError> {
    match out {
        Some(p) => std::fs::write(p, text).map_err(|e| {
            CliError::infra(anyhow::Error::new(e).context(format!("cannot write {}", p.display())))
        }),
        None => print_text(text),
    }
}

fn allowlist_cmd(cmd: AllowlistCmd) -> Result<i32, CliError> {
    match cmd {
        AllowlistCmd::Generate {
            kernel,
            from,
            to,
            out,
        } => {
            let k = load_kernel(&kernel)?;
            let mut drivers = Vec::new();
            for p in &from {
                drivers.extend(load_modules(p)?);
            }
            let list = Allowlist::generate(&k, &drivers);
            write_out(&list.export(to.into()), out.as_deref())?;
            Ok(exit::OK)
        }
        AllowlistCmd::Import {
            file,
            from_format,
            to,
            out,
        } => {
            let list = Allowlist::read(&file, from_format.map(Into::into))?;
            write_out(&list.export(to.into()), out.as_deref())?;
            Ok(exit::OK)
        }
        AllowlistCmd::Export { file, to, out } => {
            let list = Allowlist::read(&file, None)?;
            write_out(&list.export(to.into()), out.as_deref())?;
            Ok(exit::OK)
        }
        AllowlistCmd::Merge { files, to, out } => {
            let mut merged: Option<Allowlist> = None;
            for f in &files {
                let l = Allowlist::read(f, None)?;
                match merged.as_mut() {
                    Some(m) => m.merge(l),
                    None => merged = Some(l),
                }
            }
            write_out(
                &merged.unwrap_or_default().export(to.into()),
                out.as_deref(),
            )?;
            Ok(exit::OK)
        }
        AllowlistCmd::Diff { old, new, format } => {
            let (o, n) = (Allowlist::read(&old, None)?, Allowlist::read(&new, None)?);
            let d: AllowlistDiff = o.diff(&n);
            match format {
                Format::Json => print_json(&d)?,
                Format::Human => {
                    let mut s = String::new();
                    for a in &d.added {
                        let _ = writeln!(s, "added     {a}");
                    }
                    for r in &d.removed {
                        let _ = writeln!(s, "removed   {r}");
                    }
                    for c in &d.crc_changed {
                        let _ = writeln!(s, "crc       {c}");
                    }
                    let _ = writeln!(
                        s,
                        "{} added, {} removed, {} CRC changed",
                        d.added.len(),
                        d.removed.len(),
                        d.crc_changed.len()
                    );
                    print_text(&s)?;
                }
                Format::Junit => return junit_unsupported("allowlist diff"),
            }
            Ok(if d.removed.is_empty() {
                exit::OK
            } else {
                exit::TEST_FAILURE
            })
        }
        AllowlistCmd::Show { file, format } => {
            let list = Allowlist::read(&file, None)?;
            match format {
                Format::Json => print_text(&list.export(ListFormat::Json))?,
                Format::Human => {
                    let mut s = String::new();
                    let _ = writeln!(
                        s,
                        "{} symbols (release {}, arch {})",
                        list.symbols.len(),
                        list.release.as_deref().unwrap_or("-"),
                        list.arch.as_deref().unwrap_or("-")
                    );
                    for sym in &list.symbols {
                        let crc = sym.crcs.first().map(|c| c.crc.as_str()).unwrap_or("-");
                        let _ = writeln!(
                            s,
                            "{:<48} {crc:<10} {:<17} {:<4} {}",
                            sym.name,
                            sym.export_type.map(|t| t.as_str()).unwrap_or("-"),
                            sym.used_by.len(),
                            sym.namespace.as_deref().unwrap_or("")
                        );
                    }
                    print_text(&s)?;
                }
                Format::Junit => return junit_unsupported("allowlist show"),
            }
            Ok(exit::OK)
        }
    }
}

/// `--format junit` is for the commands that have verdicts (check, diff).
fn junit_unsupported(command: &str) -> Result<i32, CliError> {
    Err(CliError::msg(
        exit::INFRA,
        format!("{command} has no JUnit output (use --format human or json)"),
    ))
}
