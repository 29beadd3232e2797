//! Bytes → YAML documents → JSON values, refusing (never panicking on) anything odd: too large,
//! not UTF-8, too deep, duplicate keys, keys that are not scalars, numbers JSON cannot hold.
use serde::Deserialize;
use serde_json::{Map, Number, Value};
use thiserror::Error;

/// Largest input accepted, in bytes (16 MiB).
pub const MAX_INPUT_BYTES: usize = 16 * 1024 * 1024;
/// Deepest nesting of mappings and sequences accepted.
pub const MAX_DEPTH: usize = 64;
/// Most documents read from one input.
pub const MAX_DOCUMENTS: usize = 10_000;

/// Why an input, or one document of it, cannot be read.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ParseError {
    #[error("input is {size} bytes, more than the limit of {MAX_INPUT_BYTES} bytes")]
    TooLarge { size: usize },
    #[error("input is not UTF-8 text (invalid byte at offset {offset})")]
    NotUtf8 { offset: usize },
    #[error("invalid YAML: {0}")]
    Yaml(String),
    #[error("nesting deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("more than {MAX_DOCUMENTS} documents")]
    TooManyDocuments,
    #[error("mapping key is not a string, number or boolean")]
    UnsupportedKey,
    #[error("duplicate key {key:?}{position}")]
    DuplicateKey {
        /// Field path of the mapping holding the key (empty at the top level).
        parent: String,
        key: String,
        /// ` at line L column C` when known.
        position: String,
    },
    #[error("number {0} cannot be represented in JSON")]
    NonFiniteNumber(String),
}

/// One YAML document of an input: its 1-based index and its content, or why it cannot be read.
#[derive(Debug, Clone, PartialEq)]
pub struct RawDocument {
    pub index: usize,
    pub content: Result<Value, ParseError>,
}

/// Splits an input into its documents. Empty documents (only comments, or a trailing `---`) are
/// left out. An error that concerns the whole input (size, encoding) is returned as `Err`; a YAML
/// error ends the stream with one failed document (the parser cannot resynchronise after it).
pub fn parse_documents(bytes: &[u8]) -> Result<Vec<RawDocument>, ParseError> {
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(ParseError::TooLarge { size: bytes.len() });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| ParseError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for (i, document) in serde_norway::Deserializer::from_str(text).enumerate() {
        let index = i + 1;
        if index > MAX_DOCUMENTS {
            out.push(RawDocument {
                index,
                content: Err(ParseError::TooManyDocuments),
            });
            break;
        }
        match serde_norway::Value::deserialize(document) {
            Ok(serde_norway::Value::Null) => {}
            Ok(yaml) => out.push(RawDocument {
                index,
                content: yaml_to_json(&yaml, 0),
            }),
            Err(e) => {
                out.push(RawDocument {
                    index,
                    content: Err(yaml_error(&e)),
                });
                break;
            }
        }
    }
    Ok(out)
}

fn yaml_error(e: &serde_norway::Error) -> ParseError {
    let text = e.to_string();
    if text.contains("recursion limit exceeded") {
        return ParseError::TooDeep;
    }
    // serde_norway: `spec: duplicate entry with key "name" at line 3 column 1`
    if let Some((parent, rest)) = text.split_once("duplicate entry with key ") {
        let (key, position) = match rest.split_once(" at line ") {
            Some((key, pos)) => (key, format!(" at line {pos}")),
            None => (rest, String::new()),
        };
        let parent = parent.trim_end().trim_end_matches(':').trim();
        return ParseError::DuplicateKey {
            parent: if parent == "." {
                String::new()
            } else {
                parent.to_string()
            },
            key: key.trim_matches('"').to_string(),
            position,
        };
    }
    ParseError::Yaml(text)
}

/// Converts a YAML value to JSON the way the Kubernetes YAML reader does: scalar keys become
/// strings, tags are dropped, non-finite floats are refused.
fn yaml_to_json(yaml: &serde_norway::Value, depth: usize) -> Result<Value, ParseError> {
    use serde_norway::Value as Y;
    if depth > MAX_DEPTH {
        return Err(ParseError::TooDeep);
    }
    Ok(match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(*b),
        Y::Number(n) => number_to_json(n)?,
        Y::String(s) => Value::String(s.clone()),
        Y::Sequence(items) => Value::Array(
            items
                .iter()
                .map(|item| yaml_to_json(item, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(mapping) => {
            let mut map = Map::new();
            for (key, value) in mapping {
                let key = match key {
                    Y::String(s) => s.clone(),
                    Y::Bool(b) => b.to_string(),
                    Y::Number(n) => n.to_string(),
                    _ => return Err(ParseError::UnsupportedKey),
                };
                let value = yaml_to_json(value, depth + 1)?;
                if map.contains_key(&key) {
                    return Err(ParseError::DuplicateKey {
                        parent: String::new(),
                        key,
                        position: String::new(),
                    });
                }
                map.insert(key, value);
            }
            Value::Object(map)
        }
        Y::Tagged(tagged) => yaml_to_json(&tagged.value, depth + 1)?,
    })
}

fn number_to_json(n: &serde_norway::Number) -> Result<Value, ParseError> {
    if let Some(i) = n.as_i64() {
        return Ok(Value::Number(i.into()));
    }
    if let Some(u) = n.as_u64() {
        return Ok(Value::Number(u.into()));
    }
    match n.as_f64().and_then(Number::from_f64) {
        Some(f) => Ok(Value::Number(f)),
        None => Err(ParseError::NonFiniteNumber(n.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contents(text: &str) -> Vec<Result<Value, ParseError>> {
        parse_documents(text.as_bytes())
            .unwrap()
            .into_iter()
            .map(|d| d.content)
            .collect()
    }

    #[test]
    fn splits_documents_and_skips_empty_ones() {
        let docs =
            parse_documents(b"---\na: 1\n---\n# only a comment\n---\nb: [x]\n---\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].index, 1);
        assert_eq!(docs[1].index, 3);
        assert_eq!(docs[1].content, Ok(serde_json::json!({"b": ["x"]})));
    }

    #[test]
    fn empty_input_has_no_documents() {
        assert!(parse_documents(b"").unwrap().is_empty());
        assert!(parse_documents(b"   \n# c\n").unwrap().is_empty());
    }

    #[test]
    fn refuses_non_utf8_and_oversized_input() {
        assert_eq!(
            parse_documents(b"a: \xff\xfe"),
            Err(ParseError::NotUtf8 { offset: 3 })
        );
        let big = vec![b'a'; MAX_INPUT_BYTES + 1];
        assert!(matches!(
            parse_documents(&big),
            Err(ParseError::TooLarge { .. })
        ));
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let docs = contents("a: 1\nb: 2\na: 3\n");
        assert!(
            matches!(&docs[0], Err(ParseError::DuplicateKey { parent, key, .. }) if parent.is_empty() && key == "a"),
            "{docs:?}"
        );
        let docs = contents("spec:\n  x: 1\n  x: 2\n");
        assert!(
            matches!(&docs[0], Err(ParseError::DuplicateKey { parent, key, .. }) if parent == "spec" && key == "x"),
            "{docs:?}"
        );
        // Equal after the string conversion Kubernetes does.
        let docs = contents("1: x\n\"1\": y\n");
        assert_eq!(
            docs,
            vec![Err(ParseError::DuplicateKey {
                parent: String::new(),
                key: "1".into(),
                position: String::new()
            })]
        );
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        let docs = contents(&deep);
        assert_eq!(docs, vec![Err(ParseError::TooDeep)]);
        let deep = format!(
            "{}1{}",
            "[".repeat(MAX_DEPTH + 2),
            "]".repeat(MAX_DEPTH + 2)
        );
        assert_eq!(contents(&deep), vec![Err(ParseError::TooDeep)]);
    }

    #[test]
    fn scalar_keys_become_strings_and_tags_are_dropped() {
        let docs = contents("1: a\ntrue: b\nc: !custom d\n");
        assert_eq!(
            docs,
            vec![Ok(serde_json::json!({"1": "a", "true": "b", "c": "d"}))]
        );
    }

    #[test]
    fn non_finite_numbers_and_complex_keys_are_errors() {
        assert!(matches!(
            contents("a: .nan\n")[0],
            Err(ParseError::NonFiniteNumber(_))
        ));
        assert_eq!(
            contents("? [a]\n: b\n"),
            vec![Err(ParseError::UnsupportedKey)]
        );
    }

    #[test]
    fn syntax_error_ends_the_stream() {
        let docs = parse_documents(b"a: 1\n---\nb: [\n---\nc: 1\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert!(matches!(docs[1].content, Err(ParseError::Yaml(_))));
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let docs = contents(&text);
        assert!(matches!(docs[0], Err(ParseError::Yaml(_))), "{docs:?}");
    }
}
