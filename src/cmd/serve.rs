//! `certlab serve`: the certification portal over HTTP, until SIGTERM or
//! SIGINT, after which requests in flight finish.

use std::net::SocketAddr;
use std::path::PathBuf;

use certlab_web::{app, AppState, Config, PortalStore};

use crate::common::{data_dir, db_url, runtime, DbArg};
use crate::error::{failure, CliError, Result};
use crate::exit;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    db: DbArg,
    /// Address and port to listen on (port 0: any free port, printed at start).
    #[arg(
        long,
        env = "CERTLAB_LISTEN",
        hide_env_values = true,
        default_value = "127.0.0.1:8080"
    )]
    listen: SocketAddr,
    /// Where the portal keeps bundles and artifacts [default: <data dir>/portal].
    #[arg(
        long,
        value_name = "DIR",
        env = "CERTLAB_PORTAL_DATA",
        hide_env_values = true
    )]
    data: Option<PathBuf>,
    /// The URL people reach the portal at; https makes cookies Secure.
    #[arg(long, env = "CERTLAB_PUBLIC_URL", hide_env_values = true)]
    public_url: Option<String>,
    /// The largest bundle accepted, in MiB.
    #[arg(long, default_value_t = 1024)]
    max_upload_mib: u64,
}

pub fn serve(args: ServeArgs) -> Result<i32> {
    let url = db_url(&args.db)?;
    let data = match args.data {
        Some(d) => d,
        None => data_dir()?.join("portal"),
    };
    if let Some(u) = &args.public_url {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            return Err(failure(
                exit::INFRA,
                format!("--public-url {u}: expected http://… or https://…"),
            ));
        }
    }
    let mut config = Config::new(data);
    config.public_url = args.public_url;
    config.max_upload_bytes = args.max_upload_mib.saturating_mul(1 << 20);
    config.verify_limits.max_bundle_bytes = config.max_upload_bytes;
    let rt = runtime()?;
    rt.block_on(async move {
        let store = PortalStore::open(&url).await?;
        let state = AppState::new(store.clone(), config)
            .map_err(|e| failure(exit::INFRA, e.to_string()))?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| CliError::infra(e).context(format!("cannot listen on {}", args.listen)))?;
        let local = listener.local_addr()?;
        println!("certlab portal listening on http://{local}");
        tracing::info!(%local, "portal listening");
        let service = app(state).into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, service)
            .with_graceful_shutdown(shutdown())
            .await
            .map_err(|e| CliError::infra(e).context("serving the portal"))?;
        store.close().await;
        Ok(exit::OK)
    })
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
