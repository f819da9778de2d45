//! Inspector's findings on a function, in its status: counts by severity, the worst few,
//! one line for `kubectl get etl`, and the `maximumFindingSeverity` gate. Pure, but for
//! [`read`] (one ListFindings at the resync cadence).
use std::collections::BTreeMap;

use lakeops_crds::FindingSeverity;
use lakeops_crds::etlfunction::FindingsStatus;

use crate::aws::error::AwsResult;
use crate::aws::inspector::{Findings, InspectorApi};

/// How many findings status names.
const WORST: usize = 5;

/// Reads the function's active findings: one request.
pub async fn read(inspector: &dyn InspectorApi, function_arn: &str) -> AwsResult<FindingsStatus> {
    Ok(summarise(&inspector.function_findings(function_arn).await?))
}

/// Counts by severity, the worst findings first, and the summary line.
pub fn summarise(found: &Findings) -> FindingsStatus {
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    for f in &found.findings {
        *counts.entry(f.severity.clone()).or_default() += 1;
    }
    let mut ranked: Vec<_> = found.findings.iter().collect();
    // Worst first; UNTRIAGED and unknown severities last.
    ranked.sort_by_key(|f| std::cmp::Reverse(FindingSeverity::parse(&f.severity)));
    let worst = ranked
        .iter()
        .take(WORST)
        .map(|f| {
            let packages = if f.packages.is_empty() { String::new() } else { format!(" {}", f.packages.join(", ")) };
            format!("{} {}{packages}", f.severity, f.vulnerability)
        })
        .collect();
    let plus = if found.truncated { "+" } else { "" };
    let mut parts: Vec<String> = FindingSeverity::ALL
        .iter()
        .rev()
        .filter_map(|s| counts.get(s.as_str()).map(|n| format!("{n}{plus} {}", s.as_str())))
        .collect();
    if let Some(n) = counts.get("UNTRIAGED") {
        parts.push(format!("{n} UNTRIAGED"));
    }
    let summary = if parts.is_empty() { "none".into() } else { parts.join(", ") };
    FindingsStatus { summary, counts, worst }
}

/// The message of `VulnerableCode` when a finding is at or above `maximum`.
pub fn violation(status: &FindingsStatus, maximum: FindingSeverity) -> Option<String> {
    let over: u32 =
        FindingSeverity::ALL.iter().filter(|s| **s >= maximum).filter_map(|s| status.counts.get(s.as_str())).sum();
    (over > 0).then(|| {
        format!(
            "Inspector reports {over} active finding(s) at or above spec.maximumFindingSeverity {} ({}); deploy fixed code, or accept the risk in the SecurityBaseline's spec.inspector.suppressions",
            maximum.as_str(),
            status.worst.first().map_or("", String::as_str)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::inspector::Finding;

    fn finding(severity: &str, id: &str, packages: &[&str]) -> Finding {
        Finding {
            severity: severity.into(),
            vulnerability: id.into(),
            packages: packages.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn counts_and_the_worst_first_and_the_gate() {
        let found = Findings {
            findings: vec![
                finding("MEDIUM", "CVE-2", &["requests@2.0"]),
                finding("CRITICAL", "CVE-1", &["urllib3@1.26.0"]),
                finding("MEDIUM", "CVE-3", &[]),
            ],
            truncated: false,
        };
        let s = summarise(&found);
        assert_eq!(s.summary, "1 CRITICAL, 2 MEDIUM");
        assert_eq!(s.worst[0], "CRITICAL CVE-1 urllib3@1.26.0");
        assert!(violation(&s, FindingSeverity::High).is_some_and(|m| m.contains("CVE-1")));
        assert!(
            violation(
                &summarise(&Findings { findings: vec![finding("LOW", "CVE-9", &[])], truncated: false }),
                FindingSeverity::Medium
            )
            .is_none()
        );
        assert_eq!(summarise(&Findings::default()).summary, "none");
    }
}
