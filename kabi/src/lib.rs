//! certlab's kernel-ABI engine.
//!
//! Reads what the kernel's module loader reads — `Module.symvers` (every
//! layout, gzip'ed or not), kernel modules (`.ko` and its compressed forms,
//! ELF32/64, either endianness), kernels as directories or `.deb` packages —
//! and answers offline the questions the loader answers at `insmod` time
//! ([`check`]), what changed between two kernels ([`diff`]), and which
//! symbols the OS promises to keep stable ([`allowlist`]).
//!
//! Invariant: this crate is pure. It reads the bytes and paths it is given
//! and returns values; it never spawns processes, opens sockets or reads the
//! clock.

pub mod allowlist;
pub mod btf;
pub mod check;
pub mod compress;
pub mod diff;
pub mod digest;
pub mod error;
pub mod explain;
pub mod junit;
pub mod kernel;
mod mmap;
pub mod module;
mod parsed;
pub mod rpm;
mod sparse;
pub mod symvers;
pub mod vmlinuz;
mod walk;

pub use allowlist::{AllowedSymbol, Allowlist, ListFormat};
pub use check::{Checker, ModuleReport, Problem, ProblemKind};
pub use compress::Limits;
pub use diff::{diff, KernelDiff};
pub use error::{Error, Result};
pub use kernel::{load_modules, load_modules_cached, load_modules_with, Kernel, KernelStats};
pub use module::{Import, Modinfo, Module, ModuleCache, Version};
pub use symvers::{Export, ExportRef, ExportType, Symvers};
