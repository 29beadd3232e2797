//! The kill switch (README "Security") on the real local cluster, the controller binary running with the
//! chart's RBAC (a TokenRequest token of the chart's ServiceAccount, watchNamespace Role plus the
//! kill switch Role) and the chart's admission policies installed:
//! - engaged (`chaos-conductor halt`) during 20 running engines: every one aborted through the
//!   abort path within the abort bound with no Job or pod left, ChaosResults Stopped, a Warning
//!   Event naming the switch; engines created or restarted meanwhile are held (status + Event),
//!   no Job is created while engaged; after `chaos-conductor resume` every held engine runs;
//! - the per-namespace switch (Namespace annotation) does the same for one namespace.
mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chaos_conductor::api::{ChaosEngine, ChaosResult};
use kube::ResourceExt;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;
use support::controller::ControllerProcess;
use support::fake_experiment::{Behaviour, ExperimentBehaviour, FakeExperiment};
use support::*;

const RUNNING: usize = 20;
const HELD_NEW: usize = 5;
/// The engines' terminationGracePeriodSeconds.
const GRACE: i64 = 5;
/// The abort bound: grace period + the controller's force-delete margin (PlanConfig, 30 s).
const ABORT_BOUND: Duration = Duration::from_secs(GRACE as u64 + 30);

fn engine(name: &str, experiment: &str) -> ChaosEngine {
    EngineBuilder::new(name)
        .service_account(SAMPLE_SA)
        .experiment(experiment)
        .with(|e| e.spec.termination_grace_period_seconds = Some(GRACE))
        .build()
}

fn status(e: &ChaosEngine) -> chaos_conductor::api::ChaosEngineStatus {
    e.status.clone().unwrap_or_default()
}

fn held(e: &ChaosEngine) -> bool {
    status(e)
        .conditions
        .iter()
        .any(|c| c.type_ == "Held" && c.status == "True")
}

fn experiment_running(e: &ChaosEngine) -> bool {
    status(e)
        .experiments
        .first()
        .is_some_and(|x| x.status == "Running")
}

/// `chaos-conductor <args>` with the admin kubeconfig; its stdout, or a panic with stderr.
fn cli(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_chaos-conductor"))
        .args(args)
        .env("KUBECONFIG", kubeconfig_path())
        .output()
        .expect("running chaos-conductor");
    assert!(
        out.status.success(),
        "chaos-conductor {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `GET http://127.0.0.1:<port>/metrics`.
fn scrape(port: u16) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body
}

/// The value of an unlabelled sample in a Prometheus text page.
fn sample(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

async fn wait_metric(port: u16, name: &str, want: f64) {
    wait_for(&format!("{name} = {want}"), secs(30), async || {
        let page = tokio::task::spawn_blocking(move || scrape(port)).await?;
        match sample(&page, name) {
            Some(v) if v == want => Ok(()),
            other => Err(anyhow::anyhow!("{name} = {other:?}")),
        }
    })
    .await
}

async fn chaos_left(env: &TestEnv, uid: &str) -> anyhow::Result<usize> {
    let lp = ListParams::default().labels(&format!("chaosUID={uid}"));
    Ok(env.jobs().list(&lp).await?.items.len() + env.pods().list(&lp).await?.items.len())
}

/// Deletes every engine while the controller still runs (its finalizer), bounded.
async fn delete_engines(env: &TestEnv) {
    let api = env.engines();
    let _ = api
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await;
    let _ = try_wait_for("all engines removed", secs(90), async || {
        let n = api.list(&ListParams::default()).await?.items.len();
        if n == 0 {
            Ok(())
        } else {
            Err(anyhow::anyhow!("{n} left"))
        }
    })
    .await;
}

/// The controller binary with `kubeconfig`, watching `ns`, the cluster switch `switch`.
struct Conductor(Child);

impl Drop for Conductor {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn halt_during_twenty_running_engines_then_resume() {
    let env = setup("kill-switch", &["pod-delete", "container-kill"]).await;
    let ns = env.ns().to_string();
    let release = format!("ks-{}", random_suffix(5));
    let fullname = format!("{release}-chaos-conductor");
    let switch = format!("{ns}/{fullname}-halt");

    // The chart's RBAC (watchNamespace=ns: Roles only), kill switch ConfigMap and admission policies.
    let yaml = chart::render(
        &release,
        &ns,
        &[
            "serviceaccount.yaml",
            "rbac.yaml",
            "halt.yaml",
            "admission-policy.yaml",
        ],
        &["--set".into(), format!("watchNamespace={ns}")],
    );
    assert!(!yaml.contains("kind: ClusterRole"), "{yaml}");
    assert!(yaml.contains(&format!("name: {fullname}-halt")), "{yaml}");
    env.apply_yaml(&yaml)
        .await
        .expect("applying the chart objects");
    let token = conductor::service_account_token_in(&env.client(), &ns, &fullname).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    conductor::write_token_kubeconfig(&kubeconfig, &token, &ns);
    let port = free_port();
    let log_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-logs");
    std::fs::create_dir_all(&log_dir).expect("log dir");
    let log = std::fs::File::create(log_dir.join(format!("kill-switch-{ns}.log"))).expect("log");
    let _ctrl = Conductor(
        Command::new(env!("CARGO_BIN_EXE_chaos-conductor"))
            .args(["run", "--watch-namespace", &ns, "--halt-configmap", &switch])
            .args([
                "--metrics-addr",
                &format!("127.0.0.1:{port}"),
                "--log-format",
                "text",
            ])
            .env("KUBECONFIG", &kubeconfig)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start chaos-conductor"),
    );
    let fake = FakeExperiment::start(
        env.client(),
        &ns,
        Behaviour::all(ExperimentBehaviour::never_finish())
            .with("container-kill", ExperimentBehaviour::pass()),
    );
    let api = env.engines();

    // The apiserver loads a new admission policy a moment after it is created: wait until a
    // server-side dry run of an engine comes back with the author the chart's MutatingAdmissionPolicy
    // records, so the engines below are created with the policy in effect.
    let probe = engine("probe", "container-kill");
    env.wait_for(
        "the author policy in effect",
        Duration::from_secs(60),
        async || {
            let made = api.create(&support::chart::dry_run(), &probe).await?;
            anyhow::ensure!(
                made.annotations()
                    .contains_key(chaos_conductor::controller::author::AUTHOR_ANNOTATION),
                "the dry run came back without an author"
            );
            Ok(())
        },
    )
    .await;

    // One engine runs to its verdict first, to be restarted while the switch is engaged. The
    // chart's policy recorded its author, so that run also passed the launch-time re-check of the
    // author (src/controller/author.rs) with the chart's RBAC.
    env.create(&engine("again", "container-kill")).await;
    let again = wait_engine(&env, "again", "completed and resting at stop", |e| {
        status(e).engine_status == "completed" && e.spec.engine_state.as_deref() == Some("stop")
    })
    .await;
    assert!(
        again
            .annotations()
            .contains_key(chaos_conductor::controller::author::AUTHOR_ANNOTATION),
        "the author is recorded: {:?}",
        again.annotations()
    );

    let names: Vec<String> = (0..RUNNING).map(|i| format!("run-{i:02}")).collect();
    for n in &names {
        env.create(&engine(n, "pod-delete")).await;
    }
    env.wait_for("20 experiments Running", secs(120), async || {
        let n = api
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|e| experiment_running(e))
            .count();
        if n == RUNNING {
            Ok(())
        } else {
            Err(anyhow::anyhow!("{n}/{RUNNING} running"))
        }
    })
    .await;
    let uids: Vec<(String, String)> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|e| e.name_any().starts_with("run-"))
        .map(|e| (e.name_any(), e.uid().unwrap()))
        .collect();
    assert_eq!(uids.len(), RUNNING);
    wait_metric(port, "chaos_conductor_halted", 0.0).await;
    let page = scrape(port);
    let jobs_before =
        sample(&page, "chaos_conductor_jobs_created_total").expect("jobs_created_total");

    // Engage.
    let engaged_at = Instant::now();
    let out = cli(&["halt", "--switch", &switch, "--reason", "e2e halt"]);
    assert!(out.contains("engaged cluster-wide"), "{out}");
    // New and restarted engines while engaged.
    for i in 0..HELD_NEW {
        env.create(&engine(&format!("held-{i}"), "container-kill"))
            .await;
    }
    api.patch(
        "again",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"engineState": "active"}})),
    )
    .await
    .expect("restarting again");

    // Every running engine aborted, no residue, within the bound.
    let mut residue_free = None;
    env.wait_for(
        "the 20 engines stopped with no chaos left",
        ABORT_BOUND + secs(15),
        async || {
            let list = api.list(&ListParams::default()).await?.items;
            let stopped = list
                .iter()
                .filter(|e| {
                    e.name_any().starts_with("run-") && status(e).engine_status == "stopped"
                })
                .count();
            let mut left = 0;
            for (_, uid) in &uids {
                left += chaos_left(&env, uid).await?;
            }
            if stopped == RUNNING && left == 0 {
                residue_free.get_or_insert(engaged_at.elapsed());
                Ok(())
            } else {
                Err(anyhow::anyhow!(
                    "{stopped}/{RUNNING} stopped, {left} Jobs/pods left"
                ))
            }
        },
    )
    .await;
    let took = residue_free.unwrap_or_default();
    eprintln!(
        "[kill-switch] {RUNNING} engines aborted, 0 residue, {took:.1?} after halt (bound {ABORT_BOUND:?})"
    );
    assert!(took <= ABORT_BOUND, "abort took {took:?} > {ABORT_BOUND:?}");
    for (name, uid) in &uids {
        let e = api.get(name).await.unwrap();
        let st = status(&e);
        assert_eq!(st.phase, "Stopped", "{name}: {st:?}");
        assert_eq!(st.experiments[0].verdict, "Stopped", "{name}");
        let events = env.events_for(name).await;
        let halted = events
            .iter()
            .find(|ev| ev.reason == "ChaosHalted")
            .unwrap_or_else(|| panic!("{name}: no ChaosHalted event in {events:?}"));
        assert_eq!(halted.type_, "Warning");
        assert!(
            halted.message.contains(&format!("ConfigMap {switch}"))
                && halted.message.contains("e2e halt"),
            "{}",
            halted.message
        );
        let results: Vec<ChaosResult> = env
            .results()
            .list(&ListParams::default().labels(&format!("chaosUID={uid}")))
            .await
            .unwrap()
            .items;
        assert!(!results.is_empty(), "{name}: no ChaosResult");
        for r in results {
            let s = r.status.clone().unwrap_or_default().experiment_status;
            assert_eq!(
                (s.phase.as_str(), s.verdict.as_str()),
                ("Stopped", "Stopped"),
                "{}",
                r.name_any()
            );
        }
    }

    // Held: status and Events say so; nothing launched while engaged.
    let held_names: Vec<String> = (0..HELD_NEW)
        .map(|i| format!("held-{i}"))
        .chain(["again".to_string()])
        .collect();
    for n in &held_names {
        let e = wait_engine(&env, n, "held", held).await;
        let st = status(&e);
        assert!(
            st.message.contains(&format!(
                "held: kill switch ConfigMap {switch} engaged (e2e halt)"
            )),
            "{n}: {}",
            st.message
        );
        let events = env.events_for(n).await;
        assert!(
            events.iter().any(|ev| ev.reason == "ChaosEngineHeld"
                && ev.type_ == "Warning"
                && ev.message.contains(&switch)),
            "{n}: {events:?}"
        );
    }
    wait_metric(port, "chaos_conductor_halted", 1.0).await;
    wait_metric(
        port,
        "chaos_conductor_engines_held",
        held_names.len() as f64,
    )
    .await;
    tokio::time::sleep(secs(3)).await;
    let page = scrape(port);
    assert_eq!(
        sample(&page, "chaos_conductor_jobs_created_total"),
        Some(jobs_before),
        "a Job was created while the switch was engaged"
    );
    // The new engines have no Job at all ("again" keeps its first run's retained Job; the counter
    // above covers it).
    for n in held_names.iter().filter(|n| n.starts_with("held-")) {
        let uid = api.get(n).await.unwrap().uid().unwrap();
        assert_eq!(
            chaos_left(&env, &uid).await.unwrap(),
            0,
            "{n}: Jobs/pods while engaged"
        );
    }

    // Release: every held engine runs to its verdict.
    let out = cli(&["resume", "--switch", &switch]);
    assert!(out.contains("released"), "{out}");
    for n in &held_names {
        let e = wait_engine(&env, n, "ran after release", |e| {
            status(e).engine_status == "completed" && !held(e)
        })
        .await;
        assert_eq!(status(&e).verdict, "Pass", "{n}");
        let events = env.events_for(n).await;
        assert!(
            events.iter().any(|ev| ev.reason == "ChaosEngineReleased"),
            "{n}: {events:?}"
        );
    }
    wait_metric(port, "chaos_conductor_halted", 0.0).await;
    wait_metric(port, "chaos_conductor_engines_held", 0.0).await;
    // The aborted engines stay stopped (an abort is final; `active` runs them again).
    for (name, _) in &uids {
        assert_eq!(
            status(&api.get(name).await.unwrap()).engine_status,
            "stopped",
            "{name}"
        );
    }
    fake.assert_no_errors();

    delete_engines(&env).await;
    drop(_ctrl);
    chart::ChartPolicies::of_release(env.client(), &release)
        .remove()
        .await;
    env.cleanup().await;
}

#[tokio::test]
async fn namespace_annotation_halts_one_namespace() {
    let env = setup("kill-switch-ns", &["pod-delete", "container-kill"]).await;
    let ns = env.ns().to_string();
    let _ctrl = ControllerProcess::start(
        &ns,
        &format!("kill-switch-ns-{ns}"),
        &["--halt-namespace-annotations=true"],
    );
    let _fake = FakeExperiment::start(
        env.client(),
        &ns,
        Behaviour::all(ExperimentBehaviour::never_finish())
            .with("container-kill", ExperimentBehaviour::pass()),
    );
    env.create(&engine("running", "pod-delete")).await;
    wait_engine(&env, "running", "experiment Running", experiment_running).await;

    let out = cli(&["halt", "--namespace", &ns, "--reason", "maintenance"]);
    assert!(out.contains(&format!("namespace {ns}")), "{out}");
    env.create(&engine("later", "container-kill")).await;
    let stopped = wait_engine(&env, "running", "aborted", |e| {
        status(e).engine_status == "stopped"
    })
    .await;
    let uid = stopped.uid().unwrap();
    env.wait_for("no chaos left", ABORT_BOUND, async || {
        match chaos_left(&env, &uid).await? {
            0 => Ok(()),
            n => Err(anyhow::anyhow!("{n} left")),
        }
    })
    .await;
    let switch = format!("Namespace {ns} annotation chaos-conductor.io/halt");
    let events = env.events_for("running").await;
    assert!(
        events.iter().any(|e| e.reason == "ChaosHalted"
            && e.message.contains(&switch)
            && e.message.contains("maintenance")),
        "{events:?}"
    );
    let later = wait_engine(&env, "later", "held", held).await;
    assert!(
        status(&later).message.contains(&switch),
        "{}",
        status(&later).message
    );
    let uid = later.uid().unwrap();
    assert_eq!(
        chaos_left(&env, &uid).await.unwrap(),
        0,
        "held engine launched"
    );

    cli(&["resume", "--namespace", &ns]);
    let done = wait_engine(&env, "later", "ran after release", |e| {
        status(e).engine_status == "completed"
    })
    .await;
    assert_eq!(status(&done).verdict, "Pass");
    delete_engines(&env).await;
    drop(_ctrl);
    env.cleanup().await;
}
