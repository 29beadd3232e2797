//! The Helm chart in tests: `helm template` of chosen templates, and clients acting as other
//! identities (impersonated users; ServiceAccount tokens and token-only kubeconfigs are
//! in tests/support/conductor.rs).
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use kube::Client;
use kube::api::{Api, PostParams};

/// `helm`: on PATH, else the one `scripts/cluster env` puts on PATH.
pub fn helm() -> PathBuf {
    let ok = Command::new("helm")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return PathBuf::from("helm");
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(repo.join("scripts/cluster"))
        .arg("env")
        .output()
        .expect("scripts/cluster env");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|l| l.strip_prefix("export PATH="))
        .flat_map(|p| p.split(':'))
        .map(|d| Path::new(d).join("helm"))
        .find(|c| c.is_file())
        .unwrap_or_else(|| panic!("no helm on PATH nor in `scripts/cluster env` ({text})"))
}

/// `helm template <release> charts/chaos-conductor --namespace <ns> --show-only <t>... <args>...`
/// (`args`: e.g. `--set k=v`, `--set-json k=json`).
pub fn render(release: &str, ns: &str, templates: &[&str], args: &[String]) -> String {
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/chaos-conductor");
    let mut cmd = Command::new(helm());
    cmd.args(["template", release])
        .arg(&chart)
        .args(["--namespace", ns]);
    for t in templates {
        cmd.args(["--show-only", &format!("templates/{t}")]);
    }
    cmd.args(args);
    let out = cmd.output().expect("running helm template");
    assert!(
        out.status.success(),
        "helm template failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("helm output is UTF-8")
}

/// A client of the test cluster that impersonates `user` (the admin credential may impersonate).
pub async fn client_as(user: &str) -> Client {
    let (_, mut config) = super::connect().await.expect("test cluster");
    config.auth_info.impersonate = Some(user.into());
    Client::try_from(config).expect("impersonating client")
}

/// The chart's admission policies (templates/admission-policy.yaml with Deny, the default) bound to
/// `env`'s namespace only, as a release of their own; removed again by [`ChartPolicies::remove`].
pub struct ChartPolicies {
    client: Client,
    release: String,
}

impl ChartPolicies {
    /// Applies them and waits until the apiserver has loaded the MutatingAdmissionPolicy: a
    /// server-side dry run of an engine comes back with our finalizer (a new policy takes effect
    /// a moment after it is created).
    pub async fn install(env: &super::TestEnv) -> Self {
        let release = format!("pol-{}", super::random_suffix(5));
        let yaml = render(
            &release,
            env.ns(),
            &["admission-policy.yaml"],
            &["--set".into(), format!("watchNamespace={}", env.ns())],
        );
        env.apply_yaml(&yaml)
            .await
            .expect("applying the chart's admission policies");
        let probe = super::builders::EngineBuilder::new("policy-probe")
            .service_account(super::SAMPLE_SA)
            .experiment("pod-delete")
            .build();
        let engines = env.engines();
        env.wait_for(
            "the chart's MutatingAdmissionPolicy in effect",
            std::time::Duration::from_secs(60),
            async || {
                let made = engines.create(&dry_run(), &probe).await?;
                anyhow::ensure!(
                    made.metadata
                        .finalizers
                        .iter()
                        .flatten()
                        .any(|f| f == chaos_conductor::api::FINALIZER),
                    "the dry run came back without our finalizer"
                );
                Ok(())
            },
        )
        .await;
        Self {
            client: env.client(),
            release,
        }
    }

    /// The admission policies of `release`, applied by the caller together with other templates
    /// of the chart (one release), so that [`ChartPolicies::remove`] deletes them the same way.
    pub fn of_release(client: Client, release: &str) -> Self {
        Self {
            client,
            release: release.to_string(),
        }
    }

    /// Deletes the policies and bindings of this release.
    pub async fn remove(self) {
        use kube::api::{ApiResource, DeleteParams, DynamicObject, ListParams};
        for kind in [
            "ValidatingAdmissionPolicyBinding",
            "ValidatingAdmissionPolicy",
            "MutatingAdmissionPolicyBinding",
            "MutatingAdmissionPolicy",
        ] {
            let ar = ApiResource {
                group: "admissionregistration.k8s.io".into(),
                version: "v1".into(),
                api_version: "admissionregistration.k8s.io/v1".into(),
                kind: kind.into(),
                plural: plural(kind),
            };
            let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &ar);
            let lp = ListParams::default()
                .labels(&format!("app.kubernetes.io/instance={}", self.release));
            let _ = api.delete_collection(&DeleteParams::default(), &lp).await;
        }
    }
}

/// The resource name of an admission kind: `…Policy` → `…policies`, `…Binding` → `…bindings` (a
/// plain `s` named a resource that does not exist, so a delete_collection by it removed nothing).
pub fn plural(kind: &str) -> String {
    let lower = kind.to_lowercase();
    match lower.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None => format!("{lower}s"),
    }
}

/// The chart's leader-fence policy (templates/leader-fence.yaml) for the Lease `lease` in `env`'s
/// namespace, as a release of its own; waits until the API server applies it (a dry-run Job
/// with a token of that Lease is refused by it). Creates the Lease, held by nobody, when it
/// does not exist: without it the policy judges nothing, so its refusal could not be seen.
///
/// The policy is left in place (named after the Lease, so a re-run replaces it; it judges
/// only tokens of that namespace's Lease). Deleting it would stop kube-apiserver's param
/// informer for Leases for good once no Lease-param policy is left, and the next test's
/// policy would read a stale Lease (docs/leader-fence.md).
pub async fn install_leader_fence(env: &super::TestEnv, lease: &str) {
    use k8s_openapi::api::coordination::v1::Lease;
    let empty = Lease {
        metadata: kube::api::ObjectMeta {
            name: Some(lease.into()),
            ..Default::default()
        },
        spec: Some(Default::default()),
    };
    match env
        .api::<Lease>()
        .create(&PostParams::default(), &empty)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(ae)) if ae.code == 409 => {}
        Err(e) => panic!("creating the Lease {lease}: {e}"),
    }
    let release = format!("lf-{}", super::random_suffix(5));
    let yaml = render(
        &release,
        env.ns(),
        &["leader-fence.yaml"],
        &[
            "--set".into(),
            "leaderElection.enabled=true".into(),
            "--set".into(),
            format!("fullnameOverride={lease}"),
        ],
    );
    env.apply_yaml(&yaml)
        .await
        .expect("applying the chart's leader-fence policy");
    let policy = format!("{lease}-leader-fence");
    let probe = fenced_job("fence-probe", &format!("{}/{lease}/nobody/-1", env.ns()));
    let jobs = env.jobs();
    env.wait_for(
        "the chart's leader-fence policy in effect",
        std::time::Duration::from_secs(60),
        async || match jobs.create(&dry_run(), &probe).await {
            Err(kube::Error::Api(ae)) if ae.code == 403 && ae.message.contains(&policy) => Ok(()),
            other => Err(anyhow::anyhow!("not refused yet: {other:?}")),
        },
    )
    .await;
}

/// Server-side dry run: admission runs, nothing is stored.
pub fn dry_run() -> PostParams {
    PostParams {
        dry_run: true,
        ..Default::default()
    }
}

/// A minimal Job carrying the leader-fence annotation `token` (src/fence.rs LEADER_ANNOTATION).
pub fn fenced_job(name: &str, token: &str) -> k8s_openapi::api::batch::v1::Job {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "annotations": {chaos_conductor::fence::LEADER_ANNOTATION: token}},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "c", "image": "busybox"}]}}}
    }))
    .expect("a Job")
}
