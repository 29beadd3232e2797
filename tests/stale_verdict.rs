//! A verdict counts only from a ChaosResult written for this run. A result
//! `<engine>-<experiment>` that exists before the run with verdict Pass (labels: `chaosUID` only,
//! or a `job-name` of another Job) must not be taken as the verdict when the experiment pod ends
//! without writing one: the experiment ends `Error` with a Warning `ExperimentVerdictMissing`.
//! A control engine whose experiment does write its result gets that verdict over a stale one.
mod support;

use std::time::Duration;

use chaos_conductor::api::{ChaosEngine, ChaosResult};
use chaos_conductor::engine::PlanConfig;
use kube::ResourceExt;
use serde_json::json;
use support::controller::InProcessController;
use support::*;

const WAIT: Duration = Duration::from_secs(90);

fn stale_result(
    engine: &str,
    experiment: &str,
    labels: serde_json::Value,
    verdict: &str,
) -> ChaosResult {
    serde_json::from_value(json!({
        "apiVersion": "litmuschaos.io/v1alpha1",
        "kind": "ChaosResult",
        "metadata": {"name": format!("{engine}-{experiment}"), "labels": labels},
        "spec": {"engine": engine, "experiment": experiment},
        "status": {
            "experimentStatus": {
                "phase": "Completed",
                "verdict": verdict,
                "probeSuccessPercentage": "100"
            },
            "history": {"passedRuns": 1, "failedRuns": 0, "stoppedRuns": 0}
        }
    }))
    .expect("ChaosResult")
}

#[tokio::test]
async fn a_result_not_written_by_this_run_is_no_verdict() {
    let env = setup("stale-verdict", &["pod-delete", "container-kill"]).await;
    // (engine, experiment, labels beyond chaosUID, stale verdict, verdict the run must end with)
    let cases = [
        ("stale-pass", "pod-delete", json!({}), "Pass", "Error"),
        (
            "foreign-job",
            "pod-delete",
            json!({"job-name": "pod-delete-zzzzzz"}),
            "Pass",
            "Error",
        ),
        // Control: the experiment writes its own Pass over a stale Fail.
        ("control", "container-kill", json!({}), "Fail", "Pass"),
    ];
    for (name, experiment, extra, stale, _) in &cases {
        let e: ChaosEngine = env
            .create(
                &EngineBuilder::new(name)
                    .service_account(SAMPLE_SA)
                    .experiment(experiment)
                    .build(),
            )
            .await;
        let mut labels = extra.clone();
        labels["chaosUID"] = json!(e.uid().expect("uid"));
        env.create(&stale_result(name, experiment, labels, stale))
            .await;
    }
    let _fake = FakeExperiment::start(
        env.client(),
        env.ns(),
        Behaviour::pass().with(
            "pod-delete",
            ExperimentBehaviour::pass().finish(FakeFinish::ExitWithoutResult),
        ),
    );
    let plan = PlanConfig {
        verdict_grace: Duration::from_secs(3),
        ..PlanConfig::default()
    };
    let ctrl = InProcessController::start_with(env.client(), env.ns(), plan);

    let mut report = Vec::new();
    let mut failures = Vec::new();
    for (name, experiment, _, stale, want) in &cases {
        let e = wait_engine_within(&env, name, "engine completed", WAIT, |e| {
            e.status
                .as_ref()
                .is_some_and(|s| s.engine_status == "completed")
        })
        .await;
        let st = e.status.clone().unwrap_or_default();
        let entry = st
            .experiments
            .iter()
            .find(|x| x.name == *experiment)
            .cloned()
            .unwrap_or_default();
        // The Event may follow the status write by a moment.
        let missing = env
            .try_wait_event(
                name,
                first_with_reason("ExperimentVerdictMissing"),
                if *want == "Error" {
                    Duration::from_secs(10)
                } else {
                    Duration::from_secs(1)
                },
            )
            .await
            .ok();
        report.push(format!(
            "{name}: stale={stale} experiment_verdict={} engine_verdict={} message={:?} verdict_missing_event={:?}",
            entry.verdict,
            st.verdict,
            entry.message,
            missing.as_ref().map(|m| (&m.type_, &m.message))
        ));
        if entry.verdict != *want {
            failures.push(format!(
                "{name}: experiment verdict {:?}, want {want:?} (stale result said {stale})",
                entry.verdict
            ));
        }
        if *want == "Error" {
            if st.verdict == "Pass" {
                failures.push(format!("{name}: engine verdict Pass from a stale result"));
            }
            match &missing {
                Some(ev) if ev.type_ == "Warning" => {}
                other => failures.push(format!(
                    "{name}: want a Warning ExperimentVerdictMissing, got {other:?}"
                )),
            }
        } else if missing.is_some() {
            failures.push(format!(
                "{name}: ExperimentVerdictMissing on a run that wrote its verdict"
            ));
        }
    }
    println!("MEASURED stale-verdict:\n  {}", report.join("\n  "));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    env.cleanup().await;
    ctrl.stop().await;
}
