//! The read step: everything `plan` needs, from the caches where possible and from the API for
//! the few objects that are not watched (ChaosExperiments, ConfigMaps, Secrets, ServiceAccounts).
use std::collections::BTreeSet;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;

use super::context::Context;
use super::error::{Error, KubeContext};
use crate::api::{ChaosEngine, ChaosExperiment};
use crate::engine::job::{CHAOS_UID_LABEL, mounted_sources};
use crate::engine::{ExperimentPhase, Observed, lookups};

fn has_uid(labels: Option<&std::collections::BTreeMap<String, String>>, uid: &str) -> bool {
    labels
        .and_then(|l| l.get(CHAOS_UID_LABEL))
        .is_some_and(|v| v == uid)
}

/// Gathers what was observed for one engine.
pub async fn observe(
    ctx: &Context,
    engine: &ChaosEngine,
    now: Timestamp,
) -> Result<Observed, Error> {
    let ns = engine.metadata.namespace.clone().unwrap_or_default();
    let uid = engine.metadata.uid.clone().unwrap_or_default();
    let client = ctx.client.clone();
    let same_ns = |m: &kube::api::ObjectMeta| m.namespace.as_deref() == Some(ns.as_str());

    let mut observed = Observed {
        jobs: ctx
            .caches
            .jobs
            .state_filter(|j| same_ns(&j.metadata) && has_uid(j.metadata.labels.as_ref(), &uid))
            .into_iter()
            .map(|j| (*j).clone())
            .collect(),
        pods: ctx
            .caches
            .pods
            .state_filter(|p| same_ns(&p.metadata) && has_uid(p.metadata.labels.as_ref(), &uid))
            .into_iter()
            .map(|p| (*p).clone())
            .collect(),
        results: ctx
            .caches
            .results
            .state_filter(|r| same_ns(&r.metadata) && has_uid(r.metadata.labels.as_ref(), &uid))
            .into_iter()
            .map(|r| (*r).clone())
            .collect(),
        ..Default::default()
    };

    // A Job we just created may not be in the cache yet: ask the API before calling it vanished.
    let jobs_api: Api<Job> = Api::namespaced(client.clone(), &ns);
    for entry in engine.status.iter().flat_map(|s| s.experiments.iter()) {
        let active = ExperimentPhase::parse(&entry.phase).is_active();
        if active
            && !entry.job_name.is_empty()
            && !observed
                .jobs
                .iter()
                .any(|j| j.metadata.name.as_deref() == Some(entry.job_name.as_str()))
            && let Some(job) = jobs_api
                .get_opt(&entry.job_name)
                .await
                .during("reading a Job")?
        {
            observed.jobs.push(job);
        }
    }

    let wanted = lookups(engine, now);
    if wanted.experiments.is_empty() {
        return Ok(observed);
    }
    // The lookups are independent reads: issue them together, so the Job follows sooner.
    let experiments: Api<ChaosExperiment> = Api::namespaced(client.clone(), &ns);
    let sa_api: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns);
    let found = futures::future::try_join_all(wanted.experiments.iter().map(|name| {
        let api = experiments.clone();
        async move { api.get_opt(name).await.during("reading a ChaosExperiment") }
    }));
    let service_account = async {
        match &wanted.service_account {
            Some(sa) => sa_api
                .get_metadata_opt(sa)
                .await
                .during("reading a ServiceAccount")
                .map(|m| Some(m.is_some())),
            None => Ok(None),
        }
    };
    let (found, service_account) = futures::try_join!(found, service_account)?;
    observed.service_account_exists = service_account;
    let mut config_maps = BTreeSet::new();
    let mut secrets = BTreeSet::new();
    for (exp_name, found) in wanted.experiments.iter().zip(found) {
        if let (Some(exp), Some(entry)) = (
            &found,
            engine.spec.experiments.iter().find(|e| &e.name == exp_name),
        ) && let Ok(sources) = mounted_sources(exp, entry)
        {
            config_maps.extend(sources.config_maps.into_iter().map(|c| c.name));
            secrets.extend(sources.secrets.into_iter().map(|s| s.name));
        }
        observed.experiments.insert(exp_name.clone(), found);
    }
    // Existence checks read metadata only: the controller never needs Secret contents.
    let cm_api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    for cm in config_maps {
        if cm_api
            .get_metadata_opt(&cm)
            .await
            .during("reading a ConfigMap")?
            .is_none()
        {
            observed.missing_config_maps.insert(cm);
        }
    }
    // The chart grants `get secrets` only in the namespaces listed in rbac.secretsReadNamespaces
    // (no cluster-wide Secret read by default): elsewhere the check is skipped and a missing Secret
    // shows as the experiment pod never starting (ExperimentPodPendingTimeout).
    let secret_api: Api<Secret> = Api::namespaced(client, &ns);
    for secret in secrets {
        match secret_api.get_metadata_opt(&secret).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                observed.missing_secrets.insert(secret);
            }
            Err(e) if super::error::is_status(&e, 403) => {
                tracing::debug!(%secret, "no permission to check that the Secret exists; not checked");
            }
            Err(e) => return Err(e).during("reading a Secret"),
        }
    }
    Ok(observed)
}
