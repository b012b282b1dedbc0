//! `mountd`: mounts Predastore's buckets as directories and objects as files (FUSE).

mod fs;
mod inodes;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

/// Command line. Storage settings read the same `PREDASTORE_*` variables as s3d.
#[derive(Parser, Debug)]
#[command(
    name = "mountd",
    version,
    about = "Mount Predastore buckets as a filesystem"
)]
struct Cli {
    /// Data directory (default ./data).
    #[arg(long, env = "PREDASTORE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Chunk size in bytes for new data (default 4 MiB).
    #[arg(long, env = "PREDASTORE_CHUNK_SIZE")]
    chunk_size: Option<usize>,
    /// Mount read-only.
    #[arg(long)]
    read_only: bool,
    /// Let users other than the one who mounted access the mount (permission bits still apply).
    #[arg(long)]
    allow_other: bool,
    /// Seconds the kernel may cache attributes and names.
    #[arg(long, default_value_t = 1.0)]
    attr_timeout: f64,
    /// Where to mount.
    mountpoint: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PREDASTORE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mountd: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    let data_dir = cli.data_dir.unwrap_or_else(|| PathBuf::from("./data"));
    let mut cfg = engine::EngineConfig::new(&data_dir);
    if let Some(cs) = cli.chunk_size {
        cfg.chunk_size = cs;
    }
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let engine = engine::Engine::open(cfg).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let filesystem = fs::PredaFs::new(
        engine,
        rt.handle().clone(),
        data_dir.join("mountd-staging"),
        cli.read_only,
        Duration::from_secs_f64(cli.attr_timeout.max(0.0)),
    )
    .map_err(|e| e.to_string())?;
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
    if cli.read_only {
        config.mount_options.push(fuser::MountOption::RO);
    }
    if cli.allow_other {
        config.acl = fuser::SessionACL::All;
    }
    config.n_threads = Some(4);
    let session = fuser::spawn_mount(filesystem, &cli.mountpoint, &config)
        .map_err(|e| format!("cannot mount {}: {e}", cli.mountpoint.display()))?;
    println!(
        "mounted {} on {}",
        data_dir.display(),
        cli.mountpoint.display()
    );
    // Unmount on SIGINT/SIGTERM; exit when unmounted from outside (fusermount3 -u).
    let mp = std::fs::canonicalize(&cli.mountpoint).unwrap_or(cli.mountpoint.clone());
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| e.to_string())?;
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
                _ = tick.tick() => {
                    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
                    let mp = mp.to_string_lossy();
                    if !mounts.lines().any(|l| l.split(' ').nth(1) == Some(&mp)) {
                        tracing::info!("unmounted from outside");
                        break;
                    }
                }
            }
        }
        Ok::<(), String>(())
    })?;
    drop(session);
    println!("unmounted {}", cli.mountpoint.display());
    Ok(())
}
