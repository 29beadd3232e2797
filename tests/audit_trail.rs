//! The audit trail survives controller crashes. 10 engines × 1 experiment run
//! under the real binary, which is SIGKILLed at random moments 5 times (and restarted at once);
//! at the end every Event owed (ChaosEngineInitialized, ExperimentDependencyCheck,
//! ExperimentJobCreate, ExperimentJobCleanUp, ChaosEngineCompleted) is present exactly once per
//! engine: one Event object per reason with count 1 — missing ones and retried duplicates both fail.
//!
//! The apiserver-restart half of the scenario is tests/apiserver_restart.rs (it runs alone).
mod support;

use std::time::{Duration, SystemTime};

use chaos_conductor::api::ChaosEngine;
use support::controller::ControllerProcess;
use support::*;

const ENGINES: usize = 10;
const KILLS: usize = 5;
const SETTLE: Duration = Duration::from_secs(120);

/// A small pseudo-random delay in [lo, hi) ms (xorshift seeded from the clock; printed so a run can
/// be compared with another).
struct Jitter(u64);
impl Jitter {
    fn new() -> Self {
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(42)
            | 1;
        eprintln!("[audit] jitter seed {seed}");
        Jitter(seed)
    }
    fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Duration::from_millis(lo + self.0 % (hi - lo))
    }
}

fn completed(e: &ChaosEngine) -> bool {
    e.status
        .as_ref()
        .is_some_and(|s| s.engine_status == "completed")
}

#[tokio::test]
async fn every_owed_event_is_recorded_exactly_once_across_sigkills() {
    let env = setup("audit-trail", &["pod-delete"]).await;
    let _fake = FakeExperiment::start(
        env.client(),
        env.ns(),
        Behaviour::all(ExperimentBehaviour::pass().run_time(secs(3))),
    );
    let log = format!("audit-trail-{}", env.ns());
    let mut ctrl = ControllerProcess::start(env.ns(), &log, &[]);
    env.create_pod_delete_runs("audit", ENGINES).await;
    let mut jitter = Jitter::new();
    for k in 0..KILLS {
        tokio::time::sleep(jitter.ms(300, 2500)).await;
        ctrl.kill();
        eprintln!("[audit] SIGKILL {k}");
        ctrl = ControllerProcess::start(env.ns(), &log, &[]);
    }

    let (engines, stuck) = settle_engines(&env, ENGINES, SETTLE, completed).await;
    // Owed Events are emitted after the status write that owes them: give a last pass time.
    tokio::time::sleep(secs(5)).await;

    let audit = support::audit::audit_events(&env, &engines).await;
    let (missing, duplicated, tally) = (audit.missing(), audit.duplicated(), &audit.tally);
    println!(
        "MEASURED audit-trail: kills={KILLS} engines={ENGINES} missing_events={missing} duplicated_events={duplicated} stuck_engines={} per_reason(ok,missing,dup)={tally:?}",
        stuck.len()
    );
    assert!(stuck.is_empty(), "engines not completed: {stuck:?}");
    assert!(audit.problems.is_empty(), "{}", audit.problems.join("\n"));
    // While the controller runs: it removes the engines' finalizers.
    env.cleanup().await;
    drop(ctrl);
}
