//! Serving: TLS accept loop over hyper, response headers, request logs, graceful shutdown; and
//! the admin commands.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;

use crate::config::Settings;
use crate::creds;
use crate::store::Store;
use crate::tls;

/// How long shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);

/// Opens the engine this configuration describes (in cluster mode: its shards over the
/// members' disks, which are read from etcd).
pub(crate) fn open_engine(s: &Settings) -> Result<engine::Engine, String> {
    engine::Engine::open(crate::cluster_cli::engine_config(s)?)
        .map_err(|e| format!("cannot open {}: {e}", s.engine.data_dir.display()))
}

fn request_id() -> String {
    hex::encode_upper(rand::random::<[u8; 8]>())
}

/// Runs the server until SIGINT or SIGTERM.
pub async fn serve(s: Settings) -> Result<ExitCode, String> {
    let engine = open_engine(&s)?;
    let node = crate::cluster_cli::Node::start(&s, &engine, s.schedule.clone()).await?;
    let mut keys = s.keys.clone();
    if keys.is_empty() {
        let (k, created) =
            creds::load_or_create(&s.engine.data_dir).map_err(|e| format!("credentials: {e}"))?;
        let path = creds::path(&s.engine.data_dir);
        if created {
            println!(
                "Generated credentials (kept in {}, mode 0600):\n  access key: {}\n  secret key: {}",
                path.display(),
                k.access_key,
                k.secret_key
            );
        } else {
            println!(
                "Credentials: access key {} (secret in {})",
                k.access_key,
                path.display()
            );
        }
        keys.push(k);
    } else {
        println!("Credentials: {} configured key pair(s)", keys.len());
    }
    let loopback = s.host == "localhost"
        || s.host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false);
    if !loopback
        && keys
            .iter()
            .any(|k| k.access_key == creds::EXAMPLE_ACCESS_KEY)
    {
        tracing::warn!("**************************************************************");
        tracing::warn!(
            "THE EXAMPLE ACCESS KEY IS IN USE ON A NON-LOOPBACK ADDRESS ({})",
            s.host
        );
        tracing::warn!("Anyone who has read the AWS documentation can use this server.");
        tracing::warn!("**************************************************************");
    }
    let auth = crate::auth::KeyStore::new(&keys, engine.clone());
    let nats = s.nats.clone().map(|n| {
        println!(
            "NATS: {} (subjects {}.*, queue group {})",
            n.url, n.prefix, n.queue_group
        );
        crate::nats::start(
            n,
            engine.clone(),
            crate::auth::KeyStore::new(&keys, engine.clone()),
            s.region.clone(),
        )
    });
    let nats_status = nats.as_ref().map(|d| d.status.clone());
    if nats.is_none() {
        match engine.event_backlog() {
            Ok(0) | Err(_) => {}
            Ok(n) => tracing::warn!(
                "{n} event notifications wait in the outbox, and nats.url is not set: they are published once it is"
            ),
        }
    }
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let store = Store {
        engine: engine.clone(),
        region: s.region.clone(),
        body_idle: s.body_idle_timeout,
        allow_setid_and_devices: s.allow_setid_and_devices,
    };
    let service = s3_service(store, auth, &s.domains);
    let tls = if s.insecure_http {
        tracing::warn!("serving plain HTTP: use only behind a TLS-terminating proxy");
        None
    } else {
        let (cert, key) = match (&s.tls_cert, &s.tls_key) {
            (Some(c), Some(k)) => (c.clone(), k.clone()),
            _ => {
                let (c, k, created) = tls::ensure_self_signed(&s.engine.data_dir, &s.tls_names)
                    .map_err(|e| e.to_string())?;
                if created {
                    println!(
                        "Generated a self-signed TLS certificate for {}: {}",
                        s.tls_names.join(", "),
                        c.display()
                    );
                }
                (c, k)
            }
        };
        Some(Arc::new(
            tls::Reloadable::load(&cert, &key).map_err(|e| e.to_string())?,
        ))
    };
    let security_headers =
        crate::security_headers::SecurityHeaders::new(tls.is_some(), s.hsts_max_age);
    let addr: SocketAddr = format!("{}:{}", s.host, s.port)
        .parse()
        .or_else(|_| {
            std::net::ToSocketAddrs::to_socket_addrs(&(s.host.as_str(), s.port))
                .ok()
                .and_then(|mut a| a.next())
                .ok_or(())
        })
        .map_err(|_| format!("invalid listen address {}:{}", s.host, s.port))?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("Predastore s3d listening on {scheme}://{local}");
    let shown_host = if s.host == "0.0.0.0" {
        "localhost"
    } else {
        s.host.as_str()
    };
    println!("Endpoint: {scheme}://{shown_host}:{}", local.port());

    // GC (space of deleted and overwritten objects comes back by itself), repair of chunks
    // queued by degraded reads, the scheduled scrub: until the server stops.
    // In a cluster they are the work of one node at a time, the one the election made leader.
    let background = node
        .is_none()
        .then(|| engine.spawn_background(s.schedule.clone()));
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // Slow or silent clients: the request head must arrive within this time.
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(s.header_timeout);
    let http = Arc::new(builder);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let admission = connection_admission(&s);
    let vhosts = Arc::new(crate::vhost::VirtualHosts::new(&s.domains));
    let idle_timeout = s.idle_timeout;
    let rules = Arc::new(crate::precheck::Rules {
        region: s.region.clone(),
        allow_sigv2: s.allow_sigv2,
    });
    let shutdown = startup::shutdown_requested();
    tokio::pin!(shutdown);
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|e| format!("cannot watch SIGHUP: {e}"))?;
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
            _ = hangup.recv() => {
                reload_certificate(tls.as_deref());
                continue;
            }
        };
        // Over a cap: the connection is closed at once (the admission logs why).
        let Ok(ticket) = admission.admit(peer.ip()) else {
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let activity = crate::conn::Activity::new();
        let handler = {
            let ctx = RequestContext {
                svc: service.clone(),
                metrics: metrics.clone(),
                engine: engine.clone(),
                rules: rules.clone(),
                activity: activity.clone(),
                security_headers: security_headers.clone(),
                nats: nats_status.clone(),
                origin: engine::access::Origin {
                    secure_transport: tls.is_some(),
                    source_ip: Some(peer.ip().to_canonical()),
                },
                vhosts: vhosts.clone(),
            };
            service_fn(move |req| ctx.clone().handle(req))
        };
        let http = http.clone();
        let acceptor = tls.as_ref().map(|t| t.acceptor());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _ticket = ticket;
            let io = match acceptor {
                Some(acc) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acc.accept(tcp)).await {
                    Ok(Ok(t)) => crate::conn::Io::Tls(Box::new(t)),
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, "TLS handshake failed: {e}");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                },
                None => crate::conn::Io::Plain(tcp),
            };
            let io = crate::conn::Tracked::new(io, activity.clone());
            let conn = http
                .serve_connection(TokioIo::new(io), handler)
                .into_owned();
            let conn = watcher.watch(conn);
            tokio::select! {
                r = conn => if let Err(e) = r {
                    tracing::debug!(%peer, "connection: {e}");
                },
                // Idle before the first request or between requests: closed.
                _ = activity.idle_timeout(idle_timeout) => {
                    tracing::debug!(%peer, "idle connection closed after {idle_timeout:?}");
                }
            }
        });
    }
    println!("Shutting down: finishing requests in flight");
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still running after {SHUTDOWN_GRACE:?}; closing anyway");
    }
    if let Some(b) = background {
        b.stop().await;
    }
    if let Some(n) = node {
        n.stop().await;
    }
    drop(nats);
    drop(service);
    drop(engine);
    Ok(ExitCode::SUCCESS)
}

/// SIGHUP: the certificate and key are read again (a renewal, e.g. by Let's Encrypt);
/// connections open keep theirs. A file that does not load leaves the certificate of before.
fn reload_certificate(tls: Option<&tls::Reloadable>) {
    let Some(tls) = tls else {
        tracing::info!("SIGHUP: serving plain HTTP, no certificate to reload");
        return;
    };
    match tls.reload() {
        Ok(()) => {
            tracing::info!(cert = %tls.cert_path().display(), "SIGHUP: TLS certificate reloaded")
        }
        Err(e) => {
            tracing::error!("SIGHUP: TLS certificate not reloaded, the previous one stays: {e}")
        }
    }
}

/// The S3 layer over `store`, checking signatures against `auth`, with virtual hosts under
/// `domains`.
pub fn s3_service(
    store: Store,
    auth: crate::auth::KeyStore,
    domains: &[String],
) -> s3s::service::S3Service {
    let access = crate::access::Access {
        admins: auth.admin_ids(),
        engine: store.engine.clone(),
    };
    let mut b = S3ServiceBuilder::new(store);
    b.set_config(Arc::new(s3s::config::StaticConfigProvider::new(Arc::new(
        s3_layer_limits(),
    ))));
    b.set_auth(auth);
    b.set_access(access);
    b.set_host(crate::vhost::VirtualHosts::new(domains));
    b.build()
}

/// Limits of the S3 layer. A browser POST form's fields are read into memory before its
/// signature can be checked, by anyone: they are held to what a form needs (a policy document is
/// a few KiB), so unauthenticated forms cost at most 1 MiB each; the file part streams after
/// the signature is checked.
fn s3_layer_limits() -> s3s::config::S3Config {
    let mut c = s3s::config::S3Config::default();
    c.xml_max_body_size = crate::precheck::MAX_XML_BODY as usize;
    c.form_max_field_size = 64 * 1024;
    c.form_max_fields_size = 1024 * 1024;
    c.form_max_parts = 100;
    c
}

/// Raises the descriptor limit and sets the connection caps below it.
fn connection_admission(s: &Settings) -> Arc<crate::conn::Admission> {
    let fd_limit = match crate::conn::raise_fd_limit() {
        Ok((before, after)) => {
            if after > before {
                tracing::info!("open file limit raised from {before} to {after}");
            }
            after
        }
        Err(e) => {
            tracing::warn!("cannot read or raise the open file limit: {e}");
            1024
        }
    };
    let (total, per_client) = crate::conn::default_caps(fd_limit);
    let total = s.max_connections.unwrap_or(total);
    let per_client = s
        .max_connections_per_client
        .unwrap_or(per_client)
        .min(total);
    tracing::info!(
        "connections: at most {total} open, {per_client} per client address; idle ones closed after {:?}",
        s.idle_timeout
    );
    crate::conn::Admission::new(total, per_client)
}

/// Longest path logged whole; longer ones are cut (a request line can be 64 KiB).
const MAX_LOGGED_PATH: usize = 1024;
/// Longest error message logged.
const MAX_LOGGED_MESSAGE: usize = 256;

/// Cuts `s` to at most `max` bytes at a character boundary, marking the cut.
fn bounded(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if s.len() <= max {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!("{}…", &s[..end]))
}

/// What every request of a connection needs.
#[derive(Clone)]
struct RequestContext {
    svc: s3s::service::S3Service,
    metrics: Arc<crate::metrics::Metrics>,
    engine: engine::Engine,
    rules: Arc<crate::precheck::Rules>,
    activity: Arc<crate::conn::Activity>,
    /// Where the connection comes from (for policies' conditions).
    origin: engine::access::Origin,
    /// Virtual-hosted bucket names (CORS finds the bucket by them).
    vhosts: Arc<crate::vhost::VirtualHosts>,
    /// Headers every response carries.
    security_headers: crate::security_headers::SecurityHeaders,
    /// The NATS door's state, when it is configured.
    nats: Option<Arc<crate::nats::NatsStatus>>,
}

impl RequestContext {
    /// One request, answered with the headers every response carries.
    async fn handle(
        self,
        req: http::Request<hyper::body::Incoming>,
    ) -> Result<http::Response<s3s::Body>, s3s::HttpError> {
        let headers = self.security_headers.clone();
        let mut resp = self.respond(req).await?;
        headers.apply(resp.headers_mut());
        Ok(resp)
    }

    /// One request: admin paths, the checks before the S3 layer, the S3 layer; response
    /// headers, metrics and the access log.
    async fn respond(
        self,
        mut req: http::Request<hyper::body::Incoming>,
    ) -> Result<http::Response<s3s::Body>, s3s::HttpError> {
        req.extensions_mut().insert(self.origin);
        let _in_flight = self.activity.request();
        if let Some(r) = crate::routes::handle(
            req.method(),
            req.uri().path(),
            &self.engine,
            &self.metrics,
            self.nats.as_deref(),
        )
        .await
        {
            return Ok(r);
        }
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        if method == http::Method::OPTIONS {
            let resp = crate::cors::preflight(&self.engine, req.headers(), &path, &self.vhosts);
            let status = resp.status().as_u16();
            self.metrics.record(
                "PreflightCORS",
                status,
                0,
                0,
                started.elapsed().as_secs_f64(),
            );
            tracing::info!(op = "PreflightCORS", %method, path = %bounded(&path, MAX_LOGGED_PATH), status, "request");
            return Ok(resp);
        }
        let cors = crate::cors::Actual::of(&method, req.headers(), &path, &self.vhosts);
        let guessed_op = crate::metrics::operation(&method, &path, req.uri().query());
        let rid = request_id();
        let bytes_in = req
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let S3Call {
            response: resp,
            access_key,
            op,
        } = call_s3(&self.svc, &self.rules, req).await?;
        // The operation the S3 layer routed to; a request refused before routing (a bad
        // signature, a malformed path) is named from its method, path and query.
        let op = op.unwrap_or(guessed_op);
        let (mut resp, error) =
            complete_error_body(resp, &method, &path, &rid, &self.metrics).await;
        let h = resp.headers_mut();
        if let Some(c) = &cors {
            c.decorate(&self.engine, h);
        }
        if let Ok(v) = http::HeaderValue::from_str(&rid) {
            h.insert("x-amz-request-id", v.clone());
            h.insert("x-amz-id-2", v);
        }
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        if let Ok(v) = http::HeaderValue::from_str(&date) {
            h.insert(http::header::DATE, v);
        }
        let bytes_out = h
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let latency = started.elapsed().as_secs_f64();
        let status = resp.status().as_u16();
        self.metrics
            .record(op, status, bytes_in, bytes_out, latency);
        let path = bounded(&path, MAX_LOGGED_PATH);
        let access_key = access_key.as_deref().unwrap_or("-");
        let (code, message) = error
            .as_ref()
            .map(|(c, m)| (c.as_str(), bounded(m, MAX_LOGGED_MESSAGE)))
            .unwrap_or(("", std::borrow::Cow::Borrowed("")));
        // Client errors are the client's business: INFO like every request; server errors ERROR.
        if status >= 500 {
            tracing::error!(
                request_id = %rid, op, %method, path = %path, access_key, status, error_code = code,
                error = %message, bytes_in, bytes_out, latency_ms = latency * 1e3, "request"
            );
        } else {
            tracing::info!(
                request_id = %rid, op, %method, path = %path, access_key, status, error_code = code,
                error = %message, bytes_in, bytes_out, latency_ms = latency * 1e3, "request"
            );
        }
        Ok(resp)
    }
}

/// What [`call_s3`] gives back.
pub struct S3Call {
    /// The response.
    pub response: http::Response<s3s::Body>,
    /// The access key the request claims (cut at 128 bytes), for the access log.
    pub access_key: Option<String>,
    /// The operation the S3 layer routed the request to, if it got that far.
    pub op: Option<&'static str>,
}

/// A request for the S3 API: the checks before the S3 layer (`precheck`), then the S3 layer.
pub async fn call_s3<B>(
    svc: &s3s::service::S3Service,
    rules: &crate::precheck::Rules,
    mut req: http::Request<B>,
) -> Result<S3Call, s3s::HttpError>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + Sync + Unpin + 'static,
    s3s::Body: From<B>,
    s3s::StdError: From<B::Error>,
{
    let head = crate::precheck::Head {
        method: req.method(),
        query: req.uri().query(),
        headers: req.headers(),
    };
    let signing = crate::precheck::signing(&head);
    let access_key = signing.access_key().map(|k| bounded(k, 128).into_owned());
    let now = std::time::SystemTime::now();
    if let Some(r) = crate::precheck::check_signed(&head, &signing, rules, now) {
        return Ok(S3Call {
            response: r.response(),
            access_key,
            op: None,
        });
    }
    drop(signing);
    let routed = crate::access::RoutedOp::default();
    req.extensions_mut().insert(routed.clone());
    let response = svc.call(with_framing_watch(req)).await?;
    Ok(S3Call {
        response,
        access_key,
        op: routed.get(),
    })
}

/// Hands the request to the S3 layer's type; an `aws-chunked` body passes through a watch of
/// its framing, which the body verifier reads at the end (see `framing`).
fn with_framing_watch<B>(mut req: http::Request<B>) -> s3s::HttpRequest
where
    B: http_body::Body<Data = bytes::Bytes> + Send + Sync + Unpin + 'static,
    s3s::Body: From<B>,
    s3s::StdError: From<B::Error>,
{
    if crate::form_frames::is_form_upload(req.method(), req.headers()) {
        // s3s's form parser fails on large frames (see `form_frames`).
        return req.map(|b| s3s::Body::http_body(crate::form_frames::SmallFrames::new(b)));
    }
    if !crate::framing::is_streaming(req.headers()) {
        return req.map(s3s::Body::from);
    }
    let declared = req
        .headers()
        .get("x-amz-decoded-content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let framing = crate::framing::Framing::new(declared);
    req.extensions_mut().insert(framing.clone());
    req.map(|b| s3s::Body::http_body(crate::framing::Watch::new(b, framing)))
}

/// Adds `<Resource>` and `<RequestId>` to an S3 error body (s3s writes only Code and Message).
/// Error bodies are small; anything over 64 KiB is passed through untouched.
async fn complete_error_body(
    resp: http::Response<s3s::Body>,
    method: &http::Method,
    path: &str,
    rid: &str,
    metrics: &crate::metrics::Metrics,
) -> (http::Response<s3s::Body>, Option<(String, String)>) {
    use http_body_util::BodyExt;
    if resp.status().as_u16() < 400 || method == http::Method::HEAD {
        return (resp, None);
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = match http_body_util::Limited::new(body, 64 * 1024)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(_) => bytes::Bytes::new(),
    };
    let text = String::from_utf8_lossy(&bytes);
    let element = |tag: &str| {
        text.split_once(&format!("<{tag}>"))
            .and_then(|(_, r)| r.split_once(&format!("</{tag}>")))
            .map(|(c, _)| c.to_string())
    };
    let code = element("Code");
    if let Some(code) = &code {
        metrics.record_error(code);
    }
    let error = code.map(|c| (c, element("Message").unwrap_or_default()));
    let fixed = if text.contains("</Error>") && !text.contains("<RequestId>") {
        text.replacen(
            "</Error>",
            &format!(
                "<Resource>{}</Resource><RequestId>{rid}</RequestId></Error>",
                crate::precheck::xml_escape(path)
            ),
            1,
        )
    } else {
        text.into_owned()
    };
    if let Ok(v) = http::HeaderValue::from_str(&fixed.len().to_string()) {
        parts.headers.insert(http::header::CONTENT_LENGTH, v);
    }
    (
        http::Response::from_parts(parts, s3s::Body::from(fixed)),
        error,
    )
}

fn human(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", units[u])
}

/// `s3d heal` / `s3d scrub`.
pub async fn admin_heal(
    s: Settings,
    mode: engine::HealMode,
    rate_limit_mb: Option<u64>,
    resume: bool,
) -> Result<ExitCode, String> {
    use std::io::IsTerminal;
    let engine = open_engine(&s)?;
    let tty = std::io::stderr().is_terminal();
    let cancel = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let c2 = cancel.clone();
    tokio::spawn(async move {
        startup::shutdown_requested().await;
        c2.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let rep = engine
        .heal(
            engine::HealOptions {
                mode,
                rate_limit: rate_limit_mb.map(|m| m * 1_000_000),
                cancel: Some(cancel),
                resume,
            },
            Box::new(move |p| {
                if tty {
                    let pct = if p.chunks_total > 0 {
                        p.chunks_done as f64 * 100.0 / p.chunks_total as f64
                    } else {
                        100.0
                    };
                    eprint!(
                        "\r[{:<40}] {pct:5.1}%  {}/{} chunks  {} read  {} repaired ",
                        "#".repeat((pct / 2.5) as usize),
                        p.chunks_done,
                        p.chunks_total,
                        human(p.bytes_read),
                        p.shards_repaired
                    );
                }
            }),
        )
        .await
        .map_err(|e| e.to_string())?;
    if tty {
        eprintln!();
    }
    println!(
        "{}: {} chunks, {} shards checked; {} missing, {} corrupt, {} repaired; {} read, {} written; {:.1}s{}",
        if mode == engine::HealMode::Scrub { "scrub" } else { "heal" },
        rep.chunks_checked,
        rep.shards_checked,
        rep.shards_missing,
        rep.shards_corrupt,
        rep.shards_repaired,
        human(rep.bytes_read),
        human(rep.bytes_written),
        rep.elapsed.as_secs_f64(),
        if rep.complete { "" } else { " (interrupted: run again with --resume)" }
    );
    for d in &rep.disks_formatted {
        println!("formatted replacement disk {d}");
    }
    for (d, why) in &rep.disks_refused {
        println!("refused disk {d}: {why}");
    }
    for c in &rep.unrecoverable {
        println!("UNRECOVERABLE chunk {c}");
    }
    let failed = !rep.unrecoverable.is_empty() || !rep.disks_refused.is_empty() || !rep.complete;
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `s3d gc`.
pub async fn admin_gc(s: Settings) -> Result<ExitCode, String> {
    let engine = open_engine(&s)?;
    let r = engine.gc(true).await.map_err(|e| e.to_string())?;
    println!(
        "gc: {} chunks removed ({} freed), {} of orphaned shard space freed, {} empty volumes removed, {:.1}s",
        r.chunks_removed,
        human(r.bytes_freed),
        human(r.orphan_bytes_freed),
        r.volumes_removed,
        r.elapsed.as_secs_f64()
    );
    if r.orphan_bytes_waiting > 0 {
        println!(
            "{} of shards no record names left for now: a write on another node may still \
             commit them; freed once unnamed for twice cluster.write_limit_secs",
            human(r.orphan_bytes_waiting)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `s3d lifecycle [--dry-run]`: one pass of the lifecycle rules, each action on a line.
pub async fn admin_lifecycle(s: Settings, dry_run: bool) -> Result<ExitCode, String> {
    let engine = open_engine(&s)?;
    let run = engine::lifecycle::LifecycleRun {
        dry_run,
        ..Default::default()
    };
    let r = engine.run_lifecycle(run).await.map_err(|e| e.to_string())?;
    let verb = if dry_run { "would" } else { "did" };
    for a in &r.actions {
        let what = a.kind.name();
        println!("{what}\t{}/{}\t{}\trule={}", a.bucket, a.key, a.id, a.rule);
    }
    println!(
        "lifecycle: {verb} {} actions in {} buckets ({} keys looked at{})",
        r.actions.len(),
        r.buckets,
        r.keys,
        if r.skipped > 0 {
            format!(", {} skipped: changed meanwhile", r.skipped)
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// `s3d key …`.
pub async fn admin_key(s: Settings, cmd: crate::keys_cli::KeyCommand) -> Result<ExitCode, String> {
    let engine = open_engine(&s)?;
    crate::keys_cli::run(&engine, cmd).await
}

/// `s3d bucket …`.
pub async fn admin_bucket(
    s: Settings,
    cmd: crate::bucket_cli::BucketCommand,
) -> Result<ExitCode, String> {
    let engine = open_engine(&s)?;
    crate::bucket_cli::run(&engine, cmd).await
}

/// `s3d status`.
pub fn admin_status(s: Settings) -> Result<ExitCode, String> {
    let engine = open_engine(&s)?;
    let st = engine.status().map_err(|e| e.to_string())?;
    println!("disks:");
    let mut bad = false;
    for d in &st.disks {
        let state = match &d.state {
            engine::DiskState::Online => "online".to_string(),
            engine::DiskState::Missing => "MISSING".to_string(),
            engine::DiskState::Unformatted => "EMPTY (run s3d heal)".to_string(),
            engine::DiskState::Foreign(w) => format!("REFUSED ({w})"),
        };
        bad |= d.state != engine::DiskState::Online;
        println!(
            "  {:>2} {:<40} {:<24} {} free of {}",
            d.index,
            d.path.display(),
            state,
            human(d.free_bytes),
            human(d.total_bytes)
        );
    }
    println!(
        "buckets: {}  objects: {}  data: {}\nold versions: {} ({})  delete markers: {}\nchunks: {} ({})  dedup ratio: {:.2}\ncompression: {} chunks compressed, {} saved\nrepair queue: {}  awaiting gc: {}",
        st.buckets,
        st.objects,
        human(st.logical_bytes),
        st.noncurrent_versions,
        human(st.noncurrent_bytes),
        st.delete_markers,
        st.chunks,
        human(st.chunk_bytes),
        st.dedup_ratio,
        st.compressed_chunks,
        human(st.compression_saved_bytes),
        st.repair_queue,
        st.gc_candidates
    );
    for l in &st.loose_modes {
        println!(
            "WARNING: {} has mode {:04o}: other users may read the store (chmod go-rwx; the store makes 0700 directories and 0600 files)",
            l.path.display(),
            l.mode
        );
    }
    Ok(if bad || st.repair_queue > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
