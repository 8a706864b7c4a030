//! The human report (`report.html`): one self-contained page, no external
//! assets, readable from a directory or from an unpacked bundle without a server.
//!
//! The template is `reports/templates/report.html.tera`, rendered by tera with
//! autoescaping on. The view it renders is prepared here: every value is text,
//! and the only markup-sensitive values marked `safe` in the template are links
//! built from validated sha256 names and the performance plots, SVG that
//! [`crate::plot`] builds from numbers and escaped text.

use serde::Serialize;
use tera::{Context, Tera};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::artifacts::is_sha256_hex;
use crate::error::ReportError;
use crate::model::{ArtifactRef, Better, CaseResult, Evidence, RunRecord, Summary, Verdict};

const TEMPLATE_NAME: &str = "report.html";
const TEMPLATE: &str = include_str!("../templates/report.html.tera");

/// Renders `record` as a self-contained HTML page.
///
/// Evidence links are relative (`evidence/<sha256>`), so the page works beside
/// the `evidence/` directory it was written with.
pub fn report_html(record: &RunRecord) -> Result<String, ReportError> {
    let mut tera = Tera::default();
    tera.add_raw_template(TEMPLATE_NAME, TEMPLATE)
        .map_err(|e| template_error(&e))?;
    let view = View::of(record);
    let context = Context::from_serialize(&view).map_err(|e| template_error(&e))?;
    tera.render(TEMPLATE_NAME, &context)
        .map_err(|e| template_error(&e))
}

/// Tera's messages are spread over the source chain; keep all of it.
fn template_error(e: &tera::Error) -> ReportError {
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    ReportError::Template {
        template: "report.html.tera",
        detail,
    }
}

#[derive(Serialize)]
struct View {
    title: String,
    run_id: String,
    tool: String,
    plan_id: String,
    plan_version: String,
    plan_digest: String,
    started: String,
    finished: String,
    wall: String,
    host: Vec<Row>,
    hardware: Vec<Row>,
    pci: Vec<PciRow>,
    accelerators: Vec<String>,
    outcome: &'static str,
    counts: Vec<Count>,
    /// Whether the summary stored in the record differs from its cases.
    summary_mismatch: bool,
    cases: Vec<CaseView>,
    inventory: Vec<EvidenceView>,
}

#[derive(Serialize)]
struct Row {
    key: &'static str,
    value: String,
}

#[derive(Serialize)]
struct PciRow {
    address: String,
    id: String,
    class: String,
    name: String,
    driver: String,
}

#[derive(Serialize)]
struct Count {
    verdict: &'static str,
    count: u32,
}

#[derive(Serialize)]
struct CaseView {
    anchor: String,
    id: String,
    title: String,
    blocker: bool,
    verdict: &'static str,
    reason: String,
    started: String,
    duration: String,
    metrics: Vec<String>,
    evidence: Vec<EvidenceView>,
    /// The comparison with a stored performance baseline, when there was one.
    baseline: Option<BaselineView>,
}

#[derive(Serialize)]
struct BaselineView {
    /// Which baseline: scope, key, source run, kernel, plan version, when.
    about: String,
    plots: Vec<PlotView>,
}

#[derive(Serialize)]
struct PlotView {
    name: String,
    verdict: &'static str,
    /// The change, its interval and p-value, and why.
    summary: String,
    /// The inline SVG (see [`crate::plot::baseline_strip`]).
    svg: String,
}

#[derive(Serialize)]
struct EvidenceView {
    kind: &'static str,
    /// The command or the file path.
    label: String,
    /// `exit 0`, `timed out`, `killed`, `unreadable: …`.
    status: String,
    /// Whether the status is a problem (non-zero exit, timeout, missing file).
    bad: bool,
    links: Vec<Link>,
}

#[derive(Serialize)]
struct Link {
    name: &'static str,
    /// `evidence/<sha256>`, only when the sha256 is well formed.
    href: Option<String>,
    sha256: String,
    size: String,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// `412 ms`, `2.2 s`, `1 min 35 s`, `1 h 14 min`.
fn duration(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms} ms"),
        1_000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..=3_599_999 => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
        _ => format!("{} h {} min", ms / 3_600_000, (ms % 3_600_000) / 60_000),
    }
}

/// `512 B`, `3.4 KiB`, `512.0 GiB`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "—".to_string(), T::to_string)
}

fn link(name: &'static str, a: &ArtifactRef) -> Link {
    Link {
        name,
        href: is_sha256_hex(&a.sha256).then(|| format!("evidence/{}", a.sha256)),
        sha256: a.sha256.clone(),
        size: bytes(a.size),
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_string(), |v| format!("{v:+.1} %"))
}

/// The case's comparison with its baseline, one plot per judged metric.
fn baseline_view(c: &CaseResult) -> Option<BaselineView> {
    let b = c.baseline.as_ref()?;
    let about = format!(
        "{} baseline of {}: run {} (kernel {}, plan version {}), set {}; changes within ±{} % are of no consequence",
        b.scope,
        b.key,
        b.source_run,
        b.kernel,
        b.plan_version,
        rfc3339(b.created),
        b.threshold_pct
    );
    let plots = b
        .metrics
        .iter()
        .map(|m| {
            let samples: Vec<f64> = c
                .metrics
                .iter()
                .filter(|x| x.name == m.name)
                .map(|x| x.value)
                .collect();
            PlotView {
                name: m.name.clone(),
                verdict: m.verdict.as_str(),
                summary: format!(
                    "{}: change {} (95 % interval {} to {}), p = {}; {}",
                    m.verdict,
                    pct(m.change_pct),
                    pct(m.ci_low_pct),
                    pct(m.ci_high_pct),
                    m.p_value
                        .map_or_else(|| "—".to_string(), |p| format!("{p:.3}")),
                    m.reason
                ),
                svg: crate::plot::baseline_strip(m, &samples),
            }
        })
        .collect();
    Some(BaselineView { about, plots })
}

fn evidence_view(e: &Evidence) -> EvidenceView {
    match e {
        Evidence::Command {
            cmd,
            exit,
            timed_out,
            duration_ms,
            stdout,
            stderr,
        } => {
            let (status, bad) = match (exit, timed_out) {
                (_, true) => ("timed out".to_string(), true),
                (Some(code), false) => (format!("exit {code}"), *code != 0),
                (None, false) => ("killed".to_string(), true),
            };
            EvidenceView {
                kind: "command",
                label: cmd.clone(),
                status: format!("{status} after {}", duration(*duration_ms)),
                bad,
                links: vec![link("stdout", stdout), link("stderr", stderr)],
            }
        }
        Evidence::File { path, content } => EvidenceView {
            kind: "file",
            label: path.clone(),
            status: "read".to_string(),
            bad: false,
            links: vec![link("content", content)],
        },
        Evidence::Bmc { source, content } => EvidenceView {
            kind: "bmc",
            label: format!("BMC {source}"),
            status: "kept".to_string(),
            bad: false,
            links: vec![link("content", content)],
        },
        Evidence::Missing { path, error } => EvidenceView {
            kind: "missing",
            label: path.clone(),
            status: format!("unreadable: {error}"),
            bad: true,
            links: Vec::new(),
        },
    }
}

impl View {
    fn of(r: &RunRecord) -> View {
        let h = &r.host;
        let p = &r.profile;
        let counts = Summary::of_version(&r.cases, r.schema_version);
        let wall_ms = (r.finished - r.started).whole_milliseconds().max(0);
        View {
            title: format!("{} — {} {}", h.hostname, r.plan.id, r.plan.version),
            run_id: r.run_id.clone(),
            tool: format!("{} {}", r.tool.name, r.tool.version),
            plan_id: r.plan.id.clone(),
            plan_version: r.plan.version.clone(),
            plan_digest: r.plan.digest.clone(),
            started: rfc3339(r.started),
            finished: rfc3339(r.finished),
            wall: duration(u64::try_from(wall_ms).unwrap_or(u64::MAX)),
            host: vec![
                Row {
                    key: "hostname",
                    value: h.hostname.clone(),
                },
                Row {
                    key: "machine id",
                    value: opt(&h.machine_id),
                },
                Row {
                    key: "operating system",
                    value: h.os_name.clone(),
                },
                Row {
                    key: "os id / version",
                    value: format!("{} {}", h.os_id, h.os_version),
                },
                Row {
                    key: "kernel",
                    value: h.kernel.clone(),
                },
                Row {
                    key: "architecture",
                    value: h.arch.clone(),
                },
            ],
            hardware: vec![
                Row {
                    key: "CPU family",
                    value: p.cpu_family.clone(),
                },
                Row {
                    key: "CPU vendor",
                    value: p.cpu_vendor.clone(),
                },
                Row {
                    key: "CPU model",
                    value: p.cpu_model.clone(),
                },
                Row {
                    key: "CPU core",
                    value: opt(&p.cpu_core),
                },
                Row {
                    key: "sockets",
                    value: opt(&p.sockets),
                },
                Row {
                    key: "cores",
                    value: opt(&p.cores),
                },
                Row {
                    key: "threads",
                    value: opt(&p.threads),
                },
                Row {
                    key: "memory",
                    value: p.memory_bytes.map_or_else(|| "—".to_string(), bytes),
                },
                Row {
                    key: "system vendor",
                    value: opt(&p.system_vendor),
                },
                Row {
                    key: "system product",
                    value: opt(&p.system_product),
                },
                Row {
                    key: "BIOS version",
                    value: opt(&p.bios_version),
                },
            ],
            pci: p
                .pci_devices
                .iter()
                .map(|d| PciRow {
                    address: d.address.clone(),
                    id: d.id.clone(),
                    class: d.class.clone(),
                    name: opt(&d.name),
                    driver: opt(&d.driver),
                })
                .collect(),
            accelerators: p.accelerators.clone(),
            outcome: r.summary.outcome.as_str(),
            counts: vec![
                Count {
                    verdict: Verdict::Pass.as_str(),
                    count: counts.pass,
                },
                Count {
                    verdict: Verdict::Fail.as_str(),
                    count: counts.fail,
                },
                Count {
                    verdict: "warning",
                    count: counts.warning,
                },
                Count {
                    verdict: Verdict::Skip.as_str(),
                    count: counts.skip,
                },
                Count {
                    verdict: Verdict::Error.as_str(),
                    count: counts.error,
                },
                Count {
                    verdict: Verdict::Crash.as_str(),
                    count: counts.crash,
                },
            ],
            summary_mismatch: counts != r.summary,
            cases: r
                .cases
                .iter()
                .enumerate()
                .map(|(i, c)| CaseView {
                    anchor: format!("case-{i}"),
                    id: c.id.clone(),
                    title: c.title.clone(),
                    blocker: c.blocker,
                    // A failed non-blocker shows as a warning (since version 2).
                    verdict: if r.schema_version >= 2 {
                        c.shown_verdict()
                    } else {
                        c.verdict.as_str()
                    },
                    reason: c.reason.clone(),
                    started: rfc3339(c.started),
                    duration: duration(c.duration_ms),
                    metrics: c
                        .metrics
                        .iter()
                        .map(|m| {
                            let arrow = match m.better {
                                Better::Higher => "↑",
                                Better::Lower => "↓",
                            };
                            format!("{} = {} {} {arrow}", m.name, m.value, m.unit)
                        })
                        .collect(),
                    evidence: c.evidence.iter().map(evidence_view).collect(),
                    baseline: baseline_view(c),
                })
                .collect(),
            inventory: r.inventory.iter().map(evidence_view).collect(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_read_well() {
        assert_eq!(duration(412), "412 ms");
        assert_eq!(duration(2210), "2.2 s");
        assert_eq!(duration(95_012), "1 min 35 s");
        assert_eq!(duration(4_454_000), "1 h 14 min");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(549_755_813_888), "512.0 GiB");
    }

    #[test]
    fn links_only_for_well_formed_digests() {
        let bad = ArtifactRef {
            sha256: "javascript:alert(1)".into(),
            size: 1,
        };
        assert!(link("stdout", &bad).href.is_none());
        let good = ArtifactRef {
            sha256: crate::sha256_hex(b"x"),
            size: 1,
        };
        assert_eq!(
            link("stdout", &good).href.as_deref(),
            Some(format!("evidence/{}", good.sha256).as_str())
        );
    }
}
