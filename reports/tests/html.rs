//! report.html: every case, escaped text, relative evidence links, no external assets.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use certlab_reports::{report_html, Evidence};

/// Text as tera's HTML autoescape writes it.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2F;")
}

#[test]
fn report_lists_cases_evidence_and_hardware() {
    let record = common::fixture();
    let html = report_html(&record).unwrap();
    if let Ok(dir) = std::env::var("CERTLAB_HTML_OUT") {
        std::fs::write(std::path::Path::new(&dir).join("report.html"), &html).unwrap();
    }
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(
        html.contains("<title>certlab report: taishan-07.lab — server-cert 2025.1</title>"),
        "title"
    );
    for case in &record.cases {
        assert!(html.contains(&case.id), "case {}", case.id);
        assert!(html.contains(&esc(&case.reason)), "reason of {}", case.id);
        assert!(
            html.contains(&format!("v-{}", case.shown_verdict())),
            "verdict colour {}",
            case.shown_verdict()
        );
    }
    // Every artifact of every case and of the inventory is linked relatively.
    for e in record
        .cases
        .iter()
        .flat_map(|c| &c.evidence)
        .chain(&record.inventory)
    {
        match e {
            Evidence::Command {
                cmd,
                exit,
                stdout,
                stderr,
                ..
            } => {
                assert!(html.contains(&format!("href=\"evidence/{}\"", stdout.sha256)));
                assert!(html.contains(&format!("href=\"evidence/{}\"", stderr.sha256)));
                assert!(html.contains(&esc(cmd)), "{cmd}");
                if let Some(code) = exit {
                    assert!(html.contains(&format!("exit {code}")));
                }
            }
            Evidence::File { path, content } => {
                assert!(html.contains(&format!("href=\"evidence/{}\"", content.sha256)));
                assert!(html.contains(&esc(path)), "{path}");
            }
            Evidence::Missing { path, error } => {
                assert!(html.contains(&esc(path)), "{path}");
                assert!(html.contains(&esc(error)), "{error}");
            }
            Evidence::Bmc { source, content } => {
                assert!(html.contains(&format!("href=\"evidence/{}\"", content.sha256)));
                assert!(html.contains(&format!("BMC {source}")), "{source}");
            }
        }
    }
    for text in [
        "Discovery inventory",
        "Hardware profile",
        "PCI devices",
        "0000:81:00.0",
        "15b3:1017",
        "mlx5_core",
        "Kunpeng-920",
        "TSV110",
        "512.0 GiB",
        "timed out",
        "killed",
        "Ascend 310P",
    ] {
        assert!(html.contains(text), "{text}");
    }
    // Self-contained: no external scripts, styles, fonts or images.
    for external in [
        "<script", "<link", "src=", "http://", "https://", "@import", "url(",
    ] {
        assert!(!html.contains(external), "{external}");
    }
}

#[test]
fn reasons_and_names_are_escaped() {
    let mut record = common::fixture();
    record.cases[0].reason = "<script>alert('x')</script> & more".into();
    record.cases[0].title = "<b>bold</b>".into();
    record.host.hostname = "<img src=x onerror=alert(1)>".into();
    if let Evidence::Command { stdout, .. } = &mut record.cases[0].evidence[0] {
        stdout.sha256 = "\"><script>alert(2)</script>".into();
    }
    let html = report_html(&record).unwrap();
    assert!(!html.contains("<script>"), "unescaped script");
    assert!(!html.contains("<img"), "unescaped img");
    assert!(!html.contains("<b>bold"), "unescaped title");
    assert!(html.contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;&#x2F;script&gt; &amp; more"));
    assert!(
        !html.contains("href=\"evidence/\""),
        "link from a non-sha256 name"
    );
}
