//! JUnit XML (`junit.xml`) as Jenkins and GitLab read it.
//!
//! One `<testsuite>` per run, one `<testcase>` per case. `fail` of a blocker
//! becomes `<failure>`, `error` and `crash` become `<error type="error|crash">`,
//! `skip` becomes `<skipped>`. A failed case that is not a blocker is a
//! warning: it does not fail the run, so it has no `<failure>` (CI stays
//! green, as the exit status does); its `<system-out>` starts with
//! `WARNING` and its `certlab.verdict` property says `warning`. Every
//! testcase carries `certlab.verdict` and `certlab.blocker` properties. The
//! counts on `<testsuite>` and `<testsuites>` are computed from the cases, so
//! they always equal the child elements.

use std::io;

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

use crate::model::{Better, CaseResult, Evidence, RunRecord, Summary, Verdict};

/// Renders `record` as a JUnit XML document (UTF-8, XML 1.0).
///
/// Characters that XML 1.0 cannot carry (most C0 controls, U+FFFE, U+FFFF) are
/// written as visible escapes such as `\x1b`; in attribute values, line breaks
/// and tabs become spaces.
pub fn junit_xml(record: &RunRecord) -> String {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    match write_document(&mut writer, record) {
        Ok(()) => String::from_utf8_lossy(&writer.into_inner()).into_owned(),
        // Writing into a Vec<u8> has no I/O that could fail.
        Err(e) => unreachable!("writing XML into memory failed: {e}"),
    }
}

/// Replaces characters that XML 1.0 forbids with a visible `\xNN` / `\u{NNNN}` escape.
pub(crate) fn xml_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\x{:02x}", c as u32)),
            '\u{fffe}' | '\u{ffff}' => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// [`xml_text`] for an attribute value: also folds line breaks and tabs into
/// single spaces, since parsers normalise them away in attributes anyway.
fn xml_attr(s: &str) -> String {
    xml_text(s).split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Seconds with millisecond precision, as JUnit's `time` attribute.
fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// JUnit's `timestamp`: ISO 8601 in UTC without an offset.
fn junit_timestamp(t: OffsetDateTime) -> String {
    let fmt = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    t.to_offset(UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

fn write_document(w: &mut Writer<Vec<u8>>, record: &RunRecord) -> io::Result<()> {
    let counts = Summary::of_version(&record.cases, record.schema_version);
    let failures = counts.fail.to_string();
    let errors = (counts.error + counts.crash).to_string();
    let skipped = counts.skip.to_string();
    let tests = counts.total.to_string();
    let wall_ms = (record.finished - record.started)
        .whole_milliseconds()
        .max(0);
    let time = seconds(u64::try_from(wall_ms).unwrap_or(u64::MAX));
    let plan = xml_attr(&record.plan.id);

    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let suites = BytesStart::new("testsuites").with_attributes([
        ("name", "certlab"),
        ("tests", tests.as_str()),
        ("failures", failures.as_str()),
        ("errors", errors.as_str()),
        ("skipped", skipped.as_str()),
        ("time", time.as_str()),
    ]);
    w.write_event(Event::Start(suites))?;

    let timestamp = junit_timestamp(record.started);
    let hostname = xml_attr(&record.host.hostname);
    let suite = BytesStart::new("testsuite").with_attributes([
        ("name", plan.as_str()),
        ("id", record.run_id.as_str()),
        ("tests", tests.as_str()),
        ("failures", failures.as_str()),
        ("errors", errors.as_str()),
        ("skipped", skipped.as_str()),
        ("time", time.as_str()),
        ("timestamp", timestamp.as_str()),
        ("hostname", hostname.as_str()),
    ]);
    w.write_event(Event::Start(suite))?;
    write_properties(w, record)?;

    let classname = format!("certlab.{plan}");
    for case in &record.cases {
        write_case(w, &classname, case, record.schema_version)?;
    }
    w.write_event(Event::End(BytesEnd::new("testsuite")))?;
    w.write_event(Event::End(BytesEnd::new("testsuites")))?;
    Ok(())
}

fn write_properties(w: &mut Writer<Vec<u8>>, record: &RunRecord) -> io::Result<()> {
    let props = [
        ("certlab.run_id", record.run_id.as_str()),
        ("certlab.plan.version", record.plan.version.as_str()),
        ("certlab.plan.digest", record.plan.digest.as_str()),
        ("certlab.tool", record.tool.version.as_str()),
        ("certlab.arch", record.host.arch.as_str()),
        ("certlab.kernel", record.host.kernel.as_str()),
        ("certlab.os", record.host.os_name.as_str()),
        ("certlab.outcome", record.summary.outcome.as_str()),
    ];
    w.write_event(Event::Start(BytesStart::new("properties")))?;
    for (name, value) in props {
        let value = xml_attr(value);
        w.create_element("property")
            .with_attributes([("name", name), ("value", value.as_str())])
            .write_empty()?;
    }
    w.write_event(Event::End(BytesEnd::new("properties")))?;
    Ok(())
}

/// The verdict shown for a case of a record of `schema_version` (version 1
/// had no warnings).
fn shown_verdict(case: &CaseResult, schema_version: u32) -> &'static str {
    if schema_version >= 2 {
        case.shown_verdict()
    } else {
        case.verdict.as_str()
    }
}

fn write_case(
    w: &mut Writer<Vec<u8>>,
    classname: &str,
    case: &CaseResult,
    schema_version: u32,
) -> io::Result<()> {
    let name = xml_attr(&case.id);
    let time = seconds(case.duration_ms);
    let start = BytesStart::new("testcase").with_attributes([
        ("classname", classname),
        ("name", name.as_str()),
        ("time", time.as_str()),
    ]);
    w.write_event(Event::Start(start))?;
    let verdict = shown_verdict(case, schema_version);
    w.write_event(Event::Start(BytesStart::new("properties")))?;
    for (name, value) in [
        ("certlab.verdict", verdict),
        (
            "certlab.blocker",
            if case.blocker { "true" } else { "false" },
        ),
    ] {
        w.create_element("property")
            .with_attributes([("name", name), ("value", value)])
            .write_empty()?;
    }
    w.write_event(Event::End(BytesEnd::new("properties")))?;

    let message = xml_attr(&case.reason);
    let body = xml_text(&case.reason);
    match case.verdict {
        Verdict::Pass => {}
        Verdict::Fail if verdict == "warning" => {}
        Verdict::Fail => {
            w.create_element("failure")
                .with_attributes([("message", message.as_str()), ("type", "fail")])
                .write_text_content(BytesText::new(&body))?;
        }
        Verdict::Error | Verdict::Crash => {
            w.create_element("error")
                .with_attributes([
                    ("message", message.as_str()),
                    ("type", case.verdict.as_str()),
                ])
                .write_text_content(BytesText::new(&body))?;
        }
        Verdict::Skip => {
            w.create_element("skipped")
                .with_attributes([("message", message.as_str())])
                .write_empty()?;
        }
    }

    let out = xml_text(&system_out(case, verdict));
    w.create_element("system-out")
        .write_text_content(BytesText::new(&out))?;
    w.write_event(Event::End(BytesEnd::new("testcase")))?;
    Ok(())
}

/// The human summary of a case for `<system-out>`: title, reason (for passes
/// and warnings; other verdicts carry it in their own element), metrics and
/// evidence.
fn system_out(case: &CaseResult, verdict: &str) -> String {
    let mut s = String::new();
    if verdict == "warning" {
        s.push_str("WARNING: failed, not a blocker\n");
    }
    s.push_str(&format!("{} [{verdict}]\n", case.title));
    if case.verdict == Verdict::Pass || verdict == "warning" {
        s.push_str(&case.reason);
        s.push('\n');
    }
    if !case.metrics.is_empty() {
        s.push_str("metrics:\n");
        for m in &case.metrics {
            let better = match m.better {
                Better::Higher => "higher is better",
                Better::Lower => "lower is better",
            };
            s.push_str(&format!(
                "  {} = {} {} ({better})\n",
                m.name, m.value, m.unit
            ));
        }
    }
    if !case.evidence.is_empty() {
        s.push_str("evidence:\n");
        for e in &case.evidence {
            s.push_str("  ");
            s.push_str(&evidence_line(e));
            s.push('\n');
        }
    }
    s
}

/// One line describing a piece of evidence, with the artifact names to look up.
pub(crate) fn evidence_line(e: &Evidence) -> String {
    match e {
        Evidence::Command {
            cmd,
            exit,
            timed_out,
            duration_ms,
            stdout,
            stderr,
        } => {
            let status = match (exit, timed_out) {
                (_, true) => "timed out".to_string(),
                (Some(code), false) => format!("exit {code}"),
                (None, false) => "killed".to_string(),
            };
            format!(
                "$ {cmd} -> {status} in {} s; stdout evidence/{} ({} bytes), stderr evidence/{} ({} bytes)",
                seconds(*duration_ms),
                stdout.sha256,
                stdout.size,
                stderr.sha256,
                stderr.size
            )
        }
        Evidence::File { path, content } => format!(
            "file {path}: evidence/{} ({} bytes)",
            content.sha256, content.size
        ),
        Evidence::Missing { path, error } => format!("missing {path}: {error}"),
        Evidence::Bmc { source, content } => format!(
            "BMC {source}: evidence/{} ({} bytes)",
            content.sha256, content.size
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn forbidden_characters_are_escaped() {
        assert_eq!(
            xml_text("a\u{1b}[31mb\u{0}c\td\n"),
            "a\\x1b[31mb\\x00c\td\n"
        );
        assert_eq!(xml_text("\u{fffe}"), "\\u{fffe}");
        assert_eq!(xml_attr(" two\nlines\tand\r\n more "), "two lines and more");
    }

    #[test]
    fn times_are_seconds_with_millis() {
        assert_eq!(seconds(0), "0.000");
        assert_eq!(seconds(61230), "61.230");
        let t = OffsetDateTime::from_unix_timestamp(1_741_944_413)
            .unwrap()
            .to_offset(UtcOffset::from_hms(8, 0, 0).unwrap());
        assert_eq!(junit_timestamp(t), "2025-03-14T09:26:53");
    }
}
