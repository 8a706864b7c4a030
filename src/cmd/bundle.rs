//! `certlab bundle …`: signed result bundles.

use std::path::{Path, PathBuf};

use crate::error::{CliError, Result};
use crate::exit;

#[derive(Debug, clap::Subcommand)]
pub enum BundleCmd {
    /// Verify a bundle's signature and every file's digest.
    Verify {
        file: PathBuf,
        /// Only accept bundles signed by this public key (SPKI PEM).
        #[arg(long)]
        pubkey: Option<PathBuf>,
    },
}

pub fn run(cmd: BundleCmd) -> Result<i32> {
    match cmd {
        BundleCmd::Verify { file, pubkey } => verify(&file, pubkey.as_deref()),
    }
}

fn verify(file: &Path, pubkey: Option<&Path>) -> Result<i32> {
    let trusted = match pubkey {
        Some(p) => Some(
            certlab_reports::load_public(p)
                .map_err(|e| CliError::bad_input(e).context("public key"))?,
        ),
        None => None,
    };
    let bytes =
        std::fs::read(file).map_err(|e| CliError::infra(e).context(file.display().to_string()))?;
    let v = certlab_reports::verify_bundle(&bytes, trusted.as_ref())
        .map_err(|e| CliError::from(e).context(file.display().to_string()))?;
    println!(
        "OK {}: {} files, signed by key {}{}",
        file.display(),
        v.files,
        v.key_id,
        if trusted.is_some() {
            " (trusted)"
        } else {
            " (key embedded in the bundle; pass --pubkey to pin it)"
        }
    );
    Ok(exit::OK)
}
