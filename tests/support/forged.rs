//! A forged status, shared by the subresource (`tests/forged_status.rs`) and the Litmus-CRD
//! (`tests/litmus_crds.rs`) runs: an engine author forges a status that names someone else's Job.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::{Timestamp, ToSpan};
use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use super::controller::InProcessController;
use super::*;

/// The unrelated Job the forged status names.
pub const VICTIM: &str = "nightly-backup";

/// How the engine author writes the status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusWrite {
    /// Our CRDs: through the `/status` subresource.
    Subresource,
    /// Litmus's CRDs (no status subresource): a merge patch of the object itself.
    MainResource,
}

fn victim_job(engine_uid: &str) -> Job {
    Job {
        metadata: ObjectMeta {
            name: Some(VICTIM.into()),
            // Hostile: it even carries the engine's chaosUID label; only an ownerReference to
            // the engine proves that the controller made it.
            labels: Some(BTreeMap::from([
                ("app".to_string(), VICTIM.to_string()),
                ("chaosUID".to_string(), engine_uid.to_string()),
            ])),
            ..Default::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(BTreeMap::from([("app".to_string(), VICTIM.to_string())])),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".into()),
                    containers: vec![Container {
                        name: "backup".into(),
                        image: Some("busybox:1.36".into()),
                        command: Some(vec!["sleep".into(), "3600".into()]),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Creates the engine with the controller down, forges its status (experiment Running with
/// `jobName: nightly-backup`, launched an hour ago) and an unrelated Job of that name, then starts
/// the controller: after 10 s and at the end, the Job is still there, not adopted, not being
/// deleted; the engine ends in a terminal state that says what happened.
pub async fn forged_status_names_someone_elses_job(env: &TestEnv, write: StatusWrite) {
    let engine = env
        .create(
            &EngineBuilder::new("forged")
                .service_account(SAMPLE_SA)
                .experiment("pod-delete")
                .job_cleanup_policy(Some("delete"))
                .build(),
        )
        .await;
    let uid = engine.uid().expect("engine uid");
    let generation = engine.metadata.generation.unwrap_or(1);
    env.create(&victim_job(&uid)).await;

    let an_hour_ago = (Timestamp::now() - 1.hour()).to_string();
    let status = json!({
        "engineStatus": "initialized",
        "phase": "Running",
        "runId": generation,
        "startedAt": an_hour_ago,
        "experiments": [{
            "name": "pod-delete",
            "runner": "forged-runner",
            "experimentPod": format!("{VICTIM}-abcde"),
            "status": "Running",
            "verdict": "Awaited",
            "phase": "Running",
            "jobName": VICTIM,
            "runId": generation,
            "launchedAt": an_hour_ago,
            "runningAt": an_hour_ago,
        }]
    });
    let patch = Patch::Merge(json!({ "status": status }));
    let pp = PatchParams::default();
    match write {
        StatusWrite::Subresource => env.engines().patch_status("forged", &pp, &patch).await,
        StatusWrite::MainResource => env.engines().patch("forged", &pp, &patch).await,
    }
    .expect("the engine author may write the status");

    let _fake = FakeExperiment::start(env.client(), env.ns(), Behaviour::pass());
    let ctrl = InProcessController::start(env.client(), env.ns());
    let started = Instant::now();

    let check_victim = async |when: &str| {
        let job = env
            .jobs()
            .get_opt(VICTIM)
            .await
            .expect("reading the Job")
            .unwrap_or_else(|| panic!("{when}: the controller deleted the unrelated Job {VICTIM}"));
        assert!(
            job.metadata.deletion_timestamp.is_none(),
            "{when}: the unrelated Job is being deleted"
        );
        assert!(
            job.owner_references().is_empty(),
            "{when}: the unrelated Job was adopted: {:?}",
            job.owner_references()
        );
    };
    tokio::time::sleep(Duration::from_secs(10)).await;
    check_victim("after 10 s").await;

    let api = env.engines();
    let end = env
        .wait_for(
            "the forged engine reaches a terminal state",
            Duration::from_secs(60),
            async || {
                let e = api.get("forged").await?;
                let st = e.status.clone().unwrap_or_default();
                if matches!(st.phase.as_str(), "Completed" | "Stopped" | "Invalid") {
                    Ok(e)
                } else {
                    Err(anyhow::anyhow!("status {}", serde_json::to_string(&st)?))
                }
            },
        )
        .await;
    check_victim("at the end").await;
    let st = end.status.clone().unwrap_or_default();
    let events = env.engine_events("forged").await;
    let warnings: Vec<_> = events.iter().filter(|e| e.type_ == "Warning").collect();
    println!(
        "MEASURED forged-status ({write:?}): victim_job_kept=true adopted=false phase={} verdict={} experiments={:?} warnings={:?} after {:.1?}",
        st.phase,
        st.verdict,
        st.experiments
            .iter()
            .map(|x| (
                x.status.as_str(),
                x.verdict.as_str(),
                x.job_name.as_str(),
                x.message.as_str()
            ))
            .collect::<Vec<_>>(),
        warnings
            .iter()
            .map(|w| (&w.reason, &w.message))
            .collect::<Vec<_>>(),
        started.elapsed()
    );
    // Explained: every experiment entry ended with a verdict, and anything but a clean Pass
    // comes with words (status message or a Warning Event).
    assert!(!st.experiments.is_empty(), "no experiment entries: {st:?}");
    for x in &st.experiments {
        assert!(
            matches!(x.verdict.as_str(), "Pass" | "Fail" | "Error" | "Stopped"),
            "experiment {} ended without a verdict: {x:?}",
            x.name
        );
        assert_ne!(
            x.job_name, VICTIM,
            "the entry still names the unrelated Job: {x:?}"
        );
        if x.verdict != "Pass" {
            assert!(
                !x.message.is_empty() || !st.message.is_empty() || !warnings.is_empty(),
                "verdict {} without an explanation: {st:?}",
                x.verdict
            );
        }
    }
    // The unrelated Job outlives the engine too.
    env.engines()
        .delete("forged", &Default::default())
        .await
        .expect("delete the engine");
    wait_for(
        "the forged engine to go",
        Duration::from_secs(60),
        async || match api.get_opt("forged").await? {
            None => Ok(()),
            Some(_) => Err(anyhow::anyhow!("still there")),
        },
    )
    .await;
    check_victim("after the engine was deleted").await;
    ctrl.stop().await;
}
