//! The ordered checks of a launched experiment (plan/assess.rs), as one table: what is observed →
//! which [`Assessment`] decides the pass. Rows marked "beats" show the order between two checks.
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::engine::fixtures::*;
use crate::engine::plan::{Assessment, Observed, assess};

#[test]
fn a_launched_experiment_is_assessed_by_the_first_check_that_holds() {
    let (launched_e, job) = launched();
    let (running_e, _) = running_engine();
    let mut foreign = launched_e.clone();
    if let Some(s) = foreign.status.as_mut() {
        s.experiments[0].job_name = "nightly-backup".into();
    }
    let pod_name = format!("{job}-abcde");
    let with_job = |pods, results| Observed {
        jobs: vec![job_obj(&job)],
        pods,
        results,
        ..Default::default()
    };
    let mut deleted_pod = pod(&job, "Failed", Some(terminated(143, "Error")));
    deleted_pod.metadata.deletion_timestamp = Some(Time(later(5)));
    let rejected = Observed {
        rejected_jobs: BTreeMap::from([(job.clone(), "quota exceeded".to_string())]),
        ..Default::default()
    };
    let ended = || pod(&job, "Succeeded", Some(terminated(0, "Completed")));
    let pass = || result(&job, "Pass", "Completed");
    let (e, r) = (&launched_e, &running_e);
    let rows: Vec<(&str, _, Observed, Timestamp, Assessment)> = vec![
        (
            "status names a foreign Job",
            &foreign,
            Observed::default(),
            later(10),
            Assessment::ForeignJob,
        ),
        (
            "a foreign Job beats the deadline",
            &foreign,
            Observed::default(),
            later(3600),
            Assessment::ForeignJob,
        ),
        (
            "deadline",
            e,
            with_job(vec![pod(&job, "Running", Some(running()))], vec![]),
            later(3600),
            Assessment::DeadlinePassed,
        ),
        (
            "the deadline beats a failed pod",
            e,
            with_job(vec![pod(&job, "Failed", None)], vec![]),
            later(3600),
            Assessment::DeadlinePassed,
        ),
        (
            "Job gone, verdict in",
            e,
            Observed {
                results: vec![pass()],
                ..Default::default()
            },
            later(10),
            Assessment::JobGoneWithVerdict("Pass".into()),
        ),
        (
            "a verdict beats a rejected Job",
            e,
            Observed {
                results: vec![pass()],
                ..rejected.clone()
            },
            later(10),
            Assessment::JobGoneWithVerdict("Pass".into()),
        ),
        (
            "Job rejected",
            e,
            rejected.clone(),
            later(10),
            Assessment::JobRejected("quota exceeded".into()),
        ),
        (
            "Job never created",
            e,
            Observed::default(),
            later(10),
            Assessment::JobNeverCreated,
        ),
        (
            "Job gone while running",
            r,
            Observed::default(),
            later(10),
            Assessment::JobVanished,
        ),
        (
            "a rejection only counts before the pod ran",
            r,
            rejected,
            later(10),
            Assessment::JobVanished,
        ),
        (
            "no pod, in time",
            e,
            with_job(vec![], vec![]),
            later(10),
            Assessment::WaitingForPod { due: later(180) },
        ),
        (
            "no pod in time",
            e,
            with_job(vec![], vec![]),
            later(181),
            Assessment::NoPodInTime { timeout: 180 },
        ),
        (
            "deleted with Stopped",
            e,
            with_job(
                vec![deleted_pod.clone()],
                vec![result(&job, "Stopped", "Completed")],
            ),
            later(10),
            Assessment::DeletedWithStopped {
                pod: pod_name.clone(),
            },
        ),
        (
            "deleted without Stopped is a failure",
            e,
            with_job(vec![deleted_pod], vec![]),
            later(10),
            Assessment::PodFailed {
                pod: pod_name.clone(),
                detail: " (exit code 143, reason Error)".into(),
            },
        ),
        (
            "failed",
            e,
            with_job(vec![pod(&job, "Failed", None)], vec![]),
            later(10),
            Assessment::PodFailed {
                pod: pod_name.clone(),
                detail: String::new(),
            },
        ),
        (
            "a failed pod beats its verdict",
            e,
            with_job(
                vec![pod(&job, "Failed", Some(terminated(1, "Error")))],
                vec![pass()],
            ),
            later(10),
            Assessment::PodFailed {
                pod: pod_name.clone(),
                detail: " (exit code 1, reason Error)".into(),
            },
        ),
        (
            "terminated, verdict in",
            e,
            with_job(vec![ended()], vec![pass()]),
            later(10),
            Assessment::Verdict {
                pod: pod_name.clone(),
                verdict: "Pass".into(),
            },
        ),
        (
            "terminated, verdict due",
            e,
            with_job(vec![ended()], vec![]),
            later(30),
            Assessment::VerdictDue { due: later(60) },
        ),
        (
            "terminated, verdict overdue",
            e,
            with_job(vec![ended()], vec![]),
            later(61),
            Assessment::VerdictMissing {
                pod: pod_name.clone(),
            },
        ),
        (
            "a terminated main container beats a Pending pod",
            e,
            with_job(
                vec![pod(&job, "Pending", Some(terminated(0, "Completed")))],
                vec![],
            ),
            later(30),
            Assessment::VerdictDue { due: later(60) },
        ),
        (
            "pending",
            e,
            with_job(vec![pod(&job, "Pending", None)], vec![]),
            later(60),
            Assessment::Pending { due: later(180) },
        ),
        (
            "pending too long",
            e,
            with_job(vec![pod(&job, "Pending", None)], vec![]),
            later(181),
            Assessment::PendingTooLong {
                pod: pod_name.clone(),
                timeout: 180,
            },
        ),
        (
            "running",
            e,
            with_job(vec![pod(&job, "Running", Some(running()))], vec![]),
            later(10),
            Assessment::Running {
                pod: pod_name.clone(),
            },
        ),
    ];
    for (what, engine, observed, at, want) in rows {
        assert_eq!(assess(engine, &observed, at, &cfg(), 0), want, "{what}");
    }
}
