//! The audit trail and the runs survive an apiserver restart: 10 engines run under the real
//! binary while the apiserver is stopped for 5 s and started again (`scripts/cluster
//! restart-apiserver`; its graceful stop drains open watches first, measured up to ~60 s here, so
//! the outage seen by the watches is longer than the 5 s). Every engine completes with Pass, no Job is created twice, and every owed
//! Event is present exactly once. Run alone (`--ignored`, see scripts/test): the restart would
//! disturb tests running beside it on the shared cluster.
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use chaos_conductor::api::ChaosEngine;
use kube::ResourceExt;
use kube::api::ListParams;
use support::audit::audit_events;
use support::controller::ControllerProcess;
use support::outage::outage_tolerant_client;
use support::watch::JobUids;
use support::*;

const ENGINES: usize = 10;
const SETTLE: Duration = Duration::from_secs(180);
const GC_WAIT: Duration = Duration::from_secs(90);

fn completed(e: &ChaosEngine) -> bool {
    e.status
        .as_ref()
        .is_some_and(|s| s.engine_status == "completed")
}

#[tokio::test]
#[ignore = "restarts the shared apiserver: run alone (scripts/test does)"]
async fn runs_and_events_survive_an_apiserver_restart() {
    let env = setup("apiserver-restart", &["pod-delete"]).await;
    let jobs = JobUids::start(env.client(), env.ns()).await;
    // The stand-in rides out the outage as a real experiment pod's client would
    // (tests/support/outage.rs): what is measured is the controller, not the stand-in's luck.
    let fake_client = outage_tolerant_client(env.config()).expect("stand-in client");
    let _fake = FakeExperiment::start(
        fake_client,
        env.ns(),
        Behaviour::all(ExperimentBehaviour::pass().run_time(secs(6))),
    );
    let log = format!("apiserver-restart-{}", env.ns());
    let ctrl = ControllerProcess::start(env.ns(), &log, &[]);
    env.create_pod_delete_runs("restart", ENGINES).await;
    // Mid-run: Jobs created, experiments running.
    tokio::time::sleep(secs(2)).await;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/cluster");
    let t0 = Instant::now();
    let status = Command::new(script)
        .args(["restart-apiserver", "5"])
        .status()
        .expect("scripts/cluster restart-apiserver");
    assert!(status.success(), "restart-apiserver: {status}");
    eprintln!("[restart] apiserver back after {:.1?}", t0.elapsed());

    let (engines, stuck) = settle_engines(&env, ENGINES, SETTLE, completed).await;
    let failed: Vec<String> = engines
        .iter()
        .filter(|e| e.status.as_ref().is_some_and(|s| s.verdict != "Pass"))
        .map(|e| e.name_any())
        .collect();
    // Owed Events go out after the status write that owes them, with retries.
    tokio::time::sleep(secs(5)).await;
    let audit = audit_events(&env, &engines).await;
    let (duplicates, detail) = jobs.duplicates(|_| 1);
    // Deleted Jobs go once the garbage collector has removed their pods (foreground deletion),
    // and the controller-manager's own watches are still catching up after the restart: bounded
    // wait for zero, not one read.
    let gc_start = Instant::now();
    let leftover = loop {
        let n = env
            .jobs()
            .list(&ListParams::default())
            .await
            .map(|l| l.items.len())
            .unwrap_or(usize::MAX);
        if n == 0 || gc_start.elapsed() > GC_WAIT {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!(
        "MEASURED apiserver-restart: engines={ENGINES} duplicate_jobs={duplicates} leftover_jobs={leftover} missing_events={} duplicated_events={} stuck_engines={} not_pass={}",
        audit.missing(),
        audit.duplicated(),
        stuck.len(),
        failed.len()
    );
    assert!(stuck.is_empty(), "engines not completed: {stuck:?}");
    assert!(failed.is_empty(), "engines without Pass: {failed:?}");
    assert_eq!(duplicates, 0, "{detail:?}");
    assert_eq!(leftover, 0, "jobCleanUpPolicy delete leaves no Job");
    assert!(audit.problems.is_empty(), "{}", audit.problems.join("\n"));
    env.cleanup().await;
    drop(ctrl);
}
