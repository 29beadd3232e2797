//! The shell's status rules below the cluster tier (no cluster): when a status counts as changed
//! (`apply::status_changed`), the merge patch that writes it (`apply::status_patch`), and the
//! observedGeneration rule that tells a re-run (`engineState: active` after the end, a spec edit)
//! from a `stop` the controller still owes (docs/litmus-compatibility.md#state-machine).
use chaos_conductor::api::{ChaosEngine, ChaosEngineStatus, FINALIZER};
use chaos_conductor::controller::apply::{status_changed, status_patch};
use chaos_conductor::engine::{Effect, Observed, PlanConfig, plan};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

fn status(v: Value) -> ChaosEngineStatus {
    serde_json::from_value(v).expect("a ChaosEngineStatus")
}

fn finished() -> ChaosEngineStatus {
    status(json!({
        "engineStatus": "completed",
        "phase": "Completed",
        "verdict": "Pass",
        "runId": 3,
        "message": "all experiments ended",
        "observedGeneration": 3,
        "conditions": [{"type": "Finished", "status": "True", "reason": "Completed",
                        "message": "", "lastTransitionTime": "2026-11-26T12:00:00Z",
                        "observedGeneration": 3}],
        "experiments": [{"name": "pod-delete", "runner": "nginx-chaos-runner",
                         "experimentPod": "pod-delete-abcdef-xyz12", "status": "Completed",
                         "verdict": "Pass", "phase": "Done", "jobName": "pod-delete-abcdef",
                         "runId": 3}]
    }))
}

/// An edit of a status, for a table case.
type Change = Box<dyn Fn(&mut ChaosEngineStatus)>;

#[test]
fn only_observed_generations_do_not_count_as_a_change() {
    let old = finished();
    let cases: Vec<(&str, Change, bool)> = vec![
        ("identical", Box::new(|_| {}), false),
        (
            "observedGeneration bumped (our own write on Litmus's CRD)",
            Box::new(|s| s.observed_generation = Some(9)),
            false,
        ),
        (
            "a condition's observedGeneration bumped",
            Box::new(|s| s.conditions[0].observed_generation = Some(9)),
            false,
        ),
        (
            "observedGeneration dropped",
            Box::new(|s| {
                s.observed_generation = None;
                s.conditions[0].observed_generation = None;
            }),
            false,
        ),
        (
            "verdict",
            Box::new(|s| s.experiments[0].verdict = "Fail".into()),
            true,
        ),
        ("message", Box::new(|s| s.message.clear()), true),
        (
            "condition status",
            Box::new(|s| s.conditions[0].status = "False".into()),
            true,
        ),
        (
            "a new condition",
            Box::new(|s| {
                let c: Condition = s.conditions[0].clone();
                s.conditions.push(Condition {
                    type_: "Ready".into(),
                    ..c
                });
            }),
            true,
        ),
        (
            "one experiment less",
            Box::new(|s| s.experiments.clear()),
            true,
        ),
    ];
    for (what, change, want) in cases {
        let mut new = old.clone();
        change(&mut new);
        assert_eq!(status_changed(&old, &new), want, "{what}");
        assert_eq!(status_changed(&new, &old), want, "{what} (reversed)");
    }
}

#[test]
fn status_patch_is_the_new_status_plus_nulls_for_dropped_keys() {
    let old = finished();
    let mut new = old.clone();
    new.message.clear();
    new.run_id = None;
    new.experiments[0].verdict = "Fail".into();
    let patch = status_patch(&old, &new).expect("a patch");
    let obj = patch.as_object().expect("an object");
    // Dropped top-level keys are removed explicitly (a merge patch keeps what it does not name).
    assert_eq!(obj.get("message"), Some(&Value::Null));
    assert_eq!(obj.get("runId"), Some(&Value::Null));
    // Everything else is the new status, lists whole (a merge patch replaces lists).
    assert_eq!(patch["experiments"][0]["verdict"], "Fail");
    assert_eq!(patch["engineStatus"], "completed");
    let mut without_nulls = patch.clone();
    if let Some(o) = without_nulls.as_object_mut() {
        o.retain(|_, v| !v.is_null());
    }
    assert_eq!(without_nulls, serde_json::to_value(&new).unwrap());
    // Applying the patch to the old status gives the new one.
    let mut applied = serde_json::to_value(&old).unwrap();
    merge(&mut applied, &patch);
    assert_eq!(status(applied), new);
    // No change, no nulls: the patch is just the status.
    assert_eq!(
        status_patch(&old, &old).unwrap(),
        serde_json::to_value(&old).unwrap()
    );
}

/// RFC 7386 JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

fn ended_engine(
    engine_status: &str,
    generation: i64,
    observed: Option<i64>,
    state: &str,
) -> ChaosEngine {
    let mut st = finished();
    st.engine_status = engine_status.into();
    st.observed_generation = observed;
    let mut e: ChaosEngine = serde_json::from_value(json!({
        "apiVersion": "litmuschaos.io/v1alpha1",
        "kind": "ChaosEngine",
        "metadata": {"name": "nginx-chaos", "namespace": "litmus",
                     "uid": "6e76bd74-0000-4000-8000-000000000001", "generation": generation,
                     "finalizers": [FINALIZER]},
        "spec": {"engineState": state, "chaosServiceAccount": "pod-delete-sa",
                 "experiments": [{"name": "pod-delete"}]}
    }))
    .expect("an engine");
    e.status = Some(st);
    e
}

#[test]
fn observed_generation_tells_a_rerun_from_an_owed_stop() {
    let now: Timestamp = "2026-11-26T12:10:00Z".parse().unwrap();
    // (engineStatus, metadata.generation, status.observedGeneration, re-run expected)
    let cases = [
        // The status was written at generation 3 and nothing changed since: the controller died
        // before writing `stop` (or this pass is the status write's own event). Write `stop` only.
        ("completed", 3, Some(3), false),
        ("stopped", 3, Some(3), false),
        // A user's `engineState: active` (or any spec edit) bumped the generation: a fresh run.
        ("completed", 4, Some(3), true),
        ("stopped", 5, Some(3), true),
        // No observedGeneration (a status someone else wrote, an older controller): a fresh run.
        ("completed", 3, None, true),
    ];
    for (engine_status, generation, observed, rerun) in cases {
        let what = format!("{engine_status}, generation {generation}, observed {observed:?}");
        let e = ended_engine(engine_status, generation, observed, "active");
        let d = plan(&e, &Observed::default(), now, &PlanConfig::default());
        let reasons: Vec<&str> = d.events().map(|ev| ev.reason.as_str()).collect();
        if rerun {
            assert_eq!(d.status.engine_status, "initialized", "{what}");
            assert!(
                reasons.contains(&"ChaosEngineInitialized"),
                "{what}: {reasons:?}"
            );
            assert_eq!(
                reasons.contains(&"RestartInProgress"),
                engine_status == "stopped",
                "{what}: Litmus announces a restart after a stop only: {reasons:?}"
            );
            assert!(
                !d.after_status
                    .contains(&Effect::StopEngine { clear_abort: false }),
                "{what}: a re-run is not stopped"
            );
        } else {
            assert_eq!(d.status.engine_status, engine_status, "{what}");
            assert_eq!(
                d.after_status,
                vec![Effect::StopEngine { clear_abort: false }],
                "{what}: only the owed stop"
            );
            assert!(d.before_status.is_empty(), "{what}: no cleanup, no launch");
            assert!(reasons.is_empty(), "{what}: no Events: {reasons:?}");
        }
    }
}
