//! Sample Litmus objects for tests: a chaos-charts-like ChaosExperiment, a ChaosEngine builder and
//! a hand-rendered experiment Job (what a runner/controller would create: see
//! docs/litmus-compatibility.md#job-rendering).
use std::collections::BTreeMap;

use chaos_conductor::api::{
    ChaosEngine, ChaosEngineSpec, ChaosExperiment, ChaosExperimentSpec, ExperimentAttributes,
    ExperimentComponents, ExperimentDef, ExperimentList,
};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Container, EnvVar, EnvVarSource, ObjectFieldSelector, PodSpec, PodTemplateSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Image of the sample experiments (never pulled: kwok runs no containers).
pub const SAMPLE_IMAGE: &str = "litmuschaos/go-runner:3.20.0";

fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    }
}

/// A ChaosExperiment shaped like the chaos-charts ones: go-runner image, `/bin/bash -c
/// ./experiments -name <name>`, the usual labels and a few tunables.
pub fn sample_experiment(name: &str) -> ChaosExperiment {
    let labels = BTreeMap::from([
        ("name".to_string(), name.to_string()),
        (
            "app.kubernetes.io/part-of".to_string(),
            "litmus".to_string(),
        ),
        (
            "app.kubernetes.io/component".to_string(),
            "experiment-job".to_string(),
        ),
        (
            "app.kubernetes.io/version".to_string(),
            "3.20.0".to_string(),
        ),
    ]);
    let mut exp = ChaosExperiment::new(
        name,
        ChaosExperimentSpec {
            definition: ExperimentDef {
                scope: Some("Namespaced".into()),
                image: SAMPLE_IMAGE.into(),
                image_pull_policy: Some("Always".into()),
                command: vec!["/bin/bash".into()],
                args: vec!["-c".into(), format!("./experiments -name {name}")],
                env: vec![
                    env("TOTAL_CHAOS_DURATION", "15"),
                    env("RAMP_TIME", ""),
                    env("CHAOS_INTERVAL", "5"),
                    env("FORCE", "true"),
                    env("PODS_AFFECTED_PERC", ""),
                    env("DEFAULT_HEALTH_CHECK", "false"),
                    env("SEQUENCE", "parallel"),
                ],
                labels: Some(labels),
                ..Default::default()
            },
        },
    );
    exp.metadata.labels = Some(BTreeMap::from([
        ("name".to_string(), name.to_string()),
        (
            "app.kubernetes.io/part-of".to_string(),
            "litmus".to_string(),
        ),
        (
            "app.kubernetes.io/component".to_string(),
            "chaosexperiment".to_string(),
        ),
        (
            "app.kubernetes.io/version".to_string(),
            "3.20.0".to_string(),
        ),
    ]));
    exp
}

/// Builds a ChaosEngine: `EngineBuilder::new("nginx-chaos").service_account("sa")
/// .experiment("pod-delete").experiment_env("pod-delete", "TOTAL_CHAOS_DURATION", "5").build()`.
#[derive(Clone, Debug)]
pub struct EngineBuilder {
    engine: ChaosEngine,
}

impl EngineBuilder {
    /// An `active` engine with `appinfo` pointing at `app=nginx` in `default` and
    /// `jobCleanUpPolicy: retain`, no experiments yet.
    pub fn new(name: &str) -> Self {
        let spec = ChaosEngineSpec {
            engine_state: Some("active".into()),
            appinfo: Some(chaos_conductor::api::ApplicationParams {
                appns: Some("default".into()),
                applabel: Some("app=nginx".into()),
                appkind: Some("deployment".into()),
            }),
            job_clean_up_policy: Some("retain".into()),
            ..Default::default()
        };
        EngineBuilder {
            engine: ChaosEngine::new(name, spec),
        }
    }

    pub fn service_account(mut self, sa: &str) -> Self {
        self.engine.spec.chaos_service_account = Some(sa.into());
        self
    }

    /// Adds an experiment (no overrides).
    pub fn experiment(mut self, name: &str) -> Self {
        self.engine.spec.experiments.push(ExperimentList {
            name: name.into(),
            spec: ExperimentAttributes::default(),
        });
        self
    }

    /// Adds (or overrides) an env entry of an experiment's `spec.components.env`, adding the
    /// experiment if it is not listed yet.
    pub fn experiment_env(mut self, experiment: &str, name: &str, value: &str) -> Self {
        let components = self.components_mut(experiment);
        components.env.retain(|e| e.name != name);
        components.env.push(env(name, value));
        self
    }

    /// Mutable access to an experiment's `spec.components` (adding the experiment if needed).
    pub fn components_mut(&mut self, experiment: &str) -> &mut ExperimentComponents {
        let exps = &mut self.engine.spec.experiments;
        let i = match exps.iter().position(|e| e.name == experiment) {
            Some(i) => i,
            None => {
                exps.push(ExperimentList {
                    name: experiment.into(),
                    spec: Default::default(),
                });
                exps.len() - 1
            }
        };
        &mut exps[i].spec.components
    }

    /// `spec.jobCleanUpPolicy` (`delete` / `retain`); `None` leaves it unset.
    pub fn job_cleanup_policy(mut self, policy: Option<&str>) -> Self {
        self.engine.spec.job_clean_up_policy = policy.map(Into::into);
        self
    }

    /// `spec.engineState`.
    pub fn engine_state(mut self, state: &str) -> Self {
        self.engine.spec.engine_state = Some(state.into());
        self
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.engine
            .metadata
            .labels
            .get_or_insert_default()
            .insert(key.into(), value.into());
        self
    }

    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.engine
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(key.into(), value.into());
        self
    }

    /// Any other change to the spec.
    pub fn with(mut self, f: impl FnOnce(&mut ChaosEngine)) -> Self {
        f(&mut self.engine);
        self
    }

    pub fn build(self) -> ChaosEngine {
        self.engine
    }
}

/// An experiment Job as the runner renders it (docs/litmus-compatibility.md#job-rendering), for
/// tests without a controller: name `job_name`, main container named like the Job with the
/// experiment's image/command/args, labels = experiment labels + `chaosUID` + engine labels, env =
/// the runner-derived variables + experiment env + engine env + `JOB_CLEANUP_POLICY` + `POD_NAME`.
/// `engine` must have been read back from the cluster (its UID is used).
pub fn hand_rendered_job(
    engine: &ChaosEngine,
    experiment: &ChaosExperiment,
    job_name: &str,
) -> Job {
    let engine_name = engine.metadata.name.clone().unwrap_or_default();
    let engine_ns = engine.metadata.namespace.clone().unwrap_or_default();
    let engine_uid = engine
        .metadata
        .uid
        .clone()
        .expect("engine read back from the cluster");
    let exp_name = experiment.metadata.name.clone().unwrap_or_default();
    let def = &experiment.spec.definition;

    let mut labels = def.labels.clone().unwrap_or_default();
    labels.insert("chaosUID".into(), engine_uid.clone());
    labels.extend(engine.metadata.labels.clone().unwrap_or_default());

    let mut vars: Vec<EnvVar> = vec![
        env("CHAOSENGINE", &engine_name),
        env("CHAOS_NAMESPACE", &engine_ns),
        env("CHAOS_UID", &engine_uid),
        env("EXPERIMENT_NAME", &exp_name),
        env("TERMINATION_GRACE_PERIOD_SECONDS", "0"),
        env("DEFAULT_HEALTH_CHECK", "false"),
    ];
    if let Some(sa) = &engine.spec.chaos_service_account {
        vars.push(env("CHAOS_SERVICE_ACCOUNT", sa));
    }
    let mut merge = |list: &[EnvVar]| {
        for e in list {
            vars.retain(|v| v.name != e.name);
            vars.push(e.clone());
        }
    };
    merge(&def.env);
    if let Some(entry) = engine.spec.experiments.iter().find(|e| e.name == exp_name) {
        merge(&entry.spec.components.env);
    }
    merge(&[
        env("STATUS_CHECK_DELAY", "2"),
        env("STATUS_CHECK_TIMEOUT", "180"),
        env(
            "JOB_CLEANUP_POLICY",
            engine.spec.job_clean_up_policy.as_deref().unwrap_or(""),
        ),
    ]);
    vars.push(EnvVar {
        name: "POD_NAME".into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: "metadata.name".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    });

    Job {
        metadata: ObjectMeta {
            name: Some(job_name.into()),
            namespace: Some(engine_ns),
            labels: Some(labels.clone()),
            ..Default::default()
        },
        spec: Some(JobSpec {
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: engine.spec.chaos_service_account.clone(),
                    restart_policy: Some("Never".into()),
                    containers: vec![Container {
                        name: job_name.into(),
                        image: Some(def.image.clone()),
                        image_pull_policy: def.image_pull_policy.clone(),
                        command: Some(def.command.clone()),
                        args: Some(def.args.clone()),
                        env: Some(vars),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}
