//! The Helm chart against the real local control plane (scripts/cluster up): the apiserver accepts
//! the chart's CRDs and both renderings (server-side dry-run, no warnings), and the controller's pod
//! passes Pod Security "restricted" admission. The offline checks of the same renderings are in
//! tests/chart.rs.
mod support;

use std::path::Path;
use std::process::Command;

use serde_json::json;
use support::tools::{helm, kubectl, repo, run_ok, yaml_documents};
use support::*;

const RELEASE: &str = "chaos-conductor";

fn kubectl_cmd() -> Command {
    let mut cmd = Command::new(kubectl());
    cmd.arg("--kubeconfig")
        .arg(kubeconfig_path())
        .arg("--request-timeout=30s");
    cmd
}

fn render(release_ns: &str, sets: &[String]) -> String {
    let mut cmd = Command::new(helm());
    cmd.args(["template", RELEASE])
        .arg(repo().join("charts/chaos-conductor"))
        .args(["--namespace", release_ns]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    run_ok(&mut cmd, &format!("helm template {sets:?}"))
}

/// `kubectl <args> -f <file>` must succeed without printing a warning.
fn dry_run_clean(args: &[&str], file: &Path, what: &str) {
    let out = kubectl_cmd()
        .args(args)
        .arg("-f")
        .arg(file)
        .output()
        .expect("running kubectl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{what}: the apiserver refused:\n{text}"
    );
    assert!(
        !text.to_lowercase().contains("warning"),
        "{what}: the apiserver warned:\n{text}"
    );
}

/// Makes `ns` enforce (and warn about) Pod Security "restricted".
fn restrict(ns: &str) {
    run_ok(
        kubectl_cmd().args([
            "label",
            "--overwrite",
            "namespace",
            ns,
            "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/warn=restricted",
        ]),
        "labelling the namespace restricted",
    );
}

#[tokio::test]
async fn apiserver_accepts_the_chart_crds_and_both_renderings() {
    let release = TestEnv::new("chart-release").await;
    let watched = TestEnv::new("chart-watched").await;
    // A Deployment whose pods would break "restricted" draws a warning, which fails the dry-run.
    restrict(release.ns());
    let dir = tempfile::tempdir().expect("temp dir");

    // Server-side apply, as scripts/cluster does: the CRDs overflow client-side apply's annotation.
    dry_run_clean(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--dry-run=server",
        ],
        &repo().join("charts/chaos-conductor/crds/litmuschaos.yaml"),
        "the chart's CRDs",
    );

    let has_service_monitor = kubectl_cmd()
        .args(["get", "crd", "servicemonitors.monitoring.coreos.com"])
        .output()
        .is_ok_and(|o| o.status.success());
    let mut variant = vec![
        format!("watchNamespace={}", watched.ns()),
        "replicas=2".to_string(),
        "serviceMonitor.enabled=true".to_string(),
        "networkPolicy.enabled=true".to_string(),
    ];
    if !has_service_monitor {
        // The cluster lacks the CRD: the ServiceMonitor is checked offline only (tests/chart.rs).
        variant.push("serviceMonitor.enabled=false".to_string());
    }
    for (what, sets) in [("default values", vec![]), ("variant values", variant)] {
        let file = dir.path().join("rendered.yaml");
        std::fs::write(&file, render(release.ns(), &sets)).expect("write the rendering");
        dry_run_clean(&["apply", "--dry-run=server"], &file, what);
    }
    release.cleanup().await;
    watched.cleanup().await;
}

#[tokio::test]
async fn controller_pod_passes_pod_security_restricted_admission() {
    let env = TestEnv::new("chart-restricted").await;
    restrict(env.ns());
    // Admission judges Pods (a Deployment is only warned about): a Pod from the template.
    let docs = yaml_documents(&render(env.ns(), &[]));
    let dep = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment");
    let tpl = &dep["spec"]["template"];
    let mut spec = tpl["spec"].clone();
    // The ServiceAccount is not created (dry-run only): admission must not look it up.
    if let Some(s) = spec.as_object_mut() {
        s.remove("serviceAccountName");
        s.insert("automountServiceAccountToken".into(), json!(false));
    }
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "chart-restricted", "namespace": env.ns(),
                     "labels": tpl["metadata"]["labels"]},
        "spec": spec,
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("pod.json");
    std::fs::write(&file, pod.to_string()).expect("write the pod");
    dry_run_clean(
        &["create", "--dry-run=server"],
        &file,
        "the controller pod in a namespace enforcing Pod Security restricted",
    );
    env.cleanup().await;
}
