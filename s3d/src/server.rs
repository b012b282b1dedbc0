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

fn open_engine(s: &Settings) -> Result<engine::Engine, String> {
    engine::Engine::open(s.engine.clone())
        .map_err(|e| format!("cannot open {}: {e}", s.engine.data_dir.display()))
}

fn request_id() -> String {
    hex::encode_upper(rand::random::<[u8; 8]>())
}

/// Runs the server until SIGINT or SIGTERM.
pub async fn serve(s: Settings) -> Result<ExitCode, String> {
    let engine = open_engine(&s)?;
    // Deleted and overwritten objects' space comes back by itself (stops with the server).
    let every = s.engine.gc_interval;
    let _gc = (!every.is_zero()).then(|| engine.spawn_auto_gc(every));
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
    let auth = crate::auth::KeyStore::new(&keys);
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let store = Store {
        engine: engine.clone(),
        region: s.region.clone(),
        body_idle: s.body_idle_timeout,
    };
    let service = {
        let mut b = S3ServiceBuilder::new(store);
        b.set_auth(auth);
        b.set_host(crate::vhost::VirtualHosts::new(&s.domains));
        b.build()
    };
    let acceptor = if s.insecure_http {
        tracing::warn!("serving plain HTTP: use only behind a TLS-terminating proxy");
        None
    } else {
        let (cert, key) = match (&s.tls_cert, &s.tls_key) {
            (Some(c), Some(k)) => (c.clone(), k.clone()),
            _ => {
                let (c, k, created) =
                    tls::ensure_self_signed(&s.engine.data_dir).map_err(|e| e.to_string())?;
                if created {
                    println!("Generated a self-signed TLS certificate: {}", c.display());
                }
                (c, k)
            }
        };
        let cfg = tls::server_config(&cert, &key).map_err(|e| e.to_string())?;
        Some(tokio_rustls::TlsAcceptor::from(cfg))
    };
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
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    println!("Predastore s3d listening on {scheme}://{local}");
    let shown_host = if s.host == "0.0.0.0" {
        "localhost"
    } else {
        s.host.as_str()
    };
    println!("Endpoint: {scheme}://{shown_host}:{}", local.port());

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let maintenance = tokio::spawn(crate::maintenance::run(
        engine.clone(),
        crate::maintenance::Schedule {
            repair_every: s.repair_every,
            scrub_every: s.scrub_every,
            scrub_rate: s.scrub_rate,
        },
        stop.clone(),
    ));
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // Slow or silent clients: the request head must arrive within this time.
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(s.header_timeout);
    let http = Arc::new(builder);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
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
            _ = tokio::signal::ctrl_c() => break,
            _ = sigterm.recv() => break,
        };
        let _ = tcp.set_nodelay(true);
        let svc = service.clone();
        let metrics = metrics.clone();
        let eng = engine.clone();
        let handler = service_fn(move |req: http::Request<hyper::body::Incoming>| {
            let svc = svc.clone();
            let metrics = metrics.clone();
            let eng = eng.clone();
            async move {
                if let Some(r) =
                    crate::routes::handle(req.method(), req.uri().path(), &eng, &metrics).await
                {
                    return Ok::<_, s3s::HttpError>(r);
                }
                let started = Instant::now();
                let method = req.method().clone();
                let path = req.uri().path().to_string();
                let op = crate::metrics::operation(&method, &path, req.uri().query());
                let rid = request_id();
                let bytes_in = req
                    .headers()
                    .get(http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
                let resp = match crate::routes::refuse_early(req.uri()) {
                    Some(r) => r,
                    None => hyper::service::Service::call(&svc, req).await?,
                };
                let mut resp = complete_error_body(resp, &method, &path, &rid, &metrics).await;
                let h = resp.headers_mut();
                if let Ok(v) = http::HeaderValue::from_str(&rid) {
                    h.insert("x-amz-request-id", v.clone());
                    h.insert("x-amz-id-2", v);
                }
                h.insert(
                    http::header::SERVER,
                    http::HeaderValue::from_static("Predastore"),
                );
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
                metrics.record(op, resp.status().as_u16(), bytes_in, bytes_out, latency);
                tracing::info!(
                    request_id = %rid,
                    op,
                    %method,
                    path = %path,
                    status = resp.status().as_u16(),
                    bytes_in,
                    bytes_out,
                    latency_ms = latency * 1e3,
                    "request"
                );
                Ok::<_, s3s::HttpError>(resp)
            }
        });
        let http = http.clone();
        match &acceptor {
            Some(acc) => {
                let acc = acc.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acc.accept(tcp)).await {
                        Ok(Ok(t)) => t,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, "TLS handshake failed: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let conn = http
                        .serve_connection(TokioIo::new(tls), handler)
                        .into_owned();
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(%peer, "connection: {e}");
                    }
                });
            }
            None => {
                let conn = http
                    .serve_connection(TokioIo::new(tcp), handler)
                    .into_owned();
                let fut = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = fut.await {
                        tracing::debug!(%peer, "connection: {e}");
                    }
                });
            }
        }
    }
    println!("Shutting down: finishing requests in flight");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still running after {SHUTDOWN_GRACE:?}; closing anyway");
    }
    maintenance.abort();
    let _ = maintenance.await;
    drop(service);
    drop(engine);
    Ok(ExitCode::SUCCESS)
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Adds `<Resource>` and `<RequestId>` to an S3 error body (s3s writes only Code and Message).
/// Error bodies are small; anything over 64 KiB is passed through untouched.
async fn complete_error_body(
    resp: http::Response<s3s::Body>,
    method: &http::Method,
    path: &str,
    rid: &str,
    metrics: &crate::metrics::Metrics,
) -> http::Response<s3s::Body> {
    use http_body_util::BodyExt;
    if resp.status().as_u16() < 400 || method == http::Method::HEAD {
        return resp;
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
    if let Some(code) = text
        .split_once("<Code>")
        .and_then(|(_, r)| r.split_once("</Code>"))
        .map(|(c, _)| c)
    {
        metrics.record_error(code);
    }
    let fixed = if text.contains("</Error>") && !text.contains("<RequestId>") {
        text.replacen(
            "</Error>",
            &format!(
                "<Resource>{}</Resource><RequestId>{rid}</RequestId></Error>",
                xml_escape(path)
            ),
            1,
        )
    } else {
        text.into_owned()
    };
    if let Ok(v) = http::HeaderValue::from_str(&fixed.len().to_string()) {
        parts.headers.insert(http::header::CONTENT_LENGTH, v);
    }
    http::Response::from_parts(parts, s3s::Body::from(fixed))
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
        if tokio::signal::ctrl_c().await.is_ok() {
            c2.store(true, std::sync::atomic::Ordering::Relaxed);
        }
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
    Ok(ExitCode::SUCCESS)
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
        "buckets: {}  objects: {}  data: {}\nchunks: {} ({})  dedup ratio: {:.2}\nrepair queue: {}  awaiting gc: {}",
        st.buckets,
        st.objects,
        human(st.logical_bytes),
        st.chunks,
        human(st.chunk_bytes),
        st.dedup_ratio,
        st.repair_queue,
        st.gc_candidates
    );
    Ok(if bad || st.repair_queue > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
