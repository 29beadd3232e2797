//! `spec.execution` on the real local control plane: parallel with a limit, dependency graphs,
//! iterations with intervals across a controller restart, and abort of a parallel run.
mod support;

use std::time::Duration;

use chaos_conductor::api::{ChaosEngine, Execution, ExperimentStatus};
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::json;
use support::controller::{ControllerProcess, InProcessController};
use support::*;

const SA: &str = SAMPLE_SA;
const WAIT: Duration = Duration::from_secs(90);

fn engine(name: &str, experiments: &[&str], execution: serde_json::Value) -> ChaosEngine {
    let mut b = EngineBuilder::new(name).service_account(SA);
    for e in experiments {
        b = b.experiment(e);
    }
    let exec: Execution = serde_json::from_value(execution).expect("execution block");
    b.with(|e| e.spec.execution = Some(exec)).build()
}

/// Waits for `engineStatus` to be one of `states`, counting meanwhile the most experiments running
/// at once (experiment pods not yet Succeeded/Failed: a finished pod's Job may still be catching up).
async fn run_to(env: &TestEnv, name: &str, states: &[&str]) -> (ChaosEngine, usize) {
    let (engines, pods) = (env.engines(), env.pods());
    let mut max_alive = 0;
    let e = env
        .wait_for(&format!("{name} to reach {states:?}"), WAIT, async || {
            let alive = pods
                .list(&ListParams::default().labels("chaosUID"))
                .await?
                .items
                .iter()
                .filter(|p| matches!(pod_phase(p).as_str(), "Pending" | "Running"))
                .count();
            max_alive = max_alive.max(alive);
            let e = engines.get(name).await?;
            let s = e
                .status
                .as_ref()
                .map(|s| s.engine_status.clone())
                .unwrap_or_default();
            if states.contains(&s.as_str()) {
                Ok(e)
            } else {
                Err(anyhow::anyhow!(
                    "engineStatus {s:?}, {alive} experiment pods running"
                ))
            }
        })
        .await;
    (e, max_alive)
}

/// An experiment's entry in the engine status.
fn entry<'a>(e: &'a ChaosEngine, exp: &str) -> &'a ExperimentStatus {
    e.status
        .as_ref()
        .unwrap()
        .experiments
        .iter()
        .find(|x| x.name == exp)
        .unwrap()
}

fn launched_at(e: &ChaosEngine, exp: &str) -> Timestamp {
    entry(e, exp)
        .launched_at
        .as_deref()
        .expect("launched")
        .parse()
        .unwrap()
}

fn finished_at(e: &ChaosEngine, exp: &str) -> Timestamp {
    entry(e, exp)
        .finished_at
        .as_deref()
        .expect("finished")
        .parse()
        .unwrap()
}

#[tokio::test]
async fn parallel_with_limit_two_never_runs_three() {
    let env = setup("parallel", &["a", "b", "c"]).await;
    let _fake = FakeExperiment::start(
        env.client(),
        env.ns(),
        Behaviour::all(ExperimentBehaviour::pass().run_time(Duration::from_secs(2))),
    );
    let _ctrl = InProcessController::start(env.client(), env.ns());
    env.create(&engine(
        "par",
        &["a", "b", "c"],
        json!({"mode": "parallel", "maxParallel": 2}),
    ))
    .await;
    let (e, max_alive) = run_to(&env, "par", &["completed"]).await;
    assert!(max_alive <= 2, "{max_alive} experiments ran at once");
    assert_eq!(max_alive, 2, "two ran side by side");
    let st = e.status.unwrap();
    assert!(
        st.experiments.iter().all(|x| x.verdict == "Pass"),
        "{:?}",
        st.experiments
    );
    assert_eq!(st.verdict, "Pass");
    env.cleanup().await;
}

#[tokio::test]
async fn diamond_graph_and_failed_dependency() {
    let env = setup("graph", &["a", "b", "c", "d"]).await;
    let _fake = FakeExperiment::start(
        env.client(),
        env.ns(),
        Behaviour::all(ExperimentBehaviour::pass().run_time(Duration::from_secs(1)))
            .with("x-fails", ExperimentBehaviour::fail()),
    );
    env.create(&sample_experiment("x-fails")).await;
    let _ctrl = InProcessController::start(env.client(), env.ns());
    // a → (b, c) → d
    env.create(&engine(
        "diamond",
        &["a", "b", "c", "d"],
        json!({"mode": "graph", "dependsOn": {"b": ["a"], "c": ["a"], "d": ["b", "c"]}}),
    ))
    .await;
    // x-fails → b (requirePass): b is skipped.
    env.create(&engine(
        "broken-dep",
        &["x-fails", "b"],
        json!({"mode": "graph", "dependsOn": {"b": ["x-fails"]}, "requirePass": true}),
    ))
    .await;
    let (e, _) = run_to(&env, "diamond", &["completed"]).await;
    assert!(launched_at(&e, "b") >= finished_at(&e, "a"));
    assert!(launched_at(&e, "c") >= finished_at(&e, "a"));
    assert!(launched_at(&e, "d") >= finished_at(&e, "b").max(finished_at(&e, "c")));
    assert_eq!(e.status.unwrap().verdict, "Pass");

    let (e, _) = run_to(&env, "broken-dep", &["completed"]).await;
    let st = e.status.unwrap();
    assert_eq!(st.experiments[0].verdict, "Fail");
    assert_eq!(st.experiments[1].status, "Skipped");
    assert!(
        st.experiments[1]
            .message
            .contains("dependency x-fails did not pass")
    );
    let uid = e.metadata.uid.clone().unwrap();
    let b_jobs = ListParams::default().labels(&format!("name=b,chaosUID={uid}"));
    assert_eq!(
        env.jobs().list(&b_jobs).await.unwrap().items.len(),
        0,
        "b never ran"
    );
    env.cleanup().await;
}

#[tokio::test]
async fn iterations_keep_their_interval_across_a_controller_restart() {
    let env = setup("iterations", &["pod-delete"]).await;
    let fake = FakeExperiment::start(
        env.client(),
        env.ns(),
        Behaviour::all(ExperimentBehaviour::pass().run_time(Duration::from_millis(500))),
    );
    let ctrl = ControllerProcess::start(env.ns(), &format!("{}-first", env.ns()), &[]);
    env.create(&engine(
        "twice",
        &["pod-delete"],
        json!({"iterations": 2, "minIntervalSeconds": 8, "seed": 11}),
    ))
    .await;
    // Wait for iteration 1 to end and the wait for iteration 2 to be persisted.
    let engines = env.engines();
    let waiting = env
        .wait_for("iteration 2 scheduled", WAIT, async || {
            let e = engines.get("twice").await?;
            match e.status.as_ref().and_then(|s| s.next_iteration_at.clone()) {
                Some(at) => Ok((e, at)),
                None => Err(anyhow::anyhow!("status {:?}", e.status)),
            }
        })
        .await;
    let next: Timestamp = waiting.1.parse().unwrap();
    ctrl.kill();
    let restarted_at = Timestamp::now();
    let ctrl = ControllerProcess::start(env.ns(), &format!("{}-second", env.ns()), &[]);
    let (e, _) = run_to(&env, "twice", &["completed"]).await;
    let st = e.status.clone().unwrap();
    assert_eq!(st.seed, Some(11));
    assert_eq!(st.runs.len(), 2, "two iterations recorded");
    assert!(st.runs.iter().all(|r| r.verdict == "Pass"));
    assert_ne!(st.runs[0].job_name, st.runs[1].job_name);
    let second_launch: Timestamp = st.runs[1].launched_at.as_deref().unwrap().parse().unwrap();
    let first_end: Timestamp = st.runs[0].finished_at.as_deref().unwrap().parse().unwrap();
    assert!(
        second_launch >= next,
        "iteration 2 launched at {second_launch}, not before {next}"
    );
    assert!(
        second_launch.duration_since(first_end).as_secs() >= 8,
        "the minimum interval held"
    );
    // The restarted controller resumes from the persisted schedule: iteration 2 starts soon after
    // it is due (or after the restart, if that is later), not a whole interval or resync later.
    let due = next.max(restarted_at);
    let late = second_launch.duration_since(due).as_secs();
    assert!(
        late < 30,
        "iteration 2 launched {late}s after it was due ({due}) with the new controller"
    );
    assert_eq!(fake.seen().len(), 2);
    let result = env.results().get("twice-pod-delete").await.unwrap();
    assert_eq!(
        result.status.unwrap().history.unwrap().passed_runs,
        2,
        "the ChaosResult accumulates its history"
    );
    env.cleanup().await;
    ctrl.kill();
}

#[tokio::test]
async fn abort_in_the_middle_of_a_parallel_run_leaves_no_residue() {
    let env = setup("parallel-abort", &["a", "b", "c"]).await;
    let _fake = FakeExperiment::start(
        env.client(),
        env.ns(),
        Behaviour::all(ExperimentBehaviour::never_finish()),
    );
    let _ctrl = InProcessController::start(env.client(), env.ns());
    env.create(&engine(
        "par-abort",
        &["a", "b", "c"],
        json!({"mode": "parallel", "maxParallel": 2}),
    ))
    .await;
    let engines = env.engines();
    env.wait_for("two experiments running", WAIT, async || {
        let e = engines.get("par-abort").await?;
        let n = e.status.as_ref().map_or(0, |s| {
            s.experiments
                .iter()
                .filter(|x| x.status == "Running")
                .count()
        });
        if n == 2 {
            Ok(())
        } else {
            Err(anyhow::anyhow!("{n} running"))
        }
    })
    .await;
    engines
        .patch(
            "par-abort",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"engineState": "stop"}})),
        )
        .await
        .unwrap();
    let (e, _) = run_to(&env, "par-abort", &["stopped"]).await;
    let st = e.status.unwrap();
    assert!(
        st.experiments
            .iter()
            .all(|x| x.status == "Forcefully Aborted" && x.verdict == "Stopped"),
        "{:?}",
        st.experiments
    );
    let uid = e.metadata.uid.unwrap();
    let lp = ListParams::default().labels(&format!("chaosUID={uid}"));
    let (jobs, pods) = (env.jobs(), env.pods());
    env.wait_for("no chaos residue", WAIT, async || {
        let (j, p) = (
            jobs.list(&lp).await?.items.len(),
            pods.list(&lp).await?.items.len(),
        );
        if j + p == 0 {
            Ok(())
        } else {
            Err(anyhow::anyhow!("{j} Jobs, {p} pods"))
        }
    })
    .await;
    env.cleanup().await;
}
