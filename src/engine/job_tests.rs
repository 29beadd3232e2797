//! Job rendering, env precedence, volume merging and TARGETS (src/engine/job/), with no cluster.
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::EnvVar;
use proptest::prelude::*;
use serde_json::json;

use crate::api::*;
use crate::engine::fixtures::*;
use crate::engine::job::{self, merge_env, merge_volume_sources, render_job, targets};
use crate::engine::plan::{gate, plan, resolve};

#[test]
fn rendered_job_follows_litmus() {
    let e = engine_yaml(json!({
        "terminationGracePeriodSeconds": 60,
        "jobCleanUpPolicy": "retain",
        "experiments": [{"name": "pod-delete", "spec": {"components": {
            "env": [{"name": "TOTAL_CHAOS_DURATION", "value": "30"}, {"name": "STATUS_CHECK_TIMEOUT", "value": "5"}],
            "experimentAnnotations": {"sidecar.istio.io/inject": "false"},
            "experimentImage": "my/go-runner:1",
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "statusCheckTimeouts": {"timeout": 300},
            "configMaps": [{"name": "exp-config", "mountPath": "/mnt/other"}, {"name": "more", "mountPath": "/mnt/more"}]
        }}}]
    }));
    let o = observed_all_present(&["pod-delete"]);
    let j = render_job(&gate(resolve(&e, &o, "pod-delete").unwrap(), 3, 1).unwrap());
    let name = j.metadata.name.clone().unwrap();
    let labels = j.metadata.labels.clone().unwrap();
    assert_eq!(
        labels["chaosUID"], UID,
        "chaosUID is applied after the engine's own chaosUID label"
    );
    assert_eq!(labels["name"], "pod-delete");
    assert_eq!(labels["context"], "demo");
    let owner = &j.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("ChaosEngine", UID, Some(true))
    );
    let spec = j.spec.unwrap();
    assert_eq!(spec.backoff_limit, Some(0));
    let tpl = spec.template;
    assert_eq!(
        tpl.metadata.unwrap().annotations.unwrap()["sidecar.istio.io/inject"],
        "false"
    );
    let pod = tpl.spec.unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some("pod-delete-sa"));
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    assert_eq!(pod.termination_grace_period_seconds, Some(60));
    let main = &pod.containers[0];
    assert_eq!(main.name, name, "main container is named like the Job");
    assert_eq!(main.image.as_deref(), Some("my/go-runner:1"));
    let env: BTreeMap<String, Option<String>> = main
        .env
        .clone()
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.value))
        .collect();
    let v = |k: &str| env.get(k).cloned().flatten();
    assert_eq!(v("CHAOSENGINE").as_deref(), Some("nginx-chaos"));
    assert_eq!(
        v("TARGETS").as_deref(),
        Some("deployment:default:[app=nginx]")
    );
    assert_eq!(v("CHAOS_UID").as_deref(), Some(UID));
    assert_eq!(v("EXPERIMENT_NAME").as_deref(), Some("pod-delete"));
    assert_eq!(
        v("TOTAL_CHAOS_DURATION").as_deref(),
        Some("30"),
        "engine env beats experiment env"
    );
    assert_eq!(
        v("DEFAULT_HEALTH_CHECK").as_deref(),
        Some("false"),
        "experiment env beats runner-derived"
    );
    assert_eq!(
        v("STATUS_CHECK_TIMEOUT").as_deref(),
        Some("300"),
        "forced after user env"
    );
    assert_eq!(v("STATUS_CHECK_DELAY").as_deref(), Some("2"));
    assert_eq!(v("JOB_CLEANUP_POLICY").as_deref(), Some("retain"));
    assert_eq!(v("TERMINATION_GRACE_PERIOD_SECONDS").as_deref(), Some("60"));
    assert_eq!(v("LIB_IMAGE_PULL_POLICY").as_deref(), Some("Always"));
    let pod_name = main.env.as_ref().unwrap().last().unwrap();
    assert_eq!(pod_name.name, "POD_NAME");
    assert_eq!(
        pod_name
            .value_from
            .as_ref()
            .unwrap()
            .field_ref
            .as_ref()
            .unwrap()
            .field_path,
        "metadata.name"
    );
    let mounts: Vec<(String, String)> = main
        .volume_mounts
        .clone()
        .unwrap()
        .into_iter()
        .map(|m| (m.name, m.mount_path))
        .collect();
    assert_eq!(
        mounts,
        vec![
            ("exp-config".into(), "/mnt/other".into()),
            ("more".into(), "/mnt/more".into()),
            ("cloud-secret".into(), "/etc/cloud".into()),
        ]
    );
    assert_eq!(pod.node_selector.unwrap()["kubernetes.io/os"], "linux");
}

#[test]
fn sidecars_get_their_env_and_shared_secret_volumes() {
    let mut e = engine_yaml(json!({"components": {"sidecar": [{
        "image": "fluent/fluent-bit:2.2", "env": [{"name": "LOG_LEVEL", "value": "info"}],
        "secrets": [{"name": "cloud-secret", "mountPath": "/etc/fb"}]
    }]}}));
    e.metadata.annotations = Some(BTreeMap::from([(
        SIDECAR_ANNOTATION.to_string(),
        "true".to_string(),
    )]));
    let o = observed_all_present(&["pod-delete"]);
    let j = render_job(&gate(resolve(&e, &o, "pod-delete").unwrap(), 1, 1).unwrap());
    let pod = j.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.containers.len(), 2);
    let sc = &pod.containers[1];
    assert!(
        sc.name
            .starts_with(&format!("{}-sidecar-", pod.containers[0].name))
    );
    assert_eq!(sc.image_pull_policy.as_deref(), Some("IfNotPresent"));
    let names: Vec<&str> = sc
        .env
        .as_ref()
        .unwrap()
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(
        names,
        vec!["LOG_LEVEL", "POD_NAME", "POD_NAMESPACE", "MAIN_CONTAINER"]
    );
    let vols: Vec<&str> = pod
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(
        vols.iter().filter(|v| **v == "cloud-secret").count(),
        1,
        "no duplicate volume names"
    );
}

#[test]
fn targets_follow_litmus_formats() {
    let cases = vec![
        (json!({"appinfo": null}), ""),
        (
            json!({"appinfo": {"applabel": "app=x", "appkind": "deployment"}}),
            "deployment:litmus:[app=x]",
        ),
        (json!({"appinfo": {"appns": "prod"}}), "KIND:prod:[]"),
        (
            json!({"appinfo": null, "selectors": {"workloads": [
            {"kind": "deployment", "namespace": "a", "names": "x,y"},
            {"kind": "statefulset", "namespace": "b", "labels": "app=db"}]}}),
            "deployment:a:[x,y];statefulset:b:[app=db]",
        ),
        (
            json!({"appinfo": null, "selectors": {"pods": [{"namespace": "a", "names": "p1,p2"}]}}),
            "pod:a:[p1,p2]",
        ),
    ];
    for (spec, want) in cases {
        assert_eq!(targets(&engine_yaml(spec.clone())), want, "{spec}");
    }
}

#[test]
fn instance_id_changes_the_result_name() {
    let e = engine_yaml(
        json!({"experiments": [{"name": "pod-delete", "spec": {"components": {"env": [
        {"name": "INSTANCE_ID", "value": "run-7"}]}}}]}),
    );
    let d = plan(&e, &observed_all_present(&["pod-delete"]), now(), &cfg());
    assert_eq!(
        d.status.experiments[0].result_name,
        "nginx-chaos-pod-delete-run-7"
    );
}

fn env_var(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}

proptest! {
    #[test]
    fn env_precedence_holds_for_any_names(
        exp_env in proptest::collection::vec(("[A-Z_]{1,6}", "[a-z0-9]{0,4}"), 0..8),
        eng_env in proptest::collection::vec(("[A-Z_]{1,6}", "[a-z0-9]{0,4}"), 0..8),
    ) {
        let mut exp = experiment("pod-delete");
        exp.spec.definition.env = exp_env.iter().map(|(n, v)| env_var(n, v)).collect();
        let mut e = engine();
        e.spec.experiments[0].spec.components.env = eng_env.iter().map(|(n, v)| env_var(n, v)).collect();
        let merged = merge_env(&e, &exp, &e.spec.experiments[0]);
        let names: Vec<&str> = merged.iter().map(|v| v.name.as_str()).collect();
        let unique: std::collections::BTreeSet<&str> = names.iter().copied().collect();
        prop_assert_eq!(names.len(), unique.len(), "each name once");
        let get = |n: &str| merged.iter().find(|v| v.name == n).and_then(|v| v.value.clone());
        let forced = ["STATUS_CHECK_DELAY", "STATUS_CHECK_TIMEOUT", "JOB_CLEANUP_POLICY", "POD_NAME"];
        for (n, _) in eng_env.iter().chain(exp_env.iter()) {
            if forced.contains(&n.as_str()) { continue; }
            let want = eng_env.iter().rev().find(|(k, _)| k == n)
                .or_else(|| exp_env.iter().rev().find(|(k, _)| k == n))
                .map(|(_, v)| v.clone());
            prop_assert_eq!(get(n), want, "{}", n);
        }
        prop_assert_eq!(get("STATUS_CHECK_TIMEOUT"), Some("180".to_string()));
        prop_assert_eq!(merged.last().map(|v| v.name.as_str()), Some("POD_NAME"));
    }

    #[test]
    fn volume_merge_keeps_experiment_order_and_engine_wins(
        exp in proptest::collection::btree_map("[a-d]", "/[a-z]{1,3}", 0..4),
        eng in proptest::collection::vec(("[a-f]", "/[a-z]{1,3}"), 0..5),
    ) {
        let exp_v: Vec<VolumeSource> = exp.iter().map(|(n, m)| VolumeSource { name: n.clone(), mount_path: m.clone() }).collect();
        let eng_v: Vec<VolumeSource> = eng.iter().map(|(n, m)| VolumeSource { name: n.clone(), mount_path: m.clone() }).collect();
        let merged = merge_volume_sources(&exp_v, &eng_v);
        // Every experiment entry stays, in its place; the engine's last word on a name wins.
        for (i, v) in exp_v.iter().enumerate() {
            prop_assert_eq!(&merged[i].name, &v.name);
        }
        for v in &merged {
            let want = eng_v.iter().rev().find(|e| e.name == v.name).map(|e| &e.mount_path)
                .or_else(|| exp_v.iter().find(|e| e.name == v.name).map(|e| &e.mount_path));
            prop_assert_eq!(Some(&v.mount_path), want);
        }
        let names: std::collections::BTreeSet<&String> = exp_v.iter().chain(eng_v.iter()).map(|v| &v.name).collect();
        prop_assert!(merged.len() >= names.len());
    }

    #[test]
    fn job_names_are_litmus_shaped_and_deterministic(uid in "[a-f0-9-]{36}", run in 1i64..1000, idx in 0usize..20) {
        let a = job::job_name("pod-delete", &uid, run, idx, 1);
        prop_assert_eq!(&a, &job::job_name("pod-delete", &uid, run, idx, 1));
        let suffix = &a["pod-delete-".len()..];
        prop_assert_eq!(suffix.len(), 6);
        prop_assert!(suffix.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    }
}
