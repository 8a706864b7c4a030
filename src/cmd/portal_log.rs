//! `certlab portal verify-log`: fetches a portal's signed tree head and
//! every entry of its transparency log (in pages), and checks the hash
//! chain, the Merkle root and the head's signature with
//! `reports::tlog::verify_log`. Exit 0 when all holds, 3 naming the first
//! bad entry (or the bad head).

use std::path::PathBuf;

use certlab_reports::tlog::{verify_log, LogEntry, TlogError, TreeHead};
use ed25519_dalek::pkcs8::DecodePublicKey;
use ed25519_dalek::VerifyingKey;
use serde_json::Value;

use crate::common::runtime;
use crate::error::{failure, CliError, Result};
use crate::exit;
use crate::format::{text_format, Format};

#[derive(Debug, clap::Args)]
pub struct VerifyLogArgs {
    /// The portal's base URL (http://… or https://…).
    #[arg(long)]
    portal: String,
    /// The portal's log key you trust (SPKI PEM, as `GET /api/v1/log/key`
    /// serves it). Without it the key the portal serves is used, which
    /// proves the log consistent but not whose it is.
    #[arg(long, value_name = "FILE")]
    pubkey: Option<PathBuf>,
    #[arg(long, default_value = "human", value_parser = text_format())]
    format: Format,
}

async fn get_json(client: &reqwest::Client, url: &str) -> Result<Value> {
    let response = client.get(url).send().await.map_err(|e| {
        CliError::infra(e.without_url()).context(format!("cannot reach the portal at {url}"))
    })?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| {
        CliError::infra(e.without_url()).context(format!("reading the answer of {url}"))
    })?;
    if !status.is_success() {
        let text: String = String::from_utf8_lossy(&body).chars().take(500).collect();
        return Err(failure(
            exit::INFRA,
            format!("{url} answered {status}: {text}"),
        ));
    }
    serde_json::from_slice(&body)
        .map_err(|e| CliError::bad_input(e).context(format!("{url} answered no JSON")))
}

pub fn verify(args: VerifyLogArgs) -> Result<i32> {
    let base = args.portal.trim_end_matches('/').to_string();
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(failure(
            exit::INFRA,
            format!("--portal {}: expected http://… or https://…", args.portal),
        ));
    }
    let trusted = match &args.pubkey {
        Some(path) => Some(
            certlab_reports::load_public(path)
                .map_err(|e| CliError::bad_input(e).context("--pubkey"))?,
        ),
        None => None,
    };
    let client = crate::cmd::submit::client()?;
    let rt = runtime()?;
    let (head, key, entries) = rt.block_on(async {
        let head_url = format!("{base}/api/v1/log/head");
        let head: TreeHead = serde_json::from_value(get_json(&client, &head_url).await?)
            .map_err(|e| CliError::bad_input(e).context(format!("tree head from {head_url}")))?;
        let key = match trusted {
            Some(k) => k,
            None => {
                let key_url = format!("{base}/api/v1/log/key");
                let served = get_json(&client, &key_url).await?;
                let pem = served["public_key_pem"].as_str().ok_or_else(|| {
                    failure(exit::BAD_INPUT, format!("{key_url}: no public_key_pem"))
                })?;
                VerifyingKey::from_public_key_pem(pem).map_err(|e| {
                    failure(
                        exit::BAD_INPUT,
                        format!("{key_url}: not an Ed25519 key: {e}"),
                    )
                })?
            }
        };
        let mut entries: Vec<LogEntry> = Vec::new();
        while (entries.len() as u64) < head.size {
            let from = entries.len() as u64;
            let url = format!("{base}/api/v1/log/entries?from={from}&to={}", head.size);
            let page = get_json(&client, &url).await?;
            let items = page["entries"]
                .as_array()
                .ok_or_else(|| failure(exit::BAD_INPUT, format!("{url}: no entries")))?;
            if items.is_empty() {
                return Err(failure(
                    exit::BAD_INPUT,
                    format!(
                        "the head covers {} entries but the portal serves only {from}",
                        head.size
                    ),
                ));
            }
            for (i, item) in items.iter().enumerate() {
                let entry: LogEntry = serde_json::from_value(item.clone()).map_err(|e| {
                    failure(
                        exit::BAD_INPUT,
                        format!("log entry {}: not a log entry: {e}", from + i as u64),
                    )
                })?;
                entries.push(entry);
            }
        }
        entries.truncate(usize::try_from(head.size).unwrap_or(usize::MAX));
        Ok::<_, CliError>((head, key, entries))
    })?;
    let key_id = certlab_reports::key_id(&key);
    let key_source = if args.pubkey.is_some() {
        "file"
    } else {
        "portal"
    };
    let outcome = verify_log(&entries, &head, &key);
    let json = args.format == Format::Json;
    let bad_entry = match &outcome {
        Err(TlogError::Entry { index, .. }) => Some(*index),
        _ => None,
    };
    if json {
        let report = serde_json::json!({
            "ok": outcome.is_ok(),
            "entries": entries.len(),
            "head": head,
            "key_id": key_id,
            "key_source": key_source,
            "bad_entry": bad_entry,
            "error": outcome.as_ref().err().map(ToString::to_string),
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    match outcome {
        Ok(()) => {
            if !json {
                println!("OK: {} entries, head signed by {key_id}", entries.len());
                if args.pubkey.is_none() {
                    println!(
                        "(with the key the portal serves: pass --pubkey to check it is the key you trust)"
                    );
                }
            }
            Ok(exit::OK)
        }
        Err(e) => Err(failure(exit::BAD_INPUT, format!("log of {base}: {e}"))),
    }
}
