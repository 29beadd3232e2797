//! The Helm chart in tests: `helm template` of chosen templates, and clients acting as other
//! identities (impersonated users; ServiceAccount tokens and token-only kubeconfigs are
//! in tests/support/conductor.rs).
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use kube::Client;

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
