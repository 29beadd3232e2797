//! Abort and garbage collection (docs/litmus-compatibility.md#abort) against the real local control
//! plane with the fake litmus-go experiment: the three triggers (delete, `engineState: stop`, the
//! abort annotation) at each stage of a run, result folding, a controller that is down during the
//! delete, a namespace being deleted, many aborts at once, restart after abort, force deletion of
//! chaos pods that outlive their grace period.
//!
//! Every test removes its engines while its controller still runs (see [`teardown`]): an engine
//! keeps the finalizer after an abort, so a namespace deleted after the controller stopped would
//! stay Terminating for good.
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chaos_conductor::api::{ABORT_ANNOTATION, ChaosEngine, ChaosResult, FINALIZER};
use chaos_conductor::engine::PlanConfig;
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;
use support::controller::{ControllerProcess, InProcessController};
use support::*;

const SA: &str = SAMPLE_SA;
const WAIT: Duration = Duration::from_secs(60);

fn engine(name: &str) -> EngineBuilder {
    EngineBuilder::new(name).service_account(SA)
}

/// Adds kwok-driving annotations to an experiment's pod (`experimentAnnotations`).
fn pod_annotations(mut b: EngineBuilder, experiment: &str, kv: &[(&str, &str)]) -> EngineBuilder {
    let c = b.components_mut(experiment);
    for (k, v) in kv {
        c.experiment_annotations
            .insert(k.to_string(), v.to_string());
    }
    b
}

fn status_of(e: &ChaosEngine) -> chaos_conductor::api::ChaosEngineStatus {
    e.status.clone().unwrap_or_default()
}

fn engine_status(e: &ChaosEngine) -> String {
    status_of(e).engine_status
}

/// `(status, verdict)` of every experiment entry.
fn entries(e: &ChaosEngine) -> Vec<(String, String)> {
    status_of(e)
        .experiments
        .iter()
        .map(|x| (x.status.clone(), x.verdict.clone()))
        .collect()
}

fn aborted_entry() -> (String, String) {
    ("Forcefully Aborted".into(), "Stopped".into())
}

/// Waits until the engine's first experiment is Running (its pod launched).
async fn wait_running(env: &TestEnv, name: &str) -> ChaosEngine {
    wait_engine_within(env, name, "experiment Running", WAIT, |e| {
        entries(e).first().is_some_and(|x| x.0 == "Running")
    })
    .await
}

/// Waits until all `n` engines of the namespace match `done`; `what` names the wait, the last
/// seen count says how far it got.
async fn wait_every_engine(
    env: &TestEnv,
    what: &str,
    timeout: Duration,
    n: usize,
    done: impl Fn(&ChaosEngine) -> bool,
) {
    let api = env.engines();
    env.wait_for(what, timeout, async || {
        let list = api.list(&ListParams::default()).await?.items;
        let matching = list.iter().filter(|e| done(e)).count();
        if matching == n {
            Ok(())
        } else {
            Err(anyhow::anyhow!("{matching}/{n}"))
        }
    })
    .await
}

async fn wait_gone(env: &TestEnv, name: &str, timeout: Duration) {
    let api = env.engines();
    env.wait_for(
        &format!("engine {name} gone"),
        timeout,
        async || match api.get_opt(name).await? {
            None => Ok(()),
            Some(e) => Err(anyhow::anyhow!(
                "still there: deletionTimestamp {:?}, finalizers {:?}, status {}",
                e.metadata.deletion_timestamp,
                e.metadata.finalizers,
                serde_json::to_string(&e.status)?
            )),
        },
    )
    .await
}

/// Jobs and pods (names) labelled `chaosUID=<uid>` in the test namespace.
async fn chaos_left(env: &TestEnv, uid: &str) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let lp = ListParams::default().labels(&format!("chaosUID={uid}"));
    let jobs = env.jobs().list(&lp).await?.items;
    let pods = env.pods().list(&lp).await?.items;
    Ok((
        jobs.iter().map(|j| j.name_any()).collect(),
        pods.iter().map(|p| p.name_any()).collect(),
    ))
}

/// Waits until no Job or pod labelled `chaosUID=<uid>` is left.
async fn wait_no_chaos_left(env: &TestEnv, what: &str, uid: &str) {
    env.wait_for(what, WAIT, async || {
        let (jobs, pods) = chaos_left(env, uid).await?;
        if jobs.is_empty() && pods.is_empty() {
            Ok(())
        } else {
            Err(anyhow::anyhow!("jobs {jobs:?}, pods {pods:?}"))
        }
    })
    .await
}

/// Asserts that no Job or pod of any run (label `chaosUID`) is in the namespace.
async fn assert_no_chaos_in_namespace(env: &TestEnv) {
    let all = ListParams::default().labels("chaosUID");
    assert!(env.jobs().list(&all).await.unwrap().items.is_empty());
    assert!(env.pods().list(&all).await.unwrap().items.is_empty());
}

async fn assert_no_chaos_left(env: &TestEnv, uid: &str) {
    let (jobs, pods) = chaos_left(env, uid).await.expect("listing chaos objects");
    assert!(
        jobs.is_empty() && pods.is_empty(),
        "chaos residue of {uid}: jobs {jobs:?}, pods {pods:?}"
    );
}

async fn assert_stopped_event(env: &TestEnv, name: &str) {
    let ev = env
        .wait_event(name, first_with_reason("ChaosEngineStopped"), WAIT)
        .await;
    assert_eq!(ev.message, "Chaos resources deleted successfully");
    assert_eq!(ev.type_, "Normal");
    assert_eq!(ev.component, "chaos-conductor");
}

async fn result(env: &TestEnv, name: &str) -> ChaosResult {
    env.results()
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("ChaosResult {name}: {e}"))
}

/// `(phase, verdict)` of a ChaosResult.
fn result_verdict(r: &ChaosResult) -> (String, String) {
    let s = r.status.clone().unwrap_or_default().experiment_status;
    (s.phase, s.verdict)
}

async fn wait_result(env: &TestEnv, name: &str, phase: &str, verdict: &str) -> ChaosResult {
    let api = env.results();
    env.wait_for(
        &format!("ChaosResult {name} {phase}/{verdict}"),
        WAIT,
        async || {
            let r = api
                .get_opt(name)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no result"))?;
            let got = result_verdict(&r);
            if got == (phase.to_string(), verdict.to_string()) {
                Ok(r)
            } else {
                Err(anyhow::anyhow!("{got:?}"))
            }
        },
    )
    .await
}

async fn patch_engine(env: &TestEnv, name: &str, body: serde_json::Value) {
    env.engines()
        .patch(name, &PatchParams::default(), &Patch::Merge(body))
        .await
        .unwrap_or_else(|e| panic!("patching engine {name}: {e}"));
}

async fn set_state(env: &TestEnv, name: &str, state: &str) {
    patch_engine(env, name, json!({"spec": {"engineState": state}})).await;
}

/// The three ways to abort.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trigger {
    Delete,
    Stop,
    Annotation,
}

async fn trigger(env: &TestEnv, name: &str, t: Trigger) {
    match t {
        Trigger::Delete => {
            env.engines()
                .delete(name, &DeleteParams::default())
                .await
                .unwrap_or_else(|e| panic!("deleting engine {name}: {e}"));
        }
        Trigger::Stop => set_state(env, name, "stop").await,
        Trigger::Annotation => {
            patch_engine(
                env,
                name,
                json!({"metadata": {"annotations": {ABORT_ANNOTATION: "true"}}}),
            )
            .await
        }
    }
}

/// Waits for the end of an abort: the engine gone (delete) or `stopped` (the others; after the
/// annotation also the annotation consumed and `engineState: stop`). `None` for a deleted engine.
async fn wait_aborted(env: &TestEnv, name: &str, t: Trigger) -> Option<ChaosEngine> {
    match t {
        Trigger::Delete => {
            wait_gone(env, name, WAIT).await;
            None
        }
        Trigger::Stop => Some(
            wait_engine_within(env, name, "stopped", WAIT, |e| {
                engine_status(e) == "stopped"
            })
            .await,
        ),
        Trigger::Annotation => {
            let e = wait_engine_within(
                env,
                name,
                "stopped and abort annotation consumed",
                WAIT,
                |e| {
                    engine_status(e) == "stopped" && !e.annotations().contains_key(ABORT_ANNOTATION)
                },
            )
            .await;
            assert_eq!(e.spec.engine_state.as_deref(), Some("stop"));
            Some(e)
        }
    }
}

/// Deletes every engine while the controller still runs and waits until they are gone, then
/// deletes the namespace.
async fn teardown(env: TestEnv) {
    let api = env.engines();
    let _ = api
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await;
    let gone = try_wait_for("all engines removed", WAIT, async || {
        let left = api.list(&ListParams::default()).await?.items;
        if left.is_empty() {
            Ok(())
        } else {
            Err(anyhow::anyhow!(
                "{:?}",
                left.iter().map(|e| e.name_any()).collect::<Vec<_>>()
            ))
        }
    })
    .await;
    if let Err(e) = gone {
        eprintln!("[abort] warning: {e:#}; removing finalizers by hand");
        strip_finalizers(&env).await;
    }
    env.cleanup().await;
}

/// The manual way out: drop our finalizer from every engine of the namespace.
async fn strip_finalizers(env: &TestEnv) {
    let api = env.engines();
    for e in api
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
    {
        drop_our_finalizer(&api, &e).await;
    }
}

/// Removes our finalizer from `e` (others stay), best effort: the way out of a stuck deletion.
async fn drop_our_finalizer(api: &Api<ChaosEngine>, e: &ChaosEngine) {
    let keep: Vec<String> = e
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    let _ = api
        .patch(
            &e.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": keep}})),
        )
        .await;
}

/// On a failing test (panic), removes our finalizer from the namespace's engines from a helper
/// thread with its own runtime and client, so that the namespace deleted when the `TestEnv` drops
/// does not stay Terminating. Declare it after the `TestEnv` (it must drop first).
struct UnblockOnPanic {
    ns: String,
}

impl UnblockOnPanic {
    fn new(env: &TestEnv) -> Self {
        Self {
            ns: env.ns().to_string(),
        }
    }
}

impl Drop for UnblockOnPanic {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let ns = self.ns.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let (client, _) = connect().await.ok()?;
                let api: Api<ChaosEngine> = Api::namespaced(client, &ns);
                let list = tokio::time::timeout(secs(10), api.list(&ListParams::default()))
                    .await
                    .ok()?
                    .ok()?;
                for e in list.items {
                    drop_our_finalizer(&api, &e).await;
                }
                Some(())
            })
        })
        .join();
    }
}

/// A test namespace with `experiments`, a panic guard for its engines' finalizers and the fake
/// experiment with `behaviour`. Bind in this order (the guard drops before the namespace).
async fn start(
    test: &str,
    experiments: &[&str],
    behaviour: Behaviour,
) -> (TestEnv, UnblockOnPanic, FakeExperiment) {
    let env = setup(test, experiments).await;
    let unblock = UnblockOnPanic::new(&env);
    let fake = FakeExperiment::start(env.client(), env.ns(), behaviour);
    (env, unblock, fake)
}

/// [`start`] with pod-delete only, its runs never finishing (each test aborts them).
async fn start_hanging(test: &str) -> (TestEnv, UnblockOnPanic, FakeExperiment) {
    start(
        test,
        &["pod-delete"],
        Behaviour::all(ExperimentBehaviour::never_finish()),
    )
    .await
}

// ------------------------------------------------------------------------- trigger × stage

/// When in the run the abort comes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// The first experiment's pod never starts (kwok `stay-pending`), the second experiment waits
    /// for its turn with no Job: nothing ran, no ChaosResult exists.
    Waiting,
    /// The experiment pod runs and the ChaosResult is Running/Awaited.
    Running,
    /// The engine completed (verdict Pass), its Job retained.
    Completed,
}

async fn abort_case(t: Trigger, stage: Stage) {
    let test = format!("abort-{t:?}-{stage:?}");
    let behaviour = match stage {
        Stage::Running => Behaviour::all(ExperimentBehaviour::never_finish()),
        _ => Behaviour::pass(),
    };
    let (env, _unblock, fake) = start(&test, &["pod-delete", "container-kill"], behaviour).await;
    let ctrl = InProcessController::start(env.client(), env.ns());
    let name = "victim";
    let b = match stage {
        Stage::Waiting => pod_annotations(
            engine(name)
                .experiment("pod-delete")
                .experiment("container-kill"),
            "pod-delete",
            &[("e2e.test/stay-pending", "true")],
        ),
        _ => engine(name).experiment("pod-delete"),
    };
    env.create(&b.build()).await;

    let before = match stage {
        Stage::Waiting => {
            let e = wait_engine_within(&env, name, "first Job created", WAIT, |e| {
                status_of(e)
                    .experiments
                    .first()
                    .is_some_and(|x| !x.job_name.is_empty())
            })
            .await;
            let job = status_of(&e).experiments[0].job_name.clone();
            env.wait_for("pending experiment pod", WAIT, async || {
                let pods = env.job_pods(&job).await;
                if pods.is_empty() {
                    Err(anyhow::anyhow!("no pod yet"))
                } else {
                    Ok(())
                }
            })
            .await;
            let e = env.engines().get(name).await.unwrap();
            assert_eq!(
                entries(&e)[1].0,
                "Waiting for Job Creation",
                "the second experiment has no Job yet"
            );
            e
        }
        Stage::Running => {
            let e = wait_running(&env, name).await;
            wait_result(&env, "victim-pod-delete", "Running", "Awaited").await;
            e
        }
        Stage::Completed => {
            wait_engine_within(&env, name, "completed", WAIT, |e| {
                engine_status(e) == "completed"
            })
            .await
        }
    };
    let uid = before.uid().expect("uid");
    assert!(
        before.finalizers().iter().any(|f| f == FINALIZER),
        "finalizer added when first seen"
    );

    let started = Instant::now();
    trigger(&env, name, t).await;

    if t == Trigger::Stop && stage == Stage::Completed {
        // A completed engine is already at `stop` (written on completion): Litmus does nothing,
        // the verdict stays.
        tokio::time::sleep(secs(3)).await;
        let e = env.engines().get(name).await.unwrap();
        assert_eq!(engine_status(&e), "completed");
        assert_eq!(entries(&e), vec![("Completed".into(), "Pass".into())]);
        assert_eq!(
            result_verdict(&result(&env, "victim-pod-delete").await).1,
            "Pass"
        );
        // The retained Job is removed by the delete in teardown (with the controller running).
        teardown(env).await;
        drop(ctrl);
        return;
    }

    let after = wait_aborted(&env, name, t).await;
    eprintln!("[abort] {test}: abort took {:.1?}", started.elapsed());
    wait_no_chaos_left(&env, "no chaos Job or pod left", &uid).await;
    assert_stopped_event(&env, name).await;

    if let Some(e) = &after {
        let st = status_of(e);
        match stage {
            Stage::Waiting => {
                assert_eq!(entries(e), vec![aborted_entry(), aborted_entry()]);
                assert_eq!(st.verdict, "Stopped");
            }
            Stage::Running => {
                assert_eq!(entries(e), vec![aborted_entry()]);
                assert_eq!(st.verdict, "Stopped");
            }
            Stage::Completed => {
                assert_eq!(
                    entries(e),
                    vec![("Completed".into(), "Pass".into())],
                    "a finished experiment keeps its verdict"
                );
                assert_eq!(st.verdict, "Pass");
            }
        }
        assert_eq!(st.phase, "Stopped");
        assert!(
            e.finalizers().iter().any(|f| f == FINALIZER),
            "the finalizer stays on an engine that is not deleted"
        );
    }
    match stage {
        Stage::Waiting => {
            let results = env.results().list(&ListParams::default()).await.unwrap();
            assert!(results.items.is_empty(), "no experiment ran");
        }
        Stage::Running => {
            let r = result(&env, "victim-pod-delete").await;
            assert_eq!(
                result_verdict(&r),
                ("Stopped".into(), "Stopped".into()),
                "the running result ends Stopped"
            );
            assert_eq!(r.status.unwrap().history.unwrap().stopped_runs, 1);
        }
        Stage::Completed => {
            let r = result(&env, "victim-pod-delete").await;
            assert_eq!(result_verdict(&r), ("Completed".into(), "Pass".into()));
        }
    }
    fake.assert_no_errors();
    teardown(env).await;
    drop(ctrl);
}

/// One test per trigger × stage (each its own namespace, so they run in parallel and a filter
/// such as `delete_while` picks them by name).
macro_rules! abort_cases {
    ($($name:ident: $trigger:ident at $stage:ident;)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                abort_case(Trigger::$trigger, Stage::$stage).await;
            }
        )*
    };
}

abort_cases! {
    delete_while_waiting: Delete at Waiting;
    delete_while_running: Delete at Running;
    delete_after_completion: Delete at Completed;
    stop_while_waiting: Stop at Waiting;
    stop_while_running: Stop at Running;
    stop_after_completion_keeps_the_verdict: Stop at Completed;
    abort_annotation_while_waiting: Annotation at Waiting;
    abort_annotation_while_running: Annotation at Running;
    abort_annotation_after_completion: Annotation at Completed;
}

#[tokio::test]
async fn abort_annotation_on_a_new_engine_launches_nothing() {
    let (env, _unblock, _fake) = start("abort-new", &["pod-delete"], Behaviour::pass()).await;
    let ctrl = InProcessController::start(env.client(), env.ns());
    env.create(
        &engine("born-aborted")
            .experiment("pod-delete")
            .annotation(ABORT_ANNOTATION, "true")
            .build(),
    )
    .await;
    let e = wait_aborted(&env, "born-aborted", Trigger::Annotation)
        .await
        .unwrap();
    assert_stopped_event(&env, "born-aborted").await;
    assert!(
        entries(&e).iter().all(|x| *x == aborted_entry()),
        "{:?}",
        entries(&e)
    );
    let jobs = env.jobs().list(&ListParams::default()).await.unwrap().items;
    assert!(jobs.is_empty(), "no Job for an engine aborted at birth");
    teardown(env).await;
    drop(ctrl);
}

// ---------------------------------------------------------------------------- result folding

fn targets(r: &ChaosResult) -> BTreeMap<(String, String), String> {
    r.status
        .as_ref()
        .and_then(|s| s.history.as_ref())
        .map(|h| {
            h.targets
                .iter()
                .map(|t| ((t.kind.clone(), t.name.clone()), t.chaos_status.clone()))
                .collect()
        })
        .unwrap_or_default()
}

async fn annotate_result(env: &TestEnv, name: &str, kv: &[(&str, &str)]) {
    let map: BTreeMap<&str, &str> = kv.iter().copied().collect();
    env.results()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": map}})),
        )
        .await
        .unwrap_or_else(|e| panic!("annotating {name}: {e}"));
}

#[tokio::test]
async fn target_annotations_of_every_result_are_folded_into_history() {
    let (env, _unblock, _fake) = start(
        "abort-fold",
        &["pod-delete", "container-kill"],
        Behaviour::pass().with("container-kill", ExperimentBehaviour::never_finish()),
    )
    .await;
    let ctrl = InProcessController::start(env.client(), env.ns());
    env.create(
        &engine("fold")
            .experiment("pod-delete")
            .experiment("container-kill")
            .build(),
    )
    .await;
    wait_engine_within(&env, "fold", "second experiment Running", WAIT, |e| {
        entries(e).get(1).is_some_and(|x| x.0 == "Running")
    })
    .await;
    wait_result(&env, "fold-container-kill", "Running", "Awaited").await;
    let marks = [
        ("pod/nginx-1", "injected"),
        ("pod/nginx-2", "reverted"),
        ("deployment/web", "targeted"),
        // Not a target annotation: stays where it is.
        ("example.com/owner", "team-a"),
    ];
    annotate_result(&env, "fold-pod-delete", &marks).await;
    annotate_result(&env, "fold-container-kill", &marks).await;

    trigger(&env, "fold", Trigger::Stop).await;
    let e = wait_aborted(&env, "fold", Trigger::Stop).await.unwrap();
    assert_eq!(
        entries(&e),
        vec![("Completed".into(), "Pass".into()), aborted_entry()]
    );
    let want: BTreeMap<(String, String), String> = [
        (("pod", "nginx-1"), "injected"),
        (("pod", "nginx-2"), "reverted"),
        (("deployment", "web"), "targeted"),
    ]
    .into_iter()
    .map(|((k, n), v)| ((k.to_string(), n.to_string()), v.to_string()))
    .collect();
    for (name, verdict) in [
        ("fold-pod-delete", ("Completed", "Pass")),
        ("fold-container-kill", ("Stopped", "Stopped")),
    ] {
        let r = env
            .wait_for(&format!("{name} folded"), WAIT, async || {
                let r = env.results().get(name).await?;
                if targets(&r) == want {
                    Ok(r)
                } else {
                    Err(anyhow::anyhow!(
                        "targets {:?}, annotations {:?}",
                        targets(&r),
                        r.annotations()
                    ))
                }
            })
            .await;
        let left: Vec<&String> = r.annotations().keys().collect();
        assert_eq!(
            left,
            vec!["example.com/owner"],
            "{name}: target annotations removed, others kept"
        );
        assert_eq!(
            result_verdict(&r),
            (verdict.0.to_string(), verdict.1.to_string())
        );
    }
    teardown(env).await;
    drop(ctrl);
}

// ------------------------------------------------------------------------ controller down

#[tokio::test]
async fn delete_while_the_controller_is_down_completes_when_it_is_back() {
    let (env, _unblock, _fake) = start_hanging("abort-down").await;
    let ctrl = ControllerProcess::start(env.ns(), &format!("{}-first", env.ns()), &[]);
    env.create(&engine("orphan").experiment("pod-delete").build())
        .await;
    let e = wait_running(&env, "orphan").await;
    let uid = e.uid().unwrap();
    ctrl.kill();

    trigger(&env, "orphan", Trigger::Delete).await;
    tokio::time::sleep(secs(3)).await;
    let held = env
        .engines()
        .get("orphan")
        .await
        .expect("held by the finalizer");
    assert!(held.metadata.deletion_timestamp.is_some());
    let (_, pods) = chaos_left(&env, &uid).await.unwrap();
    assert!(!pods.is_empty(), "nobody aborted the experiment yet");

    let started = Instant::now();
    let ctrl = ControllerProcess::start(env.ns(), &format!("{}-second", env.ns()), &[]);
    wait_gone(&env, "orphan", WAIT).await;
    eprintln!(
        "[abort] deletion finished {:.1?} after the controller came back",
        started.elapsed()
    );
    assert_no_chaos_left(&env, &uid).await;
    assert_stopped_event(&env, "orphan").await;
    assert_eq!(
        result_verdict(&result(&env, "orphan-pod-delete").await),
        ("Stopped".into(), "Stopped".into())
    );
    teardown(env).await;
    ctrl.kill();
}

// ----------------------------------------------------------------- races and helper pods

#[tokio::test]
async fn abort_right_after_creation_leaves_no_residue() {
    let (env, _unblock, _fake) = start_hanging("abort-race").await;
    let ctrl = InProcessController::start(env.client(), env.ns());
    let mut cases = Vec::new();
    for t in [Trigger::Delete, Trigger::Stop, Trigger::Annotation] {
        for i in 0..3 {
            let name = format!("{}-{i}", format!("{t:?}").to_lowercase());
            env.create(&engine(&name).experiment("pod-delete").build())
                .await;
            trigger(&env, &name, t).await;
            cases.push((name, t));
        }
    }
    for (name, t) in &cases {
        match t {
            Trigger::Delete | Trigger::Annotation => {
                wait_aborted(&env, name, *t).await;
            }
            Trigger::Stop => {
                // Seen `active` first: aborted to `stopped`; seen `stop` first: never started
                // (Litmus: stop with an empty status does nothing).
                let e = wait_engine_within(&env, name, "stopped or never started", WAIT, |e| {
                    matches!(engine_status(e).as_str(), "stopped" | "")
                })
                .await;
                if engine_status(&e) == "stopped" {
                    assert_stopped_event(&env, name).await;
                }
            }
        }
    }
    env.wait_for("no chaos Job or pod in the namespace", WAIT, async || {
        let all = ListParams::default().labels("chaosUID");
        let jobs = env.jobs().list(&all).await?.items.len();
        let pods = env.pods().list(&all).await?.items.len();
        if jobs + pods == 0 {
            Ok(())
        } else {
            Err(anyhow::anyhow!("{jobs} jobs, {pods} pods"))
        }
    })
    .await;
    // And none comes back.
    tokio::time::sleep(secs(3)).await;
    assert_no_chaos_in_namespace(&env).await;
    teardown(env).await;
    drop(ctrl);
}

fn helper_pod(name: &str, uid: &str) -> k8s_openapi::api::core::v1::Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"chaosUID": uid, "app": "helper"}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "helper", "image": SAMPLE_IMAGE}]
        }
    }))
    .unwrap()
}

#[tokio::test]
async fn helper_pods_are_swept_even_when_created_during_the_abort() {
    let (env, _unblock, _fake) = start_hanging("abort-helpers").await;
    let ctrl = InProcessController::start(env.client(), env.ns());
    // The experiment pod lingers 5 s after its deletion, so the abort is still waiting when the
    // late helper appears.
    let b = pod_annotations(
        engine("helped").experiment("pod-delete"),
        "pod-delete",
        &[("e2e.test/delete-after", "5s")],
    );
    env.create(&b.build()).await;
    let e = wait_running(&env, "helped").await;
    let uid = e.uid().unwrap();
    env.create(&helper_pod("early-helper", &uid)).await;

    trigger(&env, "helped", Trigger::Stop).await;
    wait_engine_within(&env, "helped", "aborting", WAIT, |e| {
        status_of(e).phase == "Aborting"
    })
    .await;
    env.create(&helper_pod("late-helper", &uid)).await;

    let e = wait_aborted(&env, "helped", Trigger::Stop).await.unwrap();
    assert_eq!(entries(&e), vec![aborted_entry()]);
    // `stopped` is written only once every chaos pod is gone.
    assert_no_chaos_left(&env, &uid).await;
    teardown(env).await;
    drop(ctrl);
}

// ------------------------------------------------------------- residue already (partly) gone

#[tokio::test]
async fn delete_completes_when_the_job_or_pod_was_removed_by_hand() {
    let (env, _unblock, _fake) = start_hanging("abort-byhand").await;
    let ctrl = InProcessController::start(env.client(), env.ns());
    for n in ["lost-job", "lost-pod"] {
        env.create(&engine(n).experiment("pod-delete").build())
            .await;
    }
    let mut uids = Vec::new();
    for n in ["lost-job", "lost-pod"] {
        let e = wait_running(&env, n).await;
        uids.push(e.uid().unwrap());
        let x = &status_of(&e).experiments[0];
        if n == "lost-job" {
            // The Job goes, its pod stays behind (still labelled chaosUID, owned by nobody).
            let orphan = DeleteParams {
                propagation_policy: Some(kube::api::PropagationPolicy::Orphan),
                ..Default::default()
            };
            env.jobs().delete(&x.job_name, &orphan).await.unwrap();
        } else {
            // The pod is gone at once; the Job stays.
            env.pods()
                .delete(&x.experiment_pod, &DeleteParams::default().grace_period(0))
                .await
                .unwrap();
        }
        trigger(&env, n, Trigger::Delete).await;
    }
    for (n, uid) in ["lost-job", "lost-pod"].iter().zip(&uids) {
        wait_gone(&env, n, WAIT).await;
        wait_no_chaos_left(&env, &format!("no chaos residue of {n}"), uid).await;
        assert_stopped_event(&env, n).await;
    }
    teardown(env).await;
    drop(ctrl);
}

// --------------------------------------------------------------------- namespace deletion

#[tokio::test]
async fn deleting_the_namespace_during_a_run_finishes() {
    let (env, _unblock, _fake) = start_hanging("abort-nsdel").await;
    let ctrl = InProcessController::start(env.client(), env.ns());
    env.create(&engine("doomed").experiment("pod-delete").build())
        .await;
    wait_running(&env, "doomed").await;

    let namespaces: Api<Namespace> = Api::all(env.client());
    let ns = env.ns().to_string();
    let started = Instant::now();
    namespaces
        .delete(&ns, &DeleteParams::background())
        .await
        .expect("deleting the namespace");
    let finished = try_wait_for("namespace deleted", secs(45), async || {
        match namespaces.get_opt(&ns).await? {
            None => Ok(()),
            Some(n) => {
                let engines: Vec<String> = env
                    .engines()
                    .list(&ListParams::default())
                    .await
                    .map(|l| {
                        l.items
                            .iter()
                            .map(|e| {
                                format!(
                                    "{} finalizers={:?} status={}",
                                    e.name_any(),
                                    e.metadata.finalizers,
                                    serde_json::to_string(&e.status).unwrap_or_default()
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                Err(anyhow::anyhow!(
                    "phase {:?}; engines {engines:?}",
                    n.status.and_then(|s| s.phase)
                ))
            }
        }
    })
    .await;
    if let Err(e) = finished {
        // Do not leave a namespace Terminating for good: the manual way out.
        strip_finalizers(&env).await;
        drop(ctrl);
        panic!("{e:#}");
    }
    eprintln!("[abort] namespace deletion took {:.1?}", started.elapsed());
    drop(ctrl);
    env.cleanup().await;
}

// ----------------------------------------------------------------------------- many at once

#[tokio::test]
async fn fifty_engines_stopped_at_once() {
    const N: usize = 50;
    let (env, _unblock, _fake) = start_hanging("abort-fifty").await;
    let ctrl = InProcessController::start(env.client(), env.ns());
    let names: Vec<String> = (0..N).map(|i| format!("many-{i:02}")).collect();
    for n in &names {
        env.create(&engine(n).experiment("pod-delete").build())
            .await;
    }
    let api = env.engines();
    wait_every_engine(
        &env,
        "every engine has its experiment pod",
        secs(120),
        N,
        |e| entries(e).first().is_some_and(|x| x.0 == "Running"),
    )
    .await;
    let uids: Vec<String> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|e| e.uid().unwrap())
        .collect();

    let started = Instant::now();
    futures::future::join_all(names.iter().map(|n| set_state(&env, n, "stop"))).await;
    wait_every_engine(&env, "every engine stopped", secs(120), N, |e| {
        engine_status(e) == "stopped"
    })
    .await;
    eprintln!("[abort] {N} aborts took {:.1?}", started.elapsed());
    for e in api.list(&ListParams::default()).await.unwrap().items {
        assert_eq!(entries(&e), vec![aborted_entry()], "{}", e.name_any());
    }
    for uid in &uids {
        assert_no_chaos_left(&env, uid).await;
    }
    assert_no_chaos_in_namespace(&env).await;
    teardown(env).await;
    drop(ctrl);
}

// -------------------------------------------------------------------------------- restart

#[tokio::test]
async fn restart_after_abort_runs_again_with_a_fresh_status() {
    let (env, _unblock, fake) = start(
        "abort-restart",
        &["pod-delete"],
        Behaviour::all(ExperimentBehaviour::pass().run_time(secs(6))),
    )
    .await;
    let ctrl = InProcessController::start(env.client(), env.ns());
    env.create(&engine("phoenix").experiment("pod-delete").build())
        .await;
    let first = wait_running(&env, "phoenix").await;
    let first_job = status_of(&first).experiments[0].job_name.clone();
    trigger(&env, "phoenix", Trigger::Annotation).await;
    let stopped = wait_aborted(&env, "phoenix", Trigger::Annotation)
        .await
        .unwrap();
    assert_eq!(entries(&stopped), vec![aborted_entry()]);

    set_state(&env, "phoenix", "active").await;
    let second = wait_engine_within(&env, "phoenix", "second run completed", WAIT, |e| {
        engine_status(e) == "completed"
            && status_of(e)
                .experiments
                .first()
                .is_some_and(|x| x.job_name != first_job)
    })
    .await;
    let st = status_of(&second);
    assert_eq!(st.experiments.len(), 1, "one entry per experiment");
    assert_eq!(entries(&second), vec![("Completed".into(), "Pass".into())]);
    assert_eq!(st.verdict, "Pass");
    assert_eq!(st.phase, "Completed");
    assert!(st.aborted_at.is_none(), "fresh status: {st:?}");
    assert_ne!(st.run_id, status_of(&first).run_id);

    let restart = env
        .wait_event("phoenix", first_with_reason("RestartInProgress"), WAIT)
        .await;
    assert_eq!(restart.message, "ChaosEngine is restarted");
    assert_eq!(restart.count, 1);

    let r = result(&env, "phoenix-pod-delete").await;
    let h = r.status.clone().unwrap().history.unwrap();
    assert_eq!(
        (h.passed_runs, h.stopped_runs, h.failed_runs),
        (1, 1, 0),
        "each run counted once"
    );
    assert_eq!(result_verdict(&r), ("Completed".into(), "Pass".into()));
    assert_eq!(fake.seen().len(), 2, "the experiment ran twice");
    let jobs: Vec<String> = env
        .jobs()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|j| j.name_any())
        .collect();
    assert_eq!(
        jobs,
        vec![st.experiments[0].job_name.clone()],
        "old Job gone"
    );
    teardown(env).await;
    drop(ctrl);
}

// ------------------------------------------------------------------ aborts do not block others

#[tokio::test]
async fn a_normal_engine_progresses_while_twenty_others_abort() {
    const N: usize = 20;
    let (env, _unblock, _fake) = start(
        "abort-busy",
        &["pod-delete", "container-kill"],
        Behaviour::all(ExperimentBehaviour::never_finish())
            .with("container-kill", ExperimentBehaviour::pass()),
    )
    .await;
    let ctrl = InProcessController::start(env.client(), env.ns());
    // Their pods linger 15 s after deletion: each abort waits that long (by requeueing).
    let names: Vec<String> = (0..N).map(|i| format!("slow-{i:02}")).collect();
    for n in &names {
        let b = pod_annotations(
            engine(n).experiment("pod-delete"),
            "pod-delete",
            &[("e2e.test/delete-after", "15s")],
        );
        env.create(&b.build()).await;
    }
    let api = env.engines();
    wait_every_engine(&env, "every slow engine running", secs(120), N, |e| {
        entries(e).first().is_some_and(|x| x.0 == "Running")
    })
    .await;
    futures::future::join_all(names.iter().map(|n| set_state(&env, n, "stop"))).await;
    // All 20 aborts are now waiting for their pods.
    wait_engine_within(&env, &names[N - 1], "aborting", WAIT, |e| {
        status_of(e).phase == "Aborting"
    })
    .await;

    let started = Instant::now();
    env.create(&engine("steady").experiment("container-kill").build())
        .await;
    let done = wait_engine_within(&env, "steady", "completed", secs(12), |e| {
        engine_status(e) == "completed"
    })
    .await;
    let took = started.elapsed();
    eprintln!("[abort] steady engine completed in {took:.1?} during 20 aborts");
    assert_eq!(entries(&done), vec![("Completed".into(), "Pass".into())]);
    let aborting = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|e| status_of(e).phase == "Aborting")
        .count();
    assert!(
        aborting > 0,
        "the aborts should still be waiting for their pods (else the test proves nothing)"
    );

    wait_every_engine(&env, "every slow engine stopped", secs(90), N, |e| {
        e.name_any().starts_with("slow-") && engine_status(e) == "stopped"
    })
    .await;
    teardown(env).await;
    drop(ctrl);
}

// ---------------------------------------------------------------------------- force delete

#[tokio::test]
async fn chaos_pods_that_outlive_the_grace_period_are_force_deleted() {
    let (env, _unblock, _fake) = start_hanging("abort-force").await;
    let plan = PlanConfig {
        abort_margin: secs(2),
        ..PlanConfig::default()
    };
    let ctrl = InProcessController::start_with(env.client(), env.ns(), plan);
    // kwok removes a deleted pod only 300 s after its last change: only a force delete is sooner.
    let b = pod_annotations(
        engine("stubborn")
            .experiment("pod-delete")
            .with(|e| e.spec.termination_grace_period_seconds = Some(1)),
        "pod-delete",
        &[("e2e.test/delete-after", "300s")],
    );
    env.create(&b.build()).await;
    let e = wait_running(&env, "stubborn").await;
    let uid = e.uid().unwrap();
    let pod = status_of(&e).experiments[0].experiment_pod.clone();

    let started = Instant::now();
    trigger(&env, "stubborn", Trigger::Stop).await;
    // The pod is marked for deletion with the engine's grace period, and stays.
    env.wait_for("pod marked for deletion", WAIT, async || {
        let p = env.pods().get(&pod).await?;
        if p.metadata.deletion_timestamp.is_some() {
            Ok(p)
        } else {
            Err(anyhow::anyhow!("not yet"))
        }
    })
    .await;
    let e = wait_aborted(&env, "stubborn", Trigger::Stop).await.unwrap();
    let took = started.elapsed();
    eprintln!("[abort] force-deleted abort took {took:.1?}");
    // abortedAt is written at whole seconds (rounded), so the deadline may come up to 0.5 s early.
    assert!(
        took >= Duration::from_millis(2400),
        "stopped before the grace period (1 s) + margin (2 s) ran out: {took:?}"
    );
    assert!(took < secs(30), "{took:?}");
    assert_eq!(entries(&e), vec![aborted_entry()]);
    assert_no_chaos_left(&env, &uid).await;
    let ev = env
        .wait_event(
            "stubborn",
            first_with_reason("ChaosResourcesForceDeleted"),
            WAIT,
        )
        .await;
    assert_eq!(ev.type_, "Warning");
    assert!(ev.message.contains(&pod), "{}", ev.message);
    assert_stopped_event(&env, "stubborn").await;
    assert_eq!(
        result_verdict(&result(&env, "stubborn-pod-delete").await),
        ("Stopped".into(), "Stopped".into())
    );
    teardown(env).await;
    drop(ctrl);
}
