//! Reads only: what exists in AWS for a function. Independent reads run concurrently.
use crate::aws::clients::Regional;
use crate::aws::error::{AwsError, AwsResult};
use crate::aws::iam::IamApi;

use super::desired::{self, Desired, ROLE_POLICY_NAME};
use super::diff::{Observed, ObservedRole};

/// Reads everything the function consists of, concurrently; nothing is written. The code
/// signing config is read only when `check_signing` (the spec names one, or lakeops attached
/// one before): it costs a request on Lambda's small control-plane budget.
pub async fn observe(
    aws: &Regional,
    iam: &dyn IamApi,
    d: &Desired,
    check_signing: bool,
) -> AwsResult<(Observed, Option<String>)> {
    let role = async {
        match iam.get_role(&d.role.name).await? {
            Some(info) => {
                let policy = iam.get_role_policy(&d.role.name, ROLE_POLICY_NAME).await?;
                Ok(Some(ObservedRole { info, policy }))
            }
            None => Ok(None),
        }
    };
    let function = async {
        let Some(f) = aws.lambda.get_function(&d.function.name).await? else { return Ok((None, None, None)) };
        let signing = async {
            if check_signing { aws.lambda.get_code_signing_config(&d.function.name).await.map(Some) } else { Ok(None) }
        };
        let (policy, signing) = futures::try_join!(aws.lambda.get_policy(&d.function.name), signing)?;
        Ok::<_, AwsError>((Some(f), policy, signing))
    };
    let artifact = async {
        match &d.function.code.version {
            Some(pinned) => Ok(Some(pinned.clone())),
            None => {
                let head = aws.s3.head_object(&d.function.code.bucket, &d.function.code.key).await?;
                Ok(desired::artifact_version(None, head.as_ref()))
            }
        }
    };
    let (role, log_group, (function, permission_policy, code_signing), notifications, artifact) = futures::try_join!(
        role,
        aws.logs.describe_log_group(&d.log_group.name),
        function,
        notifications(aws, &d.trigger.bucket),
        artifact,
    )?;
    Ok((Observed { role, log_group, function, code_signing, permission_policy, notifications }, artifact))
}

/// The source bucket's notifications; a bucket that does not exist yet (a plan before its
/// lake) has none.
pub(crate) async fn notifications(aws: &Regional, bucket: &str) -> AwsResult<crate::aws::s3::Notifications> {
    match aws.s3.get_notifications(bucket).await {
        Err(e) if e.is_not_found() => Ok(Default::default()),
        other => other,
    }
}
