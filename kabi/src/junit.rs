//! JUnit XML of `check` and `diff`, for CI systems (Jenkins, GitLab) that
//! show a driver vendor's or a release's KABI verdicts beside their tests.
//!
//! `check`: one `<testsuite>` per kernel, one `<testcase>` per module on
//! that kernel (module × kernel); an incompatible module gets a
//! `<failure>` listing every problem with its fix, warnings go to
//! `<system-out>`.
//!
//! `diff`: one `<testsuite>`. Without an allowlist, one `<testcase>` per kind
//! of change; `removed`, `crc_changed`, `export_type_changed` and
//! `namespace_changed` fail when not empty (the cases that make
//! `certlab kabi diff` exit 1), `added` and `module_changed` only list. With
//! an allowlist, those kinds only list and there is one `<testcase>` per
//! allowlisted symbol, failing when it broke (release-blocking).
//!
//! The counts on `<testsuites>` and `<testsuite>` are computed from the
//! cases written. Nothing here reads the clock: no `time` or `timestamp`.

use std::collections::BTreeMap;
use std::io;

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;

use crate::allowlist::Allowlist;
use crate::check::ModuleReport;
use crate::diff::KernelDiff;

/// The JUnit document of a `check`: `reports` in the order the checker gave
/// them (grouped by kernel, in order of first appearance).
pub fn check_junit(reports: &[ModuleReport]) -> String {
    let mut kernels: Vec<&str> = Vec::new();
    for r in reports {
        if !kernels.contains(&r.kernel.as_str()) {
            kernels.push(&r.kernel);
        }
    }
    let suites = kernels
        .iter()
        .map(|k| Suite {
            name: format!("kabi check {k}"),
            cases: reports
                .iter()
                .filter(|r| r.kernel == *k)
                .map(module_case)
                .collect(),
        })
        .collect::<Vec<_>>();
    render("certlab kabi check", &suites)
}

/// The JUnit document of a `diff` (see the module documentation).
pub fn diff_junit(d: &KernelDiff, allowlist: Option<&Allowlist>) -> String {
    let classname = "kabi.diff";
    let listed = allowlist.is_some();
    let mut cases = Vec::new();

    let entries = |v: &[crate::diff::Entry]| -> Vec<String> {
        v.iter()
            .map(|e| format!("{} ({}, {})", e.symbol, e.module, e.export_type))
            .collect()
    };
    let changes = |v: &[crate::diff::Change]| -> Vec<String> {
        v.iter()
            .map(|c| format!("{}: {} -> {} ({})", c.symbol, c.old, c.new, c.module))
            .collect()
    };
    let kinds: [(&str, Vec<String>, bool); 6] = [
        ("removed", entries(&d.removed), true),
        ("crc_changed", changes(&d.crc_changed), d.crcs_compared),
        ("export_type_changed", changes(&d.export_type_changed), true),
        ("namespace_changed", changes(&d.namespace_changed), true),
        ("added", entries(&d.added), false),
        ("module_changed", changes(&d.module_changed), false),
    ];
    for (kind, lines, breaks) in kinds {
        let failure = (breaks && !listed && !lines.is_empty()).then(|| Failure {
            message: format!("{} symbols {}", lines.len(), kind.replace('_', " ")),
            kind: "break",
            body: lines.join("\n"),
        });
        let out = if failure.is_none() && !lines.is_empty() {
            lines.join("\n")
        } else {
            String::new()
        };
        cases.push(Case {
            classname: classname.to_string(),
            name: kind.to_string(),
            file: None,
            failure,
            out,
        });
    }
    if !d.crcs_compared {
        if let Some(c) = cases.iter_mut().find(|c| c.name == "crc_changed") {
            c.out = "a kernel was built without modversions: CRCs not compared".to_string();
        }
    }

    if let Some(list) = allowlist {
        let mut what: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for e in &d.removed {
            what.entry(&e.symbol)
                .or_default()
                .push(format!("removed (was exported by {})", e.module));
        }
        for (label, v) in [
            ("CRC", &d.crc_changed),
            ("export type", &d.export_type_changed),
            ("namespace", &d.namespace_changed),
        ] {
            for c in v {
                what.entry(&c.symbol).or_default().push(format!(
                    "{label} changed: {} -> {}",
                    show(&c.old),
                    show(&c.new)
                ));
            }
        }
        for sym in &list.symbols {
            let failure = what.get(sym.name.as_str()).map(|w| Failure {
                message: format!("allowlisted symbol {} broke: {}", sym.name, w.join("; ")),
                kind: "release-blocking",
                body: w.join("\n"),
            });
            cases.push(Case {
                classname: "kabi.diff.allowlist".to_string(),
                name: sym.name.clone(),
                file: None,
                failure,
                out: String::new(),
            });
        }
    }
    render(
        "certlab kabi diff",
        &[Suite {
            name: format!("kabi diff {} -> {}", d.old, d.new),
            cases,
        }],
    )
}

fn show(s: &str) -> &str {
    if s.is_empty() {
        "(none)"
    } else {
        s
    }
}

struct Suite {
    name: String,
    cases: Vec<Case>,
}

struct Case {
    classname: String,
    name: String,
    file: Option<String>,
    failure: Option<Failure>,
    /// `<system-out>`, when not empty.
    out: String,
}

struct Failure {
    message: String,
    kind: &'static str,
    body: String,
}

fn module_case(r: &ModuleReport) -> Case {
    let failure = (!r.compatible).then(|| {
        let mut body = Vec::new();
        for p in &r.problems {
            let kind = serde_json::to_value(p.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let sym = if p.symbol.is_empty() {
                String::new()
            } else {
                format!("{}: ", p.symbol)
            };
            let mut line = format!("{kind}: {sym}{}", p.message);
            match (&p.expected, &p.found) {
                (Some(e), Some(f)) => line.push_str(&format!(" (kernel {e}, module {f})")),
                (Some(e), None) => line.push_str(&format!(" (kernel {e})")),
                _ => {}
            }
            line.push_str(&format!("\n  fix: {}", p.fix));
            body.push(line);
        }
        let first = r
            .problems
            .first()
            .map(|p| {
                if p.symbol.is_empty() {
                    p.message.clone()
                } else {
                    format!("{}: {}", p.symbol, p.message)
                }
            })
            .unwrap_or_default();
        Failure {
            message: format!(
                "{} would be refused by {}: {} problem{} (first: {first})",
                r.name,
                r.kernel,
                r.problems.len(),
                if r.problems.len() == 1 { "" } else { "s" }
            ),
            kind: "incompatible",
            body: body.join("\n"),
        }
    });
    let out = r
        .warnings
        .iter()
        .map(|w| format!("warning: {}", w.message))
        .collect::<Vec<_>>()
        .join("\n");
    Case {
        classname: format!("kabi.check.{}", r.kernel),
        name: r.name.clone(),
        file: Some(r.path.clone()),
        failure,
        out,
    }
}

fn render(name: &str, suites: &[Suite]) -> String {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    match write_document(&mut writer, name, suites) {
        Ok(()) => String::from_utf8_lossy(&writer.into_inner()).into_owned(),
        // Writing into a Vec<u8> has no I/O that could fail.
        Err(e) => unreachable!("writing XML into memory failed: {e}"),
    }
}

fn write_document(w: &mut Writer<Vec<u8>>, name: &str, suites: &[Suite]) -> io::Result<()> {
    let count = |s: &Suite| {
        (
            s.cases.len(),
            s.cases.iter().filter(|c| c.failure.is_some()).count(),
        )
    };
    let (tests, failures) = suites
        .iter()
        .map(count)
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let (tests, failures) = (tests.to_string(), failures.to_string());
    w.write_event(Event::Start(BytesStart::new("testsuites").with_attributes(
        [
            ("name", name),
            ("tests", tests.as_str()),
            ("failures", failures.as_str()),
            ("errors", "0"),
            ("skipped", "0"),
        ],
    )))?;
    for s in suites {
        let (tests, failures) = count(s);
        let (tests, failures) = (tests.to_string(), failures.to_string());
        let sname = xml_attr(&s.name);
        w.write_event(Event::Start(BytesStart::new("testsuite").with_attributes(
            [
                ("name", sname.as_str()),
                ("tests", tests.as_str()),
                ("failures", failures.as_str()),
                ("errors", "0"),
                ("skipped", "0"),
            ],
        )))?;
        for c in &s.cases {
            write_case(w, c)?;
        }
        w.write_event(Event::End(BytesEnd::new("testsuite")))?;
    }
    w.write_event(Event::End(BytesEnd::new("testsuites")))?;
    Ok(())
}

fn write_case(w: &mut Writer<Vec<u8>>, c: &Case) -> io::Result<()> {
    let (classname, name) = (xml_attr(&c.classname), xml_attr(&c.name));
    let mut start = BytesStart::new("testcase")
        .with_attributes([("classname", classname.as_str()), ("name", name.as_str())]);
    let file = c.file.as_deref().map(xml_attr);
    if let Some(f) = &file {
        start.push_attribute(("file", f.as_str()));
    }
    if c.failure.is_none() && c.out.is_empty() {
        w.write_event(Event::Empty(start))?;
        return Ok(());
    }
    w.write_event(Event::Start(start))?;
    if let Some(f) = &c.failure {
        let message = xml_attr(&f.message);
        w.create_element("failure")
            .with_attributes([("message", message.as_str()), ("type", f.kind)])
            .write_text_content(BytesText::new(&xml_text(&f.body)))?;
    }
    if !c.out.is_empty() {
        w.create_element("system-out")
            .write_text_content(BytesText::new(&xml_text(&c.out)))?;
    }
    w.write_event(Event::End(BytesEnd::new("testcase")))?;
    Ok(())
}

/// Replaces characters that XML 1.0 forbids with a visible `\xNN` escape.
fn xml_text(s: &str) -> String {
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

/// [`xml_text`] for an attribute: line breaks and tabs fold into spaces.
fn xml_attr(s: &str) -> String {
    xml_text(s).split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use crate::allowlist::AllowedSymbol;
    use crate::check::{Problem, ProblemKind, Warning, WarningKind};
    use crate::diff::diff;
    use crate::kernel::Kernel;
    use crate::symvers::Symvers;
    use quick_xml::events::Event;
    use quick_xml::Reader;

    type Element = (String, BTreeMap<String, String>);

    /// (element name, attributes) of every start/empty element, and all text.
    fn parse(xml: &str) -> (Vec<Element>, String) {
        let mut r = Reader::from_str(xml);
        let (mut elems, mut text) = (Vec::new(), String::new());
        loop {
            match r.read_event().unwrap() {
                Event::Start(e) | Event::Empty(e) => {
                    let attrs = e
                        .attributes()
                        .map(|a| {
                            let a = a.unwrap();
                            (
                                String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                                a.unescape_value().unwrap().into_owned(),
                            )
                        })
                        .collect();
                    elems.push((
                        String::from_utf8(e.name().as_ref().to_vec()).unwrap(),
                        attrs,
                    ));
                }
                Event::Text(t) => text.push_str(&t.unescape().unwrap()),
                Event::Eof => break,
                _ => {}
            }
        }
        (elems, text)
    }

    fn report(name: &str, kernel: &str, problems: Vec<Problem>) -> ModuleReport {
        ModuleReport {
            path: format!("/x/{name}.ko"),
            name: name.to_string(),
            kernel: kernel.to_string(),
            compatible: problems.is_empty(),
            problems,
            warnings: vec![Warning {
                symbol: "foo".into(),
                kind: WarningKind::NoSymbolVersion,
                message: "no symbol version for foo".into(),
            }],
        }
    }

    #[test]
    fn check_has_a_case_per_module_and_kernel() {
        let crc = Problem {
            symbol: "module_layout".into(),
            kind: ProblemKind::Crc,
            message: "disagrees about version of symbol module_layout <&>".into(),
            fix: "rebuild".into(),
            expected: Some("0x9060323f".into()),
            found: Some("0xbce1a965".into()),
            provider: None,
            cause: None,
        };
        let reports = vec![
            report("a", "k1", vec![]),
            report("b", "k1", vec![crc.clone()]),
            report("a", "k2", vec![crc]),
            report("b", "k2", vec![]),
        ];
        let xml = check_junit(&reports);
        let (elems, text) = parse(&xml);
        let get = |n: &str| elems.iter().filter(|(e, _)| e == n).collect::<Vec<_>>();
        assert_eq!(get("testsuites")[0].1["tests"], "4");
        assert_eq!(get("testsuites")[0].1["failures"], "2");
        let suites = get("testsuite");
        assert_eq!(suites.len(), 2);
        assert_eq!(suites[1].1["name"], "kabi check k2");
        assert_eq!(suites[1].1["failures"], "1");
        let cases = get("testcase");
        assert_eq!(cases.len(), 4);
        assert_eq!(cases[1].1["classname"], "kabi.check.k1");
        assert_eq!(cases[1].1["name"], "b");
        assert_eq!(cases[1].1["file"], "/x/b.ko");
        let failures = get("failure");
        assert_eq!(failures.len(), 2);
        assert!(failures[0].1["message"].contains("first: module_layout"));
        assert_eq!(failures[0].1["type"], "incompatible");
        assert!(text.contains("crc: module_layout: disagrees about version of symbol module_layout <&> (kernel 0x9060323f, module 0xbce1a965)"));
        assert!(text.contains("fix: rebuild"));
        assert!(text.contains("warning: no symbol version for foo"));
    }

    fn k(name: &str, text: &str) -> Kernel {
        Kernel::from_symvers(name, Symvers::parse(text, "t").unwrap())
    }

    #[test]
    fn diff_fails_by_kind_or_by_allowlisted_symbol() {
        let old = k("old", "0x1\ta\tvmlinux\tEXPORT_SYMBOL\t\n0x2\tb\tvmlinux\tEXPORT_SYMBOL\t\n0x3\tc\tvmlinux\tEXPORT_SYMBOL\t\n");
        let new = k("new", "0x1\ta\tvmlinux\tEXPORT_SYMBOL\t\n0x9\tb\tvmlinux\tEXPORT_SYMBOL\t\n0x4\td\tvmlinux\tEXPORT_SYMBOL\t\n");
        let d = diff(&old, &new, None);
        let (elems, text) = parse(&diff_junit(&d, None));
        let cases: Vec<_> = elems.iter().filter(|(e, _)| e == "testcase").collect();
        assert_eq!(cases.len(), 6);
        let fails: Vec<_> = elems.iter().filter(|(e, _)| e == "failure").collect();
        assert_eq!(fails.len(), 2, "removed and crc_changed");
        assert!(text.contains("b: 0x00000002 -> 0x00000009 (vmlinux)"));
        assert!(
            text.contains("d (vmlinux, EXPORT_SYMBOL)"),
            "added is listed"
        );

        let mut al = Allowlist::default();
        al.insert(AllowedSymbol::named("a"));
        al.insert(AllowedSymbol::named("b"));
        let d = diff(&old, &new, Some(&al));
        let (elems, _) = parse(&diff_junit(&d, Some(&al)));
        let cases: Vec<_> = elems.iter().filter(|(e, _)| e == "testcase").collect();
        assert_eq!(cases.len(), 8);
        let fails: Vec<_> = elems.iter().filter(|(e, _)| e == "failure").collect();
        assert_eq!(fails.len(), 1, "only the allowlisted b blocks");
        assert!(fails[0].1["message"].contains("allowlisted symbol b broke: CRC changed"));
        assert_eq!(fails[0].1["type"], "release-blocking");
        assert_eq!(
            elems.iter().find(|(e, _)| e == "testsuites").unwrap().1["failures"],
            "1"
        );
    }

    #[test]
    fn control_characters_do_not_break_the_document() {
        let mut r = report("m\u{1b}", "k", vec![]);
        r.warnings[0].message = "bad \u{0} byte".into();
        let xml = check_junit(&[r]);
        assert!(xml.contains("\\x1b") && xml.contains("\\x00"));
        parse(&xml);
    }
}
