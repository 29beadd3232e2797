//! Which experiments may start now: sequential (Litmus), parallel with a limit, or a dependency
//! graph (`spec.execution`, our extension).
use std::collections::BTreeMap;

use super::phase::ExperimentPhase;
use crate::api::{ChaosEngine, ChaosEngineStatus, verdict};

/// A decision about one pending experiment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// Validate and launch `status.experiments[i]`.
    Launch(usize),
    /// End `status.experiments[i]` without launching it, for this reason.
    Skip(usize, String),
}

/// Execution mode of `spec.execution.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Sequential,
    Parallel,
    Graph,
}

fn mode(engine: &ChaosEngine) -> Mode {
    match engine
        .spec
        .execution
        .as_ref()
        .and_then(|e| e.mode.as_deref())
    {
        Some("parallel") => Mode::Parallel,
        Some("graph") => Mode::Graph,
        _ => Mode::Sequential,
    }
}

/// A dependency cycle, as the list of names along it, if there is one.
pub fn find_cycle(deps: &BTreeMap<String, Vec<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit<'a>(
        n: &'a str,
        deps: &'a BTreeMap<String, Vec<String>>,
        marks: &mut BTreeMap<&'a str, Mark>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match marks.get(n) {
            Some(Mark::Done) => return None,
            Some(Mark::Visiting) => {
                let start = path.iter().position(|p| *p == n).unwrap_or(0);
                let mut cycle: Vec<String> = path[start..].iter().map(|s| s.to_string()).collect();
                cycle.push(n.to_string());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(n, Mark::Visiting);
        path.push(n);
        for d in deps.get(n).into_iter().flatten() {
            if let Some(c) = visit(d, deps, marks, path) {
                return Some(c);
            }
        }
        path.pop();
        marks.insert(n, Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for n in deps.keys() {
        if let Some(c) = visit(n, deps, &mut marks, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

/// The order in which this iteration's experiments are considered: list order, or a seeded
/// shuffle with `randomOrder`.
pub fn order(engine: &ChaosEngine, status: &ChaosEngineStatus) -> Vec<usize> {
    let n = status.experiments.len();
    let exec = engine.spec.execution.clone().unwrap_or_default();
    match (exec.random_order, status.seed) {
        (Some(true), Some(seed)) => {
            super::random::permutation(n, seed, status.iteration.unwrap_or(1))
        }
        _ => (0..n).collect(),
    }
}

/// The pending experiments that may start now, in [`order`].
pub fn startable(engine: &ChaosEngine, status: &ChaosEngineStatus) -> Vec<Start> {
    let phases: Vec<ExperimentPhase> = status.experiments.iter().map(|e| e.phase.clone()).collect();
    let exec = engine.spec.execution.clone().unwrap_or_default();
    let order = order(engine, status);
    let pending: Vec<usize> = order
        .iter()
        .copied()
        .filter(|i| phases[*i].is_pending())
        .collect();
    if exec.stop_on_failure == Some(true)
        && let Some(failed) = status
            .experiments
            .iter()
            .zip(&phases)
            .find(|(e, p)| p.is_terminal() && e.verdict != verdict::PASS)
    {
        let why = format!(
            "cancelled: experiment {} did not pass and stopOnFailure is set",
            failed.0.name
        );
        return pending
            .into_iter()
            .map(|i| Start::Skip(i, why.clone()))
            .collect();
    }
    let limit = exec
        .max_parallel
        .filter(|m| *m > 0)
        .map_or(usize::MAX, |m| m as usize);
    let active = phases.iter().filter(|p| p.is_active()).count();
    match mode(engine) {
        Mode::Sequential => {
            // The first experiment (in order) that has not ended is the only one that may run.
            match order.iter().copied().find(|i| !phases[*i].is_terminal()) {
                Some(i) if phases[i].is_pending() => vec![Start::Launch(i)],
                _ => Vec::new(),
            }
        }
        Mode::Parallel => pending
            .into_iter()
            .take(limit.saturating_sub(active))
            .map(Start::Launch)
            .collect(),
        Mode::Graph => {
            let mut budget = limit.saturating_sub(active);
            let by_name: BTreeMap<&str, usize> = status
                .experiments
                .iter()
                .enumerate()
                .map(|(i, e)| (e.name.as_str(), i))
                .collect();
            let mut out = Vec::new();
            for i in pending {
                let deps = exec
                    .depends_on
                    .get(&status.experiments[i].name)
                    .cloned()
                    .unwrap_or_default();
                let dep_idx: Vec<usize> = deps
                    .iter()
                    .filter_map(|d| by_name.get(d.as_str()).copied())
                    .collect();
                if !dep_idx.iter().all(|d| phases[*d].is_terminal()) {
                    continue;
                }
                if exec.require_pass == Some(true)
                    && let Some(d) = dep_idx
                        .iter()
                        .find(|d| status.experiments[**d].verdict != verdict::PASS)
                {
                    out.push(Start::Skip(
                        i,
                        format!(
                            "skipped: dependency {} did not pass",
                            status.experiments[*d].name
                        ),
                    ));
                    continue;
                }
                if budget > 0 {
                    budget -= 1;
                    out.push(Start::Launch(i));
                }
            }
            out
        }
    }
}
