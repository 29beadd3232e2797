//! One rule book (src/validate/rules.rs): for every engine rule, `chaos-conductor validate` and the
//! controller (`plan`: status.message and the ChaosEngineInvalid Warning) say the same words.
use serde_json::json;

use crate::api::*;
use crate::engine::decision::EventType;
use crate::engine::fixtures::*;
use crate::engine::plan::{Observed, plan};
use crate::validate::{Problem, Source, Validator};

/// The error lines `validate` prints for one engine document (and its experiment's, when given).
fn cli_lines(e: &ChaosEngine, experiment: Option<&ChaosExperiment>) -> Vec<String> {
    let bytes = serde_json::to_vec(e).unwrap();
    let experiment = experiment.map(|x| serde_json::to_vec(x).unwrap());
    let validator = Validator::new().unwrap();
    let mut sources = vec![Source {
        name: "engine.yaml",
        bytes: &bytes,
    }];
    sources.extend(experiment.as_deref().map(|bytes| Source {
        name: "experiment.yaml",
        bytes,
    }));
    validator
        .validate(&sources)
        .iter()
        .filter(|p| p.is_error())
        .map(Problem::to_string)
        .collect()
}

/// Whether one of the CLI's lines ends with exactly these words (after its location).
fn says(lines: &[String], words: &str) -> bool {
    lines.iter().any(|l| l.ends_with(&format!(": {words}")))
}

#[test]
fn every_engine_rule_reads_the_same_in_validate_and_in_the_controller() {
    let named = |names: &[&str]| -> Vec<serde_json::Value> {
        names.iter().map(|n| json!({"name": n})).collect()
    };
    let many: Vec<serde_json::Value> = (0..=limits::MAX_EXPERIMENTS)
        .map(|i| json!({"name": format!("e{i}")}))
        .collect();
    let graph = |deps: serde_json::Value| json!({"experiments": named(&["a", "b"]), "execution": {"mode": "graph", "dependsOn": deps}});
    let rows: Vec<(&str, serde_json::Value, String)> = vec![
        (
            "selectors without workloads or pods",
            json!({"selectors": {"workloads": []}}),
            "spec.selectors: provide workloads or pods".into(),
        ),
        (
            "appkind without applabel",
            json!({"appinfo": {"appns": "default", "appkind": "deployment"}}),
            "incomplete appinfo, provide appkind and applabel both".into(),
        ),
        (
            "too many experiments",
            json!({"experiments": many}),
            format!(
                "spec.experiments: {}",
                limits::too_many_experiments(limits::MAX_EXPERIMENTS + 1)
            ),
        ),
        (
            "too many iterations",
            json!({"execution": {"iterations": limits::MAX_ITERATIONS + 1}}),
            format!(
                "spec.execution.iterations: {}",
                limits::too_many_iterations(limits::MAX_ITERATIONS + 1)
            ),
        ),
        (
            "an experiment without a name",
            json!({"experiments": named(&[""])}),
            "spec.experiments[0].name: every experiment needs a name".into(),
        ),
        (
            "an experiment listed twice",
            json!({"experiments": named(&["a", "a"])}),
            "spec.experiments[1].name: experiment a is listed twice (also spec.experiments[0]; names must be unique)".into(),
        ),
        (
            "dependsOn an unknown experiment's dependencies",
            graph(json!({"c": ["a"]})),
            "spec.execution.dependsOn: c is not in spec.experiments".into(),
        ),
        (
            "an experiment depending on itself",
            graph(json!({"a": ["a"]})),
            "spec.execution.dependsOn.a: an experiment cannot depend on itself".into(),
        ),
        (
            "a dependency on an unknown experiment",
            graph(json!({"a": ["z"]})),
            "spec.execution.dependsOn.a: z is not in spec.experiments".into(),
        ),
        (
            "a dependency cycle",
            graph(json!({"a": ["b"], "b": ["a"]})),
            "spec.execution.dependsOn: dependency cycle a -> b -> a".into(),
        ),
    ];
    for (what, spec, words) in rows {
        let e = engine_yaml(spec);
        let d = plan(&e, &Observed::default(), now(), &cfg());
        assert_eq!(d.status.phase, "Invalid", "{what}");
        assert_eq!(d.status.message, words, "{what}: the controller's words");
        assert!(
            d.events().any(|ev| ev.reason == "ChaosEngineInvalid"
                && ev.event_type == EventType::Warning
                && ev.message == words),
            "{what}: the Warning says the same"
        );
        let lines = cli_lines(&e, None);
        assert!(says(&lines, &words), "{what}: validate says {lines:#?}");
    }
}

/// Rules the controller checks per experiment at its launch (plan/gate.rs `gate`), where
/// `validate` (given the engine and its experiment) and the experiment entry's message say the
/// same words, and the experiment is skipped with the runner's Warning.
#[test]
fn launch_rules_read_the_same_in_validate_and_in_the_experiment_status() {
    let long = "a".repeat(limits::MAX_EXPERIMENT_NAME_LEN + 1);
    let mut sidecar = engine();
    sidecar.metadata.annotations = Some(
        [(SIDECAR_ANNOTATION.to_string(), "true".to_string())]
            .into_iter()
            .collect(),
    );
    let as_is: fn(&mut ChaosExperiment) = |_| {};
    let definition = "ChaosExperiment pod-delete: ";
    // (what, engine, the experiment's change, the entry's message before the words)
    type Row<'a> = (&'a str, ChaosEngine, fn(&mut ChaosExperiment), &'a str);
    let rows: Vec<Row> = vec![
        (
            "name too long for a Job",
            engine_yaml(json!({"experiments": [{"name": long}]})),
            as_is,
            "",
        ),
        (
            "incomplete ConfigMap",
            engine_yaml(
                json!({"experiments": [{"name": "pod-delete", "spec": {"components": {"configMaps": [{"name": "x"}]}}}]}),
            ),
            as_is,
            "",
        ),
        (
            "incomplete Secret",
            engine_yaml(
                json!({"experiments": [{"name": "pod-delete", "spec": {"components": {"secrets": [{"name": "x"}]}}}]}),
            ),
            as_is,
            "",
        ),
        (
            "no service account",
            engine_yaml(json!({"chaosServiceAccount": ""})),
            as_is,
            "",
        ),
        ("sidecar enabled, none listed", sidecar, as_is, ""),
        (
            "empty command",
            engine(),
            |e| e.spec.definition.command.clear(),
            definition,
        ),
        (
            "empty args",
            engine(),
            |e| e.spec.definition.args.clear(),
            definition,
        ),
    ];
    for (what, e, change, before_words) in rows {
        let name = e.spec.experiments[0].name.clone();
        let mut exp = experiment(&name);
        change(&mut exp);
        let o = Observed {
            experiments: [(name.clone(), Some(exp.clone()))].into(),
            ..observed_all_present(&[])
        };
        let d = plan(&e, &o, now(), &cfg());
        let entry = &d.status.experiments[0];
        assert_eq!(entry.status, "Skipped", "{what}");
        let words = entry
            .message
            .strip_prefix(before_words)
            .unwrap_or_else(|| panic!("{what}: the entry says {:?}", entry.message));
        let skipped = format!("Experiment Job creation failed, skipping Chaos Experiment: {name}");
        assert!(
            d.events()
                .any(|ev| ev.event_type == EventType::Warning && ev.message == skipped),
            "{what}: the skip Warning"
        );
        let lines = cli_lines(&e, Some(&exp));
        assert!(
            says(&lines, words),
            "{what}: the entry says {:?}, validate says {lines:#?}",
            entry.message
        );
    }
}
