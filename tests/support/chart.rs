//! The Helm chart in tests: `helm template` of chosen templates, and clients acting as other
//! identities (impersonated users; ServiceAccount tokens from the TokenRequest API).
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Client;
use kube::api::{Api, PostParams};
use kube::config::Kubeconfig;
use serde_json::json;

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

/// A one-hour token of ServiceAccount `sa` in `ns` (TokenRequest API).
pub async fn service_account_token(client: &Client, ns: &str, sa: &str) -> String {
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..Default::default()
        }),
        ..Default::default()
    };
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    sas.create_token_request(sa, &PostParams::default(), &request)
        .await
        .unwrap_or_else(|e| panic!("token request for {ns}/{sa}: {e}"))
        .status
        .and_then(|s| s.token)
        .expect("token request status with a token")
}

/// Writes a kubeconfig with the test cluster's server and CA and `token` as the only credential.
pub fn write_token_kubeconfig(path: &Path, token: &str, ns: &str) {
    let admin_path = super::kubeconfig_path();
    let admin = Kubeconfig::read_from(&admin_path).expect("reading the test kubeconfig");
    let current = admin.current_context.clone().unwrap_or_default();
    let cluster_name = admin
        .contexts
        .iter()
        .find(|c| c.name == current)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .expect("current context of the test kubeconfig");
    let cluster = admin
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.clone())
        .expect("cluster of the test kubeconfig");
    let mut c = serde_json::Map::new();
    c.insert("server".into(), json!(cluster.server.expect("server")));
    if let Some(data) = cluster.certificate_authority_data {
        c.insert("certificate-authority-data".into(), json!(data));
    }
    if let Some(file) = cluster.certificate_authority {
        let file = PathBuf::from(file);
        let file = if file.is_relative() {
            admin_path.parent().unwrap_or(Path::new(".")).join(file)
        } else {
            file
        };
        c.insert(
            "certificate-authority".into(),
            json!(file.display().to_string()),
        );
    }
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": c}],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "test", "user": "sa", "namespace": ns}}],
        "current-context": "sa",
    });
    std::fs::write(path, serde_json::to_string(&config).expect("json"))
        .expect("writing kubeconfig");
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
                let dry = PostParams {
                    dry_run: true,
                    ..Default::default()
                };
                let made = engines.create(&dry, &probe).await?;
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
