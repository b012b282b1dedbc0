//! The NATS door (docs/nats.md): S3's operations as request/reply subjects, served by every
//! s3d of a queue group, each request signed by a key of the store and authorised exactly as
//! over S3. Off unless `nats.url` is set; while the server is away S3 goes on and the client
//! reconnects by itself (logged, in `/-/ready` and in the metrics).

pub mod events;
pub mod ops;
pub mod settings;
pub mod wire;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use futures::StreamExt;

pub use settings::{NatsAuth, NatsSettings};

/// Requests handled at once; more wait for a slot (the subscription buffers them).
const CONCURRENCY: usize = 64;

/// What `/-/ready` and the metrics say about NATS.
#[derive(Default)]
pub struct NatsStatus {
    /// Connected now.
    pub connected: AtomicBool,
    /// Requests answered, by outcome.
    pub answered_ok: AtomicU64,
    /// Requests answered with an error.
    pub answered_error: AtomicU64,
    /// Times the connection was lost.
    pub disconnects: AtomicU64,
}

fn connect_options(s: &NatsSettings, status: Arc<NatsStatus>) -> async_nats::ConnectOptions {
    let mut o = match &s.auth {
        NatsAuth::None => async_nats::ConnectOptions::new(),
        NatsAuth::UserPassword(u, p) => {
            async_nats::ConnectOptions::with_user_and_password(u.clone(), p.clone())
        }
        NatsAuth::Token(t) => async_nats::ConnectOptions::with_token(t.clone()),
        NatsAuth::NKey(seed) => async_nats::ConnectOptions::with_nkey(seed.clone()),
    };
    if let Some(ca) = &s.ca {
        o = o.add_root_certificates(ca.clone());
    }
    if let Some((c, k)) = &s.client_cert {
        o = o.add_client_certificate(c.clone(), k.clone());
    }
    if s.tls() {
        o = o.require_tls(true);
    }
    o.name("predastore-s3d")
        .retry_on_initial_connect()
        .max_reconnects(None)
        .event_callback(move |event| {
            let status = status.clone();
            async move {
                match event {
                    async_nats::Event::Connected => {
                        status.connected.store(true, Ordering::Relaxed);
                        tracing::info!("NATS: connected");
                    }
                    async_nats::Event::Disconnected => {
                        status.connected.store(false, Ordering::Relaxed);
                        status.disconnects.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!("NATS: disconnected; reconnecting (S3 is not affected)");
                    }
                    async_nats::Event::SlowConsumer(_) => {
                        tracing::warn!("NATS: requests arrive faster than they are served");
                    }
                    other => tracing::info!("NATS: {other}"),
                }
            }
        })
}

/// Stops a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The running door: its status, and the task serving it (stopped on drop).
pub struct NatsDoor {
    /// For `/-/ready` and the metrics.
    pub status: Arc<NatsStatus>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for NatsDoor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts serving the request subjects; returns at once (the connection is made, and remade,
/// in the background).
pub fn start(
    s: NatsSettings,
    engine: engine::Engine,
    keys: crate::auth::KeyStore,
    region: String,
) -> NatsDoor {
    let status = Arc::new(NatsStatus::default());
    let st = status.clone();
    let task = tokio::spawn(async move {
        let client = match connect_options(&s, st.clone())
            .connect(s.url.as_str())
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("NATS: cannot use {}: {e}", s.url);
                return;
            }
        };
        let publisher = tokio::spawn(events::publish_outbox(
            client.clone(),
            engine.clone(),
            s.events_stream.clone(),
            s.prefix.clone(),
            region,
        ));
        let _publisher = AbortOnDrop(publisher);
        let door = Arc::new(ops::Door::new(client.clone(), engine, keys, &s, st));
        let subjects = [
            format!("{}.*", s.prefix),
            format!("{}.multipart.*", s.prefix),
        ];
        let mut subs = Vec::new();
        for subject in &subjects {
            match client
                .queue_subscribe(subject.clone(), s.queue_group.clone())
                .await
            {
                Ok(sub) => subs.push(sub),
                Err(e) => {
                    tracing::error!("NATS: cannot subscribe to {subject}: {e}");
                    return;
                }
            }
        }
        tracing::info!(
            "NATS: serving {} and {} in queue group {}",
            subjects[0],
            subjects[1],
            s.queue_group
        );
        let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
        let mut all = futures::stream::select_all(subs);
        while let Some(msg) = all.next().await {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                break;
            };
            let door = door.clone();
            tokio::spawn(async move {
                door.serve(msg).await;
                drop(permit);
            });
        }
    });
    NatsDoor { status, task }
}
