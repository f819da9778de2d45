//! GuardDuty in the fake account: detectors with settings and tags. Like AWS (and unlike
//! moto), a second detector in a region is refused.
use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::{Fail, FakeAws, fail};
use crate::aws::error::AwsResult;
use crate::aws::guardduty::{DetectorInfo, DetectorSettings, GuardDutyApi};

const SERVICE: &str = "guardduty";

/// [`GuardDutyApi`] on the fake account, for one region.
#[derive(Clone, Debug)]
pub struct FakeGuardDuty {
    aws: Arc<FakeAws>,
    region: String,
}

fn not_found(id: &str) -> Fail {
    // GuardDuty answers a detector id it does not know with a bad request.
    fail(
        "BadRequestException",
        400,
        format!("The request is rejected because the input detectorId {id} is not owned by the current account."),
    )
}

impl FakeGuardDuty {
    pub(super) fn new(aws: Arc<FakeAws>, region: &str) -> Self {
        Self { aws, region: region.to_string() }
    }

    fn id(&self, id: &str) -> (String, String) {
        (self.region.clone(), id.to_string())
    }
}

#[async_trait]
impl GuardDutyApi for FakeGuardDuty {
    async fn list_detectors(&self) -> AwsResult<Vec<String>> {
        self.aws.read(&self.region, SERVICE, "ListDetectors", "detectors", |ctx| {
            Ok(ctx.res.detectors.keys().filter(|(r, _)| *r == self.region).map(|(_, id)| id.clone()).collect())
        })
    }

    async fn get_detector(&self, id: &str) -> AwsResult<Option<DetectorInfo>> {
        self.aws.read(&self.region, SERVICE, "GetDetector", id, |ctx| {
            ctx.res.detectors.get(&self.id(id)).cloned().map(Some).ok_or_else(|| not_found(id))
        })
    }

    async fn create_detector(&self, settings: &DetectorSettings, tags: &BTreeMap<String, String>) -> AwsResult<String> {
        self.aws.write(&self.region, SERVICE, "CreateDetector", "detector", |ctx| {
            if ctx.res.detectors.keys().any(|(r, _)| r == ctx.region) {
                return Err(fail(
                    "BadRequestException",
                    400,
                    "The request is rejected because a detector already exists for the current account.",
                ));
            }
            let id = format!("{:032x}", ctx.next_id());
            let detector = DetectorInfo { id: id.clone(), settings: settings.clone(), tags: tags.clone() };
            ctx.res.detectors.insert((ctx.region.to_string(), id.clone()), detector);
            Ok(id)
        })
    }

    async fn update_detector(&self, id: &str, settings: &DetectorSettings) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "UpdateDetector", id, |ctx| {
            let d = ctx.res.detectors.get_mut(&self.id(id)).ok_or_else(|| not_found(id))?;
            d.settings.enabled = settings.enabled;
            d.settings.finding_publishing_frequency = settings.finding_publishing_frequency.clone();
            // Features not named keep their state, as in AWS.
            d.settings.features.extend(settings.features.iter().map(|(k, v)| (k.clone(), *v)));
            Ok(())
        })
    }
}

// ----- helpers for tests' starting states -----

impl FakeAws {
    /// A detector in `region` (someone else's, or an earlier one); returns its id.
    pub fn with_detector(&self, region: &str, settings: &DetectorSettings, tags: &BTreeMap<String, String>) -> String {
        let id = format!("{:032x}", self.next_id());
        let d = DetectorInfo { id: id.clone(), settings: settings.clone(), tags: tags.clone() };
        self.edit(|r| r.detectors.insert((region.to_string(), id.clone()), d));
        id
    }

    /// The detectors of `region`.
    pub fn detectors(&self, region: &str) -> Vec<DetectorInfo> {
        self.world().now.detectors.iter().filter(|((r, _), _)| r == region).map(|(_, d)| d.clone()).collect()
    }
}
