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

/// Every `<svg>…</svg>` of a page.
fn svgs(html: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("<svg") {
        let end = rest[i..].find("</svg>").unwrap() + i + "</svg>".len();
        out.push(&rest[i..end]);
        rest = &rest[end..];
    }
    out
}

/// Parses `svg` as XML (any error fails the test): the root element's name,
/// and the `class` of each `circle`, in order.
fn parse_svg(svg: &str) -> (String, Vec<String>) {
    use quick_xml::events::{BytesStart, Event};
    let mut reader = quick_xml::Reader::from_str(svg);
    reader.config_mut().check_end_names = true;
    let mut root = None;
    let mut circles = Vec::new();
    let mut open = 0i32;
    let mut note = |e: &BytesStart, root: &mut Option<String>| {
        let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
        if name == "circle" {
            let class = e.try_get_attribute("class").unwrap().unwrap();
            circles.push(String::from_utf8(class.value.to_vec()).unwrap());
        }
        root.get_or_insert(name);
    };
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) => {
                note(&e, &mut root);
                open += 1;
            }
            Event::Empty(e) => note(&e, &mut root),
            Event::End(_) => open -= 1,
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(open, 0, "unbalanced: {svg}");
    (root.unwrap(), circles)
}

#[test]
fn a_compared_performance_case_has_a_well_formed_plot_with_a_point_per_sample() {
    let record = common::fixture();
    let html = report_html(&record).unwrap();
    let case = record.cases.iter().find(|c| c.baseline.is_some()).unwrap();
    let b = case.baseline.as_ref().unwrap();
    let plots = svgs(&html);
    assert_eq!(plots.len(), b.metrics.len());
    let (root, circles) = parse_svg(plots[0]);
    assert_eq!(root, "svg");
    let m = &b.metrics[0];
    let candidate = case.metrics.iter().filter(|x| x.name == m.name).count();
    assert_eq!(
        circles.iter().filter(|c| *c == "baseline").count(),
        m.baseline.len()
    );
    assert_eq!(
        circles.iter().filter(|c| *c == "candidate").count(),
        candidate
    );
    assert_eq!(circles.len(), m.baseline.len() + candidate);
    // No script, no link out of the page.
    assert!(!plots[0].contains("<script") && !plots[0].contains("href"));
    assert!(html.contains("id=\"performance\""));
    // A record without baselines has no plot and no section.
    let mut plain = record.clone();
    for c in &mut plain.cases {
        c.baseline = None;
    }
    let html = report_html(&plain).unwrap();
    assert!(svgs(&html).is_empty() && !html.contains("id=\"performance\""));
}

#[test]
fn plot_text_is_escaped_and_outliers_are_hollow() {
    let mut record = common::fixture();
    let case = record
        .cases
        .iter_mut()
        .find(|c| c.baseline.is_some())
        .unwrap();
    let hostile = "<script>alert(1)</script>&\"x\"";
    for m in &mut case.metrics {
        if m.name == "iops" {
            m.name = hostile.to_string();
            m.unit = "</svg><b>".to_string();
        }
    }
    // A regression with one baseline sample set aside.
    case.metrics.push(certlab_reports::Metric {
        name: hostile.to_string(),
        value: 500_000.0,
        unit: "</svg><b>".to_string(),
        better: certlab_reports::Better::Higher,
    });
    let b = case.baseline.as_mut().unwrap();
    let m = &mut b.metrics[0];
    m.name = hostile.to_string();
    m.unit = "</svg><b>".to_string();
    m.verdict = certlab_reports::PerfVerdict::Regression;
    m.baseline.push(2_000_000.0);
    m.baseline_outliers = vec![2_000_000.0];
    let html = report_html(&record).unwrap();
    assert!(!html.contains("<script>alert"));
    let plots = svgs(&html);
    assert_eq!(plots.len(), 1);
    let (_, circles) = parse_svg(plots[0]);
    assert_eq!(circles.len(), 4 + 4);
    assert_eq!(plots[0].matches("fill=\"none\"").count(), 1, "{}", plots[0]);
    // The regression's samples are drawn in the failure colour.
    assert!(plots[0].contains("#cf222e"));
}
