//! The engine controller: one kube-runtime Controller over ChaosEngines, fed by label-filtered
//! watches of the chaos Jobs, pods and ChaosResults, whose caches the read step uses. One pass
//! over an engine is src/controller/reconcile.rs; what it shares with the ChaosSchedule
//! reconciler is src/controller/machinery.rs.
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodStatus};
use kube::core::DeserializeGuard;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use tracing::{info, warn};

use super::cache::{ChaosCache, cache};
use super::context::{Caches, Context, Settings, StatusMode};
use super::error::Error;
use super::machinery::{api_for, stop_requested, stop_signal};
use super::reconcile::{error_policy, reconcile};
use crate::api::{ChaosEngine, ChaosResult};
use crate::engine::job::CHAOS_UID_LABEL;
use crate::metrics::{Metrics, Sources};
use crate::server::Health;

/// Detects whether the installed ChaosEngine CRD has the status subresource (ours does; Litmus's
/// does not), so the controller also runs on a cluster that still has Litmus's CRDs.
pub async fn detect_status_mode(client: &Client) -> Result<StatusMode, Error> {
    let mode = StatusMode::served(client, "chaosengines").await?;
    Ok(mode.unwrap_or(StatusMode::MainResource))
}

/// What a controller runs with: the engine controller ([`run`]) and the process with both
/// reconcilers (`crate::scheduler::run_all`) take the same.
pub struct Parts {
    pub client: Client,
    pub settings: Settings,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
}

/// Runs the controller until `shutdown` resolves. Returns once in-flight reconciles finished.
pub async fn run(
    parts: Parts,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    let Parts {
        client,
        settings,
        metrics,
        health,
    } = parts;
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
    // Jobs are only looked up by name, labels, owner and deletion mark, so only their metadata is
    // watched; pods by labels and the experiment container's state; ChaosResults whole.
    let (jobs, job_stream) = cached(
        // An Api of PartialObjectMeta makes kube-rs send metadata-only list and watch requests.
        watcher(
            api_for::<PartialObjectMeta<Job>>(&client, ns),
            chaos.clone(),
        )
        .map_ok(|ev| map_event(ev, job_of_metadata)),
        JOBS_SYNCED,
        &synced_tx,
        |job: &mut Job| job.managed_fields_mut().clear(),
    );
    let (pods, pod_stream) = cached(
        watcher(api_for::<Pod>(&client, ns), chaos.clone()),
        PODS_SYNCED,
        &synced_tx,
        trim_pod,
    );
    // litmus-go copies the pod's labels (chaosUID included) onto every ChaosResult it writes.
    let (results, result_stream) = cached(
        watcher(api_for::<ChaosResult>(&client, ns), chaos.clone()),
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
        written: Default::default(),
        failures: Default::default(),
        rejected: Mutex::new(HashMap::new()),
        outbox: Mutex::new(HashMap::new()),
        metrics,
        halt,
        slots: super::slots::Slots::new(settings.concurrency, engine_store.clone()),
        emitters: tokio::sync::Semaphore::new(usize::from(settings.concurrency.max(1))),
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
    // The controller drains on the shutdown signal; a bounded wait after it stops it anyway.
    let stop_rx = stop_signal(shutdown);
    let closing = ctx.clone();
    let closing_rx = stop_rx.clone();
    tokio::spawn(async move {
        stop_requested(closing_rx).await;
        closing.slots.close();
    });
    let controller = Controller::for_stream(engine_stream, engine_store);
    // Unbounded here: passes queue for the `concurrency` slots of ctx.slots instead, where aborts
    // may hold only part of them (src/controller/slots.rs).
    let running = controller
        .with_config(ControllerConfig::default().concurrency(0))
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

/// Longest the controller drains in-flight reconciles after the shutdown signal.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(15);

const ENGINES_SYNCED: u8 = 1;
const JOBS_SYNCED: u8 = 2;
const PODS_SYNCED: u8 = 4;
const RESULTS_SYNCED: u8 = 8;
pub(super) const CHILDREN_SYNCED: u8 = JOBS_SYNCED | PODS_SYNCED | RESULTS_SYNCED;
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

/// A cache of `K` fed by a watch (src/controller/cache.rs), and the stream of touched objects
/// that drives reconciles.
fn cached<K>(
    events: impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    bit: u8,
    synced: &Arc<tokio::sync::watch::Sender<u8>>,
    trim: impl FnMut(&mut K) + Send + 'static,
) -> (
    ChaosCache<K>,
    impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + Send + Sync + 'static,
{
    let (cache, mut writer) = cache::<K>();
    let tx = synced.clone();
    let stream = events
        .modify(trim)
        .map_ok(move |ev| {
            writer.apply(&ev);
            ev
        })
        .default_backoff()
        .inspect(move |ev| mark_synced(ev, bit, &tx))
        .touched_objects();
    (cache, stream)
}

/// A Job as the cache keeps it: its metadata (the watch of Jobs is metadata-only).
fn job_of_metadata(m: PartialObjectMeta<Job>) -> Job {
    Job {
        metadata: m.metadata,
        ..Default::default()
    }
}

fn map_event<A, B>(ev: watcher::Event<A>, f: impl Fn(A) -> B) -> watcher::Event<B> {
    match ev {
        watcher::Event::Apply(a) => watcher::Event::Apply(f(a)),
        watcher::Event::Delete(a) => watcher::Event::Delete(f(a)),
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitApply(a) => watcher::Event::InitApply(f(a)),
        watcher::Event::InitDone => watcher::Event::InitDone,
    }
}

/// A pod as the cache keeps it: what src/engine/plan/assess.rs reads (labels, creation and
/// deletion marks, the phase, each container's name and state); no spec, no annotations, none of
/// the status's conditions, addresses or image references.
pub(super) fn trim_pod(pod: &mut Pod) {
    pod.managed_fields_mut().clear();
    pod.annotations_mut().clear();
    pod.spec = None;
    if let Some(status) = pod.status.take() {
        let containers = status.container_statuses.map(|cs| {
            cs.into_iter()
                .map(|c| ContainerStatus {
                    name: c.name,
                    state: c.state,
                    ..Default::default()
                })
                .collect()
        });
        pod.status = Some(PodStatus {
            phase: status.phase,
            container_statuses: containers,
            ..Default::default()
        });
    }
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

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateTerminated, PodCondition, PodSpec,
    };
    use kube::api::ObjectMeta;

    use super::*;

    /// The trim keeps what src/engine/plan/assess.rs reads of a pod and drops the rest.
    #[test]
    fn a_trimmed_pod_keeps_what_the_plan_reads() {
        let terminated = ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: 1,
                reason: Some("Error".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut pod = Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                labels: Some([("job-name".to_string(), "j".to_string())].into()),
                annotations: Some([("a".to_string(), "b".to_string())].into()),
                ..Default::default()
            },
            spec: Some(PodSpec::default()),
            status: Some(PodStatus {
                phase: Some("Failed".into()),
                conditions: Some(vec![PodCondition::default()]),
                container_statuses: Some(vec![ContainerStatus {
                    name: "j".into(),
                    image: "busybox".into(),
                    state: Some(terminated.clone()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        };
        trim_pod(&mut pod);
        assert_eq!(pod.labels().get("job-name").map(String::as_str), Some("j"));
        assert!(pod.annotations().is_empty());
        assert!(pod.spec.is_none());
        let status = pod.status.unwrap_or_default();
        assert_eq!(status.phase.as_deref(), Some("Failed"));
        assert!(status.conditions.is_none());
        let containers = status.container_statuses.unwrap_or_default();
        assert_eq!(containers.len(), 1);
        assert_eq!(containers[0].name, "j");
        assert_eq!(containers[0].state.as_ref(), Some(&terminated));
        assert!(containers[0].image.is_empty());
    }
}
