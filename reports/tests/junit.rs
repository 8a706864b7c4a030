//! junit.xml parses back with the counts of the record, and odd text survives.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::collections::BTreeMap;

use certlab_reports::{junit_xml, Summary, Verdict};
use quick_xml::events::Event;
use quick_xml::Reader;

/// An element as parsed back: name, attributes, text content.
#[derive(Debug, Default, Clone)]
struct Element {
    name: String,
    attrs: BTreeMap<String, String>,
    text: String,
}

/// Parses `xml` strictly into the list of its elements in document order.
fn parse(xml: &str) -> Vec<Element> {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut out: Vec<Element> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    loop {
        let event = reader.read_event().unwrap();
        match &event {
            Event::Start(e) | Event::Empty(e) => {
                let mut el = Element {
                    name: String::from_utf8(e.name().as_ref().to_vec()).unwrap(),
                    ..Default::default()
                };
                for a in e.attributes() {
                    let a = a.unwrap();
                    el.attrs.insert(
                        String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                        a.unescape_value().unwrap().into_owned(),
                    );
                }
                out.push(el);
                if matches!(event, Event::Start(_)) {
                    open.push(out.len() - 1);
                }
            }
            Event::End(_) => {
                open.pop();
            }
            Event::Text(t) => {
                if let Some(&i) = open.last() {
                    out[i].text.push_str(&t.unescape().unwrap());
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert!(open.is_empty(), "unclosed elements");
    out
}

fn count(elements: &[Element], name: &str, ty: Option<&str>) -> u32 {
    elements
        .iter()
        .filter(|e| {
            e.name == name && ty.is_none_or(|t| e.attrs.get("type").map(String::as_str) == Some(t))
        })
        .count() as u32
}

#[test]
fn counts_equal_summary_and_child_elements() {
    let record = common::fixture();
    let xml = junit_xml(&record);
    assert!(
        xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
        "{xml}"
    );
    let els = parse(&xml);
    let s: Summary = record.summary;

    assert_eq!(count(&els, "testsuites", None), 1);
    assert_eq!(count(&els, "testsuite", None), 1);
    assert_eq!(count(&els, "testcase", None), s.total);
    assert_eq!(count(&els, "failure", Some("fail")), s.fail);
    assert_eq!(count(&els, "failure", None), s.fail);
    assert_eq!(count(&els, "error", Some("error")), s.error);
    assert_eq!(count(&els, "error", Some("crash")), s.crash);
    assert_eq!(count(&els, "skipped", None), s.skip);

    for name in ["testsuites", "testsuite"] {
        let suite = els.iter().find(|e| e.name == name).unwrap();
        let attr = |k: &str| suite.attrs[k].parse::<u32>().unwrap();
        assert_eq!(attr("tests"), count(&els, "testcase", None), "{name}");
        assert_eq!(attr("failures"), count(&els, "failure", None), "{name}");
        assert_eq!(attr("errors"), count(&els, "error", None), "{name}");
        assert_eq!(attr("skipped"), count(&els, "skipped", None), "{name}");
    }
    let suite = els.iter().find(|e| e.name == "testsuite").unwrap();
    assert_eq!(suite.attrs["name"], "server-cert");
    assert_eq!(suite.attrs["hostname"], "taishan-07.lab");
    assert_eq!(suite.attrs["timestamp"], "2025-03-14T09:26:53");
    assert_eq!(suite.attrs["time"], "4454.250");

    let cases: Vec<&Element> = els.iter().filter(|e| e.name == "testcase").collect();
    for (el, case) in cases.iter().zip(&record.cases) {
        assert_eq!(el.attrs["classname"], "certlab.server-cert");
        assert_eq!(el.attrs["name"], case.id);
        let ms = (el.attrs["time"].parse::<f64>().unwrap() * 1000.0).round() as u64;
        assert_eq!(ms, case.duration_ms);
    }
    // The pass with metrics lists them in system-out, with its reason.
    let outs: Vec<&Element> = els.iter().filter(|e| e.name == "system-out").collect();
    assert_eq!(outs.len(), cases.len());
    let stream = record
        .cases
        .iter()
        .position(|c| c.id == "perf.stream")
        .unwrap();
    assert_eq!(record.cases[stream].verdict, Verdict::Pass);
    assert!(outs[stream].text.contains(&record.cases[stream].reason));
    assert!(
        outs[stream]
            .text
            .contains("triad = 182345.6 MB/s (higher is better)"),
        "{}",
        outs[stream].text
    );
    // The failure carries its full reason as text and a one-line message.
    let failure = els.iter().find(|e| e.name == "failure").unwrap();
    let edac = record
        .cases
        .iter()
        .find(|c| c.verdict == Verdict::Fail)
        .unwrap();
    assert_eq!(failure.text, edac.reason);
    assert!(!failure.attrs["message"].contains('\n'));
    assert!(failure.attrs["message"].contains("<ras.edac> requirement & needs"));

    // The failed non-blocker is a warning: no <failure>, said in system-out
    // and in its properties.
    assert_eq!(s.warning, 1);
    let clock = record
        .cases
        .iter()
        .position(|c| c.id == "time.clock")
        .unwrap();
    assert!(record.cases[clock].is_warning());
    assert!(
        outs[clock]
            .text
            .starts_with("WARNING: failed, not a blocker"),
        "{}",
        outs[clock].text
    );
    assert!(outs[clock].text.contains(&record.cases[clock].reason));
    let verdicts: Vec<&str> = els
        .iter()
        .filter(|e| e.name == "property" && e.attrs["name"] == "certlab.verdict")
        .map(|e| e.attrs["value"].as_str())
        .collect();
    let shown: Vec<&str> = record.cases.iter().map(|c| c.shown_verdict()).collect();
    assert_eq!(verdicts, shown);
    assert_eq!(verdicts.iter().filter(|v| **v == "warning").count(), 1);
}

#[test]
fn version_1_records_have_no_warnings() {
    let mut record = common::fixture_v1();
    // A failed non-blocker in a version 1 record failed the run then, and is
    // still shown as a failure.
    record.cases[3].verdict = Verdict::Fail;
    let els = parse(&junit_xml(&record));
    assert_eq!(count(&els, "failure", None), 2);
    assert!(!els.iter().any(
        |e| e.name == "property" && e.attrs.get("value").map(String::as_str) == Some("warning")
    ));
}

#[test]
fn special_characters_survive_and_forbidden_ones_are_escaped() {
    let mut record = common::fixture();
    let nasty = "a < b && c > d \"quoted\" 'single' ]]> \u{1b}[31mred\u{1b}[0m nul\u{0} bell\u{7} \u{fffe} 中文 ✓";
    for case in &mut record.cases {
        case.reason = nasty.to_string();
        case.id = format!("{}<&\"'>", case.id);
    }
    record.host.hostname = "host\"<&>'\u{1}".into();
    let xml = junit_xml(&record);
    for c in xml.chars() {
        let ok =
            matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{fffe}' && c != '\u{ffff}');
        assert!(ok, "forbidden character {:?} in output", c);
    }
    let els = parse(&xml);
    let escaped = "a < b && c > d \"quoted\" 'single' ]]> \\x1b[31mred\\x1b[0m nul\\x00 bell\\x07 \\u{fffe} 中文 ✓";
    let failure = els.iter().find(|e| e.name == "failure").unwrap();
    assert_eq!(failure.text, escaped);
    assert_eq!(failure.attrs["message"], escaped);
    let skipped = els.iter().find(|e| e.name == "skipped").unwrap();
    assert_eq!(skipped.attrs["message"], escaped);
    let crash = els
        .iter()
        .find(|e| e.name == "error" && e.attrs["type"] == "crash")
        .unwrap();
    assert_eq!(crash.text, escaped);
    let suite = els.iter().find(|e| e.name == "testsuite").unwrap();
    assert_eq!(suite.attrs["hostname"], "host\"<&>'\\x01");
    let first = els.iter().find(|e| e.name == "testcase").unwrap();
    assert_eq!(first.attrs["name"], "cpu.identify<&\"'>");
}

#[test]
fn empty_run_is_valid() {
    let mut record = common::fixture();
    record.cases.clear();
    record.summary = Summary::of(&[]);
    let els = parse(&junit_xml(&record));
    let suite = els.iter().find(|e| e.name == "testsuite").unwrap();
    assert_eq!(suite.attrs["tests"], "0");
    assert_eq!(count(&els, "testcase", None), 0);
}
