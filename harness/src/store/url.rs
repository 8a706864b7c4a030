//! Lab store URLs: which backend, the URL handed to sqlx, and redaction for messages.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::sqlite::SqliteConnectOptions;

use super::rows::invalid;
use super::{Backend, StoreError};

/// `url` with any password replaced by `***`, fit for logs and error messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_string(),
    };
    let Some((path, query)) = tail.split_once('?') else {
        return format!("{scheme}://{authority}{tail}");
    };
    let params: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((key, _)) if key.to_ascii_lowercase().ends_with("password") => {
                format!("{key}=***")
            }
            _ => param.to_string(),
        })
        .collect();
    format!("{scheme}://{authority}{path}?{}", params.join("&"))
}

/// The backend, the URL for sqlx, and whether the database lives in memory;
/// a SQLite file's parent directory is created. Other stores on the same
/// database (the portal's) resolve `--db` with it too.
pub fn resolve_url(url: &str) -> Result<(Backend, String, bool), StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((Backend::Postgres, url.to_string(), false));
    }
    let bad_url = |detail: String| invalid(format!("lab store url {}", redact_url(url)), detail);
    let (path, params) = match url.strip_prefix("sqlite:") {
        Some(rest) => {
            let (db, params) = rest.split_once('?').unwrap_or((rest, ""));
            if db.trim_start_matches('/') == ":memory:"
                || params.split('&').any(|p| p == "mode=memory")
            {
                return Ok((Backend::Sqlite, url.to_string(), true));
            }
            let options =
                SqliteConnectOptions::from_str(url).map_err(|e| bad_url(e.to_string()))?;
            (options.get_filename().to_path_buf(), params)
        }
        None if url.contains("://") => {
            return Err(bad_url(
                "expected postgres://…, sqlite:… or a file path".into(),
            ))
        }
        None => (PathBuf::from(url), ""),
    };
    if path.as_os_str().is_empty() {
        return Err(bad_url("no database file".into()));
    }
    let path = std::path::absolute(&path).map_err(|e| bad_url(e.to_string()))?;
    if let Some(parent) = path.parent() {
        let created = std::fs::create_dir_all(parent);
        created.map_err(|source| StoreError::CreateDir {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    let mut params: Vec<&str> = params.split('&').filter(|p| !p.is_empty()).collect();
    if !params.iter().any(|p| p.starts_with("mode=")) {
        params.push("mode=rwc");
    }
    let path = encode_path(&path).map_err(bad_url)?;
    Ok((
        Backend::Sqlite,
        format!("sqlite://{path}?{}", params.join("&")),
        false,
    ))
}

/// Percent-encodes a path for a `sqlite://` URL (sqlx decodes it again).
fn encode_path(path: &Path) -> Result<String, String> {
    let path = path.to_str().ok_or("the database path is not UTF-8")?;
    Ok(path
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect())
}
