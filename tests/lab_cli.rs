//! `certlab lab …` end to end: the binary, a `lab.toml` written by the test,
//! and real BMC peers — OpenIPMI `ipmi_sim`, sushy-tools, and the project's
//! own replay server started as `certlab lab replay-bmc`. Wall times of a
//! power round trip and a SEL read through the CLI are printed as
//! `MEASURE …` lines (run with `--nocapture` to see them).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../lab/tests/common/ipmi_sim.rs"]
mod ipmi_sim;
#[path = "../lab/tests/common/sushy.rs"]
mod sushy;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ipmi_sim::Sim;
use serde_json::Value;

const PW_VAR: &str = "CERTLAB_TEST_BMC_PW";

/// A lab.toml in a tempdir and the password its BMCs get.
struct Lab {
    dir: tempfile::TempDir,
    password: String,
}

impl Lab {
    fn new(toml: &str, password: &str) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("lab.toml"), toml).unwrap();
        Lab {
            dir,
            password: password.to_string(),
        }
    }

    fn ipmi(sim: &Sim) -> Lab {
        Lab::new(
            &format!(
                "[[machine]]\nname = \"node1\"\narch = \"x86_64\"\n\n[machine.bmc]\n\
                 protocol = \"ipmi\"\naddress = \"127.0.0.1\"\nport = {}\n\
                 username = \"{}\"\npassword_env = \"{PW_VAR}\"\n",
                sim.port,
                ipmi_sim::USER
            ),
            ipmi_sim::PASSWORD,
        )
    }

    fn redfish(port: u16) -> Lab {
        Lab::new(
            &format!(
                "[[machine]]\nname = \"rf1\"\narch = \"x86_64\"\n\n[machine.bmc]\n\
                 protocol = \"redfish\"\nscheme = \"http\"\naddress = \"127.0.0.1\"\n\
                 port = {port}\nusername = \"admin\"\npassword_env = \"{PW_VAR}\"\n"
            ),
            "password",
        )
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("lab.toml")
    }

    /// The lab store the commands record their BMC calls in.
    fn db(&self) -> PathBuf {
        self.dir.path().join("lab.db")
    }

    /// `certlab lab ARGS --lab FILE`, with its wall time.
    fn run(&self, args: &[&str]) -> (Output, Duration) {
        let t = Instant::now();
        // `--lab FILE` goes before a `--` (after it, it would be the command's).
        let split = args.iter().position(|a| *a == "--").unwrap_or(args.len());
        let out = Command::new(env!("CARGO_BIN_EXE_certlab"))
            .arg("lab")
            .args(&args[..split])
            .arg("--lab")
            .arg(self.path())
            .args(&args[split..])
            .env(PW_VAR, &self.password)
            .env("CERTLAB_DB", self.db())
            .env_remove("CERTLAB_LAB")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (out, t.elapsed())
    }

    /// Runs, expects exit 0, returns stdout parsed as JSON (the command
    /// gets `--format json`).
    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["--format", "json"]);
        let (o, _) = self.run(&a);
        ok(&o, args);
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?}: stdout is not JSON ({e}): {}",
                String::from_utf8_lossy(&o.stdout)
            )
        })
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(o: &Output, args: &[&str]) {
    assert!(
        o.status.success(),
        "certlab lab {args:?} exited {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        text(&o.stdout),
        text(&o.stderr)
    );
}

/// `{"machine": NAME, "power": STATE, …}` from `lab power … --format json`.
fn power_json(lab: &Lab, name: &str, args: &[&str]) -> String {
    let mut a = vec!["power", name];
    a.extend_from_slice(args);
    let v = lab.json(&a);
    assert_eq!(v["machine"], name, "{v}");
    let p = v["power"].as_str().unwrap_or_else(|| panic!("{v}"));
    p.to_string()
}

/// Each SEL entry carries exactly what the issue asks for; `lab sel
/// --format json` says which log service it read.
fn check_sel_shape(v: &Value) -> &Vec<Value> {
    assert!(v["service"]["id"].is_string(), "which service: {v}");
    assert!(v["other_services"].is_array(), "{v}");
    assert!(v["cursor"].is_string(), "{v}");
    let entries = &v["entries"];
    let a = entries
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {entries}"));
    for e in a {
        for k in ["id", "timestamp", "sensor_type", "severity", "message"] {
            assert!(e.get(k).is_some(), "no `{k}` in {e}");
        }
        assert!(e["id"].as_str().is_some_and(|s| !s.is_empty()), "{e}");
        assert!(e["message"].is_string(), "{e}");
    }
    a
}

/// The cursor of `lab sel --format json`.
fn cursor_of(o: &Output) -> String {
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v["cursor"]
        .as_str()
        .unwrap_or_else(|| panic!("no cursor: {v}"))
        .to_string()
}

/// Power off then on through the CLI, each waited for: the round trip's
/// wall time, process start-up included.
fn round_trip(lab: &Lab, name: &str, wait: &str) -> Duration {
    let t = Instant::now();
    assert_eq!(
        power_json(lab, name, &["off", "--force", "--wait", wait]),
        "off"
    );
    assert_eq!(power_json(lab, name, &["on", "--wait", wait]), "on");
    t.elapsed()
}

// ---------------------------------------------------------------- ipmi_sim

#[test]
fn ipmi_power_and_boot_through_the_cli() {
    let sim = Sim::start();
    let lab = Lab::ipmi(&sim);
    assert_eq!(power_json(&lab, "node1", &["status"]), "off");
    let (o, _) = lab.run(&["power", "node1", "status"]);
    ok(&o, &["power status"]);
    assert_eq!(text(&o.stdout).trim(), "node1: power is off");

    assert_eq!(power_json(&lab, "node1", &["on", "--wait", "10"]), "on");
    assert_eq!(sim.chassis_power(), "1");
    assert!(sim.ipmitool(&["power", "status"]).contains("is on"));
    // Graceful off (ACPI soft off), waited for.
    assert_eq!(power_json(&lab, "node1", &["off", "--wait", "10"]), "off");
    assert_eq!(sim.chassis_power(), "0");
    assert_eq!(power_json(&lab, "node1", &["on", "--wait", "10"]), "on");

    // Cycle: the command returns at once; poll status until the machine
    // was seen off and is on again.
    let t = Instant::now();
    let v = lab.json(&["power", "node1", "cycle"]);
    assert_eq!(v["action"], "cycle", "{v}");
    let mut saw_off = v["power"] == "off" || sim.chassis_power() == "0";
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match power_json(&lab, "node1", &["status"]).as_str() {
            "off" => saw_off = true,
            "on" if saw_off => break,
            _ => {}
        }
        // The chassis file is the ground truth: an off phase shorter than
        // one CLI call is still an off phase.
        saw_off |= sim.chassis_power() == "0";
        assert!(Instant::now() < deadline, "power cycle did not complete");
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "MEASURE cli ipmi_sim power cycle (cycle + status polls until on again): {:?}",
        t.elapsed()
    );
    let rt = round_trip(&lab, "node1", "10");
    eprintln!("MEASURE cli ipmi_sim power round trip (off --wait + on --wait): {rt:?}");

    let v = lab.json(&["boot", "node1", "pxe", "--once"]);
    assert_eq!(
        (v["machine"].as_str(), v["once"].as_bool()),
        (Some("node1"), Some(true)),
        "{v}"
    );
    let shown = sim.ipmitool(&["chassis", "bootparam", "get", "5"]);
    assert!(shown.contains("Force PXE"), "{shown}");
    assert!(
        shown.contains("next boot only") || shown.contains("Options apply to only next boot"),
        "{shown}"
    );
    lab.json(&["boot", "node1", "disk"]);
    let shown = sim.ipmitool(&["chassis", "bootparam", "get", "5"]);
    assert!(
        shown.contains("Force Boot from default Hard-Drive"),
        "{shown}"
    );
}

#[test]
fn ipmi_sel_since_cursor_and_clear_through_the_cli() {
    let mut sim = Sim::start();
    let lab = Lab::ipmi(&sim);
    let args = ["sel", "node1", "--format", "json"];
    let (o, took) = lab.run(&args);
    ok(&o, &args);
    eprintln!("MEASURE cli ipmi_sim SEL read (2 entries): {took:?}");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let entries = check_sel_shape(&v);
    assert_eq!(entries.len(), 2, "{v}");
    assert_eq!(entries[0]["sensor_type"], "Temperature");
    assert_eq!(entries[0]["severity"], "critical");
    assert!(entries[0]["timestamp"].is_null(), "Pre-Init: {v}");
    assert!(entries[0]["message"]
        .as_str()
        .unwrap()
        .contains("Upper Critical going high"));
    assert_eq!(entries[1]["sensor_type"], "Memory");
    let cursor = cursor_of(&o);

    // Nothing new since the cursor; then one injected event, only it.
    let (o, _) = lab.run(&["sel", "node1", "--since", &cursor, "--format", "json"]);
    ok(&o, &["sel --since"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["entries"], serde_json::json!([]));
    assert_eq!(v["service"]["id"], "SEL", "{v}");
    sim.emu("sel_add 0x20 0x02 0x00 0x00 0x00 0x00 0x20 0x00 0x04 0x04 0x02 0x01 0x02 0x05 0x0a");
    let (o, _) = lab.run(&["sel", "node1", "--since", &cursor, "--format", "json"]);
    ok(&o, &["sel --since"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let new = check_sel_shape(&v);
    assert_eq!(new.len(), 1, "{v}");
    assert_eq!(new[0]["sensor_type"], "Fan");
    let cursor = cursor_of(&o);

    // Human output names each entry and the cursor.
    let (o, _) = lab.run(&["sel", "node1"]);
    ok(&o, &["sel"]);
    let human = text(&o.stdout);
    assert!(
        human.contains("3 entries from log service SEL; cursor"),
        "{human}"
    );
    assert_eq!(human.matches("cursor").count(), 1, "{human}");
    assert!(human.ends_with('\n'), "{human:?}");
    // IPMI has one log: another service is a clear error (bad input).
    let (o, _) = lab.run(&["sel", "node1", "--service", "EventLog"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("no log service \"EventLog\"; it has: SEL"),
        "{}",
        text(&o.stderr)
    );
    let v = lab.json(&["sel", "node1", "--service", "sel"]);
    assert_eq!(check_sel_shape(&v).len(), 3, "{v}");
    assert!(human.contains("Lower Critical going low"), "{human}");

    // --clear prints what was there, then empties the log.
    let (o, _) = lab.run(&["sel", "node1", "--clear", "--format", "json"]);
    ok(&o, &["sel --clear"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(check_sel_shape(&v).len(), 3, "{v}");
    assert!(sim
        .ipmitool(&["sel", "info"])
        .contains("Entries          : 0"));
    assert_eq!(
        lab.json(&["sel", "node1"])["entries"],
        serde_json::json!([])
    );
    // A record after the clear is new for the old cursor.
    sim.emu("sel_add 0x20 0x02 0x00 0x00 0x00 0x00 0x20 0x00 0x04 0x0c 0x05 0x6f 0x00 0xff 0xff");
    let (o, _) = lab.run(&["sel", "node1", "--since", &cursor, "--format", "json"]);
    ok(&o, &["sel --since after clear"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(check_sel_shape(&v).len(), 1, "{v}");
}

#[test]
fn ipmi_sensors_info_console_through_the_cli() {
    let sim = Sim::start();
    let lab = Lab::ipmi(&sim);
    let v = lab.json(&["sensors", "node1"]);
    let sensors = v.as_array().unwrap();
    assert_eq!(sensors.len(), 2, "{v}");
    let cpu = sensors.iter().find(|s| s["name"] == "CPU Temp").unwrap();
    assert_eq!(cpu["reading"], 45.0, "{cpu}");
    assert_eq!(cpu["status"], "ok", "{cpu}");
    assert_eq!(cpu["sensor_type"], "Temperature", "{cpu}");
    let fan = sensors.iter().find(|s| s["name"] == "Fan 1").unwrap();
    assert_eq!(fan["reading"], 3000.0, "{fan}");
    let (o, _) = lab.run(&["sensors", "node1"]);
    ok(&o, &["sensors"]);
    assert!(text(&o.stdout).contains("CPU Temp"));

    let v = lab.json(&["info", "node1"]);
    assert_eq!(v["manufacturer"], "Acme", "{v}");
    assert_eq!(v["model"], "Server 9K", "{v}");
    assert_eq!(v["serial"], "SN-42", "{v}");
    assert!(v["bmc_firmware"].is_string(), "{v}");
    let (o, _) = lab.run(&["info", "node1"]);
    ok(&o, &["info"]);
    assert!(text(&o.stdout).contains("Server 9K"));

    let out = sim.dir.path().join("console.log");
    let t = Instant::now();
    let v = lab.json(&[
        "console",
        "node1",
        "--out",
        out.to_str().unwrap(),
        "--duration",
        "2",
    ]);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "{took:?}"
    );
    let captured = std::fs::read_to_string(&out).unwrap();
    assert!(
        captured.contains("certlab-sut console line"),
        "{captured:?}"
    );
    assert_eq!(v["machine"], "node1");
    assert_eq!(v["bytes"].as_u64(), Some(captured.len() as u64), "{v}");
}

#[test]
fn ipmi_health_through_the_cli() {
    let mut sim = Sim::start();
    let lab = Lab::ipmi(&sim);
    // The emulator starts with two critical SEL entries: unhealthy.
    let (o, _) = lab.run(&["health", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["healthy"], false, "{v}");
    assert!(v[0]["problems"].to_string().contains("critical SEL"), "{v}");

    lab.json(&["sel", "node1", "--clear"]);
    let (o, _) = lab.run(&["health", "node1", "--format", "json"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (&v[0]["machine"], &v[0]["healthy"], &v[0]["power"]),
        (
            &Value::from("node1"),
            &Value::from(true),
            &Value::from("off")
        ),
        "{v}"
    );
    assert_eq!(v[0]["problems"], serde_json::json!([]), "{v}");
    let (o, _) = lab.run(&["health"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o.stdout).contains("healthy"), "{}", text(&o.stdout));

    // CPU Temp pushed past its upper critical threshold.
    sim.emu("sensor_set_value 0x20 0 1 95 1");
    let (o, _) = lab.run(&["health", "node1", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["healthy"], false, "{v}");
    let problems = v[0]["problems"].to_string();
    assert!(problems.contains("CPU Temp critical"), "{problems}");
    let (o, _) = lab.run(&["health", "node1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stdout).contains("UNHEALTHY"), "{}", text(&o.stdout));
}

#[test]
fn wrong_bmc_password_exits_2_naming_the_machine_not_the_password() {
    let sim = Sim::start();
    let mut lab = Lab::ipmi(&sim);
    lab.password = "Wr0ng-Bmc-Secret".to_string();
    for args in [
        &["power", "node1", "status"][..],
        &["sel", "node1", "--format", "json"][..],
    ] {
        let (o, took) = lab.run(args);
        let (out, err) = (text(&o.stdout), text(&o.stderr));
        assert_eq!(o.status.code(), Some(2), "{args:?}: {out}\n{err}");
        assert!(err.contains("node1"), "{err}");
        assert!(err.to_lowercase().contains("auth"), "{err}");
        for leaked in ["Wr0ng-Bmc-Secret", ipmi_sim::PASSWORD] {
            assert!(
                !out.contains(leaked) && !err.contains(leaked),
                "{leaked:?} leaked: {out}\n{err}"
            );
        }
        // Fatal, not retried until the deadline.
        assert!(took < Duration::from_secs(5), "{took:?}");
    }
    // An unset variable is also exit 2 and names the variable, not a value.
    let (o, _) = {
        let t = Instant::now();
        let o = Command::new(env!("CARGO_BIN_EXE_certlab"))
            .args(["lab", "power", "node1", "status", "--lab"])
            .arg(lab.path())
            .env_remove(PW_VAR)
            .output()
            .unwrap();
        (o, t.elapsed())
    };
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("node1") && err.contains(PW_VAR), "{err}");
}

/// Every BMC call of every `lab` command lands in the lab store, failed
/// ones included, and `lab health` judges the BMC by that record.
#[test]
fn bmc_calls_are_recorded_and_health_reads_them() {
    let sim = Sim::start();
    let mut lab = Lab::ipmi(&sim);
    let since = time::OffsetDateTime::now_utc();
    assert!(["on", "off"].contains(&power_json(&lab, "node1", &["status"]).as_str()));
    lab.json(&["sel", "node1", "--clear"]);
    lab.password = "Wr0ng-Bmc-Secret".to_string();
    let (o, _) = lab.run(&["power", "node1", "status"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));

    let rt = tokio::runtime::Runtime::new().unwrap();
    let store_url = lab.db().display().to_string();
    let calls = rt.block_on(async {
        let store = certlab_harness::Store::open(&store_url).await.unwrap();
        let calls = store.bmc_calls("node1", since).await.unwrap();
        store.close().await;
        calls
    });
    let ops: Vec<(&str, &str)> = calls
        .iter()
        .map(|c| {
            let outcome = match &c.outcome {
                certlab_lab::bmc::CallOutcome::Ok => "ok",
                certlab_lab::bmc::CallOutcome::Failed { kind, .. } => kind.as_str(),
                certlab_lab::bmc::CallOutcome::CircuitOpen => "circuit_open",
            };
            (c.operation.as_str(), outcome)
        })
        .collect();
    assert_eq!(
        ops,
        [
            ("power_status", "ok"),
            ("log_services", "ok"),
            ("sel_since", "ok"),
            ("sel_clear", "ok"),
            ("power_status", "auth"),
        ],
        "{calls:#?}"
    );
    let failed = serde_json::to_string(&calls).unwrap();
    assert!(failed.contains("authentication failed"), "{failed}");
    for leaked in ["Wr0ng-Bmc-Secret", ipmi_sim::PASSWORD] {
        assert!(!failed.contains(leaked), "{leaked:?} in the call log");
    }

    // Still the wrong password: the health probes fail too, and the BMC's
    // last calls all failed.
    let (o, _) = lab.run(&["health", "node1", "--format", "json"]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    for leaked in ["Wr0ng-Bmc-Secret", ipmi_sim::PASSWORD] {
        assert!(
            !out.contains(leaked) && !err.contains(leaked),
            "{leaked:?} leaked"
        );
    }
    let v: Value = serde_json::from_str(&out).unwrap();
    let rec = &v[0]["bmc_calls"];
    assert_eq!(v[0]["healthy"], false, "{v}");
    assert!(
        v[0]["problems"].to_string().contains("calls all failed"),
        "{v}"
    );
    let n = rec["calls"].as_u64().unwrap_or_else(|| panic!("{v}"));
    assert!(n >= 5, "{v}");
    assert_eq!(rec["window_hours"], 24, "{v}");
    assert_eq!(rec["failures"], rec["fatal_failures"], "{v}");
    assert!(rec["failure_streak"].as_u64() >= Some(3), "{v}");
    assert_eq!(rec["last_error"]["kind"], "auth", "{v}");
    assert!(rec["p95_ms"].is_u64() && rec["p50_ms"].is_u64(), "{v}");
    let rate = rec["failure_rate"].as_f64().unwrap();
    assert!(rate > 0.0 && rate < 1.0, "{v}");

    // The right password again: the BMC answers, the streak is over.
    lab.password = ipmi_sim::PASSWORD.to_string();
    let (o, _) = lab.run(&["health", "node1", "--format", "json"]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}\n{}", text(&o.stderr));
    let v: Value = serde_json::from_str(&out).unwrap();
    let after = &v[0]["bmc_calls"];
    assert_eq!(v[0]["healthy"], true, "{v}");
    assert_eq!(after["failure_streak"], 0, "{v}");
    assert!(after["calls"].as_u64() > Some(n), "{v}");
    assert_eq!(after["failures"], rec["failures"], "{v}");
    let (o, _) = lab.run(&["health", "node1"]);
    let out = text(&o.stdout);
    assert!(
        out.contains("healthy") && out.contains("bmc 24h: "),
        "{out}"
    );
}

// ---------------------------------------------------------------- validate

#[test]
fn validate_reports_every_problem_with_its_line_and_exits_3() {
    let bad = r#"[[machine]]
name = "node1"
arch = "sparc"
colour = "blue"

[machine.bmc]
protocol = "ipmi"
address = "127.0.0.1"
username = "admin"
password = "hunter2"

[[machine]]
name = "node1"
arch = "x86_64"

[machine.ssh]
address = "10.0.0.1"
port = 70000
"#;
    let lab = Lab::new(bad, "");
    let file = lab.path().display().to_string();
    let (o, _) = lab.run(&["validate"]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(3), "{out}\n{}", text(&o.stderr));
    assert!(
        !out.contains("hunter2"),
        "a literal password is echoed: {out}"
    );
    // Each problem on its own line as FILE:LINE:COL: error: …
    let errors: Vec<(usize, String)> = out
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&format!("{file}:"))?;
            let (line, rest) = rest.split_once(':')?;
            let (_col, rest) = rest.split_once(':')?;
            rest.trim_start()
                .starts_with("error")
                .then(|| (line.parse().unwrap(), rest.to_string()))
        })
        .collect();
    let lines: Vec<usize> = errors.iter().map(|(l, _)| *l).collect();
    for (line, what) in [
        (3, "sparc"),
        (4, "colour"),
        (10, "password"),
        (12, "defined twice"),
        (18, "70000"),
    ] {
        assert!(
            errors.iter().any(|(l, m)| *l == line && m.contains(what)),
            "no error at line {line} about {what:?}; got lines {lines:?}:\n{out}"
        );
    }
    assert!(
        out.contains(&format!("{file}: invalid, {} errors", errors.len())),
        "{out}"
    );

    // JSON: the same problems, with lines.
    let (o, _) = lab.run(&["validate", "--format", "json"]);
    assert_eq!(o.status.code(), Some(3));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["valid"], false);
    let json_lines: Vec<u64> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["severity"] == "error")
        .map(|p| p["line"].as_u64().unwrap())
        .collect();
    assert_eq!(json_lines.len(), errors.len(), "{v}");
    // Other commands refuse the file with the same exit code.
    for args in [
        &["power", "node1", "status"][..],
        &["list"][..],
        &["exec", "node1", "--", "true"][..],
    ] {
        let (o, _) = lab.run(args);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains(":10:"),
            "{args:?}: {}",
            text(&o.stderr)
        );
    }

    // And a good file validates.
    let sim_free = Lab::new(
        "[[machine]]\nname = \"n\"\narch = \"x86_64\"\n[machine.ssh]\naddress = \"10.0.0.1\"\n",
        "",
    );
    let (o, _) = sim_free.run(&["validate"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
}

// ---------------------------------------------------------------- replay-bmc

/// `certlab lab replay-bmc` as a child process; killed on drop.
struct ReplayBmc {
    child: Child,
    port: u16,
}

impl ReplayBmc {
    fn start(tree: &Path) -> ReplayBmc {
        let port = ipmi_sim::free_tcp_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_certlab"))
            .args(["lab", "replay-bmc", "--tree"])
            .arg(tree)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--power-delay-ms", "500"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let g = ReplayBmc { child, port };
        assert!(
            first.contains(&format!("http://127.0.0.1:{port}/redfish/v1")),
            "replay-bmc said {first:?}"
        );
        g
    }
}

impl Drop for ReplayBmc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn redfish_tree(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("lab/tests/fixtures/redfish/trees")
        .join(name)
}

#[test]
fn replay_bmc_power_sel_info_through_the_cli() {
    let server = ReplayBmc::start(&redfish_tree("dmtf-public-rackmount1"));
    let lab = Lab::redfish(server.port);
    assert_eq!(power_json(&lab, "rf1", &["status"]), "on");
    let rt = round_trip(&lab, "rf1", "10");
    eprintln!(
        "MEASURE cli replay-bmc power round trip (off --wait + on --wait, 500 ms delay each): {rt:?}"
    );
    // A cycle passes through PoweringOn for the 500 ms delay: --wait waits
    // it out.
    let t = Instant::now();
    let v = lab.json(&["power", "rf1", "cycle", "--wait", "10"]);
    assert_eq!(v["power"], "on", "{v}");
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(450), "did not wait: {took:?}");
    eprintln!("MEASURE cli replay-bmc power cycle (cycle --wait, via PoweringOn): {took:?}");

    let args = ["sel", "rf1", "--format", "json"];
    let (o, took) = lab.run(&args);
    ok(&o, &args);
    eprintln!("MEASURE cli replay-bmc SEL read (2 entries): {took:?}");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(check_sel_shape(&v).len(), 2, "{v}");
    let cursor = cursor_of(&o);
    let (o, _) = lab.run(&["sel", "rf1", "--since", &cursor, "--format", "json"]);
    ok(&o, &["sel --since"]);
    assert_eq!(
        serde_json::from_slice::<Value>(&o.stdout).unwrap()["entries"],
        serde_json::json!([])
    );
    lab.json(&["sel", "rf1", "--clear"]);
    assert_eq!(lab.json(&["sel", "rf1"])["entries"], serde_json::json!([]));

    let v = lab.json(&["info", "rf1"]);
    assert_eq!(v["manufacturer"], "Contoso", "{v}");
    assert_eq!(v["bmc_firmware"], "1.45.455b66-rev4", "{v}");
    assert_eq!(v["firmware"].as_array().map(Vec::len), Some(3), "{v}");
    let v = lab.json(&["sensors", "rf1"]);
    assert_eq!(v.as_array().map(Vec::len), Some(41));
    // Redfish SOL is not offered: said so, as an infrastructure error.
    let out = lab.dir.path().join("console.log");
    let (o, _) = lab.run(&[
        "console",
        "rf1",
        "--out",
        out.to_str().unwrap(),
        "--duration",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("not supported"),
        "{}",
        text(&o.stderr)
    );
}

/// A BMC with several log services whose SEL is empty while EventLog
/// holds the events, as on HPE Cray EX-class BMCs: the recorded Gigabyte
/// tree of the Cray-HPE emulator (Manager log services SEL, EventLog,
/// AuditLog; System BIOS) with its SEL entries removed.
#[test]
fn sel_names_its_log_service_lists_the_others_and_takes_service() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    copy_dir(&redfish_tree("cray-Gigabyte"), &tree);
    let sel = tree.join("Managers/Self/LogServices/SEL/Entries");
    let coll = sel.join("index.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&coll).unwrap()).unwrap();
    v["Members"] = serde_json::json!([]);
    v["Members@odata.count"] = serde_json::json!(0);
    std::fs::write(&coll, v.to_string()).unwrap();
    let server = ReplayBmc::start(&tree);
    let lab = Lab::redfish(server.port);

    let v = lab.json(&["sel", "rf1"]);
    assert_eq!(check_sel_shape(&v).len(), 0, "{v}");
    assert_eq!(v["service"]["id"], "SEL", "{v}");
    assert_eq!(
        v["service"]["uri"], "/redfish/v1/Managers/Self/LogServices/SEL",
        "{v}"
    );
    let others: Vec<(String, Value)> = v["other_services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap().to_string(), s["entries"].clone()))
        .collect();
    for (id, n) in [("EventLog", 10), ("AuditLog", 10), ("BIOS", 10)] {
        assert!(
            others.contains(&(id.to_string(), serde_json::json!(n))),
            "{id}: {others:?}"
        );
    }

    // Human: which service, one cursor line, the others with counts.
    let (o, _) = lab.run(&["sel", "rf1"]);
    ok(&o, &["sel"]);
    let human = text(&o.stdout);
    assert!(
        human.contains("0 entries from log service SEL (/redfish/v1/Managers/Self/LogServices/SEL); cursor start\n"),
        "{human}"
    );
    assert_eq!(human.matches("cursor").count(), 1, "{human}");
    assert!(
        human.contains("EventLog (/redfish/v1/Managers/Self/LogServices/EventLog) (10 entries)"),
        "{human}"
    );

    // --service reads another one, by id or URI.
    let v = lab.json(&["sel", "rf1", "--service", "EventLog"]);
    let entries = check_sel_shape(&v);
    assert_eq!(entries.len(), 10, "{v}");
    assert_eq!(v["service"]["id"], "EventLog", "{v}");
    assert!(
        entries
            .iter()
            .any(|e| e["message"].as_str().unwrap().contains("power state")),
        "{v}"
    );
    let cursor = v["cursor"].as_str().unwrap().to_string();
    let v = lab.json(&["sel", "rf1", "--service", "eventlog", "--since", &cursor]);
    assert_eq!(check_sel_shape(&v).len(), 0, "{v}");
    let v = lab.json(&[
        "sel",
        "rf1",
        "--service",
        "/redfish/v1/Systems/Self/LogServices/BIOS",
    ]);
    assert_eq!(v["service"]["id"], "BIOS", "{v}");
    // An unknown service is bad input, naming those there are.
    let (o, _) = lab.run(&["sel", "rf1", "--service", "Nope"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("\"Nope\"") && err.contains("EventLog"),
        "{err}"
    );
    // --clear is for the SEL only.
    let (o, _) = lab.run(&["sel", "rf1", "--service", "EventLog", "--clear"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
}

/// A password sent over plain http, or kept in a file others can read, is
/// warned about once per process: on stderr and in the note of the first
/// call record of that process. Never the password itself.
#[test]
fn password_exposure_is_warned_once_on_stderr_and_in_the_call_record() {
    use std::os::unix::fs::PermissionsExt;
    let server = ReplayBmc::start(&redfish_tree("dmtf-public-tower"));
    let mut lab = Lab::redfish(server.port);
    lab.password = "Rf-S3cret-xyz".to_string();
    let since = time::OffsetDateTime::now_utc();
    // Several calls in one process (log services, then the SEL).
    let (o, _) = lab.run(&["sel", "rf1"]);
    ok(&o, &["sel"]);
    let err = text(&o.stderr);
    assert_eq!(err.matches("plain http").count(), 1, "{err}");
    assert!(err.contains("rf1"), "{err}");
    assert!(!err.contains(&lab.password), "{err}");
    let read_calls = || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let url = lab.db().display().to_string();
        rt.block_on(async {
            let store = certlab_harness::Store::open(&url).await.unwrap();
            let calls = store.bmc_calls("rf1", since).await.unwrap();
            store.close().await;
            calls
        })
    };
    let calls = read_calls();
    assert!(calls.len() >= 2, "{calls:#?}");
    let noted: Vec<_> = calls.iter().filter(|c| c.note.is_some()).collect();
    assert_eq!(noted.len(), 1, "{calls:#?}");
    assert!(noted[0].note.as_ref().unwrap().contains("plain http"));

    // An unprotected password file: warned; chmod 600: not.
    let pw = lab.dir.path().join("bmc.pw");
    std::fs::write(&pw, format!("{}\n", lab.password)).unwrap();
    let toml = std::fs::read_to_string(lab.path()).unwrap().replace(
        &format!("password_env = \"{PW_VAR}\""),
        &format!("password_file = \"{}\"", pw.display()),
    );
    std::fs::write(lab.path(), toml).unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (o, _) = lab.run(&["power", "rf1", "status"]);
    ok(&o, &["power"]);
    let err = text(&o.stderr);
    assert!(err.contains("readable by group or others"), "{err}");
    assert!(err.contains("chmod 600"), "{err}");
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (o, _) = lab.run(&["power", "rf1", "status"]);
    ok(&o, &["power"]);
    assert!(
        !text(&o.stderr).contains("readable by group"),
        "{}",
        text(&o.stderr)
    );
    for c in read_calls() {
        let note = c.note.unwrap_or_default();
        assert!(!note.contains(&lab.password), "{note}");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

#[test]
fn an_oversized_lab_toml_is_bad_input() {
    let lab = Lab::new("version = 1\n", "");
    let mut text = String::from("version = 1\n");
    while text.len() <= 4 << 20 {
        text.push_str("# padding padding padding padding padding padding padding\n");
    }
    std::fs::write(lab.path(), text).unwrap();
    for args in [
        &["validate"][..],
        &["list"][..],
        &["power", "n", "status"][..],
    ] {
        let (o, _) = lab.run(args);
        assert_eq!(
            o.status.code(),
            Some(3),
            "{args:?}: {}",
            self::text(&o.stderr)
        );
        assert!(
            self::text(&o.stderr).contains("limit"),
            "{}",
            self::text(&o.stderr)
        );
    }
}

// ---------------------------------------------------------------- sushy-tools

#[test]
fn sushy_power_round_trip_through_the_cli() {
    let sushy = sushy::Sushy::start();
    let lab = Lab::redfish(sushy.port);
    assert_eq!(power_json(&lab, "rf1", &["status"]), "off");
    // sushy applies each change after a random 1-11 s: wait up to 30 s.
    assert_eq!(power_json(&lab, "rf1", &["on", "--wait", "30"]), "on");
    let rt = round_trip(&lab, "rf1", "30");
    eprintln!(
        "MEASURE cli sushy-tools power round trip (off --wait + on --wait, random 1-11 s each): {rt:?}"
    );
    // No LogServices in sushy-tools: an unsupported answer, not retried.
    let (o, took) = lab.run(&["sel", "rf1", "--format", "json"]);
    eprintln!("MEASURE cli sushy-tools SEL read (unsupported, exit 2): {took:?}");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("rf1"), "{}", text(&o.stderr));
    let v = lab.json(&["boot", "rf1", "pxe", "--once"]);
    assert_eq!(v["boot"], "pxe", "{v}");
}
