//! The launch-time re-check of an engine's recorded author (README "Security").
//!
//! The chart's MutatingAdmissionPolicy records who last wrote an engine's spec (or its
//! ChaosSchedule's: the scheduler copies the schedule's annotations onto the engines it creates,
//! src/scheduler/engines.rs) in [`AUTHOR_ANNOTATION`] and [`AUTHOR_GROUPS_ANNOTATION`], and a
//! ValidatingAdmissionPolicy keeps anyone but the controller from forging them
//! (charts/chaos-conductor/templates/admission-policy.yaml). The admission check runs once, when the
//! spec is written; a run may start much later (a schedule's runs for months). So before a run
//! starts the controller asks the API server, with a LocalSubjectAccessReview in the engine's
//! namespace, whether that author may still create Jobs and pods there. When not, the engine is
//! held: no run starts, its status and a Warning Event name the missing permission, and it is
//! checked again every [`RECHECK`] (a restored permission starts it).
//!
//! Without the annotation (policy off, or engines written before it) nothing changes. Only the run
//! start is checked: the Jobs of a run already started go on (stop the engine or use the kill switch).
//! The recorded groups are those of the write; a group membership the identity provider revoked
//! since then still counts (Kubernetes cannot look groups up), an RBAC binding removed does not.
use std::time::Duration;

use k8s_openapi::api::authorization::v1::{
    LocalSubjectAccessReview, ResourceAttributes, SubjectAccessReviewSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};

use super::error::{Error, KubeContext};
use super::halt::{HELD_CONDITION, owe, starts_run};
use crate::api::ChaosEngine;
use crate::engine::{Decision, EventSpec, EventType, Observed};

/// Who last wrote the spec (`request.userInfo.username`), set by the chart's admission policy.
pub const AUTHOR_ANNOTATION: &str = "chaos-conductor.io/author";
/// Their groups at that write, comma-separated.
pub const AUTHOR_GROUPS_ANNOTATION: &str = "chaos-conductor.io/author-groups";
/// Condition type on an engine held because its author lacks a permission.
pub const AUTHOR_CONDITION: &str = "AuthorNotPermitted";
/// Warning Event reason when such an engine is held.
pub const AUTHOR_HELD_REASON: &str = "ChaosEngineAuthorNotPermitted";
/// Normal Event reason when the author's permission is back and the run starts.
pub const AUTHOR_PERMITTED_REASON: &str = "ChaosEngineAuthorPermitted";
/// How often a held engine's author is checked again.
pub const RECHECK: Duration = Duration::from_secs(30);

/// The recorded author of an engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    pub user: String,
    pub groups: Vec<String>,
}

/// One permission a run needs: what the engine policy checked at admission (create jobs, create
/// pods in the engine's namespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    pub verb: &'static str,
    pub group: &'static str,
    pub resource: &'static str,
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() {
            write!(f, "{} {}", self.verb, self.resource)
        } else {
            write!(f, "{} {}.{}", self.verb, self.resource, self.group)
        }
    }
}

/// What a run needs, in the order checked.
pub const NEEDED: [Permission; 2] = [
    Permission {
        verb: "create",
        group: "batch",
        resource: "jobs",
    },
    Permission {
        verb: "create",
        group: "",
        resource: "pods",
    },
];

/// The engine's recorded author; `None` without a (non-blank) author annotation.
pub fn recorded_author(engine: &ChaosEngine) -> Option<Author> {
    let annotations = engine.metadata.annotations.as_ref()?;
    let user = annotations.get(AUTHOR_ANNOTATION)?.trim();
    if user.is_empty() {
        return None;
    }
    let groups = annotations
        .get(AUTHOR_GROUPS_ANNOTATION)
        .map(|g| {
            g.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    Some(Author {
        user: user.to_string(),
        groups,
    })
}

/// The LocalSubjectAccessReview asking whether `author` holds `p` in `namespace`.
pub fn review(author: &Author, namespace: &str, p: Permission) -> LocalSubjectAccessReview {
    LocalSubjectAccessReview {
        metadata: kube::api::ObjectMeta {
            namespace: Some(namespace.to_string()),
            ..Default::default()
        },
        spec: SubjectAccessReviewSpec {
            user: Some(author.user.clone()),
            groups: Some(author.groups.clone()).filter(|g| !g.is_empty()),
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(namespace.to_string()),
                verb: Some(p.verb.to_string()),
                group: Some(p.group.to_string()),
                resource: Some(p.resource.to_string()),
                ..Default::default()
            }),
            ..Default::default()
        },
        status: None,
    }
}

/// The permissions of [`NEEDED`] the author lacks in `namespace` (empty: all held). An API error
/// is an error (the run does not start unchecked).
pub async fn missing(
    client: &Client,
    author: &Author,
    namespace: &str,
) -> Result<Vec<Permission>, Error> {
    let api: Api<LocalSubjectAccessReview> = Api::namespaced(client.clone(), namespace);
    let mut out = Vec::new();
    for p in NEEDED {
        let answer = api
            .create(&PostParams::default(), &review(author, namespace, p))
            .await
            .during(
                "asking whether the engine's author may still launch (LocalSubjectAccessReview)",
            )?;
        if !answer.status.is_some_and(|s| s.allowed) {
            out.push(p);
        }
    }
    Ok(out)
}

fn has_condition(engine: &ChaosEngine) -> bool {
    engine
        .status
        .as_ref()
        .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == AUTHOR_CONDITION))
}

/// The message of a held engine.
pub fn held_message(author: &Author, namespace: &str, lacking: &[Permission]) -> String {
    let names: Vec<String> = lacking.iter().map(ToString::to_string).collect();
    format!(
        "held: the engine's recorded author {} (annotation {AUTHOR_ANNOTATION}) may no longer {} \
         in namespace {namespace}: missing permission {}; checked again every {}s",
        author.user,
        names.join(" and "),
        names.join(", "),
        RECHECK.as_secs()
    )
}

/// The decision after the author check. `check` is `None` when no check was made (the decision
/// starts no run, or there is no recorded author), else the author and what they lack.
/// - no check: `decision` as is, minus a stale condition once the engine no longer wants to run;
/// - nothing lacking: `decision` minus the condition (with a Normal Event if it was there);
/// - something lacking: the engine held (stored status, the condition, the message, a Warning
///   Event once), nothing launched, planned again after [`RECHECK`].
pub fn gate(
    engine: &ChaosEngine,
    observed: &Observed,
    decision: Decision,
    check: Option<(&Author, &[Permission])>,
    now: Timestamp,
) -> Decision {
    let mut d = decision;
    match check {
        None => {
            let gone = engine.metadata.deletion_timestamp.is_some() || !engine.wants_active();
            if gone {
                d.status.conditions.retain(|c| c.type_ != AUTHOR_CONDITION);
            }
            d
        }
        Some((_, [])) => {
            if has_condition(engine) {
                d.status.conditions.retain(|c| c.type_ != AUTHOR_CONDITION);
                owe(
                    &mut d,
                    observed,
                    now,
                    EventSpec::operator(
                        EventType::Normal,
                        AUTHOR_PERMITTED_REASON,
                        "the engine's recorded author holds the permissions again: the run starts",
                    ),
                );
            }
            d
        }
        Some((author, lacking)) => hold(engine, observed, &d, author, lacking, now),
    }
}

fn hold(
    engine: &ChaosEngine,
    observed: &Observed,
    decision: &Decision,
    author: &Author,
    lacking: &[Permission],
    now: Timestamp,
) -> Decision {
    let namespace = engine.namespace().unwrap_or_default();
    let message = held_message(author, &namespace, lacking);
    let mut status = engine.status.clone().unwrap_or_default();
    let already = has_condition(engine) && status.message == message;
    let transition = status
        .conditions
        .iter()
        .find(|c| c.type_ == AUTHOR_CONDITION)
        .map_or(Time(now), |c| c.last_transition_time.clone());
    status.message = message.clone();
    // A kill switch released in this pass took its `Held` condition off the decision: keep it off.
    let switch_holds = decision
        .status
        .conditions
        .iter()
        .any(|c| c.type_ == HELD_CONDITION);
    status
        .conditions
        .retain(|c| c.type_ != AUTHOR_CONDITION && (c.type_ != HELD_CONDITION || switch_holds));
    status.conditions.push(Condition {
        type_: AUTHOR_CONDITION.into(),
        status: "True".into(),
        reason: "MissingPermission".into(),
        message: message.clone(),
        last_transition_time: transition,
        observed_generation: None,
    });
    let mut d = Decision {
        before_status: Vec::new(),
        status,
        after_status: Vec::new(),
        requeue_after: Some(RECHECK),
    };
    if !already {
        owe(
            &mut d,
            observed,
            now,
            EventSpec::operator(EventType::Warning, AUTHOR_HELD_REASON, message),
        );
    }
    d
}

/// The shell's step: checks the recorded author when `decision` starts a run, then [`gate`].
pub async fn check_launch(
    client: &Client,
    engine: &ChaosEngine,
    observed: &Observed,
    decision: Decision,
    now: Timestamp,
) -> Result<Decision, Error> {
    let author = recorded_author(engine).filter(|_| starts_run(engine, &decision));
    let Some(author) = author else {
        return Ok(gate(engine, observed, decision, None, now));
    };
    let namespace = engine.namespace().unwrap_or_default();
    let lacking = missing(client, &author, &namespace).await?;
    if !lacking.is_empty() {
        tracing::warn!(author = %author.user, ?lacking, "engine held: its recorded author lacks a permission to launch");
    }
    Ok(gate(
        engine,
        observed,
        decision,
        Some((&author, &lacking)),
        now,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ChaosEngineSpec, ExperimentList};
    use crate::engine::{Effect, PlanConfig, plan};

    fn engine(annotations: &[(&str, &str)]) -> ChaosEngine {
        let mut e = ChaosEngine::new(
            "e",
            ChaosEngineSpec {
                chaos_service_account: Some("sa".into()),
                experiments: vec![ExperimentList {
                    name: "pod-delete".into(),
                    ..Default::default()
                }],
                ..Default::default()
            },
        );
        e.metadata.namespace = Some("ns".into());
        e.metadata.uid = Some("uid-1".into());
        e.metadata.generation = Some(1);
        e.metadata.finalizers = Some(vec![crate::api::FINALIZER.into()]);
        e.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        e
    }

    fn reasons(d: &Decision) -> Vec<String> {
        d.status
            .pending_events
            .iter()
            .map(|e| e.reason.clone())
            .collect()
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
        let d = gate(
            &e,
            &Observed::default(),
            released,
            Some((&alice, &NEEDED)),
            now,
        );
        let types: Vec<&str> = d
            .status
            .conditions
            .iter()
            .map(|c| c.type_.as_str())
            .collect();
        assert_eq!(types, vec![AUTHOR_CONDITION]);
        // Still engaged (the decision keeps `Held`): both stay.
        let mut engaged = start;
        engaged.status.conditions = e.status.clone().unwrap_or_default().conditions;
        let d = gate(
            &e,
            &Observed::default(),
            engaged,
            Some((&alice, &NEEDED)),
            now,
        );
        let types: Vec<&str> = d
            .status
            .conditions
            .iter()
            .map(|c| c.type_.as_str())
            .collect();
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
}
