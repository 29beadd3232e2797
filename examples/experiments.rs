//! The project's litmus-go stand-in as a real process: `./experiments -name pod-delete`, the command
//! the hub's go-runner image runs (`/bin/bash -c ./experiments -name pod-delete`). litmus-go itself
//! cannot be fetched here, so scripts/build-images packages this binary (static) under the hub's
//! image name; the hub's fault.yaml runs it unchanged.
//!
//! It does what litmus-go does from inside its pod, with in-cluster config: reads its env
//! (`CHAOSENGINE`, `EXPERIMENT_NAME`, `CHAOS_NAMESPACE`, `CHAOS_UID`, `INSTANCE_ID`, `POD_NAME`,
//! `TARGETS`, the fault tunables) and its own pod's labels, writes the ChaosResult (Running/Awaited,
//! then Completed with the verdict) and its events through the same code as the in-test fake
//! (tests/support/litmus_protocol.rs), and on SIGTERM/SIGINT writes Stopped and exits 1.
//!
//! pod-delete for real: every CHAOS_INTERVAL seconds until TOTAL_CHAOS_DURATION has passed, it
//! deletes PODS_AFFECTED_PERC % (at least one) of the target pods (TARGETS, pods with a `chaosUID`
//! label never count), with grace period 0 when FORCE=true, then waits up to STATUS_CHECK_TIMEOUT
//! (polling every STATUS_CHECK_DELAY) until each deleted pod's controller (ReplicaSet, StatefulSet,
//! ...) again has as many Running and ready pods as it wants. When they do not come back the
//! steady-state check failed: verdict Fail with `errorOutput.errorCode: STATUS_CHECKS_ERROR`
//! (litmus-go's RecordAfterFailure). Like litmus-go it exits 0 on Pass and Fail; only an abort or
//! an error before the result exists exits non-zero.
#[path = "../tests/support/litmus_protocol.rs"]
mod litmus_protocol;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use chaos_conductor::api::TargetDetails;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, ListParams};
use kube::{Client, Resource};
use litmus_protocol::{Outcome, Reporter};
use tokio::signal::unix::{SignalKind, signal};

fn log(level: &str, msg: &str) {
    // litmus-go logs with logrus' text format; keep the shape so the pod log reads the same.
    let now = k8s_openapi::jiff::Timestamp::now();
    println!(
        "time=\"{}\" level={level} msg=\"{}\"",
        now.round(k8s_openapi::jiff::Unit::Second).unwrap_or(now),
        msg.replace('"', "\\\"")
    );
}

fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_default()
}

fn env_secs(key: &str, default: u64) -> anyhow::Result<u64> {
    let raw = env(key);
    if raw.trim().is_empty() {
        return Ok(default);
    }
    raw.trim()
        .parse()
        .map_err(|_| anyhow!("env {key}={raw:?}: not a whole number of seconds"))
}

/// `-name pod-delete` (Go flag syntax, also `--name`, `-name=pod-delete`).
fn experiment_name(args: &[String]) -> Option<String> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let a = a.trim_start_matches('-');
        if a == "name" {
            return it.next().cloned();
        }
        if let Some(v) = a.strip_prefix("name=") {
            return Some(v.to_string());
        }
    }
    None
}

/// One `TARGETS` entry: `<kind>:<namespace>:[<labels or names>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    kind: String,
    namespace: String,
    /// A label selector (when the brackets hold `k=v`), else workload or pod names.
    selector: Option<String>,
    names: Vec<String>,
}

fn parse_targets(raw: &str, default_ns: &str) -> anyhow::Result<Vec<Target>> {
    let mut out = Vec::new();
    for part in raw.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let mut fields = part.splitn(3, ':');
        let (Some(kind), Some(ns), Some(list)) = (fields.next(), fields.next(), fields.next())
        else {
            bail!("TARGETS entry {part:?}: want <kind>:<namespace>:[<labels or names>]");
        };
        let list = list.trim().trim_start_matches('[').trim_end_matches(']');
        let ns = if ns.is_empty() { default_ns } else { ns };
        let (selector, names) = if list.contains('=') {
            (Some(list.to_string()), Vec::new())
        } else {
            let names = list
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(String::from)
                .collect();
            (None, names)
        };
        out.push(Target {
            kind: kind.to_lowercase(),
            namespace: ns.to_string(),
            selector,
            names,
        });
    }
    Ok(out)
}

fn is_running_and_ready(pod: &Pod) -> bool {
    let Some(st) = &pod.status else { return false };
    st.phase.as_deref() == Some("Running")
        && st
            .container_statuses
            .as_ref()
            .is_some_and(|cs| !cs.is_empty() && cs.iter().all(|c| c.ready))
}

fn is_chaos_pod(pod: &Pod) -> bool {
    pod.metadata.labels.as_ref().is_some_and(|l| {
        l.contains_key("chaosUID") || l.get("name").is_some_and(|n| n == "chaos-operator")
    })
}

fn controller_of(pod: &Pod) -> Option<OwnerReference> {
    pod.metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true))
        .cloned()
}

/// The non-terminating, non-chaos pods a target names.
async fn target_pods(client: &Client, t: &Target) -> anyhow::Result<Vec<Pod>> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &t.namespace);
    let live = |p: &Pod| p.metadata.deletion_timestamp.is_none() && !is_chaos_pod(p);
    if let Some(sel) = &t.selector {
        let list = pods.list(&ListParams::default().labels(sel)).await?;
        return Ok(list.items.into_iter().filter(live).collect());
    }
    let mut out = Vec::new();
    for name in &t.names {
        let selector = match t.kind.as_str() {
            "pod" => {
                if let Some(p) = pods.get_opt(name).await? {
                    out.push(p);
                }
                continue;
            }
            "deployment" => {
                Api::<Deployment>::namespaced(client.clone(), &t.namespace)
                    .get(name)
                    .await?
                    .spec
                    .selector
            }
            "statefulset" => {
                Api::<StatefulSet>::namespaced(client.clone(), &t.namespace)
                    .get(name)
                    .await?
                    .spec
                    .selector
            }
            "daemonset" => {
                Api::<DaemonSet>::namespaced(client.clone(), &t.namespace)
                    .get(name)
                    .await?
                    .spec
                    .selector
            }
            other => bail!("TARGETS kind {other:?} with names is not supported by this stand-in"),
        };
        let labels = selector
            .match_labels
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let list = pods.list(&ListParams::default().labels(&labels)).await?;
        out.extend(list.items.into_iter().filter(live));
    }
    Ok(out.into_iter().filter(live).collect())
}

/// How many pods the controller wants (None when it is not a kind we know).
async fn desired_replicas(
    client: &Client,
    ns: &str,
    owner: &OwnerReference,
) -> anyhow::Result<Option<i32>> {
    Ok(match owner.kind.as_str() {
        "ReplicaSet" => Api::<ReplicaSet>::namespaced(client.clone(), ns)
            .get_opt(&owner.name)
            .await?
            .map(|r| r.spec.replicas.unwrap_or(1)),
        "StatefulSet" => Api::<StatefulSet>::namespaced(client.clone(), ns)
            .get_opt(&owner.name)
            .await?
            .map(|r| r.spec.replicas.unwrap_or(1)),
        "DaemonSet" => Api::<DaemonSet>::namespaced(client.clone(), ns)
            .get_opt(&owner.name)
            .await?
            .map(|d| d.status.map_or(0, |s| s.desired_number_scheduled)),
        _ => None,
    })
}

struct Settings {
    duration: Duration,
    interval: Duration,
    ramp: Duration,
    force: bool,
    percent: u64,
    timeout: Duration,
    delay: Duration,
    health_check: bool,
}

impl Settings {
    fn from_env() -> anyhow::Result<Self> {
        Ok(Settings {
            duration: Duration::from_secs(env_secs("TOTAL_CHAOS_DURATION", 15)?),
            interval: Duration::from_secs(env_secs("CHAOS_INTERVAL", 5)?),
            ramp: Duration::from_secs(env_secs("RAMP_TIME", 0)?),
            force: env("FORCE").trim() != "false",
            percent: env_secs("PODS_AFFECTED_PERC", 0)?.min(100),
            timeout: Duration::from_secs(env_secs("STATUS_CHECK_TIMEOUT", 180)?),
            delay: Duration::from_secs(env_secs("STATUS_CHECK_DELAY", 2)?.max(1)),
            health_check: env("DEFAULT_HEALTH_CHECK").trim() == "true",
        })
    }
}

/// Waits until every controller of a deleted pod has its pods back (Running and ready, not
/// terminating). Err(message) when the timeout passes first.
async fn wait_recovered(
    client: &Client,
    owners: &BTreeMap<(String, String), OwnerReference>,
    deleted: &[(String, String)],
    s: &Settings,
) -> anyhow::Result<Result<(), String>> {
    let deadline = Instant::now() + s.timeout;
    loop {
        let mut missing = Vec::new();
        for ((ns, _), owner) in owners {
            let want = desired_replicas(client, ns, owner).await?.unwrap_or(1);
            let pods = Api::<Pod>::namespaced(client.clone(), ns)
                .list(&ListParams::default())
                .await?;
            let have = pods
                .items
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .filter(|p| controller_of(p).is_some_and(|o| o.uid == owner.uid))
                .filter(|p| is_running_and_ready(p))
                .count();
            if (have as i64) < i64::from(want) {
                missing.push(format!(
                    "{}/{} has {have} of {want} pods running",
                    owner.kind, owner.name
                ));
            }
        }
        // A deleted pod without a controller never comes back.
        for (ns, name) in deleted {
            if !owners.keys().any(|(n, _)| n == ns) {
                missing.push(format!("pod {ns}/{name} has no controller to replace it"));
            }
        }
        if missing.is_empty() {
            return Ok(Ok(()));
        }
        if Instant::now() >= deadline {
            return Ok(Err(format!(
                "application pods are not in running state after {}s: {}",
                s.timeout.as_secs(),
                missing.join("; ")
            )));
        }
        tokio::time::sleep(s.delay).await;
    }
}

/// The AUT check of DEFAULT_HEALTH_CHECK: every target pod Running and ready.
async fn aut_running(client: &Client, targets: &[Target]) -> anyhow::Result<bool> {
    for t in targets {
        let pods = target_pods(client, t).await?;
        if pods.is_empty() || !pods.iter().all(is_running_and_ready) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The chaos itself: Ok(Ok(targets hit)) or Ok(Err(steady-state failure)).
async fn pod_delete(
    client: &Client,
    targets: &[Target],
    s: &Settings,
) -> anyhow::Result<Result<Vec<TargetDetails>, String>> {
    if !s.ramp.is_zero() {
        log(
            "info",
            &format!(
                "[Ramp]: Waiting for the {}s ramp time before injecting chaos",
                s.ramp.as_secs()
            ),
        );
        tokio::time::sleep(s.ramp).await;
    }
    let start = Instant::now();
    let mut hit: BTreeSet<(String, String)> = BTreeSet::new();
    let mut iteration = 0;
    while iteration == 0 || start.elapsed() < s.duration {
        iteration += 1;
        let mut candidates = Vec::new();
        for t in targets {
            candidates.extend(target_pods(client, t).await?);
        }
        candidates.retain(is_running_and_ready);
        if candidates.is_empty() {
            return Ok(Err(
                "no running target pods found for the TARGETS given".into()
            ));
        }
        candidates.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        let count = ((candidates.len() as u64 * s.percent) / 100).max(1) as usize;
        let victims = &candidates[..count.min(candidates.len())];
        let names: Vec<String> = victims
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        log(
            "info",
            &format!("[Chaos]: Killing the following pods: {names:?} (iteration {iteration})"),
        );
        let mut owners = BTreeMap::new();
        let mut deleted = Vec::new();
        for pod in victims {
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            let name = pod.metadata.name.clone().unwrap_or_default();
            let dp = if s.force {
                DeleteParams {
                    grace_period_seconds: Some(0),
                    ..Default::default()
                }
            } else {
                DeleteParams::default()
            };
            match Api::<Pod>::namespaced(client.clone(), &ns)
                .delete(&name, &dp)
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => {
                    return Err(anyhow::Error::from(e).context(format!("deleting pod {ns}/{name}")));
                }
            }
            if let Some(o) = controller_of(pod) {
                owners.insert((ns.clone(), o.uid.clone()), o);
            }
            hit.insert((ns.clone(), name.clone()));
            deleted.push((ns, name));
        }
        log(
            "info",
            "[Status]: Verification for the recreation of application pod",
        );
        if let Err(why) = wait_recovered(client, &owners, &deleted, s).await? {
            return Ok(Err(why));
        }
        log("info", "[Status]: The application pods are running again");
        let left = s.duration.saturating_sub(start.elapsed());
        if left.is_zero() {
            break;
        }
        log(
            "info",
            &format!(
                "[Wait]: Wait for the chaos interval {}s",
                s.interval.as_secs()
            ),
        );
        tokio::time::sleep(s.interval.min(left)).await;
    }
    Ok(Ok(hit
        .into_iter()
        .map(|(_, name)| TargetDetails {
            name,
            kind: "pod".into(),
            chaos_status: "targeted".into(),
        })
        .collect()))
}

async fn run(name: &str) -> anyhow::Result<i32> {
    let experiment = {
        let e = env("EXPERIMENT_NAME");
        if e.is_empty() { name.to_string() } else { e }
    };
    let chaos_ns = env("CHAOS_NAMESPACE");
    let pod_name = env("POD_NAME");
    for (k, v) in [("CHAOS_NAMESPACE", &chaos_ns), ("POD_NAME", &pod_name)] {
        if v.is_empty() {
            bail!("env {k} is not set (the experiment Job sets it)");
        }
    }
    log(
        "info",
        &format!("[PreReq]: Getting the ENV for the {experiment} experiment"),
    );
    let settings = Settings::from_env()?;
    let targets = parse_targets(&env("TARGETS"), &chaos_ns)?;
    let client = Client::try_default().await.context("in-cluster config")?;
    let me = Api::<Pod>::namespaced(client.clone(), &chaos_ns)
        .get(&pod_name)
        .await
        .with_context(|| format!("reading my own pod {chaos_ns}/{pod_name}"))?;
    let labels = me.meta().labels.clone().unwrap_or_default();
    let reporter = Reporter::new(
        client.clone(),
        &pod_name,
        &env("CHAOSENGINE"),
        &experiment,
        &chaos_ns,
        &env("CHAOS_UID"),
        &env("INSTANCE_ID"),
        labels,
    );
    log(
        "info",
        &format!(
            "[Info]: The chaos tunables are: duration {}s, interval {}s, force {}, affected {}%, targets {:?}",
            settings.duration.as_secs(),
            settings.interval.as_secs(),
            settings.force,
            settings.percent,
            env("TARGETS")
        ),
    );

    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let work = async {
        let pre = if !settings.health_check {
            "Skipped the default checks".to_string()
        } else if aut_running(&client, &targets).await? {
            "AUT: Running".to_string()
        } else {
            "AUT: Not Running".to_string()
        };
        reporter
            .start_of_test(
                &pre,
                &format!("Injecting {experiment} chaos on application pod"),
            )
            .await?;
        log(
            "info",
            &format!(
                "[Info]: ChaosResult {} Running/Awaited; {pre}",
                reporter.result_name
            ),
        );
        if pre == "AUT: Not Running" {
            let outcome = Outcome::FailedCheck {
                code: "STATUS_CHECKS_ERROR".into(),
                reason: "application is not running before chaos".into(),
            };
            reporter
                .end_of_test(&outcome, "AUT: Not Running", &[])
                .await?;
            return anyhow::Ok(outcome);
        }
        if targets.is_empty() {
            let outcome = Outcome::Error {
                code: "TARGET_SELECTION_ERROR".into(),
                reason: "no TARGETS: set the engine's appinfo or selectors".into(),
            };
            reporter.end_of_test(&outcome, "", &[]).await?;
            return Ok(outcome);
        }
        let (outcome, hit, post) = match pod_delete(&client, &targets, &settings).await? {
            Ok(hit) => {
                let post = if settings.health_check && !aut_running(&client, &targets).await? {
                    "AUT: Not Running"
                } else if settings.health_check {
                    "AUT: Running"
                } else {
                    "Skipped the default checks"
                };
                if post == "AUT: Not Running" {
                    let o = Outcome::FailedCheck {
                        code: "STATUS_CHECKS_ERROR".into(),
                        reason: "application is not running after chaos".into(),
                    };
                    (o, hit, post)
                } else {
                    (Outcome::Pass, hit, post)
                }
            }
            Err(why) => {
                log(
                    "error",
                    &format!("[Status]: steady state check failed: {why}"),
                );
                let o = Outcome::FailedCheck {
                    code: "STATUS_CHECKS_ERROR".into(),
                    reason: why,
                };
                (o, Vec::new(), "AUT: Not Running")
            }
        };
        reporter.end_of_test(&outcome, post, &hit).await?;
        Ok(outcome)
    };
    tokio::select! {
        outcome = work => {
            let outcome = outcome?;
            log("info", &format!("[The End]: Updated the chaos result of {experiment} experiment (verdict {})", outcome.verdict()));
            Ok(0)
        }
        _ = sigterm.recv() => abort(&reporter, "SIGTERM").await,
        _ = sigint.recv() => abort(&reporter, "SIGINT").await,
    }
}

async fn abort(reporter: &Reporter, signal: &str) -> anyhow::Result<i32> {
    log(
        "info",
        &format!("[Chaos]: Revert Started ({signal} received)"),
    );
    reporter.stopped().await?;
    log(
        "info",
        "[Chaos]: Revert Completed; the chaos result is Stopped",
    );
    Ok(1)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match experiment_name(&args).as_deref() {
        Some("pod-delete") => match run("pod-delete").await {
            Ok(code) => code,
            Err(e) => {
                log("error", &format!("{e:#}"));
                1
            }
        },
        Some(other) => {
            log(
                "error",
                &format!(
                    "Unsupported -name {other}, please provide the correct value of -name args (this stand-in implements pod-delete)"
                ),
            );
            1
        }
        None => {
            log("error", "missing -name <experiment>");
            2
        }
    };
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_style_flags() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            experiment_name(&a(&["-name", "pod-delete"])).as_deref(),
            Some("pod-delete")
        );
        assert_eq!(
            experiment_name(&a(&["--name=pod-delete"])).as_deref(),
            Some("pod-delete")
        );
        assert_eq!(experiment_name(&a(&["-x"])), None);
    }

    #[test]
    fn parses_targets() {
        let t = parse_targets("deployment:app:[app=httpd];statefulset::[db]", "chaos").unwrap();
        assert_eq!(t[0].kind, "deployment");
        assert_eq!(t[0].namespace, "app");
        assert_eq!(t[0].selector.as_deref(), Some("app=httpd"));
        assert_eq!(t[1].namespace, "chaos");
        assert_eq!(t[1].names, vec!["db".to_string()]);
        assert!(parse_targets("nonsense", "x").is_err());
        assert!(parse_targets("", "x").unwrap().is_empty());
    }
}
