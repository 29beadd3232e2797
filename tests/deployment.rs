//! The deployment as the chart makes it, against the real local control plane (scripts/cluster up):
//! the chart's RBAC is enough (the real binary runs with a ServiceAccount token bound by the
//! rendered Role), the HTTP endpoints and metric values, leader election with two processes (kill
//! -9 takeover, no duplicate Job) and the Lease released on SIGTERM.
mod support;

use std::time::{Duration, Instant};

use anyhow::anyhow;
use chaos_conductor::api::ChaosEngine;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;
use support::conductor::*;
use support::*;

/// The chaos service account of the sample engines.
const SA: &str = SAMPLE_SA;
/// The Helm release the chart is rendered as; the chart's objects are named `cc-chaos-conductor`.
const RELEASE: &str = "cc";
const FULLNAME: &str = "cc-chaos-conductor";
const WAIT: Duration = Duration::from_secs(90);
/// What src/leader.rs logs when this replica becomes the leader.
const LEADING: &str = "leading: starting the controller";
/// What src/leader.rs logs while another replica leads.
const STANDING_BY: &str = "standing by for leadership";

// ---------------------------------------------------------------------------------------------
// The chart's RBAC and a kubeconfig for its ServiceAccount
// ---------------------------------------------------------------------------------------------

/// Renders the chart's RBAC for `watchNamespace=<ns>` (plus `extra` values), applies it into the
/// test namespace and returns a kubeconfig for the chart's ServiceAccount (TokenRequest API).
async fn chart_service_account(env: &TestEnv, extra: &[&str]) -> tempfile::TempDir {
    let ns = env.ns();
    // The chart's ServiceAccount and RBAC, release `cc` in `ns`.
    let mut sets = vec!["--set".to_string(), format!("watchNamespace={ns}")];
    for s in extra {
        sets.extend(["--set".to_string(), s.to_string()]);
    }
    let yaml = chart::render(RELEASE, ns, &["serviceaccount.yaml", "rbac.yaml"], &sets);
    assert!(
        !yaml.contains("kind: ClusterRole"),
        "watchNamespace must give a namespaced Role only:\n{yaml}"
    );
    let applied = env
        .apply_yaml(&yaml)
        .await
        .expect("applying the chart RBAC");
    let kinds: Vec<String> = applied
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o.types.as_ref().map_or("", |t| t.kind.as_str()),
                o.name_any()
            )
        })
        .collect();
    eprintln!("[e2e] applied chart objects: {kinds:?}");
    let dir = tempfile::tempdir().expect("temp dir");
    let token = service_account_token(env, FULLNAME).await;
    write_token_kubeconfig(&dir.path().join("kubeconfig"), &token, ns);
    dir
}

#[test]
fn metrics_parser_reads_labels_escapes_and_values() {
    let s = parse_metrics(
        "# HELP x y\nfoo 3\nbar{a=\"1\",b=\"x\\\"y\\\\z\"} 2.5\nh_bucket{le=\"+Inf\"} 7\n",
    );
    assert_eq!(s.len(), 3);
    assert_eq!((s[0].name.as_str(), s[0].value), ("foo", 3.0));
    assert_eq!(s[1].labels["a"], "1");
    assert_eq!(s[1].labels["b"], "x\"y\\z");
    assert_eq!(s[1].value, 2.5);
    assert_eq!(s[2].labels["le"], "+Inf");
    assert_eq!(value_of(&s, "bar", &[("a", "1")]).unwrap(), 2.5);
}

// ---------------------------------------------------------------------------------------------
// Engines
// ---------------------------------------------------------------------------------------------

fn engine(name: &str, experiment: &str) -> ChaosEngine {
    EngineBuilder::new(name)
        .service_account(SA)
        .experiment(experiment)
        .build()
}

fn engine_status(e: &ChaosEngine) -> &str {
    e.status.as_ref().map_or("", |s| s.engine_status.as_str())
}

fn first_experiment_status(e: &ChaosEngine) -> (String, String) {
    e.status
        .as_ref()
        .and_then(|s| s.experiments.first())
        .map(|x| (x.status.clone(), x.verdict.clone()))
        .unwrap_or_default()
}

async fn wait_running(env: &TestEnv, name: &str) -> ChaosEngine {
    wait_engine(env, name, "experiment running", |e| {
        first_experiment_status(e).0 == "Running"
    })
    .await
}

async fn wait_completed(env: &TestEnv, name: &str) -> ChaosEngine {
    wait_engine(env, name, "engine completed", |e| {
        engine_status(e) == "completed"
    })
    .await
}

/// Pods of the engine (label `chaosUID=<uid>`).
async fn chaos_pods(env: &TestEnv, uid: &str) -> Vec<Pod> {
    env.pods()
        .list(&ListParams::default().labels(&format!("chaosUID={uid}")))
        .await
        .expect("listing chaos pods")
        .items
}

async fn completion_events(env: &TestEnv, engine: &str) -> i32 {
    env.engine_events(engine)
        .await
        .into_iter()
        .filter(|x| x.reason == "ChaosEngineCompleted")
        .map(|x| x.count)
        .sum()
}

async fn lease_holder(env: &TestEnv, name: &str) -> Option<String> {
    let leases: Api<Lease> = env.api();
    leases
        .get_opt(name)
        .await
        .expect("reading the Lease")
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// The chart's namespaced Role (+ lease Role) is all the controller needs: an engine runs to its
/// verdict and another is aborted cleanly with only the chart ServiceAccount's token.
#[tokio::test]
async fn chart_rbac_is_enough_to_run_and_abort_engines() {
    let env = setup("deploy-rbac", &["pod-delete", "container-kill"]).await;
    let ns = env.ns().to_string();
    let kc = chart_service_account(&env, &["leaderElection.enabled=true"]).await;
    let kubeconfig = kc.path().join("kubeconfig");

    // The token is really the chart's ServiceAccount: nothing outside its Role.
    let restricted = client_from(&kubeconfig).await;
    let err = Api::<Pod>::namespaced(restricted.clone(), "default")
        .list(&ListParams::default())
        .await
        .expect_err("the chart SA must not list pods in another namespace");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 403),
        "{err}"
    );
    Api::<Pod>::namespaced(restricted, &ns)
        .list(&ListParams::default().labels("chaosUID"))
        .await
        .expect("the chart SA lists chaos pods in the watched namespace");

    let fake = FakeExperiment::start(
        env.client(),
        &ns,
        Behaviour::pass().with("container-kill", ExperimentBehaviour::never_finish()),
    );
    let mut ctrl = Conductor::start(
        "rbac",
        &kubeconfig,
        &ns,
        &[
            "--leader-elect",
            "--leader-election-namespace",
            &ns,
            "--lease-name",
            FULLNAME,
            "--identity",
            "rbac-test",
        ],
    );
    ctrl.wait_log(LEADING, secs(60)).await;
    ctrl.wait_ok("/readyz").await;

    // 1. To the verdict.
    env.create(&engine("verdict", "pod-delete")).await;
    let e = wait_completed(&env, "verdict").await;
    assert_eq!(
        first_experiment_status(&e),
        ("Completed".to_string(), "Pass".to_string())
    );
    assert_eq!(e.status.as_ref().unwrap().verdict, "Pass");

    // 2. Abort a running experiment: engineState stop -> stopped, no chaos pods left.
    env.create(&engine("abort", "container-kill")).await;
    let running = wait_running(&env, "abort").await;
    let uid = running.uid().unwrap();
    env.engines()
        .patch(
            "abort",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"engineState": "stop"}})),
        )
        .await
        .expect("engineState stop");
    let stopped = wait_engine(&env, "abort", "engine stopped", |e| {
        engine_status(e) == "stopped"
    })
    .await;
    assert_eq!(first_experiment_status(&stopped).1, "Stopped");
    env.wait_for("no chaos pods of the aborted engine", WAIT, async || {
        let pods = chaos_pods(&env, &uid).await;
        if pods.is_empty() {
            Ok(())
        } else {
            Err(anyhow!(
                "{:?}",
                pods.iter().map(|p| p.name_any()).collect::<Vec<_>>()
            ))
        }
    })
    .await;
    fake.assert_no_errors();
    assert_eq!(
        lease_holder(&env, FULLNAME).await.as_deref(),
        Some("rbac-test")
    );
    ctrl.assert_no_forbidden();
    ctrl.terminate();
    let status = ctrl.wait_exit(secs(30)).await;
    assert!(status.success(), "exit after SIGTERM: {status}");
    ctrl.assert_no_forbidden();
    env.cleanup().await;
}

/// /healthz, /readyz and /metrics of the real binary, with values after one passed engine.
#[tokio::test]
async fn metrics_and_health_endpoints_report_one_passed_engine() {
    let env = setup("deploy-metrics", &["pod-delete"]).await;
    let ns = env.ns().to_string();
    let kc = chart_service_account(&env, &[]).await;
    let _fake = FakeExperiment::start(env.client(), &ns, Behaviour::pass());
    let ctrl = Conductor::start("metrics", &kc.path().join("kubeconfig"), &ns, &[]);
    ctrl.wait_ok("/healthz").await;
    ctrl.wait_ok("/readyz").await;
    // src/main.rs turns transparent huge pages off for the process (its resident memory).
    assert_eq!(ctrl.proc_status("THP_enabled").as_deref(), Some("0"));
    let (code, _) = ctrl.get("/nope").await.unwrap();
    assert_eq!(code, 404);

    let engine_name = "metered";
    env.create(&engine(engine_name, "pod-delete")).await;
    let e = wait_completed(&env, engine_name).await;
    let result_name = format!("{engine_name}-pod-delete");
    let job_name = e.status.as_ref().unwrap().experiments[0].job_name.clone();
    let pod_name = e.status.as_ref().unwrap().experiments[0]
        .experiment_pod
        .clone();

    // The outcome gauges come from the caches at scrape time: wait for the result to be seen.
    let samples = env
        .wait_for("metrics of the passed engine", secs(30), async || {
            let m = ctrl.metrics().await?;
            let completed = value_of(&m, "chaos_conductor_engines", &[("phase", "Completed")])?;
            let passed = value_of(
                &m,
                "litmuschaos_passed_experiments",
                &[
                    ("chaosresult_name", result_name.as_str()),
                    ("chaosresult_namespace", ns.as_str()),
                ],
            )?;
            if completed == 1.0 && passed == 1.0 {
                Ok(m)
            } else {
                Err(anyhow!("completed={completed} passed={passed}"))
            }
        })
        .await;
    let v = |name: &str, with: &[(&str, &str)]| {
        value_of(&samples, name, with).unwrap_or_else(|e| panic!("{e:#}"))
    };
    let reconciles = v("chaos_conductor_reconciles_total", &[]);
    assert!(reconciles > 0.0, "reconciles_total {reconciles}");
    assert_eq!(v("chaos_conductor_jobs_created_total", &[]), 1.0);
    // The wait above saw one Completed engine; the namespace holds only that one, so no other
    // phase may count it as well.
    let engines_in_any_phase: f64 = samples
        .iter()
        .filter(|s| s.name == "chaos_conductor_engines")
        .map(|s| s.value)
        .sum();
    assert_eq!(engines_in_any_phase, 1.0, "one engine, counted once");
    assert_eq!(
        v(
            "litmuschaos_passed_experiments",
            &[
                ("chaosresult_name", &result_name),
                ("chaosengine_name", engine_name),
                ("fault_name", "pod-delete"),
            ]
        ),
        1.0
    );
    assert_eq!(
        v(
            "litmuschaos_failed_experiments",
            &[("chaosresult_name", &result_name)]
        ),
        0.0
    );
    assert_eq!(
        v(
            "litmuschaos_experiment_verdict",
            &[
                ("chaosresult_name", &result_name),
                ("chaosresult_verdict", "Pass"),
                ("chaosengine_name", engine_name),
                ("app_label", "app=nginx"),
            ]
        ),
        1.0
    );
    assert!(v("litmuschaos_cluster_scoped_passed_experiments", &[]) >= 1.0);
    assert_eq!(
        v(
            "litmuschaos_namespace_scoped_passed_experiments",
            &[("chaosresult_namespace", &ns)]
        ),
        1.0
    );

    // Controller metrics carry bounded labels only: no object name as a label value.
    let names = [
        ns.as_str(),
        engine_name,
        result_name.as_str(),
        job_name.as_str(),
        pod_name.as_str(),
        SA,
        FULLNAME,
    ];
    for s in samples
        .iter()
        .filter(|s| s.name.starts_with("chaos_conductor_"))
    {
        for (k, value) in &s.labels {
            for n in names.iter().filter(|n| !n.is_empty()) {
                assert!(
                    !value.contains(n),
                    "{} has label {k}={value:?} containing the object name {n:?}",
                    s.name
                );
            }
        }
    }
    assert!(
        samples
            .iter()
            .any(|s| s.name == "chaos_conductor_reconcile_duration_seconds_count" && s.value > 0.0)
    );
    ctrl.assert_no_forbidden();
    env.cleanup().await;
}

/// Two replicas on one Lease: only the leader reconciles; kill -9 of the leader mid-experiment
/// hands over to the standby within the Lease duration, with one Job and one verdict.
#[tokio::test]
async fn standby_takes_over_after_the_leader_is_killed() {
    let env = setup("deploy-leader", &["pod-delete"]).await;
    let ns = env.ns().to_string();
    let kc = chart_service_account(&env, &["leaderElection.enabled=true"]).await;
    let kubeconfig = kc.path().join("kubeconfig");
    let fake = FakeExperiment::start(
        env.client(),
        &ns,
        Behaviour::all(ExperimentBehaviour::pass().run_time(secs(20))),
    );
    let args = |id: &'static str| {
        vec![
            "--leader-elect".to_string(),
            "--leader-election-namespace".to_string(),
            ns.clone(),
            "--lease-name".to_string(),
            FULLNAME.to_string(),
            "--lease-duration-seconds".to_string(),
            "10".to_string(),
            "--identity".to_string(),
            id.to_string(),
        ]
    };
    let a_args = args("replica-a");
    let a_args: Vec<&str> = a_args.iter().map(String::as_str).collect();
    let mut a = Conductor::start("replica-a", &kubeconfig, &ns, &a_args);
    a.wait_log(LEADING, secs(60)).await;
    let b_args = args("replica-b");
    let b_args: Vec<&str> = b_args.iter().map(String::as_str).collect();
    let mut b = Conductor::start("replica-b", &kubeconfig, &ns, &b_args);
    b.wait_log(STANDING_BY, secs(60)).await;
    a.wait_ok("/readyz").await;
    b.wait_ok("/readyz").await; // standing by counts as ready
    assert_eq!(
        lease_holder(&env, FULLNAME).await.as_deref(),
        Some("replica-a")
    );

    env.create(&engine("ha", "pod-delete")).await;
    let running = wait_running(&env, "ha").await;
    let job_name = running.status.as_ref().unwrap().experiments[0]
        .job_name
        .clone();
    a.wait_log("experiment Job created", secs(10)).await;
    assert!(
        !b.log_text().contains("experiment Job created"),
        "the standby created a Job:\n{}",
        b.log_text()
    );
    assert!(!b.log_text().contains(LEADING), "{}", b.log_text());
    let b_metrics = b.metrics().await.unwrap();
    assert_eq!(
        value_of(&b_metrics, "chaos_conductor_reconciles_total", &[]).unwrap(),
        0.0,
        "the standby reconciled"
    );

    // Kill -9 the leader while the experiment runs (the fake finishes 20 s after it started).
    let killed = Instant::now();
    a.kill();
    b.wait_log(LEADING, secs(30)).await;
    let takeover = killed.elapsed();
    eprintln!("[e2e] leader killed -> standby leading after {takeover:.2?}");
    println!("MEASURED takeover after SIGKILL of the leader: {takeover:.2?}");
    assert!(
        takeover < secs(15),
        "takeover took {takeover:?} (lease 10 s)"
    );
    assert_eq!(
        lease_holder(&env, FULLNAME).await.as_deref(),
        Some("replica-b")
    );

    let e = wait_completed(&env, "ha").await;
    let st = e.status.as_ref().unwrap();
    assert_eq!(st.experiments.len(), 1);
    assert_eq!(st.experiments[0].job_name, job_name, "the same Job");
    assert_eq!(st.experiments[0].verdict, "Pass");
    let jobs = env.jobs().list(&Default::default()).await.unwrap().items;
    assert_eq!(
        jobs.iter().map(|j| j.name_any()).collect::<Vec<_>>(),
        vec![job_name.clone()],
        "exactly one Job"
    );
    assert_eq!(fake.seen().len(), 1, "the experiment ran once");
    fake.assert_no_errors();
    // ChaosEngineCompleted is delivered from the outbox after the final status write
    // (src/controller/apply/outbox.rs), so it may follow the `completed` status by a moment: wait for it,
    // then make sure it is the only one.
    env.wait_event("ha", first_with_reason("ChaosEngineCompleted"), secs(30))
        .await;
    assert_eq!(
        completion_events(&env, "ha").await,
        1,
        "exactly one verdict"
    );
    assert!(
        !b.log_text().contains("experiment Job created"),
        "the new leader created a second Job:\n{}",
        b.log_text()
    );
    let m = b.metrics().await.unwrap();
    assert_eq!(
        value_of(&m, "chaos_conductor_jobs_created_total", &[]).unwrap(),
        0.0
    );
    b.assert_no_forbidden();
    a.assert_no_forbidden();
    env.cleanup().await;
}

/// SIGTERM to the leader releases the Lease at once (no wait for it to expire).
#[tokio::test]
async fn sigterm_releases_the_lease() {
    let env = setup("deploy-sigterm", &[]).await;
    let ns = env.ns().to_string();
    let kc = chart_service_account(&env, &["leaderElection.enabled=true"]).await;
    let kubeconfig = kc.path().join("kubeconfig");
    let common = [
        "--leader-elect",
        "--leader-election-namespace",
        &ns,
        "--lease-name",
        FULLNAME,
        "--lease-duration-seconds",
        "10",
    ];
    let with_id = |id: &'static str| {
        let mut v: Vec<&str> = common.to_vec();
        v.extend(["--identity", id]);
        v
    };
    let mut a = Conductor::start("term-a", &kubeconfig, &ns, &with_id("term-a"));
    a.wait_log(LEADING, secs(60)).await;
    a.wait_log("caches synced", secs(60)).await;
    let mut b = Conductor::start("term-b", &kubeconfig, &ns, &with_id("term-b"));
    b.wait_log(STANDING_BY, secs(60)).await;
    assert_eq!(
        lease_holder(&env, FULLNAME).await.as_deref(),
        Some("term-a")
    );

    let t0 = Instant::now();
    a.terminate();
    let released = env
        .wait_for(
            "the Lease released by term-a",
            secs(10),
            async || match lease_holder(&env, FULLNAME).await {
                Some(h) if h == "term-a" => Err(anyhow!("still held by term-a")),
                other => Ok((t0.elapsed(), other)),
            },
        )
        .await;
    eprintln!(
        "[e2e] SIGTERM -> Lease holder {:?} after {:.2?}",
        released.1, released.0
    );
    let status = a.wait_exit(secs(10)).await;
    assert!(status.success(), "exit after SIGTERM: {status}");
    assert!(a.log_text().contains("Lease released"), "{}", a.log_text());
    assert!(
        released.0 < secs(3),
        "Lease still held {:?} after SIGTERM",
        released.0
    );
    b.wait_log(LEADING, secs(15)).await;
    println!(
        "MEASURED SIGTERM: Lease released after {:.2?}; standby leading {:.2?} after SIGTERM",
        released.0,
        t0.elapsed()
    );
    a.assert_no_forbidden();
    b.assert_no_forbidden();
    env.cleanup().await;
}

/// SIGTERM stops a controller whose caches never synced (here: a ServiceAccount without any
/// rights, so every list is forbidden; the same happens with the CRDs missing or the apiserver
/// unreachable at start). The kubelet would otherwise wait terminationGracePeriodSeconds and
/// SIGKILL it, without a Lease release.
#[tokio::test]
async fn sigterm_stops_a_controller_that_never_synced() {
    let env = setup("deploy-unsynced", &[]).await;
    let ns = env.ns().to_string();
    env.create_service_account("no-rights").await;
    let token = service_account_token(&env, "no-rights").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    write_token_kubeconfig(&kubeconfig, &token, &ns);
    let mut ctrl = Conductor::start("unsynced", &kubeconfig, &ns, &[]);
    ctrl.wait_log("starting the ChaosEngine controller", secs(60))
        .await;
    ctrl.wait_log("forbidden", secs(30)).await;
    let (code, _) = ctrl.get("/readyz").await.unwrap();
    assert_eq!(code, 503, "not ready without synced caches");
    let t0 = Instant::now();
    ctrl.terminate();
    let start = Instant::now();
    let exited = loop {
        if let Some(s) = ctrl.exited() {
            break Some(s);
        }
        // The controller drains for at most 15 s (run.rs SHUTDOWN_DRAIN); it must be gone well
        // before the kubelet's default 30 s grace period ends in a SIGKILL.
        if start.elapsed() > secs(25) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let log = ctrl.log_text();
    ctrl.kill();
    env.cleanup().await;
    assert!(
        exited.is_some(),
        "the controller was still running {:?} after SIGTERM (caches never synced); log:\n{}",
        t0.elapsed(),
        log.lines().rev().take(5).collect::<Vec<_>>().join("\n")
    );
}
