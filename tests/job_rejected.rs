//! An experiment Job that the apiserver refuses (CPU requests above limits, an
//! experiment name too long for the Job's `job-name` label, an empty image) is a terminal,
//! explained outcome for that experiment: Litmus strings in the status (`Skipped` / `Fail`), a
//! Warning Event with the reason in words, the engine goes on with its next experiment and
//! completes; no endless retries.
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chaos_conductor::api::ChaosEngine;
use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::ListParams;
use support::controller::InProcessController;
use support::*;

/// 60 characters: the Job name `<name>-<6>` is 67, over the 63 of the job-name label.
const LONG: &str = "pod-delete-for-the-nightly-checks-of-the-payments-cluster-xy";
const NEXT: &str = "container-kill";
const WAIT: Duration = Duration::from_secs(90);

/// (engine, rejected experiment, a piece of the reason the Warning must carry).
fn cases() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![
        // Apiserver: "must be less than or equal to cpu limit of 1".
        ("cpu-over-limit", "pod-delete", "cpu limit"),
        // Apiserver: "must be no more than 63 characters" (a controller-side check names 63 too).
        ("long-name", LONG, "63"),
        // Apiserver: "containers[0].image: Required value" (or the controller's own words).
        ("empty-image", "no-image", "image"),
    ]
}

fn reconcile_errors(ctrl: &InProcessController) -> f64 {
    ctrl.metrics
        .render()
        .lines()
        .filter(|l| l.starts_with("chaos_conductor_reconcile_errors_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn done(e: &ChaosEngine) -> bool {
    e.status
        .as_ref()
        .is_some_and(|s| matches!(s.engine_status.as_str(), "completed" | "stopped"))
}

#[tokio::test]
async fn rejected_jobs_end_their_experiment_and_the_engine_goes_on() {
    let env = setup("job-rejected", &["pod-delete", NEXT, LONG]).await;
    let mut no_image = sample_experiment("no-image");
    no_image.spec.definition.image = String::new();
    env.create(&no_image).await;
    let _fake = FakeExperiment::start(env.client(), env.ns(), Behaviour::pass());
    let ctrl = InProcessController::start(env.client(), env.ns());

    for (name, rejected, _) in cases() {
        let mut b = EngineBuilder::new(name)
            .service_account(SAMPLE_SA)
            .experiment(rejected)
            .experiment(NEXT);
        if name == "cpu-over-limit" {
            b.components_mut(rejected).resources = Some(ResourceRequirements {
                requests: Some(BTreeMap::from([("cpu".to_string(), Quantity("2".into()))])),
                limits: Some(BTreeMap::from([("cpu".to_string(), Quantity("1".into()))])),
                ..Default::default()
            });
        }
        env.create(&b.build()).await;
    }

    let started = Instant::now();
    let api = env.engines();
    let mut engines: Vec<ChaosEngine>;
    loop {
        engines = api.list(&ListParams::default()).await.expect("list").items;
        if engines.iter().all(done) || started.elapsed() > WAIT {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let errors_at_end = reconcile_errors(&ctrl);
    // A retry loop keeps counting; a decided outcome does not.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let errors_later = reconcile_errors(&ctrl);
    let jobs_created = ctrl.metrics.jobs_created.get();

    let mut report = Vec::new();
    let mut failures = Vec::new();
    for (name, rejected, reason_piece) in cases() {
        let e = engines
            .iter()
            .find(|e| e.metadata.name.as_deref() == Some(name))
            .expect("engine listed");
        let st = e.status.clone().unwrap_or_default();
        let entry = |x: &str| st.experiments.iter().find(|s| s.name == x).cloned();
        let bad = entry(rejected).unwrap_or_default();
        let next = entry(NEXT).unwrap_or_default();
        let events = env.engine_events(name).await;
        let warning = events
            .iter()
            .find(|ev| ev.type_ == "Warning" && ev.message.contains(reason_piece));
        report.push(format!(
            "{name}: engine={} rejected=({}, {}, {:?}) next=({}, {}) warning={:?}",
            st.engine_status,
            bad.status,
            bad.verdict,
            bad.message,
            next.status,
            next.verdict,
            warning.map(|w| (&w.reason, &w.message))
        ));
        if st.engine_status != "completed" {
            failures.push(format!("{name}: engine not completed: {st:?}"));
        }
        if (bad.status.as_str(), bad.verdict.as_str()) != ("Skipped", "Fail") {
            failures.push(format!(
                "{name}: rejected experiment {rejected}: status/verdict {:?}/{:?}, want Skipped/Fail",
                bad.status, bad.verdict
            ));
        }
        if (next.status.as_str(), next.verdict.as_str()) != ("Completed", "Pass") {
            failures.push(format!(
                "{name}: next experiment: {:?}/{:?}, want Completed/Pass",
                next.status, next.verdict
            ));
        }
        if warning.is_none() {
            failures.push(format!(
                "{name}: no Warning Event mentioning {reason_piece:?}; events: {:?}",
                events
                    .iter()
                    .map(|e| (&e.type_, &e.reason, &e.message))
                    .collect::<Vec<_>>()
            ));
        }
    }
    println!(
        "MEASURED job-rejected: reconcile_errors_at_end={errors_at_end} reconcile_errors_10s_later={errors_later} jobs_created={jobs_created} after {:.1?}\n  {}",
        started.elapsed(),
        report.join("\n  ")
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(
        errors_later, errors_at_end,
        "reconcile errors still growing after the engines ended: retried forever"
    );
    // Each refusal may be met by a retry or two before it is classified, not by a loop.
    assert!(
        errors_at_end <= 6.0,
        "{errors_at_end} reconcile errors for 3 refused Jobs"
    );
    env.cleanup().await;
    ctrl.stop().await;
}
