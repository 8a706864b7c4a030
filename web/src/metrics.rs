//! `/metrics` in the Prometheus text format: requests by route and status,
//! submissions by state.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Request counters, by (route pattern, status).
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
}

impl Metrics {
    pub fn count(&self, route: &str, status: u16) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((route.to_string(), status)).or_insert(0) += 1;
        }
    }

    /// The exposition text, with `submissions` (state, count) as a gauge.
    pub fn render(&self, submissions: &[(String, u64)]) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP certlab_portal_requests_total HTTP requests answered, by route and status.\n",
        );
        out.push_str("# TYPE certlab_portal_requests_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for ((route, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "certlab_portal_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                    label(route)
                );
            }
        }
        out.push_str("# HELP certlab_portal_submissions Submissions by state.\n");
        out.push_str("# TYPE certlab_portal_submissions gauge\n");
        for state in crate::review::ALL_STATES {
            let n = submissions
                .iter()
                .find(|(s, _)| s == state.as_str())
                .map_or(0, |(_, n)| *n);
            let _ = writeln!(
                out,
                "certlab_portal_submissions{{state=\"{}\"}} {n}",
                state.as_str()
            );
        }
        out
    }
}

/// A label value escaped as the text format requires.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_every_state() {
        let m = Metrics::default();
        m.count("/healthz", 200);
        m.count("/healthz", 200);
        m.count("/a\"b", 404);
        let text = m.render(&[("approved".into(), 3)]);
        assert!(
            text.contains("certlab_portal_requests_total{route=\"/healthz\",status=\"200\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("route=\"/a\\\"b\",status=\"404\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("certlab_portal_submissions{state=\"approved\"} 3\n"));
        assert!(text.contains("certlab_portal_submissions{state=\"submitted\"} 0\n"));
    }
}
