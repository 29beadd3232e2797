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

/// Files of tests/fixtures/valid with legacy fields that Litmus's own CRDs do not declare either
/// (`components.monitor`, `experiments[].spec.rank`): the apiserver prunes them, so a strict
/// apply refuses exactly those fields and nothing else.
const LEGACY_FIXTURES: &[(&str, &[&str])] = &[(
    "legacy-engine.yaml",
    &["spec.components.monitor", "spec.experiments[0].spec.rank"],
)];

fn strip_nulls(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            map.retain(|_, x| !x.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Server-side dry-run apply of every document of `yaml` with strict field validation (what
/// `kubectl apply` does by default): `Err` carries the apiserver's message per refused document.
async fn strict_dry_run_apply(env: &TestEnv, yaml: &str) -> (usize, Vec<(String, String)>) {
    use kube::api::{DynamicObject, Patch, PatchParams, ValidationDirective};
    use kube::core::GroupVersionKind;
    use kube::discovery::Scope;
    use serde::Deserialize;
    let mut applied = 0;
    let mut refused = Vec::new();
    for doc in serde_norway::Deserializer::from_str(yaml) {
        let mut value = serde_json::Value::deserialize(doc).expect("fixture YAML");
        if value.is_null() {
            continue;
        }
        // As kubectl does when it creates an object: a key with no value is no key.
        strip_nulls(&mut value);
        let mut obj: DynamicObject = serde_json::from_value(value).expect("a Kubernetes object");
        let types = obj.types.clone().expect("apiVersion/kind");
        let gvk = GroupVersionKind::try_from(&types).expect("GVK");
        let name = obj.metadata.name.clone().expect("name");
        let (ar, caps) = kube::discovery::pinned_kind(&env.client(), &gvk)
            .await
            .unwrap_or_else(|e| panic!("discovering {}: {e}", types.kind));
        let api: Api<DynamicObject> = if caps.scope == Scope::Namespaced {
            // Dry run: every namespaced object goes to the test namespace (which exists).
            obj.metadata.namespace = Some(env.ns().to_string());
            Api::namespaced_with(env.client(), env.ns(), &ar)
        } else {
            Api::all_with(env.client(), &ar)
        };
        let mut pp = PatchParams::apply(FIELD_MANAGER).force();
        pp.dry_run = true;
        pp.field_validation = Some(ValidationDirective::Strict);
        match api.patch(&name, &pp, &Patch::Apply(&obj)).await {
            Ok(_) => applied += 1,
            Err(e) => refused.push((format!("{}/{name}", types.kind), e.to_string())),
        }
    }
    (applied, refused)
}

/// Hub faults apply as published (issue 11 item 9): a strict apply of every fixture passes, the
/// top-level `description` of hub ChaosExperiments included.
#[tokio::test]
async fn valid_fixtures_apply_with_strict_field_validation() {
    use serde::Deserialize;
    let env = TestEnv::new("smoke-strict").await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/valid");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures/valid")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let (mut applied, mut experiments_with_description, mut failures) = (0, 0, Vec::new());
    for file in &files {
        let yaml = std::fs::read_to_string(file).expect("read fixture");
        let base = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        experiments_with_description += serde_norway::Deserializer::from_str(&yaml)
            .filter_map(|d| serde_json::Value::deserialize(d).ok())
            .filter(|v| v["kind"] == "ChaosExperiment" && v.get("description").is_some())
            .count();
        let (n, refused) = strict_dry_run_apply(&env, &yaml).await;
        applied += n;
        let legacy = LEGACY_FIXTURES.iter().find(|(f, _)| *f == base);
        for (object, message) in refused {
            // A legacy file may be refused only for its known legacy fields, all of them named.
            let expected = legacy.is_some_and(|(_, fields)| {
                fields
                    .iter()
                    .all(|f| message.contains(&format!("unknown field \"{f}\"")))
                    && message.matches("unknown field").count() == fields.len()
            });
            if !expected {
                failures.push(format!("{base}: {object}: {message}"));
            }
        }
    }
    println!(
        "MEASURED strict apply: {} files, {applied} documents applied, {experiments_with_description} hub experiments with description, {} refused",
        files.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "refused:\n{}", failures.join("\n"));
    assert!(
        experiments_with_description >= 10,
        "only {experiments_with_description} fixtures carry a description: the test would not catch item 9"
    );
    env.cleanup().await;
}
