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
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};

use super::error::{Error, KubeContext};
use super::halt::{HELD_CONDITION, running, starts_run};
use super::hold::{self, Hold, has_condition};
use crate::api::ChaosEngine;
use crate::engine::{Decision, Observed};

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
    // Independent questions: asked together, so the check costs one round trip before the launch.
    let answers = futures::future::try_join_all(NEEDED.iter().map(|p| {
        let review = review(author, namespace, *p);
        let api = api.clone();
        async move { api.create(&PostParams::default(), &review).await }
    }))
    .await
    .during("asking whether the engine's author may still launch (LocalSubjectAccessReview)")?;
    Ok(NEEDED
        .into_iter()
        .zip(answers)
        .filter(|(_, answer)| !answer.status.as_ref().is_some_and(|s| s.allowed))
        .map(|(p, _)| p)
        .collect())
}

/// The answer of [`missing`] asked before the plan, for the author it was asked about.
pub type EarlyAnswer = Option<(Author, Vec<Permission>)>;

/// The author whose permissions a pass will check if it starts a run, known before the plan: an
/// engine not running whose pass looks something up for a launch (src/engine/plan/observed.rs).
/// The reconcile pass asks [`missing`] for it together with those lookups, so the check adds no
/// round trip of its own before the Job; when the plan then starts no run the answer is unused,
/// and a run the guess missed is checked in [`check_launch`] as before.
pub fn may_check(engine: &ChaosEngine, now: Timestamp) -> Option<Author> {
    recorded_author(engine)
        .filter(|_| !running(engine) && !crate::engine::lookups(engine, now).experiments.is_empty())
}

/// [`missing`] for [`may_check`]'s author, if any. A failure is not the pass's: the answer is
/// only a head start, and [`check_launch`] asks again when it is missing.
pub async fn ask_early(client: &Client, engine: &ChaosEngine, now: Timestamp) -> EarlyAnswer {
    let author = may_check(engine, now)?;
    let namespace = engine.namespace().unwrap_or_default();
    match missing(client, &author, &namespace).await {
        Ok(lacking) => Some((author, lacking)),
        Err(error) => {
            tracing::debug!(%error, "early author check failed; asked again if the run starts");
            None
        }
    }
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
            if has_condition(engine, AUTHOR_CONDITION) {
                hold::release(
                    &mut d,
                    observed,
                    AUTHOR_CONDITION,
                    AUTHOR_PERMITTED_REASON,
                    "the engine's recorded author holds the permissions again: the run starts",
                    now,
                );
            }
            d
        }
        Some((author, lacking)) => hold_for_author(engine, observed, &d, author, lacking, now),
    }
}

/// The engine held because its author lacks `lacking`: [`hold::hold`] with the author's
/// condition, re-checked after [`RECHECK`].
fn hold_for_author(
    engine: &ChaosEngine,
    observed: &Observed,
    decision: &Decision,
    author: &Author,
    lacking: &[Permission],
    now: Timestamp,
) -> Decision {
    let namespace = engine.namespace().unwrap_or_default();
    let held = Hold {
        condition: AUTHOR_CONDITION,
        reason: "MissingPermission",
        event_reason: AUTHOR_HELD_REASON,
        message: held_message(author, &namespace, lacking),
        requeue_after: Some(RECHECK),
    };
    let mut d = hold::hold(engine, observed, held, now);
    // A kill switch released in this pass took its `Held` condition off the decision: keep it off.
    let switch_holds = decision
        .status
        .conditions
        .iter()
        .any(|c| c.type_ == HELD_CONDITION);
    if !switch_holds {
        d.status.conditions.retain(|c| c.type_ != HELD_CONDITION);
    }
    d
}

/// The shell's step: checks the recorded author when `decision` starts a run, then [`gate`].
/// `early` is [`ask_early`]'s answer, used when it was asked about the same author.
pub async fn check_launch(
    client: &Client,
    engine: &ChaosEngine,
    observed: &Observed,
    decision: Decision,
    early: EarlyAnswer,
    now: Timestamp,
) -> Result<Decision, Error> {
    let author = recorded_author(engine).filter(|_| starts_run(engine, &decision));
    let Some(author) = author else {
        return Ok(gate(engine, observed, decision, None, now));
    };
    let lacking = match early {
        Some((asked, lacking)) if asked == author => lacking,
        _ => missing(client, &author, &engine.namespace().unwrap_or_default()).await?,
    };
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
