//! Offline validation of LitmusChaos YAML (`chaos-conductor validate`).
//!
//! Each ChaosEngine / ChaosExperiment / ChaosResult document is checked against the generated CRD
//! schemas (so `validate` and the apiserver agree by construction), then against the run-time
//! rules of the Litmus operator and runner ([`check_engine`], [`check_experiment`]), then the
//! documents are checked against each other ([`cross_check`]). Other kinds are skipped with a note.
pub mod checks;
pub mod parse;
pub mod problem;
pub mod rules;
pub mod schedule;
pub mod schema;

use std::collections::BTreeMap;

use serde_json::Value;

pub use checks::{check_engine, check_experiment, check_object_meta};
pub use parse::{MAX_DEPTH, MAX_INPUT_BYTES, ParseError, parse_documents};
pub use problem::{Problem, Severity};
pub use rules::{controller_words, engine_rules};
pub use schema::{CrdSchemas, SchemaError};

use crate::api::{API_VERSION, ChaosEngine, ChaosExperiment, ChaosResult, ChaosSchedule, GROUP};
use problem::join_field;

/// Namespace of a document that sets none (what `kubectl apply` without `-n` would use).
pub const DEFAULT_NAMESPACE: &str = "default";

/// One input: a name for messages (a path, or `-` for stdin) and its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub name: &'a str,
    pub bytes: &'a [u8],
}

/// A Litmus object read from an input, with where it came from.
#[derive(Debug, Clone)]
pub enum LitmusObject {
    Engine(Box<ChaosEngine>),
    Experiment(Box<ChaosExperiment>),
    Result(Box<ChaosResult>),
    Schedule(Box<ChaosSchedule>),
}

/// A Litmus document with its identity, and its typed object when it decoded.
#[derive(Debug, Clone)]
pub struct Located {
    pub file: String,
    pub document: usize,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub object: Option<LitmusObject>,
}

/// Validates any number of inputs; holds the compiled CRD schemas (build it once, use it often).
pub struct Validator {
    schemas: CrdSchemas,
}

/// Problems of one document, in the order they will be printed.
struct DocReport {
    problems: Vec<Problem>,
    object: Option<Located>,
}

impl Validator {
    /// Compiles the CRD schemas of [`crate::api::all_crds`].
    pub fn new() -> Result<Self, SchemaError> {
        Ok(Validator {
            schemas: CrdSchemas::new()?,
        })
    }

    /// All problems of all inputs, ordered by input, then document.
    pub fn validate(&self, sources: &[Source<'_>]) -> Vec<Problem> {
        let mut reports: Vec<DocReport> = Vec::new();
        for source in sources {
            match parse_documents(source.bytes) {
                Err(e) => reports.push(DocReport {
                    problems: vec![Problem::error("", e.to_string()).at(source.name, 0)],
                    object: None,
                }),
                Ok(documents) if documents.is_empty() => reports.push(DocReport {
                    problems: vec![Problem::note("", "no YAML documents").at(source.name, 0)],
                    object: None,
                }),
                Ok(documents) => {
                    for document in documents {
                        reports.push(self.check_document(source.name, document));
                    }
                }
            }
        }
        let objects: Vec<Option<&Located>> = reports.iter().map(|r| r.object.as_ref()).collect();
        let cross = cross_check(&objects);
        drop(objects);
        for (i, problem) in cross {
            if let Some(report) = reports.get_mut(i) {
                report.problems.push(problem);
            }
        }
        reports.into_iter().flat_map(|r| r.problems).collect()
    }

    fn check_document(&self, file: &str, raw: parse::RawDocument) -> DocReport {
        let index = raw.index;
        let mut report = DocReport {
            problems: Vec::new(),
            object: None,
        };
        let mut doc = match raw.content {
            Ok(doc) => doc,
            Err(ParseError::DuplicateKey {
                parent,
                key,
                position,
            }) => {
                let field = join_field(&parent, &key);
                report.problems.push(
                    Problem::error(field, format!("duplicate key{position}")).at(file, index),
                );
                return report;
            }
            Err(e) => {
                report
                    .problems
                    .push(Problem::error("", e.to_string()).at(file, index));
                return report;
            }
        };
        if !doc.is_object() {
            report.problems.push(
                Problem::error(
                    "",
                    "document is not a mapping (expected a Kubernetes object)",
                )
                .at(file, index),
            );
            return report;
        }
        let text = |key: &str| doc.get(key).and_then(Value::as_str).map(str::to_string);
        let kind = text("kind").unwrap_or_default();
        let api_version = text("apiVersion").unwrap_or_default();
        let meta = |key: &str| {
            doc.get("metadata")
                .and_then(|m| m.get(key))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let name = meta("name")
            .or_else(|| meta("generateName").map(|g| format!("{g}*")))
            .unwrap_or_default();
        let namespace = meta("namespace").unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
        let locate = |p: Problem| p.with_object(&kind, &namespace, &name).at(file, index);

        let mut problems = Vec::new();
        for key in ["apiVersion", "kind"] {
            match doc.get(key) {
                None => problems.push(Problem::error(key, "required field is missing")),
                Some(Value::String(s)) if !s.is_empty() => {}
                Some(Value::String(_)) => problems.push(Problem::error(key, "must not be empty")),
                Some(_) => problems.push(Problem::error(key, "must be of type string")),
            }
        }
        if !problems.is_empty() {
            report.problems = problems.into_iter().map(locate).collect();
            return report;
        }
        let group = api_version.split('/').next().unwrap_or_default();
        let Some(kind_schema) = self.schemas.get(&kind).filter(|_| group == GROUP) else {
            report.problems.push(locate(Problem::note(
                "",
                format!("skipped: not a Litmus kind ({api_version} {kind})"),
            )));
            return report;
        };
        if api_version != API_VERSION {
            report.problems.push(locate(Problem::error(
                "apiVersion",
                format!("must be {API_VERSION}"),
            )));
            return report;
        }

        problems.extend(check_object_meta(&doc));
        let pruned = schema::prune(&mut doc, &kind_schema.openapi);
        let schema_errors = kind_schema.validate(&doc);
        let mut decode_problems = Vec::new();
        let object = match kind.as_str() {
            "ChaosEngine" => decode::<ChaosEngine>(&doc).map(|e| {
                decode_problems.extend(check_engine(&e));
                decode_problems.extend(checks::legacy_engine_fields(&doc));
                LitmusObject::Engine(Box::new(e))
            }),
            "ChaosExperiment" => decode::<ChaosExperiment>(&doc).map(|e| {
                decode_problems.extend(check_experiment(&e));
                LitmusObject::Experiment(Box::new(e))
            }),
            "ChaosSchedule" => {
                decode_problems.extend(schedule::check_schedule_document(&doc));
                decode::<ChaosSchedule>(&doc).map(|s| {
                    decode_problems.extend(schedule::check_schedule(&s));
                    LitmusObject::Schedule(Box::new(s))
                })
            }
            _ => decode::<ChaosResult>(&doc).map(|r| LitmusObject::Result(Box::new(r))),
        };
        let object = match object {
            Ok(object) => Some(object),
            Err(message) => {
                if problems.is_empty() && schema_errors.is_empty() {
                    problems.push(Problem::error("", message));
                }
                None
            }
        };
        if !name.is_empty() {
            report.object = Some(Located {
                file: file.to_string(),
                document: index,
                kind: kind.clone(),
                namespace: namespace.clone(),
                name: name.clone(),
                object,
            });
        }
        let mut schema_errors = schema_errors;
        if kind == "ChaosSchedule" {
            // The schedule checks say in words what the schema's pattern or type error means.
            schema_errors.retain(|s| {
                !decode_problems
                    .iter()
                    .any(|p| p.is_error() && same_or_nested(&p.field, &s.field))
            });
        }
        // A run-time check on a field the schema already refused would say the same thing twice.
        decode_problems.retain(|p| {
            !schema_errors
                .iter()
                .any(|s| same_or_nested(&s.field, &p.field) || same_or_nested(&p.field, &s.field))
        });
        problems.extend(schema_errors);
        problems.extend(decode_problems);
        problems.extend(pruned);
        report.problems = problems.into_iter().map(locate).collect();
        report
    }
}

/// Whether `inner` is `outer` or a field below it.
fn same_or_nested(outer: &str, inner: &str) -> bool {
    match inner.strip_prefix(outer) {
        Some(rest) => rest.is_empty() || rest.starts_with('.') || rest.starts_with('['),
        None => false,
    }
}

fn decode<T: serde::de::DeserializeOwned>(doc: &Value) -> Result<T, String> {
    serde_json::from_value(doc.clone()).map_err(|e| format!("cannot decode: {e}"))
}

/// Checks among the given objects: every experiment an engine names exists in the engine's
/// namespace (an experiment with errors of its own still counts as existing), and no object is
/// given twice. Returns `(index into objects, problem)`.
pub fn cross_check(objects: &[Option<&Located>]) -> Vec<(usize, Problem)> {
    let mut out = Vec::new();
    let mut experiments: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut seen: BTreeMap<(&str, &str, &str), &Located> = BTreeMap::new();
    for located in objects.iter().flatten() {
        if located.kind == "ChaosExperiment" {
            experiments
                .entry(located.name.as_str())
                .or_default()
                .push(located.namespace.as_str());
        }
    }
    for (i, located) in objects.iter().enumerate() {
        let Some(located) = located else { continue };
        let at = |p: Problem| {
            p.with_object(&located.kind, &located.namespace, &located.name)
                .at(&located.file, located.document)
        };
        let key = (
            located.kind.as_str(),
            located.namespace.as_str(),
            located.name.as_str(),
        );
        if let Some(first) = seen.get(&key) {
            if !located.name.ends_with('*') {
                out.push((
                    i,
                    at(Problem::warning(
                        "metadata.name",
                        format!(
                            "given twice (also {}:{}); the later one replaces the earlier",
                            first.file, first.document
                        ),
                    )),
                ));
            }
        } else {
            seen.insert(key, located);
        }
        let (listed, base) = match &located.object {
            Some(LitmusObject::Engine(engine)) => (engine.spec.experiments.clone(), "spec"),
            Some(LitmusObject::Schedule(schedule)) => (
                serde_json::from_value::<crate::api::ChaosEngineSpec>(
                    schedule.spec.engine_template_spec.clone(),
                )
                .map(|s| s.experiments)
                .unwrap_or_default(),
                "spec.engineTemplateSpec",
            ),
            _ => continue,
        };
        if let Some(LitmusObject::Engine(engine)) = &located.object
            && checks::too_many_experiments(engine)
        {
            // Refused as a whole (see check_engine); no line per missing experiment.
            continue;
        }
        for (j, experiment) in listed.iter().enumerate() {
            if experiment.name.is_empty() {
                continue;
            }
            let namespaces = experiments
                .get(experiment.name.as_str())
                .cloned()
                .unwrap_or_default();
            if namespaces.contains(&located.namespace.as_str()) {
                continue;
            }
            let field = join_field(&format!("{base}.experiments[{j}]"), "name");
            let message = match namespaces.first() {
                Some(other) => format!(
                    "ChaosExperiment {:?} is in namespace {other:?}, not in the engine's namespace {:?}: an engine and its experiments must be in the same namespace",
                    experiment.name, located.namespace
                ),
                None => format!(
                    "ChaosExperiment {:?} not found in namespace {:?} among the given documents",
                    experiment.name, located.namespace
                ),
            };
            out.push((i, at(Problem::error(field, message))));
        }
    }
    out
}
