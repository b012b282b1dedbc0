//! `s3d`: Predastore's HTTPS S3 API server, and its admin commands (heal, scrub, gc, status).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use s3d::config::{FileConfig, Overrides, Settings};
use s3d::server;

/// Command line. Every flag also reads its `PREDASTORE_*` variable; flags win over variables,
/// variables over the config file. Flags may stand before or after a subcommand
/// (`s3d heal --config F` is `s3d --config F heal`).
#[derive(Parser, Debug)]
#[command(name = "s3d", version, about = "Predastore S3 server")]
struct Cli {
    /// Configuration file (YAML).
    #[arg(long, global = true, env = "PREDASTORE_CONFIG")]
    config: Option<PathBuf>,
    /// Listen address (default 0.0.0.0).
    #[arg(long, global = true, env = "PREDASTORE_HOST")]
    host: Option<String>,
    /// Listen port (default 8443).
    #[arg(long, global = true, env = "PREDASTORE_PORT")]
    port: Option<u16>,
    /// TLS certificate (PEM); default: self-signed, made in the data dir on first start.
    #[arg(long, global = true, env = "PREDASTORE_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, global = true, env = "PREDASTORE_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// A name of the self-signed certificate made when none is given (repeat the flag, or
    /// separate with commas; default localhost, *.s3.localhost, 127.0.0.1, ::1).
    #[arg(
        long = "tls-name",
        global = true,
        env = "PREDASTORE_TLS_NAMES",
        value_delimiter = ','
    )]
    tls_names: Option<Vec<String>>,
    /// Data directory (default ./data).
    #[arg(long, global = true, env = "PREDASTORE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Chunk size: bytes, or with a unit (4MB = 4MiB = 4194304; default 4 MiB).
    #[arg(long, global = true, env = "PREDASTORE_CHUNK_SIZE", value_parser = engine::config::parse_size)]
    chunk_size: Option<usize>,
    /// Compression of new data in buckets without their own setting: off, zstd or
    /// zstd:LEVEL (default off; `storage.compression`; per bucket: `s3d bucket compression`).
    #[arg(long, global = true, env = "PREDASTORE_COMPRESSION")]
    compression: Option<engine::Compression>,
    /// Access key (with --secret-key); default: generated on first start.
    #[arg(long, global = true, env = "PREDASTORE_ACCESS_KEY")]
    access_key: Option<String>,
    /// Secret key. A value given here is visible to every user in `ps`: prefer
    /// PREDASTORE_SECRET_KEY, --secret-key-file or the config file.
    #[arg(
        long,
        global = true,
        env = "PREDASTORE_SECRET_KEY",
        hide_env_values = true
    )]
    secret_key: Option<String>,
    /// File holding the secret key (its first line), e.g. mode 0600.
    #[arg(
        long,
        env = "PREDASTORE_SECRET_KEY_FILE",
        conflicts_with = "secret_key"
    )]
    secret_key_file: Option<PathBuf>,
    /// Serve plain HTTP instead of HTTPS (only behind a TLS-terminating proxy).
    #[arg(long, global = true)]
    insecure_http: bool,
    /// Log format: text or json.
    #[arg(long, global = true, env = "PREDASTORE_LOG_FORMAT")]
    log_format: Option<String>,
    /// Cluster mode: the cluster's id (`cluster.id`).
    #[arg(long, global = true, env = "PREDASTORE_CLUSTER_ID")]
    cluster_id: Option<String>,
    /// Cluster mode: this node's id (`cluster.node_id`).
    #[arg(long, global = true, env = "PREDASTORE_NODE_ID")]
    node_id: Option<String>,
    /// Cluster mode: etcd client URLs, comma-separated (`cluster.etcd`).
    #[arg(long, global = true, env = "PREDASTORE_ETCD", value_delimiter = ',')]
    etcd: Option<Vec<String>>,
    /// Cluster mode: where the shard service listens (`cluster.listen`, default 0.0.0.0:8444).
    #[arg(long, global = true, env = "PREDASTORE_CLUSTER_LISTEN")]
    cluster_listen: Option<String>,
    /// Cluster mode: the shard service's address as other nodes reach it
    /// (`cluster.advertise`).
    #[arg(long, global = true, env = "PREDASTORE_CLUSTER_ADVERTISE")]
    cluster_advertise: Option<String>,
    /// Cluster mode: MB/s rebalance may write, 0 for no limit (`cluster.rebalance_rate_mb`,
    /// default 100).
    #[arg(long, global = true, env = "PREDASTORE_REBALANCE_RATE_MB")]
    rebalance_rate_mb: Option<u64>,
    /// Cluster mode: seconds a write may take from storing its data to its commit
    /// (`cluster.write_limit_secs`, default 3600).
    #[arg(long, global = true, env = "PREDASTORE_CLUSTER_WRITE_LIMIT_SECS")]
    cluster_write_limit_secs: Option<u64>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the S3 server (the default).
    Serve,
    /// Rebuild missing shards and format replaced disks.
    Heal {
        /// Read at most this many MB per second.
        #[arg(long)]
        rate_limit_mb: Option<u64>,
        /// Continue an interrupted pass.
        #[arg(long)]
        resume: bool,
    },
    /// Verify every shard's hash and repair what is corrupt or missing.
    Scrub {
        /// Read at most this many MB per second.
        #[arg(long)]
        rate_limit_mb: Option<u64>,
        /// Continue an interrupted pass.
        #[arg(long)]
        resume: bool,
    },
    /// Remove unreferenced chunks and files left by crashed writes.
    Gc,
    /// Apply the buckets' lifecycle rules now (the server does it by itself every
    /// `lifecycle.interval_secs`).
    Lifecycle {
        /// Only list what the rules would expire; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Disks, capacity, objects, chunks, dedup ratio.
    Status,
    /// Keys of the store: each with its own secret and permissions (the configured keys are
    /// administrators).
    Key {
        #[command(subcommand)]
        cmd: s3d::keys_cli::KeyCommand,
    },
    /// Whether the server this configuration describes answers (exit 0) or not (exit 1): for
    /// container health checks.
    Health {
        /// Ask /-/ready (the metadata can be read) instead of /-/health.
        #[arg(long)]
        ready: bool,
    },
    /// Settings of a bucket beyond the S3 API (works beside a running server).
    Bucket {
        #[command(subcommand)]
        cmd: s3d::bucket_cli::BucketCommand,
    },
    /// Cluster mode: make the cluster, join this node, see the members (docs/cluster.md).
    Cluster {
        #[command(subcommand)]
        cmd: s3d::cluster_cli::ClusterCommand,
    },
}

fn settings(cli: &Cli) -> Result<Settings, String> {
    let file = FileConfig::find(cli.config.as_deref()).map_err(|e| e.to_string())?;
    Settings::resolve(
        file,
        Overrides {
            host: cli.host.clone(),
            port: cli.port,
            tls_cert: cli.tls_cert.clone(),
            tls_key: cli.tls_key.clone(),
            tls_names: cli.tls_names.clone(),
            data_dir: cli.data_dir.clone(),
            chunk_size: cli.chunk_size,
            compression: cli.compression,
            access_key: cli.access_key.clone(),
            secret_key: secret_key(cli)?,
            insecure_http: cli.insecure_http,
            log_format: cli.log_format.clone(),
            cluster: s3d::config::ClusterOverrides {
                id: cli.cluster_id.clone(),
                node_id: cli.node_id.clone(),
                etcd: cli.etcd.clone(),
                listen: cli.cluster_listen.clone(),
                advertise: cli.cluster_advertise.clone(),
                rebalance_rate_mb: cli.rebalance_rate_mb,
                write_limit_secs: cli.cluster_write_limit_secs,
            },
        },
    )
    .map_err(|e| e.to_string())
}

/// The secret key from `--secret-key` / its variable, or from `--secret-key-file`.
fn secret_key(cli: &Cli) -> Result<Option<String>, String> {
    if let Some(p) = &cli.secret_key_file {
        let text = std::fs::read_to_string(p)
            .map_err(|e| format!("cannot read the secret key file {}: {e}", p.display()))?;
        let line = text.lines().next().unwrap_or_default().trim().to_string();
        if line.is_empty() {
            return Err(format!("the secret key file {} is empty", p.display()));
        }
        return Ok(Some(line));
    }
    Ok(cli.secret_key.clone())
}

/// The S3 layer's own log lines are off by default: it logs every client error at ERROR, with
/// whole request bodies; the access log line of each request carries the error code and a
/// bounded message instead (`PREDASTORE_LOG` overrides).
const DEFAULT_LOG_FILTER: &str = "info,s3s=off";

fn main() -> ExitCode {
    engine::process::tune_allocator();
    let cli = Cli::parse();
    let s = match settings(&cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("s3d: {e}");
            return ExitCode::from(startup::EXIT_CONFIG);
        }
    };
    startup::init_logging(s.log_format, DEFAULT_LOG_FILTER);
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("s3d: cannot start the runtime: {e}");
            return ExitCode::from(startup::EXIT_FAILURE);
        }
    };
    let res = rt.block_on(async {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => server::serve(s).await,
            Command::Heal {
                rate_limit_mb,
                resume,
            } => server::admin_heal(s, engine::HealMode::Heal, rate_limit_mb, resume).await,
            Command::Scrub {
                rate_limit_mb,
                resume,
            } => server::admin_heal(s, engine::HealMode::Scrub, rate_limit_mb, resume).await,
            Command::Gc => server::admin_gc(s).await,
            Command::Lifecycle { dry_run } => server::admin_lifecycle(s, dry_run).await,
            Command::Status => server::admin_status(s),
            Command::Key { cmd } => server::admin_key(s, cmd).await,
            Command::Bucket { cmd } => server::admin_bucket(s, cmd).await,
            Command::Cluster { cmd } => s3d::cluster_cli::run(s, cmd).await,
            Command::Health { ready } => {
                Ok(s3d::health_cli::run(&s.host, s.port, !s.insecure_http, ready).await)
            }
        }
    });
    match res {
        Ok(code) => code,
        Err(e) => {
            eprintln!("s3d: {e}");
            ExitCode::from(startup::EXIT_FAILURE)
        }
    }
}
