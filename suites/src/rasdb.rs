//! rasdaemon's event database (`ras-mc_event.db`), read with sqlx.
//!
//! rasdaemon (`rasdaemon --record`) stores every RAS trace event it decodes
//! as one row of an SQLite table: `mc_event` (EDAC memory controller),
//! `aer_event` (PCIe AER), `mce_record` (x86 machine checks), `extlog_event`,
//! `arm_event`, `non_standard_event` (CPER sections it does not decode),
//! `devlink_event`, `disk_errors`, `memory_failure_event`, the `cxl_*`
//! tables, and vendor tables such as HiSilicon Kunpeng's
//! `hip08_oem_type1_event_v2`, `hip08_oem_type2_event_v2`,
//! `hip08_pcie_local_event_v2` and `hisi_common_section_v2`.
//!
//! The table and column names and the values the handlers write come from
//! rasdaemon's source as of v0.8.5 (commit
//! 769593be915b4f00a9a7d56569df99bc0cff249a): `ras-record.c` (the
//! `db_fields` arrays and `ras_mc_create_table`), `ras-*-handler.c` (the
//! `err_type`/`severity` strings), `non-standard-hisilicon.h`
//! (`err_severity`). Which tables exist depends on the version and the build
//! options (Debian's 0.6.8 creates only `mc_event`, `aer_event`,
//! `extlog_event` and `mce_record`), and columns were added over time
//! (`mce_record.ppin`, `microcode`): the reader takes whatever tables the
//! file has, reads every column by name, and classifies a row from the
//! columns it finds. A table it does not know is read too, its rows
//! unclassified unless it has a severity column.
//!
//! Every row is one event; `mc_event.err_count` says how many errors the
//! event stands for (the kernel may fold several into one).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

/// Where rasdaemon keeps its database (`RASSTATEDIR`, `/var/lib/rasdaemon`
/// in distribution builds).
pub const DEFAULT_DB: &str = "/var/lib/rasdaemon/ras-mc_event.db";

/// The most rows read from one table (the count is always exact).
pub const MAX_ROWS_PER_TABLE: u64 = 100_000;

/// The tables rasdaemon v0.8.5 creates, with what their rows are.
pub const KNOWN_TABLES: &[(&str, &str)] = &[
    ("mc_event", "EDAC memory controller errors"),
    ("aer_event", "PCIe AER errors"),
    ("mce_record", "machine checks (x86 MCE)"),
    ("extlog_event", "extended error log (eMCA) memory errors"),
    ("arm_event", "ARM processor errors (CPER)"),
    ("non_standard_event", "non-standard CPER sections"),
    ("devlink_event", "devlink health reporter events"),
    ("disk_errors", "block I/O request errors"),
    ("memory_failure_event", "memory failures (poisoned pages)"),
    ("cxl_poison_event", "CXL poison records"),
    ("cxl_aer_ue_event", "CXL AER uncorrectable errors"),
    ("cxl_aer_ce_event", "CXL AER correctable errors"),
    ("cxl_overflow_event", "CXL event log overflows"),
    ("cxl_generic_event", "CXL generic events"),
    ("cxl_general_media_event", "CXL general media events"),
    ("cxl_dram_event", "CXL DRAM events"),
    ("cxl_memory_module_event", "CXL memory module events"),
    ("signal_event", "signals sent for hardware errors"),
    ("reri_event", "RISC-V RERI errors"),
    (
        "hip08_oem_type1_event_v2",
        "HiSilicon Kunpeng 920 OEM type 1 errors",
    ),
    (
        "hip08_oem_type2_event_v2",
        "HiSilicon Kunpeng 920 OEM type 2 errors",
    ),
    (
        "hip08_pcie_local_event_v2",
        "HiSilicon Kunpeng 920 PCIe local errors",
    ),
    ("hisi_common_section_v2", "HiSilicon common error sections"),
];

/// What a row says about the hardware.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventClass {
    /// Corrected by the hardware (ECC, link retry): a warning sign.
    Corrected,
    /// Not corrected: fatal, non-fatal, recoverable, deferred, a poisoned
    /// page, a failed I/O.
    Uncorrected,
    /// Informational.
    Informational,
    /// The row does not say (`arm_event`, `devlink_event`, tables unknown).
    Unclassified,
}

impl EventClass {
    pub fn as_str(self) -> &'static str {
        match self {
            EventClass::Corrected => "corrected",
            EventClass::Uncorrected => "uncorrected",
            EventClass::Informational => "informational",
            EventClass::Unclassified => "unclassified",
        }
    }
}

/// One row of a table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RasEvent {
    pub id: i64,
    /// As rasdaemon wrote it (`%Y-%m-%d %H:%M:%S %z`).
    pub timestamp: Option<String>,
    /// The timestamp understood; `None` when absent or not in that form.
    #[serde(skip)]
    pub at: Option<OffsetDateTime>,
    pub class: EventClass,
    /// How many errors the row stands for (`mc_event.err_count`, else 1).
    pub errors: u64,
    /// One line about it, from its columns.
    pub what: String,
    /// Every column, as stored (blobs as hex).
    pub columns: BTreeMap<String, Value>,
}

/// One table of the database.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RasTable {
    pub name: String,
    /// A table rasdaemon v0.8.5 creates (see [`KNOWN_TABLES`]).
    pub known: bool,
    pub columns: Vec<String>,
    /// Rows in the table.
    pub rows: u64,
    /// The rows read (the last [`MAX_ROWS_PER_TABLE`] by id).
    pub events: Vec<RasEvent>,
}

/// The database read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RasDb {
    pub tables: Vec<RasTable>,
}

/// Why the database could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RasDbError {
    #[error("{path}: {message}")]
    Sqlite { path: String, message: String },
    #[error("{path}: not an SQLite database (rasdaemon's is one)")]
    NotSqlite { path: String },
    #[error("reading {path}: {message}")]
    Runtime { path: String, message: String },
}

/// How to open the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Read-only, with SQLite's locks: a live database rasdaemon may write.
    ReadOnly,
    /// Read-only and immutable (no locks, no journal): a private copy.
    Immutable,
}

/// Reads every table of the database at `path`.
///
/// sqlx is async; this runs it on a thread of its own with a one-thread
/// runtime, so it can be called from a check (a blocking thread of the
/// orchestrator's runtime), from the CLI and from tests alike.
pub fn read_db(path: &Path, mode: OpenMode) -> Result<RasDb, RasDbError> {
    let shown = path.display().to_string();
    let mut head = [0u8; 16];
    {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(|e| RasDbError::Sqlite {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        let n = f.read(&mut head).map_err(|e| RasDbError::Sqlite {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        if n < 16 || &head != b"SQLite format 3\0" {
            return Err(RasDbError::NotSqlite { path: shown });
        }
    }
    let owned = path.to_path_buf();
    let runtime_err = |message: String| RasDbError::Runtime {
        path: shown.clone(),
        message,
    };
    std::thread::scope(|s| {
        s.spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(read_async(&owned, mode))
                .map_err(|e| format!("sqlite: {e}"))
        })
        .join()
        .map_err(|_| runtime_err("the reader thread panicked".into()))?
        .map_err(|message| RasDbError::Sqlite {
            path: shown.clone(),
            message,
        })
    })
}

async fn read_async(path: &Path, mode: OpenMode) -> Result<RasDb, sqlx::Error> {
    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{ConnectOptions, Connection, Row};
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .immutable(mode == OpenMode::Immutable)
        .create_if_missing(false)
        .disable_statement_logging();
    let mut conn = opts.connect().await?;
    let names: Vec<String> = sqlx::query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await?
    .iter()
    .map(|r| r.try_get::<String, _>(0))
    .collect::<Result<_, _>>()?;
    let mut tables = Vec::new();
    for name in names {
        let q = quote_ident(&name);
        let rows: i64 = sqlx::query(&format!("SELECT COUNT(*) FROM {q}"))
            .fetch_one(&mut conn)
            .await?
            .try_get(0)?;
        let columns: Vec<String> = sqlx::query(&format!(
            "SELECT name FROM pragma_table_info('{}')",
            name.replace('\'', "''")
        ))
        .fetch_all(&mut conn)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<_, _>>()?;
        let has_id = columns.iter().any(|c| c == "id");
        let order = if has_id { "id" } else { "rowid" };
        let sql = format!(
            "SELECT * FROM (SELECT * FROM {q} ORDER BY {order} DESC LIMIT {MAX_ROWS_PER_TABLE}) ORDER BY {order}"
        );
        let mut events = Vec::new();
        for (i, row) in sqlx::query(&sql)
            .fetch_all(&mut conn)
            .await?
            .iter()
            .enumerate()
        {
            let mut cols = BTreeMap::new();
            for (c, col) in columns.iter().enumerate() {
                cols.insert(col.clone(), value(row, c));
            }
            let id = cols
                .get("id")
                .and_then(Value::as_i64)
                .unwrap_or(i as i64 + 1);
            events.push(event(&name, id, cols));
        }
        tables.push(RasTable {
            known: KNOWN_TABLES.iter().any(|(t, _)| *t == name),
            name,
            columns,
            rows: u64::try_from(rows).unwrap_or(0),
            events,
        });
    }
    conn.close().await?;
    Ok(RasDb { tables })
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A column of a row as JSON: by the value's own storage class (SQLite
/// types values, not columns).
fn value(row: &sqlx::sqlite::SqliteRow, i: usize) -> Value {
    use sqlx::{Row, TypeInfo, ValueRef};
    let Ok(raw) = row.try_get_raw(i) else {
        return Value::Null;
    };
    if raw.is_null() {
        return Value::Null;
    }
    let kind = raw.type_info().name().to_string();
    match kind.as_str() {
        "INTEGER" => row
            .try_get::<i64, _>(i)
            .map(Value::from)
            .unwrap_or(Value::Null),
        "REAL" => row
            .try_get::<f64, _>(i)
            .map(Value::from)
            .unwrap_or(Value::Null),
        "TEXT" => match row.try_get::<String, _>(i) {
            Ok(s) => Value::from(s),
            Err(_) => row
                .try_get::<Vec<u8>, _>(i)
                .map(|b| Value::from(String::from_utf8_lossy(&b).into_owned()))
                .unwrap_or(Value::Null),
        },
        _ => row
            .try_get::<Vec<u8>, _>(i)
            .map(|b| Value::from(hex::encode(b)))
            .unwrap_or(Value::Null),
    }
}

/// rasdaemon's timestamp form, `strftime("%Y-%m-%d %H:%M:%S %z")`.
pub fn parse_timestamp(s: &str) -> Option<OffsetDateTime> {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second] [offset_hour sign:mandatory][offset_minute]"
    );
    OffsetDateTime::parse(s.trim(), fmt).ok()
}

fn text<'a>(cols: &'a BTreeMap<String, Value>, name: &str) -> Option<&'a str> {
    cols.get(name).and_then(Value::as_str)
}

fn int(cols: &BTreeMap<String, Value>, name: &str) -> Option<i64> {
    cols.get(name).and_then(Value::as_i64)
}

fn shown(cols: &BTreeMap<String, Value>, name: &str) -> String {
    match cols.get(name) {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Null) | None => "?".to_string(),
        Some(v) => v.to_string(),
    }
}

/// A severity word as the handlers write it: `Corrected`, `Uncorrected
/// (Fatal)`, `Recoverable`, `Fatal`, `Deferred`, `Informational`, `Info`,
/// `none` (HiSilicon), any case.
pub fn class_of_word(word: &str) -> EventClass {
    let w = word.trim().to_ascii_lowercase();
    if w.starts_with("uncorrect")
        || w.starts_with("fatal")
        || w.starts_with("recoverable")
        || w.starts_with("deferred")
        || w.starts_with("non-fatal")
    {
        EventClass::Uncorrected
    } else if w.starts_with("correct") {
        EventClass::Corrected
    } else if w.starts_with("info") || w == "none" {
        EventClass::Informational
    } else {
        EventClass::Unclassified
    }
}

/// MCi_STATUS bits (Intel SDM vol. 3B 16.3.2.2; AMD APM vol. 2 9.3.2).
const MCI_STATUS_VAL: u64 = 1 << 63;
const MCI_STATUS_UC: u64 = 1 << 61;
const MCI_STATUS_PCC: u64 = 1 << 57;

/// The class of a machine check from its MCi_STATUS (stored as a signed
/// 64-bit integer: rasdaemon binds the u64 with `sqlite3_bind_int64`).
pub fn mce_class(status: i64) -> EventClass {
    let s = status as u64;
    if s & (MCI_STATUS_UC | MCI_STATUS_PCC) != 0 {
        EventClass::Uncorrected
    } else if s & MCI_STATUS_VAL != 0 {
        EventClass::Corrected
    } else {
        EventClass::Unclassified
    }
}

/// The class and a one-line description of a row of table `table`.
fn classify(table: &str, cols: &BTreeMap<String, Value>) -> (EventClass, String) {
    match table {
        "mc_event" => (
            text(cols, "err_type").map_or(EventClass::Unclassified, class_of_word),
            format!(
                "{} {} error(s): {} at {} (location {}:{}:{}:{})",
                shown(cols, "err_count"),
                shown(cols, "err_type"),
                shown(cols, "err_msg"),
                shown(cols, "label"),
                shown(cols, "mc"),
                shown(cols, "top_layer"),
                shown(cols, "middle_layer"),
                shown(cols, "lower_layer"),
            ),
        ),
        "aer_event" => (
            text(cols, "err_type").map_or(EventClass::Unclassified, class_of_word),
            format!(
                "{}: {} error: {}",
                text(cols, "dev_name").unwrap_or("device not recorded"),
                shown(cols, "err_type"),
                shown(cols, "err_msg")
            ),
        ),
        "mce_record" => {
            let class = int(cols, "status").map_or_else(
                || text(cols, "error_msg").map_or(EventClass::Unclassified, class_of_word),
                mce_class,
            );
            let status = int(cols, "status").map(|s| format!("status=0x{:016x}", s as u64));
            (
                class,
                format!(
                    "{}; CPU {} bank {} ({}){}{}",
                    shown(cols, "error_msg"),
                    shown(cols, "cpu"),
                    shown(cols, "bank"),
                    shown(cols, "bank_name"),
                    text(cols, "mc_location")
                        .filter(|s| !s.is_empty())
                        .map(|s| format!(", {s}"))
                        .unwrap_or_default(),
                    status.map(|s| format!(", {s}")).unwrap_or_default(),
                ),
            )
        }
        "extlog_event" => {
            // ras-extlog-handler.c err_severity(): the CPER severities.
            let (class, word) = match int(cols, "severity") {
                Some(0) => (EventClass::Uncorrected, "recoverable"),
                Some(1) => (EventClass::Uncorrected, "fatal"),
                Some(2) => (EventClass::Corrected, "corrected"),
                Some(3) => (EventClass::Informational, "informational"),
                _ => (EventClass::Unclassified, "unknown-severity"),
            };
            (
                class,
                format!(
                    "{word} memory error at {} ({})",
                    int(cols, "address").map_or("?".into(), |a| format!("0x{:x}", a as u64)),
                    shown(cols, "fru_text")
                ),
            )
        }
        "non_standard_event" => (
            text(cols, "severity").map_or(EventClass::Unclassified, class_of_word),
            format!(
                "{} non-standard error section {}",
                shown(cols, "severity"),
                shown(cols, "sec_type")
            ),
        ),
        "arm_event" => (
            EventClass::Unclassified,
            format!(
                "ARM processor error: mpidr=0x{:x}, error_count={}, {}",
                int(cols, "mpidr").unwrap_or(0) as u64,
                shown(cols, "error_count"),
                shown(cols, "error_type")
            ),
        ),
        "devlink_event" => (
            EventClass::Unclassified,
            format!(
                "{} {} ({}) reporter {}: {}",
                shown(cols, "bus_name"),
                shown(cols, "dev_name"),
                shown(cols, "driver_name"),
                shown(cols, "reporter_name"),
                shown(cols, "msg")
            ),
        ),
        "disk_errors" => (
            EventClass::Uncorrected,
            format!(
                "{}: {} at sector {} (+{}, {} {})",
                shown(cols, "dev"),
                shown(cols, "error"),
                shown(cols, "sector"),
                shown(cols, "nr_sector"),
                shown(cols, "rwbs"),
                shown(cols, "cmd")
            ),
        ),
        "memory_failure_event" => (
            EventClass::Uncorrected,
            format!(
                "memory failure at pfn {} ({}): {}",
                shown(cols, "pfn"),
                shown(cols, "page_type"),
                shown(cols, "action_result")
            ),
        ),
        "cxl_aer_ue_event" | "cxl_poison_event" => (
            EventClass::Uncorrected,
            format!(
                "{table}: {} on {}",
                shown(cols, "memdev"),
                shown(cols, "host")
            ),
        ),
        "cxl_aer_ce_event" => (
            EventClass::Corrected,
            format!(
                "{table}: {} on {}",
                shown(cols, "memdev"),
                shown(cols, "host")
            ),
        ),
        _ => {
            // Vendor tables (HiSilicon `err_severity`) and tables this
            // reader does not know: by a severity column if there is one.
            let word = text(cols, "err_severity").or_else(|| text(cols, "severity"));
            let class = word.map_or(EventClass::Unclassified, class_of_word);
            let mut what = format!("{table}: {}", word.unwrap_or("severity not recorded"));
            for c in ["module_id", "sub_module_id", "socket_id", "memdev"] {
                if let Some(v) = cols.get(c).filter(|v| !v.is_null()) {
                    what.push_str(&format!(
                        ", {c}={}",
                        v.as_str().map_or(v.to_string(), str::to_string)
                    ));
                }
            }
            (class, what)
        }
    }
}

fn event(table: &str, id: i64, cols: BTreeMap<String, Value>) -> RasEvent {
    let (class, what) = classify(table, &cols);
    let timestamp = text(&cols, "timestamp").map(str::to_string);
    let at = timestamp.as_deref().and_then(parse_timestamp);
    let errors = match table {
        "mc_event" => int(&cols, "err_count")
            .and_then(|n| u64::try_from(n).ok())
            .filter(|n| *n > 0)
            .unwrap_or(1),
        _ => 1,
    };
    RasEvent {
        id,
        timestamp,
        at,
        class,
        errors,
        what,
        columns: cols,
    }
}

/// Counts of events and errors per class.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub events: u64,
    pub errors: BTreeMap<EventClass, u64>,
}

impl Tally {
    pub fn add(&mut self, e: &RasEvent) {
        self.events += 1;
        *self.errors.entry(e.class).or_default() += e.errors;
    }
    pub fn of(&self, c: EventClass) -> u64 {
        self.errors.get(&c).copied().unwrap_or(0)
    }
}

impl RasDb {
    /// The events of every table, with their table, that happened at or
    /// after `since` (all when `None`). An event whose time cannot be read
    /// is kept: nobody can say it is older.
    pub fn events_since(
        &self,
        since: Option<OffsetDateTime>,
    ) -> impl Iterator<Item = (&str, &RasEvent)> {
        self.tables.iter().flat_map(move |t| {
            t.events
                .iter()
                .filter(move |e| match (since, e.at) {
                    (Some(s), Some(at)) => at >= s,
                    _ => true,
                })
                .map(move |e| (t.name.as_str(), e))
        })
    }

    /// The known tables the file does not have (an older or smaller build).
    pub fn missing_tables(&self) -> Vec<&'static str> {
        KNOWN_TABLES
            .iter()
            .map(|(t, _)| *t)
            .filter(|t| !self.tables.iter().any(|x| x.name == *t))
            .collect()
    }

    /// The JSON `certlab ras db --format json` prints (see the README).
    pub fn to_json(&self, db: &str, since: Option<OffsetDateTime>) -> Value {
        let fmt = time::format_description::well_known::Rfc3339;
        let tables: Vec<Value> = self
            .tables
            .iter()
            .map(|t| {
                let mut tally = Tally::default();
                let events: Vec<&RasEvent> = t
                    .events
                    .iter()
                    .filter(|e| match (since, e.at) {
                        (Some(s), Some(at)) => at >= s,
                        _ => true,
                    })
                    .collect();
                for e in &events {
                    tally.add(e);
                }
                serde_json::json!({
                    "name": t.name,
                    "known": t.known,
                    "rows": t.rows,
                    "events": tally.events,
                    "errors": tally.errors,
                    "columns": t.columns,
                    "rows_read": t.events.len(),
                    "list": events,
                })
            })
            .collect();
        serde_json::json!({
            "db": db,
            "since": since.and_then(|s| s.format(&fmt).ok()),
            "tables": tables,
            "missing_tables": self.missing_tables(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_words_of_the_handlers() {
        assert_eq!(class_of_word("Corrected"), EventClass::Corrected);
        assert_eq!(
            class_of_word("Uncorrected (Fatal)"),
            EventClass::Uncorrected
        );
        assert_eq!(
            class_of_word("Uncorrected (Non-Fatal)"),
            EventClass::Uncorrected
        );
        assert_eq!(class_of_word("Deferred"), EventClass::Uncorrected);
        assert_eq!(class_of_word("recoverable"), EventClass::Uncorrected);
        assert_eq!(class_of_word("Info"), EventClass::Informational);
        assert_eq!(class_of_word("none"), EventClass::Informational);
        assert_eq!(class_of_word("unknown"), EventClass::Unclassified);
    }

    #[test]
    fn mce_status_bits() {
        // issue 121's AMD UMC CECC (VAL, OVER, EN, MISCV, ADDRV; not UC).
        assert_eq!(
            mce_class(0xdc2040000400011bu64 as i64),
            EventClass::Corrected
        );
        // UC and PCC set.
        assert_eq!(
            mce_class(0xb200000000000000u64 as i64),
            EventClass::Uncorrected
        );
        assert_eq!(mce_class(0), EventClass::Unclassified);
    }

    #[test]
    fn timestamps_in_rasdaemon_form() {
        let t = parse_timestamp("2020-04-16 22:09:48 +0000").unwrap();
        assert_eq!(t.unix_timestamp(), 1587074988);
        let t = parse_timestamp("2026-08-24 03:41:13 +0200").unwrap();
        assert_eq!(t.offset().whole_hours(), 2);
        assert!(parse_timestamp("..").is_none());
    }
}
