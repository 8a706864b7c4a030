//! The RAS events rasdaemon recorded (`ras.rasdaemon`).
//!
//! The database is read from the target (`Target::read_file`, so over SSH
//! too) after its size is checked, kept whole as the case's evidence, copied
//! into a private temporary file and opened read-only and immutable with
//! sqlx ([`crate::rasdb`]): rasdaemon may hold the original open, and a
//! copy nobody writes needs no locks.

use certlab_lab::target::shell_quote;
use certlab_lab::ExecOutput;
use time::OffsetDateTime;

use crate::checks::ras_delta;
use crate::context::{CaseCtx, CaseError, CaseOutcome, Unreadable};
use crate::plan::Check;
use crate::rasdb::{self, EventClass, OpenMode, RasDb, Tally};

/// How many distinct events a reason names before it says "and N more".
const NAMED: usize = 6;

/// When the window opens, from the plan's `since`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Window {
    /// Since the machine booted (`btime` of /proc/stat). A certification
    /// run starts from a fresh boot, so this is the run's events.
    Boot,
    /// Every row the database holds.
    All,
}

/// The boot time of the target, from `btime` in /proc/stat.
pub fn parse_btime(proc_stat: &str) -> Option<OffsetDateTime> {
    let secs: i64 = proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    OffsetDateTime::from_unix_timestamp(secs).ok()
}

/// The events rasdaemon recorded in its database.
///
/// Parameters: `errors` = `"uncorrected"` (default) fails on any
/// uncorrected event (memory controller, AER non-fatal/fatal, machine check
/// with UC/PCC, extlog/CPER recoverable or fatal, memory failure, disk I/O
/// error, CXL uncorrectable/poison, vendor tables' fatal/recoverable) and
/// notes the rest; `"corrected"` fails when the corrected errors exceed
/// `max_corrected` (default 0; a plan makes that case a non-blocker, so it
/// reads as a warning). `since` = `"boot"` (default: events at or after the
/// target's boot) or `"all"`. `db` = the database's path (default
/// [`rasdb::DEFAULT_DB`]); `max_db_mib` = the largest database read (64).
pub struct RasDaemon;

impl Check for RasDaemon {
    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        let corrected_only = match ctx.param_str("errors", "uncorrected").as_str() {
            "uncorrected" => false,
            "corrected" => true,
            other => {
                return Err(CaseError::Infra(format!(
                    "plan parameter `errors`: `{other}` is neither `uncorrected` nor `corrected`"
                )))
            }
        };
        let window = match ctx.param_str("since", "boot").as_str() {
            "boot" => Window::Boot,
            "all" => Window::All,
            other => {
                return Err(CaseError::Infra(format!(
                    "plan parameter `since`: `{other}` is neither `boot` nor `all`"
                )))
            }
        };
        let max_corrected = ctx.param_u64("max_corrected", 0);
        let db_path = ctx.param_str("db", rasdb::DEFAULT_DB);
        let limit = ctx.param_u64("max_db_mib", 64).saturating_mul(1 << 20);

        let db = match read_target_db(ctx, &db_path, limit)? {
            Ok(db) => db,
            Err(why) if why.denied => {
                return Ok(CaseOutcome::skip(format!(
                    "rasdaemon's database {db_path} may not be read ({}): run the case as root",
                    why.error
                )))
            }
            Err(_) => {
                let installed = ctx.has_command("rasdaemon")?;
                return Ok(CaseOutcome::skip(if installed {
                    format!("rasdaemon is installed but keeps no database at {db_path}: it does not run, or runs without --record (RAS events are not recorded)")
                } else {
                    format!("rasdaemon is not installed (no `rasdaemon` on PATH, no {db_path}): RAS events are not recorded on this machine")
                }));
            }
        };

        let mut notes = Vec::new();
        let since = match window {
            Window::All => None,
            Window::Boot => match ctx.read("/proc/stat")?.as_deref().and_then(parse_btime) {
                Some(t) => Some(t),
                None => {
                    notes.push("the boot time (btime in /proc/stat) could not be read, so every row counts".to_string());
                    None
                }
            },
        };
        let when = match since {
            Some(t) => format!("since boot ({})", rfc3339(t)),
            None => "in all".to_string(),
        };

        // What `certlab ras db` would print for this copy: the decoded rows.
        let json = db.to_json(&db_path, since);
        let text = serde_json::to_vec_pretty(&json).map_err(|e| CaseError::Infra(e.to_string()))?;
        ctx.record_output(
            &format!(
                "certlab ras db --db {} --since {} --format json  # decoded by certlab from the copy read above",
                shell_quote(&db_path),
                if window == Window::Boot { "boot" } else { "all" }
            ),
            &ExecOutput {
                exit: Some(0),
                stdout: text,
                stderr: Vec::new(),
                duration: std::time::Duration::ZERO,
                timed_out: false,
            },
        )?;

        let outcome = judge(&db, since, corrected_only, max_corrected, &when, notes);
        // Counts since boot cover the uptime; counts of every row do not.
        let outcome = match window {
            Window::Boot if since.is_some() => ras_delta::with_uptime(ctx, outcome)?,
            _ => outcome,
        };
        let class = if corrected_only {
            ".corrected"
        } else {
            ".uncorrected"
        };
        ras_delta::against_baseline(ctx, outcome, &|n: &str| {
            n.starts_with("rasdaemon.") && n.ends_with(class)
        })
    }

    fn compares_with_baseline(&self) -> bool {
        true
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// rasdaemon's database at `db_path` on the target: its size checked with
/// `stat` first (so a huge file is not pulled over SSH), read whole (kept as
/// evidence), decoded from a private copy. `Ok(Err(why))` when it does not
/// exist or may not be read; a file above `limit` bytes or not a database is
/// an error.
pub(crate) fn read_target_db(
    ctx: &CaseCtx<'_>,
    db_path: &str,
    limit: u64,
) -> Result<Result<RasDb, Unreadable>, CaseError> {
    let too_big = |n: u64| {
        CaseError::Infra(format!(
            "{db_path} holds {n} bytes, more than the {} MiB the plan's `max_db_mib` allows reading",
            limit >> 20
        ))
    };
    let st = ctx.run(&format!("stat -c %s -- {}", shell_quote(db_path)))?;
    if st.success() {
        if let Ok(n) = st.stdout_str().trim().parse::<u64>() {
            if n > limit {
                return Err(too_big(n));
            }
        }
    }
    let bytes = match ctx.read_bytes(db_path)? {
        Ok(b) => b,
        Err(why) => return Ok(Err(why)),
    };
    if bytes.len() as u64 > limit {
        return Err(too_big(bytes.len() as u64));
    }
    read_copy(db_path, &bytes).map(Ok)
}

/// Writes the bytes read into a private temporary file and reads it.
fn read_copy(db_path: &str, bytes: &[u8]) -> Result<RasDb, CaseError> {
    use std::io::Write;
    let mut tmp = tempfile::Builder::new()
        .prefix("certlab-rasdb-")
        .suffix(".db")
        .tempfile()
        .map_err(|e| CaseError::Infra(format!("a temporary copy of {db_path}: {e}")))?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.flush())
        .map_err(|e| CaseError::Infra(format!("a temporary copy of {db_path}: {e}")))?;
    rasdb::read_db(tmp.path(), OpenMode::Immutable)
        .map_err(|e| CaseError::Infra(format!("{db_path} (copied): {e}")))
}

/// The verdict on a database read: pure, so tests can drive it.
fn judge(
    db: &RasDb,
    since: Option<OffsetDateTime>,
    corrected_only: bool,
    max_corrected: u64,
    when: &str,
    mut notes: Vec<String>,
) -> CaseOutcome {
    let mut all = Tally::default();
    let mut per_table: Vec<(String, Tally)> = Vec::new();
    let mut untimed = 0u64;
    // (class, table, what) → events
    let mut groups: Vec<((EventClass, String, String), u64)> = Vec::new();
    for (table, e) in db.events_since(since) {
        all.add(e);
        match per_table.iter_mut().find(|(t, _)| t == table) {
            Some((_, t)) => t.add(e),
            None => {
                let mut t = Tally::default();
                t.add(e);
                per_table.push((table.to_string(), t));
            }
        }
        if since.is_some() && e.at.is_none() {
            untimed += 1;
        }
        let key = (e.class, table.to_string(), e.what.clone());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += 1,
            None => groups.push((key, 1)),
        }
    }
    if untimed > 0 {
        notes.push(format!(
            "{untimed} rows have no readable time and are counted as this boot's"
        ));
    }
    let missing = db.missing_tables();
    let tables_read = db.tables.len();
    let counts: Vec<String> = per_table
        .iter()
        .map(|(name, t)| {
            let parts: Vec<String> = t
                .errors
                .iter()
                .map(|(c, n)| format!("{n} {}", c.as_str()))
                .collect();
            format!("{name} {} ({} rows)", parts.join(", "), t.events)
        })
        .collect();
    let scope = format!(
        "{} events {when}, {tables_read} tables read{}{}",
        all.events,
        if counts.is_empty() {
            String::new()
        } else {
            format!(": {}", counts.join("; "))
        },
        if missing.is_empty() {
            String::new()
        } else {
            format!(
                " ({} tables of rasdaemon 0.8.5 absent: an older version or build)",
                missing.len()
            )
        }
    );
    let named = |class: EventClass| -> String {
        let g: Vec<&((EventClass, String, String), u64)> =
            groups.iter().filter(|((c, _, _), _)| *c == class).collect();
        let mut v: Vec<String> = g
            .iter()
            .take(NAMED)
            .map(|((_, t, w), n)| {
                if *n > 1 {
                    format!("{t}: {w} (×{n})")
                } else {
                    format!("{t}: {w}")
                }
            })
            .collect();
        if g.len() > NAMED {
            v.push(format!("and {} more", g.len() - NAMED));
        }
        v.join("; ")
    };
    let unclassified = all.of(EventClass::Unclassified);
    if unclassified > 0 {
        notes.push(format!(
            "{unclassified} events whose table records no severity: {}",
            named(EventClass::Unclassified)
        ));
    }
    let tail = if notes.is_empty() {
        String::new()
    } else {
        format!("; noted: {}", notes.join("; "))
    };
    let uncorrected = all.of(EventClass::Uncorrected);
    let corrected = all.of(EventClass::Corrected);
    // The totals, then each table's errors per class (`rasdaemon.TABLE.CLASS`).
    let mut metrics = vec![
        ("rasdaemon.uncorrected".to_string(), uncorrected),
        ("rasdaemon.corrected".to_string(), corrected),
    ];
    // Every table the database has, so that a table without rows counts 0.
    for table in &db.tables {
        let t = per_table
            .iter()
            .find(|(n, _)| *n == table.name)
            .map(|(_, t)| t);
        for c in [EventClass::Uncorrected, EventClass::Corrected] {
            let n = t.map_or(0, |t| t.of(c));
            metrics.push((format!("rasdaemon.{}.{}", table.name, c.as_str()), n));
        }
    }
    let outcome = if corrected_only {
        if corrected > max_corrected {
            CaseOutcome::fail(format!(
                "{corrected} corrected errors {when}, above the plan's limit {max_corrected}: {}; {scope}{tail}",
                named(EventClass::Corrected)
            ))
        } else {
            CaseOutcome::pass(format!(
                "{corrected} corrected errors, within the plan's limit {max_corrected}; {scope}{tail}"
            ))
        }
    } else if uncorrected > 0 {
        CaseOutcome::fail(format!(
            "{uncorrected} uncorrected errors {when}: {}; {scope}{tail}",
            named(EventClass::Uncorrected)
        ))
    } else {
        CaseOutcome::pass(format!("no uncorrected error; {scope}{tail}"))
    };
    metrics.into_iter().fold(outcome, |o, (name, v)| {
        o.metric(ras_delta::counter(name, v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn btime_from_proc_stat() {
        let t = parse_btime("cpu  1 2 3\nintr 5\nbtime 1733456789\nprocesses 9\n").unwrap();
        assert_eq!(t.unix_timestamp(), 1733456789);
        assert!(parse_btime("cpu 1\n").is_none());
        assert!(parse_btime("btime soon\n").is_none());
    }
}
