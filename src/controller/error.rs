//! Errors of the controller shell, each with a bounded category for metrics and logs.
use thiserror::Error;

/// Something the shell could not do; the engine is retried with a per-engine backoff.
#[derive(Debug, Error)]
pub enum Error {
    #[error("kubernetes API call failed while {action}: {source}")]
    Kube {
        action: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("Job {job} already exists and is not owned by this engine")]
    JobConflict { job: String },
    #[error("the engine object is malformed: {0}")]
    Malformed(String),
    #[error("serialization failed: {0}")]
    Serialize(#[from] serde_json::Error),
    #[error("caches are not ready: {0}")]
    CacheNotReady(String),
    #[error("registering metrics failed: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("write refused: {0}")]
    Fenced(#[from] crate::fence::FenceError),
}

impl Error {
    /// A short fixed string per kind of failure (no object names: bounded label cardinality).
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube {
                source: kube::Error::Api(ae),
                ..
            } if ae.code == 409 => "conflict",
            Error::Kube {
                source: kube::Error::Api(ae),
                ..
            } if ae.code == 404 => "not_found",
            Error::Kube {
                source: kube::Error::Api(ae),
                ..
            } if ae.code == 403 => "forbidden",
            Error::Kube {
                source: kube::Error::Api(ae),
                ..
            } if ae.code == 422 => "invalid",
            Error::Kube { .. } => "api",
            Error::JobConflict { .. } => "job_conflict",
            Error::Malformed(_) => "malformed",
            Error::Serialize(_) => "serialize",
            Error::CacheNotReady(_) => "cache",
            Error::Metrics(_) => "metrics",
            Error::Fenced(_) => "fenced",
        }
    }
}

/// Attaches what we were doing to a kube error.
pub trait KubeContext<T> {
    fn during(self, action: &'static str) -> Result<T, Error>;
}

impl<T> KubeContext<T> for Result<T, kube::Error> {
    fn during(self, action: &'static str) -> Result<T, Error> {
        self.map_err(|source| Error::Kube { action, source })
    }
}

/// Whether a kube error is an API status with this HTTP code.
pub fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(ae) if ae.code == code)
}
