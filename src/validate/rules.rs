//! The engine rule book. One set of rules with one set of words: `chaos-conductor validate` reports
//! every broken rule (through [`super::check_engine`] and [`super::check_experiment`]), and the
//! controller acts on the same rules in the same words:
//! - [`engine_rules`] make a whole ChaosEngine invalid: the controller refuses it (phase `Invalid`,
//!   the first one's [`controller_words`] in `status.message` and in the `ChaosEngineInvalid`
//!   Warning, see src/engine/plan/start.rs);
//! - the launch rules ([`service_account`], [`sidecars`], [`INCOMPLETE_HOSTFILE`],
//!   [`empty_definition`] and the incomplete ConfigMap/Secret sentences) skip one experiment at its
//!   launch gate (src/engine/plan/gate.rs), with these words as the experiment entry's message.
//!
//! Pure: typed objects in, problems out.
use std::collections::{BTreeMap, BTreeSet};

use super::problem::{Problem, index_field, join_field};
use crate::api::limits;
use crate::api::{ChaosEngine, ExperimentDef, Sidecar};

/// Litmus operator message when only one of appkind / applabel is set.
pub const INCOMPLETE_APPINFO: &str = "incomplete appinfo, provide appkind and applabel both";
/// Litmus runner message for an engine configMaps entry without name or mountPath.
pub const INCOMPLETE_CONFIGMAP: &str = "Incomplete Information in ConfigMap, will skip execution";
/// Litmus runner message for an engine secrets entry without name or mountPath.
pub const INCOMPLETE_SECRET: &str = "Incomplete Information in Secret, will skip execution";
/// Litmus runner message for a hostFileVolume without name, mountPath or nodePath.
pub const INCOMPLETE_HOSTFILE: &str =
    "Incomplete Information in HostFileVolume, will skip execution";
/// An engine without `spec.chaosServiceAccount` (the experiment Jobs run under it). The message
/// names its field, so `validate` prints it once (see [`Problem`]'s `Display`).
pub const NO_SERVICE_ACCOUNT: &str = "spec.chaosServiceAccount must be set";
/// The sidecar annotation enables sidecars, and the engine lists none.
pub const NO_SIDECAR: &str =
    "sidecar is enabled by the sidecar/enabled annotation but spec.components.sidecar is empty";

/// Sentences that stand alone, without the field: Litmus's own, as Litmus writes them, and ours
/// that say which field they are about.
const SENTENCES: [&str; 5] = [
    INCOMPLETE_APPINFO,
    INCOMPLETE_CONFIGMAP,
    INCOMPLETE_SECRET,
    INCOMPLETE_HOSTFILE,
    NO_SIDECAR,
];

/// What the controller says for a broken rule: the end of the line `validate` prints for it
/// (`field: message`), or the message alone where it stands alone (one of the sentences above, or
/// a message that starts with its own field).
pub fn controller_words(problem: &Problem) -> String {
    if SENTENCES.contains(&problem.message.as_str()) || problem.names_its_field() {
        problem.message.clone()
    } else {
        format!("{}: {}", problem.field, problem.message)
    }
}

/// The service account the experiment Jobs run under, or the rule it breaks ([`NO_SERVICE_ACCOUNT`]).
pub fn service_account(engine: &ChaosEngine) -> Result<&str, Box<Problem>> {
    engine
        .spec
        .chaos_service_account
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Box::new(Problem::error(
                "spec.chaosServiceAccount",
                NO_SERVICE_ACCOUNT,
            ))
        })
}

/// The sidecars each experiment Job gets (none unless the sidecar annotation enables them), or the
/// rule it breaks ([`NO_SIDECAR`]).
pub fn sidecars(engine: &ChaosEngine) -> Result<&[Sidecar], Box<Problem>> {
    match engine.spec.components.as_ref() {
        _ if !engine.sidecar_enabled() => Ok(&[]),
        Some(c) if !c.sidecar.is_empty() => Ok(c.sidecar.as_slice()),
        _ => Err(Box::new(Problem::error(
            "spec.components.sidecar",
            NO_SIDECAR,
        ))),
    }
}

/// The fields of a ChaosExperiment's definition that the Job needs and that are empty
/// (`command`, `args`, in this order): `validate` reports each, the launch gate skips on the first.
pub fn empty_definition_fields(def: &ExperimentDef) -> impl Iterator<Item = &'static str> {
    [
        ("command", def.command.is_empty()),
        ("args", def.args.is_empty()),
    ]
    .into_iter()
    .filter_map(|(field, empty)| empty.then_some(field))
}

/// A ChaosExperiment's `spec.definition.<field>` (command, args) is empty: the Job cannot be built.
pub fn empty_definition(field: &str) -> Problem {
    let field = format!("spec.definition.{field}");
    let message = format!("{field} must not be empty");
    Problem::error(field, message)
}

/// Whether the engine has more experiments than one engine may have ([`limits::MAX_EXPERIMENTS`]).
pub fn too_many_experiments(engine: &ChaosEngine) -> bool {
    engine.spec.experiments.len() > limits::MAX_EXPERIMENTS
}

/// Every engine rule the engine breaks, as errors, in the order the controller checks them (it
/// reports the first): selectors, appinfo, the size limits, experiment names, `dependsOn`.
pub fn engine_rules(engine: &ChaosEngine) -> Vec<Problem> {
    let mut out = Vec::new();
    let spec = &engine.spec;
    if let Some(selectors) = &spec.selectors {
        let workloads = selectors.workloads.as_ref().is_some_and(|w| !w.is_empty());
        let pods = selectors.pods.as_ref().is_some_and(|p| !p.is_empty());
        if !workloads && !pods {
            out.push(Problem::error(
                "spec.selectors",
                "provide workloads or pods",
            ));
        }
    }
    if let Some(appinfo) = &spec.appinfo {
        let kind = appinfo.appkind.as_deref().unwrap_or_default();
        let label = appinfo.applabel.as_deref().unwrap_or_default();
        if kind.is_empty() != label.is_empty() {
            out.push(Problem::error("spec.appinfo", INCOMPLETE_APPINFO));
        }
    }
    if too_many_experiments(engine) {
        out.push(Problem::error(
            "spec.experiments",
            limits::too_many_experiments(spec.experiments.len()),
        ));
    }
    if let Some(n) = spec
        .execution
        .as_ref()
        .and_then(|e| e.iterations)
        .filter(|n| *n > limits::MAX_ITERATIONS)
    {
        out.push(Problem::error(
            "spec.execution.iterations",
            limits::too_many_iterations(n),
        ));
    }
    if too_many_experiments(engine) {
        // Refused as a whole; a line per entry would bury that one reason.
        return out;
    }
    let mut first_index: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, experiment) in spec.experiments.iter().enumerate() {
        let field = join_field(&index_field("spec.experiments", i), "name");
        if experiment.name.is_empty() {
            out.push(Problem::error(field, "every experiment needs a name"));
        } else if let Some(first) = first_index.get(experiment.name.as_str()) {
            out.push(Problem::error(
                field,
                format!(
                    "experiment {} is listed twice (also spec.experiments[{first}]; names must be unique)",
                    experiment.name
                ),
            ));
        } else {
            first_index.insert(&experiment.name, i);
        }
    }
    depends_on(engine, &mut out);
    out
}

/// `spec.execution.dependsOn`: known names, no self-dependency, no cycle (the controller would
/// wait forever).
fn depends_on(engine: &ChaosEngine, out: &mut Vec<Problem>) {
    let Some(execution) = &engine.spec.execution else {
        return;
    };
    let names: BTreeSet<&str> = engine
        .spec
        .experiments
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    for (name, deps) in &execution.depends_on {
        if !names.contains(name.as_str()) {
            out.push(Problem::error(
                "spec.execution.dependsOn",
                format!("{name} is not in spec.experiments"),
            ));
        }
        let field = format!("spec.execution.dependsOn.{name}");
        for dep in deps {
            if dep == name {
                out.push(Problem::error(
                    field.clone(),
                    "an experiment cannot depend on itself",
                ));
            } else if !names.contains(dep.as_str()) {
                out.push(Problem::error(
                    field.clone(),
                    format!("{dep} is not in spec.experiments"),
                ));
            }
        }
    }
    // Self-dependencies are reported above; a cycle is reported once, along its names.
    let without_self: BTreeMap<String, Vec<String>> = execution
        .depends_on
        .iter()
        .map(|(k, v)| (k.clone(), v.iter().filter(|d| *d != k).cloned().collect()))
        .collect();
    if let Some(cycle) = crate::engine::schedule::find_cycle(&without_self) {
        out.push(Problem::error(
            "spec.execution.dependsOn",
            format!("dependency cycle {}", cycle.join(" -> ")),
        ));
    }
}
