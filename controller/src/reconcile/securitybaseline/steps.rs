//! The SecurityBaseline's convergence, written once: the controller runs it with the apply
//! executor, `lakeops plan` with the plan executor.
//!
//! Order: GuardDuty (the region's detector found by ListDetectors, else created once under
//! a recorded creation token; its features converged); Inspector (enabled, never waited
//! for: ENABLING is reported as pending and the round is polled again); suppressions; the
//! baseline's log bucket (the other buckets log into it); Config (the region's recorder kept
//! or created; when the region has no delivery channel, the baseline's key and encrypted
//! bucket, then the channel; recording started); alerts; the account trail (its key, bucket,
//! log group and delivery role, the trail, then the CIS metric filters and alarms, which
//! notify the alert topic).
//!
//! Reads on a converged region (the steady state): ListDetectors, GetDetector,
//! BatchGetAccountStatus (once more right after an Enable), DescribeConfigurationRecorders,
//! DescribeDeliveryChannels, DescribeConfigurationRecorderStatus, the log bucket (8), and,
//! when the channel is the baseline's own, the key (DescribeKey, rotation, policy, its tags)
//! and the bucket (8): 26 reads. The account trail adds 29: its key (4), bucket (8), log
//! group (1) and delivery role (2), GetTrail, GetEventSelectors, GetTrailStatus, ListAliases
//! (the lake keys), one DescribeMetricFilters of the group and one DescribeAlarms by name
//! prefix; 0 writes (a unit test counts them).
use lakeops_crds::securitybaseline::{
    AlertsStatus, AuditTrailStatus, ConfigStatus, InspectorStatus, ServiceStatus, SubscriptionStatus,
};
use lakeops_crds::{SecurityBaseline, SecurityBaselineStatus};

use crate::aws::clients::Regional;
use crate::aws::error::{AwsResult, ErrorKind};
use crate::aws::iam::IamApi;
use crate::aws::inspector::AccountScanning;
use crate::engine::key;
use crate::engine::trail_logs;
use crate::engine::{Exec, Stop, intent, placeholder};
use crate::reconcile::datalake::desired::DesiredBucket;
use crate::reconcile::datalake::steps::{converge_bucket, observe_bucket};

use super::cis;
use super::desired::{self, DETECTOR_PURPOSE, ENABLING, KEY_PURPOSE};
use super::diff::Change;

/// What a baseline's sequence works with.
#[derive(Clone, Copy)]
pub struct Inputs<'a> {
    /// The clients of the baseline's region.
    pub aws: &'a Regional,
    pub iam: &'a dyn IamApi,
    pub account: &'a str,
    /// The permissions boundary every generated role carries (a controller flag).
    pub boundary: Option<&'a str>,
}

type Exe<'a> = Exec<'a, SecurityBaselineStatus>;

/// Runs the baseline's sequence; `next` is the status being built (intents included).
pub async fn converge(
    b: &SecurityBaseline,
    input: Inputs<'_>,
    exec: &Exe<'_>,
    next: &mut SecurityBaselineStatus,
) -> Result<(), Stop> {
    let Inputs { aws, account, .. } = input;
    next.account_id = Some(account.to_string());
    if b.spec.guard_duty.enabled {
        guardduty(b, aws, exec, next).await?;
    }
    if b.spec.inspector.lambda {
        inspector(b, aws, account, exec, next).await?;
    }
    suppressions(b, aws, exec, next, &desired::today()).await?;
    let log_bucket = desired::log_bucket(b, account);
    baseline_bucket(exec, aws, &b.spec.region, next, log_bucket, |s, name| s.log_bucket = Some(name)).await?;
    config(b, aws, account, exec, next).await?;
    if b.spec.alerts.is_some() {
        alerts(b, aws, account, exec, next).await?;
    }
    if b.spec.audit_trail.enabled {
        audit_trail(b, input, exec, next).await?;
    } else {
        // Never stopped or deleted: the trail keeps running, lakeops stops relying on it.
        next.audit_trail = None;
    }
    Ok(())
}

/// Bucket names the baseline recorded in status (before creating them).
fn recorded_buckets(next: &SecurityBaselineStatus) -> std::collections::BTreeSet<String> {
    let config = next.config.iter().filter_map(|c| c.bucket.clone());
    let trail = next.audit_trail.iter().filter_map(|t| t.bucket.clone());
    config.chain(trail).chain(next.log_bucket.clone()).collect()
}

/// One of the baseline's buckets, with the DataLake's bucket steps: read, ownership checked,
/// its name recorded (`record`) before a create (S3 cannot tag a bucket as it creates it:
/// the name is the intent), converged.
async fn baseline_bucket(
    exec: &Exe<'_>,
    aws: &Regional,
    region: &str,
    next: &mut SecurityBaselineStatus,
    mut bucket: DesiredBucket,
    record: impl FnOnce(&mut SecurityBaselineStatus, String),
) -> Result<(), Stop> {
    let recorded = recorded_buckets(next);
    let observed = observe_bucket(exec, aws, &bucket, &recorded).await?;
    if observed.is_none() && !recorded.contains(&bucket.name) {
        record(next, bucket.name.clone());
        exec.record(next).await?;
    }
    exec.desired_tags(&mut bucket.tags, observed.as_ref().map(|o| &o.tags));
    converge_bucket(exec, aws, region, &bucket, observed.as_ref()).await
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
            let bucket = desired::config_bucket(b, account, &key_arn);
            let intent = status.clone();
            baseline_bucket(exec, aws, &b.spec.region, next, bucket, |s, name| {
                s.config = Some(ConfigStatus { bucket: Some(name), ..intent });
            })
            .await?;
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

/// The account trail: its key, its bucket, its CloudWatch Logs group and delivery role
/// (the engine's step, shared with lake trails), the trail itself (the DataLake's trail
/// changes: multi-region, management events, validation, the key), then the CIS metric
/// filters and alarms. A trail of that name lakeops does not own is never changed unless the
/// baseline asks for adoption; CreateTrail of an existing name fails, so there is never a
/// second one.
async fn audit_trail(
    b: &SecurityBaseline,
    input: Inputs<'_>,
    exec: &Exe<'_>,
    next: &mut SecurityBaselineStatus,
) -> Result<(), Stop> {
    let Inputs { aws, account, .. } = input;
    let region = &b.spec.region;
    let mut recorded = next.audit_trail.clone().unwrap_or_default();
    let key_arn = baseline_key(aws, exec, next, desired::trail_key(b, account), desired::TRAIL_KEY_PURPOSE).await?;
    let bucket = desired::trail_bucket(b, account, &key_arn);
    baseline_bucket(exec, aws, region, next, bucket, |s, name| {
        s.audit_trail.get_or_insert_with(Default::default).bucket = Some(name);
    })
    .await?;
    recorded.bucket = Some(desired::trail_bucket_name(account, region));

    let logs = desired::trail_logs(b, account, &key_arn, input.boundary);
    let delivery_recorded = trail_logs::Recorded {
        log_group_arn: recorded.log_group_arn.as_deref(),
        role_arn: recorded.logs_role_arn.as_deref(),
    };
    let delivery = trail_logs::converge(exec, aws.logs.as_ref(), input.iam, &logs, delivery_recorded).await?;

    // The trail: read (3 reads), ours checked at first sight, converged.
    let name = desired::account_trail_name(region);
    let label = format!("trail {name}");
    let observed = crate::reconcile::datalake::observe::trail(aws.cloudtrail.as_ref(), &name).await?;
    if let Some(o) = &observed
        && recorded.trail_arn.as_deref() != Some(o.info.arn.as_str())
    {
        let tags = aws.cloudtrail.list_tags(&o.info.arn).await?;
        if !exec.owned(&label, &tags)? {
            return Ok(());
        }
        recorded.adopted = !exec.is_ours(&tags);
    }
    let want = desired::account_trail(b, account, &key_arn, &delivery);
    let mut arn = observed.as_ref().map(|o| o.info.arn.clone());
    for change in crate::reconcile::datalake::diff::trail_changes(&want, observed.as_ref()) {
        let send = crate::reconcile::datalake::apply::change(aws, region, &change);
        if let Some(created) = exec.change(&change, observed.is_some(), &label, send).await? {
            arn = Some(created);
        }
    }
    recorded.trail_arn = Some(arn.unwrap_or_else(|| placeholder("account trail")));
    recorded.log_group_arn = Some(delivery.log_group_arn.clone());
    recorded.logs_role_arn = Some(delivery.role_arn.clone());
    recorded.management_events = want.events.management_events;
    recorded.alarms = if b.spec.audit_trail.cis_alarms { cis_alarms(b, input, exec, &recorded).await? } else { 0 };
    next.audit_trail = Some(recorded);
    Ok(())
}

/// The CIS metric filters on the trail's group and their alarms on the alert topic (when
/// there is one). Reads: ListAliases (the region's lake keys), one DescribeMetricFilters of
/// the group, one DescribeAlarms by name prefix, and, at first sight only, the tags of
/// alarms already there. Filters and alarms are created or replaced by name (a repeat is
/// harmless), never deleted. Returns how many alarms are in place.
async fn cis_alarms(
    b: &SecurityBaseline,
    input: Inputs<'_>,
    exec: &Exe<'_>,
    recorded: &AuditTrailStatus,
) -> Result<u32, Stop> {
    let Inputs { aws, account, .. } = input;
    let region = &b.spec.region;
    let group = desired::trail_log_group(region);
    let (aliases, filters, alarms) = futures::try_join!(
        aws.kms.aliases(cis::LAKE_KEY_ALIAS_PREFIX),
        async {
            // A group this round creates (or a plan would) has no filters yet.
            match aws.logs.metric_filters(&group).await {
                Err(e) if e.is_not_found() => Ok(Vec::new()),
                other => other,
            }
        },
        aws.cloudwatch.alarms(cis::NAME_PREFIX)
    )?;
    let lake_keys = desired::lake_key_arns(region, account, &aliases);
    for filter in cis::filters(&lake_keys) {
        if !filters.contains(&filter) {
            let existed = filters.iter().any(|f| f.name == filter.name);
            let change = Change::PutMetricFilter { group: group.clone(), filter };
            send(exec, aws, &change, existed).await?;
        }
    }
    let topic = b.spec.alerts.is_some().then(|| desired::topic_arn(region, account));
    let want = cis::alarms(topic.as_deref(), !lake_keys.is_empty());
    let count = want.len() as u32;
    for alarm in want {
        let found = alarms.iter().find(|o| o.alarm.name == alarm.name);
        if let Some(o) = found
            && recorded.alarms == 0
            && !exec.owned(&format!("alarm {}", alarm.name), &aws.cloudwatch.alarm_tags(&o.arn).await?)?
        {
            continue;
        }
        if found.is_none_or(|o| o.alarm != alarm) {
            let mut tags = desired::tags(b);
            exec.desired_tags(&mut tags, None);
            send(exec, aws, &Change::PutAlarm { alarm, tags }, found.is_some()).await?;
        }
    }
    Ok(count)
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
        Change::PutMetricFilter { group, filter } => aws.logs.put_metric_filter(group, filter).await,
        Change::PutAlarm { alarm, tags } => aws.cloudwatch.put_alarm(alarm, tags).await,
    };
    done.map(|()| None)
}
