//! The test cluster does what the controller's tests rely on: RBAC is enforced and TokenRequest
//! issues working ServiceAccount tokens; kwok runs Job pods as told by annotations (succeed, fail
//! with an exit code, main container done while a sidecar runs, stay Pending) and removes deleted
//! ones; the Job controller completes and fails Jobs; the garbage collector honours owner
//! references (background and foreground); every CRD in crds/ is Established; and the apiserver's
//! schema accepts tests/fixtures/valid and refuses tests/fixtures/invalid-schema. Needs
//! `scripts/cluster up`.
mod support;

use std::collections::BTreeMap;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, ensure};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, PodSpec, PodTemplateSpec};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use support::conductor::{client_from, service_account_token, write_token_kubeconfig};
use support::tools::{kubectl, repo, yaml_documents};
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
    // The garbage collector learns of the Job from its own watch. Deleting the owner before that
    // lets the GC see an owner without dependents and remove it at once (seen once in CI, with 4
    // test threads loading the machine), which is not what this test checks. Nothing observable
    // says the GC has seen the Job, so give its watch a moment.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;

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
async fn litmus_crds_and_every_crd_in_crds_folder_are_established() {
    let env = TestEnv::new("smoke-crds").await;
    let crds: Api<CustomResourceDefinition> = Api::all(env.client());
    let mut names: Vec<String> = [
        "chaosengines.litmuschaos.io",
        "chaosexperiments.litmuschaos.io",
        "chaosresults.litmuschaos.io",
    ]
    .map(String::from)
    .into();
    for doc in
        yaml_documents(&std::fs::read_to_string(repo().join("crds/litmuschaos.yaml")).unwrap())
    {
        if doc["kind"] == "CustomResourceDefinition" {
            names.push(
                doc["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
    }
    names.sort();
    names.dedup();
    for name in &names {
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

/// A Job whose main container is named like the Job, plus a second container `sidecar`.
fn job_with_sidecar(name: &str) -> Job {
    let mut j = job(name, None);
    if let Some(spec) = j.spec.as_mut().and_then(|s| s.template.spec.as_mut()) {
        spec.containers.push(Container {
            name: "sidecar".into(),
            image: Some("busybox:1.36".into()),
            ..Default::default()
        });
    }
    j
}

/// Creates the Job and waits for its one pod to be Running; returns the pod's name.
async fn running_pod_of(env: &TestEnv, job: Job) -> String {
    let name = job.metadata.name.clone().unwrap();
    env.create(&job).await;
    let pod = env
        .wait_for(&format!("the pod of {name} Running"), WAIT, async || {
            let pods = env.job_pods(&name).await;
            match pods.as_slice() {
                [p] if pod_phase(p) == "Running" => Ok(p.clone()),
                _ => Err(anyhow!(
                    "pod phases {:?}",
                    pods.iter().map(pod_phase).collect::<Vec<_>>()
                )),
            }
        })
        .await;
    pod.metadata.name.unwrap()
}

async fn wait_job_condition(env: &TestEnv, job: &str, condition: &str) {
    let jobs = env.jobs();
    env.wait_for(&format!("Job {job} {condition}"), WAIT, async || {
        let j = jobs.get(job).await?;
        ensure!(job_condition(&j, condition), "{}", job_summary(&j));
        Ok(())
    })
    .await;
}

async fn wait_pod_phase(env: &TestEnv, pod: &str, phase: &str) -> Pod {
    let pods = env.pods();
    env.wait_for(&format!("pod {pod} {phase}"), WAIT, async || {
        let p = pods.get(pod).await?;
        ensure!(pod_phase(&p) == phase, "phase {}", pod_phase(&p));
        Ok(p)
    })
    .await
}

/// (container name, terminated reason and exit code, or None while it runs).
fn container_states(pod: &Pod) -> Vec<(String, Option<(String, i32)>)> {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            let t = c.state.and_then(|s| s.terminated);
            (
                c.name,
                t.map(|t| (t.reason.unwrap_or_default(), t.exit_code)),
            )
        })
        .collect()
}

#[tokio::test]
async fn rbac_is_enforced_and_service_account_tokens_work() {
    let env = TestEnv::new("smoke-auth").await;
    let token = service_account_token(&env, "default").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    write_token_kubeconfig(&kubeconfig, &token, env.ns());
    let client = client_from(&kubeconfig).await;
    let review = Api::<SelfSubjectReview>::all(client.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .expect("SelfSubjectReview with the token");
    let user = review
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username)
        .unwrap_or_default();
    assert_eq!(user, format!("system:serviceaccount:{}:default", env.ns()));
    let err = Api::<Pod>::namespaced(client, env.ns())
        .list(&ListParams::default())
        .await
        .expect_err("RBAC must deny the default ServiceAccount listing pods");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 403),
        "{err}"
    );
    env.cleanup().await;
}

#[tokio::test]
async fn failed_pod_fails_its_job_with_the_exit_code() {
    let env = TestEnv::new("smoke-job-fails").await;
    let pod = running_pod_of(&env, job("doomed", None)).await;
    env.annotate_pod(
        &pod,
        &[("e2e.test/outcome", "fail"), ("e2e.test/exit-code", "3")],
    )
    .await;
    let p = wait_pod_phase(&env, &pod, "Failed").await;
    assert_eq!(
        container_states(&p),
        vec![("doomed".to_string(), Some(("Error".to_string(), 3)))]
    );
    wait_job_condition(&env, "doomed", "Failed").await;
    env.cleanup().await;
}

#[tokio::test]
async fn main_done_keeps_the_sidecar_and_the_pod_running() {
    let env = TestEnv::new("smoke-main-done").await;
    let pod = running_pod_of(&env, job_with_sidecar("mainly")).await;
    env.annotate_pod(&pod, &[("e2e.test/outcome", "main-done")])
        .await;
    let pods = env.pods();
    let p = env
        .wait_for("main container terminated", WAIT, async || {
            let p = pods.get(&pod).await?;
            let states = container_states(&p);
            ensure!(
                states.iter().any(|(n, t)| n == "mainly" && t.is_some()),
                "{states:?}"
            );
            Ok(p)
        })
        .await;
    let mut states = container_states(&p);
    states.sort();
    assert_eq!(
        states,
        vec![
            ("mainly".to_string(), Some(("Completed".to_string(), 0))),
            ("sidecar".to_string(), None),
        ]
    );
    assert_eq!(
        pod_phase(&p),
        "Running",
        "the sidecar keeps the pod Running"
    );
    env.annotate_pod(&pod, &[("e2e.test/outcome", "succeed")])
        .await;
    wait_pod_phase(&env, &pod, "Succeeded").await;
    wait_job_condition(&env, "mainly", "Complete").await;
    env.cleanup().await;
}

#[tokio::test]
async fn a_job_deleted_in_the_foreground_takes_its_running_pod_along() {
    let env = TestEnv::new("smoke-job-delete").await;
    let pod = running_pod_of(&env, job("short-lived", None)).await;
    env.jobs()
        .delete("short-lived", &DeleteParams::foreground())
        .await
        .expect("delete the Job");
    let pods = env.pods();
    env.wait_for("the Job's pod gone", WAIT, async || {
        match pods.get_opt(&pod).await? {
            None => Ok(()),
            Some(p) => Err(anyhow!(
                "still there: phase {}, deletionTimestamp {:?}",
                pod_phase(&p),
                p.metadata.deletion_timestamp
            )),
        }
    })
    .await;
    env.cleanup().await;
}

#[tokio::test]
async fn stay_pending_pod_is_scheduled_but_never_starts() {
    let env = TestEnv::new("smoke-stay-pending").await;
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "stay-pending", "annotations": {"e2e.test/stay-pending": "true"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox:1.36"}]}
    }))
    .unwrap();
    env.create(&pod).await;
    let pods = env.pods();
    env.wait_for("stay-pending scheduled", WAIT, async || {
        let p = pods.get("stay-pending").await?;
        ensure!(
            p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some(),
            "not scheduled yet"
        );
        Ok(())
    })
    .await;
    // kwok starts any other pod 200 ms after it is scheduled: ten times that proves it waits.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let p = pods.get("stay-pending").await.unwrap();
    assert_eq!(pod_phase(&p), "Pending");
    env.cleanup().await;
}

/// A copy of the test kubeconfig whose context namespace is `ns`: fixtures without a namespace
/// land there and fixtures that name one keep it (`--namespace` would refuse those).
fn kubeconfig_in(ns: &str, dir: &Path) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::copy(kubeconfig_path(), &path).expect("copy the kubeconfig");
    let out = Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(&path)
        .args([
            "config",
            "set-context",
            "--current",
            &format!("--namespace={ns}"),
        ])
        .output()
        .expect("kubectl config set-context");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

fn fixture_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {dir}");
    files
}

/// `kubectl apply --dry-run=server --validate=warn -f file`: success and the combined output.
/// (`--validate=warn`: what the apiserver's schema refuses, not what strict field validation
/// would; the valid fixtures are applied strictly by `valid_fixtures_apply_with_strict_field_validation`.)
fn server_dry_run(kubeconfig: &Path, file: &Path) -> (bool, String) {
    let out = Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args([
            "--request-timeout=30s",
            "apply",
            "--dry-run=server",
            "--validate=warn",
            "-f",
        ])
        .arg(file)
        .output()
        .expect("kubectl apply --dry-run=server");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn apiserver_schema_refuses_the_invalid_schema_fixtures() {
    let env = TestEnv::new("smoke-fixtures").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = kubeconfig_in(env.ns(), dir.path());
    let mut bad = Vec::new();
    // Refusals for these reasons say nothing about the schema.
    let wrong_reasons = [
        "no matches for kind",
        "could not find the requested resource",
        "Unable to connect",
        "connection refused",
        "i/o timeout",
    ];
    for f in fixture_files("tests/fixtures/invalid-schema") {
        let (ok, text) = server_dry_run(&kubeconfig, &f);
        if ok {
            bad.push(format!("{}: ACCEPTED: {text}", f.display()));
        } else if let Some(r) = wrong_reasons.iter().find(|r| text.contains(*r)) {
            bad.push(format!(
                "{}: refused for the wrong reason ({r}): {text}",
                f.display()
            ));
        } else if text.contains("namespace") && text.contains("\" not found") {
            bad.push(format!(
                "{}: refused for a missing namespace: {text}",
                f.display()
            ));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
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

/// Hub faults apply as published (docs/litmus-compatibility.md#crds): a strict apply of every fixture passes, the
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
        "only {experiments_with_description} fixtures carry a description: the test would not catch a CRD that drops it"
    );
    env.cleanup().await;
}
