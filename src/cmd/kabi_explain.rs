//! `certlab kabi explain OLD NEW SYMBOL…` and `kabi diff --explain`: the
//! type-level reason for CRC changes, from the two kernels' BTF (vmlinux's
//! `.BTF`, found in the kernel image of the package or directory, and the
//! exporting module's split `.BTF` for module symbols). Wiring only.

use std::fmt::Write as _;
use std::path::PathBuf;

use certlab_kabi::btf::Btf;
use certlab_kabi::explain::{Explanation, TypeDiff};
use certlab_kabi::{vmlinuz, Error, Kernel};
use serde::Serialize;

use super::{kernel_paths, print_json, print_text, Fail, OutputFormat, EXIT_INCOMPATIBLE, EXIT_OK};

/// One kernel's vmlinux BTF and, to reach module symbols, the kernel.
struct KernelTypes {
    kernel: Kernel,
    vmlinux: Btf,
    image: String,
}

fn load(spec: &str) -> Result<KernelTypes, Fail> {
    let paths: Vec<PathBuf> = kernel_paths(spec);
    let (image, bytes) = vmlinuz::find_image(&paths)?.ok_or_else(|| Error::Unrecognised {
        path: spec.to_string(),
        msg: "no kernel image (vmlinuz, vmlinux, or /sys/kernel/btf/vmlinux) to read BTF from: give the linux-image package or its /boot".into(),
    })?;
    let vmlinux = vmlinuz::vmlinux_btf(&bytes, &image)?;
    let kernel = Kernel::load(&paths)?;
    Ok(KernelTypes {
        kernel,
        vmlinux,
        image,
    })
}

/// The split BTF of the module of `k` that exports `symbol`, when its file
/// can be read (modules of a kernel directory).
fn module_btf(k: &KernelTypes, symbol: &str) -> Option<Btf> {
    let m = k
        .kernel
        .modules
        .iter()
        .find(|m| m.exports.iter().any(|e| e.name == symbol))?;
    let bytes = std::fs::read(&m.path).ok()?;
    let raw = certlab_kabi::module::btf_section(&bytes, &m.path).ok()??;
    Btf::parse_split(&raw, &k.vmlinux, &m.path).ok()
}

fn explain_all(old: &KernelTypes, new: &KernelTypes, symbols: &[String]) -> Vec<Explanation> {
    let d = TypeDiff::new(&old.vmlinux, &new.vmlinux);
    // vmlinux symbols in parallel, in the library; module symbols one by
    // one against their module's split BTF.
    let mut out = d.explain_many(symbols);
    for (e, s) in out.iter_mut().zip(symbols) {
        if e.kind == "missing" {
            if let (Some(o), Some(n)) = (module_btf(old, s), module_btf(new, s)) {
                *e = TypeDiff::new(&o, &n).explain(s);
            }
        }
    }
    out
}

fn text(e: &[Explanation], limit: usize) -> String {
    let mut s = String::new();
    for x in e {
        let _ = writeln!(s, "{}:", x.symbol);
        if x.kind == "missing" {
            let _ = writeln!(
                s,
                "  not described by both kernels' BTF (pahole omits some functions and most variables)"
            );
            continue;
        }
        match (&x.old_decl, &x.new_decl) {
            (Some(o), Some(n)) if o != n => {
                let _ = writeln!(s, "  declaration: {o}\n            → {n}");
            }
            (_, Some(n)) => {
                let _ = writeln!(s, "  declaration: {n}");
            }
            _ => {}
        }
        let _ = writeln!(
            s,
            "  {} of the {} named types it reaches changed{}",
            x.changed.len(),
            x.reachable,
            if x.changed.is_empty() {
                " (the CRC change is not visible in BTF: a type's spelling, an attribute, or a type BTF drops)"
            } else {
                ", nearest first:"
            }
        );
        for c in x.changed.iter().take(limit) {
            let via = if c.via.is_empty() {
                String::new()
            } else {
                format!("  (via {})", c.via.join(" → "))
            };
            let _ = writeln!(s, "  {}{via}", c.change.ty);
            for l in c.change.lines() {
                let _ = writeln!(s, "      {l}");
            }
        }
        if x.changed.len() > limit {
            let rest: Vec<&str> = x.changed[limit..]
                .iter()
                .map(|c| c.change.ty.as_str())
                .collect();
            let _ = writeln!(s, "  … and {}", rest.join(", "));
        }
    }
    s
}

#[derive(Serialize)]
struct Out<'a> {
    command: &'static str,
    old_image: &'a str,
    new_image: &'a str,
    explanations: &'a [Explanation],
}

/// `kabi explain OLD NEW SYMBOL…`: exit 1 when a symbol reaches a changed type.
pub fn explain_cmd(
    old: &str,
    new: &str,
    symbols: &[String],
    format: OutputFormat,
) -> Result<i32, Fail> {
    let (o, n) = (load(old)?, load(new)?);
    let e = explain_all(&o, &n, symbols);
    match format {
        OutputFormat::Json => print_json(&Out {
            command: "kabi explain",
            old_image: &o.image,
            new_image: &n.image,
            explanations: &e,
        })?,
        _ => print_text(&text(&e, 5))?,
    }
    Ok(if e.iter().any(|x| !x.changed.is_empty()) {
        EXIT_INCOMPATIBLE
    } else {
        EXIT_OK
    })
}

/// `kabi diff --explain`: explanations of every CRC-changed symbol, after the diff.
pub fn diff_explain(old: &str, new: &str, format: OutputFormat) -> Result<(), Fail> {
    let (o, n) = (load(old)?, load(new)?);
    let d = certlab_kabi::diff(&o.kernel, &n.kernel, None);
    let symbols: Vec<String> = d.crc_changed.iter().map(|c| c.symbol.clone()).collect();
    let e = explain_all(&o, &n, &symbols);
    match format {
        OutputFormat::Json => print_json(&Out {
            command: "kabi diff --explain",
            old_image: &o.image,
            new_image: &n.image,
            explanations: &e,
        }),
        _ => print_text(&text(&e, 3)),
    }
}
