//! The author re-check's pure parts: reading the recorded author, the review it sends, holding
//! and releasing a run's start (src/controller/author.rs).
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use super::author::*;
use super::halt::{HELD_CONDITION, starts_run};
use crate::api::ChaosEngine;
use crate::engine::fixtures::{gate_engine, owed_reasons as reasons};
use crate::engine::{Decision, Effect, Observed, PlanConfig, plan};

fn engine(annotations: &[(&str, &str)]) -> ChaosEngine {
    let mut e = gate_engine();
    e.metadata.annotations = Some(
        annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    e
}

#[test]
fn the_author_is_read_from_the_annotations() {
    assert_eq!(recorded_author(&engine(&[])), None);
    assert_eq!(recorded_author(&engine(&[(AUTHOR_ANNOTATION, "  ")])), None);
    assert_eq!(
        recorded_author(&engine(&[
            (AUTHOR_ANNOTATION, "alice"),
            (AUTHOR_GROUPS_ANNOTATION, "team-a, system:authenticated,,")
        ])),
        Some(Author {
            user: "alice".into(),
            groups: vec!["team-a".into(), "system:authenticated".into()],
        })
    );
    let r = review(
        &Author {
            user: "alice".into(),
            groups: vec![],
        },
        "ns",
        NEEDED[0],
    );
    assert_eq!(r.spec.groups, None, "no empty group list is sent");
    let attrs = r.spec.resource_attributes.expect("resource attributes");
    assert_eq!(
        (
            attrs.verb.as_deref(),
            attrs.group.as_deref(),
            attrs.resource.as_deref()
        ),
        (Some("create"), Some("batch"), Some("jobs"))
    );
    assert_eq!(attrs.namespace.as_deref(), Some("ns"));
    assert_eq!(NEEDED[0].to_string(), "create jobs.batch");
    assert_eq!(NEEDED[1].to_string(), "create pods");
}

#[test]
fn a_lacking_author_holds_the_start_and_a_restored_one_releases_it() {
    let now = Timestamp::now();
    let cfg = PlanConfig::default();
    let e = engine(&[(AUTHOR_ANNOTATION, "alice")]);
    let start = plan(&e, &Observed::default(), now, &cfg);
    assert!(
        starts_run(&e, &start),
        "a fresh engine starts a run: {start:?}"
    );
    let alice = recorded_author(&e).expect("author");
    let d = gate(
        &e,
        &Observed::default(),
        start.clone(),
        Some((&alice, &NEEDED[..1])),
        now,
    );
    assert!(!starts_run(&e, &d), "held: {:?}", d.status);
    assert!(!d.effects().any(|x| matches!(x, Effect::CreateJob(_))));
    assert_eq!(d.requeue_after, Some(RECHECK));
    assert!(
        d.status.message.contains(
            "alice (annotation chaos-conductor.io/author) may no longer create jobs.batch in namespace ns: missing permission create jobs.batch"
        ),
        "{}",
        d.status.message
    );
    assert_eq!(reasons(&d), vec![AUTHOR_HELD_REASON.to_string()]);
    // Held again with the same message: no second Warning.
    let mut held = e.clone();
    held.status = Some(d.status.clone());
    let again = gate(
        &held,
        &Observed::default(),
        plan(&held, &Observed::default(), now, &cfg),
        Some((&alice, &NEEDED[..1])),
        now,
    );
    assert_eq!(reasons(&again), vec![AUTHOR_HELD_REASON.to_string()]);
    // Permission back: the plan's start, without the condition, with a Normal Event.
    let go = gate(
        &held,
        &Observed::default(),
        plan(&held, &Observed::default(), now, &cfg),
        Some((&alice, &[])),
        now,
    );
    assert!(starts_run(&held, &go));
    assert!(
        !go.status
            .conditions
            .iter()
            .any(|c| c.type_ == AUTHOR_CONDITION)
    );
    assert!(reasons(&go).contains(&AUTHOR_PERMITTED_REASON.to_string()));
    // Stopped while held: the stale condition goes, silently.
    let mut stopped = held.clone();
    stopped.spec.engine_state = Some("stop".into());
    let d = gate(
        &stopped,
        &Observed::default(),
        plan(&stopped, &Observed::default(), now, &cfg),
        None,
        now,
    );
    assert!(
        !d.status
            .conditions
            .iter()
            .any(|c| c.type_ == AUTHOR_CONDITION)
    );
    assert!(!starts_run(&stopped, &d));
}

#[test]
fn a_kill_switch_released_in_the_same_pass_leaves_no_held_condition() {
    let now = Timestamp::now();
    let mut e = engine(&[(AUTHOR_ANNOTATION, "alice")]);
    let mut stored = crate::api::ChaosEngineStatus::default();
    stored.conditions.push(Condition {
        type_: HELD_CONDITION.into(),
        status: "True".into(),
        reason: "KillSwitchEngaged".into(),
        message: "held".into(),
        last_transition_time: Time(now),
        observed_generation: None,
    });
    e.status = Some(stored);
    // The switch's gate already dropped `Held` from this start decision.
    let start = plan(&e, &Observed::default(), now, &PlanConfig::default());
    let mut released = start.clone();
    released
        .status
        .conditions
        .retain(|c| c.type_ != HELD_CONDITION);
    let alice = recorded_author(&e).expect("author");
    let lacking_all = |d| gate(&e, &Observed::default(), d, Some((&alice, &NEEDED)), now);
    let condition_types = |d: &Decision| -> Vec<String> {
        d.status
            .conditions
            .iter()
            .map(|c| c.type_.clone())
            .collect()
    };
    let types = condition_types(&lacking_all(released));
    assert_eq!(types, vec![AUTHOR_CONDITION]);
    // Still engaged (the decision keeps `Held`): both stay.
    let mut engaged = start;
    engaged.status.conditions = e.status.clone().unwrap_or_default().conditions;
    let types = condition_types(&lacking_all(engaged));
    assert_eq!(types, vec![HELD_CONDITION, AUTHOR_CONDITION]);
}

#[test]
fn nothing_changes_without_a_check() {
    let now = Timestamp::now();
    let e = engine(&[]);
    let start = plan(&e, &Observed::default(), now, &PlanConfig::default());
    let d = gate(&e, &Observed::default(), start.clone(), None, now);
    assert_eq!(d, start);
}

#[test]
fn the_early_question_is_asked_for_every_start_and_not_while_running() {
    let now = Timestamp::now();
    let cfg = PlanConfig::default();
    let alice = || {
        Some(Author {
            user: "alice".into(),
            groups: vec![],
        })
    };
    // A fresh engine: the plan starts a run, and the author was known before the plan.
    let fresh = engine(&[(AUTHOR_ANNOTATION, "alice")]);
    let start = plan(&fresh, &Observed::default(), now, &cfg);
    assert!(starts_run(&fresh, &start));
    assert_eq!(may_check(&fresh, now), alice());
    // Held for its author: the next pass would start again, so it is asked early again.
    let mut held = fresh.clone();
    held.status = Some(
        gate(
            &fresh,
            &Observed::default(),
            start.clone(),
            Some((&alice().expect("author"), &NEEDED[..1])),
            now,
        )
        .status,
    );
    assert!(starts_run(
        &held,
        &plan(&held, &Observed::default(), now, &cfg)
    ));
    assert_eq!(may_check(&held, now), alice());
    // Under way: no start, no question.
    let mut running = fresh.clone();
    running.status = Some(start.status.clone());
    assert!(!starts_run(
        &running,
        &plan(&running, &Observed::default(), now, &cfg)
    ));
    assert_eq!(may_check(&running, now), None);
    // Stopped, or without a recorded author: nothing is asked.
    let mut stopped = fresh.clone();
    stopped.spec.engine_state = Some("stop".into());
    assert_eq!(may_check(&stopped, now), None);
    assert_eq!(may_check(&engine(&[]), now), None);
}
