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
use crate::engine::{EventSpec, EventType, plan};
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

fn api_for<K>(client: &Client, ns: Option<&str>) -> Api<K>
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

    let (jobs, jobs_writer) = reflector::store::<Job>();
    let job_stream = reflector::reflector(
        jobs_writer,
        watcher(api_for::<Job>(&client, ns), chaos.clone()),
    )
    .default_backoff()
    .touched_objects();
    let (pods, pods_writer) = reflector::store::<Pod>();
    let pod_stream = reflector::reflector(
        pods_writer,
        watcher(api_for::<Pod>(&client, ns), chaos.clone()),
    )
    .default_backoff()
    .touched_objects();
    let (results, results_writer) = reflector::store::<ChaosResult>();
    let result_stream = reflector::reflector(
        results_writer,
        watcher(
            api_for::<ChaosResult>(&client, ns),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .touched_objects();

    let ctx = Arc::new(Context {
        client: client.clone(),
        settings: settings.clone(),
        status_mode,
        caches: Caches {
            jobs,
            pods,
            results,
        },
        by_uid: Mutex::new(HashMap::new()),
        failures: Mutex::new(HashMap::new()),
        metrics,
    });

    let engines = api_for::<DeserializeGuard<ChaosEngine>>(&client, ns);
    let by_uid_pods = ctx.clone();
    let by_uid_results = ctx.clone();
    let controller = Controller::new(engines, watcher::Config::default());
    ctx.metrics.set_sources(Sources {
        engines: controller.store(),
        results: ctx.caches.results.clone(),
    });
    // Ready once every cache has its first full list (the controller polls the watches meanwhile).
    let ready = {
        let (engines, caches) = (controller.store(), ctx.caches.clone());
        async move {
            let synced = engines.wait_until_ready().await.is_ok()
                && caches.jobs.wait_until_ready().await.is_ok()
                && caches.pods.wait_until_ready().await.is_ok()
                && caches.results.wait_until_ready().await.is_ok();
            if synced {
                health
                    .synced
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                info!("caches synced");
            }
        }
    };
    tokio::spawn(ready);
    controller
        .with_config(ControllerConfig::default().concurrency(settings.concurrency))
        .owns_stream(job_stream)
        .watches_stream(pod_stream, move |pod: Pod| {
            engine_of(&by_uid_pods, pod.labels().get(CHAOS_UID_LABEL))
        })
        .watches_stream(result_stream, move |r: ChaosResult| {
            engine_of(&by_uid_results, r.labels().get(CHAOS_UID_LABEL))
        })
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
    info!("controller stopped");
    Ok(())
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

fn guard_ref(obj: &DeserializeGuard<ChaosEngine>) -> ObjectRef<ChaosEngine> {
    let meta = match &obj.0 {
        Ok(e) => &e.metadata,
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
        ctx.metrics.in_flight.inc();
        let started = Instant::now();
        let outcome = reconcile_engine(&ctx, engine).await;
        ctx.metrics.in_flight.dec();
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

async fn reconcile_engine(ctx: &Context, engine: &ChaosEngine) -> Result<Action, Error> {
    let uid = engine.uid().unwrap_or_default();
    if let Ok(mut index) = ctx.by_uid.lock() {
        if engine.metadata.deletion_timestamp.is_some() && engine.finalizers().is_empty() {
            index.remove(&uid);
        } else {
            index.insert(uid.clone(), ObjectRef::from_obj(engine));
        }
    }
    // A pass on half-filled caches would call a running Job "vanished": wait for the first sync.
    for ready in [
        ctx.caches.jobs.wait_until_ready().await,
        ctx.caches.pods.wait_until_ready().await,
        ctx.caches.results.wait_until_ready().await,
    ] {
        ready.map_err(|e| Error::CacheNotReady(e.to_string()))?;
    }
    let now = Timestamp::now();
    let observed = observe(ctx, engine, now).await?;
    let decision = plan(engine, &observed, now, &ctx.settings.plan);
    apply(ctx, engine, &decision).await?;
    Ok(match decision.requeue_after {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    })
}

/// An engine that does not deserialize gets a Warning Event and is left alone; the others go on.
async fn reject_malformed(
    ctx: &Context,
    invalid: &kube::core::error_boundary::InvalidObject,
) -> Result<Action, Error> {
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
