//! What the API answers and the pages show: response types made from store
//! rows, never the rows themselves (no internal ids, no hashes of secrets).

use certlab_reports::RunRecord;
use serde::Serialize;
use time::OffsetDateTime;

use crate::store::{Certification, CertificationDetail, Change, Component, Submission};
use crate::AppState;

fn rfc3339(t: OffsetDateTime) -> String {
    crate::store::ts(t)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubmissionView {
    pub id: String,
    pub state: &'static str,
    pub org: String,
    pub submitter: String,
    pub bundle_sha256: String,
    pub bundle_size: u64,
    pub key_id: String,
    pub created: String,
    pub updated: String,
    pub url: String,
    pub certification: Option<String>,
    pub certification_url: Option<String>,
}

impl SubmissionView {
    pub fn new(state: &AppState, s: &Submission) -> SubmissionView {
        SubmissionView {
            id: s.id.clone(),
            state: s.state.as_str(),
            org: s.org_name.clone(),
            submitter: s.submitter_email.clone(),
            bundle_sha256: s.bundle_sha256.clone(),
            bundle_size: s.bundle_size,
            key_id: s.key_id.clone(),
            created: rfc3339(s.created),
            updated: rfc3339(s.updated),
            url: state.link(&format!("/submissions/{}", s.id)),
            certification: s.certification_id.clone(),
            certification_url: s
                .certification_id
                .as_ref()
                .map(|c| state.link(&format!("/certifications/{c}"))),
        }
    }
}

/// What was run, where, with what outcome: from the submitted `results.json`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecordSummary {
    pub run_id: String,
    pub plan: String,
    pub plan_version: String,
    pub outcome: &'static str,
    pub hostname: String,
    pub system: String,
    pub cpu: String,
    pub arch: String,
    pub os: String,
    pub kernel: String,
    pub cases: u32,
    pub pass: u32,
    pub fail: u32,
    pub warning: u32,
    pub skip: u32,
    pub error: u32,
    pub crash: u32,
}

impl RecordSummary {
    pub fn new(r: &RunRecord) -> RecordSummary {
        let p = &r.profile;
        let system = [p.system_vendor.as_deref(), p.system_product.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        RecordSummary {
            run_id: r.run_id.clone(),
            plan: r.plan.id.clone(),
            plan_version: r.plan.version.clone(),
            outcome: r.summary.outcome.as_str(),
            hostname: r.host.hostname.clone(),
            system,
            cpu: format!("{} ({})", p.cpu_model, p.cpu_family),
            arch: r.host.arch.clone(),
            os: r.host.os_name.clone(),
            kernel: r.host.kernel.clone(),
            cases: r.summary.total,
            pass: r.summary.pass,
            fail: r.summary.fail,
            warning: r.summary.warning,
            skip: r.summary.skip,
            error: r.summary.error,
            crash: r.summary.crash,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChangeView {
    pub seq: u64,
    pub subject: String,
    pub action: String,
    pub from: Option<String>,
    pub to: String,
    pub by: String,
    pub comment: String,
    pub at: String,
}

impl From<&Change> for ChangeView {
    fn from(c: &Change) -> ChangeView {
        ChangeView {
            seq: c.seq,
            subject: c.subject.clone(),
            action: c.action.clone(),
            from: c.from_state.clone(),
            to: c.to_state.clone(),
            by: c.actor_email.clone(),
            comment: c.comment.clone(),
            at: rfc3339(c.at),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubmissionDetail {
    #[serde(flatten)]
    pub submission: SubmissionView,
    pub results: RecordSummary,
    pub history: Vec<ChangeView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ComponentView {
    pub pci_id: String,
    pub class: String,
    pub name: String,
    pub driver: String,
    pub url: String,
}

impl ComponentView {
    pub fn new(state: &AppState, c: &Component) -> ComponentView {
        ComponentView {
            pci_id: c.pci_id.clone(),
            class: c.class.clone(),
            name: c.name.clone(),
            driver: c.driver.clone(),
            url: state.link(&format!("/components/{}", c.pci_id)),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CertificationView {
    pub id: String,
    pub state: String,
    pub org: String,
    pub vendor: String,
    pub product: String,
    pub firmware: String,
    pub cpu_family: String,
    pub cpu_vendor: String,
    pub cpu_model: String,
    pub arch: String,
    pub os_id: String,
    pub os_version: String,
    pub os_name: String,
    pub kernel: String,
    pub plan: String,
    pub plan_version: String,
    pub outcome: String,
    pub published: String,
    pub revoked: Option<String>,
    pub url: String,
    pub report_url: String,
    pub bundle_url: String,
    pub bundle_sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub components: Option<Vec<ComponentView>>,
    /// The hardware profile as submitted (detail only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub profile: Option<certlab_reports::HardwareSummary>,
    /// The memory size for people (`512 GiB`), detail only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

impl CertificationView {
    pub fn new(
        state: &AppState,
        c: &Certification,
        components: Option<&[Component]>,
    ) -> CertificationView {
        CertificationView {
            id: c.id.clone(),
            state: c.state.clone(),
            org: c.org_name.clone(),
            vendor: c.vendor.clone(),
            product: c.product.clone(),
            firmware: c.firmware.clone(),
            cpu_family: c.cpu_family.clone(),
            cpu_vendor: c.cpu_vendor.clone(),
            cpu_model: c.cpu_model.clone(),
            arch: c.arch.clone(),
            os_id: c.os_id.clone(),
            os_version: c.os_version.clone(),
            os_name: c.os_name.clone(),
            kernel: c.kernel.clone(),
            plan: c.plan_id.clone(),
            plan_version: c.plan_version.clone(),
            outcome: c.outcome.clone(),
            published: rfc3339(c.published),
            revoked: c.revoked.map(rfc3339),
            url: state.link(&format!("/certifications/{}", c.id)),
            report_url: state.link(&format!("/certifications/{}/report", c.id)),
            bundle_url: state.link(&format!("/certifications/{}/bundle", c.id)),
            bundle_sha256: c.bundle_sha256.clone(),
            components: components
                .map(|cs| cs.iter().map(|x| ComponentView::new(state, x)).collect()),
            profile: None,
            memory: None,
        }
    }

    /// The page or answer of one certification: with components and profile.
    pub fn detail(state: &AppState, d: &CertificationDetail) -> CertificationView {
        let mut view = CertificationView::new(state, &d.certification, Some(&d.components));
        view.profile = d.profile.clone();
        view.memory = d
            .profile
            .as_ref()
            .and_then(|p| p.memory_bytes)
            .map(human_bytes);
        view
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CertificationList {
    pub items: Vec<CertificationView>,
    pub total: u64,
    pub page: u32,
    pub per_page: u32,
}

/// A size in bytes for people: the largest binary unit it is at least one of.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The columns of the CSV export, in order.
pub const CSV_COLUMNS: [&str; 17] = [
    "id",
    "vendor",
    "product",
    "firmware",
    "cpu_family",
    "cpu_vendor",
    "cpu_model",
    "arch",
    "os_id",
    "os_version",
    "os_name",
    "kernel",
    "plan",
    "plan_version",
    "outcome",
    "published",
    "url",
];

impl CertificationView {
    pub fn csv_fields(&self) -> [&str; 17] {
        [
            &self.id,
            &self.vendor,
            &self.product,
            &self.firmware,
            &self.cpu_family,
            &self.cpu_vendor,
            &self.cpu_model,
            &self.arch,
            &self.os_id,
            &self.os_version,
            &self.os_name,
            &self.kernel,
            &self.plan,
            &self.plan_version,
            &self.outcome,
            &self.published,
            &self.url,
        ]
    }
}

/// One CSV record (RFC 4180): fields with a comma, quote or line break are
/// quoted, quotes doubled; a field starting with `=`, `+`, `-` or `@` gets
/// a leading `'` so that spreadsheets do not run it as a formula.
pub fn csv_record(fields: &[&str]) -> String {
    let mut line = fields
        .iter()
        .map(|f| {
            let f = if f.starts_with(['=', '+', '-', '@']) {
                format!("'{f}")
            } else {
                (*f).to_string()
            };
            if f.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

#[cfg(test)]
mod tests {
    use super::{csv_record, human_bytes};

    #[test]
    fn sizes_for_people() {
        assert_eq!(human_bytes(512), "512 bytes");
        assert_eq!(human_bytes(549_755_813_888), "512 GiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        assert_eq!(csv_record(&["a", "b c"]), "a,b c\r\n");
        assert_eq!(
            csv_record(&["x,y", "say \"hi\"", "l1\nl2"]),
            "\"x,y\",\"say \"\"hi\"\"\",\"l1\nl2\"\r\n"
        );
        assert_eq!(csv_record(&["=cmd()", "-1"]), "'=cmd(),'-1\r\n");
    }
}
