//! The shard service: a node's own disks ([`LocalShards`]) served to its peers over HTTP/2 on
//! TLS 1.3, every peer proving itself with a certificate from the cluster CA. Requests are
//! those of [`crate::wire`]; the disk work runs on blocking threads, one request's failure is
//! its own answer. HTTP/2's flow control is the backpressure: a peer sends no faster than the
//! node takes its bodies.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use engine::{Error, LocalShards, ShardRead, ShardTransport, SHARD_HEADER_LEN};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::ca::NodeIdentity;
use crate::wire::{encode_loc, Request};
use crate::ClusterError;

/// Largest request body: a shard header and the largest shard (a 256 MiB chunk on one data
/// shard).
const MAX_BODY: usize = SHARD_HEADER_LEN + (256 << 20);

/// How long a peer has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A running shard service.
pub struct ShardService {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ShardService {
    /// Serves `shards` on `listen` (port 0: a free one) as node `id`, on the current tokio
    /// runtime.
    pub async fn start(
        listen: SocketAddr,
        id: &NodeIdentity,
        shards: LocalShards,
    ) -> Result<ShardService, ClusterError> {
        let acceptor = TlsAcceptor::from(Arc::new(crate::tls::server_config(id)?));
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let (stop, mut stopped) = watch::channel(false);
        let shards = Arc::new(shards);
        let task = tokio::spawn(async move {
            loop {
                let (tcp, peer) = tokio::select! {
                    r = listener.accept() => match r {
                        Ok(c) => c,
                        Err(e) => {
                            tracing::warn!("shard service: accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                    _ = stopped.changed() => return,
                };
                let _ = tcp.set_nodelay(true);
                let (acceptor, shards, mut stopped) =
                    (acceptor.clone(), shards.clone(), stopped.clone());
                tokio::spawn(async move {
                    let tls =
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                            Ok(Ok(t)) => t,
                            Ok(Err(e)) => {
                                tracing::warn!(%peer, "shard service: TLS handshake refused: {e}");
                                return;
                            }
                            Err(_) => return,
                        };
                    let svc = hyper::service::service_fn(move |req| {
                        let shards = shards.clone();
                        async move { Ok::<_, std::convert::Infallible>(handle(&shards, req).await) }
                    });
                    let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), svc);
                    tokio::pin!(conn);
                    tokio::select! {
                        r = conn.as_mut() => {
                            if let Err(e) = r {
                                tracing::debug!(%peer, "shard service connection: {e}");
                            }
                        }
                        _ = stopped.changed() => {}
                    }
                });
            }
        });
        Ok(ShardService { addr, stop, task })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and closes every connection.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

fn answer(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

/// The status of an engine error: a refused shard 422, a full disk 507, else 500.
fn failed(e: &Error) -> Response<Full<Bytes>> {
    let status = if e.is_no_space() {
        StatusCode::INSUFFICIENT_STORAGE
    } else if matches!(e, Error::Corrupt(_)) {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    answer(status, e.to_string())
}

async fn handle(shards: &Arc<LocalShards>, req: http::Request<Incoming>) -> Response<Full<Bytes>> {
    let parsed = Request::parse(req.method(), req.uri().path(), req.uri().query());
    // The body is read before any answer, also of a request refused: an answer before the
    // body is taken resets the stream, which a peer may see before the answer.
    let limit = match &parsed {
        Ok(Request::Append { .. } | Request::Rewrite { .. }) => MAX_BODY,
        _ => 64 << 10,
    };
    let body = match Limited::new(req.into_body(), limit).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return answer(
                StatusCode::BAD_REQUEST,
                format!("body unreadable or over {limit} bytes: {e}"),
            )
        }
    };
    let r = match parsed {
        Ok(r) => r,
        Err(why) => return answer(StatusCode::BAD_REQUEST, why),
    };
    let shards = shards.clone();
    let run = tokio::task::spawn_blocking(move || serve(&shards, r, body)).await;
    run.unwrap_or_else(|e| answer(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// Serves one request on this node's disks, its body read: the answer the service sends.
/// Public for the fuzz target (`fuzz/fuzz_targets/shard_service.rs`).
pub fn serve(shards: &LocalShards, r: Request, body: Bytes) -> Response<Full<Bytes>> {
    let split = |b: &Bytes| {
        let at = SHARD_HEADER_LEN.min(b.len());
        (b.slice(..at), b.slice(at..))
    };
    let yes_no = |ok: bool| {
        answer(
            if ok {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            },
            Bytes::new(),
        )
    };
    match r {
        Request::Online { disk } => {
            if shards.is_online(disk) {
                answer(StatusCode::OK, Bytes::new())
            } else {
                answer(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("disk {disk} is offline"),
                )
            }
        }
        Request::Append { disk, data } => {
            let (h, p) = split(&body);
            match shards.append(disk, &h, &p, data) {
                Ok(loc) => answer(StatusCode::OK, encode_loc(loc).to_vec()),
                Err(e) => failed(&e),
            }
        }
        Request::Rewrite { disk, loc } => {
            let (h, p) = split(&body);
            match shards.rewrite(disk, loc, &h, &p) {
                Ok(()) => answer(StatusCode::NO_CONTENT, Bytes::new()),
                Err(e) => failed(&e),
            }
        }
        Request::Read { disk, range } => match shards.read(disk, &range) {
            ShardRead::Ok(b) => answer(StatusCode::OK, b),
            ShardRead::Missing => answer(StatusCode::NOT_FOUND, "shard missing"),
            ShardRead::Corrupt => answer(StatusCode::CONFLICT, "shard corrupt"),
        },
        Request::Present { disk, loc, len } => yes_no(shards.present(disk, loc, len)),
        Request::Release { disk, loc, len } => {
            shards.release(disk, loc, len);
            answer(StatusCode::NO_CONTENT, Bytes::new())
        }
    }
}
