//! A real s3d process on a free 127.0.0.1 port with a temporary data dir; stopped on drop.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Test credentials (never the AWS example keys).
pub const AK: &str = "PSTESTACCESSKEY00001";
/// Test secret.
pub const SK: &str = "test-secret-key-0123456789abcdefghijklmn";

/// A running server.
pub struct Server {
    child: Child,
    /// `https://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The port.
    pub port: u16,
    /// Its data dir.
    pub dir: tempfile::TempDir,
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Waits (up to 20 s) until something listens on 127.0.0.1:`port`.
pub fn wait_for_port(port: u16) {
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "nothing listens on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Server {
    /// Starts s3d and waits until it accepts connections.
    pub fn start() -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(dir)
    }

    /// Starts s3d on an existing data dir.
    pub fn start_in(dir: tempfile::TempDir) -> Server {
        Self::start_with(dir, &[], None)
    }

    /// Starts s3d with extra flags and, optionally, a `config.yaml`.
    pub fn start_with(dir: tempfile::TempDir, extra: &[&str], config: Option<&str>) -> Server {
        Self::start_custom(dir, extra, config, |_| {})
    }

    /// A server in a fresh directory with `config` as its `config.yaml`.
    pub fn with_config(config: &str) -> Server {
        Self::start_with(tempfile::tempdir().expect("tempdir"), &[], Some(config))
    }

    /// As [`Server::start_with`], with a last say on the command (limits, umask, variables).
    pub fn start_custom(
        dir: tempfile::TempDir,
        extra: &[&str],
        config: Option<&str>,
        prepare: impl FnOnce(&mut Command),
    ) -> Server {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_s3d"));
        prepare(&mut cmd);
        if let Some(yaml) = config {
            let p = dir.path().join("config.yaml");
            std::fs::write(&p, yaml).expect("config");
            cmd.arg("--config").arg(p);
        }
        let child = cmd
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--access-key", AK, "--secret-key", SK])
            .args(extra)
            .env_remove("PREDASTORE_CONFIG")
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("s3d.log")).expect("log"),
            ))
            .spawn()
            .expect("spawn s3d");
        let s = Server {
            child,
            endpoint: format!("https://127.0.0.1:{port}"),
            port,
            dir,
        };
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "s3d did not start: {}",
                s.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    /// Runs a Python suite from `tests/` against this server (endpoint, CA, keys, log and pid
    /// in its environment) and checks that it ends with "N passed, 0 failed".
    pub fn python_suite(&self, script: &str, args: &[&str]) {
        let path = format!("{}/../tests/{script}", env!("CARGO_MANIFEST_DIR"));
        let out = Command::new("python3")
            .arg(path)
            .args(args)
            .env("S3_ENDPOINT", &self.endpoint)
            .env("S3_CA", self.ca())
            .env("AWS_ACCESS_KEY_ID", AK)
            .env("AWS_SECRET_ACCESS_KEY", SK)
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("S3D_LOG", self.log_path())
            .env("S3D_PID", self.pid().to_string())
            .output()
            .expect("python3");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains(" passed, 0 failed"),
            "{stdout}\n{}\nserver log (end):\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("s3d.log")
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("s3d.log")).unwrap_or_default()
    }

    /// The generated CA certificate (self-signed).
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("data/tls/cert.pem")
    }

    /// Stops the server with SIGTERM and returns its exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let t = Instant::now();
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st;
            }
            assert!(t.elapsed() < Duration::from_secs(40), "s3d did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs the aws cli against this server with the test keys and the generated CA.
    pub fn aws(&self, args: &[&str]) -> Output {
        self.aws_with(args, AK, SK)
    }

    /// Runs the aws cli with the arguments of `line`, split at spaces (none of them may hold
    /// one).
    pub fn aws_line(&self, line: &str) -> Output {
        self.aws(&line.split_whitespace().collect::<Vec<_>>())
    }

    /// Runs [`Server::aws_line`] and expects it to fail with `code` in its message.
    pub fn aws_fails(&self, line: &str, code: &str) {
        fails_with(self.aws_line(line), code)
    }

    /// Runs the aws cli with given keys.
    pub fn aws_with(&self, args: &[&str], ak: &str, sk: &str) -> Output {
        self.aws_bin("aws", args, ak, sk)
    }

    /// Runs Debian's aws cli v2 (`/usr/bin/aws`).
    pub fn aws2(&self, args: &[&str]) -> Output {
        self.aws_bin("/usr/bin/aws", args, AK, SK)
    }

    fn aws_bin(&self, bin: &str, args: &[&str], ak: &str, sk: &str) -> Output {
        Command::new(bin)
            .args(["--endpoint-url", &self.endpoint, "--region", "us-east-1"])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", ak)
            .env("AWS_SECRET_ACCESS_KEY", sk)
            .env("AWS_CA_BUNDLE", self.ca())
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_RETRY_MODE", "standard")
            .env("AWS_MAX_ATTEMPTS", "1")
            .env("PYTHONWARNINGS", "ignore")
            .output()
            .expect("run aws (is the aws cli installed?)")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asserts success and returns stdout.
pub fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "command failed: {}\nstdout: {}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts failure with an S3 error code in stderr.
pub fn fails_with(o: Output, code: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "expected {code}, command succeeded");
    assert!(err.contains(code), "expected {code}, got: {err}");
}

/// Deterministic pseudo-random file contents.
pub fn write_file(path: &Path, seed: u64, len: usize) {
    let data = engine::testing::pseudo_random(seed, len);
    std::fs::write(path, data).expect("write");
}

/// MD5 hex of a file.
pub fn md5_file(path: &Path) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(std::fs::read(path).expect("read")))
}

/// MD5 hex of bytes.
pub fn md5_hex(b: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(b))
}

/// Runs `s3d key ARGS` on the server's data dir.
pub fn key_cmd(s: &Server, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_s3d"))
        .arg("--data-dir")
        .arg(s.dir.path().join("data"))
        .arg("key")
        .args(args)
        .env_remove("PREDASTORE_CONFIG")
        .current_dir(s.dir.path())
        .output()
        .unwrap()
}

/// Makes a key; returns its access key id and secret.
pub fn create_key(s: &Server, args: &[&str]) -> (String, String) {
    let out = ok(key_cmd(s, &[&["create"], args].concat()));
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("no {name} in {out}"))
    };
    (field("Access key:"), field("Secret key:"))
}
