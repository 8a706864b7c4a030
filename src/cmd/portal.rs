//! `certlab portal …`: bootstrap the portal's accounts from the command
//! line — organisations, users (with an API token, shown once), more
//! tokens, and organisations' signing keys.

use std::io::BufRead;
use std::path::PathBuf;

use certlab_web::auth::{hash_password, new_token};
use certlab_web::{PortalStore, Role};

use crate::common::{db_url, runtime, DbArg};
use crate::error::{failure, CliError, Result};
use crate::exit;
use crate::format::{text_format, Format};

#[derive(Debug, clap::Subcommand)]
pub enum PortalCmd {
    /// Organisations (vendors).
    #[command(subcommand)]
    Org(OrgCmd),
    /// Users of an organisation.
    #[command(subcommand)]
    User(UserCmd),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Organisations' bundle signing keys.
    #[command(subcommand)]
    Key(KeyCmd),
    /// Check a portal's whole transparency log and its signed head.
    VerifyLog(crate::cmd::portal_log::VerifyLogArgs),
    /// Fill the store with realistic demo certifications (for demos and benchmarks).
    SeedDemo {
        /// How many certifications to add.
        #[arg(long)]
        certifications: u64,
        #[command(flatten)]
        common: Common,
    },
}

/// `--db` and `--format`, shared by every portal command.
#[derive(Debug, clap::Args)]
pub struct Common {
    #[command(flatten)]
    db: DbArg,
    #[arg(long, default_value = "human", value_parser = text_format())]
    format: Format,
}

#[derive(Debug, clap::Subcommand)]
pub enum OrgCmd {
    /// Create an organisation.
    Create {
        name: String,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum UserCmd {
    /// Create a user and print their first API token (shown once).
    Create {
        email: String,
        /// The user's organisation.
        #[arg(long)]
        org: String,
        /// vendor, reviewer or admin.
        #[arg(long, value_parser = ["vendor", "reviewer", "admin"])]
        role: String,
        /// Read a password for browser login from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum TokenCmd {
    /// Create another API token for a user and print it (shown once).
    Create {
        email: String,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum KeyCmd {
    /// Register an ed25519 public key (SPKI PEM, as `certlab keygen` writes) for an organisation.
    Add {
        #[arg(long)]
        org: String,
        /// The public key file (certlab-signing.pub).
        key: PathBuf,
        #[command(flatten)]
        common: Common,
    },
}

/// The shortest password accepted.
const MIN_PASSWORD: usize = 12;

pub fn run(cmd: PortalCmd) -> Result<i32> {
    let cmd = match cmd {
        PortalCmd::VerifyLog(args) => return crate::cmd::portal_log::verify(args),
        other => other,
    };
    let common = match &cmd {
        PortalCmd::Org(OrgCmd::Create { common, .. })
        | PortalCmd::User(UserCmd::Create { common, .. })
        | PortalCmd::Token(TokenCmd::Create { common, .. })
        | PortalCmd::Key(KeyCmd::Add { common, .. })
        | PortalCmd::SeedDemo { common, .. } => common,
        PortalCmd::VerifyLog(_) => return Err(failure(exit::INFRA, "verify-log has no store")),
    };
    let url = db_url(&common.db)?;
    let json = common.format == Format::Json;
    // read before connecting: a bad password or key file changes nothing
    let password = match &cmd {
        PortalCmd::User(UserCmd::Create {
            password_stdin: true,
            ..
        }) => Some(read_password()?),
        _ => None,
    };
    let key = match &cmd {
        PortalCmd::Key(KeyCmd::Add { key, .. }) => Some(
            certlab_reports::load_public(key)
                .map_err(|e| CliError::bad_input(e).context("public key"))?,
        ),
        _ => None,
    };
    let rt = runtime()?;
    rt.block_on(async move {
        let store = PortalStore::open(&url).await?;
        let now = time::OffsetDateTime::now_utc();
        let out = match cmd {
            PortalCmd::Org(OrgCmd::Create { name, .. }) => {
                store.create_org(&name, now).await?;
                (
                    serde_json::json!({ "org": name }),
                    format!("created organisation {name}"),
                )
            }
            PortalCmd::User(UserCmd::Create {
                email, org, role, ..
            }) => {
                let role: Role = role.parse()?;
                let hash = password
                    .as_deref()
                    .map(hash_password)
                    .transpose()
                    .map_err(|e| failure(exit::INFRA, e.to_string()))?;
                let user = store
                    .create_user(&email, &org, role, hash.as_deref(), now)
                    .await?;
                let (token, digest) = new_token();
                store.add_token(&user.id, &digest, now).await?;
                (
                    serde_json::json!({
                        "email": user.email, "org": user.org_name, "role": role.as_str(), "token": token,
                    }),
                    format!(
                        "created {role} {email} of {org}\nAPI token (shown once, keep it secret):\n{token}"
                    ),
                )
            }
            PortalCmd::Token(TokenCmd::Create { email, .. }) => {
                let user = store
                    .user_by_email(&email)
                    .await?
                    .ok_or_else(|| failure(exit::INFRA, format!("no user {email}")))?;
                let (token, digest) = new_token();
                store.add_token(&user.id, &digest, now).await?;
                (
                    serde_json::json!({ "email": email, "token": token }),
                    format!("API token for {email} (shown once, keep it secret):\n{token}"),
                )
            }
            PortalCmd::VerifyLog(_) => {
                return Err(failure(exit::INFRA, "verify-log has no store"))
            }
            PortalCmd::Key(KeyCmd::Add { org, .. }) => {
                let key = key.ok_or_else(|| failure(exit::INFRA, "no key"))?;
                let key_id = store.add_key(&org, &key, now).await?;
                (
                    serde_json::json!({ "org": org, "key_id": key_id }),
                    format!("registered key {key_id} for {org}"),
                )
            }
            PortalCmd::SeedDemo { certifications, .. } => {
                super::portal_seed::seed(&store, certifications, now).await?
            }
        };
        store.close().await;
        if json {
            println!("{}", serde_json::to_string_pretty(&out.0)?);
        } else {
            println!("{}", out.1);
        }
        Ok(exit::OK)
    })
}

/// The first line of stdin, without its line ending.
fn read_password() -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::infra(e).context("reading the password from stdin"))?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.chars().count() < MIN_PASSWORD {
        return Err(failure(
            exit::INFRA,
            format!("the password on stdin is shorter than {MIN_PASSWORD} characters"),
        ));
    }
    Ok(password)
}
