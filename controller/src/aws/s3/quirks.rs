//! Answers of S3 emulators that the SDK rejects although they carry a usable result: read
//! leniently here so the adapter stays on the SDK's path for everything else.
use aws_sdk_s3::error::SdkError;

/// The body of a 200 answer the SDK rejected because its XML root is `root`: moto 5.2 names
/// some roots after the operation (`GetBucketVersioningResponse`) instead of AWS's
/// (`VersioningConfiguration`). `None` for every other failure, which stays an error.
fn misnamed_root_body<'a, E>(err: &'a SdkError<E>, root: &str) -> Option<&'a str> {
    let response = err.raw_response().filter(|r| r.status().as_u16() == 200)?;
    let body = std::str::from_utf8(response.body().bytes()?).ok()?;
    body.contains(&format!("<{root}")).then_some(body)
}

/// GetBucketVersioning under a misnamed root: its `Status` element read directly.
pub(super) fn lenient_versioning_status<E>(err: &SdkError<E>) -> Option<Option<String>> {
    let body = misnamed_root_body(err, "GetBucketVersioningResponse")?;
    let status = body
        .split_once("<Status>")
        .and_then(|(_, rest)| rest.split_once("</Status>"))
        .map(|(status, _)| status.trim().to_owned())
        .filter(|status| !status.is_empty());
    Some(status)
}

/// GetBucketNotificationConfiguration for a bucket without notifications: moto sends an
/// empty misnamed root where S3 sends an empty `<NotificationConfiguration/>`; both mean
/// "no entries".
pub(super) fn empty_notification_answer<E>(err: &SdkError<E>) -> bool {
    misnamed_root_body(err, "GetBucketNotificationResponse").is_some_and(|body| !body.contains("Configuration>"))
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::Client;
    use aws_smithy_mocks::{RuleMode, mock};
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    use super::super::S3Api;
    use super::super::sdk::tests::mocked;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[tokio::test]
    async fn versioning_is_read_from_motos_misnamed_response() -> TestResult {
        let moto_body = |inner: &'static str| {
            move || {
                let body = format!(
                    r#"<?xml version="1.0" encoding="utf-8"?>
<GetBucketVersioningResponse xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{inner}</GetBucketVersioningResponse>"#
                );
                HttpResponse::new(StatusCode::try_from(200).expect("200 is valid"), SdkBody::from(body))
            }
        };
        let enabled = mock!(Client::get_bucket_versioning).then_http_response(moto_body("<Status>Enabled</Status>"));
        let never = mock!(Client::get_bucket_versioning).then_http_response(moto_body(""));
        let garbage = mock!(Client::get_bucket_versioning).then_http_response(|| {
            HttpResponse::new(StatusCode::try_from(200).expect("200 is valid"), SdkBody::from("<Other/>"))
        });
        let s3 = mocked(RuleMode::Sequential, &[&enabled, &never, &garbage]);
        assert_eq!(s3.get_versioning("lake").await?.as_deref(), Some("Enabled"));
        assert_eq!(s3.get_versioning("lake").await?, None);
        assert!(s3.get_versioning("lake").await.is_err(), "other unparsable bodies stay errors");
        Ok(())
    }
}
