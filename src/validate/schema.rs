//! The CRD schemas as the apiserver applies them: the generated `openAPIV3Schema`s, with the
//! Kubernetes extensions (`nullable`, `x-kubernetes-int-or-string`,
//! `x-kubernetes-preserve-unknown-fields`) turned into what they mean, checked with `jsonschema`.
use serde_json::{Map, Value};
use thiserror::Error;

use super::problem::{Problem, index_field, join_field};

/// The CRD schemas could not be turned into validators (a bug in the generated CRDs).
#[derive(Debug, Error)]
pub enum SchemaError {
    #[error("the {kind} CRD has no openAPIV3Schema for v1alpha1")]
    Missing { kind: String },
    #[error("the {kind} CRD schema cannot be serialized: {source}")]
    Serialize {
        kind: String,
        source: serde_json::Error,
    },
    #[error("the {kind} CRD schema is not a valid JSON schema: {message}")]
    Compile { kind: String, message: String },
}

/// The schema of one kind: the CRD's own (for pruning) and the compiled validator.
pub struct KindSchema {
    pub kind: String,
    /// `openAPIV3Schema` as in the CRD.
    pub openapi: Value,
    validator: jsonschema::Validator,
}

/// The schemas of ChaosEngine, ChaosExperiment and ChaosResult.
pub struct CrdSchemas {
    kinds: Vec<KindSchema>,
}

impl CrdSchemas {
    /// Builds the validators from [`crate::api::all_crds`].
    pub fn new() -> Result<Self, SchemaError> {
        let mut kinds = Vec::new();
        for crd in crate::api::all_crds() {
            let kind = crd.spec.names.kind.clone();
            let props = crd
                .spec
                .versions
                .iter()
                .find(|v| v.name == crate::api::VERSION)
                .and_then(|v| v.schema.as_ref())
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .ok_or_else(|| SchemaError::Missing { kind: kind.clone() })?;
            let openapi = serde_json::to_value(props).map_err(|source| SchemaError::Serialize {
                kind: kind.clone(),
                source,
            })?;
            let json_schema = to_json_schema(&openapi);
            let validator = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft7)
                .should_validate_formats(false)
                .build(&json_schema)
                .map_err(|e| SchemaError::Compile {
                    kind: kind.clone(),
                    message: e.to_string(),
                })?;
            kinds.push(KindSchema {
                kind,
                openapi,
                validator,
            });
        }
        Ok(CrdSchemas { kinds })
    }

    /// The schema of `kind`, if it is one of ours.
    pub fn get(&self, kind: &str) -> Option<&KindSchema> {
        self.kinds.iter().find(|k| k.kind == kind)
    }
}

impl KindSchema {
    /// Schema errors of a document (after [`prune`]), one problem per violation.
    pub fn validate(&self, doc: &Value) -> Vec<Problem> {
        let mut out: Vec<Problem> = Vec::new();
        for error in self.validator.iter_errors(doc) {
            let segments: Vec<String> = error
                .instance_path()
                .segments()
                .map(|s| match s {
                    jsonschema::paths::LocationSegment::Property(p) => p.to_string(),
                    jsonschema::paths::LocationSegment::Index(i) => format!("[{i}]"),
                })
                .collect();
            let mut field = String::new();
            for s in &segments {
                if s.starts_with('[') {
                    field.push_str(s);
                } else {
                    field = join_field(&field, s);
                }
            }
            let schema_path: Vec<String> = error
                .schema_path()
                .segments()
                .map(|s| s.to_string())
                .collect();
            let (field, message) = describe(error.kind(), field, &schema_path, &self.openapi);
            let problem = Problem::error(field, message);
            if !out.contains(&problem) {
                out.push(problem);
            }
        }
        out
    }
}

/// A short message for one schema violation (never the offending value in full: it may be huge).
fn describe(
    kind: &jsonschema::error::ValidationErrorKind,
    field: String,
    schema_path: &[String],
    schema: &Value,
) -> (String, String) {
    use jsonschema::error::{TypeKind, ValidationErrorKind as K};
    match kind {
        K::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            (join_field(&field, name), "required field is missing".into())
        }
        K::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => t.to_string(),
                TypeKind::Multiple(set) => set
                    .iter()
                    .map(|t| t.to_string())
                    .filter(|t| t != "null")
                    .collect::<Vec<_>>()
                    .join(" or "),
            };
            (field, format!("must be of type {expected}"))
        }
        K::Pattern { pattern } => (field, format!("must match {pattern}")),
        K::MinLength { .. } => (field, "must not be empty".into()),
        K::Minimum { limit } => (field, format!("must be at least {limit}")),
        K::Maximum { limit } => (field, format!("must be at most {limit}")),
        K::OneOfNotValid { .. } | K::OneOfMultipleValid { .. } => {
            let choices = one_of_choices(schema_path, schema);
            let message = if choices.is_empty() {
                "must match exactly one of the allowed shapes".to_string()
            } else {
                format!("must set exactly one of {}", choices.join(", "))
            };
            (field, message)
        }
        K::AnyOf { .. } => (field, "must be an integer or a string".into()),
        K::Enum { options } => (field, format!("must be one of {options}")),
        other => (field, format!("violates the {} rule", other.keyword())),
    }
}

/// For a `oneOf` of `required` alternatives (our selectors), the property names.
fn one_of_choices(schema_path: &[String], schema: &Value) -> Vec<String> {
    let mut node = schema;
    for segment in schema_path {
        node = match node {
            Value::Object(map) => match map.get(segment) {
                Some(n) => n,
                None => return Vec::new(),
            },
            Value::Array(items) => match segment.parse::<usize>().ok().and_then(|i| items.get(i)) {
                Some(n) => n,
                None => return Vec::new(),
            },
            _ => return Vec::new(),
        };
    }
    node.as_array()
        .map(|alternatives| {
            alternatives
                .iter()
                .filter_map(|a| a.get("required").and_then(Value::as_array))
                .flat_map(|r| r.iter().filter_map(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Rewrites a CRD `openAPIV3Schema` into a plain JSON schema with the apiserver's meaning.
pub fn to_json_schema(openapi: &Value) -> Value {
    match openapi {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, value) in map {
                let converted = match key.as_str() {
                    "properties" | "patternProperties" | "definitions" => match value {
                        Value::Object(props) => Value::Object(
                            props
                                .iter()
                                .map(|(k, v)| (k.clone(), to_json_schema(v)))
                                .collect(),
                        ),
                        other => other.clone(),
                    },
                    "items" | "additionalProperties" | "not" | "allOf" | "anyOf" | "oneOf" => {
                        match value {
                            Value::Array(items) => {
                                Value::Array(items.iter().map(to_json_schema).collect())
                            }
                            other => to_json_schema(other),
                        }
                    }
                    // Examples and defaults are not constraints.
                    "default" | "example" => continue,
                    _ => value.clone(),
                };
                out.insert(key.clone(), converted);
            }
            if flag(map, "x-kubernetes-int-or-string") {
                out.remove("type");
                out.insert(
                    "anyOf".into(),
                    serde_json::json!([{"type": "integer"}, {"type": "string"}]),
                );
                if flag(map, "nullable") {
                    out.insert(
                        "anyOf".into(),
                        serde_json::json!([{"type": "integer"}, {"type": "string"}, {"type": "null"}]),
                    );
                }
            } else if flag(map, "nullable")
                && let Some(Value::String(t)) = map.get("type")
            {
                out.insert("type".into(), serde_json::json!([t, "null"]));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn flag(map: &Map<String, Value>, key: &str) -> bool {
    map.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// Does what the apiserver does before validation: drops `null` values of fields that are not
/// `nullable`, and reports (as warnings) the fields it would prune because the schema does not
/// know them. The root's `apiVersion`, `kind` and `metadata` are always known.
pub fn prune(doc: &mut Value, schema: &Value) -> Vec<Problem> {
    let mut out = Vec::new();
    if let Value::Object(map) = doc {
        for key in ["apiVersion", "kind", "metadata"] {
            if map.get(key).is_some_and(Value::is_null) {
                map.remove(key);
            }
        }
        let known = ["apiVersion", "kind", "metadata"];
        prune_node(map, schema, "", &known, &mut out);
    }
    out
}

fn prune_node(
    map: &mut Map<String, Value>,
    schema: &Value,
    path: &str,
    always_known: &[&str],
    out: &mut Vec<Problem>,
) {
    let properties = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    let preserve = schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let keys: Vec<String> = map.keys().cloned().collect();
    for key in keys {
        let field = join_field(path, &key);
        let child_schema = properties.and_then(|p| p.get(&key)).or(additional);
        match child_schema {
            Some(child) => {
                let nullable = child
                    .get("nullable")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                if map.get(&key).is_some_and(Value::is_null) && !nullable {
                    map.remove(&key);
                    continue;
                }
                if let Some(value) = map.get_mut(&key) {
                    prune_value(value, child, &field, out);
                }
            }
            None => {
                if always_known.contains(&key.as_str())
                    || preserve
                    || (properties.is_none() && additional.is_none())
                {
                    continue;
                }
                out.push(Problem::warning(
                    field,
                    "unknown field, the apiserver drops it",
                ));
            }
        }
    }
}

fn prune_value(value: &mut Value, schema: &Value, path: &str, out: &mut Vec<Problem>) {
    match value {
        Value::Object(map) => prune_node(map, schema, path, &[], out),
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items").filter(|i| i.is_object()) {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_value(item, item_schema, &index_field(path, i), out);
                }
            }
        }
        _ => {}
    }
}
