//! The test cluster does what the controller's tests rely on: kwok runs Job pods as told by
//! annotations, the Job controller completes Jobs, the garbage collector honours owner references
//! (background and foreground), and the Litmus CRDs are installed. Needs `scripts/cluster up`.
mod support;

use std::collections::BTreeMap;

use anyhow::{anyhow, ensure};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, PostParams};
use support::*;

const WAIT: std::time::Duration = secs(60);

fn job(name: &str, owner: Option<&ConfigMap>) -> Job {
    let owner_references = owner.map(|cm| {
        vec![OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: cm.metadata.name.clone().unwrap(),
            uid: cm.metadata.uid.clone().unwrap(),
            block_owner_deletion: Some(true),
            controller: Some(true),
        }]
    });
    Job {
        metadata: ObjectMeta {
            name: Some(name.into()),
            owner_references,
            ..Default::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(BTreeMap::from([("app".to_string(), name.to_string())])),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".into()),
                    containers: vec![Container {
                        name: name.into(),
                        image: Some("busybox:1.36".into()),
                        command: Some(vec!["true".into()]),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn job_pod_succeeds_through_kwok_and_job_completes() {
    let env = TestEnv::new("smoke-job-succeeds").await;
    env.create(&job("hello", None)).await;

    let pod = env
        .wait_for("the Job's pod to be Running", WAIT, async || {
            let pods = env.job_pods("hello").await;
            let phases: Vec<String> = pods.iter().map(pod_phase).collect();
            match pods.as_slice() {
                [p] if pod_phase(p) == "Running" => Ok(p.clone()),
                _ => Err(anyhow!("pod phases {phases:?}")),
            }
        })
        .await;
    let pod_name = pod.metadata.name.clone().unwrap();
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get("job-name").map(String::as_str),
        Some("hello"),
        "labels {labels:?}"
    );

    env.annotate_pod(&pod_name, &[("e2e.test/outcome", "succeed")])
        .await;
    let pods = env.pods();
    let pod = env
        .wait_for("the pod to be Succeeded", WAIT, async || {
            let p = pods.get(&pod_name).await?;
            ensure!(pod_phase(&p) == "Succeeded", "phase {}", pod_phase(&p));
            Ok(p)
        })
        .await;
    let statuses = pod
        .status
        .and_then(|s| s.container_statuses)
        .unwrap_or_default();
    let exit: Vec<Option<i32>> = statuses
        .iter()
        .map(|c| {
            c.state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .map(|t| t.exit_code)
        })
        .collect();
    assert_eq!(exit, vec![Some(0)], "container exit codes");

    let jobs = env.jobs();
    env.wait_for("the Job to be Complete", WAIT, async || {
        let j = jobs.get("hello").await?;
        ensure!(job_condition(&j, "Complete"), "{}", job_summary(&j));
        Ok(())
    })
    .await;
    env.cleanup().await;
}

#[tokio::test]
async fn gc_removes_owned_job_with_background_propagation() {
    let env = TestEnv::new("smoke-gc-background").await;
    let owner = env.create_configmap("owner", &[("k", "v")]).await;
    env.create(&job("owned", Some(&owner))).await;

    env.configmaps()
        .delete("owner", &DeleteParams::background())
        .await
        .expect("delete owner");
    let jobs = env.jobs();
    env.wait_for(
        "the owned Job to be garbage-collected",
        WAIT,
        async || match jobs.get_opt("owned").await? {
            None => Ok(()),
            Some(j) => Err(anyhow!(
                "Job still there (deletionTimestamp {:?})",
                j.metadata.deletion_timestamp
            )),
        },
    )
    .await;
    env.cleanup().await;
}

#[tokio::test]
async fn gc_foreground_deletes_dependents_before_owner() {
    let env = TestEnv::new("smoke-gc-foreground").await;
    let owner = env.create_configmap("owner", &[("k", "v")]).await;
    let mut owned = job("owned", Some(&owner));
    // Holds the Job after the GC deleted it, so the owner's wait can be observed.
    owned.metadata.finalizers = Some(vec!["e2e.test/hold".into()]);
    env.create(&owned).await;

    let deleted = env
        .configmaps()
        .delete("owner", &DeleteParams::foreground())
        .await
        .expect("delete");
    let cm = deleted
        .left()
        .expect("a foreground delete returns the owner, still present");
    assert!(cm.metadata.deletion_timestamp.is_some());
    assert!(
        cm.metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == "foregroundDeletion"),
        "finalizers {:?}",
        cm.metadata.finalizers
    );

    let jobs = env.jobs();
    env.wait_for("the GC to delete the owned Job", WAIT, async || {
        let j = jobs.get("owned").await?;
        ensure!(
            j.metadata.deletion_timestamp.is_some(),
            "Job not being deleted yet"
        );
        Ok(())
    })
    .await;
    let cms = env.configmaps();
    assert!(
        cms.get_opt("owner").await.unwrap().is_some(),
        "owner must wait for its blocking dependent"
    );

    env.wait_for(
        "our finalizer to be removed from the Job",
        WAIT,
        async || {
            let mut j = jobs.get("owned").await?;
            j.metadata
                .finalizers
                .get_or_insert_default()
                .retain(|f| f != "e2e.test/hold");
            jobs.replace("owned", &PostParams::default(), &j).await?;
            Ok(())
        },
    )
    .await;
    env.wait_for("owner and Job to be gone", WAIT, async || {
        let j = jobs.get_opt("owned").await?.is_some();
        let o = cms.get_opt("owner").await?.is_some();
        ensure!(!j && !o, "job present: {j}, owner present: {o}");
        Ok(())
    })
    .await;
    env.cleanup().await;
}

#[tokio::test]
async fn litmus_crds_are_established() {
    let env = TestEnv::new("smoke-crds").await;
    let crds: Api<CustomResourceDefinition> = Api::all(env.client());
    for name in [
        "chaosengines.litmuschaos.io",
        "chaosexperiments.litmuschaos.io",
        "chaosresults.litmuschaos.io",
    ] {
        let crd = crds
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("CRD {name}: {e}"));
        let established = crd
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
        assert!(established, "CRD {name} not Established: {:?}", crd.status);
    }
    // litmus-go writes ChaosResult status with plain updates: there must be no status subresource.
    let result = crds.get("chaosresults.litmuschaos.io").await.unwrap();
    assert!(
        result
            .spec
            .versions
            .iter()
            .all(|v| v.subresources.as_ref().is_none_or(|s| s.status.is_none())),
        "chaosresults must not have a status subresource"
    );
    env.cleanup().await;
}
