//! Chart assertions for the security values (README "Security"; kept apart from tests/chart.rs
//! to keep each file short): which objects the admission-policy, kill-switch and Secret-scoping values render.
//! Offline (`helm template` only).
mod support;

use serde_json::Value;
use support::chart;

fn docs(args: &[&str]) -> Vec<Value> {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let yaml = chart::render("cs", "ccsys", &[], &args);
    yaml.split("\n---")
        .filter_map(|d| serde_norway::from_str::<Value>(d).ok())
        .filter(|v| v.is_object())
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn env_of(docs: &[Value], name: &str) -> Option<String> {
    let dep = of_kind(docs, "Deployment")[0];
    dep["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str().map(String::from))
}

fn rules_mention(role: &Value, resource: &str) -> bool {
    role["rules"].as_array().is_some_and(|r| {
        r.iter().any(|x| {
            x["resources"]
                .as_array()
                .is_some_and(|rs| rs.iter().any(|y| y == resource))
        })
    })
}

#[test]
fn defaults_policy_on_kill_switch_on_no_secrets() {
    let d = docs(&[]);
    // engine, experiment and schedule checks, and the guard of the recorded author.
    let policies: Vec<&str> = of_kind(&d, "ValidatingAdmissionPolicy")
        .iter()
        .filter_map(|p| p["metadata"]["name"].as_str())
        .collect();
    assert_eq!(
        policies,
        [
            "cs-chaos-conductor-engine-author",
            "cs-chaos-conductor-experiment-author",
            "cs-chaos-conductor-schedule-author",
            "cs-chaos-conductor-author-record",
        ]
    );
    let bindings = of_kind(&d, "ValidatingAdmissionPolicyBinding");
    assert_eq!(bindings.len(), 4);
    let mutating = of_kind(&d, "MutatingAdmissionPolicy");
    assert_eq!(mutating.len(), 1, "the author is recorded");
    assert_eq!(mutating[0]["spec"]["failurePolicy"], "Fail");
    assert_eq!(of_kind(&d, "MutatingAdmissionPolicyBinding").len(), 1);
    let cr = of_kind(&d, "ClusterRole")[0];
    assert!(
        rules_mention(cr, "localsubjectaccessreviews"),
        "the launch-time re-check: {cr}"
    );
    for b in &bindings {
        assert_eq!(b["spec"]["validationActions"], serde_json::json!(["Deny"]));
        assert!(
            b["spec"].get("matchResources").is_none(),
            "all namespaces by default: {b}"
        );
    }
    for p in of_kind(&d, "ValidatingAdmissionPolicy") {
        assert_eq!(p["spec"]["failurePolicy"], "Fail");
    }
    let cr = of_kind(&d, "ClusterRole")[0];
    assert!(
        !rules_mention(cr, "secrets"),
        "no Secret read by default: {cr}"
    );
    assert!(rules_mention(cr, "namespaces"));
    let cm = of_kind(&d, "ConfigMap");
    assert_eq!(cm.len(), 1);
    assert_eq!(cm[0]["metadata"]["name"], "cs-chaos-conductor-halt");
    assert!(
        cm[0].get("data").is_none(),
        "the chart must not own the halted key: {}",
        cm[0]
    );
    assert_eq!(
        env_of(&d, "HALT_CONFIGMAP").as_deref(),
        Some("ccsys/cs-chaos-conductor-halt")
    );
    assert_eq!(
        env_of(&d, "HALT_NAMESPACE_ANNOTATIONS").as_deref(),
        Some("true")
    );
    let halt_role = of_kind(&d, "Role")
        .into_iter()
        .find(|r| r["metadata"]["name"] == "cs-chaos-conductor-halt")
        .expect("kill switch Role");
    assert_eq!(
        halt_role["rules"][0]["resourceNames"],
        serde_json::json!(["cs-chaos-conductor-halt"])
    );
}

#[test]
fn values_turn_things_off_and_scope_secrets() {
    let d = docs(&[
        "--set",
        "admissionPolicy.enabled=false",
        "--set",
        "killSwitch.enabled=false",
        "--set",
        "rbac.secretsReadNamespaces={team-a,team-b}",
    ]);
    assert!(of_kind(&d, "ValidatingAdmissionPolicy").is_empty());
    assert!(of_kind(&d, "MutatingAdmissionPolicy").is_empty());
    assert!(of_kind(&d, "ConfigMap").is_empty());
    assert_eq!(env_of(&d, "HALT_CONFIGMAP").as_deref(), Some(""));
    assert_eq!(
        env_of(&d, "HALT_NAMESPACE_ANNOTATIONS").as_deref(),
        Some("false")
    );
    assert!(!rules_mention(of_kind(&d, "ClusterRole")[0], "namespaces"));
    let secret_roles: Vec<String> = of_kind(&d, "Role")
        .into_iter()
        .filter(|r| rules_mention(r, "secrets"))
        .map(|r| {
            r["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(secret_roles, vec!["team-a", "team-b"]);
}

#[test]
fn watch_namespace_binds_the_policy_to_that_namespace_and_no_namespace_watch() {
    let d = docs(&[
        "--set",
        "watchNamespace=litmus",
        "--set",
        "admissionPolicy.validationActions={Warn,Audit}",
    ]);
    // A dry run records no author (nothing may be held at launch either) and has no author guard.
    assert!(of_kind(&d, "MutatingAdmissionPolicy").is_empty());
    assert_eq!(of_kind(&d, "ValidatingAdmissionPolicyBinding").len(), 3);
    for b in of_kind(&d, "ValidatingAdmissionPolicyBinding") {
        assert_eq!(
            b["spec"]["matchResources"]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
            "litmus"
        );
        assert_eq!(
            b["spec"]["validationActions"],
            serde_json::json!(["Warn", "Audit"])
        );
    }
    assert!(of_kind(&d, "ClusterRole").is_empty());
    assert_eq!(
        env_of(&d, "HALT_NAMESPACE_ANNOTATIONS").as_deref(),
        Some("false")
    );
    let policy = of_kind(&d, "ValidatingAdmissionPolicy")
        .into_iter()
        .find(|p| p["metadata"]["name"] == "cs-chaos-conductor-engine-author")
        .expect("engine policy");
    let prefixes = policy["spec"]["variables"]
        .as_array()
        .and_then(|v| v.iter().find(|x| x["name"] == "imagePrefixes"))
        .expect("imagePrefixes");
    assert!(
        prefixes["expression"]
            .as_str()
            .unwrap_or_default()
            .contains("\"litmuschaos/\"")
    );
}
