//! The ChaosSchedule reconciler (replaces Litmus's chaos-scheduler): a second kube-runtime
//! Controller in the same process, over ChaosSchedules and the engines they own, around the pure
//! core in [`crate::schedule`]. Same machinery as the engine controller: cached watches,
//! per-object capped backoff, guarded against reading our own writes stale, no polling (a timer
//! for the next run, armed even while a run is blocked).
mod apply;
pub mod engines;
pub mod metrics;
pub mod write;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use jiff::Timestamp;
use kube::api::Api;
use kube::core::DeserializeGuard;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tracing::{info, info_span, warn};

use crate::api::{ChaosEngine, ChaosSchedule};
use crate::controller::error::{Error, KubeContext};
use crate::controller::machinery::{
    Failures, Written, api_for, guard_ref, guarded_pass, malformed_subject, retry_delay,
    stop_requested, stop_signal, wait_synced,
};
use crate::controller::run::Parts;
use crate::controller::{Settings, StatusMode};
use crate::metrics::Metrics;
use crate::schedule::{Observed, ScheduleEvent, decide};
use apply::apply;
use engines::{EngineView, controlled_by};
use metrics::ScheduleMetrics;

/// Runs the engine controller and, when the ChaosSchedule CRD is served, the schedule
/// reconciler, until `shutdown` resolves. This is what `chaos-conductor run` starts (under
/// leader election when enabled).
pub async fn run_all(
    parts: Parts,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    let shutdown = shutdown.shared();
    let (client, settings, metrics) = (&parts.client, &parts.settings, &parts.metrics);
    let schedules = run(
        client.clone(),
        settings.clone(),
        metrics.clone(),
        shutdown.clone(),
    );
    // Like the engine controller, the schedule reconciler gets a bounded drain after the shutdown
    // signal: with caches that never synced its reconciles may not finish, and the process must
    // exit well before the kubelet's SIGKILL.
    let signal = shutdown.clone();
    let schedules = async move {
        tokio::select! {
            r = schedules => r,
            () = async {
                signal.await;
                tokio::time::sleep(std::time::Duration::from_secs(15)).await;
            } => {
                warn!("the ChaosSchedule reconciler did not stop within 15s of the shutdown signal; stopping anyway");
                Ok(())
            }
        }
    };
    let engines = crate::controller::run::run(parts, shutdown);
    let (engines, schedules) = tokio::join!(engines, schedules);
    if let Err(e) = schedules {
        warn!(error = %e, "the ChaosSchedule reconciler stopped with an error");
    }
    engines
}

/// Whether the ChaosSchedule CRD is served, and whether it has the status subresource (ours
/// does; Litmus's does not).
pub async fn discover(client: &Client) -> Result<Option<StatusMode>, Error> {
    StatusMode::served(client, "chaosschedules").await
}

struct Ctx {
    client: Client,
    mode: StatusMode,
    engines: Store<EngineView>,
    synced: tokio::sync::watch::Receiver<bool>,
    /// resourceVersion of our last write per schedule: a cached version older than it is stale.
    written: Written<ChaosSchedule>,
    failures: Failures<ChaosSchedule>,
    metrics: ScheduleMetrics,
    max_backoff: Duration,
    /// The leader's write fence (shared with the engine controller).
    fence: crate::fence::Fence,
}

/// Margin after a run time before the pass that serves it (timers must not fire a hair early).
const WAKE_MARGIN: Duration = Duration::from_millis(200);
/// Longest timer: a run years ahead is re-evaluated hourly (kube-runtime's delay queue refuses
/// deadlines beyond about two years, and an hourly look is cheap and survives clock steps).
const MAX_TIMER: Duration = Duration::from_secs(3600);

/// Runs the schedule reconciler until `shutdown` resolves (returns at once, with a log line, when
/// the ChaosSchedule CRD is not installed or the controller is told not to schedule).
pub async fn run(
    client: Client,
    settings: Settings,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    if !settings.schedules {
        info!("the ChaosSchedule reconciler is switched off (--schedules=false)");
        return Ok(());
    }
    let Some(mode) = discover(&client).await? else {
        warn!("chaosschedules.litmuschaos.io is not installed: ChaosSchedules are not reconciled");
        return Ok(());
    };
    info!(status_mode = ?mode, namespace = ?settings.watch_namespace, "starting the ChaosSchedule reconciler");
    let schedule_metrics = match ScheduleMetrics::register(&metrics.registry) {
        Ok(m) => m,
        Err(e) => {
            warn!(error = %e, "schedule metrics not registered");
            ScheduleMetrics::register(&prometheus::Registry::new())
                .map_err(|e| Error::Malformed(e.to_string()))?
        }
    };
    let ns = settings.watch_namespace.as_deref();
    let (synced_tx, synced_rx) = tokio::sync::watch::channel(false);
    let (engine_store, engine_writer) = reflector::store::<EngineView>();
    let engine_stream = reflector::reflector(
        engine_writer,
        watcher(
            api_for::<EngineView>(&client, ns),
            watcher::Config::default(),
        )
        .modify(EngineView::trim),
    )
    .default_backoff()
    .inspect(move |ev| {
        if let Ok(watcher::Event::InitDone) = ev {
            let _ = synced_tx.send(true);
        }
    })
    .touched_objects();
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        mode,
        engines: engine_store,
        synced: synced_rx,
        written: Default::default(),
        failures: Default::default(),
        metrics: schedule_metrics,
        max_backoff: settings.max_backoff,
        fence: settings.fence.clone(),
    });
    let stop_rx = stop_signal(shutdown);
    Controller::new(
        api_for::<DeserializeGuard<ChaosSchedule>>(&client, ns),
        watcher::Config::default(),
    )
    .with_config(ControllerConfig::default().concurrency(settings.concurrency.min(8)))
    .owns_stream(engine_stream)
    .graceful_shutdown_on(stop_requested(stop_rx))
    .run(reconcile, error_policy, ctx)
    .for_each(|_| futures::future::ready(()))
    .await;
    info!("ChaosSchedule reconciler stopped");
    Ok(())
}

async fn reconcile(
    obj: Arc<DeserializeGuard<ChaosSchedule>>,
    ctx: Arc<Ctx>,
) -> Result<Action, Error> {
    guarded_pass(
        &obj,
        &ctx.failures,
        async |invalid| reject_malformed(&ctx, invalid).await,
        |schedule| {
            info_span!(
                "schedule",
                namespace = %schedule.namespace().unwrap_or_default(),
                name = %schedule.name_any()
            )
        },
        async |schedule| {
            ctx.metrics.reconciles.inc();
            reconcile_schedule(&ctx, schedule).await
        },
    )
    .await
}

fn remember_write(ctx: &Ctx, schedule: &ChaosSchedule, rv: Option<String>) {
    ctx.written.remember(schedule, rv.as_deref());
}

async fn reconcile_schedule(ctx: &Ctx, schedule: &ChaosSchedule) -> Result<Action, Error> {
    let key = format!(
        "{}/{}",
        schedule.namespace().unwrap_or_default(),
        schedule.name_any()
    );
    wait_synced(
        &ctx.synced,
        |s| *s,
        "the ChaosEngine watch has not listed yet",
    )
    .await?;
    if ctx.written.behind(schedule) {
        return Ok(Action::requeue(Duration::from_millis(100)));
    }
    let ns = schedule.namespace().unwrap_or_default();
    let uid = schedule.uid().unwrap_or_default();
    let engines_api: Api<ChaosEngine> = Api::namespaced(ctx.client.clone(), &ns);
    let mut children: Vec<_> = ctx
        .engines
        .state()
        .iter()
        .filter(|e| e.namespace().as_deref() == Some(ns.as_str()) && e.owned_by(&uid))
        .map(|e| e.child())
        .collect();
    // An engine listed in `active` but not cached yet may just be young (watch lag): ask the API
    // before calling it missing (Litmus drops it, and then runs a second engine, W14).
    let listed = schedule
        .status
        .as_ref()
        .map(|s| s.active.clone())
        .unwrap_or_default();
    for entry in listed {
        let (Some(name), Some(entry_uid)) = (entry.name, entry.uid) else {
            continue;
        };
        if children.iter().any(|c| c.uid == entry_uid) {
            continue;
        }
        match engines_api
            .get_opt(&name)
            .await
            .during("reading an active engine")?
        {
            Some(engine)
                if engine.uid().as_deref() == Some(entry_uid.as_str())
                    && controlled_by(&engine.metadata, &uid) =>
            {
                let view = EngineView {
                    metadata: engine.metadata.clone(),
                    status: serde_json::to_value(&engine.status).ok(),
                };
                children.push(view.child());
            }
            _ => {}
        }
    }
    let now = Timestamp::now();
    let mut pass = decide(Observed {
        schedule,
        children: &children,
        now,
    });
    apply(ctx, schedule, &mut pass).await?;
    ctx.metrics.set_next_run(
        key,
        pass.status
            .schedule
            .as_ref()
            .and_then(|s| s.expected_next_run_time.as_ref())
            .map(|t| t.0.as_second()),
    );
    Ok(match pass.wake_at {
        Some(at) => {
            let wait = at
                .duration_since(Timestamp::now())
                .try_into()
                .unwrap_or(Duration::ZERO);
            Action::requeue((wait + WAKE_MARGIN).min(MAX_TIMER))
        }
        None => Action::await_change(),
    })
}

/// Events are best effort: a terminating namespace refuses them, and that must not block work.
fn best_effort(result: Result<(), Error>) {
    if let Err(e) = result {
        warn!(error = %e, "could not write an event");
    }
}

/// A schedule that does not deserialize gets a Warning Event and is left alone.
async fn reject_malformed(
    ctx: &Ctx,
    invalid: &kube::core::error_boundary::InvalidObject,
) -> Result<Action, Error> {
    warn!(name = ?invalid.metadata.name, error = %invalid.error, "malformed ChaosSchedule");
    let (schedule, api) = malformed_subject(&ctx.client, invalid, |name| {
        ChaosSchedule::new(name, Default::default())
    });
    let ev = ScheduleEvent {
        warning: true,
        reason: "ChaosScheduleMalformed",
        message: format!("ChaosSchedule cannot be read: {}", invalid.error),
    };
    best_effort(write::emit(&api, &schedule, &ev).await);
    Ok(Action::await_change())
}

fn error_policy(obj: Arc<DeserializeGuard<ChaosSchedule>>, error: &Error, ctx: Arc<Ctx>) -> Action {
    let key = guard_ref(&obj);
    ctx.metrics
        .errors
        .with_label_values(&[error.category()])
        .inc();
    let failures = ctx.failures.record(&key);
    let delay = retry_delay(error, failures, ctx.max_backoff);
    warn!(schedule = %key, %error, failures, retry_in = ?delay, "schedule reconcile failed");
    Action::requeue(delay)
}
