//! AWS failures, classified once in the adapters so the engine never sees SDK types.
use std::fmt;

/// How the controller should react to a failed AWS call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The thing asked for does not exist.
    NotFound,
    /// Throttled or a 5xx after the SDK's own retries: back off and retry.
    Retryable,
    /// The caller lacks permission: stall, naming the action and resource.
    AccessDenied,
    /// AWS refused the request as invalid: stall with AWS's message.
    Invalid,
    /// The name is taken by someone else (e.g. a bucket in another account).
    Conflict,
    /// Anything else: retry.
    Other,
}

/// A failed AWS call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsError {
    pub kind: ErrorKind,
    /// e.g. `s3`.
    pub service: &'static str,
    /// e.g. `PutBucketPolicy`.
    pub operation: &'static str,
    /// The resource the call was about (bucket name, key id, table name).
    pub resource: String,
    /// AWS's error code, e.g. `AccessDenied`.
    pub code: Option<String>,
    /// AWS's message.
    pub message: String,
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{} on {} failed", self.service, self.operation, self.resource)?;
        if let Some(code) = &self.code {
            write!(f, " ({code})")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for AwsError {}

impl AwsError {
    /// Builds an error from an SDK error's code and message, classifying it.
    pub fn classify(
        service: &'static str,
        operation: &'static str,
        resource: impl Into<String>,
        code: Option<&str>,
        message: Option<&str>,
        http_status: Option<u16>,
    ) -> Self {
        let kind = match (code, http_status) {
            (
                Some(
                    "NoSuchBucket"
                    | "NotFoundException"
                    | "ResourceNotFoundException"
                    | "NoSuchKey"
                    | "NoSuchEntity"
                    | "TableNotFoundException"
                    | "TrailNotFoundException",
                ),
                _,
            ) => ErrorKind::NotFound,
            (
                Some(
                    "AccessDenied"
                    | "AccessDeniedException"
                    | "UnauthorizedOperation"
                    | "UnrecognizedClientException"
                    | "InvalidClientTokenId"
                    | "ExpiredToken",
                ),
                _,
            ) => ErrorKind::AccessDenied,
            (Some("BucketAlreadyExists"), _) => ErrorKind::Conflict,
            (
                Some(
                    "Throttling"
                    | "ThrottlingException"
                    | "ThrottledException"
                    | "TooManyRequestsException"
                    | "SlowDown"
                    | "RequestLimitExceeded"
                    | "ProvisionedThroughputExceededException"
                    | "LimitExceededException"
                    | "ResourceInUseException"
                    | "OperationAborted"
                    | "InternalError"
                    | "ServiceUnavailable",
                ),
                _,
            ) => ErrorKind::Retryable,
            (_, Some(s)) if s >= 500 || s == 429 => ErrorKind::Retryable,
            (_, Some(403)) => ErrorKind::AccessDenied,
            (_, Some(404)) => ErrorKind::NotFound,
            (Some(_), Some(400)) => ErrorKind::Invalid,
            (Some(c), _) if c.starts_with("Invalid") || c.starts_with("Malformed") || c == "ValidationException" => {
                ErrorKind::Invalid
            }
            _ => ErrorKind::Other,
        };
        Self {
            kind,
            service,
            operation,
            resource: resource.into(),
            code: code.map(str::to_string),
            message: message.unwrap_or_default().to_string(),
        }
    }

    /// True for [`ErrorKind::NotFound`].
    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }
}

/// Result of an AWS call.
pub type AwsResult<T> = Result<T, AwsError>;

/// Classifies a failed SDK call: AWS's code and message when it sent them, a short
/// description of the failure otherwise.
pub(crate) fn from_sdk<E>(
    service: &'static str,
    operation: &'static str,
    resource: &str,
    err: &aws_smithy_runtime_api::client::result::SdkError<
        E,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
) -> AwsError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_smithy_types::error::metadata::ProvideErrorMetadata;
    let status = err.raw_response().map(|r| r.status().as_u16());
    let message = err.message().map_or_else(|| describe_sdk_error(err, status), str::to_owned);
    AwsError::classify(service, operation, resource, err.code(), Some(&message), status)
}

/// A short message for an SDK error without one of AWS's own: what kind of failure it was
/// and the HTTP status, never the raw response (it can be long, and headers and bodies do
/// not belong in conditions or events).
pub(crate) fn describe_sdk_error<E, R>(
    err: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
    status: Option<u16>,
) -> String
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    use aws_smithy_types::error::display::DisplayErrorContext;
    let status = status.map(|s| format!(" (HTTP {s})")).unwrap_or_default();
    // The source chain of a failure that happened on our side (build, send, timeout) is
    // short and useful; a service error's chain would carry the raw response.
    let cause = || std::error::Error::source(err).map(|c| format!(": {}", DisplayErrorContext(c))).unwrap_or_default();
    match err {
        SdkError::ConstructionFailure(_) => format!("the request could not be built{}", cause()),
        SdkError::TimeoutError(_) => "the request timed out".to_string(),
        SdkError::DispatchFailure(_) => format!("the request could not be sent{}", cause()),
        SdkError::ResponseError(_) => format!("the response could not be read{status}"),
        SdkError::ServiceError(_) => format!("the service answered with an error{status}"),
        _ => format!("the request failed{status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(code: Option<&str>, status: Option<u16>) -> ErrorKind {
        AwsError::classify("s3", "GetBucketPolicy", "b", code, None, status).kind
    }

    #[test]
    fn errors_are_classified_by_code_then_status() {
        assert_eq!(kind(Some("NoSuchBucket"), Some(404)), ErrorKind::NotFound);
        assert_eq!(kind(Some("AccessDenied"), Some(403)), ErrorKind::AccessDenied);
        assert_eq!(kind(Some("SlowDown"), Some(503)), ErrorKind::Retryable);
        assert_eq!(kind(Some("BucketAlreadyExists"), Some(409)), ErrorKind::Conflict);
        assert_eq!(kind(Some("MalformedPolicy"), Some(400)), ErrorKind::Invalid);
        assert_eq!(kind(None, Some(500)), ErrorKind::Retryable);
        assert_eq!(kind(None, None), ErrorKind::Other);
    }
}
