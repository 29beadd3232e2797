//! The real-node tier (scripts/test-real): chaos-conductor installed with `helm install` (2
//! replicas, leader election) on a cluster with a real kubelet + containerd node, the hub's
//! pod-delete fault, rbac and engine as published (only namespace and app label adjusted), our
//! litmus-go stand-in image (examples/experiments.rs) pulled under the hub's image name from the
//! local registry, against a real busybox httpd Deployment of 2 replicas.
//!
//! Ignored in the kwok tier (`cargo test` skips them); scripts/test-real runs them with
//! `--ignored --test-threads=1` after `scripts/cluster up --real-node` and `helm install`.
mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, ensure};
use chaos_conductor::api::{ChaosEngine, ChaosResult};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use support::*;

/// Where scripts/test-real installs the chart.
const RELEASE_NS: &str = "chaos-conductor";
const RELEASE: &str = "chaos-conductor";
const REAL_NODE: &str = "real-node-0";
const APP_LABEL: &str = "app=httpd";

const FIXTURE: &str = include_str!("fixtures/valid/pod-delete.yaml");
const HUB_RBAC: &str = include_str!("fixtures/hub/pod-delete-rbac.yaml");

/// The fixture's documents: [0] the hub's fault.yaml (ChaosExperiment), [1] its engine.yaml.
fn fixture_docs() -> Vec<serde_json::Value> {
    use serde::Deserialize;
    serde_norway::Deserializer::from_str(FIXTURE)
        .map(|d| serde_json::Value::deserialize(d).expect("fixture parses"))
        .filter(|v| !v.is_null())
        .collect()
}

/// Fails at once (instead of timing out) when this is not the real-node tier.
async fn require_real_tier(env: &TestEnv) {
    let node = Api::<Node>::all(env.client())
        .get_opt(REAL_NODE)
        .await
        .expect("reading nodes");
    let ready = node
        .and_then(|n| n.status)
        .and_then(|s| s.conditions)
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    assert!(
        ready,
        "node {REAL_NODE} is not Ready: these tests need `scripts/cluster up --real-node` and \
         the chart installed (run scripts/test-real)"
    );
    let ctrl: Api<Deployment> = Api::namespaced(env.client(), RELEASE_NS);
    let d = ctrl
        .get_opt(RELEASE)
        .await
        .expect("reading the controller Deployment");
    assert!(
        d.is_some(),
        "no Deployment {RELEASE_NS}/{RELEASE}: install the chart first (scripts/test-real does)"
    );
}

/// The app under test: busybox httpd, 2 replicas, labelled app=httpd, from the hub-style image
/// name `busybox:1.36` (docker.io, served by the local registry through the mirror entry).
/// `requests` make the pods Burstable, which the failing-steady-state test's quota relies on.
/// A test namespace on the real node with the app deployed (the opening of most tests here).
async fn real_env_with_app(prefix: &str) -> TestEnv {
    let env = TestEnv::new(prefix).await;
    require_real_tier(&env).await;
    deploy_app(&env).await;
    env
}

/// Deletes the engine, then the test namespace (the end of every test here).
async fn delete_engine_and_clean_up(env: TestEnv, name: &str) {
    env.engines()
        .delete(name, &DeleteParams::default())
        .await
        .unwrap();
    env.cleanup().await;
}

async fn deploy_app(env: &TestEnv) -> Deployment {
    let app = serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "httpd", "labels": {"app": "httpd"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "httpd"}},
            "template": {
                "metadata": {"labels": {"app": "httpd"}},
                "spec": {
                    "terminationGracePeriodSeconds": 2,
                    "containers": [{
                        "name": "httpd", "image": "busybox:1.36", "imagePullPolicy": "Always",
                        "command": ["httpd", "-f", "-v", "-p", "8080", "-h", "/etc"],
                        "ports": [{"containerPort": 8080}],
                        "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
                        "resources": {"requests": {"cpu": "10m", "memory": "8Mi"}}
                    }]
                }
            }
        }
    });
    env.apply_yaml(&app.to_string())
        .await
        .expect("applying the app");
    wait_app_ready(env, 2).await
}

async fn wait_app_ready(env: &TestEnv, want: i32) -> Deployment {
    let api: Api<Deployment> = env.api();
    env.wait_for(
        &format!("Deployment httpd: {want} ready replicas"),
        secs(120),
        async || {
            let d = api.get("httpd").await?;
            let st = d.status.clone().unwrap_or_default();
            ensure!(
                st.ready_replicas.unwrap_or(0) >= want && st.updated_replicas.unwrap_or(0) >= want,
                "status {}",
                serde_json::to_string(&st)?
            );
            Ok(d)
        },
    )
    .await
}

async fn app_pod_uids(env: &TestEnv) -> BTreeSet<String> {
    env.pods()
        .list(&ListParams::default().labels(APP_LABEL))
        .await
        .expect("listing app pods")
        .items
        .into_iter()
        .filter_map(|p| p.metadata.uid)
        .collect()
}

/// The hub's rbac.yaml and fault.yaml unchanged (namespace adjusted), then its engine.yaml with
/// namespace and app label adjusted and `tweak` applied. Returns the engine name.
async fn apply_hub_pod_delete(
    env: &TestEnv,
    engine_name: &str,
    tweak: impl FnOnce(&mut serde_json::Value),
) -> String {
    let rbac = HUB_RBAC.replace("namespace: default", &format!("namespace: {}", env.ns()));
    env.apply_yaml(&rbac)
        .await
        .expect("applying the hub rbac.yaml");
    let docs = fixture_docs();
    env.apply_yaml_warn(&docs[0].to_string())
        .await
        .expect("applying the hub fault.yaml");
    let mut engine = docs[1].clone();
    engine["metadata"]["name"] = engine_name.into();
    engine["metadata"]["namespace"] = env.ns().into();
    engine["spec"]["appinfo"] = serde_json::json!({
        "appns": env.ns(), "applabel": APP_LABEL, "appkind": "deployment"
    });
    tweak(&mut engine);
    env.apply_yaml_warn(&engine.to_string())
        .await
        .expect("applying the hub engine.yaml");
    engine_name.to_string()
}

fn finished(e: &ChaosEngine) -> bool {
    e.status
        .as_ref()
        .is_some_and(|s| s.engine_status == "completed" || s.engine_status == "stopped")
}

fn experiment_entry(e: &ChaosEngine) -> (String, String, String) {
    let st = e.status.clone().unwrap_or_default();
    let x = st.experiments.first().cloned().unwrap_or_default();
    (x.status, x.verdict, x.experiment_pod)
}

/// Every Job UID ever seen for engines in the namespace (a watch from before the engine exists).
fn record_jobs(env: &TestEnv) -> (Arc<Mutex<BTreeSet<String>>>, tokio::task::JoinHandle<()>) {
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let jobs: Api<Job> = env.jobs();
    let s = seen.clone();
    let task = tokio::spawn(async move {
        let stream = watcher(jobs, watcher::Config::default().labels("chaosUID"))
            .default_backoff()
            .applied_objects();
        let mut stream = std::pin::pin!(stream);
        while let Some(Ok(job)) = stream.next().await {
            if let Some(uid) = job.metadata.uid {
                s.lock().unwrap().insert(uid);
            }
        }
    });
    (seen, task)
}

async fn experiment_pod_of(env: &TestEnv, engine: &ChaosEngine) -> Option<Pod> {
    let uid = engine.metadata.uid.clone()?;
    env.pods()
        .list(&ListParams::default().labels(&format!("chaosUID={uid}")))
        .await
        .ok()?
        .items
        .into_iter()
        .find(|p| {
            p.metadata
                .labels
                .as_ref()
                .is_some_and(|l| l.contains_key("job-name"))
        })
}

async fn pod_log(env: &TestEnv, pod: &str) -> String {
    env.pods()
        .logs(pod, &LogParams::default())
        .await
        .unwrap_or_else(|e| format!("<no log: {e}>"))
}

async fn result_of(env: &TestEnv, name: &str) -> ChaosResult {
    env.results()
        .get(&format!("{name}-pod-delete"))
        .await
        .expect("reading the ChaosResult")
}

/// Asserts that the experiment ran in a real container on the real node, from our image.
fn assert_real_container(pod: &Pod) {
    let spec = pod.spec.clone().unwrap_or_default();
    assert_eq!(
        spec.node_name.as_deref(),
        Some(REAL_NODE),
        "experiment pod on the real node"
    );
    let image = &spec.containers[0].image;
    assert_eq!(
        image.as_deref(),
        Some("litmuschaos.docker.scarf.sh/litmuschaos/go-runner:3.17.0"),
        "the hub's image name, unchanged"
    );
    let cs = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.clone())
        .unwrap_or_default();
    let main = cs.first().expect("a container status");
    assert!(
        main.container_id
            .as_deref()
            .is_some_and(|id| id.starts_with("containerd://")),
        "a containerd container: {main:?}"
    );
    assert!(
        main.image_id.contains("@sha256:"),
        "pulled by digest from the registry: {}",
        main.image_id
    );
}

#[tokio::test]
#[ignore = "real-node tier: run by scripts/test-real"]
async fn hub_pod_delete_passes_against_real_pods() {
    let env = real_env_with_app("real-pass").await;
    let before = app_pod_uids(&env).await;
    let (jobs, watch) = record_jobs(&env);
    let name = apply_hub_pod_delete(&env, "httpd-chaos", |_| {}).await;

    // While it runs: the experiment pod's own log shows the real deletions.
    let engines = env.engines();
    let running = env
        .wait_for("experiment pod Running", secs(120), async || {
            let e = engines.get(&name).await?;
            let pod = experiment_pod_of(&env, &e)
                .await
                .ok_or_else(|| anyhow!("no experiment pod yet"))?;
            ensure!(pod_phase(&pod) == "Running", "pod {}", pod_phase(&pod));
            Ok(pod)
        })
        .await;
    let pod_name = running.metadata.name.clone().unwrap();
    let log = env
        .wait_for(
            "the experiment's log shows a deletion",
            secs(60),
            async || {
                let log = pod_log(&env, &pod_name).await;
                ensure!(
                    log.contains("Killing the following pods"),
                    "log so far:\n{log}"
                );
                Ok(log)
            },
        )
        .await;
    eprintln!("[real] experiment pod {pod_name} log (first lines):\n{log}");

    let engine = wait_engine_within(&env, &name, "completed", secs(240), finished).await;
    let (status, verdict, exp_pod) = experiment_entry(&engine);
    assert_eq!(engine.status.as_ref().unwrap().engine_status, "completed");
    assert_eq!(
        (status.as_str(), verdict.as_str()),
        ("Completed", "Pass"),
        "{engine:?}"
    );
    assert_eq!(engine.status.as_ref().unwrap().verdict, "Pass");
    assert_eq!(exp_pod, pod_name);

    // Real pods were deleted and replaced: some of the original pods are gone, 2 ready again.
    let after = app_pod_uids(&env).await;
    assert!(
        before.iter().any(|u| !after.contains(u)),
        "no original app pod was deleted: before {before:?} after {after:?}"
    );
    wait_app_ready(&env, 2).await;

    let result = result_of(&env, &name).await;
    let st = result.status.clone().unwrap_or_default();
    assert_eq!(st.experiment_status.verdict, "Pass");
    let targets = st.history.map(|h| h.targets).unwrap_or_default();
    assert!(!targets.is_empty(), "the result lists the pods it hit");

    // The experiment container exited 0 (litmus-go exits 0 whatever the verdict), a real
    // container from our image; one Job only.
    if let Some(pod) = env.pods().get_opt(&pod_name).await.unwrap() {
        assert_real_container(&pod);
        let term = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.clone())
            .unwrap_or_default()[0]
            .state
            .clone()
            .and_then(|s| s.terminated)
            .map(|t| t.exit_code);
        assert_eq!(term, Some(0), "experiment exit code");
    } else {
        assert_real_container(&running);
    }
    watch.abort();
    assert_eq!(jobs.lock().unwrap().len(), 1, "exactly one Job");
    delete_engine_and_clean_up(env, &name).await;
}

#[tokio::test]
#[ignore = "real-node tier: run by scripts/test-real"]
async fn app_that_does_not_recover_fails_the_steady_state_check() {
    let env = real_env_with_app("real-fail").await;
    // The app cannot recover: a quota on Burstable pods (the app's) admits no replacement. The
    // experiment pod (BestEffort, as fault.yaml sets no resources) is not counted.
    let quota = serde_json::json!({
        "apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": {"name": "no-replacements"},
        "spec": {"hard": {"pods": "1"}, "scopes": ["NotBestEffort"]}
    });
    env.apply_yaml(&quota.to_string()).await.unwrap();
    let name = apply_hub_pod_delete(&env, "httpd-chaos-fail", |e| {
        e["spec"]["experiments"][0]["spec"]["components"]["statusCheckTimeouts"] =
            serde_json::json!({"delay": 1, "timeout": 15});
    })
    .await;
    let engine = wait_engine_within(&env, &name, "completed", secs(240), finished).await;
    let (status, verdict, _) = experiment_entry(&engine);
    assert_eq!(
        (status.as_str(), verdict.as_str()),
        ("Completed", "Fail"),
        "{engine:?}"
    );
    assert_eq!(engine.status.as_ref().unwrap().verdict, "Fail");
    let st = result_of(&env, &name).await.status.unwrap_or_default();
    assert_eq!(st.experiment_status.verdict, "Fail");
    let err = st.experiment_status.error_output.unwrap_or_default();
    assert_eq!(err.error_code, "STATUS_CHECKS_ERROR", "{err:?}");
    assert!(
        err.reason.contains("1 of 2"),
        "reason names the shortfall: {}",
        err.reason
    );
    delete_engine_and_clean_up(env, &name).await;
}

#[tokio::test]
#[ignore = "real-node tier: run by scripts/test-real"]
async fn engine_stop_mid_chaos_sigterms_the_real_container_and_leaves_nothing() {
    let env = real_env_with_app("real-stop").await;
    let name = apply_hub_pod_delete(&env, "httpd-chaos-stop", |e| {
        // Long enough to be stopped in the middle; the grace period lets the handler write.
        e["spec"]["experiments"][0]["spec"]["components"]["env"][0]["value"] = "120".into();
        e["spec"]["terminationGracePeriodSeconds"] = 10.into();
    })
    .await;
    let engines = env.engines();
    let pod = env
        .wait_for("chaos under way (a pod deleted)", secs(120), async || {
            let e = engines.get(&name).await?;
            let pod = experiment_pod_of(&env, &e)
                .await
                .ok_or_else(|| anyhow!("no experiment pod yet"))?;
            let pod_name = pod.metadata.name.clone().unwrap_or_default();
            let log = pod_log(&env, &pod_name).await;
            ensure!(
                log.contains("Killing the following pods"),
                "log so far:\n{log}"
            );
            Ok(pod)
        })
        .await;
    assert_real_container(&pod);
    let uid = engines.get(&name).await.unwrap().metadata.uid.unwrap();
    engines
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"engineState": "stop"}})),
        )
        .await
        .unwrap();
    let engine = wait_engine_within(&env, &name, "stopped", secs(120), |e| {
        e.status
            .as_ref()
            .is_some_and(|s| s.engine_status == "stopped")
    })
    .await;
    eprintln!("[real] stopped: {:?}", experiment_entry(&engine));

    // The real process got SIGTERM and wrote Stopped itself (the controller marks only results
    // still Running; this one carries the experiment's own Abort event).
    let st = result_of(&env, &name).await.status.unwrap_or_default();
    assert_eq!(st.experiment_status.verdict, "Stopped");
    let pod_name = pod.metadata.name.clone().unwrap();
    let abort_event = env
        .wait_for("the experiment's own Abort event", secs(30), async || {
            env.events()
                .get_opt(&format!("Abort{pod_name}"))
                .await?
                .ok_or_else(|| anyhow!("no Abort{pod_name} event"))
        })
        .await;
    assert_eq!(
        abort_event.source.and_then(|s| s.component).as_deref(),
        Some(pod_name.as_str())
    );
    // No residue: no Job or pod labelled with the engine's UID; the app is whole again.
    env.wait_for("no chaos residue", secs(60), async || {
        let sel = ListParams::default().labels(&format!("chaosUID={uid}"));
        let jobs = env.jobs().list(&sel).await?.items.len();
        let pods = env.pods().list(&sel).await?.items.len();
        ensure!(jobs == 0 && pods == 0, "{jobs} jobs, {pods} pods left");
        Ok(())
    })
    .await;
    wait_app_ready(&env, 2).await;
    delete_engine_and_clean_up(env, &name).await;
}

async fn lease_holder(client: &kube::Client) -> anyhow::Result<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), RELEASE_NS);
    for l in leases.list(&ListParams::default()).await?.items {
        if let Some(h) = l.spec.and_then(|s| s.holder_identity)
            && h.starts_with(RELEASE)
        {
            return Ok(h);
        }
    }
    Err(anyhow!("no Lease held in {RELEASE_NS}"))
}

#[tokio::test]
#[ignore = "real-node tier: run by scripts/test-real"]
async fn leader_pod_deleted_mid_run_fails_over_without_a_second_job() {
    let env = TestEnv::new("real-failover").await;
    require_real_tier(&env).await;
    let client = env.client();
    let ctrl: Api<Deployment> = Api::namespaced(client.clone(), RELEASE_NS);
    env.wait_for("2 controller replicas ready", secs(120), async || {
        let d = ctrl.get(RELEASE).await?;
        let ready = d.status.and_then(|s| s.ready_replicas).unwrap_or(0);
        ensure!(ready == 2, "{ready} ready");
        Ok(())
    })
    .await;
    let leader = env
        .wait_for("a leader", secs(60), async || lease_holder(&client).await)
        .await;
    deploy_app(&env).await;
    let (jobs, watch) = record_jobs(&env);
    let name = apply_hub_pod_delete(&env, "httpd-chaos-failover", |_| {}).await;
    let engines = env.engines();
    env.wait_for("experiment pod Running", secs(120), async || {
        let e = engines.get(&name).await?;
        let pod = experiment_pod_of(&env, &e)
            .await
            .ok_or_else(|| anyhow!("no experiment pod yet"))?;
        ensure!(pod_phase(&pod) == "Running", "pod {}", pod_phase(&pod));
        Ok(())
    })
    .await;
    // The leader's pod is named in its holder identity (the pod name, maybe with a suffix).
    let pods: Api<Pod> = Api::namespaced(client.clone(), RELEASE_NS);
    let leader_pod = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .find(|n| leader.starts_with(n.as_str()) || leader.contains(n.as_str()))
        .unwrap_or_else(|| panic!("no pod for leader identity {leader}"));
    eprintln!("[real] deleting leader pod {leader_pod} mid-run");
    pods.delete(&leader_pod, &DeleteParams::default())
        .await
        .unwrap();
    let engine = wait_engine_within(&env, &name, "completed", secs(240), finished).await;
    let (status, verdict, _) = experiment_entry(&engine);
    assert_eq!(
        (status.as_str(), verdict.as_str()),
        ("Completed", "Pass"),
        "{engine:?}"
    );
    let new_leader = lease_holder(&client).await.unwrap();
    assert!(
        !new_leader.contains(leader_pod.as_str()),
        "leadership moved off {leader_pod}: {new_leader}"
    );
    watch.abort();
    assert_eq!(jobs.lock().unwrap().len(), 1, "one Job across the failover");
    delete_engine_and_clean_up(env, &name).await;
}
