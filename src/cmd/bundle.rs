//! `certlab bundle …`: signed result bundles.
//!
//! `bundle verify` always says whom it trusts: the key of `--pubkey`, the
//! `*.pub` keys of `--trusted-keys DIR`, or by default the data directory's
//! own signing key plus `<data dir>/trusted-keys/*.pub`; `--any-key` checks
//! integrity only and says so. A valid signature by a key not trusted is bad
//! input (exit 3), as is a bundle that cannot be read.

use std::path::{Path, PathBuf};

use certlab_reports::{Trust, VerifyLimits, VerifyingKey};

use crate::common::data_dir;
use crate::error::{CliError, Result};
use crate::exit;

/// The folder of the data directory whose `*.pub` keys `bundle verify` trusts.
pub const TRUSTED_KEYS_DIR: &str = "trusted-keys";

#[derive(Debug, clap::Subcommand)]
pub enum BundleCmd {
    /// Verify a bundle's signature, its signer and every file's digest.
    ///
    /// Trusted signers: --pubkey FILE, or --trusted-keys DIR (every *.pub in
    /// it), or by default the data directory's own key
    /// (<data dir>/keys/certlab-signing.pub) plus <data dir>/trusted-keys/*.pub.
    /// --any-key checks integrity only. Exit 0 verified; 3 tampered, corrupt,
    /// unreadable, or signed by a key that is not trusted.
    Verify {
        /// The bundle file (bundle.tar).
        file: PathBuf,
        /// Trust only this public key (SPKI PEM).
        #[arg(long, group = "trust")]
        pubkey: Option<PathBuf>,
        /// Trust the public keys (*.pub, SPKI PEM) in this directory.
        #[arg(long, value_name = "DIR", group = "trust")]
        trusted_keys: Option<PathBuf>,
        /// Check integrity only: any valid signature is accepted, the signer is not checked.
        #[arg(long, group = "trust")]
        any_key: bool,
    },
    /// Submit a bundle to a certification portal; prints the submission's id, state and URL.
    ///
    /// The same bundle again gives its existing submission. Exit 0 accepted;
    /// 3 refused by the portal (tampered, untrusted key, …); 2 unreachable
    /// portal or a bad token.
    Submit {
        /// The bundle file (bundle.tar).
        file: PathBuf,
        /// The portal's URL (http://host:port or https://host).
        #[arg(long)]
        portal: String,
        /// The API token (`certlab portal user create` prints one); prefer the
        /// environment variable, which stays out of the process list.
        #[arg(long, env = "CERTLAB_PORTAL_TOKEN", hide_env_values = true)]
        token: String,
        #[arg(long, default_value = "human", value_parser = crate::format::text_format())]
        format: crate::format::Format,
    },
}

pub fn run(cmd: BundleCmd) -> Result<i32> {
    match cmd {
        BundleCmd::Verify {
            file,
            pubkey,
            trusted_keys,
            any_key,
        } => {
            let trust = if any_key {
                None
            } else if let Some(p) = pubkey {
                Some(TrustedKeys {
                    keys: vec![(load_public(&p)?, p.clone())],
                    from: format!("--pubkey {}", p.display()),
                })
            } else if let Some(dir) = trusted_keys {
                let mut keys = Vec::new();
                keys_in(&dir, &mut keys)?;
                Some(TrustedKeys {
                    keys,
                    from: format!("the keys in {}", dir.display()),
                })
            } else {
                Some(default_trust()?)
            };
            verify(&file, trust.as_ref())
        }
        BundleCmd::Submit {
            file,
            portal,
            token,
            format,
        } => super::submit::submit(&file, &portal, &token, format),
    }
}

/// The keys a verification trusts, each with the file it came from.
struct TrustedKeys {
    keys: Vec<(VerifyingKey, PathBuf)>,
    /// Where they came from, for messages.
    from: String,
}

fn load_public(p: &Path) -> Result<VerifyingKey> {
    certlab_reports::load_public(p).map_err(|e| CliError::bad_input(e).context("public key"))
}

/// Every `*.pub` of `dir`, sorted by file name.
fn keys_in(dir: &Path, keys: &mut Vec<(VerifyingKey, PathBuf)>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        CliError::bad_input(e).context(format!(
            "cannot read trusted keys directory {}",
            dir.display()
        ))
    })?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| {
            CliError::bad_input(e).context(format!(
                "cannot read trusted keys directory {}",
                dir.display()
            ))
        })?;
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "pub") {
            paths.push(path);
        }
    }
    paths.sort();
    for p in paths {
        keys.push((load_public(&p)?, p));
    }
    Ok(())
}

/// The data directory's own key (its `.pub`, else derived from its `.key`)
/// and `<data dir>/trusted-keys/*.pub` when that directory exists.
fn default_trust() -> Result<TrustedKeys> {
    let data = data_dir()?;
    let own_dir = data.join("keys");
    let mut keys = Vec::new();
    let public = own_dir.join(certlab_reports::PUBLIC_KEY_FILE);
    let private = own_dir.join(certlab_reports::PRIVATE_KEY_FILE);
    if public.exists() {
        keys.push((load_public(&public)?, public.clone()));
    } else if private.exists() {
        let key = certlab_reports::load_private(&private)
            .map_err(|e| CliError::bad_input(e).context("signing key"))?;
        keys.push((key.verifying_key(), private));
    }
    let extra = data.join(TRUSTED_KEYS_DIR);
    if extra.exists() {
        keys_in(&extra, &mut keys)?;
    }
    Ok(TrustedKeys {
        keys,
        from: format!(
            "the data directory's key ({}) and {}/*.pub",
            public.display(),
            extra.display()
        ),
    })
}

fn verify(file: &Path, trust: Option<&TrustedKeys>) -> Result<i32> {
    let reader = std::fs::File::open(file).map_err(|e| {
        CliError::bad_input(e).context(format!("cannot read bundle {}", file.display()))
    })?;
    let keys: Vec<VerifyingKey> = trust
        .map(|t| t.keys.iter().map(|(k, _)| *k).collect())
        .unwrap_or_default();
    let mode = match trust {
        Some(_) => Trust::Keys(&keys),
        None => Trust::AnyKey,
    };
    let v = certlab_reports::verify_bundle_reader(reader, mode, &VerifyLimits::default()).map_err(
        |e| {
            let untrusted = matches!(e, certlab_reports::BundleError::UntrustedKey { .. });
            let err = CliError::from(e);
            match trust {
                Some(t) if untrusted => err.context(format!(
                    "{} (trusting {}; pass --pubkey, --trusted-keys or --any-key to choose)",
                    file.display(),
                    t.from
                )),
                _ => err.context(file.display().to_string()),
            }
        },
    )?;
    let whom = match trust {
        None => "; integrity only, signer not checked (--any-key)".to_string(),
        Some(t) => {
            let from = t
                .keys
                .iter()
                .find(|(k, _)| *k == v.public_key)
                .map(|(_, p)| p.display().to_string())
                .unwrap_or_default();
            format!(", trusted ({from})")
        }
    };
    println!(
        "OK {}: {} files, signed by key {}{whom}",
        file.display(),
        v.files,
        v.key_id,
    );
    Ok(exit::OK)
}
