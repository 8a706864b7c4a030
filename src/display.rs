//! Terminal output: progress while a run goes, tables when it is done.

use std::io::{IsTerminal, Write};
use std::time::Instant;

use crate::error::{redact, Result};
use certlab_harness::{Outputs, RunDetail, RunEvent, RunRow};
use certlab_reports::{CaseResult, RunRecord};

use crate::format::Format;

/// The verdict a report shows for a case: a failed non-blocker is a
/// `warning` in records of schema version 2 on.
fn shown(c: &CaseResult, schema_version: u32) -> &'static str {
    if schema_version >= 2 {
        c.shown_verdict()
    } else {
        c.verdict.as_str()
    }
}

fn paint(label: &str, color: bool) -> String {
    let s = format!("{label:<7}");
    if !color {
        return s;
    }
    let code = match label {
        "pass" => "32",
        "fail" | "crash" => "31",
        "skip" => "2",
        "warning" => "35",
        _ => "33",
    };
    format!("\x1b[{code}m{s}\x1b[0m")
}

fn clip(s: &str, n: usize) -> String {
    let one_line = s.replace('\n', " ");
    if one_line.chars().count() <= n {
        one_line
    } else {
        let mut t: String = one_line.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Prints a line per stage and per case on stderr (human format only).
pub struct Progress {
    format: Format,
    color: bool,
    start: Instant,
}

impl Progress {
    pub fn new(format: Format) -> Progress {
        Progress {
            format,
            color: std::io::stderr().is_terminal(),
            start: Instant::now(),
        }
    }

    pub fn event(&mut self, ev: &RunEvent) {
        if self.format != Format::Human {
            return;
        }
        let t = self.start.elapsed().as_secs_f64();
        let mut err = std::io::stderr().lock();
        let _ = match ev {
            RunEvent::RunStarted {
                run_id,
                plan_id,
                plan_version,
                target,
                out_dir,
            } => writeln!(
                err,
                "certlab: run {run_id}: plan {plan_id} {plan_version} on {target}, outputs in {out_dir}"
            ),
            RunEvent::Discovered {
                hostname,
                kernel,
                cpu,
                family,
                facts,
                notes,
            } => {
                let _ = writeln!(
                    err,
                    "[{t:6.1}s] discovered {hostname}: {family} `{cpu}`, kernel {kernel}, {facts} facts"
                );
                for n in notes {
                    let _ = writeln!(err, "          note: {n}");
                }
                Ok(())
            }
            RunEvent::Selected { selected, skipped } => writeln!(
                err,
                "[{t:6.1}s] {selected} cases selected, {skipped} do not apply"
            ),
            RunEvent::CaseFinished {
                index,
                total,
                result,
            } => writeln!(
                err,
                "[{t:6.1}s] {:>2}/{total} {} {:<22} {:>7.2}s  {}",
                index + 1,
                paint(result.shown_verdict(), self.color),
                result.id,
                result.duration_ms as f64 / 1000.0,
                clip(&result.reason, 100)
            ),
            RunEvent::CaseRetried {
                index,
                id,
                attempt,
                error,
            } => writeln!(
                err,
                "[{t:6.1}s] {:>2} {id}: infrastructure error, attempt {attempt}: {}",
                index + 1,
                clip(error, 100)
            ),
            RunEvent::Rebooted {
                index,
                id,
                boot_id,
                declared,
            } => writeln!(
                err,
                "[{t:6.1}s] {:>2} {id}: {} boot {boot_id}",
                index + 1,
                if *declared { "rebooted as declared," } else { "back after a crash," }
            ),
            RunEvent::Resumed { kept } => writeln!(
                err,
                "resuming: {} case(s) kept from an earlier attempt",
                kept.len()
            ),
            RunEvent::Swept {
                entries,
                critical,
                error,
            } => match error {
                None => writeln!(
                    err,
                    "BMC event log over the run: {entries} entries, {critical} critical"
                ),
                Some(e) => writeln!(err, "BMC event log not read: {}", clip(e, 100)),
            },
            RunEvent::CaseStarted { .. }
            | RunEvent::StageChanged { .. }
            | RunEvent::Published { .. }
            | RunEvent::RunFinished { .. }
            | RunEvent::StepStarted { .. }
            | RunEvent::Prepared { .. }
            | RunEvent::Provisioned { .. }
            | RunEvent::Released { .. } => Ok(()),
        };
    }
}

/// The summary table at the end of a run, on stdout.
pub fn print_summary(r: &RunRecord, o: &Outputs) {
    let color = std::io::stdout().is_terminal();
    println!();
    println!(
        "{} — plan {} {} on {} ({} {})",
        r.run_id, r.plan.id, r.plan.version, r.host.hostname, r.host.os_name, r.host.kernel
    );
    println!("{:<22} {:<7} {:>8}  reason", "case", "verdict", "time");
    for c in &r.cases {
        println!(
            "{:<22} {} {:>8.2}s  {}",
            c.id,
            paint(shown(c, r.schema_version), color),
            c.duration_ms as f64 / 1000.0,
            clip(&c.reason, 90)
        );
    }
    let s = &r.summary;
    println!(
        "\n{}: {} cases — {} pass, {} fail, {} warning, {} skip, {} error, {} crash in {:.1}s",
        s.outcome.as_str().to_uppercase(),
        s.total,
        s.pass,
        s.fail,
        s.warning,
        s.skip,
        s.error,
        s.crash,
        (r.finished - r.started).as_seconds_f64()
    );
    println!("results {}", o.results.display());
    println!("junit   {}", o.junit.display());
    println!("report  {}", o.html.display());
    println!(
        "bundle  {} (signed by key {})",
        o.bundle.display(),
        o.key_id
    );
}

fn row_json(r: &RunRow) -> serde_json::Value {
    serde_json::json!({
        "id": r.id,
        "plan": r.plan_id,
        "plan_version": r.plan_version,
        "plan_digest": r.plan_digest,
        "target": redact(&r.target),
        "hostname": r.hostname,
        "kernel": r.kernel,
        "state": r.state.as_str(),
        "outcome": r.outcome.map(|o| o.as_str()),
        "pass": r.pass, "fail": r.fail, "warning": r.warning, "skip": r.skip, "error": r.error, "crash": r.crash,
        "started": r.started.format(&time::format_description::well_known::Rfc3339).ok(),
        "finished": r.finished.and_then(|f| f.format(&time::format_description::well_known::Rfc3339).ok()),
        "interrupt_reason": r.interrupt_reason.as_deref().map(redact),
        "out_dir": r.out_dir.as_deref().map(redact),
    })
}

/// `runs list`.
pub fn print_runs(rows: &[RunRow], format: Format) -> Result<()> {
    if format == Format::Json {
        let v: Vec<_> = rows.iter().map(row_json).collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "{:<36} {:<20} {:<12} {:<11} {:<7} {:>4} {:>4} {:>4} {:>4} {:>4}",
        "run", "started", "plan", "state", "outcome", "pass", "fail", "warn", "skip", "err"
    );
    for r in rows {
        let started = r
            .started
            .format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]"
            ))
            .unwrap_or_default();
        println!(
            "{:<36} {:<20} {:<12} {:<11} {:<7} {:>4} {:>4} {:>4} {:>4} {:>4}",
            r.id,
            started,
            r.plan_id,
            r.state.as_str(),
            r.outcome.map_or("-", |o| o.as_str()),
            r.pass,
            r.fail,
            r.warning,
            r.skip,
            r.error + r.crash
        );
    }
    Ok(())
}

/// `runs show`.
pub fn print_run(d: &RunDetail, format: Format) -> Result<()> {
    if format == Format::Json {
        let v =
            serde_json::json!({ "run": row_json(&d.run), "cases": d.cases, "record": d.record });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let r = &d.run;
    println!("run      {}", r.id);
    println!(
        "plan     {} {} ({})",
        r.plan_id, r.plan_version, r.plan_digest
    );
    println!(
        "target   {} ({}, kernel {})",
        redact(&r.target),
        r.hostname,
        r.kernel
    );
    println!(
        "state    {}{}",
        r.state.as_str(),
        r.interrupt_reason
            .as_ref()
            .map(|w| format!(": {}", redact(w)))
            .unwrap_or_default()
    );
    println!("outcome  {}", r.outcome.map_or("-", |o| o.as_str()));
    println!(
        "cases    {} pass, {} fail, {} warning, {} skip, {} error, {} crash",
        r.pass, r.fail, r.warning, r.skip, r.error, r.crash
    );
    if let Some(o) = &r.out_dir {
        println!("outputs  {}", redact(o));
    }
    println!();
    // Cases of a run whose record is of version 1 show as they were judged then.
    let version = d
        .record
        .as_ref()
        .map_or(certlab_reports::SCHEMA_VERSION, |r| r.schema_version);
    for c in &d.cases {
        println!(
            "{:<22} {} {:>8.2}s  {}",
            c.id,
            paint(shown(c, version), false),
            c.duration_ms as f64 / 1000.0,
            clip(&c.reason, 100)
        );
    }
    Ok(())
}
