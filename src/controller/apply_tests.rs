//! Unit tests of the write step ([`super::apply::apply`]) against a mocked API (tower-test): the
//! requests it sends and what it makes of the answers, below the cluster tier (tests/ runs the same
//! paths on a real control plane).
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response, StatusCode};
use k8s_openapi::api::batch::v1::Job;
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock::{self, Handle};

use super::apply::apply;
use crate::api::{ChaosEngine, ChaosEngineStatus, EnginePhase};
use crate::controller::context::{Caches, Context, Settings, StatusMode};
use crate::controller::halt::HaltState;
use crate::engine::{Decision, Effect};

const UID: &str = "6e76bd74-0000-4000-8000-0000000000aa";
const ENGINES: &str = "/apis/litmuschaos.io/v1alpha1/namespaces/ns/chaosengines/e";
const JOBS: &str = "/apis/batch/v1/namespaces/ns/jobs";

pub(super) type Mock = Handle<Request<Body>, Response<Body>>;

fn engine(rv: &str) -> ChaosEngine {
    serde_json::from_value(json!({
        "apiVersion": "litmuschaos.io/v1alpha1",
        "kind": "ChaosEngine",
        "metadata": {
            "name": "e", "namespace": "ns", "uid": UID, "resourceVersion": rv, "generation": 1,
            "finalizers": [crate::api::FINALIZER]
        },
        "spec": {"engineState": "active", "chaosServiceAccount": "sa", "experiments": []},
        "status": {"engineStatus": "initialized", "phase": "Running", "runId": 1}
    }))
    .unwrap()
}

fn context(client: Client) -> Arc<Context> {
    context_with(client, empty_caches())
}

fn empty_caches() -> Caches {
    Caches {
        jobs: crate::controller::cache::cache().0,
        pods: crate::controller::cache::cache().0,
        results: crate::controller::cache::cache().0,
        synced: tokio::sync::watch::channel(0).1,
    }
}

/// A context over a mocked client and the given caches (shared with observe_tests.rs).
pub(super) fn context_with(client: Client, caches: Caches) -> Arc<Context> {
    context_emitting(client, caches, 32)
}

/// As [`context_with`], with `emitters` owed-Event deliveries in flight at most.
fn context_emitting(client: Client, caches: Caches, emitters: usize) -> Arc<Context> {
    let registry = prometheus::Registry::new();
    Arc::new(Context {
        client,
        settings: Settings::default(),
        status_mode: StatusMode::Subresource,
        caches,
        by_uid: Mutex::new(HashMap::new()),
        written: Default::default(),
        failures: Default::default(),
        rejected: Mutex::new(HashMap::new()),
        outbox: Mutex::new(HashMap::new()),
        metrics: Arc::new(crate::metrics::Metrics::new().unwrap()),
        halt: Arc::new(HaltState::new(&registry, false, false).unwrap()),
        slots: super::slots::Slots::new(32, kube::runtime::reflector::store().0),
        emitters: tokio::sync::Semaphore::new(emitters),
    })
}

fn mocked() -> (Arc<Context>, Mock) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    (context(Client::new(service, "ns")), handle)
}

/// The next request: method, path and JSON body (`Null` when empty), and its responder.
pub(super) async fn next(
    handle: &mut Mock,
) -> (
    Method,
    String,
    Value,
    tower_test::mock::SendResponse<Response<Body>>,
) {
    let (req, send) = handle.next_request().await.expect("a request");
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let bytes = req.into_body().collect_bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (method, path, body, send)
}

pub(super) fn respond(
    send: tower_test::mock::SendResponse<Response<Body>>,
    code: u16,
    body: Value,
) {
    send.send_response(
        Response::builder()
            .status(StatusCode::from_u16(code).unwrap())
            .body(Body::from(serde_json::to_vec(&body).unwrap()))
            .unwrap(),
    );
}

fn status_error(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": reason,
           "reason": reason, "code": code})
}

fn decision(status: ChaosEngineStatus, after: Vec<Effect>) -> Decision {
    Decision {
        before_status: Vec::new(),
        status,
        after_status: after,
        requeue_after: None,
    }
}

fn job(owner_uid: &str) -> Job {
    serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "pod-delete-abc123", "namespace": "ns", "ownerReferences": [{
            "apiVersion": "litmuschaos.io/v1alpha1", "kind": "ChaosEngine", "name": "e",
            "uid": owner_uid, "controller": true
        }]},
        "spec": {"template": {"spec": {"containers": []}}}
    }))
    .unwrap()
}

#[tokio::test]
async fn the_status_write_carries_the_resource_version_it_was_decided_from() {
    let (ctx, mut api) = mocked();
    let e = engine("7");
    let mut status = e.status.clone().unwrap();
    status.phase = EnginePhase::Completed;
    let d = decision(status, Vec::new());
    let server = tokio::spawn(async move {
        let (method, path, body, send) = next(&mut api).await;
        let mut stored = engine("8");
        stored.status.as_mut().unwrap().phase = EnginePhase::Completed;
        respond(send, 200, serde_json::to_value(&stored).unwrap());
        (method, path, body)
    });
    let replan = apply(&ctx, &e, &d).await.unwrap();
    let (method, path, body) = server.await.unwrap();
    assert!(!replan);
    assert_eq!(method, Method::PATCH);
    assert_eq!(path, format!("{ENGINES}/status"));
    assert_eq!(body["metadata"]["resourceVersion"], "7", "{body}");
    assert_eq!(body["status"]["phase"], "Completed", "{body}");
}

#[tokio::test]
async fn a_job_already_gone_on_delete_counts_as_deleted() {
    let (ctx, mut api) = mocked();
    let e = engine("7");
    let d = decision(
        e.status.clone().unwrap(),
        vec![Effect::DeleteJob {
            name: "pod-delete-abc123".into(),
        }],
    );
    let server = tokio::spawn(async move {
        // The fence: a no-op patch with the precondition, before any effect on another object.
        let (m1, p1, b1, send) = next(&mut api).await;
        respond(send, 200, serde_json::to_value(engine("7")).unwrap());
        let (m2, p2, _, send) = next(&mut api).await;
        respond(send, 404, status_error(404, "NotFound"));
        (m1, p1, b1, m2, p2)
    });
    let replan = apply(&ctx, &e, &d).await.unwrap();
    let (m1, p1, b1, m2, p2) = server.await.unwrap();
    assert!(!replan);
    assert_eq!((m1, p1.as_str()), (Method::PATCH, ENGINES));
    assert_eq!(b1["metadata"]["resourceVersion"], "7", "{b1}");
    assert_eq!(
        (m2, p2),
        (Method::DELETE, format!("{JOBS}/pod-delete-abc123"))
    );
}

/// A create answered 409, then the existing Job as the API server returns it.
async fn create_meets_existing(existing: Job) -> (bool, Arc<Context>, Vec<(Method, String)>) {
    let (ctx, mut api) = mocked();
    let e = engine("7");
    let d = decision(
        e.status.clone().unwrap(),
        vec![Effect::CreateJob(Box::new(job(UID)))],
    );
    let server = tokio::spawn(async move {
        let mut seen = Vec::new();
        let (m, p, _, send) = next(&mut api).await;
        seen.push((m, p));
        respond(send, 200, serde_json::to_value(engine("7")).unwrap());
        let (m, p, _, send) = next(&mut api).await;
        seen.push((m, p));
        respond(send, 409, status_error(409, "AlreadyExists"));
        let (m, p, _, send) = next(&mut api).await;
        seen.push((m, p));
        respond(send, 200, serde_json::to_value(&existing).unwrap());
        seen
    });
    let replan = apply(&ctx, &e, &d).await.unwrap();
    (replan, ctx, server.await.unwrap())
}

#[tokio::test]
async fn our_own_existing_job_is_adopted() {
    let (replan, ctx, seen) = create_meets_existing(job(UID)).await;
    assert_eq!(
        seen,
        vec![
            (Method::PATCH, ENGINES.to_string()),
            (Method::POST, JOBS.to_string()),
            (Method::GET, format!("{JOBS}/pod-delete-abc123")),
        ]
    );
    assert!(!replan, "adopted: nothing to plan again");
    assert!(ctx.take_rejected(UID).is_empty());
}

#[tokio::test]
async fn a_foreign_job_of_the_same_name_ends_the_experiment_explained_instead_of_retrying() {
    let (replan, ctx, seen) = create_meets_existing(job("someone-else")).await;
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(replan, "planned again at once, with the refusal");
    let rejected = ctx.take_rejected(UID);
    let message = rejected
        .get("pod-delete-abc123")
        .cloned()
        .unwrap_or_default();
    assert!(message.contains("pod-delete-abc123"), "{message}");

    // The next pass reads the refusal: the experiment reaches a terminal, explained state.
    use crate::engine::fixtures::{cfg, later, launched, persisted};
    let (e, job_name) = launched();
    let observed = crate::engine::Observed {
        rejected_jobs: [(job_name.clone(), message.clone())].into(),
        ..Default::default()
    };
    let d = crate::engine::plan(&e, &observed, later(1), &cfg());
    let entry = &d.status.experiments[0];
    assert!(entry.phase.is_terminal(), "{:?}", entry.phase);
    assert!(entry.message.contains(&message), "{}", entry.message);
    assert!(!d.effects().any(|x| matches!(x, Effect::CreateJob(_))));
    // And it stays there: a further pass does not create the Job again.
    let e = persisted(e, &d);
    let d = crate::engine::plan(&e, &crate::engine::Observed::default(), later(2), &cfg());
    assert!(d.status.experiments[0].phase.is_terminal());
    assert!(!d.effects().any(|x| matches!(x, Effect::CreateJob(_))));
}

/// The first pass of an abort: the `Aborting` status write is conditional, so it fences the sweep
/// that follows it, and no no-op patch is sent in front (docs/performance.md "Mass abort"). The
/// sweep deletes the Jobs the core observed, each with its uid as precondition, without listing.
#[tokio::test]
async fn a_sweep_after_the_status_write_is_fenced_by_it() {
    let (ctx, mut api) = mocked();
    let e = engine("7");
    let mut status = e.status.clone().unwrap();
    status.phase = EnginePhase::Aborting;
    let d = decision(
        status,
        vec![Effect::DeleteChaosResources {
            grace_seconds: None,
            jobs: vec![crate::engine::JobRef {
                name: "pod-delete-abc".into(),
                uid: "job-uid-1".into(),
            }],
        }],
    );
    let server = tokio::spawn(async move {
        let mut seen = Vec::new();
        let (m, p, b, send) = next(&mut api).await;
        let mut stored = engine("8");
        stored.status.as_mut().unwrap().phase = EnginePhase::Aborting;
        respond(send, 200, serde_json::to_value(&stored).unwrap());
        seen.push((m, p, b));
        let (m, p, b, send) = next(&mut api).await;
        respond(
            send,
            200,
            json!({"apiVersion": "v1", "kind": "Status", "status": "Success", "metadata": {}}),
        );
        seen.push((m, p, b));
        let (m, p, b, send) = next(&mut api).await;
        respond(
            send,
            200,
            json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": []}),
        );
        seen.push((m, p, b));
        seen
    });
    apply(&ctx, &e, &d).await.unwrap();
    let seen = server.await.unwrap();
    let (m, p, b) = &seen[0];
    assert_eq!(
        (m, p.as_str()),
        (&Method::PATCH, format!("{ENGINES}/status").as_str())
    );
    assert_eq!(b["metadata"]["resourceVersion"], "7", "{b}");
    assert_eq!(b["status"]["phase"], "Aborting", "{b}");
    assert_eq!(
        (&seen[1].0, seen[1].1.as_str()),
        (&Method::DELETE, format!("{JOBS}/pod-delete-abc").as_str())
    );
    assert_eq!(
        seen[1].2["preconditions"]["uid"], "job-uid-1",
        "{}",
        seen[1].2
    );
    assert_eq!(
        seen[1].2["propagationPolicy"], "Background",
        "{}",
        seen[1].2
    );
    assert_eq!(
        (&seen[2].0, seen[2].1.as_str()),
        (&Method::DELETE, "/api/v1/namespaces/ns/pods")
    );
}

#[tokio::test]
async fn owed_events_are_delivered_at_most_emitters_at_once() {
    let (service, mut api) = mock::pair::<Request<Body>, Response<Body>>();
    let ctx = context_emitting(Client::new(service, "ns"), empty_caches(), 2);
    // Four engines at rest, each owing its last Event (as after a restart): the pass writes no
    // status, so each hands its owed Event to the outbox.
    for i in 0..4 {
        let mut e = engine("7");
        e.metadata.name = Some(format!("e{i}"));
        e.metadata.uid = Some(format!("{UID}-{i}"));
        let status = e.status.as_mut().unwrap();
        status.pending_events.push(crate::api::OwedEvent {
            run: 1,
            seq: 1,
            type_: "Normal".into(),
            reason: "ChaosEngineCompleted".into(),
            message: "done".into(),
            at: k8s_openapi::jiff::Timestamp::now().to_string(),
            ..Default::default()
        });
        let d = decision(status.clone(), Vec::new());
        assert!(!apply(&ctx, &e, &d).await.unwrap());
    }
    let wait = std::time::Duration::from_millis(200);
    let mut in_flight = Vec::new();
    for _ in 0..2 {
        let (method, path, _, send) = tokio::time::timeout(wait * 10, next(&mut api))
            .await
            .expect("two deliveries in flight");
        assert_eq!(
            (method, path.as_str()),
            (Method::POST, "/api/v1/namespaces/ns/events")
        );
        in_flight.push(send);
    }
    assert!(
        tokio::time::timeout(wait, api.next_request())
            .await
            .is_err(),
        "a third delivery must wait for one of the two permits"
    );
    let event = json!({"apiVersion": "v1", "kind": "Event", "involvedObject": {},
                       "metadata": {"name": "x", "namespace": "ns"}});
    respond(in_flight.pop().unwrap(), 201, event);
    let (method, _, _, _) = tokio::time::timeout(wait * 10, next(&mut api))
        .await
        .expect("the freed permit lets the next delivery go");
    assert_eq!(method, Method::POST);
}
