//! A leader paused (SIGSTOP) for longer than its Lease, then resumed, must not act
//! on the Lease it lost. Two replicas of the real binary on one short Lease run 30 engines whose
//! 5 sequential experiments take 2 s each with `jobCleanUpPolicy: delete`; the leader is paused past the
//! Lease and resumed, three times. A watch counts Job uids per `chaosUID` over the whole test:
//! a stale leader re-creating a Job that the new leader already ran and deleted shows up as a
//! second uid for the same run. The chart's leader-fence policy is installed for the Lease, as a
//! Helm install with leader election has it (tests/leader_fence.rs checks that policy alone).
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chaos_conductor::api::ChaosEngine;
use k8s_openapi::api::coordination::v1::Lease;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use support::chart::install_leader_fence;
use support::controller::ControllerProcess;
use support::watch::JobUids;
use support::*;

const ENGINES: usize = 30;
/// Enough sequential work per engine that every pause round lands in the middle of launches.
const EXPERIMENTS: [&str; 5] = [
    "pod-delete",
    "container-kill",
    "pod-cpu-hog",
    "pod-memory-hog",
    "disk-fill",
];
/// Each experiment's run: short, so that a paused leader's view goes stale while the new leader
/// runs the next experiments to their end (and deletes their Jobs).
const RUN_TIME: Duration = Duration::from_secs(2);
const LEASE_SECONDS: u64 = 4;
const PAUSES: usize = 3;
/// Well beyond the Lease: the standby takes over and finishes what the frozen leader was about to
/// launch, so the frozen leader wakes up with a view in which those launches are still due.
const PAUSE: Duration = Duration::from_secs(14);
/// Both replicas run at least this long before a pause.
const PAUSE_AT: Duration = Duration::from_millis(2500);
/// Bound on the whole run after the last resume.
const SETTLE: Duration = Duration::from_secs(180);
const LEASE: &str = "cc-leader-pause";

async fn lease_holder(env: &TestEnv) -> Option<String> {
    let leases: Api<Lease> = env.api();
    leases
        .get_opt(LEASE)
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

fn replica(env: &TestEnv, id: &str) -> ControllerProcess {
    let secs = LEASE_SECONDS.to_string();
    ControllerProcess::start(
        env.ns(),
        &format!("leader-pause-{}-{id}", env.ns()),
        &[
            "--leader-elect",
            "--leader-election-namespace",
            env.ns(),
            "--lease-name",
            LEASE,
            "--lease-duration-seconds",
            &secs,
            "--identity",
            id,
        ],
    )
}

/// Restarts replicas that exited, as their Deployment would (a replica that loses the Lease while
/// leading exits on purpose so that a fresh process stands by). Returns how many it restarted.
fn supervise(env: &TestEnv, replicas: &mut BTreeMap<&'static str, ControllerProcess>) -> usize {
    let mut restarted = 0;
    for (id, r) in replicas.iter_mut() {
        if r.exited() {
            eprintln!("[leader-pause] {id} exited; restarting it");
            *r = replica(env, id);
            restarted += 1;
        }
    }
    restarted
}

fn completed(e: &ChaosEngine) -> bool {
    e.status
        .as_ref()
        .is_some_and(|s| s.engine_status == "completed")
}

#[tokio::test]
async fn paused_leader_never_launches_twice_nor_leaves_jobs() {
    let env = setup("leader-pause", &EXPERIMENTS).await;
    let fake = FakeExperiment::start(
        env.client(),
        env.ns(),
        Behaviour::all(ExperimentBehaviour::pass().run_time(RUN_TIME)),
    );
    let jobs = JobUids::start(env.client(), env.ns()).await;
    install_leader_fence(&env, LEASE).await;
    let mut replicas: BTreeMap<&'static str, ControllerProcess> = BTreeMap::new();
    let mut restarts = 0;
    replicas.insert("replica-a", replica(&env, "replica-a"));
    env.wait_for(
        "replica-a holds the Lease",
        secs(60),
        async || match lease_holder(&env).await {
            Some(h) if h == "replica-a" => Ok(()),
            other => Err(anyhow::anyhow!("holder {other:?}")),
        },
    )
    .await;
    replicas.insert("replica-b", replica(&env, "replica-b"));

    let mut uids: BTreeMap<String, String> = BTreeMap::new();
    for i in 0..ENGINES {
        let mut b = EngineBuilder::new(&format!("pause-{i}"))
            .service_account(SAMPLE_SA)
            .job_cleanup_policy(Some("delete"));
        for x in EXPERIMENTS {
            b = b.experiment(x);
        }
        let e = env.create(&b.build()).await;
        uids.insert(e.uid().unwrap_or_default(), e.name_any());
    }

    let mut pauses = Vec::new();
    for round in 0..PAUSES {
        // Both replicas up (one may have exited after losing the Lease) for a while, so the
        // other one stands by when the leader freezes.
        let settle = Instant::now();
        while settle.elapsed() < PAUSE_AT {
            restarts += supervise(&env, &mut replicas);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let Some(holder) = lease_holder(&env).await else {
            panic!("round {round}: nobody holds the Lease");
        };
        // Freeze the leader in the middle of a burst of launches: some of its reconciles have
        // decided to create a Job and not yet sent the create.
        let base = jobs.total();
        let burst = Instant::now();
        while jobs.total() < base + 3 && burst.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let jobs_before = jobs.total();
        let leader = replicas
            .get(holder.as_str())
            .unwrap_or_else(|| panic!("unknown holder {holder}"));
        leader.signal("STOP");
        let stopped = Instant::now();
        let other: Vec<&'static str> = replicas
            .keys()
            .copied()
            .filter(|id| *id != holder.as_str())
            .collect();
        while stopped.elapsed() < PAUSE {
            // The standby may restart meanwhile; never the frozen leader (it cannot exit).
            for id in &other {
                if let Some(r) = replicas.get_mut(id)
                    && r.exited()
                {
                    eprintln!("[leader-pause] {id} exited during the pause; restarting it");
                    *r = replica(&env, id);
                    restarts += 1;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if let Some(leader) = replicas.get(holder.as_str()) {
            leader.signal("CONT");
        }
        let after = lease_holder(&env).await;
        eprintln!(
            "[leader-pause] round {round}: paused {holder} for {:.1?} (at {jobs_before} Jobs seen); holder now {after:?}; Jobs seen now {}",
            stopped.elapsed(),
            jobs.total()
        );
        pauses.push((holder, after));
    }

    // Every engine ends; the fake keeps passing whatever Job appears.
    let api = env.engines();
    let deadline = Instant::now() + SETTLE;
    let mut stuck: Vec<String>;
    loop {
        let all = api
            .list(&ListParams::default())
            .await
            .expect("list engines");
        stuck = all
            .items
            .iter()
            .filter(|e| !completed(e))
            .map(|e| e.name_any())
            .collect();
        if stuck.is_empty() || Instant::now() > deadline {
            break;
        }
        restarts += supervise(&env, &mut replicas);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Longer than a Lease and a launch: a stale replica's late Job would be here by now.
    tokio::time::sleep(secs(LEASE_SECONDS + 6)).await;
    restarts += supervise(&env, &mut replicas);
    let leftover: Vec<String> = env
        .jobs()
        .list(&ListParams::default().labels("chaosUID"))
        .await
        .expect("list Jobs")
        .items
        .iter()
        .map(|j| j.name_any())
        .collect();
    let (duplicates, detail) = jobs.duplicates(|uid| {
        if uids.contains_key(uid) {
            EXPERIMENTS.len()
        } else {
            0
        }
    });
    println!(
        "MEASURED leader-pause: duplicate_jobs={duplicates} leftover_jobs={} stuck_engines={} (restarts={restarts} engines={ENGINES} experiments_each={} jobs_seen={} pods_played={} pauses={pauses:?})",
        leftover.len(),
        stuck.len(),
        EXPERIMENTS.len(),
        jobs.total(),
        fake.seen().len()
    );
    assert!(
        jobs.total() >= ENGINES * EXPERIMENTS.len(),
        "the test saw only {} Jobs: it did not exercise the run",
        jobs.total()
    );
    assert!(
        pauses
            .iter()
            .any(|(before, after)| after.as_ref() != Some(before)),
        "the Lease never changed hands during a pause: the test did not exercise a takeover"
    );
    assert_eq!(duplicates, 0, "duplicate Jobs:\n{}", detail.join("\n"));
    assert!(leftover.is_empty(), "leftover Jobs: {leftover:?}");
    assert!(stuck.is_empty(), "engines not completed: {stuck:?}");
    // While the replicas run: they remove the engines' finalizers.
    env.cleanup().await;
    drop(replicas);
}
