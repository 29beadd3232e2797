//! Engine limits on the real cluster: an engine can never outgrow etcd, and what is
//! decidable now is decided in one pass.
//! - 1000 experiments, none of which exists (sequential): Completed with all 1000 skipped, fast.
//! - `spec.execution.iterations` above the cap / more experiments than the cap: refused (Invalid)
//!   with the words of `chaos_conductor::api::limits`.
//! - parallel experiments over many short iterations: `status.runs` never holds more than
//!   `MAX_RUN_RECORDS` entries, watched over the whole run.
mod support;

use std::time::{Duration, Instant};

use chaos_conductor::api::limits::{
    MAX_EXPERIMENTS, MAX_ITERATIONS, MAX_RUN_RECORDS, too_many_experiments, too_many_iterations,
};
use chaos_conductor::api::{ChaosEngine, Execution};
use kube::api::{DeleteParams, ListParams};
use support::controller::InProcessController;
use support::*;

fn with_experiments(name: &str, n: usize) -> ChaosEngine {
    let mut b = EngineBuilder::new(name).service_account(SAMPLE_SA);
    for i in 0..n {
        b = b.experiment(&format!("missing-{i}"));
    }
    b.build()
}

#[tokio::test]
async fn a_thousand_missing_experiments_are_skipped_in_one_go() {
    let env = setup("limits-missing", &[]).await;
    let ctrl = InProcessController::start(env.client(), env.ns());
    let start = Instant::now();
    env.create(&with_experiments("thousand", MAX_EXPERIMENTS))
        .await;
    let api = env.engines();
    let bound = Duration::from_secs(60);
    let mut last: (usize, String);
    let done = loop {
        let e = api.get("thousand").await.expect("engine");
        let st = e.status.clone().unwrap_or_default();
        let skipped = st
            .experiments
            .iter()
            .filter(|x| x.phase == "Skipped" && x.verdict == "Fail")
            .count();
        last = (skipped, st.phase.to_string());
        if st.engine_status == "completed" || start.elapsed() > bound {
            break e;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let took = start.elapsed();
    println!(
        "MEASURED limits-missing: {} of {MAX_EXPERIMENTS} skipped, phase {:?}, after {took:.1?}, reconciles={} api_writes={}",
        last.0,
        last.1,
        ctrl.metrics.reconciles.get(),
        ctrl.metrics.api_writes.get()
    );
    let st = done.status.clone().unwrap_or_default();
    assert_eq!(
        st.engine_status, "completed",
        "not completed within {bound:?}"
    );
    assert_eq!(last.0, MAX_EXPERIMENTS, "not all skipped");
    env.cleanup().await;
    ctrl.stop().await;
}

#[tokio::test]
async fn engines_over_the_caps_are_refused_with_the_limit_in_words() {
    let env = setup("limits-caps", &["pod-delete"]).await;
    let ctrl = InProcessController::start(env.client(), env.ns());
    let iterations = MAX_ITERATIONS + 1;
    env.create(
        &EngineBuilder::new("iterations")
            .service_account(SAMPLE_SA)
            .experiment("pod-delete")
            .with(|e| {
                e.spec.execution = Some(Execution {
                    iterations: Some(iterations),
                    ..Default::default()
                })
            })
            .build(),
    )
    .await;
    env.create(&with_experiments("experiments", MAX_EXPERIMENTS + 1))
        .await;
    let cases = [
        ("iterations", too_many_iterations(iterations)),
        ("experiments", too_many_experiments(MAX_EXPERIMENTS + 1)),
    ];
    let mut failures = Vec::new();
    for (name, words) in &cases {
        let api = env.engines();
        let r = try_wait_for(
            &format!("{name}: Invalid"),
            Duration::from_secs(30),
            async || {
                let e = api.get(name).await?;
                let st = e.status.clone().unwrap_or_default();
                if st.phase == "Invalid" {
                    Ok(st)
                } else {
                    Err(anyhow::anyhow!(
                        "phase {:?} message {:?}",
                        st.phase,
                        st.message
                    ))
                }
            },
        )
        .await;
        // The Warning is delivered from the outbox after the status write (src/controller/apply/outbox.rs),
        // so it may follow the Invalid phase by a moment: wait for it, within a bound.
        let warning = env
            .try_wait_event(
                name,
                |events| {
                    events
                        .iter()
                        .find(|ev| ev.type_ == "Warning" && ev.message.contains(words.as_str()))
                        .cloned()
                },
                Duration::from_secs(30),
            )
            .await
            .ok();
        println!(
            "MEASURED limits-caps {name}: {:?} warning={:?}",
            r.as_ref().map(|s| (&s.phase, &s.message)),
            warning.as_ref().map(|w| &w.reason)
        );
        match r {
            Ok(st) if st.message.contains(words.as_str()) => {}
            Ok(st) => failures.push(format!("{name}: message {:?} lacks {words:?}", st.message)),
            Err(e) => failures.push(format!("{e:#}")),
        }
        if warning.is_none() {
            failures.push(format!("{name}: no Warning Event saying {words:?}"));
        }
    }
    // Nothing was launched for a refused engine.
    let jobs = env
        .jobs()
        .list(&ListParams::default().labels("chaosUID"))
        .await
        .expect("jobs")
        .items
        .len();
    if jobs != 0 {
        failures.push(format!("{jobs} Jobs launched for refused engines"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    env.cleanup().await;
    ctrl.stop().await;
}

#[tokio::test]
async fn status_runs_stay_bounded_over_many_parallel_iterations() {
    const EXPERIMENTS: [&str; 5] = [
        "pod-delete",
        "container-kill",
        "pod-cpu-hog",
        "disk-fill",
        "node-drain",
    ];
    // Enough iterations that the records would pass MAX_RUN_RECORDS well before the end.
    let iterations = (MAX_RUN_RECORDS / EXPERIMENTS.len()) as u32 + 6;
    let env = setup("limits-runs", &EXPERIMENTS).await;
    let _fake = FakeExperiment::start(
        env.client(),
        env.ns(),
        Behaviour::all(ExperimentBehaviour::pass().run_time(Duration::from_millis(100))),
    );
    let ctrl = InProcessController::start(env.client(), env.ns());
    let mut b = EngineBuilder::new("runs")
        .service_account(SAMPLE_SA)
        .job_cleanup_policy(Some("delete"));
    for x in EXPERIMENTS {
        b = b.experiment(x);
    }
    env.create(
        &b.with(|e| {
            e.spec.execution = Some(Execution {
                mode: Some("parallel".into()),
                iterations: Some(iterations),
                ..Default::default()
            })
        })
        .build(),
    )
    .await;
    // Watched to the point where an unbounded list would certainly hold more than the cap:
    // past iteration cap/experiments + 2 (or the end of the run).
    let past = (MAX_RUN_RECORDS / EXPERIMENTS.len()) as u32 + 2;
    let api = env.engines();
    let start = Instant::now();
    let bound = Duration::from_secs(170);
    let (mut max_runs, mut max_bytes, mut iteration, mut engine_status) =
        (0usize, 0usize, 0u32, String::new());
    while start.elapsed() < bound {
        let e = api.get("runs").await.expect("engine");
        let st = e.status.clone().unwrap_or_default();
        max_runs = max_runs.max(st.runs.len());
        max_bytes = max_bytes.max(serde_json::to_vec(&st).map(|v| v.len()).unwrap_or(0));
        iteration = st.iteration.unwrap_or(0);
        engine_status = st.engine_status.clone();
        if max_runs > MAX_RUN_RECORDS || iteration > past || st.engine_status == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!(
        "MEASURED limits-runs: iterations={iterations} experiments={} reached_iteration={iteration} engine_status={engine_status:?} max_status_runs={max_runs} (cap {MAX_RUN_RECORDS}) max_status_bytes={max_bytes} after {:.1?}",
        EXPERIMENTS.len(),
        start.elapsed()
    );
    assert!(
        max_runs <= MAX_RUN_RECORDS,
        "status.runs held {max_runs} records (cap {MAX_RUN_RECORDS})"
    );
    assert!(
        iteration > past || engine_status == "completed",
        "the run did not get far enough ({iteration} of {iterations} iterations in {bound:?}) to exercise the cap"
    );
    let _ = api.delete("runs", &DeleteParams::default()).await;
    env.cleanup().await;
    ctrl.stop().await;
}
