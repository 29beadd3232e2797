//! The read step: everything `plan` needs, from the caches where possible and from the API for
//! the few objects that are not watched (ChaosExperiments, ConfigMaps, Secrets, ServiceAccounts).
use std::collections::BTreeSet;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, ServiceAccount};
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;

use super::context::Context;
use super::error::{Error, KubeContext};
use crate::api::{ChaosEngine, ChaosExperiment, ChaosResult};
use crate::engine::job::{CHAOS_UID_LABEL, mounted_sources};
use crate::engine::{ExperimentPhase, Observed, aborting, lookups, verdicts_overdue};

fn has_uid(labels: Option<&std::collections::BTreeMap<String, String>>, uid: &str) -> bool {
    labels
        .and_then(|l| l.get(CHAOS_UID_LABEL))
        .is_some_and(|v| v == uid)
}

/// A Job we can prove is ours: labelled with the engine's chaosUID AND controlled by the engine
/// (ownerReference with its uid). Names in status and labels alone prove nothing: anyone who may
/// write the engine's status or create a Job could forge them.
pub fn owned_job(job: &Job, engine_uid: &str) -> bool {
    has_uid(job.metadata.labels.as_ref(), engine_uid)
        && job
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.uid == engine_uid && o.controller == Some(true))
}

/// Jobs (ours) and pods labelled with the engine's chaosUID, listed from the API server (metadata
/// only: the abort needs names and deletion marks, nothing else).
async fn live_chaos_objects(
    client: &kube::Client,
    ns: &str,
    uid: &str,
) -> Result<(Vec<Job>, Vec<Pod>), Error> {
    let lp = kube::api::ListParams::default().labels(&format!("{CHAOS_UID_LABEL}={uid}"));
    let jobs_api: Api<Job> = Api::namespaced(client.clone(), ns);
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let (jobs, pods) = futures::try_join!(
        async {
            jobs_api
                .list_metadata(&lp)
                .await
                .during("listing chaos Jobs")
        },
        async {
            pods_api
                .list_metadata(&lp)
                .await
                .during("listing chaos pods")
        },
    )?;
    let jobs = jobs
        .items
        .into_iter()
        .map(|m| Job {
            metadata: m.metadata,
            ..Default::default()
        })
        .filter(|j| owned_job(j, uid))
        .collect();
    let pods = pods
        .items
        .into_iter()
        .map(|m| Pod {
            metadata: m.metadata,
            ..Default::default()
        })
        .collect();
    Ok((jobs, pods))
}

fn cloned<K: Clone>(objects: Vec<std::sync::Arc<K>>) -> Vec<K> {
    objects.into_iter().map(|o| (*o).clone()).collect()
}

/// Above this many ChaosExperiments to read, one LIST of the namespace is cheaper than GETs.
const LIST_ABOVE: usize = 3;

/// Gathers what was observed for one engine.
pub async fn observe(
    ctx: &Context,
    engine: &ChaosEngine,
    now: Timestamp,
) -> Result<Observed, Error> {
    let ns = engine.metadata.namespace.clone().unwrap_or_default();
    let uid = engine.metadata.uid.clone().unwrap_or_default();
    let client = ctx.client.clone();

    let mut observed = Observed {
        jobs: ctx
            .caches
            .jobs
            .of(&ns, &uid)
            .into_iter()
            .filter(|j| owned_job(j, &uid))
            .map(|j| (*j).clone())
            .collect(),
        pods: cloned(ctx.caches.pods.of(&ns, &uid)),
        results: cloned(ctx.caches.results.of(&ns, &uid)),
        ..Default::default()
    };

    observed.rejected_jobs = ctx.take_rejected(&uid);
    observed.events_delivered = ctx
        .outbox
        .lock()
        .ok()
        .and_then(|o| o.get(&uid).map(|b| b.delivered));
    if aborting(engine) && observed.jobs.is_empty() && observed.pods.is_empty() {
        // The caches say the sweep is complete, but a Job created in the same moment as the abort
        // (or its pod) may not have reached them yet: only a fresh list from the API server can
        // say nothing is left. Read once per pass, and only at the very end of an abort.
        let (jobs, pods) = live_chaos_objects(&client, &ns, &uid).await?;
        observed.jobs = jobs;
        observed.pods = pods;
    }
    // A Job we just created may not be in the cache yet: ask the API before calling it vanished.
    // Only a Job we own counts; a launch whose Job does not exist is completed (see plan::monitor),
    // which needs its ChaosExperiment read.
    let jobs_api: Api<Job> = Api::namespaced(client.clone(), &ns);
    let mut relaunch = Vec::new();
    // Not during an abort: it plans no launch, its sweep deletes by label, and it is called
    // complete only on the live list above (each pass of a mass abort read every Job it had just
    // deleted: a quarter of its requests, BENCHMARKS.md "Mass abort").
    let abort = aborting(engine);
    for entry in engine
        .status
        .iter()
        .flat_map(|s| s.experiments.iter())
        .filter(|_| !abort)
    {
        let phase = &entry.phase;
        if !phase.is_active()
            || entry.job_name.is_empty()
            || observed
                .jobs
                .iter()
                .any(|j| j.metadata.name.as_deref() == Some(entry.job_name.as_str()))
        {
            continue;
        }
        match jobs_api
            .get_opt(&entry.job_name)
            .await
            .during("reading a Job")?
        {
            Some(job) if owned_job(&job, &uid) => observed.jobs.push(job),
            _ if *phase == ExperimentPhase::Launched
                && !observed.rejected_jobs.contains_key(&entry.job_name) =>
            {
                relaunch.push(entry.name.clone())
            }
            _ => {}
        }
    }

    // A missing verdict is terminal, and the pod cache may be fresher than the ChaosResult cache
    // (each watch reconnects on its own: after an apiserver restart the pods can come back first).
    // So before the plan calls a verdict missing, the result is read from the API. Only once the
    // grace has run out (see plan::verdicts_overdue): a normal run reads nothing extra.
    let overdue = verdicts_overdue(engine, &observed, now, &ctx.settings.plan);
    if !overdue.is_empty() {
        let results_api: Api<ChaosResult> = Api::namespaced(client.clone(), &ns);
        for name in overdue {
            let live = results_api
                .get_opt(&name)
                .await
                .during("reading a ChaosResult")?;
            observed
                .results
                .retain(|r| r.metadata.name.as_deref() != Some(name.as_str()));
            observed
                .results
                .extend(live.filter(|r| has_uid(r.metadata.labels.as_ref(), &uid)));
        }
    }

    let mut wanted = lookups(engine, now);
    for name in relaunch {
        if !wanted.experiments.contains(&name) {
            wanted.experiments.push(name);
        }
        if wanted.service_account.is_none() {
            wanted.service_account = engine
                .spec
                .chaos_service_account
                .clone()
                .filter(|s| !s.is_empty());
        }
    }
    if wanted.experiments.is_empty() {
        return Ok(observed);
    }
    // The lookups are independent reads: issue them together, so the Job follows sooner.
    let experiments: Api<ChaosExperiment> = Api::namespaced(client.clone(), &ns);
    let sa_api: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns);
    let found = async {
        if wanted.experiments.len() > LIST_ABOVE {
            let all = experiments
                .list(&Default::default())
                .await
                .during("listing ChaosExperiments")?;
            Ok(wanted
                .experiments
                .iter()
                .map(|name| {
                    all.items
                        .iter()
                        .find(|x| x.metadata.name.as_deref() == Some(name.as_str()))
                        .cloned()
                })
                .collect::<Vec<_>>())
        } else {
            futures::future::try_join_all(wanted.experiments.iter().map(|name| {
                let api = experiments.clone();
                async move { api.get_opt(name).await.during("reading a ChaosExperiment") }
            }))
            .await
        }
    };
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
