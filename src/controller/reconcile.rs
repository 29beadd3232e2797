//! One reconcile pass over an engine: wait for the caches, read (src/controller/observe.rs),
//! decide (`plan`, gated by the kill switch and the author re-check), write
//! (src/controller/apply/), and when to look again; and what a failed pass waits before the next.
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use tracing::{info_span, warn};

use super::apply::apply;
use super::context::Context;
use super::error::Error;
use super::events;
use super::machinery::{
    CACHE_SYNC_WAIT, guard_ref, guarded_pass, malformed_subject, retry_delay, wait_synced,
};
use super::observe::observe;
use super::run::CHILDREN_SYNCED;
use crate::api::ChaosEngine;
use crate::engine::{EventSpec, EventType};

pub(super) async fn reconcile(
    obj: Arc<DeserializeGuard<ChaosEngine>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    // Queued for a slot (aborts for part of them, src/controller/slots.rs); planned on the engine
    // as cached when the slot is free. Gone meanwhile: its deletion event ends it (nothing to do).
    let Some((_slot, obj)) = ctx.slots.take(obj).await else {
        return Ok(Action::await_change());
    };
    // Boxed: a queued pass then costs the size of this future, not of the whole pass.
    Box::pin(pass(&obj, &ctx)).await
}

async fn pass(obj: &DeserializeGuard<ChaosEngine>, ctx: &Arc<Context>) -> Result<Action, Error> {
    guarded_pass(
        obj,
        &ctx.failures,
        async |invalid| reject_malformed(ctx, invalid).await,
        |engine| {
            info_span!(
                "reconcile",
                namespace = %engine.namespace().unwrap_or_default(),
                name = %engine.name_any(),
                chaosUID = %engine.uid().unwrap_or_default()
            )
        },
        async |engine| {
            let in_flight = ctx.metrics.in_flight_guard();
            let started = Instant::now();
            let outcome = reconcile_engine(ctx, engine).await;
            drop(in_flight);
            ctx.metrics.reconciles.inc();
            ctx.metrics
                .reconcile_duration
                .observe(started.elapsed().as_secs_f64());
            if outcome.is_ok() {
                ctx.metrics.last_success.set(Timestamp::now().as_second());
            }
            outcome
        },
    )
    .await
}

async fn reconcile_engine(ctx: &Arc<Context>, engine: &ChaosEngine) -> Result<Action, Error> {
    let uid = engine.uid().unwrap_or_default();
    if let Ok(mut index) = ctx.by_uid.lock() {
        if engine.metadata.deletion_timestamp.is_some() && engine.finalizers().is_empty() {
            index.remove(&uid);
            ctx.written.forget(engine);
        } else {
            index.insert(uid.clone(), ObjectRef::from_obj(engine));
        }
    }
    // A pass on half-filled caches would call a running Job "vanished": wait for the first sync
    // (bounded, see wait_synced).
    wait_synced(
        &ctx.caches.synced,
        |v| v & CHILDREN_SYNCED == CHILDREN_SYNCED,
        "watches of Jobs, Pods and ChaosResults have not listed yet",
    )
    .await?;
    if ctx.written.behind(engine) {
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
    // A run that would start is re-checked against the engine's recorded author (README
    // "Security"); the question goes out with the reads, so it adds no round trip before the Job.
    let (observed, early) = futures::join!(
        observe(ctx, engine, now),
        super::author::ask_early(&ctx.client, engine, now)
    );
    let observed = observed?;
    let decision = super::halt::plan_gated(&ctx.halt, engine, &observed, now, &ctx.settings.plan);
    let decision =
        super::author::check_launch(&ctx.client, engine, &observed, decision, early, now).await?;
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
    let (engine, api) = malformed_subject(&ctx.client, invalid, |name| {
        ChaosEngine::new(name, Default::default())
    });
    let ev = EventSpec::operator(
        EventType::Warning,
        "ChaosEngineMalformed",
        format!("ChaosEngine cannot be read: {}", invalid.error),
    );
    events::emit(&api, &engine, &ev).await?;
    Ok(Action::await_change())
}

/// Counts the failure and requeues the engine after its backoff (see `retry_delay`).
pub(super) fn error_policy(
    obj: Arc<DeserializeGuard<ChaosEngine>>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    let key = guard_ref(&obj);
    ctx.metrics
        .reconcile_errors
        .with_label_values(&[error.category()])
        .inc();
    let failures = ctx.failures.record(&key);
    let delay = retry_delay(error, failures, ctx.settings.max_backoff);
    warn!(engine = %key, %error, failures, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}
