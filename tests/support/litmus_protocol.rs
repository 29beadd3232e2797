//! litmus-go's side of the contract with the controller (docs/litmus-compatibility.md#chaosresult-protocol and #abort), written once and
//! used by both stand-ins: the in-test fake ([`super::fake_experiment`], which plays pods on kwok)
//! and the in-cluster experiment binary (`examples/experiments.rs`, the go-runner image's
//! `./experiments`, which runs in a real container). Each is an untrusted writer from the
//! controller's point of view, exactly like litmus-go.
//!
//! - ChaosResult `<engine>-<experiment>[-<instance>]`: full create/replace (the CRD has no status
//!   subresource), re-read on conflict; labels = the pod's labels with `chaosUID` forced.
//! - Events on the engine are named `<Reason><experiment><engineUID>` (get-or-create, count++),
//!   on the result `<Reason><podName>` (create only); source = the pod name.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use chaos_conductor::api::{
    API_VERSION, ChaosResult, ChaosResultSpec, ChaosResultStatus, ErrorOutput,
    ResultExperimentStatus, TargetDetails, result_name, result_phase, verdict as v,
};
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};

/// How an experiment ended (what litmus-go writes at end of test).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Completed / Pass, probeSuccessPercentage 100, passedRuns+1; Summary "… has been Passed".
    Pass,
    /// Completed / Fail, failedRuns+1; Summary "… has been Failed".
    Fail,
    /// litmus-go's `RecordAfterFailure`: a check failed (e.g. the application did not recover):
    /// Completed / Fail with `errorOutput {code, reason}`, failedRuns+1, Summary
    /// "experiment: <exp>, Result: Fail" (Warning).
    FailedCheck { code: String, reason: String },
    /// Error / Error with this errorOutput; Summary "experiment: <exp>, Result: Error".
    Error { code: String, reason: String },
}

impl Outcome {
    pub fn verdict(&self) -> &'static str {
        match self {
            Outcome::Pass => v::PASS,
            Outcome::Fail | Outcome::FailedCheck { .. } => v::FAIL,
            Outcome::Error { .. } => v::ERROR,
        }
    }
}

/// One experiment run as litmus-go knows it: from its own pod's env and labels.
#[derive(Clone)]
pub struct Reporter {
    pub client: Client,
    pub pod_name: String,
    pub engine: String,
    pub experiment: String,
    pub chaos_ns: String,
    pub chaos_uid: String,
    pub instance_id: String,
    pub result_name: String,
    /// The pod's labels (copied to the ChaosResult, `chaosUID` forced).
    pub labels: BTreeMap<String, String>,
}

impl Reporter {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: Client,
        pod_name: &str,
        engine: &str,
        experiment: &str,
        chaos_ns: &str,
        chaos_uid: &str,
        instance_id: &str,
        labels: BTreeMap<String, String>,
    ) -> Self {
        Reporter {
            client,
            pod_name: pod_name.into(),
            engine: engine.into(),
            experiment: experiment.into(),
            chaos_ns: chaos_ns.into(),
            chaos_uid: chaos_uid.into(),
            instance_id: instance_id.into(),
            result_name: result_name(engine, experiment, Some(instance_id)),
            labels,
        }
    }

    /// Start of test: result Running/Awaited, result event `Awaited`, engine events
    /// `PreChaosCheck` (with this message) and `ChaosInject`.
    pub async fn start_of_test(&self, pre_check: &str, inject: &str) -> anyhow::Result<()> {
        let result = self
            .write_result(|r| {
                r.experiment_status = ResultExperimentStatus {
                    phase: result_phase::RUNNING.into(),
                    verdict: v::AWAITED.into(),
                    probe_success_percentage: Some(v::AWAITED.into()),
                    error_output: None,
                };
                r.probe_statuses.clear();
            })
            .await?;
        let msg = format!("experiment: {}, Result: Awaited", self.experiment);
        self.result_event(&result, "Awaited", "Normal", &msg)
            .await?;
        self.engine_event("PreChaosCheck", "Normal", pre_check)
            .await?;
        self.engine_event("ChaosInject", "Normal", inject).await
    }

    /// End of test: `PostChaosCheck` (unless an error), the verdict, `Summary`, the result event.
    /// `targets` go to `status.history.targets` (litmus-go records the pods it hit).
    pub async fn end_of_test(
        &self,
        outcome: &Outcome,
        post_check: &str,
        targets: &[TargetDetails],
    ) -> anyhow::Result<()> {
        let exp = &self.experiment;
        let (summary_type, summary) = match outcome {
            Outcome::Pass => ("Normal", format!("{exp} experiment has been Passed")),
            Outcome::Fail => ("Warning", format!("{exp} experiment has been Failed")),
            Outcome::FailedCheck { .. } => ("Warning", format!("experiment: {exp}, Result: Fail")),
            Outcome::Error { .. } => ("Warning", format!("experiment: {exp}, Result: Error")),
        };
        match outcome {
            Outcome::Pass | Outcome::Fail => {
                self.engine_event("PostChaosCheck", "Normal", post_check)
                    .await?
            }
            Outcome::FailedCheck { .. } => {
                self.engine_event("PostChaosCheck", "Warning", post_check)
                    .await?
            }
            Outcome::Error { .. } => {}
        }
        let outcome_c = outcome.clone();
        let targets = targets.to_vec();
        let result = self
            .write_result(move |r| {
                let st = &mut r.experiment_status;
                let history = r.history.get_or_insert_default();
                for t in &targets {
                    if !history.targets.contains(t) {
                        history.targets.push(t.clone());
                    }
                }
                // litmus-go's end of test: the verdict, the probe percentage (100 only on Pass), the
                // error output of a failed check or an error, and the run counted by its verdict.
                let (phase, verdict, error) = match &outcome_c {
                    Outcome::Pass => (result_phase::COMPLETED, v::PASS, None),
                    Outcome::Fail => (result_phase::COMPLETED, v::FAIL, None),
                    Outcome::FailedCheck { code, reason } => {
                        (result_phase::COMPLETED, v::FAIL, Some((code, reason)))
                    }
                    Outcome::Error { code, reason } => {
                        (result_phase::ERROR, v::ERROR, Some((code, reason)))
                    }
                };
                st.phase = phase.into();
                st.verdict = verdict.into();
                let probe = if matches!(outcome_c, Outcome::Pass) {
                    "100"
                } else {
                    "0"
                };
                st.probe_success_percentage = Some(probe.into());
                if let Some((code, reason)) = error {
                    st.error_output = Some(ErrorOutput {
                        error_code: code.clone(),
                        reason: reason.clone(),
                    });
                }
                match &outcome_c {
                    Outcome::Pass => history.passed_runs += 1,
                    Outcome::Fail | Outcome::FailedCheck { .. } => history.failed_runs += 1,
                    Outcome::Error { .. } => {}
                }
            })
            .await?;
        self.engine_event("Summary", summary_type, &summary).await?;
        let verdict = outcome.verdict();
        let result_type = if verdict == v::PASS {
            "Normal"
        } else {
            "Warning"
        };
        let msg = format!("experiment: {exp}, Result: {verdict}");
        self.result_event(&result, verdict, result_type, &msg).await
    }

    /// The SIGTERM handler (docs/litmus-compatibility.md#abort): phase/verdict Stopped, stoppedRuns+1, `Summary` (Warning)
    /// "… has been aborted" on the engine, `Abort` on the result.
    pub async fn stopped(&self) -> anyhow::Result<()> {
        let result = self
            .write_result(|r| {
                let st = &mut r.experiment_status;
                st.phase = result_phase::STOPPED.into();
                st.verdict = v::STOPPED.into();
                st.error_output = Some(ErrorOutput {
                    error_code: "EXPERIMENT_ABORTED".into(),
                    reason: "Chaos injection stopped!".into(),
                });
                r.history.get_or_insert_default().stopped_runs += 1;
            })
            .await?;
        let msg = format!("{} experiment has been aborted", self.experiment);
        self.engine_event("Summary", "Warning", &msg).await?;
        self.result_event(&result, "Abort", "Warning", "Experiment is aborted")
            .await
    }

    /// Get-modify-create/replace of the ChaosResult, retried on conflicts (litmus-go re-reads
    /// and retries too). Labels are refreshed from the pod with `chaosUID` forced.
    pub async fn write_result(
        &self,
        modify: impl Fn(&mut ChaosResultStatus),
    ) -> anyhow::Result<ChaosResult> {
        let api: Api<ChaosResult> = Api::namespaced(self.client.clone(), &self.chaos_ns);
        let mut labels = self.labels.clone();
        labels.insert("chaosUID".into(), self.chaos_uid.clone());
        let spec = ChaosResultSpec {
            engine: self.engine.clone(),
            experiment: self.experiment.clone(),
            instance: self.instance_id.clone(),
        };
        let mut last_err = None;
        for _ in 0..20 {
            let outcome = match api.get_opt(&self.result_name).await? {
                None => {
                    let mut r = ChaosResult::new(&self.result_name, spec.clone());
                    r.metadata.namespace = Some(self.chaos_ns.clone());
                    r.metadata.labels = Some(labels.clone());
                    modify(r.status.insert(ChaosResultStatus::default()));
                    api.create(&PostParams::default(), &r).await
                }
                Some(mut r) => {
                    r.metadata.labels = Some(labels.clone());
                    r.spec = spec.clone();
                    modify(r.status.get_or_insert_default());
                    api.replace(&self.result_name, &PostParams::default(), &r)
                        .await
                }
            };
            match outcome {
                Ok(r) => return Ok(r),
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    last_err = Some(kube::Error::Api(s));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        anyhow::bail!(
            "ChaosResult {} kept conflicting: {last_err:?}",
            self.result_name
        )
    }

    /// The object an event is about: a Litmus object of `kind` in the chaos namespace.
    fn involved(&self, kind: &str, name: Option<String>, uid: Option<String>) -> ObjectReference {
        ObjectReference {
            api_version: Some(API_VERSION.into()),
            kind: Some(kind.into()),
            name,
            namespace: Some(self.chaos_ns.clone()),
            uid,
            ..Default::default()
        }
    }

    /// An event on the engine (`<Reason><experiment><engineUID>`, get-or-create, count++).
    pub async fn engine_event(
        &self,
        reason: &str,
        type_: &str,
        message: &str,
    ) -> anyhow::Result<()> {
        let involved = self.involved(
            "ChaosEngine",
            Some(self.engine.clone()),
            Some(self.chaos_uid.clone()),
        );
        let name = format!("{reason}{}{}", self.experiment, self.chaos_uid);
        self.upsert_event(&name, involved, reason, type_, message, true)
            .await
    }

    /// An event on the ChaosResult (`<Reason><podName>`, create only).
    pub async fn result_event(
        &self,
        result: &ChaosResult,
        reason: &str,
        type_: &str,
        message: &str,
    ) -> anyhow::Result<()> {
        let involved = self.involved(
            "ChaosResult",
            result.metadata.name.clone(),
            result.metadata.uid.clone(),
        );
        let name = format!("{reason}{}", self.pod_name);
        self.upsert_event(&name, involved, reason, type_, message, false)
            .await
    }

    async fn upsert_event(
        &self,
        name: &str,
        involved: ObjectReference,
        reason: &str,
        type_: &str,
        message: &str,
        count_up: bool,
    ) -> anyhow::Result<()> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), &self.chaos_ns);
        let now = || Time(Timestamp::now());
        let source = EventSource {
            component: Some(self.pod_name.clone()),
            ..Default::default()
        };
        for _ in 0..10 {
            let outcome = match api.get_opt(name).await? {
                Some(mut e) if count_up => {
                    e.count = Some(e.count.unwrap_or(0) + 1);
                    e.last_timestamp = Some(now());
                    e.message = Some(message.into());
                    e.type_ = Some(type_.into());
                    e.source = Some(source.clone());
                    api.replace(name, &PostParams::default(), &e)
                        .await
                        .map(|_| ())
                }
                Some(_) => return Ok(()),
                None => {
                    let e = Event {
                        metadata: ObjectMeta {
                            name: Some(name.into()),
                            namespace: Some(self.chaos_ns.clone()),
                            ..Default::default()
                        },
                        involved_object: involved.clone(),
                        reason: Some(reason.into()),
                        message: Some(message.into()),
                        type_: Some(type_.into()),
                        count: Some(1),
                        first_timestamp: Some(now()),
                        last_timestamp: Some(now()),
                        source: Some(source.clone()),
                        ..Default::default()
                    };
                    api.create(&PostParams::default(), &e).await.map(|_| ())
                }
            };
            match outcome {
                Ok(()) => return Ok(()),
                Err(kube::Error::Api(s)) if s.code == 409 => continue,
                Err(e) => return Err(anyhow::Error::from(e).context(format!("event {name}"))),
            }
        }
        anyhow::bail!("event {name} kept conflicting")
    }
}
