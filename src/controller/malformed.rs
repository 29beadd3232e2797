//! Deleting an engine the controller cannot read (Litmus's CRD keeps any spec, so a ChaosEngine may
//! not deserialize; src/controller/reconcile.rs `reject_malformed` leaves such an engine alone).
//!
//! The chart's MutatingAdmissionPolicy puts our finalizer on every new engine, readable or not
//! (charts/chaos-conductor/templates/admission-policy.yaml; it saves the first pass's finalizer
//! write, docs/performance.md). An engine that was never readable never launched anything, and
//! without the controller's help its deletion would wait forever. So when such an engine is
//! deleted and nothing labelled with its chaosUID exists (no Job, no pod, no ChaosResult: listed
//! live, not from the caches, which may lag), the finalizer is released: the deletion then ends as
//! it would have without the policy. When something exists (an engine that ran, then was edited
//! into a shape the controller cannot read), nothing changes: the engine is left alone as before.
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;
use tracing::info;

use super::context::Context;
use super::error::{Error, KubeContext, is_status};
use crate::api::{ChaosEngine, ChaosResult, FINALIZER};
use crate::engine::job::CHAOS_UID_LABEL;

/// Whether `meta` is an engine under deletion that still carries our finalizer.
pub fn held_by_us(meta: &ObjectMeta) -> bool {
    meta.deletion_timestamp.is_some() && meta.finalizers.iter().flatten().any(|f| f == FINALIZER)
}

/// For an unreadable engine under deletion with our finalizer: releases the finalizer when
/// nothing of the engine's exists. Returns whether it did (the caller then has nothing to report).
pub async fn release_unlaunched(ctx: &Context, meta: &ObjectMeta) -> Result<bool, Error> {
    let (Some(name), Some(ns), Some(uid)) = (&meta.name, &meta.namespace, &meta.uid) else {
        return Ok(false);
    };
    if !held_by_us(meta) || uid.is_empty() {
        return Ok(false);
    }
    let lp = ListParams::default()
        .labels(&format!("{CHAOS_UID_LABEL}={uid}"))
        .limit(1);
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let results: Api<ChaosResult> = Api::namespaced(ctx.client.clone(), ns);
    let (j, p, r) = futures::try_join!(
        async { jobs.list_metadata(&lp).await.during("listing chaos Jobs") },
        async { pods.list_metadata(&lp).await.during("listing chaos pods") },
        async {
            results
                .list_metadata(&lp)
                .await
                .during("listing ChaosResults")
        },
    )?;
    if !(j.items.is_empty() && p.items.is_empty() && r.items.is_empty()) {
        return Ok(false);
    }
    let finalizers: Vec<&String> = meta
        .finalizers
        .iter()
        .flatten()
        .filter(|f| *f != FINALIZER)
        .collect();
    // The resourceVersion precondition: a write that raced ours (someone else's finalizer) wins.
    let body =
        json!({"metadata": {"finalizers": finalizers, "resourceVersion": meta.resource_version}});
    ctx.settings.fence.check()?;
    ctx.metrics.api_write();
    let api: Api<ChaosEngine> = Api::namespaced(ctx.client.clone(), ns);
    match api
        .patch_metadata(name, &PatchParams::default(), &Patch::Merge(body))
        .await
    {
        Ok(_) => {}
        Err(e) if is_status(&e, 404) => {}
        Err(e) => return Err(e).during("releasing the finalizer of an unreadable engine"),
    }
    info!(%name, %ns, "unreadable engine deleted: nothing of it exists, finalizer released");
    Ok(true)
}
