//! The Helm chart (charts/chaos-conductor) without a cluster: `helm lint --strict` and the objects
//! `helm template` renders with the default values (cluster-wide) and a variant (one watched
//! namespace, two replicas, ServiceMonitor, NetworkPolicy). The RBAC must be exactly the
//! controller's needs, the Deployment must meet Pod Security "restricted", and env, probes, ports
//! and resources must be what the binary reads. helm comes from `scripts/build-bins helm`.
//!
//! The same renderings against a real apiserver (server-side dry-run, Pod Security admission) are
//! in tests/chart_cluster.rs.
#[path = "support/tools.rs"]
mod tools;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::{Value, json};

const RELEASE: &str = "chaos-conductor";
const RELEASE_NS: &str = "chaos-conductor-chart";
const WATCH_NS: &str = "litmus";

fn variant() -> Vec<String> {
    [
        format!("watchNamespace={WATCH_NS}"),
        "replicas=2".into(),
        "serviceMonitor.enabled=true".into(),
        "networkPolicy.enabled=true".into(),
    ]
    .into()
}

fn render(sets: &[String]) -> Vec<Value> {
    let mut cmd = Command::new(tools::helm());
    cmd.args(["template", RELEASE])
        .arg(tools::repo().join("charts/chaos-conductor"))
        .args(["--namespace", RELEASE_NS]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    tools::yaml_documents(&tools::run_ok(&mut cmd, &format!("helm template {sets:?}")))
}

/// (apiGroup, resource) → verbs.
type Rules = BTreeMap<(String, String), BTreeSet<String>>;

fn rules(entries: &[(&str, &str, &[&str])]) -> Rules {
    entries
        .iter()
        .map(|(g, r, verbs)| {
            (
                (g.to_string(), r.to_string()),
                verbs.iter().map(|v| v.to_string()).collect(),
            )
        })
        .collect()
}

/// Exactly what the controller calls (src/controller, src/leader.rs): nothing more, so a rule the
/// code stopped using fails here, and nothing less, or the controller is Forbidden at run time.
fn controller_rules() -> Rules {
    rules(&[
        // create/delete: the ChaosSchedule reconciler (src/scheduler) makes and prunes engines.
        (
            "litmuschaos.io",
            "chaosengines",
            &["get", "list", "watch", "patch", "create", "delete"],
        ),
        ("litmuschaos.io", "chaosengines/status", &["patch"]),
        // ChaosSchedules (values.schedules, default true): src/scheduler.
        (
            "litmuschaos.io",
            "chaosschedules",
            &["get", "list", "watch", "patch"],
        ),
        ("litmuschaos.io", "chaosschedules/status", &["patch"]),
        ("litmuschaos.io", "chaosschedules/finalizers", &["update"]),
        ("litmuschaos.io", "chaosexperiments", &["get"]),
        (
            "litmuschaos.io",
            "chaosresults",
            &["get", "list", "watch", "update"],
        ),
        (
            "batch",
            "jobs",
            // No deletecollection: an abort deletes only the Jobs it owns, one by one.
            &["get", "list", "watch", "create", "delete"],
        ),
        (
            "",
            "pods",
            &["get", "list", "watch", "delete", "deletecollection"],
        ),
        ("", "events", &["create", "patch", "get"]),
        ("", "configmaps", &["get"]),
        ("", "serviceaccounts", &["get"]),
        // The launch-time re-check of the recorded author (src/controller/author.rs).
        (
            "authorization.k8s.io",
            "localsubjectaccessreviews",
            &["create"],
        ),
    ])
}

/// The controller's ClusterRole: its rules plus the Namespace watch of the per-namespace kill
/// switch (README "Security"; a Role cannot grant a cluster-scoped resource).
fn cluster_rules() -> Rules {
    let mut r = controller_rules();
    r.extend(rules(&[("", "namespaces", &["list", "watch"])]));
    r
}

/// The kill switch Role (src/controller/halt/): the one ConfigMap, by name, in the release
/// namespace. Checked whole (flatten refuses resourceNames).
fn is_halt_role(role: &Value) -> bool {
    role["rules"]
        == serde_json::json!([{"apiGroups": [""], "resources": ["configmaps"],
            "resourceNames": [format!("{RELEASE}-halt")], "verbs": ["get", "list", "watch"]}])
}

/// The leader-election Role as the chart grants it: src/leader.rs gets, creates and replaces (PUT,
/// verb `update`) the Lease; it never patches it.
fn lease_rules() -> Rules {
    rules(&[(
        "coordination.k8s.io",
        "leases",
        &["get", "create", "update"],
    )])
}

/// Collects every broken expectation, so one run reports them all.
#[derive(Default)]
struct Checks(Vec<String>);

impl Checks {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }
    fn assert_none(self) {
        assert!(
            self.0.is_empty(),
            "the rendered chart is wrong:\n  - {}",
            self.0.join("\n  - ")
        );
    }
}

fn str_list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// A Role's rules as (group, resource) → verbs, refusing wildcards, resourceNames and
/// nonResourceURLs.
fn flatten(c: &mut Checks, role: &Value, at: &str) -> Rules {
    let mut out = Rules::new();
    for rule in role["rules"].as_array().into_iter().flatten() {
        for key in ["resourceNames", "nonResourceURLs"] {
            c.check(rule.get(key).is_none(), || {
                format!("{at}: unexpected {key} in rule {rule}")
            });
        }
        let (groups, resources, verbs) = (
            str_list(&rule["apiGroups"]),
            str_list(&rule["resources"]),
            str_list(&rule["verbs"]),
        );
        for (field, values) in [
            ("apiGroups", &groups),
            ("resources", &resources),
            ("verbs", &verbs),
        ] {
            c.check(!values.iter().any(|v| v.contains('*')), || {
                format!("{at}: wildcard '*' in {field}: {values:?}")
            });
        }
        for g in &groups {
            for r in &resources {
                out.entry((g.clone(), r.clone()))
                    .or_default()
                    .extend(verbs.iter().cloned());
            }
        }
    }
    out
}

fn forbidden(c: &mut Checks, rules: &Rules, at: &str) {
    let secrets = rules
        .get(&(String::new(), "secrets".into()))
        .cloned()
        .unwrap_or_default();
    c.check(
        !secrets.contains("list") && !secrets.contains("watch"),
        || format!("{at}: secrets must not be listable/watchable: {secrets:?}"),
    );
    for (_, r) in rules.keys() {
        c.check(
            !r.starts_with("pods/exec") && !r.starts_with("pods/attach"),
            || format!("{at}: grants {r}"),
        );
    }
}

fn same(c: &mut Checks, actual: &Rules, expected: &Rules, at: &str) {
    let keys: BTreeSet<_> = actual.keys().chain(expected.keys()).collect();
    for k in keys {
        let (a, e) = (actual.get(k), expected.get(k));
        c.check(a == e, || {
            let group = if k.0.is_empty() { "core" } else { &k.0 };
            format!("{at}: {group}/{}: rendered {a:?}, expected {e:?}", k.1)
        });
    }
}

fn by_kind(docs: &[Value]) -> BTreeMap<String, Vec<&Value>> {
    let mut kinds: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for d in docs {
        kinds
            .entry(d["kind"].as_str().unwrap_or_default().to_string())
            .or_default()
            .push(d);
    }
    kinds
}

fn env_of(container: &Value) -> BTreeMap<String, Value> {
    container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let value = e
                .get("value")
                .or_else(|| e.get("valueFrom"))
                .cloned()
                .unwrap_or(Value::Null);
            (e["name"].as_str().unwrap_or_default().to_string(), value)
        })
        .collect()
}

fn check_deployment(c: &mut Checks, dep: &Value, at: &str, leader_elect: &str, watch: &str) {
    let spec = &dep["spec"]["template"]["spec"];
    let pod_sc = &spec["securityContext"];
    c.check(pod_sc["runAsNonRoot"] == json!(true), || {
        format!("{at}: pod runAsNonRoot must be true")
    });
    c.check(pod_sc["seccompProfile"]["type"] == "RuntimeDefault", || {
        format!("{at}: pod seccomp RuntimeDefault")
    });
    let containers = spec["containers"].as_array().cloned().unwrap_or_default();
    c.check(containers.len() == 1, || {
        format!("{at}: one container expected")
    });
    let Some(ctr) = containers.first() else {
        return;
    };
    let sc = &ctr["securityContext"];
    c.check(sc["runAsNonRoot"] == json!(true), || {
        format!("{at}: container runAsNonRoot")
    });
    c.check(sc["runAsUser"] == json!(65532), || {
        format!("{at}: runAsUser 65532")
    });
    c.check(sc["readOnlyRootFilesystem"] == json!(true), || {
        format!("{at}: readOnlyRootFilesystem")
    });
    c.check(sc["allowPrivilegeEscalation"] == json!(false), || {
        format!("{at}: allowPrivilegeEscalation false")
    });
    c.check(sc["capabilities"]["drop"] == json!(["ALL"]), || {
        format!("{at}: capabilities drop [ALL]")
    });
    c.check(
        sc["capabilities"]["add"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        || format!("{at}: no added capabilities"),
    );
    c.check(sc["seccompProfile"]["type"] == "RuntimeDefault", || {
        format!("{at}: container seccomp RuntimeDefault")
    });
    c.check(ctr["args"] == json!(["run"]), || {
        format!("{at}: args must be [run], got {}", ctr["args"])
    });
    let env = env_of(ctr);
    for name in [
        "WATCH_NAMESPACE",
        "CONCURRENCY",
        "EXPERIMENT_DEADLINE_SECONDS",
        "LOG_LEVEL",
        "LOG_FORMAT",
        "CLIENT_QPS",
        "CLIENT_BURST",
        "METRICS_ADDR",
        "LEADER_ELECT",
        "LEADER_ELECTION_NAMESPACE",
        "POD_NAME",
        "SCHEDULES",
        "MIMALLOC_PURGE_DELAY",
    ] {
        c.check(env.contains_key(name), || {
            format!("{at}: env {name} missing")
        });
    }
    let get = |k: &str| env.get(k).cloned().unwrap_or(Value::Null);
    c.check(get("WATCH_NAMESPACE") == watch, || {
        format!(
            "{at}: WATCH_NAMESPACE={}, expected {watch:?}",
            get("WATCH_NAMESPACE")
        )
    });
    c.check(get("LEADER_ELECT") == leader_elect, || {
        format!(
            "{at}: LEADER_ELECT={}, expected {leader_elect:?}",
            get("LEADER_ELECT")
        )
    });
    c.check(get("METRICS_ADDR") == "0.0.0.0:8080", || {
        format!("{at}: METRICS_ADDR default 0.0.0.0:8080")
    });
    c.check(get("LOG_FORMAT") == "json", || {
        format!("{at}: LOG_FORMAT default json")
    });
    c.check(
        get("LEADER_ELECTION_NAMESPACE")
            == json!({"fieldRef": {"fieldPath": "metadata.namespace"}}),
        || format!("{at}: LEADER_ELECTION_NAMESPACE from metadata.namespace"),
    );
    c.check(
        get("POD_NAME") == json!({"fieldRef": {"fieldPath": "metadata.name"}}),
        || format!("{at}: POD_NAME from metadata.name"),
    );
    let ports: BTreeMap<&str, &Value> = ctr["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| (p["name"].as_str().unwrap_or_default(), &p["containerPort"]))
        .collect();
    c.check(ports.get("http-metrics") == Some(&&json!(8080)), || {
        format!("{at}: containerPort 8080 named http-metrics")
    });
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &ctr[probe]["httpGet"];
        c.check(
            get["path"] == path && (get["port"] == "http-metrics" || get["port"] == 8080),
            || format!("{at}: {probe} GET {path} :8080"),
        );
    }
    let res = &ctr["resources"];
    c.check(
        res["requests"] == json!({"cpu": "50m", "memory": "64Mi"}),
        || format!("{at}: requests 50m/64Mi"),
    );
    c.check(
        res["limits"] == json!({"cpu": "500m", "memory": "256Mi"}),
        || format!("{at}: limits 500m/256Mi"),
    );
    c.check(
        spec["hostNetwork"] != json!(true) && spec["hostPID"] != json!(true),
        || format!("{at}: no host namespaces"),
    );
}

fn check_service(c: &mut Checks, kinds: &BTreeMap<String, Vec<&Value>>, at: &str) {
    let services = kinds.get("Service").cloned().unwrap_or_default();
    c.check(services.len() == 1, || {
        format!("{at}: one Service expected")
    });
    if let Some(svc) = services.first() {
        let ok = svc["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["name"] == "http-metrics" && p["port"] == 8080);
        c.check(ok, || format!("{at}: Service port 8080 http-metrics"));
    }
}

#[test]
fn helm_lint_strict_passes_for_both_value_sets() {
    let chart = tools::repo().join("charts/chaos-conductor");
    tools::run_ok(
        Command::new(tools::helm())
            .args(["lint", "--strict"])
            .arg(&chart),
        "helm lint --strict (default values)",
    );
    let mut cmd = Command::new(tools::helm());
    cmd.args(["lint", "--strict"]).arg(&chart);
    for s in variant() {
        cmd.args(["--set", &s]);
    }
    tools::run_ok(&mut cmd, "helm lint --strict (variant values)");
}

#[test]
fn default_values_render_exact_cluster_wide_rbac_and_a_restricted_deployment() {
    let docs = render(&[]);
    let kinds = by_kind(&docs);
    let mut c = Checks::default();
    let at = "default";
    let rendered: BTreeSet<&str> = kinds.keys().map(String::as_str).collect();
    c.check(
        rendered
            == BTreeSet::from([
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
                "Service",
                "Deployment",
                // security: the kill switch ConfigMap + its Role, the admission policies
                "ConfigMap",
                "Role",
                "RoleBinding",
                "ValidatingAdmissionPolicy",
                "ValidatingAdmissionPolicyBinding",
                "MutatingAdmissionPolicy",
                "MutatingAdmissionPolicyBinding",
            ]),
        || format!("{at}: rendered kinds {rendered:?}"),
    );
    for cr in kinds.get("ClusterRole").into_iter().flatten() {
        let rules = flatten(&mut c, cr, "default ClusterRole");
        forbidden(&mut c, &rules, "default ClusterRole");
        same(&mut c, &rules, &cluster_rules(), "default ClusterRole");
    }
    for role in kinds.get("Role").into_iter().flatten() {
        c.check(is_halt_role(role), || {
            format!("{at}: only the kill switch Role expected, got {role}")
        });
    }
    for crb in kinds.get("ClusterRoleBinding").into_iter().flatten() {
        let sub = &crb["subjects"][0];
        c.check(
            sub["kind"] == "ServiceAccount" && sub["namespace"] == RELEASE_NS,
            || format!("{at}: binding subject {sub}"),
        );
    }
    let deployments = kinds.get("Deployment").cloned().unwrap_or_default();
    c.check(deployments.len() == 1, || format!("{at}: one Deployment"));
    for dep in deployments {
        c.check(dep["spec"]["replicas"] == json!(1), || {
            format!("{at}: replicas default 1")
        });
        c.check(dep["spec"]["strategy"]["type"] == "Recreate", || {
            format!("{at}: Recreate without leader election")
        });
        check_deployment(&mut c, dep, at, "false", "");
    }
    check_service(&mut c, &kinds, at);
    c.assert_none();
}

#[test]
fn variant_values_render_namespaced_rbac_lease_role_service_monitor_and_network_policy() {
    let docs = render(&variant());
    let kinds = by_kind(&docs);
    let mut c = Checks::default();
    let at = "variant";
    c.check(
        !kinds.contains_key("ClusterRole") && !kinds.contains_key("ClusterRoleBinding"),
        || format!("{at}: no ClusterRole/Binding with watchNamespace"),
    );
    for kind in [
        "ServiceMonitor",
        "NetworkPolicy",
        "Role",
        "RoleBinding",
        "Deployment",
        "Service",
        "ServiceAccount",
    ] {
        c.check(kinds.contains_key(kind), || format!("{at}: {kind} missing"));
    }
    let roles: BTreeMap<(String, String), &Value> = kinds
        .get("Role")
        .into_iter()
        .flatten()
        .map(|r| {
            let m = &r["metadata"];
            (
                (
                    m["namespace"].as_str().unwrap_or_default().to_string(),
                    m["name"].as_str().unwrap_or_default().to_string(),
                ),
                *r,
            )
        })
        .collect();
    c.check(roles.len() == 3, || {
        format!(
            "{at}: expected the controller, leader-election and kill switch Roles, got {:?}",
            roles.keys().collect::<Vec<_>>()
        )
    });
    for ((ns, name), role) in &roles {
        let where_ = format!("{at} Role {ns}/{name}");
        if name == &format!("{RELEASE}-halt") {
            c.check(ns == RELEASE_NS && is_halt_role(role), || {
                format!("{where_}: the kill switch Role reads one ConfigMap: {role}")
            });
            continue;
        }
        let rules = flatten(&mut c, role, &where_);
        forbidden(&mut c, &rules, &where_);
        if ns == WATCH_NS {
            same(&mut c, &rules, &controller_rules(), &where_);
        } else {
            c.check(ns == RELEASE_NS, || {
                format!("{at}: Role in unexpected namespace {ns}")
            });
            same(&mut c, &rules, &lease_rules(), &where_);
        }
    }
    c.check(roles.keys().any(|(ns, _)| ns == WATCH_NS), || {
        format!("{at}: no Role in watchNamespace {WATCH_NS}")
    });
    for rb in kinds.get("RoleBinding").into_iter().flatten() {
        let key = (
            rb["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            rb["roleRef"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
        c.check(roles.contains_key(&key), || {
            format!(
                "{at}: RoleBinding {} refers to a missing Role",
                rb["metadata"]["name"]
            )
        });
    }
    for dep in kinds.get("Deployment").into_iter().flatten() {
        c.check(dep["spec"]["replicas"] == json!(2), || {
            format!("{at}: replicas 2")
        });
        check_deployment(&mut c, dep, at, "true", WATCH_NS);
    }
    check_service(&mut c, &kinds, at);
    for sm in kinds.get("ServiceMonitor").into_iter().flatten() {
        let ok = sm["spec"]["endpoints"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["port"] == "http-metrics" && e["path"] == "/metrics");
        c.check(ok, || format!("{at}: ServiceMonitor endpoint"));
    }
    for np in kinds.get("NetworkPolicy").into_iter().flatten() {
        let spec = &np["spec"];
        let types: BTreeSet<String> = str_list(&spec["policyTypes"]).into_iter().collect();
        c.check(
            types == BTreeSet::from(["Ingress".to_string(), "Egress".to_string()]),
            || format!("{at}: NetworkPolicy policyTypes {types:?}"),
        );
        let ingress = spec["ingress"].as_array().cloned().unwrap_or_default();
        let ingress_ports: Vec<&Value> = ingress
            .first()
            .and_then(|i| i["ports"].as_array())
            .into_iter()
            .flatten()
            .map(|p| &p["port"])
            .collect();
        c.check(
            ingress.len() == 1 && ingress_ports == [&json!(8080)],
            || format!("{at}: ingress only to 8080"),
        );
        let egress_ports: BTreeSet<i64> = spec["egress"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|e| e["ports"].as_array().cloned().unwrap_or_default())
            .filter_map(|p| p["port"].as_i64())
            .collect();
        c.check(
            egress_ports.contains(&443) && egress_ports.contains(&6443),
            || format!("{at}: egress must allow the kube-apiserver (443/6443)"),
        );
    }
    c.assert_none();
}
