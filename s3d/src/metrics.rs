//! Prometheus metrics: requests, bytes and latency by operation, responses by status, disk state.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Latency histogram bucket bounds, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct OpStats {
    count: u64,
    bytes_in: u64,
    bytes_out: u64,
    latency_sum: f64,
    latency_buckets: [u64; BUCKETS.len()],
}

/// Counters shared by all connections.
#[derive(Default)]
pub struct Metrics {
    ops: Mutex<BTreeMap<&'static str, OpStats>>,
    statuses: Mutex<BTreeMap<(&'static str, u16), u64>>,
    errors: Mutex<BTreeMap<String, u64>>,
}

/// Names the S3 operation of a request from its method, path and query (for metrics and logs).
pub fn operation(method: &http::Method, path: &str, query: Option<&str>) -> &'static str {
    let q = query.unwrap_or("");
    let has = |k: &str| {
        q.split('&')
            .any(|p| p == k || p.starts_with(&format!("{k}=")))
    };
    let segs = path
        .trim_start_matches('/')
        .splitn(2, '/')
        .collect::<Vec<_>>();
    let object = segs.len() == 2 && !segs[1].is_empty();
    let bucket = !segs[0].is_empty();
    use http::Method as M;
    match (method.clone(), bucket, object) {
        (M::GET, false, _) => "ListBuckets",
        (M::GET, true, false) if has("location") => "GetBucketLocation",
        (M::GET, true, false) if has("versioning") => "GetBucketVersioning",
        (M::GET, true, false) if has("versions") => "ListObjectVersions",
        (M::GET, true, false) if has("uploads") => "ListMultipartUploads",
        (M::GET, true, false) if has("list-type") => "ListObjectsV2",
        (M::GET, true, false) => "ListObjects",
        (M::PUT, true, false) => "CreateBucket",
        (M::DELETE, true, false) => "DeleteBucket",
        (M::HEAD, true, false) => "HeadBucket",
        (M::POST, true, false) if has("delete") => "DeleteObjects",
        (M::GET, true, true) if has("tagging") => "GetObjectTagging",
        (M::PUT, true, true) if has("tagging") => "PutObjectTagging",
        (M::DELETE, true, true) if has("tagging") => "DeleteObjectTagging",
        (M::GET, true, true) if has("uploadId") => "ListParts",
        (M::GET, true, true) => "GetObject",
        (M::HEAD, true, true) => "HeadObject",
        (M::PUT, true, true) if has("partNumber") => "UploadPart",
        (M::PUT, true, true) => "PutObject",
        (M::POST, true, true) if has("uploads") => "CreateMultipartUpload",
        (M::POST, true, true) if has("uploadId") => "CompleteMultipartUpload",
        (M::DELETE, true, true) if has("uploadId") => "AbortMultipartUpload",
        (M::DELETE, true, true) => "DeleteObject",
        _ => "Other",
    }
}

impl Metrics {
    /// Records one finished request.
    pub fn record(&self, op: &'static str, status: u16, bytes_in: u64, bytes_out: u64, secs: f64) {
        if let Ok(mut ops) = self.ops.lock() {
            let s = ops.entry(op).or_default();
            s.count += 1;
            s.bytes_in += bytes_in;
            s.bytes_out += bytes_out;
            s.latency_sum += secs;
            for (i, b) in BUCKETS.iter().enumerate() {
                if secs <= *b {
                    s.latency_buckets[i] += 1;
                }
            }
        }
        if let Ok(mut st) = self.statuses.lock() {
            *st.entry((op, status)).or_default() += 1;
        }
    }

    /// Counts one S3 error response by its code.
    pub fn record_error(&self, code: &str) {
        if let Ok(mut e) = self.errors.lock() {
            *e.entry(code.to_string()).or_default() += 1;
        }
    }

    /// The Prometheus text exposition, with the disks' current state.
    pub fn render(&self, engine: &engine::Engine) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "# HELP predastore_requests_total S3 requests by operation."
        );
        let _ = writeln!(o, "# TYPE predastore_requests_total counter");
        let _ = writeln!(
            o,
            "# HELP predastore_request_duration_seconds Request latency."
        );
        let _ = writeln!(o, "# TYPE predastore_request_duration_seconds histogram");
        if let Ok(ops) = self.ops.lock() {
            for (op, s) in ops.iter() {
                let _ = writeln!(o, "predastore_requests_total{{op=\"{op}\"}} {}", s.count);
                let _ = writeln!(o, "predastore_bytes_in_total{{op=\"{op}\"}} {}", s.bytes_in);
                let _ = writeln!(
                    o,
                    "predastore_bytes_out_total{{op=\"{op}\"}} {}",
                    s.bytes_out
                );
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        o,
                        "predastore_request_duration_seconds_bucket{{op=\"{op}\",le=\"{b}\"}} {}",
                        s.latency_buckets[i]
                    );
                }
                let _ = writeln!(
                    o,
                    "predastore_request_duration_seconds_bucket{{op=\"{op}\",le=\"+Inf\"}} {}",
                    s.count
                );
                let _ = writeln!(
                    o,
                    "predastore_request_duration_seconds_sum{{op=\"{op}\"}} {}",
                    s.latency_sum
                );
                let _ = writeln!(
                    o,
                    "predastore_request_duration_seconds_count{{op=\"{op}\"}} {}",
                    s.count
                );
            }
        }
        let _ = writeln!(o, "# HELP predastore_responses_total Responses by operation and HTTP status (4xx/5xx are S3 errors).");
        let _ = writeln!(o, "# TYPE predastore_responses_total counter");
        if let Ok(st) = self.statuses.lock() {
            for ((op, status), n) in st.iter() {
                let _ = writeln!(
                    o,
                    "predastore_responses_total{{op=\"{op}\",status=\"{status}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            o,
            "# HELP predastore_disk_online 1 when the disk is online and ours."
        );
        let _ = writeln!(o, "# TYPE predastore_disk_online gauge");
        for d in engine.disk_status() {
            let online = (d.state == engine::DiskState::Online) as u8;
            let _ = writeln!(o, "predastore_disk_online{{disk=\"{}\"}} {online}", d.index);
            let _ = writeln!(
                o,
                "predastore_disk_free_bytes{{disk=\"{}\"}} {}",
                d.index, d.free_bytes
            );
            let _ = writeln!(
                o,
                "predastore_disk_total_bytes{{disk=\"{}\"}} {}",
                d.index, d.total_bytes
            );
        }
        if let Ok(n) = engine.repair_queue_len() {
            let _ = writeln!(o, "predastore_repair_queue {n}");
        }
        let lc = engine.lifecycle_totals();
        let _ = writeln!(
            o,
            "# HELP predastore_lifecycle_passes_total Lifecycle passes run by this process."
        );
        let _ = writeln!(o, "# TYPE predastore_lifecycle_passes_total counter");
        let _ = writeln!(o, "predastore_lifecycle_passes_total {}", lc.passes);
        let _ = writeln!(
            o,
            "# HELP predastore_lifecycle_actions_total Lifecycle actions done by this process, by action (skipped: the object changed meanwhile)."
        );
        let _ = writeln!(o, "# TYPE predastore_lifecycle_actions_total counter");
        for (kind, n) in &lc.actions {
            let _ = writeln!(
                o,
                "predastore_lifecycle_actions_total{{action=\"{}\"}} {n}",
                kind.name()
            );
        }
        let _ = writeln!(
            o,
            "predastore_lifecycle_actions_total{{action=\"skipped\"}} {}",
            lc.skipped
        );
        o
    }
}

/// The NATS door's lines.
pub fn render_nats(n: &crate::nats::NatsStatus) -> String {
    use std::sync::atomic::Ordering::Relaxed;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# HELP predastore_nats_connected 1 while connected to NATS."
    );
    let _ = writeln!(o, "# TYPE predastore_nats_connected gauge");
    let _ = writeln!(
        o,
        "predastore_nats_connected {}",
        n.connected.load(Relaxed) as u8
    );
    let _ = writeln!(
        o,
        "# HELP predastore_nats_disconnects_total Connections to NATS lost."
    );
    let _ = writeln!(o, "# TYPE predastore_nats_disconnects_total counter");
    let _ = writeln!(
        o,
        "predastore_nats_disconnects_total {}",
        n.disconnects.load(Relaxed)
    );
    let _ = writeln!(
        o,
        "# HELP predastore_nats_requests_total NATS requests answered, by outcome."
    );
    let _ = writeln!(o, "# TYPE predastore_nats_requests_total counter");
    let _ = writeln!(
        o,
        "predastore_nats_requests_total{{outcome=\"ok\"}} {}",
        n.answered_ok.load(Relaxed)
    );
    let _ = writeln!(
        o,
        "predastore_nats_requests_total{{outcome=\"error\"}} {}",
        n.answered_error.load(Relaxed)
    );
    o
}
