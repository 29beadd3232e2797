//! Counting an engine's audit trail: each owed Event present exactly once (one object per reason
//! with count 1), for the fault scenarios (controller SIGKILLs, apiserver restart).
use std::collections::BTreeMap;

use chaos_conductor::api::ChaosEngine;
use kube::ResourceExt;

use super::{EventInfo, TestEnv};

/// The Events every single-experiment run owes, once each.
pub const OWED: [&str; 5] = [
    "ChaosEngineInitialized",
    "ExperimentDependencyCheck",
    "ExperimentJobCreate",
    "ExperimentJobCleanUp",
    "ChaosEngineCompleted",
];

/// What the audit found.
#[derive(Debug, Default)]
pub struct Audit {
    /// reason -> (engines with exactly one, missing, duplicated: more objects or count > 1)
    pub tally: BTreeMap<&'static str, (usize, usize, usize)>,
    /// One line per problem.
    pub problems: Vec<String>,
}

impl Audit {
    pub fn missing(&self) -> usize {
        self.tally.values().map(|t| t.1).sum()
    }

    pub fn duplicated(&self) -> usize {
        self.tally.values().map(|t| t.2).sum()
    }
}

/// Counts the owed Events of `engines` (matched by engine uid).
pub async fn audit_events(env: &TestEnv, engines: &[ChaosEngine]) -> Audit {
    let mut audit = Audit::default();
    for e in engines {
        let name = e.name_any();
        let uid = e.uid().unwrap_or_default();
        let events: Vec<EventInfo> = env
            .engine_events(&name)
            .await
            .into_iter()
            .filter(|ev| ev.uid == uid)
            .collect();
        for reason in OWED {
            let of: Vec<&EventInfo> = events.iter().filter(|ev| ev.reason == reason).collect();
            let total: i32 = of.iter().map(|ev| ev.count.max(1)).sum();
            let t = audit.tally.entry(reason).or_default();
            match total {
                1 => t.0 += 1,
                0 => {
                    t.1 += 1;
                    audit.problems.push(format!("{name}: {reason} missing"));
                }
                n => {
                    t.2 += 1;
                    audit.problems.push(format!(
                        "{name}: {reason} recorded {n} times: {:?}",
                        of.iter().map(|ev| (&ev.name, ev.count)).collect::<Vec<_>>()
                    ));
                }
            }
        }
    }
    audit
}
