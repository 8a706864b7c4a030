//! `certlab certify` and `certlab keygen`: run a plan, publish signed results.

use std::path::{Path, PathBuf};

use crate::common::{data_dir, db_url, runtime, DbArg};
use crate::display;
use crate::error::{CliError, Result};
use crate::exit;
use crate::format::{text_format, Format};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("where").required(true).args(["local", "machine"])))]
pub struct CertifyArgs {
    /// Certify the machine certlab runs on.
    #[arg(long)]
    local: bool,
    /// Certify a machine of the lab inventory over SSH.
    #[arg(long, value_name = "NAME")]
    machine: Option<String>,
    /// The lab inventory (for --machine).
    #[arg(
        long,
        env = "CERTLAB_LAB",
        hide_env_values = true,
        default_value = "lab.toml"
    )]
    lab: PathBuf,
    /// A built-in plan name or a plan TOML file.
    #[arg(
        long,
        default_value = "server-basic",
        env = "CERTLAB_PLAN",
        hide_env_values = true
    )]
    plan: String,
    /// Output directory [default: ./certlab-results/<UTC timestamp>/].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Signing key (PKCS#8 PEM) [default: <data dir>/keys/certlab-signing.key, created on first use].
    #[arg(long, env = "CERTLAB_KEY", hide_env_values = true)]
    key: Option<PathBuf>,
    #[command(flatten)]
    db: DbArg,
    #[arg(long, default_value = "human", value_parser = text_format())]
    format: Format,
}

#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Directory for certlab-signing.key and certlab-signing.pub.
    #[arg(long)]
    out: PathBuf,
}

pub fn keygen(a: KeygenArgs) -> Result<i32> {
    let pair = certlab_reports::SigningKeyPair::generate();
    let (private, public) = pair.write_pair(&a.out).map_err(|e| {
        CliError::from(e).context(format!("writing a key pair to {}", a.out.display()))
    })?;
    println!(
        "key {}: private {} public {}",
        pair.key_id(),
        private.display(),
        public.display()
    );
    Ok(exit::OK)
}

/// Loads the signing key, creating the default one on first use.
pub fn signing_key(arg: Option<&Path>) -> Result<ed25519_dalek::SigningKey> {
    let load = |p: &Path| {
        certlab_reports::load_private(p).map_err(|e| CliError::bad_input(e).context("signing key"))
    };
    if let Some(p) = arg {
        return load(p);
    }
    let dir = data_dir()?.join("keys");
    let private = dir.join(certlab_reports::PRIVATE_KEY_FILE);
    if private.exists() {
        return load(&private);
    }
    let pair = certlab_reports::SigningKeyPair::generate();
    let (private, public) = match pair.write_pair(&dir) {
        Ok(paths) => paths,
        // Another process (a second daemon sharing this data directory)
        // created the key first: use its key, which appears whole.
        Err(_) if private.exists() => return load(&private),
        Err(e) => {
            return Err(CliError::infra(e).context(format!(
                "creating the default signing key in {}",
                dir.display()
            )))
        }
    };
    eprintln!(
        "certlab: created signing key {} at {} (public key {})",
        pair.key_id(),
        private.display(),
        public.display()
    );
    Ok(pair.signing_key().clone())
}

pub fn certify(a: CertifyArgs) -> Result<i32> {
    let plan = certlab_suites::Plan::load(&a.plan)?;
    let started = time::OffsetDateTime::now_utc();
    let out = match a.out {
        Some(o) => o,
        None => {
            let fmt =
                time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
            let stamp = started
                .format(&fmt)
                .map_err(|e| CliError::infra(e).context("formatting the timestamp"))?;
            PathBuf::from("certlab-results").join(stamp)
        }
    };
    let signer = signing_key(a.key.as_deref())?;
    let url = db_url(&a.db)?;
    let run_id = uuid::Uuid::now_v7().to_string();
    let format = a.format;
    let rt = runtime()?;
    let code = rt.block_on(async move {
        let store = certlab_harness::Store::open(&url).await?;
        let prepared = match &a.machine {
            Some(name) => crate::targets::machine(&a.lab, name, &store, &run_id).await?,
            None => crate::targets::local(),
        };
        let spec = certlab_harness::RunSpec {
            run_id: run_id.clone(),
            plan,
            target: prepared.target.clone(),
            out_dir: out,
            signer,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            case_retries: None,
            sut: None,
        };
        let mut progress = display::Progress::new(format);
        let mut on_event = |ev: &certlab_harness::RunEvent| progress.event(ev);
        let result = tokio::select! {
            r = certlab_harness::certify(spec, &store, &mut on_event) => Some(r),
            _ = tokio::signal::ctrl_c() => None,
        };
        let cleanup = prepared;
        let _ = tokio::task::spawn_blocking(move || cleanup.cleanup()).await;
        match result {
            None => {
                let _ = store
                    .mark_interrupted(
                        &run_id,
                        time::OffsetDateTime::now_utc(),
                        "interrupted by signal",
                    )
                    .await;
                eprintln!("certlab: interrupted; run {run_id} keeps the cases it finished");
                Ok(exit::INTERRUPTED)
            }
            Some(Err(e)) => {
                // The reason kept in the store is the whole chain, redacted.
                let e = CliError::from(e);
                let _ = store
                    .mark_interrupted(&run_id, time::OffsetDateTime::now_utc(), &e.to_string())
                    .await;
                Err(e)
            }
            Some(Ok((record, outputs))) => {
                match format {
                    Format::Json => println!("{}", serde_json::to_string_pretty(&record)?),
                    Format::Human | Format::Junit => display::print_summary(&record, &outputs),
                }
                store.close().await;
                Ok(match record.summary.outcome {
                    certlab_reports::Outcome::Pass => exit::OK,
                    certlab_reports::Outcome::Fail => exit::TEST_FAILURE,
                    certlab_reports::Outcome::Error => exit::INFRA,
                })
            }
        }
    });
    // A case abandoned after its timeout may still hold a blocking thread.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}
