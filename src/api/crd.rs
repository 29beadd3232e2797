//! The three CRDs as installed: derived from the types, then adjusted where Litmus differs from
//! kube-derive's defaults.
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use super::{ChaosEngine, ChaosExperiment, ChaosResult};

/// ChaosEngine, ChaosExperiment and ChaosResult CRDs, in that order.
pub fn all_crds() -> Vec<CustomResourceDefinition> {
    let mut result = ChaosResult::crd();
    // litmus-go writes ChaosResult status with a full update of the object; with a status
    // subresource that update would silently drop the status, so the result CRD must not have one.
    for version in &mut result.spec.versions {
        version.subresources = None;
    }
    vec![ChaosEngine::crd(), ChaosExperiment::crd(), result]
}

/// The CRDs as one multi-document YAML stream (what `chaos-conductor crds` prints and crds/ holds).
pub fn crds_yaml() -> Result<String, serde_norway::Error> {
    let mut out = String::new();
    for crd in all_crds() {
        out.push_str("---\n");
        out.push_str(&serde_norway::to_string(&crd)?);
    }
    Ok(out)
}
