//! The SecurityBaseline's convergence, written once: the controller runs it with the apply
//! executor, `lakeops plan` with the plan executor.
//!
//! Order: GuardDuty (the region's detector found by ListDetectors, else created once under
//! a recorded creation token; its features converged); Inspector (enabled, never waited
//! for: ENABLING is reported as pending and the round is polled again); Config (the
//! region's recorder kept or created; when the region has no delivery channel, the
//! baseline's key and encrypted bucket, then the channel; recording started).
//!
//! Reads on a converged region (the steady state): ListDetectors, GetDetector,
//! BatchGetAccountStatus (once more right after an Enable), DescribeConfigurationRecorders, DescribeDeliveryChannels,
//! DescribeConfigurationRecorderStatus, and, when the channel is the baseline's own, the
//! key (DescribeKey, rotation, policy, its tags) and the bucket (8 reads): 18 reads, 0
//! writes (a unit test counts them).
use lakeops_crds::securitybaseline::{AlertsStatus, ConfigStatus, InspectorStatus, ServiceStatus, SubscriptionStatus};
use lakeops_crds::{SecurityBaseline, SecurityBaselineStatus};

use crate::aws::clients::Regional;
use crate::aws::error::{AwsResult, ErrorKind};
use crate::aws::inspector::AccountScanning;
use crate::engine::key;
use crate::engine::{Exec, Stop, intent, placeholder};
use crate::reconcile::datalake::steps::{converge_bucket, observe_bucket};

use super::desired::{self, DETECTOR_PURPOSE, ENABLING, KEY_PURPOSE};
use super::diff::Change;

type Exe<'a> = Exec<'a, SecurityBaselineStatus>;

/// Runs the baseline's sequence; `next` is the status being built (intents included).
pub async fn converge(
    b: &SecurityBaseline,
    aws: &Regional,
    account: &str,
    exec: &Exe<'_>,
    next: &mut SecurityBaselineStatus,
) -> Result<(), Stop> {
    next.account_id = Some(account.to_string());
    if b.spec.guard_duty.enabled {
        guardduty(b, aws, exec, next).await?;
    }
    if b.spec.inspector.lambda {
        inspector(b, aws, account, exec, next).await?;
    }
    suppressions(b, aws, exec, next, &desired::today()).await?;
    config(b, aws, account, exec, next).await?;
    if b.spec.alerts.is_some() {
        alerts(b, aws, account, exec, next).await?;
    }
    Ok(())
}

async fn send(exec: &Exe<'_>, aws: &Regional, change: &Change, existed: bool) -> Result<Option<String>, Stop> {
    exec.change(change, existed, change.resource(), apply(aws, change)).await
}

/// The region's detector: found (and recorded as adopted unless it carries this baseline's
/// creation token), or created once. AWS allows one detector per region; moto allows more,
/// so the lookup, not AWS, is what keeps a second one from being made.
async fn guardduty(
    b: &SecurityBaseline,
    aws: &Regional,
    exec: &Exe<'_>,
    next: &mut SecurityBaselineStatus,
) -> Result<(), Stop> {
    let ids = aws.guardduty.list_detectors().await?;
    let recorded = next.guard_duty.as_ref().and_then(|g| g.detector_id.clone());
    let id = recorded.clone().filter(|r| ids.contains(r)).or_else(|| ids.first().cloned());
    let token = desired::token(b, DETECTOR_PURPOSE);
    let Some(id) = id else {
        // The intent first: a create whose answer is lost is then recognised as ours.
        if let Some(token) = &token
            && intent::record(&mut next.creation_tokens, DETECTOR_PURPOSE, token)
        {
            exec.record(next).await?;
        }
        let mut tags = desired::tags(b);
        if let Some(token) = &token {
            tags.insert(intent::CREATION_TOKEN_TAG.to_string(), token.clone());
        }
        let create = Change::CreateDetector { settings: desired::new_detector(b), tags };
        let id = send(exec, aws, &create, false).await?.unwrap_or_else(|| placeholder("GuardDuty detector"));
        next.guard_duty = Some(ServiceStatus { detector_id: Some(id), adopted: false });
        return exec.record(next).await;
    };
    let Some(observed) = aws.guardduty.get_detector(&id).await? else {
        return Err(Stop::Waiting(format!("GuardDuty detector {id} was listed but cannot be read yet")));
    };
    let adopted = match next.guard_duty.as_ref().filter(|g| g.detector_id.as_deref() == Some(id.as_str())) {
        Some(g) => g.adopted,
        None => token.is_none() || observed.tags.get(intent::CREATION_TOKEN_TAG) != token.as_ref(),
    };
    next.guard_duty = Some(ServiceStatus { detector_id: Some(id.clone()), adopted });
    if let Some(settings) = desired::detector_update(b, &observed.settings) {
        send(exec, aws, &Change::UpdateDetector { id, settings }, true).await?;
    }
    Ok(())
}

/// Inspector for the account: enabled, or read-only when a delegated administrator
/// manages it (ACCESS_DENIED). ENABLING is pending, never waited for in the round.
async fn inspector(
    b: &SecurityBaseline,
    aws: &Regional,
    account: &str,
    exec: &Exe<'_>,
    next: &mut SecurityBaselineStatus,
) -> Result<(), Stop> {
    let observed = aws.inspector.account_status(account).await?;
    let types = desired::inspector_types(b, &observed);
    let (mut lambda, mut lambda_code) = match &observed {
        AccountScanning::States { lambda, lambda_code } => (lambda.clone(), lambda_code.clone()),
        _ => (None, None),
    };
    let mut managed = observed == AccountScanning::ManagedByOrganization;
    if !types.is_empty() {
        let enable = Change::EnableInspector { account: account.to_string(), types: types.clone() };
        match send(exec, aws, &enable, true).await {
            Ok(_) if !exec.plans() => {
                // One read after the enable: AWS usually reports ENABLING (polled by the
                // next round), an emulator often ENABLED at once.
                if let AccountScanning::States { lambda: l, lambda_code: c } =
                    aws.inspector.account_status(account).await?
                {
                    (lambda, lambda_code) = (l, c);
                }
            }
            Ok(_) => {}
            Err(Stop::Aws(e))
                if e.kind == ErrorKind::AccessDenied
                    && e.code.as_deref() == Some(crate::aws::inspector::ACCESS_DENIED) =>
            {
                managed = true;
            }
            Err(stop) => return Err(stop),
        }
    }
    for (name, state) in [("LAMBDA", &lambda), ("LAMBDA_CODE", &lambda_code)] {
        if state.as_deref() == Some(ENABLING) {
            exec.pending(format!("Inspector {name} scanning is ENABLING"));
        }
    }
    next.inspector = Some(InspectorStatus { lambda, lambda_code, managed_by_organization: managed });
    Ok(())
}

/// The EventBridge rules forwarding findings to the topic: found by name (PutRule and
/// PutTargets create or replace, so a lost answer is simply sent again), owner tags checked,
/// pattern and target converged. 3 reads per rule at rest.
async fn finding_rules(
    b: &SecurityBaseline,
    aws: &Regional,
    exec: &Exe<'_>,
    topic_arn: &str,
    minimum: lakeops_crds::FindingSeverity,
) -> Result<(), Stop> {
    for rule in desired::finding_rules(b, minimum) {
        let observed = aws.events.describe_rule(&rule.name).await?;
        if let Some(o) = &observed
            && !exec.owned(&format!("EventBridge rule {}", rule.name), &aws.events.list_tags(&o.arn).await?)?
        {
            continue;
        }
        if !observed.as_ref().is_some_and(|o| desired::same_rule(&o.rule, &rule)) {
            let mut tags = desired::tags(b);
            exec.desired_tags(&mut tags, None);
            send(exec, aws, &Change::PutRule { rule: rule.clone(), tags }, observed.is_some()).await?;
        }
        let target = desired::alert_target(topic_arn);
        let targets = if observed.is_some() { aws.events.list_targets(&rule.name).await? } else { Vec::new() };
        if !targets.contains(&target) {
            send(exec, aws, &Change::PutTarget { rule: rule.name.clone(), target }, observed.is_some()).await?;
        }
    }
    Ok(())
}

/// The spec's accepted risks as Inspector suppression filters (found by name and owner
/// tags, so a create whose answer was lost is not repeated); an expired or removed one is
/// deleted (only ours). No read at all while the spec has none and none was made.
pub(crate) async fn suppressions(
    b: &SecurityBaseline,
    aws: &Regional,
    exec: &Exe<'_>,
    next: &mut SecurityBaselineStatus,
    today: &str,
) -> Result<(), Stop> {
    if b.spec.inspector.suppressions.is_empty() && next.suppressions.is_empty() {
        return Ok(());
    }
    let want = desired::suppression_filters(b, today);
    let observed = aws.inspector.suppression_filters().await?;
    let ours: Vec<_> = observed
        .iter()
        .filter(|o| o.filter.name.starts_with(desired::SUPPRESSION_PREFIX) && exec.is_ours(&o.tags))
        .collect();
    for w in &want {
        match ours.iter().find(|o| o.filter.name == w.name) {
            None => {
                let mut tags = desired::tags(b);
                exec.desired_tags(&mut tags, None);
                send(exec, aws, &Change::CreateSuppression { filter: w.clone(), tags }, false).await?;
            }
            Some(o) => {
                let mut seen = o.filter.clone();
                seen.functions.sort();
                if seen != *w {
                    // Longer (the description carries the date) or wider (fewer or no functions named).
                    let wider = (w.functions.is_empty() && !seen.functions.is_empty())
                        || w.functions.iter().any(|f| !seen.functions.contains(f) && !seen.functions.is_empty());
                    let weakens = wider || w.description > seen.description;
                    let update = Change::UpdateSuppression { arn: o.arn.clone(), filter: w.clone(), weakens };
                    send(exec, aws, &update, true).await?;
                }
            }
        }
    }
    for o in ours.iter().filter(|o| !want.iter().any(|w| w.name == o.filter.name)) {
        let delete =
            Change::DeleteSuppression { arn: o.arn.clone(), vulnerability_id: o.filter.vulnerability_id.clone() };
        send(exec, aws, &delete, true).await?;
    }
    next.suppressions = want.into_iter().map(|w| w.vulnerability_id).collect();
    Ok(())
}

/// The recorder (an existing one keeps its name), a delivery channel (the region's, or the
/// baseline's to its own encrypted bucket), recording started.
async fn config(
    b: &SecurityBaseline,
    aws: &Regional,
    account: &str,
    exec: &Exe<'_>,
    next: &mut SecurityBaselineStatus,
) -> Result<(), Stop> {
    let (recorders, channels) = futures::try_join!(aws.config.recorders(), aws.config.channels())?;
    let observed = recorders.first();
    let recorded = next.config.clone().unwrap_or_default();
    let adopted = match observed {
        Some(o) if recorded.recorder.as_deref() == Some(o.name.as_str()) => recorded.adopted,
        Some(_) => true,
        None => false,
    };
    let want = desired::recorder(b, account, observed);
    if observed != Some(&want) {
        send(exec, aws, &Change::PutRecorder { recorder: want.clone() }, observed.is_some()).await?;
    }
    let mut status = ConfigStatus { recorder: Some(want.name.clone()), adopted, bucket: None, recording: false };

    let own_bucket = desired::config_bucket_name(account, &b.spec.region);
    match channels.first() {
        Some(c) if c.bucket != own_bucket => status.bucket = Some(c.bucket.clone()),
        existing => {
            let key_arn = config_key(b, aws, account, exec, next).await?;
            let mut bucket = desired::config_bucket(b, account, &key_arn);
            let recorded_names = next.config.iter().filter_map(|c| c.bucket.clone()).collect();
            let observed_bucket = observe_bucket(exec, aws, &bucket, &recorded_names).await?;
            if observed_bucket.is_none() && !recorded_names.contains(&bucket.name) {
                // S3 cannot tag a bucket as it creates it: the name is the intent.
                next.config = Some(ConfigStatus { bucket: Some(bucket.name.clone()), ..status.clone() });
                exec.record(next).await?;
            }
            exec.desired_tags(&mut bucket.tags, observed_bucket.as_ref().map(|o| &o.tags));
            converge_bucket(exec, aws, &b.spec.region, &bucket, observed_bucket.as_ref()).await?;
            let channel = desired::channel(account, &b.spec.region, &key_arn);
            if existing.is_none_or(|c| *c != channel) {
                send(exec, aws, &Change::PutChannel { channel }, existing.is_some()).await?;
            }
            status.bucket = Some(own_bucket);
        }
    }
    let recording = observed.is_some() && aws.config.is_recording(&want.name).await?;
    if !recording {
        send(exec, aws, &Change::StartRecorder { name: want.name.clone() }, observed.is_some()).await?;
    }
    status.recording = true;
    next.config = Some(status);
    Ok(())
}

/// The baseline's key for Config's deliveries (the engine's managed-key step).
async fn config_key(
    b: &SecurityBaseline,
    aws: &Regional,
    account: &str,
    exec: &Exe<'_>,
    next: &mut SecurityBaselineStatus,
) -> Result<String, Stop> {
    baseline_key(aws, exec, next, desired::config_key(b, account), KEY_PURPOSE).await
}

/// One of the baseline's keys, its creation token recorded under `purpose` before a create.
async fn baseline_key(
    aws: &Regional,
    exec: &Exe<'_>,
    next: &mut SecurityBaselineStatus,
    want: key::ManagedKey,
    purpose: &str,
) -> Result<String, Stop> {
    let token_recorded = next.creation_tokens.contains_key(purpose);
    let state = key::observe(exec, aws.kms.as_ref(), &want, None, token_recorded).await?;
    if state.creates()
        && let Some(token) = &want.token
        && intent::record(&mut next.creation_tokens, purpose, token)
    {
        exec.record(next).await?;
    }
    key::converge(exec, aws.kms.as_ref(), &want, state).await
}

/// The alert topic: its key, the topic (found by the ARN its name decides; CreateTopic of
/// an existing name answers that topic, so a lost answer needs no intent), its key and
/// policy converged, and every email subscribed (never unsubscribed).
async fn alerts(
    b: &SecurityBaseline,
    aws: &Regional,
    account: &str,
    exec: &Exe<'_>,
    next: &mut SecurityBaselineStatus,
) -> Result<(), Stop> {
    let Some(spec) = &b.spec.alerts else { return Ok(()) };
    let region = &b.spec.region;
    let key_arn = baseline_key(aws, exec, next, desired::alerts_key(b, account), desired::ALERTS_KEY_PURPOSE).await?;
    let arn = desired::topic_arn(region, account);
    let observed = aws.sns.topic_attributes(&arn).await?;
    let mut subscribed = Vec::new();
    match &observed {
        None => {
            let mut tags = desired::tags(b);
            exec.desired_tags(&mut tags, None);
            let attributes = desired::topic_attributes(region, account, &key_arn);
            let create = Change::CreateTopic { name: desired::TOPIC_NAME.into(), attributes, tags };
            send(exec, aws, &create, false).await?;
        }
        Some(attributes) => {
            let tags = aws.sns.topic_tags(&arn).await?;
            if !exec.owned(&format!("alert topic {arn}"), &tags)? {
                return Ok(());
            }
            let key_attr = crate::aws::sns::KMS_MASTER_KEY_ID;
            if attributes.get(key_attr) != Some(&key_arn) {
                send(
                    exec,
                    aws,
                    &Change::SetTopicAttribute { arn: arn.clone(), name: key_attr, value: key_arn.clone() },
                    true,
                )
                .await?;
            }
            let policy = desired::topic_policy(region, account);
            if !attributes.get(crate::aws::sns::POLICY).is_some_and(|p| policy.matches_json(p)) {
                let set = Change::SetTopicAttribute {
                    arn: arn.clone(),
                    name: crate::aws::sns::POLICY,
                    value: policy.to_json(),
                };
                send(exec, aws, &set, true).await?;
            }
            subscribed = aws.sns.subscriptions(&arn).await?;
        }
    }
    let mut subscriptions = Vec::new();
    for email in &spec.emails {
        let found = subscribed.iter().find(|s| s.protocol == "email" && s.endpoint.eq_ignore_ascii_case(email));
        let state = match found {
            Some(s) => s.state(),
            None => {
                send(exec, aws, &Change::SubscribeEmail { arn: arn.clone(), email: email.clone() }, observed.is_some())
                    .await?;
                crate::aws::sns::PENDING_CONFIRMATION
            }
        };
        subscriptions.push(SubscriptionStatus { endpoint: email.clone(), state: state.into() });
    }
    finding_rules(b, aws, exec, &arn, spec.minimum_finding_severity).await?;
    next.alerts = Some(AlertsStatus {
        topic_arn: Some(arn),
        deployments: spec.deployments,
        deletions: spec.deletions,
        subscriptions,
    });
    Ok(())
}

/// Sends one change. Returns the new detector's id for CreateDetector.
async fn apply(aws: &Regional, change: &Change) -> AwsResult<Option<String>> {
    let done = match change {
        Change::CreateDetector { settings, tags } => {
            return aws.guardduty.create_detector(settings, tags).await.map(Some);
        }
        Change::UpdateDetector { id, settings } => aws.guardduty.update_detector(id, settings).await,
        Change::EnableInspector { account, types } => aws.inspector.enable(account, types).await,
        Change::PutRecorder { recorder } => aws.config.put_recorder(recorder).await,
        Change::PutChannel { channel } => aws.config.put_channel(channel).await,
        Change::StartRecorder { name } => aws.config.start_recorder(name).await,
        Change::CreateTopic { name, attributes, tags } => {
            return aws.sns.create_topic(name, attributes, tags).await.map(Some);
        }
        Change::SetTopicAttribute { arn, name, value } => aws.sns.set_topic_attribute(arn, name, value).await,
        Change::SubscribeEmail { arn, email } => aws.sns.subscribe(arn, "email", email).await,
        Change::PutRule { rule, tags } => aws.events.put_rule(rule, tags).await.map(|_| ()),
        Change::PutTarget { rule, target } => aws.events.put_targets(rule, std::slice::from_ref(target)).await,
        Change::CreateSuppression { filter, tags } => {
            return aws.inspector.create_suppression(filter, tags).await.map(Some);
        }
        Change::UpdateSuppression { arn, filter, .. } => aws.inspector.update_suppression(arn, filter).await,
        Change::DeleteSuppression { arn, .. } => aws.inspector.delete_filter(arn).await,
    };
    done.map(|()| None)
}
