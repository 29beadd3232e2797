//! The launch gate (plan/gate.rs `resolve` and `gate`): one row per way it refuses a launch.
use std::collections::BTreeMap;

use serde_json::json;

use crate::api::*;
use crate::engine::decision::Effect;
use crate::engine::fixtures::*;
use crate::engine::job::RenderError;
use crate::engine::plan::{Observed, Skip, gate, plan, resolve};

/// The gate, one row per way it refuses (and its two "not read yet" answers): what is observed →
/// what it says; and `plan` ends the experiment with exactly that message, creating no Job.
#[test]
fn the_gate_refuses_each_unlaunchable_experiment_once_and_says_why() {
    let ns = |name: &str| (name.to_string(), "litmus".to_string());
    let present = || observed_all_present(&["pod-delete"]);
    let with_exp = |f: fn(&mut ChaosExperiment)| {
        let mut exp = experiment("pod-delete");
        f(&mut exp);
        Observed {
            experiments: BTreeMap::from([("pod-delete".to_string(), Some(exp))]),
            ..present()
        }
    };
    let long = "a".repeat(limits::MAX_EXPERIMENT_NAME_LEN + 1);
    let mut sidecar = engine();
    sidecar.metadata.annotations = Some(BTreeMap::from([(
        SIDECAR_ANNOTATION.to_string(),
        "true".to_string(),
    )]));
    let mut no_uid = engine();
    no_uid.metadata.uid = None;
    let (cm, secret) = (ns("exp-config"), ns("cloud-secret"));
    let rows: Vec<(&str, ChaosEngine, Observed, Option<Skip>)> = vec![
        (
            "experiment not found",
            engine(),
            Observed {
                experiments: BTreeMap::from([("pod-delete".to_string(), None)]),
                ..present()
            },
            Some(Skip::ExperimentNotFound {
                name: "pod-delete".into(),
                namespace: "litmus".into(),
            }),
        ),
        (
            "name too long for a Job",
            engine_yaml(json!({"experiments": [{"name": long}]})),
            observed_all_present(&[long.as_str()]),
            Some(Skip::NameTooLong(long.clone())),
        ),
        (
            "no service account",
            engine_yaml(json!({"chaosServiceAccount": ""})),
            Observed {
                service_account_exists: None,
                ..present()
            },
            Some(RenderError::NoServiceAccount.into()),
        ),
        (
            "service account not found",
            engine(),
            Observed {
                service_account_exists: Some(false),
                ..present()
            },
            Some(Skip::ServiceAccountNotFound {
                name: "pod-delete-sa".into(),
                namespace: "litmus".into(),
            }),
        ),
        (
            "sidecar enabled, none listed",
            sidecar,
            present(),
            Some(RenderError::NoSidecar.into()),
        ),
        (
            "incomplete ConfigMap",
            engine_yaml(
                json!({"experiments": [{"name": "pod-delete", "spec": {"components": {"configMaps": [{"name": "x"}]}}}]}),
            ),
            present(),
            Some(RenderError::IncompleteConfigMap.into()),
        ),
        (
            "incomplete Secret",
            engine_yaml(
                json!({"experiments": [{"name": "pod-delete", "spec": {"components": {"secrets": [{"mountPath": "/x"}]}}}]}),
            ),
            present(),
            Some(RenderError::IncompleteSecret.into()),
        ),
        (
            "incomplete hostFileVolume",
            engine(),
            with_exp(|e| e.spec.definition.host_file_volumes = vec![Default::default()]),
            Some(RenderError::IncompleteHostFile.into()),
        ),
        (
            "ConfigMap not found",
            engine(),
            Observed {
                missing_config_maps: [cm.0.clone()].into(),
                ..present()
            },
            Some(Skip::ConfigMapNotFound {
                name: cm.0,
                namespace: cm.1,
            }),
        ),
        (
            "Secret not found",
            engine(),
            Observed {
                missing_secrets: [secret.0.clone()].into(),
                ..present()
            },
            Some(Skip::SecretNotFound {
                name: secret.0,
                namespace: secret.1,
            }),
        ),
        (
            "engine without uid",
            no_uid,
            present(),
            Some(RenderError::IncompleteEngine.into()),
        ),
        (
            "empty command",
            engine(),
            with_exp(|e| e.spec.definition.command.clear()),
            Some(RenderError::EmptyDefinitionField("pod-delete".into(), "command").into()),
        ),
        (
            "empty args",
            engine(),
            with_exp(|e| e.spec.definition.args.clear()),
            Some(RenderError::EmptyDefinitionField("pod-delete".into(), "args").into()),
        ),
        ("launchable", engine(), present(), None),
    ];
    for (what, e, o, want) in rows {
        let name = e.spec.experiments[0].name.clone();
        let got = resolve(&e, &o, &name).map(|r| gate(r, 1, 1).err());
        assert_eq!(got, Some(want.clone()), "{what}");
        let d = plan(&e, &o, now(), &cfg());
        let created = d.effects().any(|x| matches!(x, Effect::CreateJob(_)));
        match want {
            Some(skip) => {
                assert_eq!(d.status.experiments[0].message, skip.to_string(), "{what}");
                assert!(!created, "{what}");
            }
            None => assert!(created, "{what}"),
        }
    }
    // What the gate needs and was not read: nothing to gate yet, so the pass asks to be planned
    // again.
    assert!(resolve(&engine(), &Observed::default(), "pod-delete").is_none());
    let unread_sa = Observed {
        service_account_exists: None,
        ..present()
    };
    assert!(resolve(&engine(), &unread_sa, "pod-delete").is_none());
}
