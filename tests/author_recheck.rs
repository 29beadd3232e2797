//! The launch-time re-check of the recorded author (README "Security", src/controller/author.rs) against the
//! real local control plane: an engine whose `chaos-conductor.io/author` may not create Jobs and
//! pods in its namespace is held (no Job, a Warning Event and a status message naming the missing
//! permission) and starts once the author holds them again; an engine a ChaosSchedule creates
//! carries the schedule's author and is held the same way; rights granted through a recorded group
//! count; an engine without the annotation runs as before.
//!
//! No admission policy here: the annotations are written directly (as cluster-admin), which is what
//! the chart's MutatingAdmissionPolicy does for real authors (tests/admission_policy.rs).
mod support;

use std::time::Duration;

use chaos_conductor::api::{ChaosEngine, ChaosSchedule};
use chaos_conductor::controller::author::{
    AUTHOR_ANNOTATION, AUTHOR_CONDITION, AUTHOR_GROUPS_ANNOTATION, AUTHOR_HELD_REASON,
    AUTHOR_PERMITTED_REASON,
};
use kube::ResourceExt;
use kube::api::ListParams;
use serde_json::json;
use support::controller::InProcessController;
use support::*;

/// Longest wait for a held engine to start after the grant: the re-check period (30 s) plus a run.
const AFTER_GRANT: Duration = Duration::from_secs(90);

fn authored(name: &str, user: &str, groups: &str) -> ChaosEngine {
    EngineBuilder::new(name)
        .service_account(SAMPLE_SA)
        .experiment("pod-delete")
        .annotation(AUTHOR_ANNOTATION, user)
        .annotation(AUTHOR_GROUPS_ANNOTATION, groups)
        .build()
}

fn launch_rights(ns: &str, name: &str, subject: serde_json::Value) -> String {
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": name, "namespace": ns},
        "rules": [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create"]},
                  {"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}]});
    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [subject]});
    format!("---\n{role}\n---\n{binding}\n")
}

fn held(e: &ChaosEngine) -> bool {
    e.status.as_ref().is_some_and(|s| {
        s.conditions.iter().any(|c| c.type_ == AUTHOR_CONDITION)
            && s.message
                .contains("missing permission create jobs.batch, create pods")
    })
}

fn completed(e: &ChaosEngine) -> bool {
    e.status
        .as_ref()
        .is_some_and(|s| s.engine_status == "completed")
}

async fn jobs_of(env: &TestEnv, e: &ChaosEngine) -> usize {
    let lp = ListParams::default().labels(&format!("chaosUID={}", e.uid().unwrap_or_default()));
    env.jobs()
        .list(&lp)
        .await
        .map(|l| l.items.len())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_lacking_author_holds_the_run_until_the_permission_is_back() {
    let env = setup("author-recheck", &["pod-delete"]).await;
    let ns = env.ns().to_string();
    let _fake = FakeExperiment::start(env.client(), &ns, Behaviour::pass());
    let _ctrl = InProcessController::start_all(env.client(), &ns);
    // erin's rights come only through a group: the recorded groups must reach the review.
    env.apply_yaml(&launch_rights(
        &ns,
        "chaos-team",
        json!({"kind": "Group", "name": "chaos-team", "apiGroup": "rbac.authorization.k8s.io"}),
    ))
    .await
    .expect("group rights");

    env.create(&authored("dave-engine", "dave", "system:authenticated"))
        .await;
    env.create(&authored(
        "erin-engine",
        "erin",
        "chaos-team,system:authenticated",
    ))
    .await;
    env.create(
        &EngineBuilder::new("unrecorded")
            .service_account(SAMPLE_SA)
            .experiment("pod-delete")
            .build(),
    )
    .await;
    let schedule = format!(
        "apiVersion: litmuschaos.io/v1alpha1\nkind: ChaosSchedule\nmetadata:\n  name: dave-schedule\n  annotations:\n    {AUTHOR_ANNOTATION}: dave\n    {AUTHOR_GROUPS_ANNOTATION}: system:authenticated\nspec:\n  schedule:\n    now: true\n  engineTemplateSpec:\n    engineState: active\n    appinfo: {{appns: {ns}, applabel: app=nginx, appkind: deployment}}\n    chaosServiceAccount: {SAMPLE_SA}\n    experiments:\n      - name: pod-delete\n"
    );
    env.apply_yaml(&schedule).await.expect("schedule");

    // dave lacks both rights: his engine is held, with the missing permission named.
    let dave = wait_engine(&env, "dave-engine", "held for its author", held).await;
    assert_eq!(jobs_of(&env, &dave).await, 0, "a held engine has no Job");
    // The Event follows the status that records it by a moment (the outbox sends it off the
    // reconcile slot): CI saw this list still empty right after the held status.
    env.wait_event(
        "dave-engine",
        |events| {
            events
                .iter()
                .any(|e| {
                    e.reason == AUTHOR_HELD_REASON
                        && e.type_ == "Warning"
                        && e.message.contains("recorded author dave")
                })
                .then_some(())
        },
        Duration::from_secs(30),
    )
    .await;
    // The schedule's engine carries the schedule's author and is held too.
    let scheduled = env
        .wait_for(
            "the schedule's engine",
            Duration::from_secs(60),
            async || {
                let list = env.engines().list(&ListParams::default()).await?;
                list.items
                    .into_iter()
                    .find(|e| {
                        e.owner_references()
                            .iter()
                            .any(|o| o.kind == "ChaosSchedule" && o.name == "dave-schedule")
                    })
                    .ok_or_else(|| anyhow::anyhow!("no engine of dave-schedule yet"))
            },
        )
        .await;
    let scheduled_name = scheduled.name_any();
    assert_eq!(
        scheduled
            .annotations()
            .get(AUTHOR_ANNOTATION)
            .map(String::as_str),
        Some("dave"),
        "{:?}",
        scheduled.annotations()
    );
    let scheduled = wait_engine(
        &env,
        &scheduled_name,
        "held for the schedule's author",
        held,
    )
    .await;
    assert_eq!(jobs_of(&env, &scheduled).await, 0);
    // Rights through a group, and no recorded author: both run.
    wait_engine(&env, "erin-engine", "completed (group rights)", completed).await;
    wait_engine(&env, "unrecorded", "completed (no author)", completed).await;
    let dave = env.engines().get("dave-engine").await.expect("dave-engine");
    assert!(held(&dave), "still held: {:?}", dave.status);
    assert_eq!(jobs_of(&env, &dave).await, 0);
    let schedule: ChaosSchedule = env
        .api::<ChaosSchedule>()
        .get("dave-schedule")
        .await
        .expect("schedule");
    assert!(schedule.uid().is_some());

    // Granted: both of dave's engines start within the re-check period, without the condition.
    env.apply_yaml(&launch_rights(
        &ns,
        "dave",
        json!({"kind": "User", "name": "dave", "apiGroup": "rbac.authorization.k8s.io"}),
    ))
    .await
    .expect("dave's rights");
    for name in ["dave-engine", scheduled_name.as_str()] {
        let e = wait_engine_within(&env, name, "completed after the grant", AFTER_GRANT, |e| {
            completed(e)
        })
        .await;
        assert!(
            !e.status
                .as_ref()
                .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == AUTHOR_CONDITION)),
            "{name}: {:?}",
            e.status
        );
        env.wait_event(
            name,
            first_with_reason(AUTHOR_PERMITTED_REASON),
            Duration::from_secs(30),
        )
        .await;
    }
    env.cleanup().await;
}
