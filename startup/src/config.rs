//! `config.yaml`, one file for both doors: `server` and `auth` (s3d's), `storage` (both),
//! read strictly by both (an unknown or misspelt key is an error, in either), so a mountd
//! started with s3d's file mounts the same data dir. Flags override `PREDASTORE_*` variables,
//! which override the file; each door merges its own (s3d: `s3d::config::Settings`).

use std::path::{Path, PathBuf};

use std::time::Duration;

use engine::background::Schedule;
use engine::config::StorageSection;
use serde::Deserialize;

/// Errors loading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not valid YAML of the expected shape.
    #[error("invalid configuration file {path}: {source}")]
    Parse {
        /// File.
        path: PathBuf,
        /// Cause.
        source: serde_yaml_ng::Error,
    },
    /// A value is out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// `server.tls`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSection {
    /// PEM certificate chain (`cert_file` is read as the same).
    #[serde(alias = "cert_file")]
    pub cert: Option<PathBuf>,
    /// PEM private key (`key_file` is read as the same).
    #[serde(alias = "key_file")]
    pub key: Option<PathBuf>,
    /// Names (DNS names or IP addresses) of the self-signed certificate made when no
    /// certificate is configured; default `[localhost, "*.s3.localhost", 127.0.0.1, ::1]`.
    pub names: Option<Vec<String>>,
}

/// `server`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    /// Listen address.
    pub host: Option<String>,
    /// Listen port.
    pub port: Option<u16>,
    /// TLS files.
    pub tls: TlsSection,
    /// Serve plain HTTP (behind a TLS-terminating proxy only).
    pub insecure_http: Option<bool>,
    /// Region reported to clients.
    pub region: Option<String>,
    /// Log format: `text` or `json`.
    pub log_format: Option<String>,
    /// Domains for virtual-hosted-style addressing (`bucket.DOMAIN`); default
    /// `[s3.localhost, localhost]`.
    pub domains: Option<Vec<String>>,
    /// Seconds a client may take to send a request head (default 30).
    pub header_timeout_secs: Option<u64>,
    /// Seconds a request body may stall (default 60).
    pub body_idle_timeout_secs: Option<u64>,
    /// Seconds a connection may sit idle before its first request and between requests
    /// (default 60).
    pub idle_timeout_secs: Option<u64>,
    /// Most connections open at once (default: below the descriptor limit, at most 4096).
    pub max_connections: Option<usize>,
    /// Most connections open at once from one client address (default: a quarter of
    /// `max_connections`).
    pub max_connections_per_client: Option<usize>,
    /// Seconds between looks at the repair queue (default 30).
    pub repair_interval_secs: Option<u64>,
    /// Hours between full scrubs (0: never; default 168, weekly).
    pub scrub_interval_hours: Option<u64>,
    /// Scrub read rate limit in MB/s (default 20).
    pub scrub_rate_mb: Option<u64>,
    /// `max-age` of the `Strict-Transport-Security` header sent over HTTPS, in seconds
    /// (default 31536000, a year; 0: no header).
    pub hsts_max_age_secs: Option<u64>,
}

/// One access key pair.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KeyPair {
    /// Access key id.
    pub access_key: String,
    /// Secret access key.
    pub secret_key: String,
}

/// `auth`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSection {
    /// Key pairs accepted.
    pub keys: Vec<KeyPair>,
    /// One access key, beside or instead of `keys` (with `secret_key`).
    pub access_key: Option<String>,
    /// Its secret.
    pub secret_key: Option<String>,
    /// Whether S3 clients may set set-uid/set-gid bits and device nodes in POSIX metadata
    /// (default false: they are taken away; the mount can always make them).
    pub allow_setid_and_devices: Option<bool>,
    /// Whether Signature Version 2 is accepted (default true: boto3 and the aws cli v1
    /// presign with it), with the same time window and 7-day cap as SigV4.
    pub allow_sigv2: Option<bool>,
}

/// `lifecycle`: the passes that apply buckets' lifecycle rules.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LifecycleSection {
    /// Seconds between passes (0: none; default 3600).
    pub interval_secs: Option<u64>,
    /// Actions per second at most (default 500).
    pub rate: Option<u64>,
    /// Seconds in a lifecycle "day" (default 86400; shorten only to try rules out, as S3
    /// servers' test suites do). `PREDASTORE_LIFECYCLE_DAY_SECS` overrides it.
    pub day_secs: Option<f64>,
}

/// The `mount` section (mountd).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MountSection {
    /// The key of the store the mount acts as (access key id or name); none: an
    /// administrator's mount. `--access-key` / `PREDASTORE_MOUNT_ACCESS_KEY` override it.
    pub access_key: Option<String>,
    /// The write-back window in milliseconds (default [`DEFAULT_WRITEBACK_MS`]; 0: every
    /// `close` durable before it returns). `--writeback-ms` / `PREDASTORE_MOUNT_WRITEBACK_MS`
    /// override it.
    pub writeback_ms: Option<u64>,
}

/// The `cluster` section: this node's part in a cluster (docs/cluster.md). Absent (no `id`):
/// one machine, metadata in LMDB.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSection {
    /// The cluster's id: its keys in etcd live under `/predastore/<id>/`.
    pub id: Option<String>,
    /// This node's id (lowercase letters, digits, dashes; its certificate's name).
    pub node_id: Option<String>,
    /// etcd client URLs (`http://host:2379`).
    pub etcd: Vec<String>,
    /// Where the shard service listens (default `0.0.0.0:8444`).
    pub listen: Option<String>,
    /// The shard service's address as the other nodes reach it (`host:port`).
    pub advertise: Option<String>,
    /// Rebalance write rate limit in MB/s (default 100; 0: unlimited).
    pub rebalance_rate_mb: Option<u64>,
    /// Seconds a write may take from storing its data to its commit (default 3600): a PUT or
    /// a part slower than that fails, and shards no record has named for twice that are
    /// freed by the nodes' orphan sweeps.
    pub write_limit_secs: Option<u64>,
}

/// A node of a cluster (docs/cluster.md): its metadata is on etcd under `/predastore/<id>/`
/// ([`ClusterSettings::metadata`]), its shards over the members' disks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// The cluster's id.
    pub id: String,
    /// This node's id.
    pub node_id: String,
    /// etcd client URLs.
    pub etcd: Vec<String>,
    /// Where the shard service listens.
    pub listen: String,
    /// The shard service's address as the other nodes reach it.
    pub advertise: Option<String>,
    /// Bytes per second rebalance may write (`None`: unlimited).
    pub rebalance_rate: Option<u64>,
    /// How long a write may take from storing its data to its commit
    /// ([`engine::EngineConfig::write_limit`]).
    pub write_limit: std::time::Duration,
}

/// Where the shard service listens unless told.
pub const DEFAULT_CLUSTER_LISTEN: &str = "0.0.0.0:8444";

impl ClusterSection {
    /// The section under the flags and variables; `None` without a cluster id.
    pub fn resolve(&self, o: &ClusterOverrides) -> Result<Option<ClusterSettings>, ConfigError> {
        let file = self;
        let Some(id) = o.id.clone().or_else(|| file.id.clone()) else {
            if o.node_id.is_some() || !file.etcd.is_empty() || o.etcd.is_some() {
                return Err(ConfigError::Invalid(
                    "cluster settings without a cluster id (cluster.id, PREDASTORE_CLUSTER_ID)"
                        .into(),
                ));
            }
            return Ok(None);
        };
        let valid = |s: &str| {
            !s.is_empty()
                && s.len() <= 63
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        let node_id = o
            .node_id
            .clone()
            .or_else(|| file.node_id.clone())
            .ok_or_else(|| {
                ConfigError::Invalid(
                    "cluster mode needs a node id (cluster.node_id, PREDASTORE_NODE_ID)".into(),
                )
            })?;
        for (what, v) in [("cluster id", &id), ("node id", &node_id)] {
            if !valid(v) {
                return Err(ConfigError::Invalid(format!(
                    "{what} {v:?}: 1 to 63 lowercase letters, digits and dashes"
                )));
            }
        }
        let etcd = o.etcd.clone().unwrap_or_else(|| file.etcd.clone());
        if etcd.is_empty() {
            return Err(ConfigError::Invalid(
                "cluster mode needs etcd endpoints (cluster.etcd, PREDASTORE_ETCD)".into(),
            ));
        }
        Ok(Some(ClusterSettings {
            id,
            node_id,
            etcd,
            listen: o
                .listen
                .clone()
                .or_else(|| file.listen.clone())
                .unwrap_or_else(|| DEFAULT_CLUSTER_LISTEN.into()),
            advertise: o.advertise.clone().or_else(|| file.advertise.clone()),
            rebalance_rate: match o
                .rebalance_rate_mb
                .or(file.rebalance_rate_mb)
                .unwrap_or(100)
            {
                0 => None,
                mb => Some(mb.saturating_mul(1_000_000)),
            },
            write_limit: match o.write_limit_secs.or(file.write_limit_secs) {
                None => engine::DEFAULT_WRITE_LIMIT,
                Some(0) => {
                    return Err(ConfigError::Invalid(
                        "cluster.write_limit_secs must be at least 1".into(),
                    ))
                }
                Some(n) => std::time::Duration::from_secs(n),
            },
        }))
    }
}

impl ClusterSettings {
    /// Makes `ec` a node's of this cluster: its metadata on etcd, its write limit.
    pub fn apply(&self, ec: &mut engine::EngineConfig) {
        ec.metadata = self.metadata();
        ec.write_limit = self.write_limit;
    }

    /// Where the node's metadata is: the cluster's keys in etcd.
    pub fn metadata(&self) -> engine::Metadata {
        engine::Metadata::Etcd {
            endpoints: self.etcd.clone(),
            prefix: format!("/predastore/{}/", self.id),
        }
    }
}

/// Cluster values given on the command line or in the environment.
#[derive(Debug, Default, Clone)]
pub struct ClusterOverrides {
    /// `--cluster-id` / `PREDASTORE_CLUSTER_ID`.
    pub id: Option<String>,
    /// `--node-id` / `PREDASTORE_NODE_ID`.
    pub node_id: Option<String>,
    /// `--etcd` / `PREDASTORE_ETCD` (comma-separated).
    pub etcd: Option<Vec<String>>,
    /// `--cluster-listen` / `PREDASTORE_CLUSTER_LISTEN`.
    pub listen: Option<String>,
    /// `--cluster-advertise` / `PREDASTORE_CLUSTER_ADVERTISE`.
    pub advertise: Option<String>,
    /// `--rebalance-rate-mb` / `PREDASTORE_REBALANCE_RATE_MB`.
    pub rebalance_rate_mb: Option<u64>,
    /// `--cluster-write-limit-secs` / `PREDASTORE_CLUSTER_WRITE_LIMIT_SECS`.
    pub write_limit_secs: Option<u64>,
}

/// The mount's default write-back window: a closed file is visible over S3, and durable,
/// within this many milliseconds (docs/semantics.md).
pub const DEFAULT_WRITEBACK_MS: u64 = 100;

/// The whole file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    /// `server`.
    pub server: ServerSection,
    /// `storage`.
    pub storage: StorageSection,
    /// `auth`.
    pub auth: AuthSection,
    /// `lifecycle`.
    pub lifecycle: LifecycleSection,
    /// `mount`.
    pub mount: MountSection,
    /// `nats`.
    pub nats: NatsSection,
    /// `cluster`.
    pub cluster: ClusterSection,
}

/// `nats.tls`: a CA to trust and a client certificate to present.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsTlsSection {
    /// PEM CA certificate(s) the server's certificate must chain to.
    pub ca: Option<PathBuf>,
    /// PEM client certificate (with `key`).
    pub cert: Option<PathBuf>,
    /// PEM client key.
    pub key: Option<PathBuf>,
}

/// `nats`: S3 operations and events on a NATS server (off unless `url` is set).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsSection {
    /// Server URL(s), comma-separated: `nats://host:4222`, `tls://host:4222`.
    pub url: Option<String>,
    /// User (with `password`).
    pub user: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// Token.
    pub token: Option<String>,
    /// NKey seed (`SU…`), or a file holding it (`nkey_seed_file`).
    pub nkey_seed: Option<String>,
    /// File with the NKey seed.
    pub nkey_seed_file: Option<PathBuf>,
    /// TLS to the server.
    pub tls: NatsTlsSection,
    /// First token of every subject (default `s3`).
    pub subject_prefix: Option<String>,
    /// Queue group the servers share requests in (default `predastore`).
    pub queue_group: Option<String>,
    /// Seconds a signed request stays valid either side of its date (default 300).
    pub replay_window_secs: Option<u64>,
    /// JetStream stream s3d makes for event notifications (default `PREDASTORE_EVENTS`; empty:
    /// none, events on core NATS).
    pub events_stream: Option<String>,
}

impl FileConfig {
    /// The file `--config` / `PREDASTORE_CONFIG` names, else `./config.yaml` when there is one,
    /// else the defaults.
    pub fn find(explicit: Option<&Path>) -> Result<FileConfig, ConfigError> {
        match explicit {
            Some(p) => FileConfig::load(p),
            None => {
                let p = Path::new("config.yaml");
                if p.exists() {
                    FileConfig::load(p)
                } else {
                    Ok(FileConfig::default())
                }
            }
        }
    }

    /// When the background jobs run: `server.repair_interval_secs` (default 30),
    /// `server.scrub_interval_hours` (168; 0: never), `server.scrub_rate_mb` (20), and GC every
    /// `gc_every` (the engine's `storage.gc_interval`).
    pub fn schedule(&self, gc_every: Duration) -> Schedule {
        let s = &self.server;
        Schedule {
            gc_every,
            repair_every: Duration::from_secs(s.repair_interval_secs.unwrap_or(30).max(1)),
            scrub_every: Duration::from_secs(s.scrub_interval_hours.unwrap_or(168) * 3600),
            scrub_rate: s.scrub_rate_mb.unwrap_or(20).max(1) * 1_000_000,
            lifecycle_every: Duration::from_secs(self.lifecycle.interval_secs.unwrap_or(3600)),
            lifecycle_rate: self.lifecycle.rate.unwrap_or(500).max(1),
        }
    }

    /// The length of a lifecycle day: `PREDASTORE_LIFECYCLE_DAY_SECS`, else
    /// `lifecycle.day_secs`, else a day.
    pub fn lifecycle_day(&self) -> Result<Duration, ConfigError> {
        let from_env = std::env::var("PREDASTORE_LIFECYCLE_DAY_SECS").ok();
        let secs = match from_env {
            Some(v) => Some(v.trim().parse::<f64>().map_err(|_| {
                ConfigError::Invalid(format!(
                    "PREDASTORE_LIFECYCLE_DAY_SECS={v:?} is not a number of seconds"
                ))
            })?),
            None => self.lifecycle.day_secs,
        };
        match secs {
            None => Ok(Duration::from_secs(86_400)),
            Some(s) if s > 0.0 => Duration::try_from_secs_f64(s).map_err(|_| {
                ConfigError::Invalid(format!("lifecycle day of {s} seconds is out of range"))
            }),
            Some(s) => Err(ConfigError::Invalid(format!(
                "a lifecycle day must be longer than 0 seconds, not {s}"
            ))),
        }
    }

    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        serde_yaml_ng::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LogFormat;

    fn parse(yaml: &str) -> Result<FileConfig, serde_yaml_ng::Error> {
        serde_yaml_ng::from_str(yaml)
    }

    #[test]
    fn every_section_is_strict() {
        assert!(parse("server: {port: 1}\nstorage: {chunk_size: 4MB}\nauth: {keys: []}\n").is_ok());
        for bad in [
            "storag: {data_dir: /x}",
            "server: {prot: 1}",
            "storage: {data_dri: /x}",
            "auth: {key: []}",
            "server: {tls: {crt: a}}",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn schedule_and_log_format() {
        let f = parse("server: {repair_interval_secs: 2, scrub_interval_hours: 0, scrub_rate_mb: 5, log_format: json}").unwrap();
        let s = f.schedule(Duration::from_secs(7));
        assert_eq!(s.gc_every, Duration::from_secs(7));
        assert_eq!(s.repair_every, Duration::from_secs(2));
        assert!(s.scrub_every.is_zero());
        assert_eq!(s.scrub_rate, 5_000_000);
        let d = FileConfig::default().schedule(Duration::ZERO);
        assert_eq!(
            (d.repair_every, d.scrub_every, d.scrub_rate),
            (
                Duration::from_secs(30),
                Duration::from_secs(168 * 3600),
                20_000_000
            )
        );
        assert_eq!(LogFormat::resolve(None, &f).unwrap(), LogFormat::Json);
        assert_eq!(
            LogFormat::resolve(Some("text"), &f).unwrap(),
            LogFormat::Text
        );
        assert_eq!(
            LogFormat::resolve(None, &FileConfig::default()).unwrap(),
            LogFormat::Text
        );
        assert!(LogFormat::resolve(Some("xml"), &f).is_err());
    }
}
