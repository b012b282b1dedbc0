//! A peer's disks as the engine uses them: [`ShardClient`] is an [`engine::ShardTransport`]
//! over one HTTP/2 connection (on TLS 1.3, this node's certificate shown, the peer's checked to
//! be the node meant) to the peer's shard service.
//!
//! Every request has a deadline, so a slow or dead node fails a request instead of stalling
//! it: the engine then reads the chunk's other shards, or counts the write as degraded. After
//! a connection attempt or a request that ran out of time the peer is taken for down for a
//! moment, and requests to it fail at once instead of each waiting for its own timeout; a
//! refused connection is tried again at the next request (it costs nothing).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use engine::{Error, Result, ShardLoc, ShardRange, ShardRead, ShardTransport};
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

use crate::ca::{node_name, NodeIdentity};
use crate::wire::{decode_loc, Request};
use crate::ClusterError;

/// Deadlines of the shard service's requests.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// To connect (TCP and TLS).
    pub connect: Duration,
    /// For a read, a presence check, a release, a disk's state.
    pub read: Duration,
    /// For an append or rewrite (a body of up to a shard, made durable on the peer).
    pub write: Duration,
    /// How long a peer that could not be reached is taken for down.
    pub down_for: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(2),
            read: Duration::from_secs(5),
            write: Duration::from_secs(30),
            down_for: Duration::from_secs(3),
        }
    }
}

/// Why a request to a peer got no answer.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("node {peer} at {addr}: no answer within {after:?}")]
    Deadline {
        peer: String,
        after: Duration,
        addr: String,
    },
    #[error("node {peer}: {what}")]
    Request { peer: String, what: String },
    #[error("node {0} was unreachable a moment ago")]
    Down(String),
}

struct Inner {
    peer: String,
    addr: String,
    name: ServerName<'static>,
    tls: TlsConnector,
    timeouts: Timeouts,
    conn: tokio::sync::Mutex<Option<SendRequest<Full<Bytes>>>>,
    down_until: Mutex<Option<Instant>>,
}

/// The disks of node `peer`, reached at its shard service.
pub struct ShardClient {
    rt: Option<tokio::runtime::Runtime>,
    inner: Arc<Inner>,
}

impl ShardClient {
    /// A client of node `peer`'s shard service at `addr` (`host:port`), as node `me`. Connects
    /// on first use.
    pub fn new(
        me: &NodeIdentity,
        peer: &str,
        addr: &str,
        timeouts: Timeouts,
    ) -> std::result::Result<ShardClient, ClusterError> {
        let name = ServerName::try_from(node_name(peer))
            .map_err(|e| ClusterError::Certificate(format!("node id {peer:?}: {e}")))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(format!("shards-{peer}"))
            .enable_all()
            .build()?;
        Ok(ShardClient {
            rt: Some(rt),
            inner: Arc::new(Inner {
                peer: peer.to_string(),
                addr: addr.to_string(),
                name,
                tls: TlsConnector::from(Arc::new(crate::tls::client_config(me)?)),
                timeouts,
                conn: tokio::sync::Mutex::new(None),
                down_until: Mutex::new(None),
            }),
        })
    }

    /// Sends `req` with `body` and waits for the status and body of the answer.
    fn call(&self, req: Request, body: Bytes) -> std::result::Result<(StatusCode, Bytes), Failure> {
        let Some(rt) = &self.rt else {
            return Err(Failure::Down(self.inner.peer.clone()));
        };
        let inner = self.inner.clone();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(async move {
            let _ = tx.send(inner.send(req, body).await);
        });
        engine::blocking::wait_off_worker(|| rx.recv())
            .unwrap_or_else(|_| Err(Failure::Down(self.inner.peer.clone())))
    }

    /// An error for the engine: full disks stay recognisable as such.
    fn error(&self, status: StatusCode, body: &[u8]) -> Error {
        let msg = format!(
            "node {}: {status}: {}",
            self.inner.peer,
            String::from_utf8_lossy(body)
        );
        match status {
            // What the engine reads as a full disk.
            StatusCode::INSUFFICIENT_STORAGE => {
                Error::Io(std::io::Error::from_raw_os_error(libc::ENOSPC))
            }
            StatusCode::UNPROCESSABLE_ENTITY => Error::Corrupt(msg),
            _ => Error::Io(std::io::Error::other(msg)),
        }
    }
}

impl Drop for ShardClient {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Inner {
    /// The connection, made when there is none; whether it was open already.
    async fn connection(&self) -> std::result::Result<(SendRequest<Full<Bytes>>, bool), Failure> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref() {
            if !c.is_closed() {
                return Ok((c.clone(), true));
            }
        }
        *guard = None;
        if let Ok(d) = self.down_until.lock() {
            if d.is_some_and(|t| Instant::now() < t) {
                return Err(Failure::Down(self.peer.clone()));
            }
        }
        let made = tokio::time::timeout(self.timeouts.connect, self.connect()).await;
        let made = match made {
            Ok(r) => r,
            Err(_) => Err(Failure::Deadline {
                peer: self.peer.clone(),
                after: self.timeouts.connect,
                addr: self.addr.clone(),
            }),
        };
        match made {
            Ok(c) => {
                *guard = Some(c.clone());
                Ok((c, false))
            }
            Err(e) => {
                // Only a peer that let a connection attempt run out its time is left alone: a
                // refused connection fails at once anyway, and a node that restarted must be
                // reachable again as soon as it listens (its shards may be the ones a
                // degraded chunk still has).
                if matches!(e, Failure::Deadline { .. }) {
                    if let Ok(mut d) = self.down_until.lock() {
                        *d = Some(Instant::now() + self.timeouts.down_for);
                    }
                }
                Err(e)
            }
        }
    }

    async fn connect(&self) -> std::result::Result<SendRequest<Full<Bytes>>, Failure> {
        let fail = |what: String| Failure::Request {
            peer: self.peer.clone(),
            what,
        };
        let tcp = tokio::net::TcpStream::connect(&self.addr)
            .await
            .map_err(|e| fail(format!("connect to {}: {e}", self.addr)))?;
        let _ = tcp.set_nodelay(true);
        let tls = self
            .tls
            .connect(self.name.clone(), tcp)
            .await
            .map_err(|e| fail(format!("TLS with {}: {e}", self.addr)))?;
        let (send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_secs(5))
            .handshake(TokioIo::new(tls))
            .await
            .map_err(|e| fail(format!("HTTP/2 with {}: {e}", self.addr)))?;
        let peer = self.peer.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, "shard connection closed: {e}");
            }
        });
        Ok(send)
    }

    async fn send(
        &self,
        req: Request,
        body: Bytes,
    ) -> std::result::Result<(StatusCode, Bytes), Failure> {
        let deadline = match req {
            Request::Append { .. } | Request::Rewrite { .. } => self.timeouts.write,
            _ => self.timeouts.read,
        };
        let fail = |what: String| Failure::Request {
            peer: self.peer.clone(),
            what,
        };
        let once = |send: SendRequest<Full<Bytes>>| {
            let (body, fail, req) = (body.clone(), &fail, req.clone());
            async move {
                let mut send = send;
                let r = http::Request::builder()
                    .method(req.method())
                    .uri(format!(
                        "https://{}{}",
                        node_name(&self.peer),
                        req.path_and_query()
                    ))
                    .body(Full::new(body))
                    .map_err(|e| fail(e.to_string()))?;
                let resp = send
                    .send_request(r)
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                let status = resp.status();
                let bytes = resp
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| fail(e.to_string()))?
                    .to_bytes();
                Ok((status, bytes))
            }
        };
        let exchange = async {
            let (send, reused) = self.connection().await?;
            match once(send).await {
                // A connection kept from earlier that fails at once was most likely closed by
                // the peer meanwhile (it restarted): the request goes once more on a new one.
                // Every request may be repeated: reads, checks, releases and rewrites are
                // idempotent; an append repeated stores its shard twice, of which the place
                // returned is recorded and the other is never referred to.
                Err(Failure::Request { .. }) if reused => {
                    *self.conn.lock().await = None;
                    let (send, _) = self.connection().await?;
                    once(send).await
                }
                r => r,
            }
        };
        let out = match tokio::time::timeout(deadline, exchange).await {
            Ok(r) => r,
            Err(_) => Err(Failure::Deadline {
                peer: self.peer.clone(),
                after: deadline,
                addr: self.addr.clone(),
            }),
        };
        if let Err(f) = &out {
            // A connection that failed a request is not trusted with the next; a peer that
            // did not answer in time (cut off, overloaded) is left alone for a moment too, so
            // that the requests behind this one fail at once and read other shards.
            *self.conn.lock().await = None;
            if matches!(f, Failure::Deadline { .. }) {
                if let Ok(mut d) = self.down_until.lock() {
                    *d = Some(Instant::now() + self.timeouts.down_for);
                }
            }
        }
        out
    }
}

/// The body of an append or rewrite: header, then payload.
fn shard_body(header: &[u8], payload: &[u8]) -> Bytes {
    let mut b = Vec::with_capacity(header.len() + payload.len());
    b.extend_from_slice(header);
    b.extend_from_slice(payload);
    Bytes::from(b)
}

impl ShardTransport for ShardClient {
    fn is_online(&self, disk: u32) -> bool {
        matches!(
            self.call(Request::Online { disk }, Bytes::new()),
            Ok((StatusCode::OK, _))
        )
    }

    fn append(&self, disk: u32, header: &[u8], payload: &[u8], data: bool) -> Result<ShardLoc> {
        match self.call(Request::Append { disk, data }, shard_body(header, payload)) {
            Ok((StatusCode::OK, b)) => decode_loc(&b).ok_or_else(|| {
                Error::Corrupt(format!(
                    "node {}: an append answered with {} bytes, not a place",
                    self.inner.peer,
                    b.len()
                ))
            }),
            Ok((s, b)) => Err(self.error(s, &b)),
            Err(e) => Err(Error::Io(std::io::Error::other(e.to_string()))),
        }
    }

    fn rewrite(&self, disk: u32, loc: ShardLoc, header: &[u8], payload: &[u8]) -> Result<()> {
        match self.call(Request::Rewrite { disk, loc }, shard_body(header, payload)) {
            Ok((StatusCode::NO_CONTENT, _)) => Ok(()),
            Ok((s, b)) => Err(self.error(s, &b)),
            Err(e) => Err(Error::Io(std::io::Error::other(e.to_string()))),
        }
    }

    fn read(&self, disk: u32, range: &ShardRange) -> ShardRead {
        match self.call(
            Request::Read {
                disk,
                range: *range,
            },
            Bytes::new(),
        ) {
            Ok((StatusCode::OK, b)) => ShardRead::Ok(b),
            Ok((StatusCode::CONFLICT, _)) => ShardRead::Corrupt,
            Ok((s, b)) => {
                if s != StatusCode::NOT_FOUND {
                    tracing::warn!(
                        "shard read from node {}: {s}: {}",
                        self.inner.peer,
                        String::from_utf8_lossy(&b)
                    );
                }
                ShardRead::Missing
            }
            Err(e) => {
                tracing::warn!("shard read: {e}");
                ShardRead::Missing
            }
        }
    }

    fn present(&self, disk: u32, loc: ShardLoc, len: u32) -> bool {
        matches!(
            self.call(Request::Present { disk, loc, len }, Bytes::new()),
            Ok((StatusCode::OK, _))
        )
    }

    fn release(&self, disk: u32, loc: ShardLoc, len: u32) {
        match self.call(Request::Release { disk, loc, len }, Bytes::new()) {
            Ok((StatusCode::NO_CONTENT, _)) => {}
            Ok((s, b)) => tracing::warn!(
                "shard release on node {}: {s}: {}",
                self.inner.peer,
                String::from_utf8_lossy(&b)
            ),
            Err(e) => tracing::warn!("shard release: {e}"),
        }
    }
}
