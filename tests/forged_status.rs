//! A forged status on our CRDs (status subresource): a status written by the engine author that
//! names an unrelated Job must not make the controller delete or adopt that Job. The same on
//! Litmus's CRDs (status on the main resource) is in `tests/litmus_crds.rs` (it swaps the CRD).
mod support;

use support::forged::{StatusWrite, forged_status_names_someone_elses_job};
use support::*;

#[tokio::test]
async fn forged_status_via_subresource_does_not_touch_an_unrelated_job() {
    let env = setup("forged-status", &["pod-delete"]).await;
    forged_status_names_someone_elses_job(&env, StatusWrite::Subresource).await;
    env.cleanup().await;
}
