//! Put/GetBucketNotificationConfiguration: rules whose target is a NATS subject, written as
//! the ARN `arn:predastore:nats:::SUBJECT` in a topic or queue configuration (docs/nats.md).

use engine::events::{NotificationConfig, NotificationRule};

use super::*;

/// The ARN naming NATS subject `s`.
pub const ARN_PREFIX: &str = "arn:predastore:nats:::";

fn subject_of(arn: &str) -> S3Result<String> {
    match arn.strip_prefix(ARN_PREFIX) {
        Some(s) if engine::events::valid_subject(s) => Ok(s.to_string()),
        _ => Err(s3_error!(
            InvalidArgument,
            "Unable to validate the following destination configurations: {arn} (a target is a NATS subject, written {ARN_PREFIX}SUBJECT)"
        )),
    }
}

fn key_filter(f: Option<NotificationConfigurationFilter>) -> S3Result<(String, String)> {
    let (mut prefix, mut suffix) = (None, None);
    for r in f
        .and_then(|f| f.key)
        .and_then(|k| k.filter_rules)
        .unwrap_or_default()
    {
        let name = r.name.as_ref().map(|n| n.as_str().to_ascii_lowercase());
        let slot = match name.as_deref() {
            Some("prefix") => &mut prefix,
            Some("suffix") => &mut suffix,
            _ => {
                return Err(s3_error!(
                    InvalidArgument,
                    "filter rule name must be either prefix or suffix"
                ))
            }
        };
        if slot.is_some() {
            return Err(s3_error!(
                InvalidArgument,
                "Cannot specify more than one prefix rule or suffix rule in a filter"
            ));
        }
        *slot = Some(r.value.unwrap_or_default());
    }
    Ok((prefix.unwrap_or_default(), suffix.unwrap_or_default()))
}

pub(super) async fn put_bucket_notification_configuration(
    s: &Store,
    i: PutBucketNotificationConfigurationInput,
) -> S3Result<PutBucketNotificationConfigurationOutput> {
    let c = i.notification_configuration;
    if c.lambda_function_configurations
        .as_ref()
        .is_some_and(|l| !l.is_empty())
        || c.event_bridge_configuration.is_some()
    {
        return Err(s3_error!(
            InvalidArgument,
            "Only NATS subjects can be notified here (topic or queue configurations with {ARN_PREFIX}SUBJECT)"
        ));
    }
    let mut rules = Vec::new();
    let mut add = |id: Option<String>,
                   events: Vec<s3s::dto::Event>,
                   filter: Option<NotificationConfigurationFilter>,
                   arn: &str|
     -> S3Result<()> {
        let (prefix, suffix) = key_filter(filter)?;
        rules.push(NotificationRule {
            id: id.unwrap_or_else(|| format!("rule-{}", rules.len() + 1)),
            events: events.into_iter().map(String::from).collect(),
            prefix,
            suffix,
            subject: subject_of(arn)?,
        });
        Ok(())
    };
    for t in c.topic_configurations.unwrap_or_default() {
        add(t.id, t.events, t.filter, &t.topic_arn)?;
    }
    for q in c.queue_configurations.unwrap_or_default() {
        add(q.id, q.events, q.filter, &q.queue_arn)?;
    }
    s.engine
        .set_bucket_notifications(&i.bucket, Some(NotificationConfig { rules }))
        .await
        .map_err(s3_err)?;
    Ok(PutBucketNotificationConfigurationOutput {})
}

pub(super) async fn get_bucket_notification_configuration(
    s: &Store,
    i: GetBucketNotificationConfigurationInput,
) -> S3Result<GetBucketNotificationConfigurationOutput> {
    let c = s.engine.bucket_notifications(&i.bucket).map_err(s3_err)?;
    let topics: Vec<TopicConfiguration> = c
        .rules
        .into_iter()
        .map(|r| {
            let mut filter_rules = Vec::new();
            for (name, value) in [("prefix", r.prefix), ("suffix", r.suffix)] {
                if !value.is_empty() {
                    filter_rules.push(FilterRule {
                        name: Some(FilterRuleName::from(name.to_string())),
                        value: Some(value),
                    });
                }
            }
            TopicConfiguration {
                events: r.events.into_iter().map(s3s::dto::Event::from).collect(),
                filter: (!filter_rules.is_empty()).then_some(NotificationConfigurationFilter {
                    key: Some(S3KeyFilter {
                        filter_rules: Some(filter_rules),
                    }),
                }),
                id: Some(r.id),
                topic_arn: format!("{ARN_PREFIX}{}", r.subject),
            }
        })
        .collect();
    Ok(GetBucketNotificationConfigurationOutput {
        topic_configurations: (!topics.is_empty()).then_some(topics),
        ..Default::default()
    })
}
