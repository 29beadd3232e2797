//! `chaos-conductor halt` / `chaos-conductor resume`: engage or release the kill switch (see
//! `controller::halt`). Cluster-wide by default (the chart's ConfigMap), one namespace with
//! `--namespace` (an annotation on the Namespace).
use std::process::ExitCode;

use clap::Args;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::controller::halt::{
    HALTED_KEY, NAMESPACE_ANNOTATION, NAMESPACE_REASON_ANNOTATION, REASON_KEY, SwitchRef,
};

/// Default switch: the chart installed as release `chaos-conductor` in namespace `chaos-conductor`.
pub const DEFAULT_SWITCH: &str = "chaos-conductor/chaos-conductor-halt";

/// Options of `halt` and `resume`.
#[derive(Args, Debug, Clone)]
pub struct HaltArgs {
    /// Only this namespace (annotation chaos-conductor.io/halt on the Namespace) instead of the
    /// whole cluster.
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// The cluster-wide switch: NAMESPACE/NAME of the chart's ConfigMap (`<release>-halt` in the
    /// release namespace).
    #[arg(long = "switch", env = "HALT_CONFIGMAP", default_value = DEFAULT_SWITCH)]
    pub switch: SwitchRef,
    /// Why (shown in held engines' status and events). `halt` only.
    #[arg(long, default_value = "")]
    pub reason: String,
}

const MANAGER: &str = "chaos-conductor-cli";

/// Engages (`engage = true`) or releases the switch.
pub fn run(args: &HaltArgs, engage: bool) -> ExitCode {
    let runtime = match super::runtime(false) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match runtime.block_on(set(args, engage)) {
        Ok(what) => {
            println!("{what}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn set(args: &HaltArgs, engage: bool) -> anyhow::Result<String> {
    let client = kube::Client::try_default().await?;
    let verb = if engage { "engaged" } else { "released" };
    match &args.namespace {
        Some(ns) => {
            let api: Api<Namespace> = Api::all(client);
            let body = if engage {
                json!({"metadata": {"annotations": {
                    NAMESPACE_ANNOTATION: "true",
                    NAMESPACE_REASON_ANNOTATION: reason(args),
                }}})
            } else {
                json!({"metadata": {"annotations": {
                    NAMESPACE_ANNOTATION: null,
                    NAMESPACE_REASON_ANNOTATION: null,
                }}})
            };
            api.patch(ns, &PatchParams::default(), &Patch::Merge(&body))
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "annotating Namespace {ns} ({NAMESPACE_ANNOTATION}): {}",
                        short(&e)
                    )
                })?;
            Ok(format!("kill switch {verb} for namespace {ns}"))
        }
        None => {
            let sw = &args.switch;
            let api: Api<ConfigMap> = Api::namespaced(client, &sw.namespace);
            // Server-side apply of our two keys only: creates the ConfigMap if it is missing and
            // leaves Helm's fields alone, so `helm upgrade` does not release an engaged switch.
            let body = json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": sw.name, "namespace": sw.namespace},
                "data": {
                    HALTED_KEY: if engage { "true" } else { "false" },
                    REASON_KEY: if engage { reason(args) } else { String::new() },
                },
            });
            api.patch(
                &sw.name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "setting ConfigMap {sw} (--switch / HALT_CONFIGMAP; the chart's is \
                     <release>-halt in the release namespace): {}",
                    short(&e)
                )
            })?;
            Ok(format!("kill switch {verb} cluster-wide (ConfigMap {sw})"))
        }
    }
}

fn reason(args: &HaltArgs) -> String {
    if args.reason.is_empty() {
        format!("chaos-conductor halt at {}", Timestamp::now())
    } else {
        args.reason.clone()
    }
}

/// The API server's own message (the full Status debug print buries it).
fn short(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(ae) => format!("{} ({})", ae.message, ae.code),
        other => other.to_string(),
    }
}
