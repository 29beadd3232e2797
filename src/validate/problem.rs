//! What `validate` reports: one [`Problem`] per finding, with where it is and how bad it is.
use std::fmt;

use serde::Serialize;

/// How bad a finding is. Only errors make `validate` exit non-zero.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The apiserver or the controller would refuse or skip this.
    Error,
    /// Accepted, but probably not what was meant (e.g. a field the apiserver drops).
    Warning,
    /// Information only (e.g. a document of another kind was skipped).
    Note,
}

impl Severity {
    /// `error`, `warning` or `note`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

/// One finding about one document (or about a whole file when `document` is 0).
///
/// The pure checks ([`super::check_engine`], [`super::check_experiment`]) fill the object identity,
/// the field and the message; the caller that knows where the object came from fills `file` and
/// `document`.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    /// File path as given (`-` for stdin); empty when not known.
    pub file: String,
    /// 1-based index of the YAML document in the file; 0 means the whole file.
    pub document: usize,
    /// `kind` of the object; empty when not known.
    pub kind: String,
    /// Namespace of the object (`default` when the document sets none); empty when not known.
    pub namespace: String,
    /// Name of the object; empty when not known.
    pub name: String,
    /// Field path like `spec.experiments[1].name`; empty for the document as a whole.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    /// A problem with no location yet.
    pub fn new(severity: Severity, field: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            severity,
            file: String::new(),
            document: 0,
            kind: String::new(),
            namespace: String::new(),
            name: String::new(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// An error about `field`.
    pub fn error(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, field, message)
    }

    /// A warning about `field`.
    pub fn warning(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, field, message)
    }

    /// A note about `field`.
    pub fn note(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(Severity::Note, field, message)
    }

    /// Sets the object identity.
    pub fn with_object(mut self, kind: &str, namespace: &str, name: &str) -> Self {
        self.kind = kind.to_string();
        self.namespace = namespace.to_string();
        self.name = name.to_string();
        self
    }

    /// Sets the location.
    pub fn at(mut self, file: &str, document: usize) -> Self {
        self.file = file.to_string();
        self.document = document;
        self
    }

    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Whether the message starts with its own field (`spec.chaosServiceAccount must be set`): it
    /// is then printed without the field in front, which would only repeat it.
    pub fn names_its_field(&self) -> bool {
        !self.field.is_empty()
            && self
                .message
                .strip_prefix(self.field.as_str())
                .is_some_and(|rest| rest.starts_with(' '))
    }
}

/// `PATH:DOC kind/namespace/name: field: message`; warnings and notes say so before the message.
/// Unknown parts print as `-`; a message that names its field ([`Problem::names_its_field`])
/// stands in place of `field: message`.
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let or_dash = |s: &str| {
            if s.is_empty() {
                "-".to_string()
            } else {
                s.to_string()
            }
        };
        let object = if self.kind.is_empty() && self.name.is_empty() {
            "-".to_string()
        } else {
            format!(
                "{}/{}/{}",
                or_dash(&self.kind),
                or_dash(&self.namespace),
                or_dash(&self.name)
            )
        };
        let field = if self.field.is_empty() {
            "(document)"
        } else {
            self.field.as_str()
        };
        write!(f, "{}:{} {}: ", or_dash(&self.file), self.document, object)?;
        if !self.names_its_field() {
            write!(f, "{field}: ")?;
        }
        match self.severity {
            Severity::Error => {}
            other => write!(f, "{}: ", other.as_str())?,
        }
        f.write_str(&self.message)
    }
}

/// Appends `.name` or `[i]` to a field path.
pub(crate) fn join_field(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_string()
    } else {
        format!("{base}.{key}")
    }
}

pub(crate) fn index_field(base: &str, index: usize) -> String {
    format!("{base}[{index}]")
}
