//! `certlab perf baseline …`: performance baselines in the lab store.
//!
//! `set --from-run RUN` keeps the samples of a finished run's passed cases
//! as the baseline of its machine (or, with `--scope platform`, of its
//! hardware platform); later runs of those cases on that machine (or
//! platform) are compared with it. `list` shows the baselines in force
//! (`--all`: every one ever set), `show ID` one metric with its samples.

use certlab_harness::{BaselineRow, Store};
use certlab_reports::{BaselineScope, Better};

use crate::common::{db_url, runtime, DbArg};
use crate::error::{failure, CliError, Result};
use crate::exit;
use crate::format::{text_format, Format};

#[derive(Debug, clap::Subcommand)]
pub enum BaselineCmd {
    /// Keep a finished run's performance samples as the baseline of its
    /// machine (or of its platform): every case that passed, each metric it
    /// sampled 3 times or more.
    Set {
        /// Run id or a unique prefix of it.
        #[arg(long = "from-run", value_name = "RUN")]
        from_run: String,
        /// Whose baseline: the machine's (its name in the lab; a local
        /// run's local:HOSTNAME) or the platform's (system vendor and
        /// product, CPU family and model).
        #[arg(long, default_value = "machine", value_parser = scope)]
        scope: BaselineScope,
        #[command(flatten)]
        db: DbArg,
        #[arg(long, default_value = "human", value_parser = text_format())]
        format: Format,
    },
    /// List baselines, newest first: the ones in force, or every one with --all.
    List {
        /// Only this scope (machine or platform).
        #[arg(long, value_parser = scope)]
        scope: Option<BaselineScope>,
        /// Only this machine name or platform key.
        #[arg(long)]
        key: Option<String>,
        /// Also the baselines replaced by newer ones.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        db: DbArg,
        #[arg(long, default_value = "human", value_parser = text_format())]
        format: Format,
    },
    /// Show one baseline metric and its samples.
    Show {
        /// Baseline id or a unique prefix of it.
        id: String,
        #[command(flatten)]
        db: DbArg,
        #[arg(long, default_value = "human", value_parser = text_format())]
        format: Format,
    },
}

fn scope(s: &str) -> std::result::Result<BaselineScope, String> {
    s.parse()
}

/// Runs a `perf baseline` subcommand.
pub fn run(cmd: BaselineCmd) -> Result<i32> {
    let rt = runtime()?;
    rt.block_on(async move {
        let db = match &cmd {
            BaselineCmd::Set { db, .. }
            | BaselineCmd::List { db, .. }
            | BaselineCmd::Show { db, .. } => db,
        };
        let store = Store::open(&db_url(db)?).await?;
        let code = match &cmd {
            BaselineCmd::Set {
                from_run,
                scope,
                format,
                ..
            } => {
                let rows = store
                    .set_baselines_from_run(from_run, *scope, time::OffsetDateTime::now_utc())
                    .await?;
                print_rows(&rows, *format)?;
                exit::OK
            }
            BaselineCmd::List {
                scope,
                key,
                all,
                format,
                ..
            } => {
                let rows = store.list_baselines(*scope, key.as_deref(), *all).await?;
                print_rows(&rows, *format)?;
                exit::OK
            }
            BaselineCmd::Show { id, format, .. } => {
                let row = store.get_baseline(id).await?.ok_or_else(|| {
                    failure(exit::INFRA, format!("no baseline {id} in the store"))
                })?;
                match format {
                    Format::Json => println!(
                        "{}",
                        serde_json::to_string_pretty(&row).map_err(CliError::infra)?
                    ),
                    Format::Human | Format::Junit => print!("{}", show(&row)),
                }
                exit::OK
            }
        };
        store.close().await;
        Ok(code)
    })
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn created(row: &BaselineRow) -> String {
    row.created
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| row.created.unix_timestamp().to_string())
}

fn print_rows(rows: &[BaselineRow], format: Format) -> Result<()> {
    if format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "baselines": rows }))
                .map_err(CliError::infra)?
        );
        return Ok(());
    }
    if rows.is_empty() {
        println!("no baselines");
        return Ok(());
    }
    let w =
        |f: fn(&BaselineRow) -> usize, min: usize| rows.iter().map(f).max().unwrap_or(0).max(min);
    let wu = w(|r| r.unit.chars().count(), 4);
    let (wk, wc, wm) = (
        w(|r| r.key.chars().count(), 3),
        w(|r| r.case_id.len(), 4),
        w(|r| r.metric.len(), 6),
    );
    println!(
        "{:<8}  {:<8}  {:<wk$}  {:<wc$}  {:<wm$}  {:>3}  {:>12}  {:<wu$}  {:<8}  KERNEL",
        "ID", "SCOPE", "KEY", "CASE", "METRIC", "N", "MEAN", "UNIT", "RUN"
    );
    for r in rows {
        println!(
            "{:<8}  {:<8}  {:<wk$}  {:<wc$}  {:<wm$}  {:>3}  {:>12.4e}  {:<wu$}  {:<8}  {}",
            r.id.chars()
                .rev()
                .take(8)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<String>(),
            r.scope.as_str(),
            r.key,
            r.case_id,
            r.metric,
            r.samples.len(),
            mean(&r.samples),
            r.unit,
            r.source_run.chars().take(8).collect::<String>(),
            r.kernel
        );
    }
    Ok(())
}

fn show(r: &BaselineRow) -> String {
    let better = match r.direction {
        Better::Higher => "higher is better",
        Better::Lower => "lower is better",
    };
    let samples: Vec<String> = r.samples.iter().map(|v| v.to_string()).collect();
    format!(
        "id            {}\nscope         {} {}\ncase          {}\nmetric        {} ({}, {better})\nsamples       {}\nmean          {}\nsource run    {}\nset           {}\nkernel        {}\nplan          {} {}\n",
        r.id,
        r.scope,
        r.key,
        r.case_id,
        r.metric,
        r.unit,
        samples.join(", "),
        mean(&r.samples),
        r.source_run,
        created(r),
        r.kernel,
        r.plan_id,
        r.plan_version
    )
}
