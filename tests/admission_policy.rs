//! The escalation matrix (README "Security"): the chart's ValidatingAdmissionPolicies, installed on the real
//! local cluster, refuse every way an engine, experiment or schedule author could get a workload
//! they could not create themselves, with a message naming the missing permission, and admit the
//! same request from an author who holds that permission. Every engine row is repeated as a
//! ChaosSchedule whose `engineTemplateSpec` is that engine's spec (the scheduler creates those
//! engines as the controller, which the engine policy exempts). The chart's
//! MutatingAdmissionPolicy records the author (`chaos-conductor.io/author`) and nobody else can
//! change it.
//!
//! Three impersonated users in namespace A: `alice` may only create ChaosEngines/ChaosExperiments;
//! `carol` may also create Jobs and pods there, act as the sample ServiceAccount and read one Secret
//! (everything a plain engine needs); `bob` has carol's rights plus each attempt's extra right.
//! The bindings select only this test's namespaces, so other tests (as cluster-admin) are unaffected;
//! a failed run leaves policies that match no namespace once its namespaces are gone.
mod support;

use std::time::Duration;

use chaos_conductor::api::{ChaosEngine, ChaosExperiment, ChaosSchedule};
use chaos_conductor::controller::author::{AUTHOR_ANNOTATION, AUTHOR_GROUPS_ANNOTATION};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::*;

const POLICY_WAIT: Duration = Duration::from_secs(60);

/// Who tries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Alice,
    Carol,
    Bob,
}

impl Who {
    fn user(self) -> &'static str {
        match self {
            Who::Alice => "alice",
            Who::Carol => "carol",
            Who::Bob => "bob",
        }
    }
}

/// One row of the matrix.
struct Attempt {
    what: String,
    /// The escalating object (engine or experiment) and the namespace each user sends it to.
    attempt: Value,
    /// Namespace of the attempt for alice and carol / for bob.
    ns_refused: String,
    ns_bob: String,
    /// What carol (all a plain engine needs, not this row's right) is told; `None`: she may.
    carol_refused: Option<String>,
    /// Whether the attempt is refused for bob too (allow-lists are not permissions), and the
    /// variant bob succeeds with instead.
    bob_variant: Option<Value>,
}

fn engine(name: &str, appns: &str, components: Value) -> Value {
    json!({
        "apiVersion": "litmuschaos.io/v1alpha1",
        "kind": "ChaosEngine",
        "metadata": {"name": name},
        "spec": {
            "engineState": "active",
            "chaosServiceAccount": SAMPLE_SA,
            "appinfo": {"appns": appns, "applabel": "app=nginx", "appkind": "deployment"},
            "experiments": [{"name": "pod-delete", "spec": {"components": components}}],
        },
    })
}

fn experiment(name: &str, extra: Value) -> Value {
    let mut def = json!({
        "scope": "Namespaced",
        "image": builders::SAMPLE_IMAGE,
        "command": ["/bin/bash"],
        "args": ["-c", "./experiments -name pod-delete"],
    });
    if let (Some(d), Some(e)) = (def.as_object_mut(), extra.as_object()) {
        d.extend(e.clone());
    }
    json!({
        "apiVersion": "litmuschaos.io/v1alpha1",
        "kind": "ChaosExperiment",
        "metadata": {"name": name, "labels": {"name": name}},
        "spec": {"definition": def},
    })
}

/// The same engine as a ChaosSchedule's template (`schedule.now`: one engine at once).
fn as_schedule(engine: &Value) -> Value {
    json!({
        "apiVersion": "litmuschaos.io/v1alpha1",
        "kind": "ChaosSchedule",
        "metadata": {"name": format!("s-{}", engine["metadata"]["name"].as_str().unwrap_or("x"))},
        "spec": {"schedule": {"now": true}, "engineTemplateSpec": engine["spec"].clone()},
    })
}

fn named(obj: &Value, name: &str) -> Value {
    let mut o = obj.clone();
    o["metadata"]["name"] = json!(name);
    o
}

/// Creates `obj` as `who` in `ns`; the apiserver's refusal message on failure.
async fn create_as(who: Who, ns: &str, obj: &Value) -> Result<(), String> {
    let client = chart::client_as(who.user()).await;
    let kind = obj["kind"].as_str().unwrap_or_default();
    let pp = PostParams::default();
    let out = if kind == "ChaosEngine" {
        let e: ChaosEngine = serde_json::from_value(obj.clone()).expect("engine");
        Api::<ChaosEngine>::namespaced(client, ns)
            .create(&pp, &e)
            .await
            .map(|_| ())
    } else if kind == "ChaosSchedule" {
        let s: ChaosSchedule = serde_json::from_value(obj.clone()).expect("schedule");
        Api::<ChaosSchedule>::namespaced(client, ns)
            .create(&pp, &s)
            .await
            .map(|_| ())
    } else {
        let x: ChaosExperiment = serde_json::from_value(obj.clone()).expect("experiment");
        Api::<ChaosExperiment>::namespaced(client, ns)
            .create(&pp, &x)
            .await
            .map(|_| ())
    };
    out.map_err(|e| match e {
        kube::Error::Api(ae) => format!("{} ({})", ae.message, ae.code),
        other => other.to_string(),
    })
}

fn rbac(ns: &str, name: &str, rules: Value, users: &[Who]) -> String {
    let subjects: Vec<Value> = users
        .iter()
        .map(|u| json!({"kind": "User", "name": u.user(), "apiGroup": "rbac.authorization.k8s.io"}))
        .collect();
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": name, "namespace": ns}, "rules": rules});
    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": subjects});
    format!(
        "---\n{}\n---\n{}\n",
        serde_json::to_string(&role).unwrap(),
        serde_json::to_string(&binding).unwrap()
    )
}

fn chaos_rules() -> Value {
    json!([{"apiGroups": ["litmuschaos.io"], "resources": ["chaosengines", "chaosexperiments", "chaosschedules"],
            "verbs": ["get", "list", "create", "update", "patch", "delete"]}])
}

#[tokio::test]
async fn escalation_matrix() {
    let env = setup("policy-matrix", &[]).await;
    let target = TestEnv::new("policy-target").await;
    let privileged = TestEnv::new("policy-privileged").await;
    let (a, b, p) = (
        env.ns().to_string(),
        target.ns().to_string(),
        privileged.ns().to_string(),
    );
    Api::<Namespace>::all(env.client())
        .patch(
            &p,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "privileged"}}})),
        )
        .await
        .expect("labelling the privileged namespace");

    // The chart's policies, bound to this test's namespaces only.
    let release = format!("pm-{}", random_suffix(5));
    let selector = json!({"matchExpressions": [{"key": "kubernetes.io/metadata.name",
        "operator": "In", "values": [a, b, p]}]});
    let yaml = chart::render(
        &release,
        &a,
        &["admission-policy.yaml"],
        &[
            "--set-json".into(),
            format!("admissionPolicy.namespaceSelector={selector}"),
            "--set".into(),
            "admissionPolicy.allowedTolerationKeys={dedicated}".into(),
        ],
    );
    // engine, experiment, schedule, author-record; the author-recording mutation.
    for (kind, n) in [
        ("ValidatingAdmissionPolicy", 4),
        ("ValidatingAdmissionPolicyBinding", 4),
        ("MutatingAdmissionPolicy", 1),
        ("MutatingAdmissionPolicyBinding", 1),
    ] {
        assert_eq!(
            yaml.matches(&format!("kind: {kind}\n")).count(),
            n,
            "{kind}: {yaml}"
        );
    }
    env.apply_yaml(&yaml).await.expect("applying the policies");

    // Fixtures: a ServiceAccount bound to cluster-admin, Secrets, the users' rights.
    env.create_service_account("admin-sa").await;
    let crb = format!("{release}-admin-sa");
    env.apply_yaml(&serde_json::to_string(&json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": crb},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "admin-sa", "namespace": a}]}))
    .unwrap())
    .await
    .expect("binding admin-sa to cluster-admin");
    env.create_secret("s-visible", &[("k", "v")]).await;
    env.create_secret("s-hidden", &[("k", "v")]).await;
    let mut yaml = rbac(
        &a,
        "chaos-author",
        chaos_rules(),
        &[Who::Alice, Who::Carol, Who::Bob],
    );
    yaml += &rbac(
        &a,
        "workload",
        json!([
            {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "delete"]},
            {"apiGroups": [""], "resources": ["serviceaccounts"], "resourceNames": [SAMPLE_SA], "verbs": ["impersonate"]},
            {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["s-visible"], "verbs": ["get"]},
        ]),
        &[Who::Carol, Who::Bob],
    );
    yaml += &rbac(
        &a,
        "escalations",
        json!([
            {"apiGroups": [""], "resources": ["serviceaccounts"], "resourceNames": ["admin-sa"], "verbs": ["impersonate"]},
            {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["s-hidden"], "verbs": ["get"]},
        ]),
        &[Who::Bob],
    );
    env.apply_yaml(&yaml).await.expect("RBAC in A");
    target
        .apply_yaml(&rbac(
            &b,
            "chaos-target",
            json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]}]),
            &[Who::Bob],
        ))
        .await
        .expect("RBAC in B");
    let mut yaml = rbac(&p, "chaos-author", chaos_rules(), &[Who::Alice, Who::Bob]);
    yaml += &rbac(
        &p,
        "workload",
        json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}]),
        &[Who::Bob],
    );
    privileged.apply_yaml(&yaml).await.expect("RBAC in P");

    // The policies take effect once the apiserver has loaded them.
    let probe = engine("probe", &a, json!({}));
    let mut i = 0;
    env.wait_for("the policies refuse alice", POLICY_WAIT, async || {
        i += 1;
        match create_as(Who::Alice, &a, &named(&probe, &format!("probe-{i}"))).await {
            Err(m) if m.contains("chaos-conductor admission") => Ok(()),
            other => Err(anyhow::anyhow!("{other:?}")),
        }
    })
    .await;

    let host = json!({
        "hostPID": true,
        "securityContext": {"containerSecurityContext": {"privileged": true}},
        "hostFileVolumes": [{"name": "root", "mountPath": "/host", "nodePath": "/"}],
    });
    let table = vec![
        Attempt {
            what: "a plain engine (the baseline: carol and bob hold every right it needs)".into(),
            attempt: engine(
                "plain",
                &a,
                json!({"secrets": [{"name": "s-visible", "mountPath": "/etc/v"}]}),
            ),
            ns_refused: a.clone(),
            ns_bob: a.clone(),
            carol_refused: None,
            bob_variant: None,
        },
        Attempt {
            what: "chaos in another namespace (appinfo.appns)".into(),
            attempt: engine("other-ns", &b, json!({})),
            ns_refused: a.clone(),
            ns_bob: a.clone(),
            carol_refused: Some(format!(
                "carol may not delete pods in target namespace {b}: missing permission delete pods"
            )),
            bob_variant: None,
        },
        Attempt {
            what: "a chaosServiceAccount bound to cluster-admin".into(),
            attempt: {
                let mut e = engine("admin-sa", &a, json!({}));
                e["spec"]["chaosServiceAccount"] = json!("admin-sa");
                e
            },
            ns_refused: a.clone(),
            ns_bob: a.clone(),
            carol_refused: Some(
                "carol may not act as ServiceAccount admin-sa in namespace".to_string()
                    + &format!(" {a}: missing permission impersonate serviceaccounts/admin-sa"),
            ),
            bob_variant: None,
        },
        Attempt {
            what: "a privileged, hostPID, hostPath ChaosExperiment".into(),
            attempt: experiment("host-chaos", host.clone()),
            ns_refused: a.clone(),
            ns_bob: p.clone(),
            carol_refused: Some(format!(
                "carol: privileged, hostPID, hostPath volumes (hostFileVolumes) not admitted in namespace {a}: Pod Security must be privileged there"
            )),
            bob_variant: None,
        },
        Attempt {
            what: "a Secret the author cannot read (engine secrets)".into(),
            attempt: engine(
                "hidden-secret",
                &a,
                json!({"secrets": [{"name": "s-hidden", "mountPath": "/etc/h"}]}),
            ),
            ns_refused: a.clone(),
            ns_bob: a.clone(),
            carol_refused: Some(format!(
                "carol may not get Secret s-hidden in namespace {a}: missing permission get secrets/s-hidden"
            )),
            bob_variant: None,
        },
        Attempt {
            what: "a Secret the author cannot read (env secretKeyRef)".into(),
            attempt: engine(
                "hidden-env",
                &a,
                json!({"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s-hidden", "key": "k"}}}]}),
            ),
            ns_refused: a.clone(),
            ns_bob: a.clone(),
            carol_refused: Some("missing permission get secrets/s-hidden".into()),
            bob_variant: None,
        },
        Attempt {
            what: "an experimentImage off the allow-list".into(),
            attempt: engine(
                "evil-image",
                &a,
                json!({"experimentImage": "evil.example.com/x:1"}),
            ),
            ns_refused: a.clone(),
            ns_bob: a.clone(),
            carol_refused: Some("carol: image evil.example.com/x:1 is not allowed".into()),
            bob_variant: Some(engine(
                "good-image",
                &a,
                json!({"experimentImage": "litmuschaos/go-runner:3.20.0"}),
            )),
        },
        Attempt {
            what: "a ChaosExperiment image off the allow-list".into(),
            attempt: experiment("evil-def", json!({"image": "evil.example.com/x:1"})),
            ns_refused: a.clone(),
            ns_bob: a.clone(),
            carol_refused: Some("carol: image evil.example.com/x:1 is not allowed".into()),
            bob_variant: Some(experiment("good-def", json!({}))),
        },
        Attempt {
            what: "tolerating every taint".into(),
            attempt: engine(
                "tolerate-all",
                &a,
                json!({"tolerations": [{"operator": "Exists"}]}),
            ),
            ns_refused: a.clone(),
            ns_bob: a.clone(),
            carol_refused: Some("carol: toleration of <every key> is not allowed".into()),
            bob_variant: Some(engine(
                "tolerate-dedicated",
                &a,
                json!({"tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}]}),
            )),
        },
    ];
    // Each engine row again as a ChaosSchedule: the same rights, the same refusals.
    let schedules: Vec<Attempt> = table
        .iter()
        .filter(|r| r.attempt["kind"] == "ChaosEngine")
        .map(|r| Attempt {
            what: format!("schedule: {}", r.what),
            attempt: as_schedule(&r.attempt),
            ns_refused: r.ns_refused.clone(),
            ns_bob: r.ns_bob.clone(),
            carol_refused: r.carol_refused.clone(),
            bob_variant: r.bob_variant.as_ref().map(as_schedule),
        })
        .collect();
    assert_eq!(schedules.len(), 7, "engine rows");
    let mut table = table;
    table.extend(schedules);

    let mut failures = Vec::new();
    for row in &table {
        let slug = row.attempt["metadata"]["name"]
            .as_str()
            .unwrap_or("x")
            .to_string();
        let kind = row.attempt["kind"].as_str().unwrap_or_default();
        // alice: only ChaosEngine/ChaosExperiment rights.
        let alice_ns = if row.bob_variant.is_none() {
            &row.ns_bob
        } else {
            &row.ns_refused
        };
        let alice_missing = if kind != "ChaosExperiment" {
            "missing permission create jobs"
        } else {
            "missing permission create pods"
        };
        match create_as(
            Who::Alice,
            alice_ns,
            &named(&row.attempt, &format!("{slug}-alice")),
        )
        .await
        {
            Err(m)
                if m.contains("chaos-conductor admission: alice") && m.contains(alice_missing) => {}
            other => failures.push(format!(
                "{}: alice: expected the policy's refusal ({alice_missing}), got {other:?}",
                row.what
            )),
        }
        // carol: everything but this row's right.
        let carol = create_as(
            Who::Carol,
            &row.ns_refused,
            &named(&row.attempt, &format!("{slug}-carol")),
        )
        .await;
        match (&row.carol_refused, carol) {
            (None, Ok(())) => {}
            (Some(want), Err(m)) if m.contains(want) && m.contains("(403)") => {}
            (want, got) => failures.push(format!(
                "{}: carol: expected {want:?}, got {got:?}",
                row.what
            )),
        }
        // bob: holds the right (or, for allow-lists, sends what the list admits).
        let bob = create_as(
            Who::Bob,
            &row.ns_bob,
            &named(&row.attempt, &format!("{slug}-bob")),
        )
        .await;
        match (&row.bob_variant, bob) {
            (None, Ok(())) => {}
            (Some(_), Err(m))
                if row
                    .carol_refused
                    .as_ref()
                    .is_some_and(|w| m.contains(&w.replacen("carol", "bob", 1))) => {}
            (_, got) => failures.push(format!("{}: bob with the attempt: got {got:?}", row.what)),
        }
        if let Some(variant) = &row.bob_variant
            && let Err(m) = create_as(Who::Bob, &row.ns_bob, variant).await
        {
            failures.push(format!(
                "{}: bob with the allowed variant refused: {m}",
                row.what
            ));
        }
        eprintln!("[policy] {}: checked", row.what);
    }

    // An update is checked like a create; the controller's kind of write (finalizer, stop) is not.
    let a_ref = a.as_str();
    let engines = |who: Who| async move {
        Api::<ChaosEngine>::namespaced(chart::client_as(who.user()).await, a_ref)
    };

    // The recorded author: who wrote the spec, with their groups; nobody else can change it.
    let author_of = async |name: &str| {
        let e = Api::<ChaosEngine>::namespaced(env.client(), &a)
            .get(name)
            .await
            .map(|e| e.metadata.annotations.unwrap_or_default());
        let s = Api::<ChaosSchedule>::namespaced(env.client(), &a)
            .get(&format!("s-{name}"))
            .await
            .map(|s| s.metadata.annotations.unwrap_or_default());
        (
            e.ok().and_then(|m| m.get(AUTHOR_ANNOTATION).cloned()),
            s.ok().and_then(|m| m.get(AUTHOR_ANNOTATION).cloned()),
        )
    };
    for name in ["plain-bob", "plain-carol"] {
        let user = name.trim_start_matches("plain-").to_string();
        let got = author_of(name).await;
        if got != (Some(user.clone()), Some(user.clone())) {
            failures.push(format!(
                "{name}: recorded authors (engine, schedule) {got:?}, want {user}"
            ));
        }
    }
    let groups = Api::<ChaosEngine>::namespaced(env.client(), &a)
        .get("plain-bob")
        .await
        .ok()
        .and_then(|e| e.metadata.annotations)
        .and_then(|m| m.get(AUTHOR_GROUPS_ANNOTATION).cloned())
        .unwrap_or_default();
    if !groups.split(',').any(|g| g == "system:authenticated") {
        failures.push(format!("plain-bob: recorded groups {groups:?}"));
    }
    for forged in [json!("alice"), Value::Null] {
        let patch = json!({"metadata": {"annotations": {AUTHOR_ANNOTATION: forged}}});
        let outcome = engines(Who::Alice)
            .await
            .patch("plain-bob", &PatchParams::default(), &Patch::Merge(&patch))
            .await;
        let author = author_of("plain-bob").await.0;
        if author.as_deref() != Some("bob") {
            failures.push(format!(
                "alice setting the author of plain-bob to {forged}: {:?}, author now {author:?}",
                outcome.map(|_| ())
            ));
        }
    }
    let forged_create = {
        let mut e = engine("forged-author", &a, json!({}));
        e["metadata"]["annotations"] = json!({AUTHOR_ANNOTATION: "bob"});
        e
    };
    match create_as(Who::Carol, &a, &forged_create).await {
        Ok(()) if author_of("forged-author").await.0.as_deref() == Some("carol") => {}
        other => failures.push(format!(
            "carol creating an engine that names bob as author: {other:?}, author {:?}",
            author_of("forged-author").await.0
        )),
    }
    let to_admin = json!({"spec": {"chaosServiceAccount": "admin-sa"}});
    match engines(Who::Carol)
        .await
        .patch(
            "plain-carol",
            &PatchParams::default(),
            &Patch::Merge(&to_admin),
        )
        .await
    {
        Err(kube::Error::Api(ae))
            if ae
                .message
                .contains("missing permission impersonate serviceaccounts/admin-sa") => {}
        other => failures.push(format!("carol's update to admin-sa: {other:?}")),
    }
    let finalizer = json!({"metadata": {"finalizers": [chaos_conductor::api::FINALIZER]}});
    if let Err(e) = engines(Who::Alice)
        .await
        .patch(
            "plain-bob",
            &PatchParams::default(),
            &Patch::Merge(&finalizer),
        )
        .await
    {
        failures.push(format!("a metadata-only write by alice was refused: {e}"));
    }
    let stop = json!({"spec": {"engineState": "stop"}});
    if let Err(e) = engines(Who::Alice)
        .await
        .patch("plain-bob", &PatchParams::default(), &Patch::Merge(&stop))
        .await
    {
        failures.push(format!("alice stopping an engine was refused: {e}"));
    }
    let active = json!({"spec": {"engineState": "active"}});
    match engines(Who::Alice)
        .await
        .patch("plain-bob", &PatchParams::default(), &Patch::Merge(&active))
        .await
    {
        Err(kube::Error::Api(ae)) if ae.message.contains("missing permission create jobs") => {}
        other => failures.push(format!("alice re-activating an engine: {other:?}")),
    }

    // Clean up: the finalizer first (no controller runs here), then the cluster-scoped objects.
    let _ = Api::<ChaosEngine>::namespaced(env.client(), &a)
        .patch(
            "plain-bob",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await;
    chart::ChartPolicies::of_release(env.client(), &release)
        .remove()
        .await;
    let crbs: Api<k8s_openapi::api::rbac::v1::ClusterRoleBinding> = Api::all(env.client());
    let _ = crbs.delete(&crb, &DeleteParams::default()).await;
    privileged.cleanup().await;
    target.cleanup().await;
    env.cleanup().await;
    assert!(
        failures.is_empty(),
        "escalation matrix failures:\n  {}",
        failures.join("\n  ")
    );
}
