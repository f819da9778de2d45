//! AWS failures, classified once in the adapters so the engine never sees SDK types.
use std::fmt;

/// How the controller should react to a failed AWS call. Classified by what AWS's error
/// code means, not by the HTTP status: a 400 is often a conflict or throttle that clears.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The thing asked for does not exist.
    NotFound,
    /// Throttled, a concurrent change, an operation in progress, or a 5xx with AWS's code
    /// after the SDK's own retries: back off and retry.
    Retryable,
    /// The request may or may not have taken effect: a timeout, a connection lost after the
    /// request was sent, an unreadable answer, a 5xx without a code. Retried soon; a
    /// non-idempotent create must first look for what it may already have made.
    OutcomeUnknown,
    /// A create found the name taken in this account (`AlreadyExists`, `EntityAlreadyExists`,
    /// `ResourceAlreadyExistsException`, `BucketAlreadyOwnedByYou`, ...): often our own earlier
    /// create whose answer was lost. The adapter or the next observation decides whether
    /// it is ours; never a reason to stall by itself.
    AlreadyExists,
    /// The caller lacks permission: stall, naming the action and resource.
    AccessDenied,
    /// AWS refused the request as invalid: stall with AWS's message.
    Invalid,
    /// The name is taken by someone else (e.g. a bucket in another account).
    Conflict,
    /// Anything else: retry.
    Other,
}

/// Codes meaning "not found".
const NOT_FOUND: &[&str] = &[
    "NoSuchBucket",
    "NotFoundException",
    "ResourceNotFoundException",
    "NoSuchKey",
    "NoSuchEntity",
    "TableNotFoundException",
    "TrailNotFoundException",
    // SNS.
    "NotFound",
];

/// Codes meaning the caller may not do this.
const ACCESS_DENIED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
];

/// Codes meaning "a resource with this name already exists in your account".
const ALREADY_EXISTS: &[&str] = &[
    "AlreadyExistsException",
    "EntityAlreadyExists",
    "ResourceAlreadyExistsException",
    "BucketAlreadyOwnedByYou",
    "TrailAlreadyExistsException",
    "TableAlreadyExistsException",
];

/// Codes that clear by themselves: throttling, concurrent changes, operations in progress,
/// service-side failures. Several arrive as HTTP 400.
const TRANSIENT: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
    "BandwidthLimitExceeded",
    "ResourceInUseException",
    "ResourceConflictException",
    "ConflictException",
    "ConcurrentModification",
    "ConcurrentModificationException",
    "OperationAborted",
    "TooManyUpdates",
    "PriorRequestNotComplete",
    "TransactionConflictException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "ServiceFailure",
    "ServiceException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "KMSInternalException",
    "DependencyTimeoutException",
    "RequestTimeout",
    "RequestTimeoutException",
    // CloudTrail cannot assume a delivery role, or see its log group, that IAM and
    // CloudWatch Logs have not propagated yet; both are generated, never user input.
    "InvalidCloudWatchLogsRoleArnException",
    "InvalidCloudWatchLogsLogGroupArnException",
];

/// Codes that say the request itself is wrong: only a spec change helps.
fn is_invalid_code(code: &str) -> bool {
    code.starts_with("Invalid")
        || code.starts_with("Malformed")
        || code.starts_with("IllegalLocationConstraint")
        || matches!(code, "ValidationException" | "ValidationError" | "UnsupportedArgument" | "KeyTooLongError")
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
            (Some(c), _) if NOT_FOUND.contains(&c) => ErrorKind::NotFound,
            (Some(c), _) if ACCESS_DENIED.contains(&c) => ErrorKind::AccessDenied,
            (Some("BucketAlreadyExists"), _) => ErrorKind::Conflict,
            (Some(c), _) if ALREADY_EXISTS.contains(&c) => ErrorKind::AlreadyExists,
            (Some(c), _) if TRANSIENT.contains(&c) => ErrorKind::Retryable,
            (Some(c), _) if is_invalid_code(c) => ErrorKind::Invalid,
            // A 5xx without AWS's code came from something in between (a proxy, a load
            // balancer): whether the request reached AWS is unknown.
            (None, Some(s)) if s >= 500 => ErrorKind::OutcomeUnknown,
            (_, Some(s)) if s >= 500 || s == 429 => ErrorKind::Retryable,
            (_, Some(403)) => ErrorKind::AccessDenied,
            (_, Some(404)) => ErrorKind::NotFound,
            // Any other code, 400 included: retried with back-off rather than stalled on a
            // guess; a code that means bad input is named above.
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

    /// True for [`ErrorKind::AlreadyExists`].
    pub fn is_already_exists(&self) -> bool {
        self.kind == ErrorKind::AlreadyExists
    }

    /// True when the request may have taken effect although it failed.
    pub fn outcome_unknown(&self) -> bool {
        self.kind == ErrorKind::OutcomeUnknown
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
    use aws_smithy_runtime_api::client::result::SdkError;
    use aws_smithy_types::error::metadata::ProvideErrorMetadata;
    let status = err.raw_response().map(|r| r.status().as_u16());
    let message = err.message().map_or_else(|| describe_sdk_error(err, status), str::to_owned);
    let mut e = AwsError::classify(service, operation, resource, err.code(), Some(&message), status);
    // No answer, or none that could be read: the request may have been carried out.
    if matches!(err, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)) {
        e.kind = ErrorKind::OutcomeUnknown;
    }
    e
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
        assert_eq!(kind(Some("InternalError"), Some(500)), ErrorKind::Retryable);
        assert_eq!(kind(None, None), ErrorKind::Other);
    }

    #[test]
    fn a_400_is_classified_by_what_its_code_means() {
        for code in ["AlreadyExistsException", "EntityAlreadyExists", "ResourceAlreadyExistsException"] {
            assert_eq!(kind(Some(code), Some(400)), ErrorKind::AlreadyExists, "{code}");
        }
        assert_eq!(kind(Some("BucketAlreadyOwnedByYou"), Some(409)), ErrorKind::AlreadyExists);
        assert_eq!(kind(Some("TrailAlreadyExistsException"), Some(400)), ErrorKind::AlreadyExists);
        for code in [
            "ResourceInUseException",
            "ConflictException",
            "ResourceConflictException",
            "OperationAborted",
            "TooManyUpdates",
            "ConcurrentModification",
            "ConcurrentModificationException",
            "ThrottlingException",
            "Throttling",
            "LimitExceededException",
        ] {
            assert_eq!(kind(Some(code), Some(400)), ErrorKind::Retryable, "{code}");
        }
        assert_eq!(kind(Some("InvalidCloudWatchLogsRoleArnException"), Some(400)), ErrorKind::Retryable, "propagation");
        for code in ["InvalidParameterValueException", "ValidationException", "MalformedPolicyDocument"] {
            assert_eq!(kind(Some(code), Some(400)), ErrorKind::Invalid, "{code}");
        }
        assert_eq!(kind(Some("SomethingNew"), Some(400)), ErrorKind::Other, "an unknown 400 is retried, not stalled");
    }

    #[test]
    fn a_5xx_without_a_code_may_have_taken_effect() {
        assert_eq!(kind(None, Some(502)), ErrorKind::OutcomeUnknown);
        assert_eq!(kind(None, Some(504)), ErrorKind::OutcomeUnknown);
        assert_eq!(kind(Some("ServiceUnavailable"), Some(503)), ErrorKind::Retryable);
    }
}
