//! Integration-test harness for a real cluster (`scripts/cluster up`).
//!
//! Every test gets its own namespace from [`TestEnv::new`]; the namespace is deleted by
//! [`TestEnv::cleanup`] or, failing that, when the `TestEnv` is dropped (set `E2E_KEEP_NAMESPACE=1`
//! to keep it for debugging). With no cluster reachable, `TestEnv::new` panics with a message that
//! says how to start one: these tests never pass silently.
//!
//! Also here: [`wait_for`] (bounded polling with a "last seen" report), engine Event listing,
//! builders for sample Litmus objects ([`builders`]) and the fake litmus-go experiment
//! ([`fake_experiment`]).
#![allow(dead_code)]

pub mod audit;
pub mod builders;
pub mod chart;
pub mod conductor;
pub mod controller;
pub mod crd_swap;
pub mod fake_experiment;
pub mod forged;
pub mod latency;
pub mod litmus_protocol;
pub mod outage;
pub mod tools;
pub mod watch;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use chaos_conductor::api::{ChaosEngine, ChaosExperiment, ChaosResult};
use k8s_openapi::ByteString;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Pod, Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersionKind;
use kube::discovery::Scope;
use kube::{Client, Config, Resource};
use serde::de::DeserializeOwned;

#[allow(unused_imports)]
pub use builders::*;
#[allow(unused_imports)]
pub use fake_experiment::*;

/// Field manager used by [`TestEnv::apply_yaml`].
pub const FIELD_MANAGER: &str = "e2e-test";

/// The ServiceAccount [`setup`] creates for the sample engines.
pub const SAMPLE_SA: &str = "pod-delete-sa";

/// Polls the namespace's engines every 500 ms until `n` of them exist and every one is `done`, or
/// `within` has passed. Returns the last list read and the names of the engines in it that are not
/// `done`. A failed list is retried (the apiserver may be restarting); panics when none succeeded.
pub async fn settle_engines(
    env: &TestEnv,
    n: usize,
    within: Duration,
    done: impl Fn(&ChaosEngine) -> bool,
) -> (Vec<ChaosEngine>, Vec<String>) {
    let api = env.engines();
    let start = Instant::now();
    let mut engines: Option<Vec<ChaosEngine>> = None;
    let mut last_error = None;
    loop {
        match api.list(&ListParams::default()).await {
            Ok(list) => {
                let settled = list.items.len() == n && list.items.iter().all(&done);
                engines = Some(list.items);
                if settled {
                    break;
                }
            }
            Err(e) => last_error = Some(e),
        }
        if start.elapsed() > within {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let engines =
        engines.unwrap_or_else(|| panic!("no engine list within {within:?}: {last_error:?}"));
    let not_done = engines
        .iter()
        .filter(|e| !done(e))
        .map(kube::ResourceExt::name_any)
        .collect();
    (engines, not_done)
}

/// A test namespace with the [`SAMPLE_SA`] ServiceAccount and these sample ChaosExperiments.
pub async fn setup(test: &str, experiments: &[&str]) -> TestEnv {
    let env = TestEnv::new(test).await;
    env.create_service_account(SAMPLE_SA).await;
    for name in experiments {
        env.create(&builders::sample_experiment(name)).await;
    }
    env
}

/// Polls the engine until `done` holds (at most 90 s), returning it; the timeout shows its status.
pub async fn wait_engine(
    env: &TestEnv,
    name: &str,
    what: &str,
    done: impl Fn(&ChaosEngine) -> bool,
) -> ChaosEngine {
    wait_engine_within(env, name, what, Duration::from_secs(90), done).await
}

/// [`wait_engine`] with its own time limit.
pub async fn wait_engine_within(
    env: &TestEnv,
    name: &str,
    what: &str,
    timeout: Duration,
    done: impl Fn(&ChaosEngine) -> bool,
) -> ChaosEngine {
    let api = env.engines();
    env.wait_for(&format!("{name}: {what}"), timeout, async || {
        let e = api.get(name).await?;
        if done(&e) {
            Ok(e)
        } else {
            Err(anyhow!(
                "engineState {:?}, status {}",
                e.spec.engine_state,
                serde_json::to_string(&e.status)?
            ))
        }
    })
    .await
}

/// Shorthand for a number of seconds.
pub const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The kubeconfig the tests use: `$KUBECONFIG`, else `<repo>/target/cluster/kubeconfig`.
pub fn kubeconfig_path() -> PathBuf {
    match std::env::var_os("KUBECONFIG") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/target/cluster/kubeconfig"
        )),
    }
}

/// Loads the test kubeconfig and checks that the apiserver answers; the error names
/// `scripts/cluster up`.
pub async fn connect() -> anyhow::Result<(Client, Config)> {
    let path = kubeconfig_path();
    let hint = "start the test cluster with `scripts/cluster up` (or point KUBECONFIG at a cluster; `cargo fast` runs the tests that need none)";
    let kubeconfig = Kubeconfig::read_from(&path).map_err(|e| {
        anyhow!(
            "no test cluster: cannot read kubeconfig {}: {e}; {hint}",
            path.display()
        )
    })?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| anyhow!("bad kubeconfig {}: {e}; {hint}", path.display()))?;
    let url = config.cluster_url.clone();
    let client = Client::try_from(config.clone()).context("building kube client")?;
    match tokio::time::timeout(secs(10), client.apiserver_version()).await {
        Ok(Ok(_)) => Ok((client, config)),
        Ok(Err(e)) => Err(anyhow!(
            "no test cluster: the apiserver at {url} (kubeconfig {}) does not answer: {e}; {hint}",
            path.display()
        )),
        Err(_) => Err(anyhow!(
            "no test cluster: the apiserver at {url} (kubeconfig {}) did not answer within 10 s; {hint}",
            path.display()
        )),
    }
}

/// A random `[a-z0-9]` string of length `n` (std-only randomness: a randomly keyed hasher).
pub fn random_suffix(n: usize) -> String {
    use std::hash::{BuildHasher, Hasher};
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(n);
    let mut counter = 0u64;
    while out.len() < n {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(counter);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        let mut v = h.finish();
        for _ in 0..8 {
            if out.len() == n {
                break;
            }
            out.push(ALPHABET[(v % 36) as usize] as char);
            v /= 36;
        }
        counter += 1;
    }
    out
}

/// A DNS-1123 label (≤ 63 chars) made from `base` plus `-<6 random chars>`.
pub fn unique_name(base: &str) -> String {
    let mut cleaned = String::new();
    for c in base.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            cleaned.push(c);
        } else if !cleaned.is_empty() && !cleaned.ends_with('-') {
            cleaned.push('-');
        }
    }
    cleaned.truncate(63 - 7);
    let cleaned = cleaned.trim_end_matches('-');
    let cleaned = if cleaned.is_empty() { "test" } else { cleaned };
    format!("{cleaned}-{}", random_suffix(6))
}

/// Polls `check` every 150 ms until it returns `Ok`, for at most `timeout`. An `Err` means "not yet"
/// and says what was seen; the last one is part of the timeout error.
pub async fn try_wait_for<T>(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let start = Instant::now();
    loop {
        let last = match check().await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if start.elapsed() >= timeout {
            return Err(anyhow!(
                "timed out after {:.1?} waiting for {what}; last seen: {last:#}",
                start.elapsed()
            ));
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// [`try_wait_for`] that panics on timeout.
pub async fn wait_for<T>(
    what: &str,
    timeout: Duration,
    check: impl AsyncFnMut() -> anyhow::Result<T>,
) -> T {
    match try_wait_for(what, timeout, check).await {
        Ok(v) => v,
        Err(e) => panic!("{e:#}"),
    }
}

/// One Event, flattened to what tests assert on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventInfo {
    /// `metadata.name`.
    pub name: String,
    pub reason: String,
    /// `Normal` or `Warning`.
    pub type_: String,
    pub message: String,
    /// `source.component`.
    pub component: String,
    pub count: i32,
    /// `involvedObject.kind`.
    pub kind: String,
    /// `involvedObject.uid`.
    pub uid: String,
}

impl From<&Event> for EventInfo {
    fn from(e: &Event) -> Self {
        EventInfo {
            name: e.metadata.name.clone().unwrap_or_default(),
            reason: e.reason.clone().unwrap_or_default(),
            type_: e.type_.clone().unwrap_or_default(),
            message: e.message.clone().unwrap_or_default(),
            component: e
                .source
                .as_ref()
                .and_then(|s| s.component.clone())
                .unwrap_or_default(),
            count: e.count.unwrap_or_default(),
            kind: e.involved_object.kind.clone().unwrap_or_default(),
            uid: e.involved_object.uid.clone().unwrap_or_default(),
        }
    }
}

/// For [`TestEnv::wait_event`]: all the Events, once every reason in `want` is among them.
pub fn all_reasons<'a>(
    want: &'a [&'a str],
) -> impl Fn(&[EventInfo]) -> Option<Vec<EventInfo>> + 'a {
    move |events| {
        want.iter()
            .all(|w| events.iter().any(|e| e.reason == *w))
            .then(|| events.to_vec())
    }
}

/// For [`TestEnv::wait_event`]: the first (oldest) Event with this reason.
pub fn first_with_reason(reason: &str) -> impl Fn(&[EventInfo]) -> Option<EventInfo> + '_ {
    move |events| events.iter().find(|e| e.reason == reason).cloned()
}

/// A test's namespace on the shared cluster, plus helpers scoped to it.
pub struct TestEnv {
    client: Client,
    config: Config,
    ns: String,
    cleaned: bool,
}

impl TestEnv {
    /// Connects (panicking with a `scripts/cluster up` hint if no cluster answers) and creates a
    /// fresh namespace named after `test_name`.
    pub async fn new(test_name: &str) -> TestEnv {
        match Self::try_new(test_name).await {
            Ok(env) => env,
            Err(e) => panic!("{e:#}"),
        }
    }

    /// [`TestEnv::new`] returning the error instead of panicking.
    pub async fn try_new(test_name: &str) -> anyhow::Result<TestEnv> {
        let (client, config) = connect().await?;
        let ns = unique_name(test_name);
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(ns.clone()),
                labels: Some(BTreeMap::from([(
                    "e2e.test/test".into(),
                    label_value(test_name),
                )])),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .with_context(|| format!("creating test namespace {ns}"))?;
        eprintln!("[e2e] test {test_name}: namespace {ns}");
        let env = TestEnv {
            client,
            config,
            ns,
            cleaned: false,
        };
        // Pods are rejected until the service-account controller made `default`; wait for it so
        // that the first Job does not sit in the Job controller's back-off.
        let sas = env.api::<ServiceAccount>();
        let ready = try_wait_for("service account default", secs(30), async || {
            sas.get_opt("default")
                .await?
                .map(|_| ())
                .ok_or_else(|| anyhow!("not created yet"))
        })
        .await;
        if let Err(e) = ready {
            eprintln!("[e2e] warning: {e:#}");
        }
        Ok(env)
    }

    /// The connection settings of [`TestEnv::client`] (e.g. to build a client through a proxy).
    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The test's namespace.
    pub fn ns(&self) -> &str {
        &self.ns
    }

    /// A typed Api in the test's namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub fn engines(&self) -> Api<ChaosEngine> {
        self.api()
    }
    pub fn experiments(&self) -> Api<ChaosExperiment> {
        self.api()
    }
    pub fn results(&self) -> Api<ChaosResult> {
        self.api()
    }
    pub fn jobs(&self) -> Api<Job> {
        self.api()
    }
    pub fn pods(&self) -> Api<Pod> {
        self.api()
    }
    pub fn events(&self) -> Api<Event> {
        self.api()
    }
    pub fn configmaps(&self) -> Api<ConfigMap> {
        self.api()
    }
    pub fn secrets(&self) -> Api<Secret> {
        self.api()
    }

    /// Creates `obj` in the test namespace (namespace forced), returning the stored object.
    pub async fn create<K>(&self, obj: &K) -> K
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + serde::Serialize
            + Debug,
    {
        let mut obj = obj.clone();
        obj.meta_mut().namespace = Some(self.ns.clone());
        let name = obj.meta().name.clone().unwrap_or_default();
        self.api::<K>()
            .create(&PostParams::default(), &obj)
            .await
            .unwrap_or_else(|e| panic!("creating {} {name}: {e}", K::kind(&())))
    }

    /// Server-side applies every document of a multi-document YAML stream (field manager
    /// [`FIELD_MANAGER`], forced). Namespaced objects without a namespace go to the test namespace.
    pub async fn apply_yaml(&self, yaml: &str) -> anyhow::Result<Vec<DynamicObject>> {
        self.apply_yaml_with(yaml, Some(PatchParams::apply(FIELD_MANAGER).force()))
            .await
    }

    /// [`TestEnv::apply_yaml`] the way `kubectl apply --validate=warn` does: fields outside the
    /// schema (the hub's top-level `description` in fault.yaml) are pruned with a warning instead
    /// of refused, as with Litmus's own CRDs. Server-side apply cannot do that (it refuses to
    /// build a typed patch with undeclared fields), so this creates, or merge-patches an object
    /// that exists, with the API server's default field validation (Warn).
    pub async fn apply_yaml_warn(&self, yaml: &str) -> anyhow::Result<Vec<DynamicObject>> {
        self.apply_yaml_with(yaml, None).await
    }

    /// `pp`: server-side apply with these params; `None`: create, else merge patch.
    async fn apply_yaml_with(
        &self,
        yaml: &str,
        pp: Option<PatchParams>,
    ) -> anyhow::Result<Vec<DynamicObject>> {
        use serde::Deserialize;
        let mut applied = Vec::new();
        for doc in serde_norway::Deserializer::from_str(yaml) {
            let value = serde_json::Value::deserialize(doc).context("parsing YAML document")?;
            if value.is_null() {
                continue;
            }
            let mut obj: DynamicObject = serde_json::from_value(value)
                .context("YAML document is not a Kubernetes object")?;
            let types = obj
                .types
                .clone()
                .ok_or_else(|| anyhow!("document without apiVersion/kind"))?;
            let gvk = GroupVersionKind::try_from(&types)?;
            let name = obj
                .metadata
                .name
                .clone()
                .ok_or_else(|| anyhow!("{} without a name", types.kind))?;
            let (ar, caps) = kube::discovery::pinned_kind(&self.client, &gvk)
                .await
                .with_context(|| format!("discovering {}", types.kind))?;
            let api: Api<DynamicObject> = if caps.scope == Scope::Namespaced {
                let ns = obj
                    .metadata
                    .namespace
                    .get_or_insert_with(|| self.ns.clone())
                    .clone();
                Api::namespaced_with(self.client.clone(), &ns, &ar)
            } else {
                Api::all_with(self.client.clone(), &ar)
            };
            let out = match &pp {
                Some(pp) => api.patch(&name, pp, &Patch::Apply(&obj)).await,
                None => match api.create(&PostParams::default(), &obj).await {
                    Err(kube::Error::Api(e)) if e.code == 409 => {
                        api.patch(&name, &PatchParams::default(), &Patch::Merge(&obj))
                            .await
                    }
                    other => other,
                },
            }
            .with_context(|| format!("applying {} {name}", types.kind))?;
            applied.push(out);
        }
        Ok(applied)
    }

    /// Creates `n` engines `<prefix>-0` … `<prefix>-<n-1>`, each one pod-delete run with the
    /// sample ServiceAccount and jobCleanUpPolicy `delete`: the load that the apiserver-restart and
    /// SIGKILL tests follow to completion.
    pub async fn create_pod_delete_runs(&self, prefix: &str, n: usize) {
        for i in 0..n {
            self.create(
                &builders::EngineBuilder::new(&format!("{prefix}-{i}"))
                    .service_account(SAMPLE_SA)
                    .experiment("pod-delete")
                    .job_cleanup_policy(Some("delete"))
                    .build(),
            )
            .await;
        }
    }

    pub async fn create_service_account(&self, name: &str) -> ServiceAccount {
        let sa = ServiceAccount {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        self.create(&sa).await
    }

    pub async fn create_configmap(&self, name: &str, data: &[(&str, &str)]) -> ConfigMap {
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        };
        self.create(&cm).await
    }

    pub async fn create_secret(&self, name: &str, data: &[(&str, &str)]) -> Secret {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Default::default()
        };
        self.create(&secret).await
    }

    /// Polls `check` (see [`wait_for`]); panics on timeout.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        check: impl AsyncFnMut() -> anyhow::Result<T>,
    ) -> T {
        wait_for(&format!("{what} (namespace {})", self.ns), timeout, check).await
    }

    /// Events in the test namespace whose `involvedObject.name` is `engine_name`, oldest first.
    pub async fn engine_events(&self, engine_name: &str) -> Vec<EventInfo> {
        self.events_for(engine_name).await
    }

    /// Events in the test namespace whose `involvedObject.name` is `name`, oldest first.
    pub async fn events_for(&self, name: &str) -> Vec<EventInfo> {
        let lp = ListParams::default().fields(&format!("involvedObject.name={name}"));
        let mut events = self
            .events()
            .list(&lp)
            .await
            .unwrap_or_else(|e| panic!("listing events of {name}: {e}"))
            .items;
        events.sort_by(|a, b| {
            let key = |e: &Event| {
                (
                    e.first_timestamp.clone(),
                    e.metadata.creation_timestamp.clone(),
                )
            };
            key(a).cmp(&key(b))
        });
        events.iter().map(EventInfo::from).collect()
    }

    /// Waits (bounded by `timeout`) until `pick` finds what it looks for among the Events of
    /// `name` (see [`Self::events_for`]; Events follow the status that records them by a moment,
    /// so a test that saw the status may look too early). `Err` on timeout, with the reasons seen.
    pub async fn try_wait_event<T>(
        &self,
        name: &str,
        pick: impl Fn(&[EventInfo]) -> Option<T>,
        timeout: Duration,
    ) -> anyhow::Result<T> {
        let what = format!("the Events of {name} (namespace {})", self.ns);
        try_wait_for(&what, timeout, async || {
            let events = self.events_for(name).await;
            pick(&events).ok_or_else(|| {
                let reasons: Vec<&str> = events.iter().map(|e| e.reason.as_str()).collect();
                anyhow!("reasons {reasons:?}")
            })
        })
        .await
    }

    /// [`Self::try_wait_event`] that panics on timeout.
    pub async fn wait_event<T>(
        &self,
        name: &str,
        pick: impl Fn(&[EventInfo]) -> Option<T>,
        timeout: Duration,
    ) -> T {
        match self.try_wait_event(name, pick, timeout).await {
            Ok(v) => v,
            Err(e) => panic!("{e:#}"),
        }
    }

    /// The pods of a Job (by the `job-name` label).
    pub async fn job_pods(&self, job_name: &str) -> Vec<Pod> {
        let lp = ListParams::default().labels(&format!("job-name={job_name}"));
        self.pods()
            .list(&lp)
            .await
            .unwrap_or_else(|e| panic!("listing pods of {job_name}: {e}"))
            .items
    }

    /// Sets annotations on a pod (merge patch): how a test drives kwok.
    pub async fn annotate_pod(&self, pod: &str, annotations: &[(&str, &str)]) {
        let map: BTreeMap<&str, &str> = annotations.iter().copied().collect();
        let patch = serde_json::json!({"metadata": {"annotations": map}});
        self.pods()
            .patch(pod, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap_or_else(|e| panic!("annotating pod {pod}: {e}"));
    }

    /// Deletes the namespace (not waiting for it to disappear). Idempotent.
    pub async fn cleanup(mut self) {
        self.cleaned = true;
        if keep_namespace() {
            eprintln!("[e2e] keeping namespace {} (E2E_KEEP_NAMESPACE)", self.ns);
            return;
        }
        if let Err(e) = delete_namespace(&self.client, &self.ns).await {
            eprintln!("[e2e] warning: deleting namespace {}: {e}", self.ns);
            return;
        }
        // Wait for it to go while the test's controller still runs: engines keep the finalizer
        // until the controller has removed their chaos, so a namespace left behind by a stopped
        // controller would stay Terminating.
        // Wait only until its ChaosEngines are gone (the rest of the namespace goes without us).
        let ns = self.ns.clone();
        let engines: Api<ChaosEngine> = Api::namespaced(self.client.clone(), &ns);
        let wait = async |limit: u64| {
            try_wait_for(
                &format!("the ChaosEngines of namespace {ns} to be deleted"),
                Duration::from_secs(limit),
                // Metadata only: a typed LIST fails on any malformed engine (tests/litmus_crds.rs
                // makes one on purpose), and a failed LIST must not count as "engines gone".
                async || match engines.list_metadata(&ListParams::default()).await {
                    Ok(list) if !list.items.is_empty() => {
                        Err(anyhow!("{} engines left", list.items.len()))
                    }
                    Ok(_) => Ok(()),
                    // No ChaosEngine resource at all (a test swapped the CRD out): none left.
                    Err(kube::Error::Api(ae)) if ae.code == 404 => Ok(()),
                    Err(e) => Err(anyhow!("listing engines: {e}")),
                },
            )
            .await
        };
        if wait(30).await.is_ok() {
            return;
        }
        // No controller left to remove the finalizers (the test stopped it, or it was restricted):
        // strip them so the shared cluster does not fill with Terminating namespaces.
        eprintln!("[e2e] warning: namespace {ns} still has engines; removing their finalizers");
        if let Ok(list) = engines.list_metadata(&ListParams::default()).await {
            for e in list.items {
                let name = e.metadata.name.clone().unwrap_or_default();
                let patch = serde_json::json!({"metadata": {"finalizers": null}});
                let _ = engines
                    .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                    .await;
            }
        }
        if let Err(e) = wait(30).await {
            eprintln!("[e2e] warning: {e:#}");
        }
    }
}

impl Drop for TestEnv {
    /// Best effort: delete the namespace from a helper thread with its own runtime and client (the
    /// test's runtime may be a current-thread one that is blocked in this very drop).
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        if keep_namespace() {
            eprintln!("[e2e] keeping namespace {} (E2E_KEEP_NAMESPACE)", self.ns);
            return;
        }
        let config = self.config.clone();
        let ns = self.ns.clone();
        let handle = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let client = Client::try_from(config).ok()?;
                tokio::time::timeout(secs(10), delete_namespace(&client, &ns))
                    .await
                    .ok()?
                    .ok()
            })
        });
        if handle.join().ok().flatten().is_none() {
            eprintln!("[e2e] warning: could not delete namespace {}", self.ns);
        }
    }
}

fn keep_namespace() -> bool {
    std::env::var("E2E_KEEP_NAMESPACE").is_ok_and(|v| !v.is_empty() && v != "0")
}

async fn delete_namespace(client: &Client, ns: &str) -> kube::Result<()> {
    match Api::<Namespace>::all(client.clone())
        .delete(ns, &DeleteParams::background())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// `value` cut down to a valid label value (≤ 63 chars of `[A-Za-z0-9._-]`, alphanumeric ends).
pub fn label_value(value: &str) -> String {
    let mut v: String = value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    while v.ends_with(|c: char| !c.is_ascii_alphanumeric()) {
        v.pop();
    }
    while v.starts_with(|c: char| !c.is_ascii_alphanumeric()) {
        v.remove(0);
    }
    v
}

/// The phase of a pod (`""` when unset).
pub fn pod_phase(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default()
}

/// Whether a Job has the condition `type_` with status True (e.g. `Complete`, `Failed`).
pub fn job_condition(job: &Job, type_: &str) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == type_ && c.status == "True"))
}

/// A one-line view of a Job's status for "last seen" messages.
pub fn job_summary(job: &Job) -> String {
    let Some(s) = job.status.as_ref() else {
        return "no status".into();
    };
    let conds: Vec<String> = s
        .conditions
        .iter()
        .flatten()
        .map(|c| format!("{}={}", c.type_, c.status))
        .collect();
    format!(
        "active={} succeeded={} failed={} conditions=[{}]",
        s.active.unwrap_or(0),
        s.succeeded.unwrap_or(0),
        s.failed.unwrap_or(0),
        conds.join(",")
    )
}
