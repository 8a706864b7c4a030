//! rasdaemon's database (`ras-mc_event.db`) and the `ras.rasdaemon` case.
//!
//! Fixtures (tests/fixtures/rasdaemon, see its PROVENANCE.tsv): a database
//! the real rasdaemon 0.6.8 created, and two built with the CREATE TABLE
//! statements of rasdaemon 0.8.5 whose rows are read off real
//! `ras-mc-ctl --errors/--summary` outputs. Where `ras-mc-ctl` is installed
//! it reads the fixtures too, and must print the very lines they came from.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use certlab_hwdb::HardwareProfile;
use certlab_lab::{Local, Scripted};
use certlab_reports::{Evidence, Verdict};
use certlab_suites::rasdb::{read_db, EventClass, OpenMode, RasDb, Tally};

fn fixture(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/rasdaemon")
        .join(name);
    assert!(p.exists(), "{}: missing", p.display());
    p
}

fn db(name: &str) -> RasDb {
    read_db(&fixture(name), OpenMode::ReadOnly).unwrap()
}

fn table<'a>(db: &'a RasDb, name: &str) -> &'a certlab_suites::rasdb::RasTable {
    db.tables
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no table {name}"))
}

fn tally(db: &RasDb, name: &str) -> Tally {
    let mut t = Tally::default();
    for e in &table(db, name).events {
        t.add(e);
    }
    t
}

#[test]
fn the_database_the_real_rasdaemon_created_is_read_with_its_tables() {
    let d = db("rasdaemon-0.6.8-debian-empty.db");
    let names: Vec<&str> = d.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        ["aer_event", "extlog_event", "mc_event", "mce_record"]
    );
    assert!(d.tables.iter().all(|t| t.rows == 0 && t.known));
    // Tables of later versions and other builds are simply absent.
    let missing = d.missing_tables();
    for t in [
        "arm_event",
        "devlink_event",
        "disk_errors",
        "hip08_oem_type1_event_v2",
    ] {
        assert!(missing.contains(&t), "{t} should be missing");
    }
    // 0.6.8's mce_record has no ppin/microcode; 0.8.5's has both, the
    // other tables they share are the same.
    let new = db("rasdaemon-0.8.5-corrected.db");
    for t in ["mc_event", "aer_event", "extlog_event"] {
        assert_eq!(table(&d, t).columns, table(&new, t).columns, "{t}");
    }
    let old_mce = &table(&d, "mce_record").columns;
    let new_mce = &table(&new, "mce_record").columns;
    assert!(!old_mce.contains(&"ppin".to_string()));
    let extra: Vec<&String> = new_mce.iter().filter(|c| !old_mce.contains(c)).collect();
    assert_eq!(extra, ["ppin", "microcode"]);
}

#[test]
fn rows_read_off_real_outputs_are_classified() {
    let d = db("rasdaemon-0.8.5-corrected.db");
    assert_eq!(d.tables.len(), 23, "every table rasdaemon 0.8.5 creates");
    assert!(d.missing_tables().is_empty());
    let mc = tally(&d, "mc_event");
    assert_eq!((mc.events, mc.of(EventClass::Corrected)), (5, 5));
    let first = &table(&d, "mc_event").events[0];
    assert!(
        first.what.contains("CPU_SrcID#1_MC#1_Chan#1_DIMM#0") && first.what.contains("3:1:0:-1"),
        "{}",
        first.what
    );
    assert_eq!(
        first.at.unwrap().unix_timestamp(),
        1665902273,
        "2022-10-16 06:37:53 +0000"
    );
    let aer = tally(&d, "aer_event");
    assert_eq!((aer.events, aer.of(EventClass::Corrected)), (5, 5));
    let mce = tally(&d, "mce_record");
    assert_eq!((mce.events, mce.of(EventClass::Corrected)), (4, 4));
    let m1 = &table(&d, "mce_record").events[0];
    // The u64 MCi_STATUS stored as a negative i64 comes back whole.
    assert!(m1.what.contains("status=0xdc2040000400011b"), "{}", m1.what);
    assert_eq!(m1.timestamp.as_deref(), Some(".."));
    assert!(m1.at.is_none());

    let bad = db("rasdaemon-0.8.5-aer-injected.db");
    let aer = tally(&bad, "aer_event");
    assert_eq!(aer.events, 20);
    assert_eq!(aer.of(EventClass::Corrected), 10);
    assert_eq!(aer.of(EventClass::Uncorrected), 10);
}

#[test]
fn a_file_that_is_not_a_database_is_an_error() {
    let e = read_db(&fixture("rows-corrected.sql"), OpenMode::ReadOnly).unwrap_err();
    assert!(e.to_string().contains("not an SQLite database"), "{e}");
    let e = read_db(Path::new("/nonexistent/ras.db"), OpenMode::ReadOnly).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/ras.db"), "{e}");
}

/// `ras-mc-ctl` with its database path (a constant in the script) pointed
/// at `db`. The real program is the judge here, so its absence is a
/// failure, not a skip: `scripts/bootstrap --test` installs `rasdaemon`
/// (with Perl's DBD::SQLite).
fn ras_mc_ctl(db: &Path, args: &[&str]) -> String {
    let script = ["/usr/sbin/ras-mc-ctl", "/usr/bin/ras-mc-ctl"]
        .iter()
        .find(|p| Path::new(p).exists())
        .expect("ras-mc-ctl is not installed on this machine: `scripts/bootstrap --test` installs rasdaemon");
    let text = std::fs::read_to_string(script).unwrap();
    let mut out = String::new();
    let mut swapped = false;
    for line in text.lines() {
        if line.starts_with("my $dbname") {
            out.push_str(&format!("my $dbname = \"{}\";\n", db.display()));
            swapped = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(swapped, "{script}: no `my $dbname` line to point elsewhere");
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), out).unwrap();
    let o = std::process::Command::new("perl")
        .arg(tmp.path())
        .args(args)
        .output()
        .expect("run perl");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        !stderr.contains("DBD/SQLite") && !stderr.contains("DBI.pm"),
        "ras-mc-ctl lacks Perl's DBD::SQLite (libdbd-sqlite3-perl, a dependency of rasdaemon): {stderr}"
    );
    assert!(o.status.success(), "ras-mc-ctl {args:?}: {stderr}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn source_lines(name: &str, from: usize) -> Vec<String> {
    std::fs::read_to_string(fixture("sources").join(name))
        .unwrap()
        .lines()
        .skip(from - 1)
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn ras_mc_ctl_prints_the_lines_the_fixture_rows_came_from() {
    let corrected = fixture("rasdaemon-0.8.5-corrected.db");
    let errors = ras_mc_ctl(&corrected, &["--errors"]);
    let lines: Vec<&str> = errors.lines().collect();
    for l in source_lines(
        "osm-operations-issue759.ras-mc-ctl--errors.mc-section.txt",
        2,
    ) {
        assert!(
            lines.contains(&l.as_str()),
            "ras-mc-ctl did not print {l}\n{errors}"
        );
    }
    for l in source_lines("rasdaemon-pr12.ras-mc-ctl--errors.aer-section.txt", 2) {
        assert!(
            lines.contains(&l.as_str()),
            "ras-mc-ctl did not print {l}\n{errors}"
        );
    }
    // The MCE rows of two sources, renumbered 1-4 in the fixture.
    let mce: Vec<String> = source_lines("rasdaemon-issue121.ras-mc-ctl--errors.txt", 14)
        .into_iter()
        .chain(source_lines(
            "nixos-infra-pr523.ras-mc-ctl--errors.mce-rows.txt",
            2,
        ))
        .collect();
    for (i, l) in mce.iter().enumerate() {
        let body = l.split_once(' ').unwrap().1;
        let want = format!("{} {body}", i + 1);
        assert!(
            lines.contains(&want.as_str()),
            "ras-mc-ctl did not print {want}\n{errors}"
        );
    }

    // --summary counts what the reader counts, table by table.
    let summary = ras_mc_ctl(&corrected, &["--summary"]);
    let d = db("rasdaemon-0.8.5-corrected.db");
    let sums = summary_counts(&summary);
    assert_eq!(
        sums.get("Memory controller"),
        Some(&tally(&d, "mc_event").events)
    );
    assert_eq!(sums.get("PCIe AER"), Some(&tally(&d, "aer_event").events));
    assert_eq!(sums.get("MCE"), Some(&tally(&d, "mce_record").events));

    let injected = fixture("rasdaemon-0.8.5-aer-injected.db");
    let summary = ras_mc_ctl(&injected, &["--summary"]);
    let mut want: Vec<String> = source_lines("rasdaemon-issue228.ras-mc-ctl--summary.txt", 1)
        .into_iter()
        .filter(|l| l.starts_with("        "))
        .map(|l| l.trim().replace("**", "").trim().to_string())
        .collect();
    let mut got: Vec<String> = summary
        .lines()
        .filter(|l| l.starts_with('\t'))
        .map(|l| l.trim().to_string())
        .collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    let d = db("rasdaemon-0.8.5-aer-injected.db");
    assert_eq!(
        summary_counts(&summary).get("PCIe AER"),
        Some(&tally(&d, "aer_event").events)
    );
}

/// Events per section of `ras-mc-ctl --summary` (its "errors: N" and
/// "\tN … errors" forms).
fn summary_counts(text: &str) -> std::collections::BTreeMap<&'static str, u64> {
    let mut out = std::collections::BTreeMap::new();
    let mut section = "";
    for line in text.lines() {
        if line.starts_with("Memory controller events summary") {
            section = "Memory controller";
        } else if line.starts_with("PCIe AER events summary") {
            section = "PCIe AER";
        } else if line.starts_with("MCE records summary") {
            section = "MCE";
        } else if let Some(l) = line.strip_prefix('\t') {
            let n: u64 = match l.rsplit_once("errors: ") {
                Some((_, n)) if section == "Memory controller" => n.trim().parse().unwrap(),
                _ => l.split_whitespace().next().unwrap().parse().unwrap(),
            };
            *out.entry(section).or_insert(0) += n;
        } else if line.trim().is_empty() {
            section = "";
        }
    }
    out
}

// ---------------------------------------------------------------- the case

const DB: &str = "/var/lib/rasdaemon/ras-mc_event.db";

fn with_db(name: &str) -> Scripted {
    Scripted::new("sut").file(DB, std::fs::read(fixture(name)).unwrap())
}

fn run(target: &Scripted, params: &str) -> (certlab_suites::CaseOutcome, Vec<Evidence>) {
    common::check_with(
        "ras-rasdaemon",
        target,
        &HardwareProfile::default(),
        params,
        Duration::from_secs(30),
    )
}

fn metric(o: &certlab_suites::CaseOutcome, name: &str) -> f64 {
    o.metrics.iter().find(|m| m.name == name).unwrap().value
}

#[test]
fn corrected_errors_pass_the_uncorrected_case_and_fail_a_zero_limit() {
    let t = with_db("rasdaemon-0.8.5-corrected.db");
    let (o, ev) = run(&t, "since = \"all\"");
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    assert!(o.reason.contains("no uncorrected error"), "{}", o.reason);
    assert!(o.reason.contains("mc_event 5 corrected"), "{}", o.reason);
    assert_eq!(metric(&o, "rasdaemon.corrected"), 14.0);
    assert_eq!(metric(&o, "rasdaemon.uncorrected"), 0.0);
    // The database itself and the rows decoded from it are the evidence.
    assert!(ev
        .iter()
        .any(|e| matches!(e, Evidence::File { path, .. } if path == DB)));
    assert!(ev
        .iter()
        .any(|e| matches!(e, Evidence::Command { cmd, .. } if cmd.starts_with("certlab ras db"))));

    let (o, _) = run(
        &t,
        "since = \"all\"\nerrors = \"corrected\"\nmax_corrected = 0",
    );
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(o.reason.contains("14 corrected errors"), "{}", o.reason);
    assert!(
        o.reason.contains("CPU_SrcID#1_MC#1_Chan#1_DIMM#0"),
        "{}",
        o.reason
    );
    let (o, _) = run(
        &t,
        "since = \"all\"\nerrors = \"corrected\"\nmax_corrected = 14",
    );
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
}

#[test]
fn uncorrected_aer_errors_fail_with_the_events_named() {
    let t = with_db("rasdaemon-0.8.5-aer-injected.db");
    let (o, _) = run(&t, "since = \"all\"");
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason.starts_with("10 uncorrected errors"),
        "{}",
        o.reason
    );
    assert!(
        o.reason
            .contains("aer_event: device not recorded: Uncorrected (Fatal) error: ")
            && o.reason.contains("20 events in all, 23 tables read"),
        "{}",
        o.reason
    );
    assert!(o.reason.contains("(×6)"), "{}", o.reason);
    assert!(o.reason.contains("Completion Timeout"), "{}", o.reason);
    assert_eq!(metric(&o, "rasdaemon.uncorrected"), 10.0);
}

#[test]
fn since_boot_counts_the_rows_after_btime_and_those_without_a_time() {
    // Booted 2024-12-20 00:00:00 UTC: MCE rows 3 and 4 are later, row 1
    // ("..") has no time; everything else is older.
    let t = with_db("rasdaemon-0.8.5-corrected.db").file(
        "/proc/stat",
        "cpu  10 0 10 100 0 0 0 0 0 0\nbtime 1734652800\nprocesses 100\n",
    );
    let (o, _) = run(&t, "errors = \"corrected\"\nmax_corrected = 0");
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason
            .starts_with("3 corrected errors since boot (2024-12-20T00:00:00Z)"),
        "{}",
        o.reason
    );
    assert!(
        o.reason.contains("1 rows have no readable time"),
        "{}",
        o.reason
    );
    // With no boot time to go by, every row counts, and the reason says so.
    let t = with_db("rasdaemon-0.8.5-corrected.db");
    let (o, _) = run(&t, "errors = \"corrected\"\nmax_corrected = 0");
    assert!(
        o.reason.starts_with("14 corrected errors in all"),
        "{}",
        o.reason
    );
    assert!(o.reason.contains("boot time"), "{}", o.reason);
}

#[test]
fn no_database_skips_with_the_reason() {
    let (o, _) = run(&Scripted::new("sut"), "");
    assert_eq!(o.verdict, Verdict::Skip);
    assert!(
        o.reason.contains("rasdaemon is not installed"),
        "{}",
        o.reason
    );
    let t = Scripted::new("sut").command("command -v rasdaemon", 0, "/usr/sbin/rasdaemon\n", "");
    let (o, _) = run(&t, "");
    assert_eq!(o.verdict, Verdict::Skip);
    assert!(o.reason.contains("without --record"), "{}", o.reason);
    let t = with_db("rasdaemon-0.8.5-corrected.db").deny(DB);
    let (o, _) = run(&t, "");
    assert_eq!(o.verdict, Verdict::Skip);
    assert!(o.reason.contains("as root"), "{}", o.reason);
}

#[test]
fn an_oversized_or_broken_database_is_an_error_not_a_verdict() {
    let t = with_db("rasdaemon-0.8.5-corrected.db").command("stat -c %s", 0, "999999999\n", "");
    let e = common::try_check_with(
        "ras-rasdaemon",
        &t,
        &HardwareProfile::default(),
        "",
        Duration::from_secs(30),
    )
    .unwrap_err();
    assert!(e.to_string().contains("max_db_mib"), "{e}");
    let t = Scripted::new("sut").file(DB, "not a database\n");
    let e = common::try_check_with(
        "ras-rasdaemon",
        &t,
        &HardwareProfile::default(),
        "",
        Duration::from_secs(30),
    )
    .unwrap_err();
    assert!(e.to_string().contains("not an SQLite database"), "{e}");
}

#[test]
fn the_case_reads_a_database_on_the_local_machine() {
    // Local: `stat` and the read are real.
    let path = fixture("rasdaemon-0.8.5-aer-injected.db");
    let params = format!("since = \"all\"\ndb = \"{}\"", path.display());
    let (o, ev) = common::check_with(
        "ras-rasdaemon",
        &Local::default(),
        &HardwareProfile::default(),
        &params,
        Duration::from_secs(30),
    );
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(ev.iter().any(
        |e| matches!(e, Evidence::Command { cmd, exit: Some(0), .. } if cmd.starts_with("stat -c %s"))
    ));
}

/// `CREATE TABLE` statements as SQLite keeps them, by table.
fn schema_of(db: &Path) -> std::collections::BTreeMap<String, String> {
    use sqlx::{ConnectOptions, Row};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(db)
            .read_only(true)
            .connect()
            .await
            .unwrap();
        sqlx::query("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
            .fetch_all(&mut c)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
            .collect()
    })
}

#[test]
fn the_generated_schema_is_what_the_real_rasdaemon_creates() {
    // gen_schema.py's statements for rasdaemon 0.8.5, as written to the
    // fixtures, match the ones the real 0.6.8 issued for the tables whose
    // columns did not change between the versions (SQLite keeps the text
    // without IF NOT EXISTS).
    let real = schema_of(&fixture("rasdaemon-0.6.8-debian-empty.db"));
    let generated: std::collections::BTreeMap<String, String> =
        std::fs::read_to_string(fixture("schema-0.8.5.sql"))
            .unwrap()
            .lines()
            .map(|l| {
                let sql = l.trim_end_matches(';').replace("IF NOT EXISTS ", "");
                let name = sql.split_whitespace().nth(2).unwrap().to_string();
                (name, sql)
            })
            .collect();
    assert_eq!(generated.len(), 23);
    for t in ["mc_event", "aer_event", "extlog_event"] {
        assert_eq!(real[t], generated[t], "{t}");
    }
    assert_ne!(real["mce_record"], generated["mce_record"]);
    // The fixture databases hold exactly the generated statements.
    for db in [
        "rasdaemon-0.8.5-corrected.db",
        "rasdaemon-0.8.5-aer-injected.db",
    ] {
        assert_eq!(schema_of(&fixture(db)), generated, "{db}");
    }
}
