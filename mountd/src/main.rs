//! `mountd`: mounts Predastore's buckets as directories and objects as files (FUSE).

mod chunkbuf;
mod daemon;
mod errno;
mod fs;
mod inodes;
mod names;
mod openfile;
mod readahead;
mod seqmd5;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use startup::config::FileConfig;

/// Command line. Settings come from the same `config.yaml` and `PREDASTORE_*` variables as
/// s3d's (read as strictly: an unknown key is an error), flags winning over variables,
/// variables over the file.
#[derive(Parser, Debug)]
#[command(
    name = "mountd",
    version,
    about = "Mount Predastore buckets as a filesystem"
)]
struct Cli {
    /// Configuration file (YAML; default ./config.yaml when it exists).
    #[arg(long, env = "PREDASTORE_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (default ./data).
    #[arg(long, env = "PREDASTORE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Chunk size for new data: bytes, or with a unit (4MB = 4MiB; default 4 MiB).
    #[arg(long, env = "PREDASTORE_CHUNK_SIZE", value_parser = engine::config::parse_size)]
    chunk_size: Option<usize>,
    /// Compression of new data in buckets without their own setting: off, zstd or
    /// zstd:LEVEL (default off; `storage.compression`).
    #[arg(long, env = "PREDASTORE_COMPRESSION")]
    compression: Option<engine::Compression>,
    /// Mount one bucket as the root instead of all buckets as top-level directories.
    #[arg(long)]
    bucket: Option<String>,
    /// Mount read-only.
    #[arg(long)]
    read_only: bool,
    /// Let users other than the one who mounted access the mount, the kernel enforcing the
    /// permission bits. The default when mounted by root (a backup job or a service running as
    /// its own user can then use the mount); another user needs `user_allow_other` in
    /// /etc/fuse.conf for it.
    #[arg(long, conflicts_with = "no_allow_other")]
    allow_other: bool,
    /// Keep the mount to the user who mounted it (the kernel refuses everyone else, root too).
    #[arg(long)]
    no_allow_other: bool,
    /// MiB of modified file data all open files may hold in memory; beyond it, modified chunks
    /// are stored early (still committed only on flush/fsync/close).
    #[arg(long, default_value_t = 256)]
    write_buffer_mib: usize,
    /// Seconds the kernel may cache attributes and names.
    #[arg(long, default_value_t = 1.0)]
    attr_timeout: f64,
    /// Detach and run in the background once the mount is up (exit status says whether it
    /// mounted). Logs go to --log-file, or nowhere.
    #[arg(long)]
    daemon: bool,
    /// Append logs to this file (with --daemon).
    #[arg(long)]
    log_file: Option<PathBuf>,
    /// Log format: text or json (default: `server.log_format`, else text).
    #[arg(long, env = "PREDASTORE_LOG_FORMAT")]
    log_format: Option<String>,
    /// Act as this key of the store (access key id or name; see `s3d key`): only its buckets
    /// are shown, and it may do on the mount what it may do over S3 (EACCES otherwise).
    /// Default: `mount.access_key`; none: the mount acts as an administrator.
    #[arg(long, env = "PREDASTORE_MOUNT_ACCESS_KEY")]
    access_key: Option<String>,
    /// Write-back window in milliseconds: a closed file is visible on this mount at once and
    /// durable (and visible over S3) within the window, which many closes share; `fsync` is
    /// durable before it returns. 0: every close is durable before it returns. Default:
    /// `mount.writeback_ms`, else 100.
    #[arg(long, env = "PREDASTORE_MOUNT_WRITEBACK_MS")]
    writeback_ms: Option<u64>,
    /// Cluster mode: the cluster's id (`cluster.id`): the mount is one of a node's doors, on
    /// its data directory beside its s3d (docs/cluster.md).
    #[arg(long, env = "PREDASTORE_CLUSTER_ID")]
    cluster_id: Option<String>,
    /// Cluster mode: this node's id (`cluster.node_id`).
    #[arg(long, env = "PREDASTORE_NODE_ID")]
    node_id: Option<String>,
    /// Cluster mode: etcd client URLs, comma-separated (`cluster.etcd`).
    #[arg(long, env = "PREDASTORE_ETCD", value_delimiter = ',')]
    etcd: Option<Vec<String>>,
    /// Cluster mode: seconds a write may take from storing its data to its commit
    /// (`cluster.write_limit_secs`, default 3600; the s3d of the node should have the same).
    #[arg(long, env = "PREDASTORE_CLUSTER_WRITE_LIMIT_SECS")]
    cluster_write_limit_secs: Option<u64>,
    /// Where to mount.
    mountpoint: PathBuf,
}

/// What mountd takes from the configuration.
struct Settings {
    engine: engine::EngineConfig,
    /// The node's part in a cluster (`None`: one machine).
    cluster: Option<startup::config::ClusterSettings>,
    /// The key the mount acts as (id or name).
    access_key: Option<String>,
    schedule: engine::background::Schedule,
    log_format: startup::LogFormat,
}

/// Settings from file, environment and flags.
fn settings(cli: &Cli) -> Result<Settings, String> {
    let file = FileConfig::find(cli.config.as_deref()).map_err(|e| e.to_string())?;
    let mut engine = file
        .storage
        .engine_config(cli.data_dir.clone(), cli.chunk_size)
        .map_err(|e| format!("invalid configuration: {e}"))?;
    engine.lifecycle_day = file.lifecycle_day().map_err(|e| e.to_string())?;
    if let Some(c) = cli.compression {
        engine.compression = c;
    }
    let window = cli
        .writeback_ms
        .or(file.mount.writeback_ms)
        .unwrap_or(startup::config::DEFAULT_WRITEBACK_MS);
    if window > 60_000 {
        return Err("the write-back window (writeback_ms) must be at most 60000".into());
    }
    engine.writeback = (window > 0).then(|| Duration::from_millis(window));
    let cluster = file
        .cluster
        .resolve(&startup::config::ClusterOverrides {
            id: cli.cluster_id.clone(),
            node_id: cli.node_id.clone(),
            etcd: cli.etcd.clone(),
            write_limit_secs: cli.cluster_write_limit_secs,
            ..Default::default()
        })
        .map_err(|e| e.to_string())?;
    if let Some(c) = &cluster {
        // The write-back window is LMDB's: in a cluster every close commits to etcd.
        engine.writeback = None;
        c.apply(&mut engine);
    }
    let log_format =
        startup::LogFormat::resolve(cli.log_format.as_deref(), &file).map_err(|e| e.to_string())?;
    Ok(Settings {
        access_key: cli.access_key.clone().or(file.mount.access_key.clone()),
        schedule: file.schedule(engine.gc_interval),
        engine,
        cluster,
        log_format,
    })
}

/// fuser warns when it cannot unmount what was already unmounted from outside: not news.
const DEFAULT_LOG_FILTER: &str = "info,fuser::mnt=error";

fn main() -> ExitCode {
    engine::process::tune_allocator();
    let mut cli = Cli::parse();
    // Settle relative paths now: a daemon changes its working directory to /.
    let settings = match settings(&cli).and_then(|mut s| {
        let c = &mut s.engine;
        c.data_dir = absolute(&c.data_dir)?;
        c.disks = c
            .disks
            .iter()
            .map(|d| absolute(d))
            .collect::<Result<_, _>>()?;
        Ok(s)
    }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("mountd: {e}");
            return ExitCode::from(startup::EXIT_CONFIG);
        }
    };
    let mut notify = None;
    if cli.daemon {
        match absolute(&cli.mountpoint).and_then(|m| {
            cli.mountpoint = m;
            daemon::detach(cli.log_file.as_deref())
        }) {
            Ok(daemon::Role::Parent(code)) => return code,
            Ok(daemon::Role::Child(n)) => notify = Some(n),
            Err(e) => {
                eprintln!("mountd: {e}");
                return ExitCode::from(startup::EXIT_FAILURE);
            }
        }
    }
    // A daemon's stderr is its log file (or /dev/null) by now: no colour codes in it.
    startup::init_logging(settings.log_format, DEFAULT_LOG_FILTER);
    match run(cli, settings, notify) {
        Ok(()) => ExitCode::SUCCESS,
        Err((e, notify)) => {
            tracing::error!("{e}");
            eprintln!("mountd: {e}");
            if let Some(n) = notify {
                n.failed(&e);
            }
            ExitCode::from(startup::EXIT_FAILURE)
        }
    }
}

/// The engine's configuration: on a node of a cluster, its shards over the members' disks (read
/// from etcd; the node has joined with `s3d cluster join`).
fn cluster_config(
    cfg: engine::EngineConfig,
    cluster: Option<&startup::config::ClusterSettings>,
) -> Result<engine::EngineConfig, String> {
    let Some(c) = cluster else {
        return Ok(cfg);
    };
    #[cfg(feature = "cluster")]
    {
        predastore_cluster::node::engine_config(cfg, &c.id, &c.node_id, &c.etcd)
            .map_err(|e| e.to_string())
    }
    #[cfg(not(feature = "cluster"))]
    {
        let _ = (cfg, c);
        Err(
            "this mountd is built without cluster mode: build it with `cargo build --release \
             --features mountd/cluster` (needs Debian's protobuf-compiler), or `make \
             build-cluster`"
                .into(),
        )
    }
}

fn absolute(p: &std::path::Path) -> Result<PathBuf, String> {
    std::path::absolute(p).map_err(|e| format!("{}: {e}", p.display()))
}

/// Mounts and serves until unmounted. A daemon's parent is told once the mount is up (or
/// why it failed: the error is handed back with the notifier).
fn run(
    cli: Cli,
    settings: Settings,
    notify: Option<daemon::Notifier>,
) -> Result<(), (String, Option<daemon::Notifier>)> {
    let data_dir = settings.engine.data_dir.clone();
    let cfg = match cluster_config(settings.engine, settings.cluster.as_ref()) {
        Ok(c) => c,
        Err(e) => return Err((e, notify)),
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return Err((e.to_string(), notify)),
    };
    let engine = match engine::Engine::open(cfg) {
        Ok(e) => e,
        Err(e) => return Err((format!("{}: {e}", data_dir.display()), notify)),
    };
    // On a node of a cluster: joins, drains and removals reach the mount's placement too.
    #[cfg(feature = "cluster")]
    let _follower = match &settings.cluster {
        Some(c) => match predastore_cluster::node::follow(&engine, &c.id, &c.node_id, &c.etcd) {
            Ok(f) => Some(f),
            Err(e) => return Err((e.to_string(), notify)),
        },
        None => None,
    };
    let principal = match &settings.access_key {
        None => None,
        Some(which) => match engine.key_info(which) {
            Ok(k) if k.record.usable(engine::meta::now_ns()) => {
                tracing::info!("acting as key {} ({})", k.id, k.record.name);
                Some(engine::Principal::Key(k.id))
            }
            Ok(k) => return Err((format!("key {} is disabled or expired", k.id), notify)),
            Err(e) => return Err((format!("--access-key: {e} (see s3d key list)"), notify)),
        },
    };
    if let Some(b) = &cli.bucket {
        if let Err(e) = engine.head_bucket(b) {
            return Err((format!("cannot mount bucket {b:?}: {e}"), notify));
        }
    }
    // The background jobs: space of removed and overwritten files comes back by itself,
    // chunks queued by degraded reads are repaired, the scheduled scrub runs (repair and scrub
    // in one process of those that have the data dir open). A read-only mount changes
    // nothing, not even that. They stop with the mount. In a cluster they are the work of
    // the s3d that leads it.
    let background = (!cli.read_only && settings.cluster.is_none()).then(|| {
        let _in_runtime = rt.enter();
        engine.spawn_background(settings.schedule.clone())
    });
    let at_exit = engine.clone();
    let filesystem = match fs::PredaFs::new(
        engine,
        rt.handle().clone(),
        fs::Options {
            read_only: cli.read_only,
            ttl: Duration::from_secs_f64(cli.attr_timeout.max(0.0)),
            bucket: cli.bucket.clone(),
            write_buffer: cli.write_buffer_mib.saturating_mul(1 << 20),
            principal,
        },
    ) {
        Ok(f) => f,
        Err(e) => return Err((e.to_string(), notify)),
    };
    let mut config = fuser::Config::default();
    config
        .mount_options
        .push(fuser::MountOption::FSName("predastore".into()));
    config
        .mount_options
        .push(fuser::MountOption::Subtype("predastore".into()));
    config
        .mount_options
        .push(fuser::MountOption::DefaultPermissions);
    // Anyone with S3 access can write modes and device numbers: never honoured as such.
    config.mount_options.push(fuser::MountOption::NoSuid);
    config.mount_options.push(fuser::MountOption::NoDev);
    if cli.read_only {
        config.mount_options.push(fuser::MountOption::RO);
    }
    if cli.allow_other || (!cli.no_allow_other && is_root()) {
        config.acl = fuser::SessionACL::All;
    }
    config.n_threads = Some(4);
    let session = match fuser::spawn_mount(filesystem, &cli.mountpoint, &config) {
        Ok(s) => s,
        Err(e) => {
            return Err((
                format!("cannot mount {}: {e}", cli.mountpoint.display()),
                notify,
            ))
        }
    };
    let what = match &cli.bucket {
        Some(b) => format!("bucket {b} of {}", data_dir.display()),
        None => data_dir.display().to_string(),
    };
    raise_readahead(&cli.mountpoint);
    tracing::info!("mounted {what} on {}", cli.mountpoint.display());
    println!("mounted {what} on {}", cli.mountpoint.display());
    if let Some(n) = notify {
        n.mounted();
    }
    // Unmount on SIGINT/SIGTERM; exit as soon as unmounted from outside (`fusermount3 -u`
    // ends the FUSE session; a lazy `-u -z` takes the mount out of the namespace first).
    let mp = std::fs::canonicalize(&cli.mountpoint).unwrap_or(cli.mountpoint.clone());
    let signalled = rt.block_on(async {
        let shutdown = startup::shutdown_requested();
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut ticks = 0u32;
        loop {
            tokio::select! {
                _ = &mut shutdown => return true,
                _ = tick.tick() => {
                    ticks += 1;
                    if session.guard.is_finished() || (ticks.is_multiple_of(5) && !is_mounted(&mp)) {
                        tracing::info!("unmounted from outside");
                        return false;
                    }
                }
            }
        }
    });
    if signalled {
        if let Err(e) = session.umount_and_join() {
            tracing::warn!("unmounting {}: {e}", cli.mountpoint.display());
        }
    } else {
        // Already unmounted: fuser's own attempt to unmount again fails and says so (at WARN,
        // silenced for `fuser::mnt` by the default filter).
        drop(session);
    }
    if let Some(b) = background {
        rt.block_on(b.stop());
    }
    // What the write-back window still holds is committed before the process ends.
    if let Err(e) = at_exit.flush_blocking() {
        tracing::error!("committing the last changes: {e}");
    }
    drop(at_exit);
    tracing::info!("unmounted {}", cli.mountpoint.display());
    println!("unmounted {}", cli.mountpoint.display());
    Ok(())
}

/// The kernel reads ahead of a FUSE file by at most its backing device's `read_ahead_kb`,
/// 128 KiB by default, whatever the filesystem asked for at init. Raised to the 1 MiB mountd
/// asks for, sequential readers send 1 MiB requests instead of eight of 128 KiB (root only;
/// otherwise the default stays).
fn raise_readahead(mountpoint: &std::path::Path) {
    use std::os::unix::fs::MetadataExt;
    const WANT_KB: u64 = 1024;
    let Ok(m) = std::fs::metadata(mountpoint) else {
        return;
    };
    let dev = m.dev();
    let path = format!(
        "/sys/class/bdi/{}:{}/read_ahead_kb",
        libc::major(dev),
        libc::minor(dev)
    );
    let now: u64 = std::fs::read_to_string(&path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    if now >= WANT_KB {
        return;
    }
    match std::fs::write(&path, format!("{WANT_KB}\n")) {
        Ok(()) => tracing::debug!("{path}: read-ahead {now} -> {WANT_KB} KiB"),
        Err(e) => tracing::debug!("{path}: read-ahead stays {now} KiB: {e}"),
    }
}

/// Whether this process runs as root.
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Whether something is mounted at `mp` (in this process's mount namespace).
fn is_mounted(mp: &std::path::Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mp = mp.to_string_lossy();
    mounts.lines().any(|l| l.split(' ').nth(1) == Some(&mp))
}
