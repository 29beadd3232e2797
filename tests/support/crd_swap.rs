//! A cluster-wide CRD swapped for Litmus's shape for the duration of a test
//! (tests/litmus_crds.rs, tests/schedule_litmus_crd.rs): no status subresource, and a `spec` and
//! `status` that keep anything. Such a test disturbs tests beside it, so each is `#[ignore]`d and
//! `scripts/test` runs it alone.
use std::future::Future;
use std::time::Duration;

use chaos_conductor::controller::StatusMode;
use futures::FutureExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use kube::Client;
use kube::api::{Api, PostParams};
use serde_json::json;

use super::wait_for;

/// Litmus's shape: no subresources, no printer columns, `spec` and `status` keep unknown fields.
pub fn litmus_style(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let free = || -> JSONSchemaProps {
        serde_json::from_value(
            json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        )
        .unwrap()
    };
    for v in &mut crd.spec.versions {
        v.subresources = None;
        v.additional_printer_columns = None;
        if let Some(schema) = v
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        {
            let props = schema.properties.get_or_insert_with(Default::default);
            props.insert("spec".into(), free());
            props.insert("status".into(), free());
        }
    }
    crd
}

/// Replaces the installed CRD of the same name with `crd`, then waits (bounded) until the
/// controller's own discovery sees the change (`want`).
pub async fn install(client: &Client, crd: CustomResourceDefinition, want: StatusMode) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd.metadata.name.clone().unwrap_or_default();
    let kind = crd.spec.names.kind.clone();
    let plural = crd.spec.names.plural.clone();
    let mut crd = crd;
    let current = api
        .get(&name)
        .await
        .unwrap_or_else(|e| panic!("read the {kind} CRD: {e}"));
    crd.metadata.resource_version = current.metadata.resource_version;
    api.replace(&name, &PostParams::default(), &crd)
        .await
        .unwrap_or_else(|e| panic!("replace the {kind} CRD: {e}"));
    wait_for(
        "discovery to show the CRD change",
        Duration::from_secs(60),
        async || {
            let mode = StatusMode::served(client, &plural)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if mode == Some(want) {
                Ok(())
            } else {
                Err(anyhow::anyhow!("still {mode:?}"))
            }
        },
    )
    .await;
}

/// Runs `scenario` with `ours` swapped for its Litmus shape, and restores `ours` afterwards, pass
/// or fail (a panic of the scenario is resumed once our CRD is back).
pub async fn with_litmus_shape(
    client: &Client,
    ours: CustomResourceDefinition,
    scenario: impl Future<Output = ()>,
) {
    install(client, litmus_style(ours.clone()), StatusMode::MainResource).await;
    let outcome = std::panic::AssertUnwindSafe(scenario).catch_unwind().await;
    install(client, ours, StatusMode::Subresource).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
