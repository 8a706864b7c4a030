//! The namespace lab: `certlab lab daemon` drives three machines that are
//! real to the protocols — each a network namespace with its own address,
//! OpenSSH `sshd` and hostname, and an OpenIPMI `ipmi_sim` BMC whose
//! chassis control boots and stops it — through a plan with a declared
//! reboot and an injected crash. The real IPMI protocol and real SSH, end
//! to end; nothing of certlab is stubbed.
//!
//! What makes a namespace a machine here (all in `power.sh`, the "power
//! supply" the BMC's chassis control runs):
//! - power on draws a fresh boot id, writes it to `boot_id` (also appended
//!   to `boots`) and starts the OS: `sshd` and a small "kernel" inside the
//!   namespace and a new mount and UTS namespace, where that file is bound
//!   over `/proc/sys/kernel/random/boot_id` (what certlab reads) and the
//!   SUT's own `reboot` over `systemctl` and `/sbin/reboot`;
//! - power off kills every process in the namespace;
//! - the OS's `reboot` leaves the namespace (nsenter into the test's) and
//!   runs power off then power on: sshd stops, a new boot id, sshd starts —
//!   the BMC's power state stays on, as in a warm reboot;
//! - the "kernel" panics on `echo c > /run/certlab-sut/sysrq-trigger` (a
//!   FIFO in the SUT; the test plan's crash case writes it): the panic text
//!   goes to the serial console, which ipmi_sim carries over SOL, and every
//!   process in the namespace dies — powered on, nothing answers. Only the
//!   BMC (a power cycle) brings it back.
//!
//! The test plan uses the `command` check (kept out of the shipped plans)
//! and the `reboot` check of `reboot.warm`/`reboot.cold` (the OS's reboot,
//! and a power cycle through ipmi_sim).
//! Needs root (network, mount and UTS namespaces), iproute2, util-linux
//! (`unshare`, `nsenter`, `setsid`), OpenSSH and OpenIPMI; it fails naming
//! what is missing rather than skip. Every process, namespace and veth is
//! removed on drop. `/run/certlab-sut` (an empty mount point) is left.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[path = "../lab/tests/common/ipmi_sim.rs"]
mod ipmi_sim;
#[path = "../lab/tests/common/sshd.rs"]
mod sshd;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::netns::Netns;
use serde_json::Value;

const PW_VAR: &str = "CERTLAB_TEST_BMC_PW";

const PLAN: &str = r#"
[plan]
id = "netns-lab"
version = "1"
title = "A declared reboot and an injected crash on namespace SUTs"

[[case]]
id = "cpu.online"
check = "cpu-online"
title = "All present CPUs are online"
blocker = true
timeout_s = 60

[[case]]
id = "os.reboot"
check = "command"
title = "After a declared reboot, the OS runs on the boot the hardware gave it"
blocker = true
timeout_s = 30
reboots = true
params.command = 'test "$(cat /proc/sys/kernel/random/boot_id)" = "$(cat /run/certlab-sut/boot_id)"'

[[case]]
id = "reboot.warm"
check = "reboot"
title = "A warm reboot brings back every device, driver and link"
blocker = true
timeout_s = 60
reboots = true
params.link_wait_s = 5

[[case]]
id = "reboot.cold"
check = "reboot"
title = "A power cycle through the BMC brings back every device, driver and link"
blocker = true
timeout_s = 60
reboots = true
reboot = "power-cycle"
params.link_wait_s = 5

[[case]]
id = "crash.inject"
check = "command"
title = "The kernel panics (injected)"
blocker = true
timeout_s = 30
# As with a real sysrq trigger, the command does not return: the machine
# dies under it (the sleep only stands for "does not return").
params.command = "echo c > /run/certlab-sut/sysrq-trigger; sleep 60"

[[case]]
id = "after.crash"
check = "command"
title = "The machine answers on its new boot after the crash"
blocker = true
timeout_s = 30
params.command = 'test "$(cat /proc/sys/kernel/random/boot_id)" = "$(cat /run/certlab-sut/boot_id)"'
"#;

fn require(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{tool}` not found on PATH: the namespace lab needs it (apt-get install {package})"
    );
}

/// One namespace machine: its network, OS files, power supply and BMC.
struct NsMachine {
    name: String,
    /// Its files: sshd config and keys, `power.sh`, the OS's scripts,
    /// `console.log` (its serial port), `boots`, `run/` (bound on
    /// `/run/certlab-sut` inside it).
    dir: tempfile::TempDir,
    host_key: certlab_lab::HostKey,
    client_key: PathBuf,
    // Dropped in this order: the BMC first (nothing powers it on again),
    // then the namespace (its processes killed, it and its veth deleted).
    bmc: Option<ipmi_sim::Sim>,
    ns: Netns,
}

fn write_exec(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

impl NsMachine {
    fn start(name: &str) -> NsMachine {
        let ns = Netns::create();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let host = sshd::new_key(dir.path(), "host_key");
        let client_key = sshd::new_key(dir.path(), "id_ed25519");
        std::fs::copy(
            client_key.with_extension("pub"),
            dir.path().join("authorized_keys"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("sshd_config"),
            format!(
                "Port 22\nListenAddress {addr}\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
                 AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PubkeyAuthentication yes\nPermitRootLogin yes\nAllowUsers {user}\n\
                 MaxStartups 100\nMaxSessions 100\nLogLevel VERBOSE\nSetEnv HOME={d}\n\
                 Subsystem sftp internal-sftp\n",
                addr = ns.sut_addr,
                user = sshd::whoami(),
            ),
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("run")).unwrap();
        std::fs::create_dir_all(dir.path().join("os")).unwrap();
        std::fs::write(dir.path().join("console.log"), "").unwrap();
        let fifo = dir.path().join("run/sysrq-trigger");
        let o = Command::new("mkfifo").arg(&fifo).output().unwrap();
        assert!(o.status.success(), "mkfifo: {o:?}");
        let nsname = &ns.name;
        let test_pid = std::process::id();
        // The power supply: 1 boots the OS, 0 stops it dead. As a real
        // BMC, it acknowledges at once and the machine boots after (so the
        // BMC never keeps an IPMI request waiting); a lock keeps a boot and
        // a power off from overlapping.
        write_exec(
            &dir.path().join("power.sh"),
            &format!(
                r#"#!/bin/sh
exec >>{d}/power.log 2>&1 </dev/null
echo "$(date +%T.%N) power $1"
case "$1" in
1) setsid flock -o -w 30 {d}/power.lock {d}/boot.sh & ;;
0) flock -o -w 30 {d}/power.lock {d}/halt.sh ;;
esac
exit 0
"#
            ),
        );
        write_exec(
            &dir.path().join("boot.sh"),
            &format!(
                r#"#!/bin/sh
set -e
cat /proc/sys/kernel/random/uuid > {d}/run/boot_id
cat {d}/run/boot_id >> {d}/boots
echo "$(date +%T.%N) boot $(cat {d}/run/boot_id)"
echo "certlab-sut: power on, boot id $(cat {d}/run/boot_id)" >> {d}/console.log
rm -f {d}/sshd.pid
mkdir -p /run/sshd /run/certlab-sut
ip netns exec {nsname} unshare --mount --uts --propagation private sh -euc '
    mount --bind {d}/run/boot_id /proc/sys/kernel/random/boot_id
    for f in /usr/bin/systemctl /usr/sbin/reboot /sbin/reboot; do
        if [ -e "$f" ]; then mount --bind {d}/os/reboot "$f"; fi
    done
    mount --bind {d}/run /run/certlab-sut
    hostname {name}
    setsid {d}/os/kernel.sh </dev/null >/dev/null 2>&1 &
    exec {sshd} -f {d}/sshd_config -E {d}/sshd.log
'
"#,
                sshd = sshd::SSHD,
            ),
        );
        write_exec(
            &dir.path().join("halt.sh"),
            &format!(
                r#"#!/bin/sh
for i in 1 2 3 4 5; do
    pids=$(ip netns pids {nsname})
    [ -z "$pids" ] && break
    kill -9 $pids || true
    sleep 0.05
done
echo "$(date +%T.%N) halted"
echo "certlab-sut: power off" >> {d}/console.log
"#
            ),
        );
        // The OS's reboot: bound over systemctl and reboot inside the SUT.
        write_exec(
            &dir.path().join("os/reboot"),
            &format!(
                r#"#!/bin/sh
case "$(basename "$0") $*" in
reboot*|*" reboot"*) ;;
*) echo "certlab-sut: this systemctl only reboots" >&2; exit 1 ;;
esac
echo "reboot: Restarting system" >> {d}/console.log
setsid -f nsenter --net=/proc/{test_pid}/ns/net --mount=/proc/{test_pid}/ns/mnt \
    sh -c '{d}/power.sh 0; sleep 0.3; {d}/power.sh 1' </dev/null >/dev/null 2>&1
exit 0
"#
            ),
        );
        // The "kernel": panics on a write of `c` to its sysrq trigger.
        write_exec(
            &dir.path().join("os/kernel.sh"),
            &format!(
                r#"#!/bin/sh
while :; do
    read c < /run/certlab-sut/sysrq-trigger || {{ sleep 0.1; continue; }}
    if [ "$c" = c ]; then
        echo "sysrq: Trigger a crash" >> {d}/console.log
        echo "Kernel panic - not syncing: sysrq triggered crash" >> {d}/console.log
        for p in $(ip netns pids {nsname}); do [ "$p" = $$ ] || kill -9 "$p"; done
        kill -9 $$
    fi
done
"#
            ),
        );
        let hook = format!("#!/bin/sh\nexec {d}/power.sh \"$1\"\n");
        let bmc = ipmi_sim::Sim::start_with(Some(&hook), Some(&dir.path().join("console.log")));
        NsMachine {
            name: name.to_string(),
            host_key: sshd::read_pub(&host),
            client_key,
            dir,
            bmc: Some(bmc),
            ns,
        }
    }

    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// Every boot id the machine was given, in order.
    fn boots(&self) -> Vec<String> {
        self.file("boots").lines().map(str::to_string).collect()
    }

    fn diagnostics(&self) -> String {
        format!(
            "== {}: power.log\n{}\n== console.log\n{}\n== sshd.log (tail)\n{}",
            self.name,
            self.file("power.log"),
            self.file("console.log"),
            tail(&self.file("sshd.log"), 3000),
        )
    }

    fn toml(&self) -> String {
        let bmc = self.bmc.as_ref().unwrap();
        format!(
            "[[machine]]\nname = \"{name}\"\narch = \"{arch}\"\npool = \"netns\"\n\n\
             [machine.bmc]\nprotocol = \"ipmi\"\naddress = \"127.0.0.1\"\nport = {port}\n\
             username = \"{user}\"\npassword_env = \"{PW_VAR}\"\n\n\
             [machine.ssh]\naddress = \"{addr}\"\nport = 22\nuser = \"{me}\"\nkey_file = \"{key}\"\n\
             host_key = \"{hk}\"\n\n",
            name = self.name,
            arch = std::env::consts::ARCH,
            port = bmc.port,
            user = ipmi_sim::USER,
            addr = self.ns.sut_addr,
            me = sshd::whoami(),
            key = self.client_key.display(),
            hk = self.host_key,
        )
    }
}

impl Drop for NsMachine {
    fn drop(&mut self) {
        self.bmc = None;
        // Whatever the OS left running; the namespace's own drop kills
        // what is still in it and deletes it.
        let _ = Command::new(self.dir.path().join("power.sh"))
            .arg("0")
            .status();
    }
}

fn tail(s: &str, n: usize) -> &str {
    let mut i = s.len().saturating_sub(n);
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Stops a child for good, whatever happened.
struct Reap(Option<Child>);
impl Drop for Reap {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

struct Lab {
    dir: tempfile::TempDir,
    lab: PathBuf,
    db: String,
}

impl Lab {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_certlab"));
        c.args(args)
            .env("CERTLAB_LAB", &self.lab)
            .env("CERTLAB_DB", &self.db)
            .env(PW_VAR, ipmi_sim::PASSWORD)
            .env("CERTLAB_DATA_DIR", self.dir.path().join("data"))
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let o = self.run(args);
        assert_eq!(
            o.status.code(),
            Some(0),
            "certlab {args:?}: {}",
            text(&o.stderr)
        );
        serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("certlab {args:?}: {e}: {}", text(&o.stdout)))
    }
}

#[test]
fn the_daemon_drives_namespace_machines_through_a_reboot_and_a_crash_over_ipmi_and_ssh() {
    for (tool, package) in [
        ("flock", "util-linux"),
        ("unshare", "util-linux"),
        ("nsenter", "util-linux"),
        ("setsid", "util-linux"),
        ("mkfifo", "coreutils"),
    ] {
        require(tool, package);
    }
    assert!(
        Path::new("/sbin/reboot").exists() || Path::new("/usr/bin/systemctl").exists(),
        "neither /sbin/reboot nor systemctl exists: the SUT's reboot is bound over them"
    );
    let machines: Vec<NsMachine> = ["ns-a", "ns-b", "ns-c"]
        .iter()
        .map(|n| NsMachine::start(n))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab {
        lab: dir.path().join("lab.toml"),
        db: format!("sqlite://{}", dir.path().join("lab.db").display()),
        dir,
    };
    let toml: String = machines.iter().map(NsMachine::toml).collect();
    std::fs::write(&lab.lab, format!("version = 1\n\n{toml}")).unwrap();
    let plan = lab.dir.path().join("plan.toml");
    std::fs::write(&plan, PLAN).unwrap();
    let out = lab.dir.path().join("runs");
    let diag = || {
        machines
            .iter()
            .map(NsMachine::diagnostics)
            .collect::<Vec<_>>()
            .join("\n")
    };

    // Power on through the BMC, and see each machine's OS: its own
    // hostname and address, and the boot id its hardware gave it. The
    // third one is left off: the daemon's prepare step powers it on.
    let (on, off) = machines.split_at(2);
    for m in on {
        let v = lab.json(&[
            "lab", "power", &m.name, "on", "--wait", "20", "--format", "json",
        ]);
        assert_eq!(v["power"], "on", "{v}");
    }
    for m in on {
        let deadline = Instant::now() + Duration::from_secs(30);
        let o = loop {
            let o = lab.run(&[
                "lab",
                "exec",
                &m.name,
                "--",
                "sh",
                "-c",
                "hostname; cat /proc/sys/kernel/random/boot_id; ip -4 -o addr show",
            ]);
            if o.status.success() || Instant::now() > deadline {
                break o;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let stdout = text(&o.stdout);
        assert!(
            o.status.success(),
            "{}: {}\n{}",
            m.name,
            text(&o.stderr),
            diag()
        );
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines[0], m.name, "{stdout}");
        assert_eq!(lines[1], m.boots().last().unwrap(), "{stdout}");
        assert!(stdout.contains(&m.ns.sut_addr.to_string()), "{stdout}");
    }

    assert!(off[0].boots().is_empty(), "{} was powered on", off[0].name);

    // The daemon, and one job per machine.
    let daemon_log = lab.dir.path().join("daemon.log");
    let mut daemon = Reap(Some(
        lab.cmd(&[
            "lab",
            "daemon",
            "--lease-ttl",
            "30",
            "--max-runs",
            "3",
            "--out",
            out.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&daemon_log).unwrap())
        .spawn()
        .unwrap(),
    ));
    let boots_before: Vec<Vec<String>> = machines.iter().map(NsMachine::boots).collect();
    let mut jobs = Vec::new();
    for m in &machines {
        let v = lab.json(&[
            "job",
            "submit",
            "--plan",
            plan.to_str().unwrap(),
            "--machine",
            &m.name,
            "--format",
            "json",
        ]);
        jobs.push(v["jobs"][0]["id"].as_str().unwrap().to_string());
    }
    let mut args = vec!["job", "wait", "--timeout", "400", "--format", "json"];
    args.extend(jobs.iter().map(String::as_str));
    let o = lab.run(&args);
    let daemon_text = || std::fs::read_to_string(&daemon_log).unwrap_or_default();
    // A crash is a product verdict: the runs did not pass (exit 1), and
    // every job was carried out (not 2).
    assert_eq!(
        o.status.code(),
        Some(1),
        "job wait: {}\n{}\ndaemon:\n{}\n{}",
        text(&o.stdout),
        text(&o.stderr),
        tail(&daemon_text(), 20_000),
        diag()
    );
    let waited: Value = serde_json::from_slice(&o.stdout).unwrap();
    // Shown only if an assertion below fails.
    eprintln!(
        "{}\n== daemon (tail)\n{}",
        diag(),
        tail(&daemon_text(), 20_000)
    );

    for (i, m) in machines.iter().enumerate() {
        let job = waited
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["id"] == jobs[i].as_str())
            .unwrap();
        assert_eq!(job["state"], "finished", "{job}");
        assert_eq!(job["machine"], m.name.as_str(), "{job}");
        let run = job["run_id"].as_str().unwrap();

        // The run's event log: the declared reboot, on a new boot id that
        // the machine's hardware gave it during the run.
        let o = lab.run(&["job", "logs", &jobs[i], "--format", "json"]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        let events: Vec<Value> = text(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let rebooted: Vec<&Value> = events.iter().filter(|e| e["kind"] == "rebooted").collect();
        assert_eq!(rebooted.len(), 3, "{}: {events:#?}", m.name);
        let ids: Vec<&Value> = rebooted.iter().map(|e| &e["event"]["id"]).collect();
        assert_eq!(ids, ["os.reboot", "reboot.warm", "reboot.cold"], "{ids:?}");
        let ev = &rebooted[0]["event"];
        assert_eq!(ev["declared"], true, "{ev}");
        let boots = m.boots();
        let new_boot = ev["boot_id"].as_str().unwrap();
        assert!(
            !boots_before[i].iter().any(|b| b == new_boot) && boots.iter().any(|b| b == new_boot),
            "{}: the reboot's boot id {new_boot} is not one the run's power-ons gave ({boots:?}, before: {:?})",
            m.name,
            boots_before[i]
        );
        // The three reboots and the crash's power cycle: a boot each (and
        // the power on of the machine left off).
        assert!(
            boots.len() >= boots_before[i].len() + 4,
            "{}: {boots:?}",
            m.name
        );
        // The sweep: the BMC's event log over the run, kept with it.
        let swept: Vec<&Value> = events.iter().filter(|e| e["kind"] == "swept").collect();
        assert_eq!(swept.len(), 1, "{events:#?}");
        assert!(swept[0]["event"]["error"].is_null(), "{:?}", swept[0]);

        // The run's record, through the store as the CLI shows it.
        let shown = lab.json(&["runs", "show", run, "--format", "json"]);
        let results: Value =
            serde_json::from_slice(&std::fs::read(out.join(run).join("results.json")).unwrap())
                .unwrap();
        let cases = results["cases"].as_array().unwrap();
        let ids: Vec<&str> = cases.iter().map(|c| c["id"].as_str().unwrap()).collect();
        assert_eq!(
            ids,
            [
                "cpu.online",
                "os.reboot",
                "reboot.warm",
                "reboot.cold",
                "crash.inject",
                "after.crash"
            ],
            "one result per case, in order: {results}"
        );
        let verdict = |id: &str| {
            cases.iter().find(|c| c["id"] == id).unwrap()["verdict"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let show = serde_json::to_string(&shown).unwrap();
        for c in cases {
            assert!(
                show.contains(c["id"].as_str().unwrap()),
                "runs show lacks {}: {shown}",
                c["id"]
            );
            // No infrastructure fault turned into a product verdict.
            assert!(
                c["verdict"] != "fail" && c["verdict"] != "error",
                "{}: {c:#}",
                m.name
            );
        }
        for id in ["os.reboot", "reboot.warm", "reboot.cold"] {
            assert_eq!(verdict(id), "pass", "{}: {id}: {results:#}", m.name);
        }
        // The reboot check compared the boots: a new boot id over real SSH,
        // the PCI functions and their drivers the SUT sees, and a SEL read
        // over IPMI; the cold one went through the BMC.
        for id in ["reboot.warm", "reboot.cold"] {
            let c = cases.iter().find(|c| c["id"] == id).unwrap();
            let reason = c["reason"].as_str().unwrap();
            assert!(
                reason.contains("PCI functions back with the same driver")
                    && reason.contains("SEL: "),
                "{reason}"
            );
            assert!(
                c["evidence"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e["kind"] == "bmc" && e["source"] == "sel"),
                "{c:#}"
            );
        }
        let cold = cases.iter().find(|c| c["id"] == "reboot.cold").unwrap();
        assert!(
            cold["reason"]
                .as_str()
                .unwrap()
                .starts_with("power cycle through the BMC"),
            "{cold:#}"
        );
        assert_eq!(
            verdict("after.crash"),
            "pass",
            "{}: the cases after the crash ran: {results:#}",
            m.name
        );
        let crash = cases.iter().find(|c| c["id"] == "crash.inject").unwrap();
        assert_eq!(crash["verdict"], "crash", "{crash:#}");
        assert!(
            crash["reason"].as_str().unwrap().contains("power-cycled"),
            "{crash:#}"
        );
        // The BMC's evidence: the serial console (over SOL) with the panic.
        let console = crash["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "bmc" && e["source"] == "console")
            .unwrap_or_else(|| panic!("no console evidence: {crash:#}"));
        let sha = console["content"]["sha256"].as_str().unwrap();
        let bytes = std::fs::read(out.join(run).join("evidence").join(sha)).unwrap();
        assert!(
            text(&bytes).contains("Kernel panic - not syncing: sysrq triggered crash"),
            "{}: the console evidence lacks the panic: {:?}",
            m.name,
            text(&bytes)
        );
        assert!(
            crash["evidence"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["kind"] == "bmc" && e["source"] == "sel"),
            "{crash:#}"
        );
        assert!(
            results["inventory"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["kind"] == "bmc" && e["source"] == "sel"),
            "no SEL sweep in results.json"
        );
    }

    // One run per job: no attempt was lost to an infrastructure fault.
    let runs = lab.json(&["runs", "list", "--format", "json"]);
    assert_eq!(runs.as_array().unwrap().len(), 3, "{runs:#}");

    // The crashes were power cycles through ipmi_sim, recorded in the
    // store as BMC calls of each machine.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = certlab_harness::Store::open(&lab.db).await.unwrap();
        let since = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
        for m in &machines {
            let calls = store.bmc_calls(&m.name, since).await.unwrap();
            let ops: Vec<(String, String)> = calls
                .iter()
                .map(|c| (c.operation.clone(), format!("{:?}", c.outcome)))
                .collect();
            let ok = |op: &str| {
                calls
                    .iter()
                    .any(|c| c.operation == op && c.outcome == certlab_lab::bmc::CallOutcome::Ok)
            };
            assert!(
                ok("power:cycle"),
                "{}: no successful power cycle recorded: {ops:?}",
                m.name
            );
            // The machine left off was powered on by the daemon, through
            // its BMC (the test's own `lab power` calls are the others').
            if m.name == off[0].name {
                assert!(ok("power:on"), "{}: not powered on: {ops:?}", m.name);
            }
        }
        store.close().await;
    });

    // The daemon is listed as the one driving the lab.
    let mut child = daemon.0.take().unwrap();
    let listed = lab.json(&["lab", "daemons", "--format", "json"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed:#}");
    assert_eq!(listed[0]["pid"], child.id(), "{listed:#}");
    assert_eq!(listed[0]["state"], "running", "{listed:#}");

    // SIGTERM: the daemon stops cleanly, and says so in the store.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the daemon did not stop on SIGTERM:\n{}", daemon_text());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let listed = lab.json(&["lab", "daemons", "--format", "json"]);
    assert_eq!(listed[0]["state"], "stopped", "{listed:#}");
    drop(machines);
}
