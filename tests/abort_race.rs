//! An abort decided while a launch is in flight must sweep what that launch
//! creates. 30 engines are created and aborted at once (delete / `engineState: stop` / the abort
//! annotation, mixed), with the controller's API calls slowed down by a delaying TCP proxy so
//! that launches and aborts overlap; within the abort bound no chaos Job or pod is left, and none
//! comes back. A watch counts every Job created meanwhile.
mod support;

use std::time::{Duration, Instant};

use chaos_conductor::api::ABORT_ANNOTATION;
use futures::future::join_all;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;
use support::controller::InProcessController;
use support::latency::LatencyProxy;
use support::watch::JobUids;
use support::*;

const ENGINES: usize = 30;
/// Per forwarded chunk, each way: an API round trip of the controller costs ≥ 2 × this.
const LATENCY: Duration = Duration::from_millis(40);
/// Aborts must be finished within this (the abort bound of tests/abort.rs).
const ABORT_BOUND: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug)]
enum Trigger {
    Delete,
    Stop,
    Annotation,
}

async fn trigger(env: &TestEnv, name: &str, t: Trigger) {
    let pp = PatchParams::default();
    let r = match t {
        Trigger::Delete => env
            .engines()
            .delete(name, &DeleteParams::default())
            .await
            .map(|_| ()),
        Trigger::Stop => env
            .engines()
            .patch(
                name,
                &pp,
                &Patch::Merge(json!({"spec": {"engineState": "stop"}})),
            )
            .await
            .map(|_| ()),
        Trigger::Annotation => env
            .engines()
            .patch(
                name,
                &pp,
                &Patch::Merge(json!({"metadata": {"annotations": {ABORT_ANNOTATION: "true"}}})),
            )
            .await
            .map(|_| ()),
    };
    r.unwrap_or_else(|e| panic!("{t:?} {name}: {e}"));
}

#[tokio::test]
async fn aborts_racing_launches_leave_no_chaos_behind() {
    let env = setup("abort-race-many", &["pod-delete"]).await;
    let _fake = FakeExperiment::start(
        env.client(),
        env.ns(),
        Behaviour::all(ExperimentBehaviour::never_finish()),
    );
    let jobs = JobUids::start(env.client(), env.ns()).await;
    let upstream = {
        let url = &env.config().cluster_url;
        format!(
            "{}:{}",
            url.host().unwrap_or("127.0.0.1"),
            url.port_u16().unwrap_or(443)
        )
    };
    let proxy = LatencyProxy::start(&upstream, LATENCY);
    let ctrl = InProcessController::start(proxy.client(env.config()), env.ns());

    let triggers = [Trigger::Delete, Trigger::Stop, Trigger::Annotation];
    let started = Instant::now();
    join_all((0..ENGINES).map(|i| {
        let env = &env;
        async move {
            let name = format!("race-{i}");
            env.create(
                &EngineBuilder::new(&name)
                    .service_account(SAMPLE_SA)
                    .experiment("pod-delete")
                    .build(),
            )
            .await;
            // Vary the moment: at once, or a little later while the launch is in flight.
            tokio::time::sleep(Duration::from_millis(150 * (i as u64 % 10))).await;
            trigger(env, &name, triggers[i % 3]).await;
        }
    }))
    .await;

    let all = ListParams::default().labels("chaosUID");
    let mut last = (usize::MAX, usize::MAX);
    while started.elapsed() < ABORT_BOUND {
        let j = env.jobs().list(&all).await.expect("list Jobs").items.len();
        let p = env.pods().list(&all).await.expect("list pods").items.len();
        last = (j, p);
        if j + p == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let cleared_after = started.elapsed();
    // A launch that was still in flight would land by now.
    tokio::time::sleep(secs(5)).await;
    let late_jobs = env.jobs().list(&all).await.expect("list Jobs").items.len();
    let late_pods = env.pods().list(&all).await.expect("list pods").items.len();
    println!(
        "MEASURED abort-race: engines={ENGINES} latency={LATENCY:?}/chunk jobs_seen={} leftover_jobs={} leftover_pods={} (at the bound: {} jobs, {} pods, cleared after {cleared_after:.1?}) reconciles={}",
        jobs.total(),
        late_jobs,
        late_pods,
        last.0,
        last.1,
        ctrl.metrics.reconciles.get()
    );
    assert_eq!(
        last,
        (0, 0),
        "chaos Jobs/pods still there {ABORT_BOUND:?} after the aborts"
    );
    assert_eq!(
        (late_jobs, late_pods),
        (0, 0),
        "chaos came back after the sweep"
    );
    // The race needs launches to happen at all (aborts as late as 1.35 s after creation).
    if jobs.total() == 0 {
        eprintln!("[abort-race] note: no Job was launched before its abort this time");
    }
    env.cleanup().await;
    ctrl.stop().await;
    drop(proxy);
}
