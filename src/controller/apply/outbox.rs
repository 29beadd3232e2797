//! The outbox: owed Events (`status.pendingEvents`) are emitted after the status that records
//! them was written, in order, off the reconcile slot, and retried with a bound.
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Event;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use tracing::{debug, warn};

use crate::api::ChaosEngine;
use crate::controller::context::Context;
use crate::controller::error::{Error, is_status};
use crate::controller::events;

/// After a restart, owed events older than this are taken as delivered: re-checking every
/// finished engine's last events would cost two requests each, and a controller that was down
/// longer than this has lost nothing a user still waits for.
const OUTBOX_HORIZON_SECS: i64 = 900;
/// Attempts per owed event before it is left for a later pass (apiserver down for minutes).
const EMIT_ATTEMPTS: u32 = 8;

/// Emits the owed events of the engine's stored status that no emitter has taken yet, in order,
/// off the reconcile slot: the status already records them, so nothing is lost if this fails.
pub(super) fn deliver_owed_events(ctx: &Arc<Context>, engine: ChaosEngine) {
    let Some(status) = engine.status.as_ref() else {
        return;
    };
    let uid = engine.metadata.uid.clone().unwrap_or_default();
    let owed: Vec<crate::api::OwedEvent> = {
        let Ok(mut outbox) = ctx.outbox.lock() else {
            return;
        };
        let known = outbox.contains_key(&uid);
        let entry = outbox.entry(uid.clone()).or_default();
        let now = Timestamp::now();
        let owed: Vec<_> = status
            .pending_events
            .iter()
            .filter(|e| (e.run, e.seq) > entry.scheduled)
            .filter(|e| {
                known
                    || e.at
                        .parse::<Timestamp>()
                        .is_ok_and(|at| now.duration_since(at).as_secs() < OUTBOX_HORIZON_SECS)
            })
            .cloned()
            .collect();
        if !known {
            // Those past the horizon count as delivered (see OUTBOX_HORIZON_SECS).
            let first_owed = owed.first().map(|e| (e.run, e.seq));
            if let Some(old) = status
                .pending_events
                .iter()
                .map(|e| (e.run, e.seq))
                .filter(|k| first_owed.is_none_or(|f| *k < f))
                .max()
            {
                entry.delivered = entry.delivered.max(old);
            }
        }
        if let Some(last) = owed.last() {
            entry.scheduled = entry.scheduled.max((last.run, last.seq));
        }
        owed
    };
    if owed.is_empty() {
        return;
    }
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let ns = engine.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Event> = Api::namespaced(ctx.client.clone(), &ns);
        for ev in &owed {
            let mut attempt = 0;
            loop {
                // One of the `concurrency` emitter permits per request, not across the retry
                // sleeps below (src/controller/context.rs `emitters`). Never closed; if it were,
                // the owed event is left for a later pass, as after a failed delivery.
                let Ok(permit) = ctx.emitters.acquire().await else {
                    leave_for_a_later_pass(&ctx, &uid);
                    return;
                };
                ctx.metrics.api_write();
                let sent = events::emit_owed(&api, &engine, ev).await;
                drop(permit);
                match sent {
                    Ok(()) => {
                        if let Ok(mut o) = ctx.outbox.lock() {
                            let entry = o.entry(uid.clone()).or_default();
                            entry.delivered = entry.delivered.max((ev.run, ev.seq));
                        }
                        break;
                    }
                    Err(e) => {
                        ctx.metrics
                            .reconcile_errors
                            .with_label_values(&["event"])
                            .inc();
                        attempt += 1;
                        // A terminating namespace refuses new objects: nothing to retry for.
                        let forbidden =
                            matches!(&e, Error::Kube { source, .. } if is_status(source, 403));
                        if attempt >= EMIT_ATTEMPTS || forbidden {
                            warn!(reason = %ev.reason, error = %e, "could not record an event; a later pass retries it");
                            leave_for_a_later_pass(&ctx, &uid);
                            return;
                        }
                        debug!(reason = %ev.reason, error = %e, attempt, "event not recorded yet; retrying");
                        tokio::time::sleep(Duration::from_millis(500u64 << attempt.min(6))).await;
                    }
                }
            }
        }
    });
}

/// Hands the engine's undelivered owed events back: the next pass schedules them again.
fn leave_for_a_later_pass(ctx: &Context, uid: &str) {
    if let Ok(mut o) = ctx.outbox.lock() {
        let entry = o.entry(uid.to_string()).or_default();
        entry.scheduled = entry.delivered;
    }
}
