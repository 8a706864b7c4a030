//! `certlab runs …`: runs recorded in the lab store.

use crate::common::{db_url, runtime, DbArg};
use crate::display;
use crate::error::{failure, Result};
use crate::exit;
use crate::format::{text_format, Format};

#[derive(Debug, clap::Subcommand)]
pub enum RunsCmd {
    /// List recent runs, newest first.
    List {
        #[command(flatten)]
        db: DbArg,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long, default_value = "human", value_parser = text_format())]
        format: Format,
    },
    /// Show one run and its cases.
    Show {
        /// Run id or a unique prefix of it.
        id: String,
        #[command(flatten)]
        db: DbArg,
        #[arg(long, default_value = "human", value_parser = text_format())]
        format: Format,
    },
}

pub fn run(cmd: RunsCmd) -> Result<i32> {
    let rt = runtime()?;
    rt.block_on(async move {
        let (db, format) = match &cmd {
            RunsCmd::List { db, format, .. } | RunsCmd::Show { db, format, .. } => (db, *format),
        };
        let store = certlab_harness::Store::open(&db_url(db)?).await?;
        let code = match &cmd {
            RunsCmd::List { limit, .. } => {
                let rows = store.list_runs(*limit).await?;
                display::print_runs(&rows, format)?;
                exit::OK
            }
            RunsCmd::Show { id, .. } => {
                let detail = store
                    .get_run(id)
                    .await?
                    .ok_or_else(|| failure(exit::INFRA, format!("no run {id} in the store")))?;
                display::print_run(&detail, format)?;
                exit::OK
            }
        };
        store.close().await;
        Ok(code)
    })
}
