//! The reconcile loop: one kube-runtime Controller over ChaosEngines, fed by label-filtered watches
//! of the chaos Jobs, pods and ChaosResults.
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::core::DeserializeGuard;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use tracing::{Instrument, info, info_span, warn};

use super::apply::apply;
use super::context::{Caches, Context, Settings, StatusMode};
use super::error::{Error, KubeContext};
use super::events;
use super::observe::observe;
use crate::api::{ChaosEngine, ChaosResult};
use crate::engine::job::CHAOS_UID_LABEL;
use crate::engine::{EventSpec, EventType};
use crate::metrics::{Metrics, Sources};
use crate::server::Health;

/// Detects whether the installed ChaosEngine CRD has the status subresource (ours does; Litmus's
/// does not), so the controller also runs on a cluster that still has Litmus's CRDs.
pub async fn detect_status_mode(client: &Client) -> Result<StatusMode, Error> {
    let resources = client
        .list_api_group_resources(crate::api::API_VERSION)
        .await
        .during("discovering the litmuschaos.io API")?;
    let has_status = resources
        .resources
        .iter()
        .any(|r| r.name == "chaosengines/status");
    Ok(if has_status {
        StatusMode::Subresource
    } else {
        StatusMode::MainResource
    })
}

/// The namespaced API of `K`, or all namespaces when `ns` is `None`.
pub(crate) fn api_for<K>(client: &Client, ns: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Runs the controller until `shutdown` resolves. Returns once in-flight reconciles finished.
pub async fn run(
    client: Client,
    settings: Settings,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    let status_mode = detect_status_mode(&client).await?;
    info!(?status_mode, namespace = ?settings.watch_namespace, "starting the ChaosEngine controller");
    let ns = settings.watch_namespace.as_deref();
    // Only chaos-side objects are cached (label chaosUID), never every pod of the cluster.
    let chaos = watcher::Config::default().labels(CHAOS_UID_LABEL);

    // Readiness is tracked from the streams themselves: kube-runtime's `Store::wait_until_ready`
    // wakes only one of several concurrent waiters, so it must not be awaited from many tasks.
    let (synced_tx, synced_rx) = tokio::sync::watch::channel(0u8);
    let synced_tx = Arc::new(synced_tx);
    // The caches keep only what the decisions read (memory grows with the number of engines):
    // Jobs are only looked up by name and owner; pods by labels and status.
    let (jobs, job_stream) = cached(
        api_for::<Job>(&client, ns),
        chaos.clone(),
        JOBS_SYNCED,
        &synced_tx,
        |job: &mut Job| {
            job.managed_fields_mut().clear();
            job.spec = None;
        },
    );
    let (pods, pod_stream) = cached(
        api_for::<Pod>(&client, ns),
        chaos.clone(),
        PODS_SYNCED,
        &synced_tx,
        |pod: &mut Pod| {
            pod.managed_fields_mut().clear();
            pod.annotations_mut().clear();
            pod.spec = None;
        },
    );
    // litmus-go copies the pod's labels (chaosUID included) onto every ChaosResult it writes.
    let (results, result_stream) = cached(
        api_for::<ChaosResult>(&client, ns),
        chaos.clone(),
        RESULTS_SYNCED,
        &synced_tx,
        |r: &mut ChaosResult| r.managed_fields_mut().clear(),
    );
    let engine_writer = reflector::store::Writer::<DeserializeGuard<ChaosEngine>>::default();
    let engine_store = engine_writer.as_reader();
    let engine_tx = synced_tx.clone();
    let engine_stream = reflector::reflector(
        engine_writer,
        watcher(
            api_for::<DeserializeGuard<ChaosEngine>>(&client, ns),
            watcher::Config::default(),
        )
        .modify(|guard: &mut DeserializeGuard<ChaosEngine>| {
            if let Ok(engine) = guard.0.as_mut() {
                engine.managed_fields_mut().clear();
                engine.annotations_mut().remove(LAST_APPLIED);
            }
        }),
    )
    .default_backoff()
    .inspect(move |ev| mark_synced(ev, ENGINES_SYNCED, &engine_tx))
    .touched_objects();

    // The kill switch: the ConfigMap, and Namespace annotations when watching all namespaces.
    let namespace_halt = settings.halt_namespace_annotations;
    let halt = Arc::new(super::halt::HaltState::new(
        &metrics.registry,
        settings.halt_switch.is_some(),
        namespace_halt,
    )?);
    super::halt::spawn_watches(&client, &halt, settings.halt_switch.clone(), namespace_halt);
    let halt_changes = halt.changes();
    let ctx = Arc::new(Context {
        client: client.clone(),
        settings: settings.clone(),
        status_mode,
        caches: Caches {
            jobs,
            pods,
            results,
            synced: synced_rx.clone(),
        },
        by_uid: Mutex::new(HashMap::new()),
        written: Mutex::new(HashMap::new()),
        failures: Mutex::new(HashMap::new()),
        rejected: Mutex::new(HashMap::new()),
        outbox: Mutex::new(HashMap::new()),
        metrics,
        halt,
    });

    let by_uid_pods = ctx.clone();
    let by_uid_results = ctx.clone();
    ctx.metrics.set_sources(Sources {
        engines: engine_store.clone(),
        results: ctx.caches.results.clone(),
    });
    let mut all_synced = synced_rx;
    tokio::spawn(async move {
        if all_synced.wait_for(|v| *v == ALL_SYNCED).await.is_ok() {
            health
                .synced
                .store(true, std::sync::atomic::Ordering::Relaxed);
            info!("caches synced");
        }
    });
    // The shutdown signal is shared: the controller drains on it, and a bounded wait after it
    // returns even if a reconcile cannot finish (the process must not outlive SIGTERM by much).
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let controller = Controller::for_stream(engine_stream, engine_store);
    let running = controller
        .with_config(ControllerConfig::default().concurrency(settings.concurrency))
        .owns_stream(job_stream)
        .watches_stream(pod_stream, move |pod: Pod| {
            engine_of(&by_uid_pods, pod.labels().get(CHAOS_UID_LABEL))
        })
        .watches_stream(result_stream, move |r: ChaosResult| {
            engine_of(&by_uid_results, r.labels().get(CHAOS_UID_LABEL))
        })
        .reconcile_all_on(halt_changes)
        .graceful_shutdown_on(stop_requested(stop_rx.clone()))
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()));
    tokio::select! {
        () = running => {}
        () = async {
            stop_requested(stop_rx).await;
            tokio::time::sleep(SHUTDOWN_DRAIN).await;
        } => warn!("in-flight reconciles did not finish within {SHUTDOWN_DRAIN:?} of the shutdown signal; stopping anyway"),
    }
    info!("controller stopped");
    Ok(())
}

/// kubectl's copy of the whole object in an annotation: large and never read here.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Longest a reconcile waits for the child caches' first list.
const CACHE_SYNC_WAIT: Duration = Duration::from_secs(30);
/// Longest the controller drains in-flight reconciles after the shutdown signal.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(15);

async fn stop_requested(mut rx: tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Whether the cached engine is older than our last write to it. resourceVersions are opaque in
/// general but etcd revisions in practice; when either does not parse, the cache is trusted.
fn behind_our_write(ctx: &Context, engine: &ChaosEngine) -> bool {
    let key = ObjectRef::from_obj(engine);
    let Ok(mut written) = ctx.written.lock() else {
        return false;
    };
    let Some(ours) = written.get(&key) else {
        return false;
    };
    let seen = engine
        .metadata
        .resource_version
        .as_deref()
        .and_then(|v| v.parse::<u64>().ok());
    match (seen, ours.parse::<u64>().ok()) {
        (Some(seen), Some(ours)) if seen < ours => true,
        _ => {
            written.remove(&key);
            false
        }
    }
}

const ENGINES_SYNCED: u8 = 1;
const JOBS_SYNCED: u8 = 2;
const PODS_SYNCED: u8 = 4;
const RESULTS_SYNCED: u8 = 8;
const CHILDREN_SYNCED: u8 = JOBS_SYNCED | PODS_SYNCED | RESULTS_SYNCED;
const ALL_SYNCED: u8 = ENGINES_SYNCED | CHILDREN_SYNCED;

fn mark_synced<K>(
    ev: &Result<watcher::Event<K>, watcher::Error>,
    bit: u8,
    tx: &tokio::sync::watch::Sender<u8>,
) {
    if let Ok(watcher::Event::InitDone) = ev {
        tx.send_modify(|v| *v |= bit);
    }
}

/// A cache of `K` fed by a watch, and the stream of touched objects that drives reconciles.
fn cached<K>(
    api: Api<K>,
    config: watcher::Config,
    bit: u8,
    synced: &Arc<tokio::sync::watch::Sender<u8>>,
    trim: impl FnMut(&mut K) + Send + 'static,
) -> (
    reflector::Store<K>,
    impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store::<K>();
    let tx = synced.clone();
    let stream = reflector::reflector(writer, watcher(api, config).modify(trim))
        .default_backoff()
        .inspect(move |ev| mark_synced(ev, bit, &tx))
        .touched_objects();
    (store, stream)
}

fn engine_of(
    ctx: &Context,
    uid: Option<&String>,
) -> Option<ObjectRef<DeserializeGuard<ChaosEngine>>> {
    let uid = uid?;
    let found = ctx.by_uid.lock().ok()?.get(uid).cloned()?;
    let mut r = ObjectRef::new(&found.name);
    if let Some(ns) = &found.namespace {
        r = r.within(ns);
    }
    Some(r)
}

/// The reference of a watched object, whether or not it deserialized.
pub(crate) fn guard_ref<K>(obj: &DeserializeGuard<K>) -> ObjectRef<K>
where
    K: Resource<DynamicType = ()>,
{
    let meta = match &obj.0 {
        Ok(o) => o.meta(),
        Err(invalid) => &invalid.metadata,
    };
    let mut r = ObjectRef::new(meta.name.as_deref().unwrap_or_default());
    if let Some(ns) = &meta.namespace {
        r = r.within(ns);
    }
    r
}

async fn reconcile(
    obj: Arc<DeserializeGuard<ChaosEngine>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let key = guard_ref(&obj);
    let engine = match &obj.0 {
        Ok(engine) => engine,
        Err(invalid) => return reject_malformed(&ctx, invalid).await,
    };
    let span = info_span!(
        "reconcile",
        namespace = %engine.namespace().unwrap_or_default(),
        name = %engine.name_any(),
        chaosUID = %engine.uid().unwrap_or_default()
    );
    async move {
        let in_flight = ctx.metrics.in_flight_guard();
        let started = Instant::now();
        let outcome = reconcile_engine(&ctx, engine).await;
        drop(in_flight);
        ctx.metrics.reconciles.inc();
        ctx.metrics
            .reconcile_duration
            .observe(started.elapsed().as_secs_f64());
        if outcome.is_ok() {
            if let Ok(mut f) = ctx.failures.lock() {
                f.remove(&key);
            }
            ctx.metrics.last_success.set(Timestamp::now().as_second());
        }
        outcome
    }
    .instrument(span)
    .await
}

async fn reconcile_engine(ctx: &Arc<Context>, engine: &ChaosEngine) -> Result<Action, Error> {
    let uid = engine.uid().unwrap_or_default();
    if let Ok(mut index) = ctx.by_uid.lock() {
        if engine.metadata.deletion_timestamp.is_some() && engine.finalizers().is_empty() {
            index.remove(&uid);
            if let Ok(mut written) = ctx.written.lock() {
                written.remove(&ObjectRef::from_obj(engine));
            }
        } else {
            index.insert(uid.clone(), ObjectRef::from_obj(engine));
        }
    }
    // A pass on half-filled caches would call a running Job "vanished": wait for the first sync.
    // Bounded, so a cache that cannot sync (a forbidden list) ends in an error and a backoff, not a
    // reconcile that blocks graceful shutdown forever.
    let mut synced = ctx.caches.synced.clone();
    tokio::time::timeout(
        CACHE_SYNC_WAIT,
        synced.wait_for(|v| v & CHILDREN_SYNCED == CHILDREN_SYNCED),
    )
    .await
    .map_err(|_| {
        Error::CacheNotReady("watches of Jobs, Pods and ChaosResults have not listed yet".into())
    })?
    .map_err(|e| Error::CacheNotReady(e.to_string()))?;
    if behind_our_write(ctx, engine) {
        // The watch has not delivered our last write yet: planning on this version would redo
        // work and fail the write precondition. The watch event of that write requeues us anyway.
        return Ok(Action::requeue(Duration::from_millis(100)));
    }
    if !ctx.halt.wait_known(CACHE_SYNC_WAIT).await {
        return Err(Error::CacheNotReady(
            "the kill switch (ConfigMap / Namespace annotations) has not been read yet".into(),
        ));
    }
    let now = Timestamp::now();
    let observed = observe(ctx, engine, now).await?;
    let decision = super::halt::plan_gated(&ctx.halt, engine, &observed, now, &ctx.settings.plan);
    // A run that would start is re-checked against the engine's recorded author (README "Security").
    let decision =
        super::author::check_launch(&ctx.client, engine, &observed, decision, now).await?;
    let replan = apply(ctx, engine, &decision).await?;
    Ok(match decision.requeue_after {
        // The API server refused a Job: plan again at once to record it (see Context::rejected).
        _ if replan => Action::requeue(Duration::from_millis(50)),
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    })
}

/// An engine that does not deserialize gets a Warning Event and is left alone; the others go on.
async fn reject_malformed(
    ctx: &Context,
    invalid: &kube::core::error_boundary::InvalidObject,
) -> Result<Action, Error> {
    // The chart's policy may have put our finalizer on it (src/controller/malformed.rs).
    if super::malformed::release_unlaunched(ctx, &invalid.metadata).await? {
        return Ok(Action::await_change());
    }
    warn!(name = ?invalid.metadata.name, error = %invalid.error, "malformed ChaosEngine");
    let mut engine = ChaosEngine::new(
        invalid.metadata.name.as_deref().unwrap_or_default(),
        Default::default(),
    );
    engine.metadata = invalid.metadata.clone();
    let ev = EventSpec::operator(
        EventType::Warning,
        "ChaosEngineMalformed",
        format!("ChaosEngine cannot be read: {}", invalid.error),
    );
    let api: Api<Event> = Api::namespaced(
        ctx.client.clone(),
        invalid.metadata.namespace.as_deref().unwrap_or("default"),
    );
    events::emit(&api, &engine, &ev).await?;
    Ok(Action::await_change())
}

fn error_policy(
    obj: Arc<DeserializeGuard<ChaosEngine>>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    let key = guard_ref(&obj);
    ctx.metrics
        .reconcile_errors
        .with_label_values(&[error.category()])
        .inc();
    let failures = ctx
        .failures
        .lock()
        .map(|mut f| {
            let n = f.entry(key.clone()).or_insert(0);
            *n += 1;
            *n
        })
        .unwrap_or(1);
    let delay = if error.category() == "conflict" {
        Duration::from_millis(100)
    } else {
        ctx.backoff(failures)
    };
    warn!(engine = %key, %error, failures, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}
