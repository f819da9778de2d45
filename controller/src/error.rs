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
    /// An AWS call failed outside the convergence path (clean-up).
    #[error("{0}")]
    Aws(#[from] crate::aws::error::AwsError),
    /// Adding or removing the finalizer failed, or the wrapped reconcile did.
    #[error("{0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// Deletion waits until what holds data is emptied.
    #[error("deletion blocked: {0}")]
    DeletionBlocked(String),
}

impl Error {
    /// A short, bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::MissingField(..) => "missing_field",
            Error::Serde(_) => "serde",
            Error::Aws(_) => "aws",
            Error::Finalizer(_) => "finalizer",
            Error::DeletionBlocked(_) => "deletion_blocked",
        }
    }

    /// How long to wait before retrying. Conflicts clear at once; the rest back off.
    pub fn retry_after(&self) -> Duration {
        match self {
            Error::Kube(kube::Error::Api(status)) if status.code == 409 => Duration::from_secs(1),
            Error::Kube(_) => Duration::from_secs(15),
            Error::MissingField(..) | Error::Serde(_) => Duration::from_secs(300),
            Error::Aws(_) => Duration::from_secs(15),
            Error::DeletionBlocked(_) => Duration::from_secs(30),
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e) | kube::runtime::finalizer::Error::CleanupFailed(e) => {
                    e.retry_after()
                }
                _ => Duration::from_secs(5),
            },
        }
    }
}

/// Result of a reconcile step.
pub type Result<T, E = Error> = std::result::Result<T, E>;
