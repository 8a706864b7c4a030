//! Plans: which cases to run, as data, and the selection of cases for a machine.

use std::time::Duration;

use certlab_hwdb::{HardwareProfile, Inventory};
use serde::Deserialize;
use sha2::Digest;

use crate::checks;
use crate::context::{CaseCtx, CaseError, CaseOutcome};
use crate::requires::{unmet_hardware_of, unmet_software_of, Requires};

/// Built-in plans, compiled in: (name, TOML text).
pub const BUILTIN_PLANS: &[(&str, &str)] = &[
    ("server-basic", include_str!("../plans/server-basic.toml")),
    ("gpu-cert", include_str!("../plans/gpu-cert.toml")),
    ("server-cert", include_str!("../plans/server-cert.toml")),
    (
        "regression-nightly",
        include_str!("../plans/regression-nightly.toml"),
    ),
];

/// Whether a case applies to a machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applies {
    Yes,
    /// It does not, and why.
    No(String),
}

/// A check: the code behind a case.
pub trait Check: Send + Sync {
    /// Decides from the identified hardware whether the case applies.
    /// Checks that can only tell on the machine itself skip from `run`.
    fn applies(&self, _profile: &HardwareProfile, _inventory: &Inventory) -> Applies {
        Applies::Yes
    }

    /// What the check cannot work without, declared ([`Requires`]): the
    /// hardware needs are judged at selection, the software needs on the
    /// machine before the check runs ([`run_checked`]), so the check
    /// itself never meets a machine that lacks them.
    fn requires(&self) -> Requires {
        Requires::default()
    }

    /// The check judges the BMC's event log over the run, which only the
    /// orchestrator can read (through the machine's BMC): it hands the
    /// entries over with [`CaseCtx::with_bmc_sel`] before the case runs.
    fn needs_bmc_sel(&self) -> bool {
        false
    }

    /// Runs the check. `Err` is an infrastructure error, never a product failure.
    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError>;

    /// For a case that declares `reboots = true`: what the check notes
    /// before the orchestrator takes the machine down, or a verdict that
    /// makes the reboot pointless (kdump not armed: `fail`, no crash).
    /// The default notes nothing: the check then runs on the new boot.
    fn before(&self, _ctx: &CaseCtx<'_>) -> Result<Before, CaseError> {
        Ok(Before::Go(serde_json::Value::Null))
    }

    /// For a case that declares `reboot = "crash"`: brings the machine
    /// down (the crash window opens here; losing the machine is expected).
    /// An `Err` that is a lost connection is what a crash looks like.
    fn trigger(&self, _ctx: &CaseCtx<'_>, _before: &serde_json::Value) -> Result<(), CaseError> {
        Err(CaseError::Infra(
            "this check has no crash trigger (declare `reboot = \"os\"` or `\"power-cycle\"`)"
                .to_string(),
        ))
    }

    /// For a case that declares `reboots = true`: the verdict on the new
    /// boot, from what [`Check::before`] noted and how the machine came
    /// back. The default runs the check as if nothing had happened.
    fn after(
        &self,
        ctx: &CaseCtx<'_>,
        _before: &serde_json::Value,
        _reboot: &Rebooted,
    ) -> Result<CaseOutcome, CaseError> {
        self.run(ctx)
    }

    /// The check measures performance and compares its samples with a
    /// stored baseline when it is given one ([`CaseSpec::baseline`]).
    fn compares_with_baseline(&self) -> bool {
        false
    }
}

/// Runs `check` once the case's software needs hold on the machine
/// (`requires`: [`CaseSpec::requires`]); an unmet need is the case's skip,
/// its recorded probe the evidence. Every run of a check goes through here.
pub fn run_checked(
    check: &dyn Check,
    ctx: &CaseCtx<'_>,
    requires: &[Requires],
) -> Result<CaseOutcome, CaseError> {
    match unmet_software_of(requires, ctx)? {
        Some(why) => Ok(CaseOutcome::skip(why)),
        None => check.run(ctx),
    }
}

/// [`run_checked`] for the first phase of a rebooting case: an unmet need
/// stops the case before the machine is taken down.
pub fn before_checked(
    check: &dyn Check,
    ctx: &CaseCtx<'_>,
    requires: &[Requires],
) -> Result<Before, CaseError> {
    match unmet_software_of(requires, ctx)? {
        Some(why) => Ok(Before::Stop(CaseOutcome::skip(why))),
        None => check.before(ctx),
    }
}

/// What [`Check::before`] decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Before {
    /// Take the machine down; the snapshot goes to [`Check::after`].
    Go(serde_json::Value),
    /// Do not: this is the case's verdict.
    Stop(CaseOutcome),
}

/// How a case that declares `reboots = true` takes the machine down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RebootKind {
    /// The OS's own reboot (`systemctl reboot`): a warm reboot.
    #[default]
    Os,
    /// Power off and on through the BMC: a cold boot.
    PowerCycle,
    /// The check's [`Check::trigger`] crashes the machine (kdump, a
    /// starved watchdog); it must come back by itself.
    Crash,
}

impl RebootKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RebootKind::Os => "os",
            RebootKind::PowerCycle => "power-cycle",
            RebootKind::Crash => "crash",
        }
    }

    pub fn parse(s: &str) -> Option<RebootKind> {
        [RebootKind::Os, RebootKind::PowerCycle, RebootKind::Crash]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// How the machine came back, as [`Check::after`] is told.
#[derive(Debug, Clone, PartialEq)]
pub struct Rebooted {
    pub kind: RebootKind,
    /// The boot id before and after, as the orchestrator read them.
    pub old_boot: String,
    pub new_boot: String,
    /// The machine did not come back by itself and was power-cycled
    /// through its BMC: why (a crash case's kernel never rebooted).
    pub recovered: Option<String>,
    /// What the BMC logged from before the case to after it (kept as the
    /// case's `bmc` evidence by the orchestrator); `None` when the machine
    /// has no such log, `Err` when it could not be read.
    pub sel: Option<Result<Vec<certlab_lab::bmc::SelEntry>, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    plan: PlanHeader,
    #[serde(rename = "case", default)]
    cases: Vec<CaseFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanHeader {
    id: String,
    version: String,
    title: String,
    #[serde(default)]
    description: String,
    /// The OS releases the plan applies to (none listed: every release).
    #[serde(default)]
    os_releases: Vec<OsRelease>,
}

/// An OS release a plan applies to: `/etc/os-release`'s `ID` (compared
/// without regard to case) and the `VERSION_ID`s; no versions, every
/// version. A version listed matches itself and its point releases (`9`
/// matches `9.4`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OsRelease {
    pub id: String,
    #[serde(default)]
    pub versions: Vec<String>,
}

impl OsRelease {
    fn matches(&self, os_id: &str, os_version: &str) -> bool {
        self.id.eq_ignore_ascii_case(os_id)
            && (self.versions.is_empty()
                || self.versions.iter().any(|v| {
                    os_version == v
                        || os_version
                            .strip_prefix(v.as_str())
                            .is_some_and(|rest| rest.starts_with('.'))
                }))
    }
}

impl std::fmt::Display for OsRelease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.versions.is_empty() {
            write!(f, "{} (any version)", self.id)
        } else {
            write!(f, "{} {}", self.id, self.versions.join("/"))
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    id: String,
    check: String,
    title: String,
    #[serde(default)]
    blocker: bool,
    timeout_s: u64,
    #[serde(default)]
    reboots: bool,
    #[serde(default)]
    may_crash: bool,
    /// How a case with `reboots = true` reboots: `os` (default),
    /// `power-cycle`, `crash`.
    #[serde(default)]
    reboot: Option<String>,
    #[serde(default)]
    params: toml::Table,
    /// What the plan narrows the case to, beyond its check's own needs.
    #[serde(default)]
    requires: Option<Requires>,
}

/// One case of a plan.
#[derive(Debug, Clone)]
pub struct CaseSpec {
    pub id: String,
    /// The registry name of the [`Check`] that implements it.
    pub check: String,
    pub title: String,
    /// A failure blocks certification.
    pub blocker: bool,
    pub timeout: Duration,
    /// The case reboots the machine on purpose: the orchestrator runs the
    /// check's [`Check::before`], reboots it as `reboot` says, then runs
    /// [`Check::after`] on the new boot.
    pub reboots: bool,
    pub reboot: RebootKind,
    /// The case may crash the machine on purpose (kdump, watchdog).
    pub may_crash: bool,
    pub params: toml::Table,
    /// What the case needs of the machine: its check's declaration, then
    /// the plan's (`[case.requires]`); every one must hold.
    pub requires: Vec<Requires>,
    /// The stored performance baseline the runner found for this case on
    /// this machine (or its platform), for a check that
    /// [compares with one](Check::compares_with_baseline). Plans never set it.
    pub baseline: Option<crate::perf::Baseline>,
}

/// A certification plan.
#[derive(Debug, Clone)]
pub struct Plan {
    pub id: String,
    pub version: String,
    pub title: String,
    pub description: String,
    /// `sha256:<hex>` of the plan's TOML text.
    pub digest: String,
    /// The OS releases the plan applies to; empty: every release.
    pub os_releases: Vec<OsRelease>,
    pub cases: Vec<CaseSpec>,
}

/// Why a plan could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("unknown plan `{0}` (built-in plans: {1})")]
    Unknown(String, String),
    #[error("{path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: case `{case}` names unknown check `{check}`")]
    UnknownCheck {
        path: String,
        case: String,
        check: String,
    },
    #[error("{path}: case id `{0}` appears twice", path = .1)]
    DuplicateCase(String, String),
    #[error("{path}: case `{case}`: {message}")]
    BadCase {
        path: String,
        case: String,
        message: String,
    },
    #[error("{path}: plan file is larger than {limit} bytes")]
    TooLarge { path: String, limit: u64 },
}

/// The largest plan file [`Plan::load`] reads (1 MiB; the built-in plans are
/// a few KiB).
pub const MAX_PLAN_BYTES: u64 = 1 << 20;

/// For each case of a plan: selected, or skipped with a reason.
#[derive(Debug, Clone)]
pub struct Selection {
    pub case: CaseSpec,
    pub selected: Applies,
}

/// The text of file `path`, refused when it holds more than `limit` bytes
/// (read at most `limit + 1` bytes to know).
fn read_limited(path: &str, limit: u64) -> Result<String, PlanError> {
    use std::io::Read;
    let read_err = |source| PlanError::Read {
        path: path.to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut text = String::new();
    file.take(limit + 1)
        .read_to_string(&mut text)
        .map_err(read_err)?;
    if text.len() as u64 > limit {
        return Err(PlanError::TooLarge {
            path: path.to_string(),
            limit,
        });
    }
    Ok(text)
}

impl Plan {
    /// A built-in plan by name, or a plan file by path.
    pub fn load(name_or_path: &str) -> Result<Plan, PlanError> {
        if let Some((_, text)) = BUILTIN_PLANS.iter().find(|(n, _)| *n == name_or_path) {
            return Plan::parse(&format!("builtin:{name_or_path}"), text);
        }
        if name_or_path.contains('/') || name_or_path.ends_with(".toml") {
            let text = read_limited(name_or_path, MAX_PLAN_BYTES)?;
            return Plan::parse(name_or_path, &text);
        }
        let names: Vec<&str> = BUILTIN_PLANS.iter().map(|(n, _)| *n).collect();
        Err(PlanError::Unknown(
            name_or_path.to_string(),
            names.join(", "),
        ))
    }

    /// Parses a plan's TOML; `origin` names it in errors.
    pub fn parse(origin: &str, text: &str) -> Result<Plan, PlanError> {
        let file: PlanFile = toml::from_str(text).map_err(|e| PlanError::Parse {
            path: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let mut cases: Vec<CaseSpec> = Vec::new();
        for c in file.cases {
            let Some(check) = checks::lookup(&c.check) else {
                return Err(PlanError::UnknownCheck {
                    path: origin.to_string(),
                    case: c.id,
                    check: c.check,
                });
            };
            if cases.iter().any(|x| x.id == c.id) {
                return Err(PlanError::DuplicateCase(c.id, origin.to_string()));
            }
            let reboot = match c.reboot.as_deref() {
                None => RebootKind::Os,
                Some(_) if !c.reboots => {
                    return Err(PlanError::BadCase {
                        path: origin.to_string(),
                        case: c.id,
                        message: "`reboot` needs `reboots = true`".to_string(),
                    })
                }
                Some(s) => RebootKind::parse(s).ok_or_else(|| PlanError::BadCase {
                    path: origin.to_string(),
                    case: c.id.clone(),
                    message: format!(
                        "`reboot = \"{s}\"`: expected \"os\", \"power-cycle\" or \"crash\""
                    ),
                })?,
            };
            let mut requires: Vec<Requires> = Vec::new();
            for r in [Some(check.requires()), c.requires].into_iter().flatten() {
                if let Err(message) = r.validate() {
                    return Err(PlanError::BadCase {
                        path: origin.to_string(),
                        case: c.id,
                        message,
                    });
                }
                if !r.is_empty() {
                    requires.push(r);
                }
            }
            cases.push(CaseSpec {
                id: c.id,
                check: c.check,
                title: c.title,
                blocker: c.blocker,
                timeout: Duration::from_secs(c.timeout_s.max(1)),
                reboots: c.reboots,
                reboot,
                may_crash: c.may_crash,
                params: c.params,
                requires,
                baseline: None,
            });
        }
        Ok(Plan {
            id: file.plan.id,
            version: file.plan.version,
            title: file.plan.title,
            description: file.plan.description,
            digest: format!(
                "sha256:{}",
                hex::encode(sha2::Sha256::digest(text.as_bytes()))
            ),
            os_releases: file.plan.os_releases,
            cases,
        })
    }

    /// Whether the plan applies to the OS release `/etc/os-release` names
    /// (`ID`, `VERSION_ID`), and if not, why.
    pub fn applies_to_os(&self, os_id: &str, os_version: &str) -> Applies {
        if self.os_releases.is_empty()
            || self
                .os_releases
                .iter()
                .any(|r| r.matches(os_id, os_version))
        {
            return Applies::Yes;
        }
        let listed: Vec<String> = self.os_releases.iter().map(ToString::to_string).collect();
        let running = if os_id.is_empty() {
            "an OS without an ID in /etc/os-release".to_string()
        } else {
            format!("{os_id} {os_version}")
        };
        Applies::No(format!(
            "plan {} {} applies to {}; this machine runs {running}",
            self.id,
            self.version,
            listed.join(", ")
        ))
    }

    /// [`Plan::select`] on a machine running `os_id` `os_version`: on an OS
    /// release the plan does not apply to, every case is skipped with that
    /// reason.
    pub fn select_on_os(
        &self,
        os_id: &str,
        os_version: &str,
        profile: &HardwareProfile,
        inventory: &Inventory,
    ) -> Vec<Selection> {
        match self.applies_to_os(os_id, os_version) {
            Applies::Yes => self.select(profile, inventory),
            no => self
                .cases
                .iter()
                .map(|c| Selection {
                    case: c.clone(),
                    selected: no.clone(),
                })
                .collect(),
        }
    }

    /// Decides for each case whether it applies to this machine.
    pub fn select(&self, profile: &HardwareProfile, inventory: &Inventory) -> Vec<Selection> {
        self.cases
            .iter()
            .map(|c| Selection {
                case: c.clone(),
                selected: match checks::lookup(&c.check) {
                    Some(check) => match unmet_hardware_of(&c.requires, profile, inventory) {
                        Some(why) => Applies::No(why),
                        None => check.applies(profile, inventory),
                    },
                    None => Applies::No(format!("no check named `{}`", c.check)),
                },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_plan_loads_and_has_enough_cases() {
        let p = Plan::load("server-basic").unwrap();
        assert_eq!(p.id, "server-basic");
        assert!(p.cases.len() >= 12, "{}", p.cases.len());
        assert!(p.digest.starts_with("sha256:") && p.digest.len() == 71);
    }

    #[test]
    fn server_cert_holds_every_server_basic_case_and_the_newer_suites() {
        let basic = Plan::load("server-basic").unwrap();
        let cert = Plan::load("server-cert").unwrap();
        for case in &basic.cases {
            let same = cert.cases.iter().find(|c| c.id == case.id);
            let same = same.unwrap_or_else(|| panic!("server-cert lacks {}", case.id));
            assert_eq!(same.blocker, case.blocker, "{}", case.id);
        }
        for id in ["integrity.packages", "gpu.ecc", "perf.fio-seqread"] {
            assert!(cert.cases.iter().any(|c| c.id == id), "{id}");
        }
        // Every built-in plan loads, and ids are unique within each.
        for (name, _) in BUILTIN_PLANS {
            let p = Plan::load(name).unwrap();
            let mut ids: Vec<&str> = p.cases.iter().map(|c| c.id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), p.cases.len(), "{name}");
        }
    }

    #[test]
    fn plans_apply_to_the_os_releases_they_list() {
        let p = Plan::load("regression-nightly").unwrap();
        assert!(!p.os_releases.is_empty());
        assert_eq!(p.applies_to_os("debian", "12"), Applies::Yes);
        assert_eq!(p.applies_to_os("openEuler", "22.03"), Applies::Yes);
        let Applies::No(why) = p.applies_to_os("debian", "10") else {
            panic!("debian 10 selected")
        };
        assert!(why.contains("this machine runs debian 10"), "{why}");
        let text = "[plan]\nid='x'\nversion='1'\ntitle='t'\nos_releases = [{ id = 'rhel', versions = ['9'] }, { id = 'Debian' }]\n[[case]]\nid='a'\ncheck='cpu-online'\ntitle='t'\ntimeout_s=1\n";
        let p = Plan::parse("x.toml", text).unwrap();
        assert_eq!(p.applies_to_os("rhel", "9.4"), Applies::Yes);
        assert_eq!(p.applies_to_os("rhel", "9"), Applies::Yes);
        assert!(matches!(p.applies_to_os("rhel", "90"), Applies::No(_)));
        assert!(matches!(p.applies_to_os("rhel", "8.9"), Applies::No(_)));
        assert_eq!(p.applies_to_os("debian", "13"), Applies::Yes);
        let sel = p.select_on_os(
            "ubuntu",
            "24.04",
            &HardwareProfile::default(),
            &Inventory::default(),
        );
        assert!(sel.iter().all(
            |s| matches!(&s.selected, Applies::No(w) if w.contains("rhel 9, Debian (any version)"))
        ));
        // No list: every release.
        assert_eq!(
            Plan::load("server-cert").unwrap().applies_to_os("", ""),
            Applies::Yes
        );
        // An unknown key in a release is refused.
        let bad = text.replace("versions", "version");
        assert!(Plan::parse("x.toml", &bad).is_err());
    }

    #[test]
    fn rejects_unknown_keys_checks_and_plans() {
        let bad = "[plan]\nid='x'\nversion='1'\ntitle='t'\ncolour='red'\n";
        let e = Plan::parse("x.toml", bad).unwrap_err().to_string();
        assert!(e.contains("x.toml") && e.contains("colour"), "{e}");
        let bad = "[plan]\nid='x'\nversion='1'\ntitle='t'\n[[case]]\nid='a'\ncheck='nope'\ntitle='t'\ntimeout_s=1\n";
        let e = Plan::parse("x.toml", bad).unwrap_err().to_string();
        assert!(e.contains("unknown check `nope`"), "{e}");
        assert!(matches!(
            Plan::load("no-such-plan"),
            Err(PlanError::Unknown(..))
        ));
    }

    #[test]
    fn reboot_kinds_are_declared_with_reboots() {
        let case = |extra: &str| {
            format!("[plan]\nid='x'\nversion='1'\ntitle='t'\n[[case]]\nid='r'\ncheck='reboot'\ntitle='t'\ntimeout_s=1\n{extra}")
        };
        let p = Plan::parse("x.toml", &case("reboots = true")).unwrap();
        assert_eq!(
            (p.cases[0].reboots, p.cases[0].reboot),
            (true, RebootKind::Os)
        );
        let p = Plan::parse("x.toml", &case("reboots = true\nreboot = 'crash'")).unwrap();
        assert_eq!(p.cases[0].reboot, RebootKind::Crash);
        let e = Plan::parse("x.toml", &case("reboot = 'power-cycle'"))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "x.toml: case `r`: `reboot` needs `reboots = true`");
        let e = Plan::parse("x.toml", &case("reboots = true\nreboot = 'kexec'"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("expected \"os\", \"power-cycle\" or \"crash\""),
            "{e}"
        );
        // server-cert: the reboots last, the destructive ones opt-in.
        let cert = Plan::load("server-cert").unwrap();
        let kinds: Vec<(&str, RebootKind, Option<bool>)> = cert
            .cases
            .iter()
            .filter(|c| c.reboots)
            .map(|c| {
                let enabled = c.params.get("enabled").and_then(|v| v.as_bool());
                (c.id.as_str(), c.reboot, enabled)
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("reboot.warm", RebootKind::Os, None),
                ("reboot.cold", RebootKind::PowerCycle, None),
                ("kdump.crash", RebootKind::Crash, Some(false)),
                ("watchdog.reset", RebootKind::Crash, Some(false)),
                ("ras.einj-memory-uncorrectable", RebootKind::Crash, None),
            ]
        );
        // Nothing that looks at the OS runs after a reboot it did not start
        // in; only the BMC's log over the whole run (ras.sel) comes after.
        let first_reboot = cert.cases.iter().position(|c| c.reboots).unwrap();
        let after: Vec<&str> = cert.cases[first_reboot..]
            .iter()
            .filter(|c| !c.reboots)
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(after, ["ras.sel"]);
        assert_eq!(cert.cases.last().map(|c| c.id.as_str()), Some("ras.sel"));
    }

    #[test]
    fn plan_files_are_limited_in_size() {
        let dir = tempfile::tempdir().unwrap();
        // The built-in plan as a file, padded with comments to exactly the limit: loads.
        let text = BUILTIN_PLANS[0].1;
        let mut padded = text.to_string();
        while padded.len() < MAX_PLAN_BYTES as usize {
            let room = MAX_PLAN_BYTES as usize - padded.len();
            let line = "#".repeat(room.min(80) - 1);
            padded.push_str(&line);
            padded.push('\n');
        }
        assert_eq!(padded.len() as u64, MAX_PLAN_BYTES);
        let at_limit = dir.path().join("at-limit.toml");
        std::fs::write(&at_limit, &padded).unwrap();
        let p = Plan::load(at_limit.to_str().unwrap()).unwrap();
        assert_eq!(p.id, "server-basic");
        // One byte more: refused, naming the file and the limit.
        padded.push('\n');
        let over = dir.path().join("over.toml");
        std::fs::write(&over, &padded).unwrap();
        let e = Plan::load(over.to_str().unwrap()).unwrap_err();
        assert!(matches!(e, PlanError::TooLarge { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            format!("{}: plan file is larger than 1048576 bytes", over.display())
        );
    }

    #[test]
    fn declared_needs_decide_selection_and_name_what_the_machine_lacks() {
        let text = "[plan]\nid='x'\nversion='1'\ntitle='t'\n\
            [[case]]\nid='inject'\ncheck='ras-mce-inject'\ntitle='t'\ntimeout_s=1\n\
            [[case]]\nid='nvme'\ncheck='cpu-online'\ntitle='t'\ntimeout_s=1\n\
            [case.requires]\ndevice_class=['0108']\ncpu_family=['kunpeng','hygon']\n\
            [[case]]\nid='fio'\ncheck='perf-fio'\ntitle='t'\ntimeout_s=1\n";
        let p = Plan::parse("x.toml", text).unwrap();
        // mce-inject declares x86 and root; the plan adds NVMe on Kunpeng
        // or Hygon to a check that declares nothing; fio declares its tool.
        assert_eq!(p.cases[0].requires.len(), 1);
        assert_eq!(p.cases[0].requires[0].arch, ["x86_64", "i686"]);
        assert!(p.cases[0].requires[0].root);
        assert_eq!(p.cases[1].requires.len(), 1);
        assert_eq!(p.cases[2].requires[0].tools, ["fio"]);

        let mut profile = HardwareProfile::default();
        profile.cpu.family = certlab_hwdb::Family::Kunpeng;
        let inventory = Inventory {
            machine: Some("aarch64".into()),
            ..Inventory::default()
        };
        let sel = p.select(&profile, &inventory);
        let Applies::No(why) = &sel[0].selected else {
            panic!("mce-inject selected on aarch64")
        };
        assert_eq!(why, "needs arch x86_64 or i686; this machine is aarch64");
        let Applies::No(why) = &sel[1].selected else {
            panic!("an NVMe case selected without NVMe")
        };
        assert_eq!(
            why,
            "needs a PCI device of class 0108 (mass storage controller); this machine has none"
        );
        // Tools are judged on the machine, not at selection.
        assert_eq!(sel[2].selected, Applies::Yes);

        profile.pci_devices.push(certlab_hwdb::PciDevice {
            class: 0x010802,
            ..Default::default()
        });
        assert_eq!(p.select(&profile, &inventory)[1].selected, Applies::Yes);

        // A malformed need is the plan's error, naming the case.
        let bad = text.replace("['0108']", "['nvme']");
        let e = Plan::parse("x.toml", &bad).unwrap_err().to_string();
        assert_eq!(
            e,
            "x.toml: case `nvme`: requires.device_class: \"nvme\" is not a PCI class code (2, 4 or 6 hex digits)"
        );
        let e = Plan::parse("x.toml", &text.replace("cpu_family", "gpu"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `gpu`"), "{e}");
    }

    #[test]
    fn software_needs_are_probed_on_the_machine_and_recorded() {
        use certlab_lab::Scripted;
        let sink = crate::MemorySink::default();
        let params = toml::Table::new();
        let (profile, inventory) = (HardwareProfile::default(), Inventory::default());
        let on = |m: &Scripted, phase: &dyn Fn(&CaseCtx<'_>) -> Result<Before, CaseError>| {
            let ctx = CaseCtx::new(
                m,
                &profile,
                &inventory,
                &params,
                &sink,
                Duration::from_secs(5),
            );
            (phase(&ctx).unwrap(), ctx.take_evidence())
        };

        let fio = checks::lookup("perf-fio").unwrap();
        let m = Scripted::new("sut").command("command -v fio", 1, "", "");
        let (o, ev) = on(&m, &|ctx| {
            run_checked(fio, ctx, &[fio.requires()]).map(Before::Stop)
        });
        let Before::Stop(o) = o else {
            panic!("no outcome")
        };
        assert_eq!(o.verdict, certlab_reports::Verdict::Skip);
        assert_eq!(
            o.reason,
            "needs tool fio: fio is not installed on the target"
        );
        assert!(
            matches!(&ev[..], [certlab_reports::Evidence::Command { cmd, .. }] if cmd == "command -v fio"),
            "{ev:?}"
        );

        // Root, before the machine is taken down.
        let reset = checks::lookup("watchdog-reset").unwrap();
        let m = Scripted::new("sut").command("id -u", 0, "1000\n", "");
        match on(&m, &|ctx| before_checked(reset, ctx, &[reset.requires()])).0 {
            Before::Stop(o) => assert_eq!(o.reason, "needs root; the case runs as uid 1000"),
            Before::Go(_) => panic!("a non-root watchdog reset went ahead"),
        }
    }
}
