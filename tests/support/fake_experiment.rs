//! A stand-in for litmus-go: plays the experiment process of every experiment pod in a namespace,
//! so the controller can be tested on kwok with no real image (docs/litmus-compatibility.md#chaosresult-protocol).
//!
//! [`FakeExperiment::start`] watches pods labelled `chaosUID`; each pod with a `job-name` label
//! (an experiment pod made by a Job) is handled once, when it is first seen Running:
//!
//! 1. reads `CHAOSENGINE`, `EXPERIMENT_NAME`, `CHAOS_NAMESPACE`, `CHAOS_UID` and `INSTANCE_ID` from
//!    the env of the container named like the `job-name` label (a missing one is an error, see
//!    [`FakeExperiment::errors`], and the pod is failed with exit code 1);
//! 2. creates or updates the ChaosResult `<engine>-<experiment>[-<instance>]` (labels = pod labels,
//!    `chaosUID` forced): phase Running, verdict Awaited — a full create/replace, as the CRD has no
//!    status subresource; emits `Awaited` on the result;
//! 3. emits `PreChaosCheck` and `ChaosInject` on the engine;
//! 4. after the configured run time, `PostChaosCheck`, then the end-of-test result (Pass / Fail /
//!    Error), `Summary`, the result event, and finishes the pod by annotating it for kwok
//!    (`e2e.test/outcome: succeed`: litmus-go exits 0 whatever the verdict).
//!
//! If the pod gets a deletionTimestamp before it finished (abort, docs/litmus-compatibility.md#abort), it writes phase/verdict
//! Stopped with `EXPERIMENT_ABORTED` and emits `Summary` (Warning) "… has been aborted".
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::litmus_protocol::{Outcome, Reporter};
use chaos_conductor::api::result_name;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// The ChaosResult verdict a fake experiment reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FakeVerdict {
    /// Completed / Pass, probeSuccessPercentage 100, passedRuns+1.
    Pass,
    /// Completed / Fail, failedRuns+1.
    Fail,
    /// Error / Error with this errorOutput.
    Error { code: String, reason: String },
}

/// How the experiment process ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FakeFinish {
    /// Writes the verdict, then every container exits 0 (`e2e.test/outcome: succeed`).
    Exit,
    /// Writes the verdict, then only the main container exits 0 (`e2e.test/outcome: main-done`);
    /// the pod stays Running, as with an injected sidecar.
    MainContainerOnly,
    /// Crashes after the run time without an end-of-test result update
    /// (`e2e.test/outcome: fail` with this exit code): the result stays Running/Awaited.
    PodFails { exit_code: i32 },
    /// Crashes at once, before writing any ChaosResult or event.
    CrashAtStart { exit_code: i32 },
    /// Exits 0 at once without writing any ChaosResult or event (whatever result is there, if
    /// any, was not written by this run).
    ExitWithoutResult,
    /// Never finishes: the result stays Running/Awaited and the pod Running until deleted (an
    /// abort is still handled).
    Never,
}

/// What the fake does for one experiment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExperimentBehaviour {
    pub verdict: FakeVerdict,
    /// Time between the start-of-test and end-of-test writes (the "chaos duration").
    pub run_time: Duration,
    pub finish: FakeFinish,
}

impl ExperimentBehaviour {
    /// Pass after 500 ms, exit 0.
    pub fn pass() -> Self {
        ExperimentBehaviour {
            verdict: FakeVerdict::Pass,
            run_time: Duration::from_millis(500),
            finish: FakeFinish::Exit,
        }
    }
    pub fn fail() -> Self {
        ExperimentBehaviour {
            verdict: FakeVerdict::Fail,
            ..Self::pass()
        }
    }
    pub fn error(code: &str, reason: &str) -> Self {
        ExperimentBehaviour {
            verdict: FakeVerdict::Error {
                code: code.into(),
                reason: reason.into(),
            },
            ..Self::pass()
        }
    }
    /// Pod fails (exit code) after the run time, without an end-of-test result update.
    pub fn pod_fails(exit_code: i32) -> Self {
        ExperimentBehaviour {
            finish: FakeFinish::PodFails { exit_code },
            ..Self::pass()
        }
    }
    pub fn never_finish() -> Self {
        ExperimentBehaviour {
            finish: FakeFinish::Never,
            ..Self::pass()
        }
    }
    pub fn run_time(mut self, d: Duration) -> Self {
        self.run_time = d;
        self
    }
    pub fn finish(mut self, f: FakeFinish) -> Self {
        self.finish = f;
        self
    }
    pub fn main_container_only(self) -> Self {
        self.finish(FakeFinish::MainContainerOnly)
    }
}

/// Behaviour per experiment name, with a default for the others.
#[derive(Clone, Debug)]
pub struct Behaviour {
    pub default: ExperimentBehaviour,
    pub per_experiment: HashMap<String, ExperimentBehaviour>,
}

impl Behaviour {
    /// Every experiment behaves like `default`.
    pub fn all(default: ExperimentBehaviour) -> Self {
        Behaviour {
            default,
            per_experiment: HashMap::new(),
        }
    }
    /// Every experiment passes after 500 ms.
    pub fn pass() -> Self {
        Self::all(ExperimentBehaviour::pass())
    }
    /// Overrides the behaviour of experiment `name`.
    pub fn with(mut self, name: &str, b: ExperimentBehaviour) -> Self {
        self.per_experiment.insert(name.into(), b);
        self
    }
    pub fn for_experiment(&self, name: &str) -> &ExperimentBehaviour {
        self.per_experiment.get(name).unwrap_or(&self.default)
    }
}

/// How far the fake got with one pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FakeState {
    /// Start-of-test done, chaos "running".
    Running,
    /// End-of-test result written with this verdict and the pod told to finish.
    Finished(String),
    /// Pod told to fail without a result update.
    Crashed,
    /// The pod was deleted first: Stopped written.
    Aborted,
    /// Could not play the pod (see errors).
    Broken,
}

/// One experiment pod the fake handled.
#[derive(Clone, Debug)]
pub struct SeenPod {
    pub name: String,
    pub uid: String,
    pub job_name: String,
    /// EXPERIMENT_NAME / CHAOSENGINE / CHAOS_NAMESPACE / CHAOS_UID / INSTANCE_ID (may be empty).
    pub experiment: String,
    pub engine: String,
    pub chaos_namespace: String,
    pub chaos_uid: String,
    pub instance_id: String,
    pub result_name: String,
    /// The main container's env, resolved (plain values, downward API, ConfigMap/Secret refs).
    pub env: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub containers: Vec<String>,
    pub service_account: String,
    pub state: FakeState,
}

#[derive(Default)]
struct Shared {
    seen: Mutex<Vec<SeenPod>>,
    errors: Mutex<Vec<String>>,
}

impl Shared {
    fn error(&self, msg: String) {
        eprintln!("[fake-experiment] ERROR: {msg}");
        self.errors.lock().unwrap().push(msg);
    }
    fn set_state(&self, uid: &str, state: FakeState) {
        if let Some(p) = self.seen.lock().unwrap().iter_mut().find(|p| p.uid == uid) {
            p.state = state;
        }
    }
}

/// Handle of a running fake; dropping it (or [`FakeExperiment::stop`]) stops every pod's play.
pub struct FakeExperiment {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl FakeExperiment {
    /// Starts watching `namespace` (must be called inside a tokio runtime).
    pub fn start(client: Client, namespace: &str, behaviour: Behaviour) -> FakeExperiment {
        let shared = Arc::new(Shared::default());
        let ctx = Ctx {
            client,
            namespace: namespace.to_string(),
            behaviour: Arc::new(behaviour),
            shared: shared.clone(),
        };
        let task = tokio::spawn(watch_pods(ctx));
        FakeExperiment { shared, task }
    }

    /// The pods handled so far, in the order they were first seen Running.
    pub fn seen(&self) -> Vec<SeenPod> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// The handled pod named `name`, if any.
    pub fn pod(&self, name: &str) -> Option<SeenPod> {
        self.seen().into_iter().find(|p| p.name == name)
    }

    /// Everything that went wrong (missing env, API errors), in order.
    pub fn errors(&self) -> Vec<String> {
        self.shared.errors.lock().unwrap().clone()
    }

    /// Panics listing the errors, if any.
    pub fn assert_no_errors(&self) {
        let errors = self.errors();
        assert!(
            errors.is_empty(),
            "fake experiment errors:\n  {}",
            errors.join("\n  ")
        );
    }

    /// Stops watching and abandons pods in progress.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for FakeExperiment {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct Ctx {
    client: Client,
    namespace: String,
    behaviour: Arc<Behaviour>,
    shared: Arc<Shared>,
}

fn job_name_of(pod: &Pod) -> Option<String> {
    let labels = pod.metadata.labels.as_ref()?;
    labels
        .get("job-name")
        .or_else(|| labels.get("batch.kubernetes.io/job-name"))
        .cloned()
}

fn is_running(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

/// The supervisor: one watch over the namespace, one task per experiment pod (owned by a JoinSet,
/// so aborting this task aborts them all).
async fn watch_pods(ctx: Ctx) {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let stream = watcher(api, watcher::Config::default().labels("chaosUID")).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut pods: HashMap<String, watch::Sender<Pod>> = HashMap::new();
    let mut handled: HashSet<String> = HashSet::new();
    let mut tasks = JoinSet::new();
    while let Some(event) = stream.next().await {
        let (pod, deleted) = match event {
            Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => (p, false),
            Ok(watcher::Event::Delete(p)) => (p, true),
            Ok(_) => continue,
            Err(e) => {
                eprintln!("[fake-experiment] watch error (retrying): {e}");
                continue;
            }
        };
        let Some(uid) = pod.metadata.uid.clone() else {
            continue;
        };
        if let Some(tx) = pods.get(&uid) {
            let mut pod = pod;
            if deleted && pod.metadata.deletion_timestamp.is_none() {
                pod.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
            }
            let _ = tx.send(pod);
            if deleted {
                pods.remove(&uid);
            }
            continue;
        }
        if deleted
            || handled.contains(&uid)
            || job_name_of(&pod).is_none()
            || !is_running(&pod)
            || pod.metadata.deletion_timestamp.is_some()
        {
            continue;
        }
        handled.insert(uid.clone());
        let (tx, rx) = watch::channel(pod.clone());
        pods.insert(uid, tx);
        tasks.spawn(play_pod(ctx.clone(), pod, rx));
        // Reap finished per-pod tasks without blocking.
        while tasks.try_join_next().is_some() {}
    }
}

/// Everything the process reads at start-up.
struct Run {
    pod_name: String,
    pod_uid: String,
    engine: String,
    experiment: String,
    chaos_ns: String,
    chaos_uid: String,
    instance_id: String,
    labels: BTreeMap<String, String>,
}

async fn play_pod(ctx: Ctx, pod: Pod, rx: watch::Receiver<Pod>) {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    if let Err(e) = play(&ctx, pod, rx).await {
        ctx.shared.error(format!("pod {name}: {e:#}"));
        ctx.shared.set_state(&uid, FakeState::Broken);
    }
}

async fn play(ctx: &Ctx, pod: Pod, mut rx: watch::Receiver<Pod>) -> anyhow::Result<()> {
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let pod_uid = pod.metadata.uid.clone().unwrap_or_default();
    let job_name = job_name_of(&pod).unwrap_or_default();
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let env = match spec.containers.iter().find(|c| c.name == job_name) {
        Some(main) => resolve_env(ctx, &pod, main).await?,
        None => BTreeMap::new(),
    };
    let get = |k: &str| env.get(k).cloned().unwrap_or_default();
    let mut seen = SeenPod {
        name: pod_name.clone(),
        uid: pod_uid.clone(),
        job_name: job_name.clone(),
        experiment: get("EXPERIMENT_NAME"),
        engine: get("CHAOSENGINE"),
        chaos_namespace: get("CHAOS_NAMESPACE"),
        chaos_uid: get("CHAOS_UID"),
        instance_id: get("INSTANCE_ID"),
        result_name: String::new(),
        env: env.clone(),
        labels: labels.clone(),
        annotations: pod.metadata.annotations.clone().unwrap_or_default(),
        containers: spec.containers.iter().map(|c| c.name.clone()).collect(),
        service_account: spec.service_account_name.clone().unwrap_or_default(),
        state: FakeState::Running,
    };
    seen.result_name = result_name(
        &seen.engine,
        &seen.experiment,
        Some(seen.instance_id.as_str()),
    );

    let mut problems = Vec::new();
    if !seen.containers.contains(&job_name) {
        problems.push(format!(
            "no container named like the job-name label {job_name:?} (containers: {:?})",
            seen.containers
        ));
    }
    for key in [
        "CHAOSENGINE",
        "EXPERIMENT_NAME",
        "CHAOS_NAMESPACE",
        "CHAOS_UID",
    ] {
        if get(key).is_empty() {
            problems.push(format!(
                "env {key} missing or empty in container {job_name:?}"
            ));
        }
    }
    ctx.shared.seen.lock().unwrap().push(seen.clone());
    if !problems.is_empty() {
        annotate(
            ctx,
            &pod_name,
            &[("e2e.test/outcome", "fail"), ("e2e.test/exit-code", "1")],
        )
        .await?;
        anyhow::bail!("{}", problems.join("; "));
    }

    let behaviour = ctx.behaviour.for_experiment(&seen.experiment).clone();
    let run = Run {
        pod_name: pod_name.clone(),
        pod_uid: pod_uid.clone(),
        engine: seen.engine.clone(),
        experiment: seen.experiment.clone(),
        chaos_ns: seen.chaos_namespace.clone(),
        chaos_uid: seen.chaos_uid.clone(),
        instance_id: seen.instance_id.clone(),
        labels,
    };
    if behaviour.finish == FakeFinish::ExitWithoutResult {
        ctx.shared.set_state(&pod_uid, FakeState::Crashed);
        annotate(ctx, &pod_name, &[("e2e.test/outcome", "succeed")]).await?;
        return Ok(());
    }
    if let FakeFinish::CrashAtStart { exit_code } = behaviour.finish {
        return crash(ctx, &pod_uid, &pod_name, exit_code).await;
    }

    let reporter = Reporter::new(
        ctx.client.clone(),
        &run.pod_name,
        &run.engine,
        &run.experiment,
        &run.chaos_ns,
        &run.chaos_uid,
        &run.instance_id,
        run.labels.clone(),
    );
    let exp = run.experiment.clone();
    reporter
        .start_of_test(
            "AUT: Running",
            &format!("Injecting {exp} chaos on application pod"),
        )
        .await?;

    // Chaos duration, interrupted by an abort (the pod being deleted).
    let deleted = |p: &Pod| p.metadata.deletion_timestamp.is_some();
    let wait_abort = async {
        let _ = rx.wait_for(deleted).await;
    };
    let run_time = match behaviour.finish {
        FakeFinish::Never => Duration::MAX,
        _ => behaviour.run_time,
    };
    tokio::select! {
        _ = tokio::time::sleep(run_time.min(Duration::from_secs(86400 * 365))) => {}
        _ = wait_abort => return abort(ctx, &run, &reporter).await,
    }
    if rx.borrow().metadata.deletion_timestamp.is_some() {
        return abort(ctx, &run, &reporter).await;
    }

    if let FakeFinish::PodFails { exit_code } = behaviour.finish {
        return crash(ctx, &pod_uid, &pod_name, exit_code).await;
    }

    // End of test.
    let outcome = match &behaviour.verdict {
        FakeVerdict::Pass => Outcome::Pass,
        FakeVerdict::Fail => Outcome::Fail,
        FakeVerdict::Error { code, reason } => Outcome::Error {
            code: code.clone(),
            reason: reason.clone(),
        },
    };
    reporter.end_of_test(&outcome, "AUT: Running", &[]).await?;
    let finish = match behaviour.finish {
        FakeFinish::MainContainerOnly => "main-done",
        _ => "succeed",
    };
    ctx.shared
        .set_state(&pod_uid, FakeState::Finished(outcome.verdict().to_string()));
    annotate(ctx, &pod_name, &[("e2e.test/outcome", finish)]).await?;
    Ok(())
}

/// The SIGTERM handler of the experiment (docs/litmus-compatibility.md#abort).
async fn abort(ctx: &Ctx, run: &Run, reporter: &Reporter) -> anyhow::Result<()> {
    reporter.stopped().await?;
    ctx.shared.set_state(&run.pod_uid, FakeState::Aborted);
    Ok(())
}

/// The experiment process dies with `exit_code` before writing a verdict: the pod is told to fail
/// (kwok acts on the annotations) and the run is recorded as Crashed.
async fn crash(ctx: &Ctx, pod_uid: &str, pod_name: &str, exit_code: i32) -> anyhow::Result<()> {
    let code = exit_code.to_string();
    ctx.shared.set_state(pod_uid, FakeState::Crashed);
    annotate(
        ctx,
        pod_name,
        &[("e2e.test/outcome", "fail"), ("e2e.test/exit-code", &code)],
    )
    .await
}

async fn annotate(ctx: &Ctx, pod: &str, annotations: &[(&str, &str)]) -> anyhow::Result<()> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let map: BTreeMap<&str, &str> = annotations.iter().copied().collect();
    let patch = serde_json::json!({"metadata": {"annotations": map}});
    api.patch(pod, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// The main container's env as the kubelet would hand it to the process: plain values with
/// `$(VAR)` expansion, downward-API fields, ConfigMap and Secret keys.
async fn resolve_env(
    ctx: &Ctx,
    pod: &Pod,
    container: &k8s_openapi::api::core::v1::Container,
) -> anyhow::Result<BTreeMap<String, String>> {
    let ns = pod
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| ctx.namespace.clone());
    let mut out = BTreeMap::new();
    for var in container.env.iter().flatten() {
        let value = if let Some(value) = &var.value {
            expand(value, &out)
        } else if let Some(src) = &var.value_from {
            if let Some(f) = &src.field_ref {
                field_value(pod, &f.field_path)
            } else if let Some(r) = &src.config_map_key_ref {
                let cm = Api::<ConfigMap>::namespaced(ctx.client.clone(), &ns)
                    .get_opt(&r.name)
                    .await?;
                cm.and_then(|c| c.data)
                    .and_then(|d| d.get(&r.key).cloned())
                    .unwrap_or_default()
            } else if let Some(r) = &src.secret_key_ref {
                let s = Api::<Secret>::namespaced(ctx.client.clone(), &ns)
                    .get_opt(&r.name)
                    .await?;
                s.and_then(|s| s.data)
                    .and_then(|d| {
                        d.get(&r.key)
                            .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                    })
                    .unwrap_or_default()
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        out.insert(var.name.clone(), value);
    }
    Ok(out)
}

fn field_value(pod: &Pod, path: &str) -> String {
    let m = &pod.metadata;
    let from_map = |map: &Option<BTreeMap<String, String>>, key: &str| {
        map.as_ref()
            .and_then(|m| m.get(key).cloned())
            .unwrap_or_default()
    };
    let key_of = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|r| r.strip_suffix("']"))
            .map(str::to_string)
    };
    match path {
        "metadata.name" => m.name.clone().unwrap_or_default(),
        "metadata.namespace" => m.namespace.clone().unwrap_or_default(),
        "metadata.uid" => m.uid.clone().unwrap_or_default(),
        "spec.serviceAccountName" => pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "spec.nodeName" => pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default(),
        "status.podIP" => pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .unwrap_or_default(),
        "status.hostIP" => pod
            .status
            .as_ref()
            .and_then(|s| s.host_ip.clone())
            .unwrap_or_default(),
        _ => {
            if let Some(k) = key_of("metadata.labels['") {
                from_map(&m.labels, &k)
            } else if let Some(k) = key_of("metadata.annotations['") {
                from_map(&m.annotations, &k)
            } else {
                String::new()
            }
        }
    }
}

/// Kubernetes `$(VAR)` expansion against the variables defined before; `$$` escapes.
fn expand(value: &str, defined: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(t) = tail.strip_prefix("$$") {
            out.push('$');
            rest = t;
        } else if let Some(t) = tail.strip_prefix("$(")
            && let Some(end) = t.find(')')
            && let Some(val) = defined.get(&t[..end])
        {
            out.push_str(val);
            rest = &t[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}
