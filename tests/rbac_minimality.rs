//! Is every rule of the chart's ClusterRole needed? Renders the chart (default values: ClusterRole +
//! ClusterRoleBinding); then for the full rule set (the baseline) and for each copy with one rule
//! removed it binds those rules to a fresh ServiceAccount in a test namespace, runs the real
//! controller binary with only that ServiceAccount's token (`--watch-namespace`: it acts in that
//! namespace only), runs one engine to its verdict, aborts a second one (`engineState: stop` →
//! `stopped`, no chaos pods left) and runs a ChaosSchedule (`now: true`, `historyLimit: 0`: its one
//! engine is created, runs to Pass, the schedule completes and the controller deletes the finished
//! engine; docs/schedule.md), with the fake litmus-go experiment of tests/support. The engines and the
//! schedule carry a recorded author (`chaos-conductor.io/author`, as the chart's admission policy
//! writes it) who may launch there, so the launch-time re-check (src/controller/author.rs) runs too.
//! It prints a table rule → what broke, and fails when the baseline breaks or a rule's removal breaks
//! nothing, except for the explained exceptions of [`exception`] (printed with their reason).
//!
//! `chaosschedules/finalizers [update]` is needed only where the OwnerReferencesPermissionEnforcement
//! admission plugin is on (the schedule's engines carry `blockOwnerDeletion` owner references,
//! src/scheduler/engines.rs). The test reads the apiserver's admission metrics to see whether it is
//! on; to prove that rule too, start the cluster with it:
//! `CLUSTER_ENABLE_ADMISSION_PLUGINS=OwnerReferencesPermissionEnforcement scripts/cluster up`.
//!
//! Ignored: run it by hand against the local cluster (scripts/cluster up), after a change to the
//! controller's API calls or to the chart's rules:
//!
//! ```text
//! cargo test --test rbac_minimality -- --ignored --nocapture
//! ```
//!
//! Knobs: `RBAC_MIN_PER_VERB=1` removes one verb of one rule at a time instead of whole rules
//! (much longer; verbs used only on rare paths, e.g. events get/patch on a name conflict, show up as
//! "not needed?" because this scenario does not reach them); `RBAC_MIN_TIMEOUT` (seconds per phase,
//! default 30). About 9 minutes on 2 cores: the baseline takes ~15 s, a rule that breaks the
//! verdict costs the phase timeout.
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use chaos_conductor::api::{ChaosResult, ChaosSchedule};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use support::conductor::{Conductor, service_account_token, write_token_kubeconfig};
use support::tools::{helm, repo, run_ok, yaml_documents};
use support::*;

/// The ServiceAccount the controller runs as in each variant.
const CONDUCTOR_SA: &str = "conductor";
/// The recorded author of the engines (a user with create jobs/pods in the test namespace).
const AUTHOR: &str = "rbacmin-author";
/// The ChaosSchedule of the scenario; with `now: true` its one engine has the same name.
const SCHEDULE: &str = "sched";
/// The admission plugin that makes `<owner>/finalizers [update]` necessary for owner references
/// with `blockOwnerDeletion` (off in scripts/cluster unless CLUSTER_ENABLE_ADMISSION_PLUGINS).
const OWNER_REFS_PLUGIN: &str = "OwnerReferencesPermissionEnforcement";

fn phase_timeout() -> Duration {
    let secs = std::env::var("RBAC_MIN_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    Duration::from_secs(secs)
}

/// The rules of the chart's ClusterRole with default values.
fn chart_rules() -> Vec<PolicyRule> {
    let yaml = run_ok(
        Command::new(helm())
            .args(["template", "rbacmin"])
            .arg(repo().join("charts/chaos-conductor"))
            .args([
                "--namespace",
                "default",
                "--show-only",
                "templates/rbac.yaml",
            ]),
        "helm template of the chart's RBAC",
    );
    let role = yaml_documents(&yaml)
        .into_iter()
        .find(|d| d["kind"] == "ClusterRole")
        .expect("a ClusterRole with default values");
    let role: ClusterRole = serde_json::from_value(role).expect("a ClusterRole");
    let rules = role.rules.unwrap_or_default();
    assert!(!rules.is_empty(), "the chart's ClusterRole has no rules");
    rules
}

fn rule_label(r: &PolicyRule) -> String {
    let groups: Vec<&str> = r
        .api_groups
        .iter()
        .flatten()
        .map(|g| if g.is_empty() { "core" } else { g.as_str() })
        .collect();
    format!(
        "{} {} [{}]",
        groups.join(","),
        r.resources.clone().unwrap_or_default().join(","),
        r.verbs.join(",")
    )
}

/// One run of the scenario: its label, the rules bound, and the rule removed (None: baseline).
struct Variant {
    label: String,
    rules: Vec<PolicyRule>,
    removed: Option<PolicyRule>,
}

/// The baseline, then one variant per removed rule (or verb).
fn variants(rules: &[PolicyRule], per_verb: bool) -> Vec<Variant> {
    let mut out = vec![Variant {
        label: format!("baseline (all {} rules)", rules.len()),
        rules: rules.to_vec(),
        removed: None,
    }];
    for (i, rule) in rules.iter().enumerate() {
        if per_verb {
            for verb in &rule.verbs {
                let mut less = rules.to_vec();
                less[i].verbs.retain(|v| v != verb);
                less.retain(|r| !r.verbs.is_empty());
                out.push(Variant {
                    label: format!("- {verb} from {}", rule_label(rule)),
                    rules: less,
                    removed: Some(rule.clone()),
                });
            }
        } else {
            let mut less = rules.to_vec();
            less.remove(i);
            out.push(Variant {
                label: format!("- {}", rule_label(rule)),
                rules: less,
                removed: Some(rule.clone()),
            });
        }
    }
    out
}

/// Why the removal of `rule` may break nothing on this cluster although real clusters need it
/// (None: it must break the scenario). The allow-list is this function; each entry says why.
fn exception(rule: &PolicyRule, owner_refs_enforced: bool) -> Option<String> {
    let litmus = rule
        .api_groups
        .iter()
        .flatten()
        .any(|g| g == "litmuschaos.io");
    let finalizers = rule
        .resources
        .iter()
        .flatten()
        .any(|r| r == "chaosschedules/finalizers");
    (litmus && finalizers && !owner_refs_enforced).then(|| {
        format!(
            "needed only with the {OWNER_REFS_PLUGIN} admission plugin (the schedule's engines \
             carry blockOwnerDeletion owner references, src/scheduler/engines.rs), which this \
             cluster does not run; prove it with CLUSTER_ENABLE_ADMISSION_PLUGINS={OWNER_REFS_PLUGIN} \
             scripts/cluster up"
        )
    })
}

/// Whether the apiserver runs the OwnerReferencesPermissionEnforcement plugin: every admission
/// plugin in the chain reports its calls in `apiserver_admission_controller_admission_duration_seconds`
/// with its name, and the cluster's own startup already went through it (creates of Namespaces,
/// CRDs, ServiceAccounts).
async fn owner_refs_enforced(admin: &Client) -> bool {
    // axum re-exports the `http` crate that kube takes (no extra dependency).
    let request = axum::http::Request::get("/metrics")
        .body(Vec::new())
        .expect("a GET request");
    let metrics = admin
        .request_text(request)
        .await
        .expect("the apiserver's /metrics (admin)");
    let needle = format!("name=\"{OWNER_REFS_PLUGIN}\"");
    metrics.lines().any(|l| {
        l.starts_with("apiserver_admission_controller_admission_duration_seconds")
            && l.contains(&needle)
    })
}

/// Binds `rules` to the conductor ServiceAccount of `ns`; the objects are named `name`.
async fn bind(client: &Client, name: &str, ns: &str, rules: Vec<PolicyRule>) {
    let metadata = ObjectMeta {
        name: Some(name.to_string()),
        labels: Some([("e2e.test/rbac-minimality".to_string(), "true".to_string())].into()),
        ..Default::default()
    };
    let role = ClusterRole {
        metadata: metadata.clone(),
        rules: Some(rules),
        ..Default::default()
    };
    let binding = ClusterRoleBinding {
        metadata,
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: name.to_string(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: CONDUCTOR_SA.into(),
            namespace: Some(ns.to_string()),
            ..Default::default()
        }]),
    };
    Api::<ClusterRole>::all(client.clone())
        .create(&PostParams::default(), &role)
        .await
        .unwrap_or_else(|e| panic!("creating ClusterRole {name}: {e}"));
    Api::<ClusterRoleBinding>::all(client.clone())
        .create(&PostParams::default(), &binding)
        .await
        .unwrap_or_else(|e| panic!("creating ClusterRoleBinding {name}: {e}"));
}

async fn unbind(client: &Client, name: &str) {
    let dp = DeleteParams::default();
    let _ = Api::<ClusterRoleBinding>::all(client.clone())
        .delete(name, &dp)
        .await;
    let _ = Api::<ClusterRole>::all(client.clone())
        .delete(name, &dp)
        .await;
}

fn engine(name: &str, experiment: &str) -> chaos_conductor::api::ChaosEngine {
    EngineBuilder::new(name)
        .service_account(SAMPLE_SA)
        .experiment(experiment)
        .annotation(
            chaos_conductor::controller::author::AUTHOR_ANNOTATION,
            AUTHOR,
        )
        .build()
}

/// A ChaosSchedule that runs once now and keeps no finished engine (`historyLimit: 0`, our
/// extension, docs/schedule.md), so the controller creates, runs and deletes one engine. The
/// schedule's annotations (the recorded author) are copied to its engine (src/scheduler/engines.rs).
fn schedule(experiment: &str) -> String {
    let template = engine(SCHEDULE, experiment).spec;
    let schedule = json!({"apiVersion": "litmuschaos.io/v1alpha1", "kind": "ChaosSchedule",
        "metadata": {"name": SCHEDULE,
            "annotations": {chaos_conductor::controller::author::AUTHOR_ANNOTATION: AUTHOR}},
        "spec": {"schedule": {"now": true}, "historyLimit": 0, "engineTemplateSpec": template}});
    format!("---\n{schedule}\n")
}

/// The schedule's run is over: status completed, scheduleState complete, its ChaosResult Pass
/// and its engine deleted (historyLimit 0). `None` when done, else what is still missing.
async fn schedule_progress(env: &TestEnv) -> Option<String> {
    let s = match env.api::<ChaosSchedule>().get(SCHEDULE).await {
        Ok(s) => s,
        Err(e) => return Some(format!("schedule: {e}")),
    };
    let status = s
        .status
        .as_ref()
        .and_then(|st| st.schedule.as_ref())
        .and_then(|st| st.status.clone())
        .unwrap_or_default();
    if status != "completed" || s.spec.schedule_state.as_deref() != Some("complete") {
        return Some(format!(
            "schedule status {status:?}, scheduleState {:?}",
            s.spec.schedule_state
        ));
    }
    let result = env
        .api::<ChaosResult>()
        .get_opt(&format!("{SCHEDULE}-pod-delete"))
        .await
        .ok()
        .flatten();
    let verdict = result
        .and_then(|r| r.status)
        .map(|st| st.experiment_status.verdict)
        .unwrap_or_default();
    if verdict != "Pass" {
        return Some(format!("schedule's ChaosResult verdict {verdict:?}"));
    }
    match env.engines().get_opt(SCHEDULE).await {
        Ok(None) => None,
        Ok(Some(_)) => Some("schedule's finished engine not deleted (historyLimit 0)".into()),
        Err(e) => Some(format!("schedule's engine: {e}")),
    }
}

/// The author's rights: what a run needs (src/controller/author.rs NEEDED).
fn author_rights(ns: &str) -> String {
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": AUTHOR, "namespace": ns},
        "rules": [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create"]},
                  {"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}]});
    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": AUTHOR, "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": AUTHOR},
        "subjects": [{"kind": "User", "name": AUTHOR, "apiGroup": "rbac.authorization.k8s.io"}]});
    format!("---\n{role}\n---\n{binding}\n")
}

fn status_of(e: &chaos_conductor::api::ChaosEngine) -> (String, String) {
    let s = e.status.clone().unwrap_or_default();
    let verdict = s
        .experiments
        .first()
        .map(|x| x.verdict.clone())
        .unwrap_or_default();
    (s.engine_status, verdict)
}

/// Waits for `done` on engine `name`, but gives up early when the controller exited.
async fn wait_engine_or_exit(
    env: &TestEnv,
    ctrl: &mut Conductor,
    name: &str,
    what: &str,
    done: impl Fn(&chaos_conductor::api::ChaosEngine) -> bool,
) -> Result<(), String> {
    let api = env.engines();
    let start = Instant::now();
    loop {
        if let Some(status) = ctrl.exited() {
            return Err(format!("controller exited ({status}) before {what}"));
        }
        let e = api.get_opt(name).await.ok().flatten();
        if e.as_ref().is_some_and(&done) {
            return Ok(());
        }
        if start.elapsed() > phase_timeout() {
            let seen = e.map(|e| status_of(&e));
            return Err(format!(
                "{what}: not within {:?} (engineStatus/verdict {seen:?})",
                phase_timeout()
            ));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The part of a log line that says what was refused (`cannot <verb> resource "<r>" ...`),
/// without terminal colours.
fn forbidden_gist(line: &str) -> String {
    let mut plain = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // An ANSI escape: skip to its final letter.
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    let plain = plain.replace("\\\"", "\"");
    let from = plain.find("cannot ").unwrap_or(0);
    plain[from..].chars().take(120).collect()
}

/// The scenario with only `rules`; what broke (empty when nothing did).
async fn run_variant(k: usize, rules: Vec<PolicyRule>) -> Vec<String> {
    let env = setup(&format!("rbacmin-{k}"), &["pod-delete", "container-kill"]).await;
    let ns = env.ns().to_string();
    let admin = env.client();
    env.create_service_account(CONDUCTOR_SA).await;
    env.apply_yaml(&author_rights(&ns))
        .await
        .expect("the recorded author's rights");
    let role_name = format!("rbacmin-{ns}");
    bind(&admin, &role_name, &ns, rules).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    write_token_kubeconfig(
        &kubeconfig,
        &service_account_token(&env, CONDUCTOR_SA).await,
        &ns,
    );
    let fake = FakeExperiment::start(
        admin.clone(),
        &ns,
        Behaviour::pass().with("container-kill", ExperimentBehaviour::never_finish()),
    );
    // The Namespace watch of the kill switch is on, as when watching all namespaces, so its
    // ClusterRole rule is exercised too.
    let mut ctrl = Conductor::start(
        &format!("rbacmin-{k}"),
        &kubeconfig,
        &ns,
        &["--halt-namespace-annotations=true"],
    );
    let mut broke = Vec::new();

    // 1. One engine to its verdict.
    env.create(&engine("verdict", "pod-delete")).await;
    let verdict = wait_engine_or_exit(&env, &mut ctrl, "verdict", "verdict Pass", |e| {
        status_of(e) == ("completed".into(), "Pass".into())
    })
    .await;
    // 2. Abort a running experiment.
    let aborted = match verdict {
        Err(why) => Err(why),
        Ok(()) => {
            env.create(&engine("abort", "container-kill")).await;
            let running = wait_engine_or_exit(&env, &mut ctrl, "abort", "abort: Running", |e| {
                e.status
                    .as_ref()
                    .and_then(|s| s.experiments.first())
                    .is_some_and(|x| x.status == "Running")
            })
            .await;
            match running {
                Err(why) => Err(why),
                Ok(()) => {
                    let engines = env.engines();
                    let uid = engines.get("abort").await.map(|e| e.uid()).ok().flatten();
                    let _ = engines
                        .patch(
                            "abort",
                            &PatchParams::default(),
                            &Patch::Merge(json!({"spec": {"engineState": "stop"}})),
                        )
                        .await;
                    let stopped =
                        wait_engine_or_exit(&env, &mut ctrl, "abort", "abort: stopped", |e| {
                            status_of(e).0 == "stopped"
                        })
                        .await;
                    let pods: Api<Pod> = env.pods();
                    let lp = ListParams::default()
                        .labels(&format!("chaosUID={}", uid.unwrap_or_default()));
                    let left = try_wait_for("no chaos pods left", phase_timeout(), async || {
                        let n = pods.list(&lp).await?.items.len();
                        if n == 0 {
                            Ok(())
                        } else {
                            Err(anyhow::anyhow!("{n} chaos pods left"))
                        }
                    })
                    .await;
                    stopped.and(left.map_err(|e| format!("abort: {e:#}")))
                }
            }
        }
    };
    // 3. A ChaosSchedule: one engine created, run to Pass, the schedule completed, the engine
    //    deleted beyond historyLimit.
    let scheduled = match aborted {
        Err(why) => Err(why),
        Ok(()) => match env.apply_yaml(&schedule("pod-delete")).await {
            Err(e) => Err(format!("schedule: applying it: {e:#}")),
            Ok(_) => {
                let start = Instant::now();
                loop {
                    if let Some(status) = ctrl.exited() {
                        break Err(format!(
                            "controller exited ({status}) before the schedule ran"
                        ));
                    }
                    let Some(missing) = schedule_progress(&env).await else {
                        break Ok(());
                    };
                    if start.elapsed() > phase_timeout() {
                        break Err(format!(
                            "schedule: not within {:?} ({missing})",
                            phase_timeout()
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
        },
    };
    if let Err(why) = scheduled {
        broke.push(why);
    }
    let forbidden: Vec<String> = ctrl
        .log_text()
        .lines()
        .filter(|l| l.to_ascii_lowercase().contains("forbidden"))
        .map(forbidden_gist)
        .collect();
    if let Some(first) = forbidden.first() {
        broke.push(format!(
            "log: {} forbidden line(s), e.g. {first}",
            forbidden.len()
        ));
    }
    if ctrl.exited().is_none() {
        ctrl.terminate();
        let start = Instant::now();
        while ctrl.exited().is_none() && start.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if ctrl.exited().is_none() {
            broke.push("shutdown: still running 10 s after SIGTERM (killed)".into());
            ctrl.kill();
        }
    }
    drop(fake);
    // No controller runs any more: our finalizers would keep the namespace Terminating.
    let engines = env.engines();
    for e in engines
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
    {
        let _ = engines
            .patch(
                &e.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": null}})),
            )
            .await;
    }
    unbind(&admin, &role_name).await;
    env.cleanup().await;
    broke
}

#[tokio::test]
#[ignore = "about 7 minutes against the local cluster: run by hand (see the file's doc)"]
async fn every_rule_of_the_chart_cluster_role_is_needed() {
    let per_verb = std::env::var("RBAC_MIN_PER_VERB").is_ok_and(|v| v == "1");
    let variants = variants(&chart_rules(), per_verb);
    let enforced = owner_refs_enforced(&connect().await.expect("the test cluster").0).await;
    eprintln!("[rbac-minimality] {OWNER_REFS_PLUGIN} admission plugin on: {enforced}");
    let started = Instant::now();
    let mut table = Vec::new();
    for (k, v) in variants.into_iter().enumerate() {
        let Variant {
            label,
            rules,
            removed,
        } = v;
        let t0 = Instant::now();
        let broke = run_variant(k, rules).await;
        eprintln!(
            "[rbac-minimality] {label}: {} ({:.0?})",
            if broke.is_empty() {
                "nothing broke".to_string()
            } else {
                broke.join("; ")
            },
            t0.elapsed()
        );
        let why = removed.and_then(|r| exception(&r, enforced));
        table.push((label, broke, why));
    }
    println!("\n{:<70} | what broke", "rule removed");
    println!("{}", "-".repeat(150));
    let mut problems = Vec::new();
    for (k, (label, broke, why)) in table.iter().enumerate() {
        let outcome = match (k, broke.is_empty(), why) {
            (0, true, _) => {
                "ok: verdict Pass, abort stopped, schedule completed, no forbidden".to_string()
            }
            (0, false, _) => {
                problems.push(format!("baseline broken: {}", broke.join("; ")));
                format!("BASELINE BROKEN: {}", broke.join("; "))
            }
            (_, true, Some(why)) => format!("EXCEPTION (nothing broke here): {why}"),
            (_, true, None) => {
                problems.push(format!("{label}: not needed? nothing broke"));
                "NOT NEEDED? nothing broke".to_string()
            }
            (_, false, _) => broke.join("; "),
        };
        println!("{label:<70} | {outcome}");
    }
    println!("\ndone in {:.0?}", started.elapsed());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
