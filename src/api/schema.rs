//! Schema helpers for the CRDs: the places where Litmus's CRDs keep unknown fields, and the
//! structural forms Kubernetes requires (a bare `{}` schema is not structural).
use schemars::{Schema, SchemaGenerator, json_schema};

/// An object whose content is kept as-is by the apiserver (`x-kubernetes-preserve-unknown-fields`).
pub fn free_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// Adds `x-kubernetes-preserve-unknown-fields: true` to a derived object schema, for the nodes where
/// Litmus's CRDs preserve unknown keys (so legacy and future fields survive a round trip).
pub fn preserve_unknown(schema: &mut Schema) {
    schema.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
}
