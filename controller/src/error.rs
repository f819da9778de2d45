//! The controller's one error type, classified so `error_policy` can back off sensibly.
use std::time::Duration;

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes API refused or failed a request.
    #[error("Kubernetes API error: {0}")]
    Kube(#[from] kube::Error),
    /// An object lacks something every stored object has (namespace, uid).
    #[error("object {0} is missing {1}")]
    MissingField(String, &'static str),
    /// Serialising a status or patch failed.
    #[error("serialisation error: {0}")]
    Serde(#[from] serde_json::Error),
}

impl Error {
    /// A short, bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::MissingField(..) => "missing_field",
            Error::Serde(_) => "serde",
        }
    }

    /// How long to wait before retrying. Conflicts clear at once; the rest back off.
    pub fn retry_after(&self) -> Duration {
        match self {
            Error::Kube(kube::Error::Api(status)) if status.code == 409 => Duration::from_secs(1),
            Error::Kube(_) => Duration::from_secs(15),
            Error::MissingField(..) | Error::Serde(_) => Duration::from_secs(300),
        }
    }
}

/// Result of a reconcile step.
pub type Result<T, E = Error> = std::result::Result<T, E>;
