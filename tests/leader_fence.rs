//! The API server's half of the leader fence (src/fence.rs, docs/leader-fence.md), on the real
//! local cluster: the chart's leader-fence ValidatingAdmissionPolicy admits a Job whose token is
//! the Lease's current leadership, refuses one of a past leadership (another holder, or the same
//! holder before a takeover) with a refusal the controller recognises, and does not judge Jobs
//! without a token or with another Lease's. Then the real controller binary takes the Lease over
//! and its experiment Job is admitted carrying the new leadership's token, after which the old
//! token is refused.
mod support;

use chaos_conductor::fence::{LEADER_ANNOTATION, refused};
use k8s_openapi::api::coordination::v1::Lease;
use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use support::chart::{dry_run, fenced_job, install_leader_fence};
use support::controller::ControllerProcess;
use support::*;

const LEASE: &str = "cc-leader-fence";

/// The token of the leadership the Lease records now.
async fn current_token(env: &TestEnv) -> String {
    let lease = env
        .api::<Lease>()
        .get(LEASE)
        .await
        .expect("reading the Lease");
    let spec = lease.spec.unwrap_or_default();
    format!(
        "{}/{LEASE}/{}/{}",
        env.ns(),
        spec.holder_identity.unwrap_or_default(),
        spec.lease_transitions.unwrap_or(0)
    )
}

/// `Ok` when the dry-run create of a Job with `token` is admitted; the error otherwise.
async fn admit(env: &TestEnv, name: &str, token: &str) -> Result<(), kube::Error> {
    env.jobs()
        .create(&dry_run(), &fenced_job(name, token))
        .await
        .map(|_| ())
}

#[tokio::test]
async fn only_the_current_leadership_may_create_jobs() {
    let env = setup("leader-fence", &["pod-delete"]).await;
    install_leader_fence(&env, LEASE).await;
    let ns = env.ns().to_string();

    // A leadership recorded by hand: holder fence-a after two takeovers.
    env.api::<Lease>()
        .patch(
            LEASE,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"holderIdentity": "fence-a",
                "leaseDurationSeconds": 4, "leaseTransitions": 2}})),
        )
        .await
        .expect("recording fence-a's leadership");
    let current = format!("{ns}/{LEASE}/fence-a/2");
    // The policy reads the Lease from the API server's cache: wait until it sees this one.
    env.wait_for("the policy sees the Lease", secs(30), async || {
        admit(&env, "current", &current).await.map_err(Into::into)
    })
    .await;
    for (what, token) in [
        ("another holder", format!("{ns}/{LEASE}/fence-b/2")),
        (
            "the same holder before a takeover",
            format!("{ns}/{LEASE}/fence-a/1"),
        ),
    ] {
        match admit(&env, "stale", &token).await {
            Err(e) => assert!(
                refused(&e).is_some(),
                "{what}: refused, but not recognised as the fence's refusal: {e}"
            ),
            Ok(()) => panic!("{what}: a Job with token {token} was admitted"),
        }
    }
    let untokened = {
        let mut j = fenced_job("untokened", "x");
        j.metadata.annotations = None;
        j
    };
    env.jobs()
        .create(&dry_run(), &untokened)
        .await
        .expect("a Job without a token is not the fence's to judge");
    admit(
        &env,
        "other-lease",
        &format!("{ns}/another-lease/fence-b/9"),
    )
    .await
    .expect("a Job with another Lease's token is not this policy's to judge");

    // fence-a lets go; the real controller (fence-b) takes over and launches an experiment.
    env.api::<Lease>()
        .patch(
            LEASE,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"holderIdentity": null, "leaseDurationSeconds": 1}})),
        )
        .await
        .expect("releasing the Lease");
    let _controller = ControllerProcess::start(
        &ns,
        &format!("leader-fence-{ns}"),
        &[
            "--leader-elect",
            "--leader-election-namespace",
            &ns,
            "--lease-name",
            LEASE,
            "--lease-duration-seconds",
            "4",
            "--identity",
            "fence-b",
        ],
    );
    let engine = env
        .create(
            &EngineBuilder::new("fenced")
                .service_account(SAMPLE_SA)
                .experiment("pod-delete")
                .build(),
        )
        .await;
    let uid = engine.uid().unwrap_or_default();
    let job = env
        .wait_for("the new leader's experiment Job", secs(60), async || {
            env.jobs()
                .list(&kube::api::ListParams::default().labels(&format!("chaosUID={uid}")))
                .await?
                .items
                .into_iter()
                .next()
                .ok_or_else(|| anyhow::anyhow!("no Job yet"))
        })
        .await;
    let now = current_token(&env).await;
    assert_eq!(now, format!("{ns}/{LEASE}/fence-b/3"), "the takeover");
    assert_eq!(
        job.annotations().get(LEADER_ANNOTATION),
        Some(&now),
        "the Job carries the leadership that created it"
    );
    // fence-a's leadership is past now.
    let e = admit(&env, "stale-again", &current)
        .await
        .expect_err("the past leadership's Job was admitted");
    assert!(refused(&e).is_some(), "not the fence's refusal: {e}");

    env.cleanup().await;
}
