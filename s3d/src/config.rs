//! s3d's settings: `config.yaml` (read by [`startup::config`]), overridden by `PREDASTORE_*`
//! variables, overridden by flags.

use std::path::PathBuf;

pub use startup::config::{
    AuthSection, ClusterOverrides, ClusterSettings, ConfigError, FileConfig, KeyPair,
    ServerSection, TlsSection, DEFAULT_CLUSTER_LISTEN,
};
use startup::LogFormat;

/// Settings after merging file, environment and flags over the defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listen address.
    pub host: String,
    /// Listen port.
    pub port: u16,
    /// TLS certificate (None: self-signed in the data dir).
    pub tls_cert: Option<PathBuf>,
    /// TLS key.
    pub tls_key: Option<PathBuf>,
    /// Names of the generated self-signed certificate.
    pub tls_names: Vec<String>,
    /// `Strict-Transport-Security: max-age` over HTTPS (0: no header).
    pub hsts_max_age: u64,
    /// Plain HTTP.
    pub insecure_http: bool,
    /// Region.
    pub region: String,
    /// Text or JSON logs.
    pub log_format: LogFormat,
    /// Engine configuration.
    pub engine: engine::EngineConfig,
    /// Domains for virtual-hosted-style addressing.
    pub domains: Vec<String>,
    /// Time a client may take to send a request head.
    pub header_timeout: std::time::Duration,
    /// Time a request body may stall.
    pub body_idle_timeout: std::time::Duration,
    /// Time a connection may sit idle.
    pub idle_timeout: std::time::Duration,
    /// Connection cap (None: from the descriptor limit).
    pub max_connections: Option<usize>,
    /// Per-client-address connection cap (None: a quarter of the total cap).
    pub max_connections_per_client: Option<usize>,
    /// When the background jobs (GC, repair, scrub) run.
    pub schedule: engine::background::Schedule,
    /// Configured key pairs (empty: generated on first start).
    pub keys: Vec<KeyPair>,
    /// `auth.allow_setid_and_devices`.
    pub allow_setid_and_devices: bool,
    /// `auth.allow_sigv2`.
    pub allow_sigv2: bool,
    /// The NATS door (`None`: off).
    pub nats: Option<crate::nats::settings::NatsSettings>,
    /// This node's part in a cluster (`None`: one machine).
    pub cluster: Option<ClusterSettings>,
}

/// Values given on the command line or in the environment (clap merges those two).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--host` / `PREDASTORE_HOST`.
    pub host: Option<String>,
    /// `--port` / `PREDASTORE_PORT`.
    pub port: Option<u16>,
    /// `--tls-cert` / `PREDASTORE_TLS_CERT`.
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key` / `PREDASTORE_TLS_KEY`.
    pub tls_key: Option<PathBuf>,
    /// `--tls-name` / `PREDASTORE_TLS_NAMES` (comma-separated).
    pub tls_names: Option<Vec<String>>,
    /// `--data-dir` / `PREDASTORE_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
    /// `--chunk-size` / `PREDASTORE_CHUNK_SIZE`.
    pub chunk_size: Option<usize>,
    /// `--compression` / `PREDASTORE_COMPRESSION`.
    pub compression: Option<engine::Compression>,
    /// `--access-key` / `PREDASTORE_ACCESS_KEY`.
    pub access_key: Option<String>,
    /// `--secret-key` / `PREDASTORE_SECRET_KEY`.
    pub secret_key: Option<String>,
    /// `--insecure-http`.
    pub insecure_http: bool,
    /// `--log-format`.
    pub log_format: Option<String>,
    /// The cluster flags and variables.
    pub cluster: ClusterOverrides,
}

impl Settings {
    /// Merges defaults ← file ← overrides.
    pub fn resolve(file: FileConfig, o: Overrides) -> Result<Settings, ConfigError> {
        let mut ec = file
            .storage
            .engine_config(o.data_dir, o.chunk_size)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        ec.lifecycle_day = file.lifecycle_day()?;
        if let Some(c) = o.compression {
            ec.compression = c;
        }
        let log_format = LogFormat::resolve(o.log_format.as_deref(), &file)?;
        let cluster = file.cluster.resolve(&o.cluster)?;
        if let Some(c) = &cluster {
            c.apply(&mut ec);
        }
        let schedule = file.schedule(ec.gc_interval);
        let mut keys = file.auth.keys.clone();
        match (&file.auth.access_key, &file.auth.secret_key) {
            (Some(a), Some(s)) => keys.insert(
                0,
                KeyPair {
                    access_key: a.clone(),
                    secret_key: s.clone(),
                },
            ),
            (None, None) => {}
            _ => {
                return Err(ConfigError::Invalid(
                    "auth.access_key and auth.secret_key must be given together".into(),
                ))
            }
        }
        match (o.access_key, o.secret_key) {
            (Some(a), Some(s)) => keys.insert(
                0,
                KeyPair {
                    access_key: a,
                    secret_key: s,
                },
            ),
            (None, None) => {}
            _ => {
                return Err(ConfigError::Invalid(
                    "an access key and a secret key must be given together".into(),
                ))
            }
        }
        for k in &keys {
            if k.access_key.is_empty() || k.secret_key.len() < 8 {
                return Err(ConfigError::Invalid(format!(
                    "key pair {:?}: access key must not be empty and the secret must have at least 8 characters",
                    k.access_key
                )));
            }
        }
        let tls_cert = o.tls_cert.or(file.server.tls.cert);
        let tls_key = o.tls_key.or(file.server.tls.key);
        if tls_cert.is_some() != tls_key.is_some() {
            return Err(ConfigError::Invalid(
                "a TLS certificate and key must be given together".into(),
            ));
        }
        Ok(Settings {
            host: o
                .host
                .or(file.server.host)
                .unwrap_or_else(|| "0.0.0.0".into()),
            port: o.port.or(file.server.port).unwrap_or(8443),
            tls_cert,
            tls_key,
            tls_names: o.tls_names.or(file.server.tls.names).unwrap_or_else(|| {
                crate::tls::DEFAULT_NAMES
                    .iter()
                    .map(|n| n.to_string())
                    .collect()
            }),
            hsts_max_age: file.server.hsts_max_age_secs.unwrap_or(31_536_000),
            insecure_http: o.insecure_http || file.server.insecure_http.unwrap_or(false),
            region: file.server.region.unwrap_or_else(|| "us-east-1".into()),
            log_format,
            engine: ec,
            domains: file
                .server
                .domains
                .clone()
                .unwrap_or_else(|| vec!["s3.localhost".into(), "localhost".into()]),
            header_timeout: std::time::Duration::from_secs(
                file.server.header_timeout_secs.unwrap_or(30).max(1),
            ),
            body_idle_timeout: std::time::Duration::from_secs(
                file.server.body_idle_timeout_secs.unwrap_or(60).max(1),
            ),
            idle_timeout: std::time::Duration::from_secs(
                file.server.idle_timeout_secs.unwrap_or(60).max(1),
            ),
            max_connections: file.server.max_connections.map(|n| n.max(1)),
            max_connections_per_client: file.server.max_connections_per_client.map(|n| n.max(1)),
            schedule,
            keys,
            allow_setid_and_devices: file.auth.allow_setid_and_devices.unwrap_or(false),
            allow_sigv2: file.auth.allow_sigv2.unwrap_or(true),
            nats: crate::nats::settings::resolve(&file.nats, |k| std::env::var(k).ok())
                .map_err(ConfigError::Invalid)?,
            cluster,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_file_then_overrides() {
        let file: FileConfig = serde_yaml_ng::from_str(
            "server: {host: 127.0.0.1, port: 9000}\nstorage: {data_dir: /tmp/x, chunk_size: 1048576, erasure: {data_shards: 2, parity_shards: 1}}\nauth: {keys: [{access_key: a, secret_key: secretsecret}]}\n",
        )
        .unwrap();
        let s = Settings::resolve(
            file.clone(),
            Overrides {
                port: Some(7000),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(s.host, "127.0.0.1");
        assert_eq!(s.port, 7000);
        assert_eq!(s.engine.chunk_size, 1 << 20);
        assert_eq!(s.engine.data_shards, 2);
        assert_eq!(s.keys.len(), 1);
        let d = Settings::resolve(FileConfig::default(), Overrides::default()).unwrap();
        assert_eq!((d.host.as_str(), d.port), ("0.0.0.0", 8443));
        assert_eq!(d.engine.data_dir, PathBuf::from("./data"));
        assert!(serde_yaml_ng::from_str::<FileConfig>("server: {hots: x}").is_err());
        assert!(Settings::resolve(
            FileConfig::default(),
            Overrides {
                access_key: Some("a".into()),
                ..Default::default()
            }
        )
        .is_err());
    }

    #[test]
    fn the_cluster_section_under_flags_and_variables() {
        let file: FileConfig = serde_yaml_ng::from_str(
            "cluster: {id: prod, node_id: n1, etcd: [\"http://10.0.0.1:2379\"], advertise: \"10.0.0.2:8444\"}\n",
        )
        .unwrap();
        let s = Settings::resolve(file.clone(), Overrides::default()).unwrap();
        let c = s.cluster.clone().unwrap();
        assert_eq!(
            (c.id.as_str(), c.node_id.as_str(), c.listen.as_str()),
            ("prod", "n1", DEFAULT_CLUSTER_LISTEN)
        );
        assert_eq!(
            s.engine.metadata,
            engine::Metadata::Etcd {
                endpoints: vec!["http://10.0.0.1:2379".into()],
                prefix: "/predastore/prod/".into()
            }
        );
        let o = Overrides {
            cluster: ClusterOverrides {
                node_id: Some("n7".into()),
                etcd: Some(vec!["http://e:1".into(), "http://f:1".into()]),
                ..Default::default()
            },
            ..Default::default()
        };
        let c = Settings::resolve(file.clone(), o).unwrap().cluster.unwrap();
        assert_eq!((c.node_id.as_str(), c.etcd.len()), ("n7", 2));
        // Rebalance's rate: 100 MB/s unless told; 0 is no limit.
        assert_eq!(c.rebalance_rate, Some(100_000_000));
        let o = Overrides {
            cluster: ClusterOverrides {
                rebalance_rate_mb: Some(0),
                ..Default::default()
            },
            ..Default::default()
        };
        let c = Settings::resolve(file.clone(), o).unwrap().cluster.unwrap();
        assert_eq!(c.rebalance_rate, None);
        // The write limit: an hour unless told, never 0; the engine gets it.
        assert_eq!(c.write_limit, engine::DEFAULT_WRITE_LIMIT);
        let o = Overrides {
            cluster: ClusterOverrides {
                write_limit_secs: Some(90),
                ..Default::default()
            },
            ..Default::default()
        };
        let s = Settings::resolve(file.clone(), o).unwrap();
        assert_eq!(
            s.cluster.unwrap().write_limit,
            std::time::Duration::from_secs(90)
        );
        assert_eq!(s.engine.write_limit, std::time::Duration::from_secs(90));
        let o = Overrides {
            cluster: ClusterOverrides {
                write_limit_secs: Some(0),
                ..Default::default()
            },
            ..Default::default()
        };
        let e = Settings::resolve(file, o).unwrap_err().to_string();
        assert!(e.contains("write_limit_secs"), "{e}");
        // No cluster: one machine, LMDB.
        let d = Settings::resolve(FileConfig::default(), Overrides::default()).unwrap();
        assert!(d.cluster.is_none());
        assert_eq!(d.engine.metadata, engine::Metadata::Local);
        for (yaml, why) in [
            (
                "cluster: {node_id: n1, etcd: [\"http://e:1\"]}",
                "without a cluster id",
            ),
            ("cluster: {id: c, etcd: [\"http://e:1\"]}", "node id"),
            ("cluster: {id: c, node_id: n1}", "etcd endpoints"),
            (
                "cluster: {id: C_1, node_id: n1, etcd: [\"http://e:1\"]}",
                "lowercase",
            ),
        ] {
            let f: FileConfig = serde_yaml_ng::from_str(yaml).unwrap();
            let e = Settings::resolve(f, Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains(why), "{yaml}: {e}");
        }
        assert!(serde_yaml_ng::from_str::<FileConfig>("cluster: {nodes: 3}").is_err());
    }

    #[test]
    fn the_seeds_configuration_as_written() {
        let file: FileConfig = serde_yaml_ng::from_str(
            "server:\n  host: 0.0.0.0\n  port: 8443\n  tls:\n    cert_file: /etc/p/cert.pem\n    key_file: /etc/p/key.pem\nstorage:\n  backend: \"file\"\n  data_dir: /tmp/seed\n  chunk_size: \"4MB\"\nauth:\n  access_key: SEEDKEY\n  secret_key: seed-secret-key\n",
        )
        .unwrap();
        let s = Settings::resolve(file, Overrides::default()).unwrap();
        assert_eq!(s.tls_cert, Some(PathBuf::from("/etc/p/cert.pem")));
        assert_eq!(s.tls_key, Some(PathBuf::from("/etc/p/key.pem")));
        assert_eq!(s.engine.chunk_size, 4 << 20);
        assert_eq!(s.keys[0].access_key, "SEEDKEY");
        let half: FileConfig = serde_yaml_ng::from_str("auth: {access_key: A}").unwrap();
        assert!(Settings::resolve(half, Overrides::default()).is_err());
        assert!(
            serde_yaml_ng::from_str::<FileConfig>("storage: {backend: ceph}")
                .map(|f| Settings::resolve(f, Overrides::default()).is_err())
                .unwrap_or(true)
        );
        assert!(
            serde_yaml_ng::from_str::<FileConfig>("server: {tls: {cert: a, cert_file: b}}")
                .is_err()
        );
    }
}
