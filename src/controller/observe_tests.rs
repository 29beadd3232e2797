//! Unit tests of the read step ([`super::observe::observe`]) against a mocked API (tower-test):
//! which reads it adds to what the caches hold.
use std::time::Duration;

use crate::controller::cache::cache as store;
use http::Method;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::runtime::watcher::Event;
use serde_json::to_value;
use tower_test::mock;

use super::apply_tests::{Mock, context_with, next, respond};
use super::context::{Caches, Context};
use super::observe::observe;
use crate::api::{ChaosEngine, ChaosResult};
use crate::engine::fixtures::*;
use crate::engine::plan;

const RESULT: &str =
    "/apis/litmuschaos.io/v1alpha1/namespaces/litmus/chaosresults/nginx-chaos-pod-delete";

/// An engine whose Job ran and whose pod ended at `now()`, as the caches hold it: Job and pod
/// there, the ChaosResult missing (its watch has not caught up).
fn ended_run() -> (ChaosEngine, String, std::sync::Arc<Context>, Mock) {
    let e = engine();
    let d = plan(&e, &observed_all_present(&["pod-delete"]), now(), &cfg());
    let job: Job = created_job(&d);
    let job_name = job.metadata.name.clone().unwrap_or_default();
    let e = persisted(e, &d);
    let (jobs, mut jobs_w) = store::<Job>();
    jobs_w.apply(&Event::Apply(job));
    let (pods, mut pods_w) = store::<Pod>();
    pods_w.apply(&Event::Apply(pod(
        &job_name,
        "Succeeded",
        Some(terminated(0, "Completed")),
    )));
    let caches = Caches {
        jobs,
        pods,
        results: store::<ChaosResult>().0,
        synced: tokio::sync::watch::channel(0).1,
    };
    let (service, handle) = mock::pair();
    let ctx = context_with(Client::new(service, "litmus"), caches);
    (e, job_name, ctx, handle)
}

#[tokio::test]
async fn an_overdue_verdict_is_read_from_the_api_before_it_is_called_missing() {
    let (e, job, ctx, mut handle) = ended_run();
    let server = tokio::spawn(async move {
        let (method, path, _, send) = next(&mut handle).await;
        assert_eq!((method, path.as_str()), (Method::GET, RESULT));
        respond(
            send,
            200,
            to_value(result(&job, "Pass", "Completed")).unwrap(),
        );
    });
    let observed = observe(&ctx, &e, later(61)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(2), server)
        .await
        .expect("the result was read from the API")
        .unwrap();
    let d = plan(&e, &observed, later(61), &cfg());
    assert_eq!(
        d.status.experiments[0].verdict, "Pass",
        "the live result's verdict, not ExperimentVerdictMissing"
    );
    assert!(!d.events().any(|x| x.reason == "ExperimentVerdictMissing"));
}

#[tokio::test]
async fn within_the_grace_nothing_extra_is_read() {
    let (e, _, ctx, _handle) = ended_run();
    // The mock answers nothing: any request would hang until the timeout.
    let observed = tokio::time::timeout(Duration::from_secs(2), observe(&ctx, &e, later(30)))
        .await
        .expect("no request within the grace")
        .unwrap();
    assert!(observed.results.is_empty());
}

#[tokio::test]
async fn an_abort_does_not_read_the_jobs_it_deleted() {
    let e = engine();
    let d = plan(&e, &observed_all_present(&["pod-delete"]), now(), &cfg());
    let job_name = created_job(&d).metadata.name.unwrap_or_default();
    let mut e = persisted(e, &d);
    e.metadata
        .annotations
        .get_or_insert_default()
        .insert(crate::api::ABORT_ANNOTATION.into(), "true".into());
    // The Job is gone from the cache (swept), its pod is still terminating.
    let (pods, mut pods_w) = store::<Pod>();
    pods_w.apply(&Event::Apply(pod(&job_name, "Running", None)));
    let caches = Caches {
        jobs: store::<Job>().0,
        pods,
        results: store::<ChaosResult>().0,
        synced: tokio::sync::watch::channel(0).1,
    };
    let (service, _handle): (_, Mock) = mock::pair();
    let ctx = context_with(Client::new(service, "litmus"), caches);
    // The mock answers nothing: a GET of the Job would hang until the timeout.
    let observed = tokio::time::timeout(Duration::from_secs(2), observe(&ctx, &e, later(1)))
        .await
        .expect("no Job is read during an abort")
        .unwrap();
    assert!(observed.jobs.is_empty());
    assert_eq!(observed.pods.len(), 1);
}
