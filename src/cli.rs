//! Command-line definition and the subcommands' wiring.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::display;
use crate::exit;

/// An error that carries its exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

pub fn failure(code: i32, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Failure {
        code,
        message: message.into(),
    })
}

#[derive(Debug, Parser)]
#[command(
    name = "certlab",
    version,
    about = "Hardware compatibility certification lab"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Certify a machine with a plan and write results, reports and a signed bundle.
    Certify(CertifyArgs),
    /// Write a new ed25519 signing key pair.
    Keygen {
        /// Directory for certlab-signing.key and certlab-signing.pub.
        #[arg(long)]
        out: PathBuf,
    },
    /// Signed result bundles.
    #[command(subcommand)]
    Bundle(BundleCmd),
    /// Hardware identification: CPU platform, PCI devices and drivers, accelerators, DMI.
    #[command(subcommand)]
    Hwdb(crate::cmd::hwdb::HwdbCmd),
    /// The lab: inventory and machines.
    #[command(subcommand)]
    Lab(crate::cmd::lab::LabCmd),
    /// Kernel ABI: check drivers against kernels, diff kernels, manage allowlists.
    #[command(subcommand)]
    Kabi(crate::cmd::kabi::KabiCmd),
    /// Runs recorded in the lab store.
    #[command(subcommand)]
    Runs(RunsCmd),
    /// Helpers that run on the system under test.
    #[command(subcommand, hide = true)]
    Agent(AgentCmd),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("where").required(true).args(["local", "machine"])))]
struct CertifyArgs {
    /// Certify the machine certlab runs on.
    #[arg(long)]
    local: bool,
    /// Certify a machine of the lab inventory over SSH.
    #[arg(long, value_name = "NAME")]
    machine: Option<String>,
    /// The lab inventory (for --machine).
    #[arg(long, env = "CERTLAB_LAB", default_value = "lab.toml")]
    lab: PathBuf,
    /// A built-in plan name or a plan TOML file.
    #[arg(long, default_value = "server-basic", env = "CERTLAB_PLAN")]
    plan: String,
    /// Output directory [default: ./certlab-results/<UTC timestamp>/].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Signing key (PKCS#8 PEM) [default: <data dir>/keys/certlab-signing.key, created on first use].
    #[arg(long, env = "CERTLAB_KEY")]
    key: Option<PathBuf>,
    #[command(flatten)]
    db: DbArg,
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
}

#[derive(Debug, Args)]
pub(crate) struct DbArg {
    /// Lab store: a SQLite path or URL (sqlite://…) or a PostgreSQL URL (postgres://…)
    /// [default: <data dir>/lab.db].
    #[arg(long, env = "CERTLAB_DB")]
    pub(crate) db: Option<String>,
}

#[derive(Debug, Subcommand)]
enum BundleCmd {
    /// Verify a bundle's signature and every file's digest.
    Verify {
        file: PathBuf,
        /// Only accept bundles signed by this public key (SPKI PEM).
        #[arg(long)]
        pubkey: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum RunsCmd {
    /// List recent runs, newest first.
    List {
        #[command(flatten)]
        db: DbArg,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Show one run and its cases.
    Show {
        /// Run id or a unique prefix of it.
        id: String,
        #[command(flatten)]
        db: DbArg,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
}

#[derive(Debug, Subcommand)]
enum AgentCmd {
    /// Pattern-verifying memory test; prints a report the mem-pattern check reads.
    Memtest {
        #[arg(long)]
        mib: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// certlab's data directory: `$CERTLAB_DATA_DIR`, else the user's data dir.
fn data_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("CERTLAB_DATA_DIR") {
        return Ok(PathBuf::from(d));
    }
    dirs::data_dir().map(|d| d.join("certlab")).ok_or_else(|| {
        failure(
            exit::INFRA,
            "no data directory: set CERTLAB_DATA_DIR or HOME",
        )
    })
}

pub(crate) fn db_url(arg: &DbArg) -> Result<String> {
    match &arg.db {
        Some(u) => Ok(u.clone()),
        None => Ok(data_dir()?.join("lab.db").display().to_string()),
    }
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .build()
        .context("starting the async runtime")
}

/// Runs the parsed command line and returns the exit code.
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Certify(a) => certify(a),
        Command::Keygen { out } => {
            let pair = certlab_reports::SigningKeyPair::generate();
            let (private, public) = pair
                .write_pair(&out)
                .with_context(|| format!("writing a key pair to {}", out.display()))?;
            println!(
                "key {}: private {} public {}",
                pair.key_id(),
                private.display(),
                public.display()
            );
            Ok(exit::OK)
        }
        Command::Bundle(BundleCmd::Verify { file, pubkey }) => verify(&file, pubkey.as_deref()),
        Command::Runs(cmd) => runs(cmd),
        Command::Kabi(cmd) => crate::cmd::kabi::run(cmd),
        Command::Hwdb(cmd) => crate::cmd::hwdb::run(cmd),
        Command::Lab(cmd) => crate::cmd::lab::run(cmd),
        Command::Agent(AgentCmd::Memtest { mib, seed }) => {
            let report = certlab_suites::checks::memtest::run(mib, seed)
                .map_err(|e| failure(exit::INFRA, e))?;
            print!("{}", report.to_text());
            Ok(if report.errors() == 0 {
                exit::OK
            } else {
                exit::TEST_FAILURE
            })
        }
    }
}

/// Loads the signing key, creating the default one on first use.
fn signing_key(arg: Option<&Path>) -> Result<ed25519_dalek::SigningKey> {
    if let Some(p) = arg {
        return certlab_reports::load_private(p)
            .map_err(|e| failure(exit::BAD_INPUT, format!("signing key: {e}")));
    }
    let dir = data_dir()?.join("keys");
    let private = dir.join(certlab_reports::PRIVATE_KEY_FILE);
    if private.exists() {
        return certlab_reports::load_private(&private)
            .map_err(|e| failure(exit::BAD_INPUT, format!("signing key: {e}")));
    }
    let pair = certlab_reports::SigningKeyPair::generate();
    let (private, public) = pair
        .write_pair(&dir)
        .with_context(|| format!("creating the default signing key in {}", dir.display()))?;
    eprintln!(
        "certlab: created signing key {} at {} (public key {})",
        pair.key_id(),
        private.display(),
        public.display()
    );
    Ok(pair.signing_key().clone())
}

fn certify(a: CertifyArgs) -> Result<i32> {
    let plan =
        certlab_suites::Plan::load(&a.plan).map_err(|e| failure(exit::INFRA, e.to_string()))?;
    let started = time::OffsetDateTime::now_utc();
    let out = match a.out {
        Some(o) => o,
        None => {
            let fmt =
                time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
            let stamp = started.format(&fmt).context("formatting the timestamp")?;
            PathBuf::from("certlab-results").join(stamp)
        }
    };
    let signer = signing_key(a.key.as_deref())?;
    let url = db_url(&a.db)?;
    let run_id = uuid::Uuid::now_v7().to_string();
    let format = a.format;
    let rt = runtime()?;
    let code = rt.block_on(async move {
        let store = certlab_harness::Store::open(&url)
            .await
            .map_err(|e| failure(exit::INFRA, e.to_string()))?;
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
                let _ = store
                    .mark_interrupted(&run_id, time::OffsetDateTime::now_utc(), &e.to_string())
                    .await;
                Err(failure(exit::INFRA, e.to_string()))
            }
            Some(Ok((record, outputs))) => {
                match format {
                    Format::Json => println!(
                        "{}",
                        serde_json::to_string_pretty(&record).context("serializing the record")?
                    ),
                    Format::Human => display::print_summary(&record, &outputs),
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

fn verify(file: &Path, pubkey: Option<&Path>) -> Result<i32> {
    let trusted = match pubkey {
        Some(p) => Some(
            certlab_reports::load_public(p)
                .map_err(|e| failure(exit::BAD_INPUT, format!("public key: {e}")))?,
        ),
        None => None,
    };
    let bytes = std::fs::read(file)
        .map_err(|e| failure(exit::INFRA, format!("{}: {e}", file.display())))?;
    match certlab_reports::verify_bundle(&bytes, trusted.as_ref()) {
        Ok(v) => {
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
        Err(e) => Err(failure(exit::BAD_INPUT, format!("{}: {e}", file.display()))),
    }
}

fn runs(cmd: RunsCmd) -> Result<i32> {
    let rt = runtime()?;
    rt.block_on(async move {
        let (db, format) = match &cmd {
            RunsCmd::List { db, format, .. } | RunsCmd::Show { db, format, .. } => (db, *format),
        };
        let store = certlab_harness::Store::open(&db_url(db)?)
            .await
            .map_err(|e| failure(exit::INFRA, e.to_string()))?;
        let code = match &cmd {
            RunsCmd::List { limit, .. } => {
                let rows = store
                    .list_runs(*limit)
                    .await
                    .map_err(|e| failure(exit::INFRA, e.to_string()))?;
                display::print_runs(&rows, format)?;
                exit::OK
            }
            RunsCmd::Show { id, .. } => {
                let detail = store
                    .get_run(id)
                    .await
                    .map_err(|e| failure(exit::INFRA, e.to_string()))?
                    .ok_or_else(|| failure(exit::INFRA, format!("no run {id} in the store")))?;
                display::print_run(&detail, format)?;
                exit::OK
            }
        };
        store.close().await;
        Ok(code)
    })
}
