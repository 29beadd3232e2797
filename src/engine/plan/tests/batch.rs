//! Moving the experiment list on: sequence, parallel, graph, iterations, stopOnFailure
//! (plan/batch.rs).
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use crate::engine::decision::Effect;
use crate::engine::fixtures::*;
use crate::engine::plan::{MAX_RUN_RECORDS, Observed, lookups, plan};

#[test]
fn two_experiments_run_in_sequence() {
    let e =
        engine_yaml(json!({"experiments": [{"name": "pod-delete"}, {"name": "container-kill"}]}));
    let o = observed_all_present(&["pod-delete", "container-kill"]);
    let d = plan(&e, &o, now(), &cfg());
    assert_eq!(
        d.effects()
            .filter(|x| matches!(x, Effect::CreateJob(_)))
            .count(),
        1
    );
    assert_eq!(d.status.experiments[1].phase, "Pending");
    let job = d.status.experiments[0].job_name.clone();
    let e = persisted(e, &d);
    assert!(
        lookups(&e, now()).experiments.is_empty(),
        "the second waits for the first"
    );
    let o2 = Observed {
        jobs: vec![job_obj(&job)],
        pods: vec![pod(&job, "Succeeded", Some(terminated(0, "Completed")))],
        results: vec![result(&job, "Pass", "Completed")],
        ..observed_all_present(&["container-kill"])
    };
    let d = plan(&e, &o2, later(30), &cfg());
    assert_eq!(d.status.experiments[0].verdict, "Pass");
    assert_eq!(d.status.experiments[1].phase, "Launched");
    assert!(
        created_job(&d)
            .metadata
            .name
            .unwrap()
            .starts_with("container-kill-")
    );
    assert_eq!(d.status.engine_status, "initialized");
}

#[test]
fn skipped_experiment_lets_the_next_one_start_in_the_same_pass() {
    let e = engine_yaml(json!({"experiments": [{"name": "missing"}, {"name": "pod-delete"}]}));
    let mut o = observed_all_present(&["pod-delete"]);
    o.experiments.insert("missing".into(), None);
    let d = plan(&e, &o, now(), &cfg());
    assert_eq!(d.status.experiments[0].status, "ChaosExperiment Not Found");
    assert_eq!(d.status.experiments[1].phase, "Launched");
}

#[test]
fn parallel_respects_its_limit_and_graph_skips_failed_dependencies() {
    let e = engine_yaml(json!({
        "experiments": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
        "execution": {"mode": "parallel", "maxParallel": 2}
    }));
    let d = plan(&e, &observed_all_present(&["a", "b", "c"]), now(), &cfg());
    assert_eq!(
        d.effects()
            .filter(|x| matches!(x, Effect::CreateJob(_)))
            .count(),
        2
    );

    let g = engine_yaml(json!({
        "experiments": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
        "execution": {"mode": "graph", "dependsOn": {"b": ["a"], "c": ["a"]}, "requirePass": true}
    }));
    let d = plan(&g, &observed_all_present(&["a", "b", "c"]), now(), &cfg());
    assert_eq!(
        d.effects()
            .filter(|x| matches!(x, Effect::CreateJob(_)))
            .count(),
        1
    );
    let job = d.status.experiments[0].job_name.clone();
    let g = persisted(g, &d);
    let mut r = result(&job, "Fail", "Completed");
    r.metadata.name = Some("nginx-chaos-a".into());
    let o = Observed {
        results: vec![r],
        ..Default::default()
    };
    let d = plan(&g, &o, later(10), &cfg());
    assert_eq!(d.status.experiments[1].status, "Skipped");
    assert!(
        d.status.experiments[2]
            .message
            .contains("dependency a did not pass")
    );
    assert_eq!(d.status.engine_status, "completed");

    let cyclic = engine_yaml(json!({
        "experiments": [{"name": "a"}, {"name": "b"}],
        "execution": {"mode": "graph", "dependsOn": {"a": ["b"], "b": ["a"]}}
    }));
    let d = plan(&cyclic, &Observed::default(), now(), &cfg());
    assert_eq!(d.status.phase, "Invalid");
    assert!(d.status.message.contains("dependency cycle"));
}

#[test]
fn iterations_wait_their_interval_and_replay_with_the_same_seed() {
    let spec = json!({
        "experiments": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
        "execution": {"iterations": 2, "minIntervalSeconds": 30, "maxIntervalSeconds": 90, "randomOrder": true, "seed": 7}
    });
    let run = |spec: serde_json::Value| {
        let e = engine_yaml(spec);
        let o = observed_all_present(&["a", "b", "c"]);
        let mut order = Vec::new();
        let d = plan(&e, &o, now(), &cfg());
        assert_eq!(d.status.seed, Some(7));
        assert_eq!(d.status.iteration, Some(1));
        let mut e = persisted(e, &d);
        let mut t = 0;
        // Iteration 1: three experiments one after another, in the seeded order.
        for _ in 0..3 {
            let launched: Vec<String> = e
                .status
                .as_ref()
                .unwrap()
                .experiments
                .iter()
                .filter(|x| x.phase == "Launched")
                .map(|x| x.name.clone())
                .collect();
            order.extend(launched);
            t += 10;
            let d = pass_all_running(&e, later(t));
            let d = if d.effects().any(|x| matches!(x, Effect::CreateJob(_)))
                || d.status.iteration == Some(2)
            {
                d
            } else {
                plan(&persisted(e.clone(), &d), &o, later(t), &cfg())
            };
            e = persisted(e, &d);
            if e.status.as_ref().unwrap().iteration == Some(2) {
                break;
            }
            let d = plan(&e, &o, later(t), &cfg());
            e = persisted(e, &d);
        }
        let st = e.status.clone().unwrap();
        assert_eq!(st.iteration, Some(2));
        assert_eq!(st.runs.len(), 3, "iteration 1 archived");
        let next: Timestamp = st.next_iteration_at.clone().unwrap().parse().unwrap();
        let wait = next.duration_since(later(t)).as_secs();
        assert!(
            (30..=90).contains(&wait),
            "interval {wait}s within [30, 90]"
        );
        // Before the interval nothing launches, and the pass says when to look again.
        let d = plan(&e, &o, later(t + 1), &cfg());
        assert!(!d.effects().any(|x| matches!(x, Effect::CreateJob(_))));
        assert_eq!(
            d.requeue_after,
            Some(Duration::from_secs((wait - 1) as u64))
        );
        // After it, iteration 2 launches with Job names distinct from iteration 1.
        let d = plan(&e, &o, next, &cfg());
        let job = created_job(&d).metadata.name.unwrap();
        assert!(st.runs.iter().all(|r| r.job_name != job));
        (order, wait)
    };
    let first = run(json!({
        "experiments": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
        "execution": {"iterations": 2, "minIntervalSeconds": 30, "maxIntervalSeconds": 90, "randomOrder": true, "seed": 7}
    }));
    let again = run(spec);
    assert_eq!(
        first, again,
        "the same seed gives the same order and interval"
    );
}

#[test]
fn stop_on_failure_aborts_running_and_cancels_pending() {
    let e = engine_yaml(json!({
        "experiments": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
        "execution": {"mode": "parallel", "maxParallel": 2, "stopOnFailure": true}
    }));
    let d = plan(&e, &observed_all_present(&["a", "b", "c"]), now(), &cfg());
    let e = persisted(e, &d);
    let st = e.status.clone().unwrap();
    let (ja, jb) = (
        st.experiments[0].job_name.clone(),
        st.experiments[1].job_name.clone(),
    );
    let mut r = result(&ja, "Fail", "Completed");
    r.metadata.name = Some("nginx-chaos-a".into());
    let o = Observed {
        jobs: vec![job_obj(&ja), job_obj(&jb)],
        pods: vec![
            pod(&ja, "Succeeded", Some(terminated(0, "Completed"))),
            pod(&jb, "Running", Some(running())),
        ],
        results: vec![r],
        ..Default::default()
    };
    let d = plan(&e, &o, later(10), &cfg());
    let s = &d.status.experiments;
    assert_eq!(
        (
            s[0].verdict.as_str(),
            s[1].status.as_str(),
            s[2].status.as_str()
        ),
        ("Fail", "Forcefully Aborted", "Skipped")
    );
    assert!(d.before_status.contains(&Effect::DeleteJob { name: jb }));
    assert_eq!(d.status.engine_status, "completed");
    assert_eq!(d.status.verdict, "Fail");
}

#[test]
fn many_iterations_keep_status_runs_bounded_and_the_verdict_covers_all() {
    let e = engine_yaml(json!({
        "experiments": [{"name": "a"}, {"name": "b"}],
        "execution": {"mode": "parallel", "iterations": 80, "seed": 1}
    }));
    let o = observed_all_present(&["a", "b"]);
    let mut e = persisted(e.clone(), &plan(&e, &o, now(), &cfg()));
    let mut t = 0;
    let mut first_failed = false;
    for _ in 0..400 {
        t += 1;
        let st = e.status.clone().unwrap();
        if st.engine_status == "completed" {
            break;
        }
        // Iteration 1's experiment `a` fails; every other run passes.
        let d = if !first_failed && st.experiments.iter().any(|x| x.phase == "Launched") {
            first_failed = true;
            let x = st.experiments.iter().find(|x| x.name == "a").unwrap();
            let mut obs = Observed::default();
            obs.jobs.push(job_obj(&x.job_name));
            obs.pods
                .push(pod(&x.job_name, "Failed", Some(terminated(1, "Error"))));
            plan(&e, &obs, later(t), &cfg())
        } else if st.experiments.iter().any(|x| x.phase == "Launched") {
            pass_all_running(&e, later(t))
        } else {
            plan(&e, &o, later(t), &cfg())
        };
        e = persisted(e, &d);
    }
    let st = e.status.unwrap();
    assert_eq!(st.engine_status, "completed");
    assert_eq!(st.runs.len(), MAX_RUN_RECORDS);
    assert_eq!(st.dropped_runs, Some(160 - 100));
    assert_eq!(
        st.verdict, "Fail",
        "the failure of iteration 1 still counts"
    );
}
