//! Connection hygiene: how many connections may be open (in total and per client address),
//! how long one may sit idle, and the process's descriptor limit.
//!
//! Every open connection holds a file descriptor. Without these limits, clients that connect
//! and send nothing (or keep a connection alive and never use it) can hold every descriptor the
//! process has, and shut everyone else out for as long as they like.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Descriptors kept for everything but connections (LMDB, volume files, logs, the listener).
const RESERVED_FDS: u64 = 256;
/// Highest default total connection cap, whatever the descriptor limit.
const DEFAULT_MAX_CONNECTIONS: u64 = 4096;
/// How often a "limit reached" line may be logged.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Raises the soft limit on open files to the hard limit; returns (before, after).
pub fn raise_fd_limit() -> std::io::Result<(u64, u64)> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let before = r.rlim_cur;
    if r.rlim_cur < r.rlim_max {
        r.rlim_cur = r.rlim_max;
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok((before, r.rlim_cur))
}

/// Default caps for a descriptor limit: total below the limit (leaving [`RESERVED_FDS`], or
/// half of a small limit), a quarter of it per client address.
pub fn default_caps(fd_limit: u64) -> (usize, usize) {
    let reserve = RESERVED_FDS.min(fd_limit / 2);
    let total = fd_limit
        .saturating_sub(reserve)
        .clamp(1, DEFAULT_MAX_CONNECTIONS);
    (total as usize, (total / 4).max(1) as usize)
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The total cap is reached.
    Total(usize),
    /// This client address has its cap's worth open.
    PerClient(IpAddr, usize),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Total(n) => write!(
                f,
                "connection limit reached: {n} connections open (server.max_connections); refusing new ones"
            ),
            Refused::PerClient(ip, n) => write!(
                f,
                "per-client connection limit reached: {ip} has {n} connections open (server.max_connections_per_client); refusing its new ones"
            ),
        }
    }
}

/// Counts open connections and admits new ones under the caps.
pub struct Admission {
    max_total: usize,
    max_per_client: usize,
    total: AtomicUsize,
    per_client: Mutex<HashMap<IpAddr, usize>>,
    last_warning: Mutex<Option<Instant>>,
    refused_since_warning: AtomicU64,
}

impl Admission {
    /// Caps of `max_total` connections, `max_per_client` from one address.
    pub fn new(max_total: usize, max_per_client: usize) -> Arc<Admission> {
        Arc::new(Admission {
            max_total: max_total.max(1),
            max_per_client: max_per_client.max(1),
            total: AtomicUsize::new(0),
            per_client: Mutex::new(HashMap::new()),
            last_warning: Mutex::new(None),
            refused_since_warning: AtomicU64::new(0),
        })
    }

    /// Admits a connection from `ip`, or says why not (and logs it, at most every 10 s).
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, Refused> {
        let r = self.try_admit(ip);
        if let Err(why) = &r {
            self.warn(why);
        }
        r
    }

    fn try_admit(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, Refused> {
        let mut per = self.per_client.lock().unwrap_or_else(|e| e.into_inner());
        let total = self.total.load(Ordering::Relaxed);
        if total >= self.max_total {
            return Err(Refused::Total(total));
        }
        let n = per.entry(ip).or_insert(0);
        if *n >= self.max_per_client {
            return Err(Refused::PerClient(ip, *n));
        }
        *n += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        Ok(Ticket {
            admission: self.clone(),
            ip,
        })
    }

    fn warn(&self, why: &Refused) {
        let refused = self.refused_since_warning.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self.last_warning.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| t.elapsed() < WARN_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        self.refused_since_warning.store(0, Ordering::Relaxed);
        tracing::warn!(refused, "{why}");
    }

    /// Connections open now.
    #[cfg(test)]
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }
}

/// An admitted connection; its slot is given back when dropped.
pub struct Ticket {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut per = self
            .admission
            .per_client
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = per.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per.remove(&self.ip);
            }
        }
        self.admission.total.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a connection is doing: when bytes last moved, and how many requests are being
/// handled. Idle = no request being handled and no bytes moved for the idle time.
pub struct Activity {
    start: tokio::time::Instant,
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    /// A connection that starts now.
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            start: tokio::time::Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        })
    }

    fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Marks a request as being handled until the guard is dropped.
    pub fn request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// How long the connection has been idle (zero while a request is handled).
    pub fn idle_for(&self) -> Duration {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return Duration::ZERO;
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }

    /// Resolves once the connection has been idle for `limit`.
    pub async fn idle_timeout(&self, limit: Duration) {
        loop {
            let idle = self.idle_for();
            if idle >= limit {
                return;
            }
            tokio::time::sleep(limit - idle).await;
        }
    }
}

/// A request being handled (see [`Activity::request`]).
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A connection's byte stream that records activity.
pub struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Tracked<S> {
    /// Tracks `inner` into `activity`.
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        activity.touch();
        Tracked { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A connection's byte stream: TLS, or plain TCP behind a proxy.
pub enum Io {
    /// HTTPS.
    Tls(Box<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>),
    /// Plain HTTP (`--insecure-http`).
    Plain(tokio::net::TcpStream),
}

impl tokio::io::AsyncRead for Io {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Tls(t) => std::pin::Pin::new(t.as_mut()).poll_read(cx, buf),
            Io::Plain(t) => std::pin::Pin::new(t).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for Io {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Io::Tls(t) => std::pin::Pin::new(t.as_mut()).poll_write(cx, buf),
            Io::Plain(t) => std::pin::Pin::new(t).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Io::Tls(t) => std::pin::Pin::new(t.as_mut()).poll_write_vectored(cx, bufs),
            Io::Plain(t) => std::pin::Pin::new(t).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Io::Tls(t) => t.is_write_vectored(),
            Io::Plain(t) => t.is_write_vectored(),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Tls(t) => std::pin::Pin::new(t.as_mut()).poll_flush(cx),
            Io::Plain(t) => std::pin::Pin::new(t).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Tls(t) => std::pin::Pin::new(t.as_mut()).poll_shutdown(cx),
            Io::Plain(t) => std::pin::Pin::new(t).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_stay_below_the_descriptor_limit() {
        assert_eq!(default_caps(128), (64, 16));
        assert_eq!(default_caps(1024), (768, 192));
        assert_eq!(default_caps(1 << 20), (4096, 1024));
        assert_eq!(default_caps(1), (1, 1));
    }

    #[test]
    fn admission_counts_total_and_per_client() {
        let a = Admission::new(3, 2);
        let x: IpAddr = "127.0.0.2".parse().unwrap();
        let y: IpAddr = "127.0.0.1".parse().unwrap();
        let t1 = a.admit(x).unwrap();
        let _t2 = a.admit(x).unwrap();
        assert_eq!(a.admit(x).err(), Some(Refused::PerClient(x, 2)));
        let _t3 = a.admit(y).unwrap();
        assert_eq!(a.admit(y).err(), Some(Refused::Total(3)));
        drop(t1);
        assert_eq!(a.open(), 2);
        assert!(a.admit(y).is_ok());
    }

    #[tokio::test]
    async fn idle_only_without_requests() {
        let act = Activity::new();
        act.touch();
        let guard = act.request();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(act.idle_for(), Duration::ZERO);
        drop(guard);
        let t = tokio::time::Instant::now();
        act.idle_timeout(Duration::from_millis(200)).await;
        assert!(t.elapsed() >= Duration::from_millis(150));
    }
}
