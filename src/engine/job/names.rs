//! The names a run derives: the Job's (stable across retries), TARGETS, the ChaosResult instance
//! id, and the status-check timeouts.
use sha2::{Digest, Sha256};

use crate::api::{ChaosEngine, ExperimentList};

use super::{DEFAULT_STATUS_CHECK_DELAY, DEFAULT_STATUS_CHECK_TIMEOUT};

/// `<experiment>-<6 [a-z0-9]>`, the suffix derived from engine UID, run, index and iteration so a
/// retried launch computes the same name and finds its Job instead of making a second one.
pub fn job_name(
    experiment: &str,
    engine_uid: &str,
    run_id: i64,
    index: usize,
    iteration: u32,
) -> String {
    format!(
        "{experiment}-{}",
        suffix6(&format!("{engine_uid}/{run_id}/{index}/{iteration}"))
    )
}

/// Six characters from `[a-z0-9]`, a pure function of `seed`.
pub fn suffix6(seed: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    Sha256::digest(seed.as_bytes())
        .iter()
        .take(6)
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// The `TARGETS` string of docs/litmus-compatibility.md#targets (empty without target information).
pub fn targets(engine: &ChaosEngine) -> String {
    let spec = &engine.spec;
    if let Some(selectors) = &spec.selectors {
        if let Some(workloads) = selectors.workloads.as_ref().filter(|w| !w.is_empty()) {
            return workloads
                .iter()
                .map(|w| {
                    let what = w
                        .names
                        .as_deref()
                        .filter(|n| !n.is_empty())
                        .or(w.labels.as_deref());
                    format!("{}:{}:[{}]", w.kind, w.namespace, what.unwrap_or_default())
                })
                .collect::<Vec<_>>()
                .join(";");
        }
        if let Some(pods) = selectors.pods.as_ref().filter(|p| !p.is_empty()) {
            return pods
                .iter()
                .map(|p| format!("pod:{}:[{}]", p.namespace, p.names))
                .collect::<Vec<_>>()
                .join(";");
        }
    }
    let Some(app) = &spec.appinfo else {
        return String::new();
    };
    let non_empty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let (ns, label, kind) = (
        non_empty(&app.appns),
        non_empty(&app.applabel),
        non_empty(&app.appkind),
    );
    if ns.is_none() && label.is_none() && kind.is_none() {
        return String::new();
    }
    format!(
        "{}:{}:[{}]",
        kind.unwrap_or_else(|| "KIND".into()),
        ns.unwrap_or_else(|| engine.metadata.namespace.clone().unwrap_or_default()),
        label.unwrap_or_default()
    )
}

/// `INSTANCE_ID` as set by plain value in the engine's env for this experiment (changes the
/// ChaosResult name, as in litmus-go).
pub fn instance_id(entry: &ExperimentList) -> Option<String> {
    entry
        .spec
        .components
        .env
        .iter()
        .rev()
        .find(|e| e.name == "INSTANCE_ID")
        .and_then(|e| e.value.clone())
        .filter(|v| !v.is_empty())
}

/// `(STATUS_CHECK_DELAY, STATUS_CHECK_TIMEOUT)` in seconds: engine values when non-zero, else the defaults.
pub fn status_check_timeouts(entry: &ExperimentList) -> (i64, i64) {
    let t = entry
        .spec
        .components
        .status_check_timeouts
        .clone()
        .unwrap_or_default();
    (
        t.delay
            .filter(|d| *d != 0)
            .unwrap_or(DEFAULT_STATUS_CHECK_DELAY),
        t.timeout
            .filter(|d| *d != 0)
            .unwrap_or(DEFAULT_STATUS_CHECK_TIMEOUT),
    )
}
