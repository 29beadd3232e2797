//! ChaosSchedules against the real local control plane (scripts/cluster up): the schedule
//! reconciler creates engines the way Litmus's chaos-scheduler does, and our own engine
//! reconciler runs each to its verdict through the fake litmus-go experiment.
mod support;

use std::time::Duration;

use chaos_conductor::api::{ChaosEngine, ChaosSchedule};
use jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;
use support::controller::{ControllerProcess, InProcessController};
use support::*;

const SA: &str = SAMPLE_SA;

/// The engine template of Litmus's docs (annotationCheck included: pruned by Litmus's CRD, kept
/// and ignored here), with the test's service account.
fn template() -> String {
    format!(
        r#"
  engineTemplateSpec:
    engineState: 'active'
    annotationCheck: 'false'
    appinfo:
      appns: 'default'
      applabel: 'app=nginx'
      appkind: 'deployment'
    chaosServiceAccount: {SA}
    jobCleanUpPolicy: 'retain'
    experiments:
      - name: pod-delete
        spec:
          components:
            env:
              - name: TOTAL_CHAOS_DURATION
                value: '30'
"#
    )
}

fn schedule_yaml(name: &str, schedule: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: litmuschaos.io/v1alpha1\nkind: ChaosSchedule\nmetadata:\n  name: {name}\n  labels:\n    team: sre\nspec:\n  schedule:\n{schedule}\n{extra_spec}{}",
        template()
    )
}

/// A test namespace with pod-delete and the fake experiment, every run passing after `run`.
async fn start(test: &str, run: Duration) -> (TestEnv, FakeExperiment) {
    let env = setup(test, &["pod-delete"]).await;
    let fake = FakeExperiment::start(
        env.client(),
        env.ns(),
        Behaviour::all(ExperimentBehaviour::pass().run_time(run)),
    );
    (env, fake)
}

async fn owned_engines(env: &TestEnv, schedule: &ChaosSchedule) -> Vec<ChaosEngine> {
    let uid = schedule.uid().unwrap_or_default();
    let mut engines: Vec<ChaosEngine> = env
        .engines()
        .list(&ListParams::default())
        .await
        .expect("list engines")
        .items
        .into_iter()
        .filter(|e| {
            e.owner_references()
                .iter()
                .any(|o| o.uid == uid && o.controller == Some(true))
        })
        .collect();
    engines.sort_by_key(|e| e.name_any());
    engines
}

fn engine_status(e: &ChaosEngine) -> &str {
    e.status.as_ref().map_or("", |s| s.engine_status.as_str())
}

fn sched_status(s: &ChaosSchedule) -> String {
    s.status
        .as_ref()
        .and_then(|st| st.schedule.as_ref())
        .and_then(|st| st.status.clone())
        .unwrap_or_default()
}

/// Waits (30 s at most) until the schedule owns exactly one engine.
async fn wait_one_engine(env: &TestEnv, schedule: &ChaosSchedule, what: &str) {
    env.wait_for(what, secs(30), async || {
        let n = owned_engines(env, schedule).await.len();
        if n == 1 {
            Ok(())
        } else {
            Err(anyhow::anyhow!("{n} engines"))
        }
    })
    .await
}

async fn get_schedule(env: &TestEnv, name: &str) -> ChaosSchedule {
    env.api::<ChaosSchedule>()
        .get(name)
        .await
        .expect("get schedule")
}

async fn wait_schedule(
    env: &TestEnv,
    name: &str,
    what: &str,
    timeout: Duration,
    done: impl Fn(&ChaosSchedule) -> bool,
) -> ChaosSchedule {
    let api = env.api::<ChaosSchedule>();
    env.wait_for(&format!("{name}: {what}"), timeout, async || {
        let s = api.get(name).await?;
        if done(&s) {
            Ok(s)
        } else {
            Err(anyhow::anyhow!(
                "spec.scheduleState {:?}, status {}",
                s.spec.schedule_state,
                serde_json::to_string(&s.status)?
            ))
        }
    })
    .await
}

async fn apply(env: &TestEnv, yaml: &str, name: &str) -> ChaosSchedule {
    env.apply_yaml(yaml).await.expect("apply schedule");
    get_schedule(env, name).await
}

#[tokio::test]
async fn now_creates_one_engine_that_runs_to_its_verdict_and_completes_the_schedule() {
    let (env, _fake) = start("sched-now", Duration::from_secs(2)).await;
    let _ctrl = InProcessController::start_all(env.client(), env.ns());
    let s = apply(
        &env,
        &schedule_yaml("nightly", "    now: true", ""),
        "nightly",
    )
    .await;

    // With our CRD the status (subresource) and spec.scheduleState are two writes.
    let done = wait_schedule(&env, "nightly", "completed", secs(120), |s| {
        sched_status(s) == "completed" && s.spec.schedule_state.as_deref() == Some("complete")
    })
    .await;
    let st = done.status.clone().expect("status");
    assert!(st.active.is_empty());
    let inner = st.schedule.clone().expect("status.schedule");
    assert!(inner.end_time.is_some());
    assert_eq!(inner.run_instances, None, "now never counts runs (Litmus)");
    assert_eq!(st.last_schedule_time, inner.start_time);

    let engines = owned_engines(&env, &s).await;
    assert_eq!(engines.len(), 1, "exactly one engine");
    let e = &engines[0];
    assert_eq!(e.name_any(), "nightly");
    assert_eq!(engine_status(e), "completed");
    assert_eq!(
        e.status.as_ref().map(|s| s.verdict.as_str()),
        Some("Pass"),
        "run to its verdict by our engine reconciler"
    );
    let labels = e.labels();
    assert_eq!(labels.get("app").map(String::as_str), Some("chaos-engine"));
    assert_eq!(labels.get("chaosUID"), s.uid().as_ref());
    assert_eq!(labels.get("team").map(String::as_str), Some("sre"));
    let owner = &e.owner_references()[0];
    assert_eq!(owner.kind, "ChaosSchedule");
    assert_eq!(owner.block_owner_deletion, Some(true));
    assert!(
        !e.annotations()
            .contains_key("kubectl.kubernetes.io/last-applied-configuration")
    );

    let events = env
        .wait_for("schedule events", secs(30), async || {
            let ev = env.events_for("nightly").await;
            let ours: Vec<EventInfo> = ev
                .into_iter()
                .filter(|e| e.kind == "ChaosSchedule")
                .collect();
            if ours.iter().any(|e| e.reason == "SawCompletedEngine") {
                Ok(ours)
            } else {
                Err(anyhow::anyhow!("{ours:?}"))
            }
        })
        .await;
    let reasons: Vec<&str> = events.iter().map(|e| e.reason.as_str()).collect();
    assert!(reasons.contains(&"SuccessfulCreate"), "{reasons:?}");
    assert!(!reasons.contains(&"ScheduleCompleted"), "{reasons:?}");
    assert!(events.iter().all(|e| e.component == "chaos-scheduler"));
    let created = events
        .iter()
        .find(|e| e.reason == "SuccessfulCreate")
        .unwrap();
    assert_eq!(created.message, "Created engine nightly");

    // Deleting the completed engine does not bring it back.
    env.engines()
        .delete("nightly", &DeleteParams::default())
        .await
        .expect("delete engine");
    tokio::time::sleep(secs(5)).await;
    let engines = owned_engines(&env, &s).await;
    assert!(
        engines
            .iter()
            .all(|e| e.metadata.deletion_timestamp.is_some()),
        "no second engine"
    );
    env.cleanup().await;
}

#[tokio::test]
async fn once_runs_at_its_execution_time() {
    let (env, _fake) = start("sched-once", Duration::from_secs(1)).await;
    let _ctrl = InProcessController::start_all(env.client(), env.ns());
    let at = Timestamp::from_second(Timestamp::now().as_second() + 12).unwrap();
    let yaml = schedule_yaml(
        "once",
        &format!("    once:\n      executionTime: \"{at}\""),
        "",
    );
    let s = apply(&env, &yaml, "once").await;
    let waiting = wait_schedule(&env, "once", "expectedNextRunTime", secs(30), |s| {
        s.status
            .as_ref()
            .and_then(|st| st.schedule.as_ref())
            .and_then(|st| st.expected_next_run_time.as_ref())
            .is_some()
    })
    .await;
    assert!(
        Timestamp::now() < at,
        "the test is too slow to check the wait"
    );
    assert!(
        owned_engines(&env, &waiting).await.is_empty(),
        "no engine before its time"
    );
    let e = env
        .wait_for("the engine", secs(60), async || {
            owned_engines(&env, &s)
                .await
                .into_iter()
                .next()
                .ok_or_else(|| anyhow::anyhow!("none yet"))
        })
        .await;
    let created = e.creation_timestamp().expect("created").0;
    assert!(created >= at, "created {created}, due {at}");
    assert!(
        created.as_second() - at.as_second() <= 3,
        "created {created}, due {at}: no timer?"
    );
    wait_schedule(&env, "once", "completed", secs(90), |s| {
        sched_status(s) == "completed"
    })
    .await;
    assert_eq!(owned_engines(&env, &s).await.len(), 1);
    env.cleanup().await;
}

const EVERY_MINUTE: &str = "    repeat:\n      properties:\n        minChaosInterval:\n          minute:\n            everyNthMinute: 1";

#[tokio::test]
async fn repeat_every_minute_with_runs_longer_than_the_interval_never_overlaps() {
    // Each run takes ~80 s, the interval is 60 s: Forbid must hold, catch-up must follow.
    let (env, _fake) = start("sched-forbid", Duration::from_secs(80)).await;
    let _ctrl = InProcessController::start_all(env.client(), env.ns());
    let s = apply(
        &env,
        &schedule_yaml(
            "every-minute",
            EVERY_MINUTE,
            "  concurrencyPolicy: Forbid\n",
        ),
        "every-minute",
    )
    .await;
    let started = std::time::Instant::now();
    let mut max_active = 0;
    let mut names = std::collections::BTreeSet::new();
    while started.elapsed() < Duration::from_secs(190) {
        let engines = owned_engines(&env, &s).await;
        let active = engines
            .iter()
            .filter(|e| engine_status(e) != "completed" && engine_status(e) != "stopped")
            .count();
        max_active = max_active.max(active);
        assert!(
            active <= 1,
            "two active engines at once: {:?}",
            engines
                .iter()
                .map(|e| (e.name_any(), engine_status(e).to_string()))
                .collect::<Vec<_>>()
        );
        names.extend(engines.iter().map(|e| e.name_any()));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(max_active, 1);
    assert!(
        names.len() >= 2,
        "a catch-up run after the first: {names:?}"
    );
    // Names are <schedule>-<unix seconds of the run>; after the first, runs are minute ticks.
    let suffixes: Vec<i64> = names
        .iter()
        .map(|n| {
            n.strip_prefix("every-minute-")
                .and_then(|x| x.parse().ok())
                .expect("suffix")
        })
        .collect();
    assert!(suffixes[1..].iter().all(|s| s % 60 == 0), "{suffixes:?}");
    let st = get_schedule(&env, "every-minute").await;
    let inner = st
        .status
        .as_ref()
        .and_then(|s| s.schedule.clone())
        .expect("status");
    assert_eq!(inner.status.as_deref(), Some("running"));
    assert_eq!(inner.run_instances, Some(names.len() as i64));
    assert!(inner.expected_next_run_time.is_some());
    let missed = env
        .events_for("every-minute")
        .await
        .into_iter()
        .filter(|e| e.reason == "MissEngine")
        .count();
    assert!(missed >= 1, "a MissEngine while blocked");
    env.cleanup().await;
}

#[tokio::test]
async fn halt_pauses_creation_and_resume_catches_up_the_missed_run() {
    let (env, _fake) = start("sched-halt", Duration::from_secs(1)).await;
    let _ctrl = InProcessController::start_all(env.client(), env.ns());
    let s = apply(&env, &schedule_yaml("halting", EVERY_MINUTE, ""), "halting").await;
    wait_one_engine(&env, &s, "first engine").await;
    let api = env.api::<ChaosSchedule>();
    let halt = json!({"spec": {"scheduleState": "halt"}});
    api.patch("halting", &PatchParams::default(), &Patch::Merge(&halt))
        .await
        .expect("halt");
    wait_schedule(&env, "halting", "halted", secs(30), |s| {
        sched_status(s) == "halted"
    })
    .await;
    // Over a tick: nothing new.
    tokio::time::sleep(Duration::from_secs(70)).await;
    assert_eq!(
        owned_engines(&env, &s).await.len(),
        1,
        "no engine while halted"
    );
    let resume = json!({"spec": {"scheduleState": "active"}});
    api.patch("halting", &PatchParams::default(), &Patch::Merge(&resume))
        .await
        .expect("resume");
    let resumed = std::time::Instant::now();
    let engines = env
        .wait_for("the catch-up engine", secs(20), async || {
            let e = owned_engines(&env, &s).await;
            if e.len() == 2 {
                Ok(e)
            } else {
                Err(anyhow::anyhow!("{} engines", e.len()))
            }
        })
        .await;
    assert!(
        resumed.elapsed() < Duration::from_secs(10),
        "caught up at once"
    );
    let second = engines
        .iter()
        .map(|e| e.name_any())
        .find(|n| {
            n.strip_prefix("halting-")
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|t| t % 60 == 0)
        })
        .expect("a tick-named engine");
    let events = env.events_for("halting").await;
    assert!(events.iter().any(|e| e.reason == "ScheduleHalted"));
    let st = get_schedule(&env, "halting").await;
    assert_eq!(
        sched_status(&st),
        "running",
        "running again at the resume: {second}"
    );
    env.cleanup().await;
}

#[tokio::test]
async fn controller_killed_right_after_creating_an_engine_does_not_duplicate_the_run() {
    let (env, _fake) = start("sched-kill", Duration::from_secs(1)).await;
    let ctrl = ControllerProcess::start(env.ns(), "sched-kill-1", &[]);
    let yaml = schedule_yaml(
        "killed",
        "    repeat:\n      properties:\n        minChaosInterval:\n          hour:\n            everyNthHour: 24\n            minuteOfTheHour: 0",
        "",
    );
    let s = apply(&env, &yaml, "killed").await;
    // SIGKILL the moment the engine exists (its status write may or may not have happened).
    env.wait_for("first engine", secs(60), async || {
        let n = owned_engines(&env, &s).await.len();
        if n >= 1 {
            Ok(())
        } else {
            Err(anyhow::anyhow!("none"))
        }
    })
    .await;
    ctrl.kill();
    // A restarted controller adopts it; no second engine for that run.
    let _again = ControllerProcess::start(env.ns(), "sched-kill-2", &[]);
    let st = wait_schedule(&env, "killed", "engine tracked", secs(60), |s| {
        s.status
            .as_ref()
            .is_some_and(|st| st.last_schedule_time.is_some())
    })
    .await;
    tokio::time::sleep(secs(5)).await;
    let engines = owned_engines(&env, &s).await;
    assert_eq!(
        engines.len(),
        1,
        "{:?}",
        engines.iter().map(|e| e.name_any()).collect::<Vec<_>>()
    );
    assert_eq!(
        st.status
            .as_ref()
            .and_then(|s| s.schedule.as_ref())
            .and_then(|s| s.run_instances),
        Some(1)
    );
    env.cleanup().await;
}

#[tokio::test]
async fn engine_created_before_a_lost_status_write_is_adopted() {
    // The crash window made deterministic: the engine of the first run exists, owned by the
    // schedule, but the schedule's status was never written. Then the controller starts.
    let (env, _fake) = start("sched-adopt", Duration::from_secs(1)).await;
    let yaml = schedule_yaml(
        "adopt",
        "    repeat:\n      properties:\n        minChaosInterval:\n          hour:\n            everyNthHour: 24",
        "",
    );
    let s = apply(&env, &yaml, "adopt").await;
    let created = s.creation_timestamp().expect("created").0.as_second();
    let name = format!("adopt-{created}");
    let engine = chaos_conductor::scheduler::engines::engine_for(&s, &name).expect("engine");
    let dynamic: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
        env.client(),
        env.ns(),
        &kube::api::ApiResource::erase::<ChaosEngine>(&()),
    );
    dynamic
        .create(&Default::default(), &engine)
        .await
        .expect("pre-create the engine");
    let _ctrl = InProcessController::start_all(env.client(), env.ns());
    let st = wait_schedule(&env, "adopt", "adopted", secs(60), |s| {
        s.status
            .as_ref()
            .is_some_and(|st| st.last_schedule_time.is_some())
    })
    .await;
    tokio::time::sleep(secs(3)).await;
    let engines = owned_engines(&env, &s).await;
    assert_eq!(
        engines.iter().map(|e| e.name_any()).collect::<Vec<_>>(),
        std::slice::from_ref(&name)
    );
    let status = st.status.clone().unwrap();
    assert_eq!(
        status.last_schedule_time.map(|t| t.0.as_second()),
        Some(created)
    );
    assert_eq!(status.schedule.and_then(|s| s.run_instances), Some(1));
    env.cleanup().await;
}

#[tokio::test]
async fn deleting_the_schedule_garbage_collects_its_engines() {
    let env = setup("sched-gc", &["pod-delete"]).await;
    // The run never finishes: the GC must take a running engine too (our engine reconciler
    // aborts it and releases its finalizer).
    let _fake = FakeExperiment::start(
        env.client(),
        env.ns(),
        Behaviour::all(ExperimentBehaviour::never_finish()),
    );
    let _ctrl = InProcessController::start_all(env.client(), env.ns());
    let s = apply(&env, &schedule_yaml("gc", "    now: true", ""), "gc").await;
    wait_one_engine(&env, &s, "the engine").await;
    env.api::<ChaosSchedule>()
        .delete("gc", &DeleteParams::background())
        .await
        .expect("delete schedule");
    env.wait_for("engines garbage-collected", secs(120), async || {
        let n = env
            .engines()
            .list(&ListParams::default())
            .await?
            .items
            .len();
        if n == 0 {
            Ok(())
        } else {
            Err(anyhow::anyhow!("{n} engines left"))
        }
    })
    .await;
    env.cleanup().await;
}
