//! Publishes the engine's event outbox ([`engine::events`]) to NATS as S3 event notification
//! records. With a JetStream stream over the subject (s3d makes `nats.events_stream`, default
//! `PREDASTORE_EVENTS`, over `PREFIX.events.>`), a record leaves the outbox only once the
//! stream has stored it, and carries the outbox key as `Nats-Msg-Id` so a record published
//! twice (a crash between the ack and the removal) is stored once: at least once, deduplicated.
//! A subject no stream covers gets a core NATS publish, flushed. Writers never wait for this.

use std::time::Duration;

use async_nats::jetstream::context::PublishErrorKind;
use bytes::Bytes;
use engine::events::EventRecord;
use serde_json::json;

/// Records taken from the outbox at once.
const BATCH: usize = 256;
/// How often an empty outbox is looked at again.
const IDLE: Duration = Duration::from_millis(200);

/// An S3 event notification document (`{"Records": [...]}`) for one record.
pub fn document(e: &EventRecord, region: &str) -> serde_json::Value {
    let time = time::OffsetDateTime::from_unix_timestamp_nanos(e.time_ns as i128)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let when = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        time.year(),
        time.month() as u8,
        time.day(),
        time.hour(),
        time.minute(),
        time.second(),
        time.millisecond()
    );
    let mut object = json!({
        "key": crate::store::urlencode(&e.key),
        "size": e.size,
        "sequencer": e.sequencer,
    });
    if !e.etag.is_empty() {
        object["eTag"] = json!(e.etag);
    }
    if let Some(v) = &e.version_id {
        object["versionId"] = json!(v);
    }
    json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "predastore:s3",
        "awsRegion": region,
        "eventTime": when,
        "eventName": e.name.as_str(),
        "userIdentity": {"principalId": "predastore"},
        "requestParameters": {"sourceIPAddress": ""},
        "responseElements": {},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": e.rule_id,
            "bucket": {
                "name": e.bucket,
                "ownerIdentity": {"principalId": "predastore"},
                "arn": format!("arn:aws:s3:::{}", e.bucket),
            },
            "object": object,
        },
    }]})
}

/// Publishes the outbox until the task is stopped.
pub async fn publish_outbox(
    client: async_nats::Client,
    engine: engine::Engine,
    stream: Option<String>,
    prefix: String,
    region: String,
) {
    let js = async_nats::jetstream::new(client.clone());
    let mut stream_ready = stream.is_none();
    let mut warned = false;
    loop {
        if client.connection_state() != async_nats::connection::State::Connected {
            tokio::time::sleep(IDLE).await;
            continue;
        }
        if let (false, Some(name)) = (stream_ready, &stream) {
            let cfg = async_nats::jetstream::stream::Config {
                name: name.clone(),
                subjects: vec![format!("{prefix}.events.>")],
                storage: async_nats::jetstream::stream::StorageType::File,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            };
            match js.get_or_create_stream(cfg).await {
                Ok(_) => {
                    stream_ready = true;
                    tracing::info!(
                        "NATS: events go to JetStream stream {name} ({prefix}.events.>)"
                    );
                }
                Err(e) => {
                    if !warned {
                        tracing::warn!("NATS: no JetStream stream {name} ({e}); events are published on core NATS");
                        warned = true;
                    }
                    // Core NATS for now; the stream is tried again later.
                }
            }
        }
        let e2 = engine.clone();
        let batch = match tokio::task::spawn_blocking(move || e2.pending_events(BATCH)).await {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                tracing::warn!("event outbox unreadable: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(_) => continue,
        };
        if batch.is_empty() {
            tokio::time::sleep(IDLE).await;
            continue;
        }
        let full = batch.len() == BATCH;
        let (done, failed) = publish_batch(&client, &js, batch, &region).await;
        if let Err(e) = engine.events_published(done).await {
            tracing::warn!(
                "event outbox: published records not removed ({e}); they will be sent again"
            );
        }
        if failed {
            tokio::time::sleep(Duration::from_secs(1)).await;
        } else if !full {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Publishes `batch` in order; returns the keys of the records the server has, and whether
/// one failed (the rest wait for the next round).
async fn publish_batch(
    client: &async_nats::Client,
    js: &async_nats::jetstream::Context,
    batch: Vec<(Vec<u8>, EventRecord)>,
    region: &str,
) -> (Vec<Vec<u8>>, bool) {
    let mut done = Vec::with_capacity(batch.len());
    // Sent all at once, acknowledgements awaited in order.
    let mut pending = Vec::with_capacity(batch.len());
    for (k, rec) in batch {
        if rec.subject.is_empty() {
            done.push(k);
            continue;
        }
        let payload = Bytes::from(document(&rec, region).to_string());
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", hex::encode(&k).as_str());
        let sent = js
            .publish_with_headers(rec.subject.clone(), headers, payload.clone())
            .await;
        pending.push((k, rec.subject, payload, sent));
    }
    let mut core = false;
    for (k, subject, payload, sent) in pending {
        let stored = match sent {
            Ok(ack) => match ack.await {
                Ok(_) => true,
                // No stream covers this subject: core NATS, flushed below.
                Err(e) if e.kind() == PublishErrorKind::StreamNotFound => {
                    if client.publish(subject, payload).await.is_err() {
                        return (done, true);
                    }
                    core = true;
                    true
                }
                Err(e) => {
                    tracing::debug!("event not stored yet: {e}");
                    false
                }
            },
            Err(e) => {
                tracing::debug!("event not sent yet: {e}");
                false
            }
        };
        if !stored {
            return (done, true);
        }
        done.push(k);
    }
    if core && client.flush().await.is_err() {
        return (Vec::new(), true);
    }
    (done, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::events::EventName;

    #[test]
    fn records_look_like_s3s() {
        let e = EventRecord {
            name: EventName::Put,
            time_ns: 1_796_608_000_123_000_000,
            bucket: "photos".into(),
            key: "cam 7/a+b.jpg".into(),
            size: 42,
            etag: "abc".into(),
            version_id: Some("v1".into()),
            rule_id: "r1".into(),
            subject: "s3.events.photos".into(),
            sequencer: "0001".into(),
        };
        let d = document(&e, "us-east-1");
        let r = &d["Records"][0];
        assert_eq!(r["eventName"], "s3:ObjectCreated:Put");
        assert_eq!(r["eventTime"], "2026-12-07T01:46:40.123Z");
        assert_eq!(r["s3"]["bucket"]["arn"], "arn:aws:s3:::photos");
        assert_eq!(r["s3"]["object"]["key"], "cam%207/a%2Bb.jpg");
        assert_eq!(r["s3"]["object"]["size"], 42);
        assert_eq!(r["s3"]["object"]["versionId"], "v1");
        assert_eq!(r["s3"]["configurationId"], "r1");
    }
}
