//! The NATS door against a real `nats-server` (Debian's, with JetStream) that the test starts
//! and stops: every subject through a NATS client, signatures forged, tampered, replayed and
//! stale refused with nothing changed, a key's permissions as over S3, the max payload, and
//! the NATS server killed and restarted under S3 load.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use s3d::nats::wire;

/// A nats-server on 127.0.0.1, stopped on drop.
struct Nats {
    child: Child,
    port: u16,
}

impl Nats {
    fn start(port: u16, store: &Path) -> Nats {
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server (Debian package nats-server)");
        wait_for_port(port);
        Nats { child, port }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// s3d with the NATS door on `url`.
fn server_on(url: &str) -> Server {
    let url = url.to_string();
    Server::start_custom(tempfile::tempdir().unwrap(), &[], None, move |cmd| {
        cmd.env("PREDASTORE_NATS_URL", &url);
    })
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn nonce() -> String {
    use rand::Rng;
    let n: u128 = rand::rng().random();
    format!("{n:032x}")
}

/// A reply: its headers and body.
struct Answer {
    h: BTreeMap<String, String>,
    body: Bytes,
}

impl Answer {
    fn ok(&self) -> serde_json::Value {
        assert_eq!(
            self.h.get("Status").map(String::as_str),
            Some("200"),
            "{:?} {}",
            self.h,
            String::from_utf8_lossy(&self.body)
        );
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    fn code(&self) -> &str {
        self.h.get("Error-Code").map(String::as_str).unwrap_or("")
    }

    fn message(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends a request as it goes on the wire.
async fn send(c: &async_nats::Client, subject: &str, h: wire::Headers, body: &[u8]) -> Answer {
    let mut map = async_nats::HeaderMap::new();
    for (n, v) in &h {
        map.append(n.as_str(), v.as_str());
    }
    let m = c
        .request_with_headers(subject.to_string(), map, Bytes::copy_from_slice(body))
        .await
        .expect("a reply");
    Answer {
        h: m.headers
            .as_ref()
            .map(s3d::nats::ops::reply_headers)
            .unwrap_or_default(),
        body: m.payload,
    }
}

/// Signs and sends.
async fn call(
    c: &async_nats::Client,
    (ak, sk): (&str, &str),
    subject: &str,
    params: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    let mut h: wire::Headers = params
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    wire::sign(ak, sk, subject, &mut h, body, now(), &nonce());
    send(c, subject, h, body).await
}

/// Waits until s3d's subscription answers.
async fn wait_served(c: &async_nats::Client) {
    let t = Instant::now();
    loop {
        let mut h = wire::Headers::new();
        wire::sign(AK, SK, "s3.listbuckets", &mut h, b"", now(), &nonce());
        let mut map = async_nats::HeaderMap::new();
        for (n, v) in &h {
            map.append(n.as_str(), v.as_str());
        }
        let r = tokio::time::timeout(
            Duration::from_secs(2),
            c.request_with_headers("s3.listbuckets", map, Bytes::new()),
        )
        .await;
        if let Ok(Ok(_)) = r {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "s3d does not serve NATS"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn text(n: usize) -> Vec<u8> {
    (0..n).map(|i| b"abcdefghij\n"[i % 11]).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_subject_signed_and_authorised() {
    let store = tempfile::tempdir().unwrap();
    let nats = Nats::start(free_port(), store.path());
    let s = server_on(&nats.url());
    let c = async_nats::connect(nats.url()).await.unwrap();
    wait_served(&c).await;
    let admin = (AK, SK);

    // Buckets and objects.
    assert_eq!(
        call(&c, admin, "s3.createbucket", &[("Bucket", "frames")], b"")
            .await
            .ok()["Bucket"],
        "frames"
    );
    let body = text(300_000);
    let put = call(
        &c,
        admin,
        "s3.putobject",
        &[
            ("Bucket", "frames"),
            ("Key", "cam7/0001.txt"),
            ("Content-Type", "text/plain"),
            ("Meta-Camera", "7"),
        ],
        &body,
    )
    .await
    .ok();
    assert_eq!(put["ETag"], format!("\"{}\"", md5_hex(&body)));
    let got = call(
        &c,
        admin,
        "s3.getobject",
        &[("Bucket", "frames"), ("Key", "cam7/0001.txt")],
        b"",
    )
    .await;
    assert_eq!(got.h["Status"], "200");
    assert_eq!(got.body, body);
    assert_eq!(got.h["Content-Type"], "text/plain");
    assert_eq!(got.h["Meta-camera"], "7");
    let part = call(
        &c,
        admin,
        "s3.getobject",
        &[
            ("Bucket", "frames"),
            ("Key", "cam7/0001.txt"),
            ("Range", "bytes=100-199"),
        ],
        b"",
    )
    .await;
    assert_eq!(part.body, &body[100..200]);
    assert_eq!(part.h["Content-Range"], "bytes 100-199/300000");
    let head = call(
        &c,
        admin,
        "s3.headobject",
        &[("Bucket", "frames"), ("Key", "cam7/0001.txt")],
        b"",
    )
    .await
    .ok();
    assert_eq!(head["Size"], 300_000);
    assert_eq!(head["Metadata"]["camera"], "7");
    let copy = call(
        &c,
        admin,
        "s3.copyobject",
        &[
            ("Source-Bucket", "frames"),
            ("Source-Key", "cam7/0001.txt"),
            ("Bucket", "frames"),
            ("Key", "cam8/copy.txt"),
        ],
        b"",
    )
    .await
    .ok();
    assert_eq!(copy["ETag"], put["ETag"]);
    let list = call(
        &c,
        admin,
        "s3.listobjects",
        &[("Bucket", "frames"), ("Delimiter", "/")],
        b"",
    )
    .await
    .ok();
    assert_eq!(
        list["CommonPrefixes"],
        serde_json::json!(["cam7/", "cam8/"])
    );
    let list = call(
        &c,
        admin,
        "s3.listobjects",
        &[("Bucket", "frames"), ("Prefix", "cam7/")],
        b"",
    )
    .await
    .ok();
    assert_eq!(list["Contents"][0]["Key"], "cam7/0001.txt");
    let buckets = call(&c, admin, "s3.listbuckets", &[], b"").await.ok();
    assert_eq!(buckets["Buckets"][0]["Name"], "frames");

    // Multipart: parts of one message each (below S3's 5 MiB, as NATS allows), then S3 reads it.
    let init = call(
        &c,
        admin,
        "s3.multipart.init",
        &[("Bucket", "frames"), ("Key", "big.bin")],
        b"",
    )
    .await
    .ok();
    let id = init["UploadId"].as_str().unwrap().to_string();
    let whole = engine::testing::pseudo_random(5, 2_500_000);
    let mut parts = Vec::new();
    for (i, piece) in whole.chunks(900_000).enumerate() {
        let n = (i + 1).to_string();
        let p = call(
            &c,
            admin,
            "s3.multipart.upload",
            &[
                ("Bucket", "frames"),
                ("Key", "big.bin"),
                ("Upload-Id", &id),
                ("Part-Number", &n),
            ],
            piece,
        )
        .await
        .ok();
        parts.push(serde_json::json!({"PartNumber": i + 1, "ETag": p["ETag"]}));
    }
    let done = call(
        &c,
        admin,
        "s3.multipart.complete",
        &[("Bucket", "frames"), ("Key", "big.bin"), ("Upload-Id", &id)],
        serde_json::json!({ "Parts": parts }).to_string().as_bytes(),
    )
    .await
    .ok();
    assert_eq!(done["Size"], 2_500_000);
    assert!(done["ETag"].as_str().unwrap().ends_with("-3\""));
    let back = s.dir.path().join("big.back");
    ok(s.aws_line(&format!("s3 cp s3://frames/big.bin {}", back.display())));
    assert_eq!(std::fs::read(&back).unwrap(), whole);
    // Too big for one reply: refused with the limit named; ranges read it.
    let big = call(
        &c,
        admin,
        "s3.getobject",
        &[("Bucket", "frames"), ("Key", "big.bin")],
        b"",
    )
    .await;
    assert_eq!(big.code(), "EntityTooLarge");
    assert!(big.message().contains("max payload"), "{}", big.message());
    let r = call(
        &c,
        admin,
        "s3.getobject",
        &[
            ("Bucket", "frames"),
            ("Key", "big.bin"),
            ("Range", "bytes=2000000-2099999"),
        ],
        b"",
    )
    .await;
    assert_eq!(r.body, &whole[2_000_000..2_100_000]);
    // An upload given up.
    let init = call(
        &c,
        admin,
        "s3.multipart.init",
        &[("Bucket", "frames"), ("Key", "gone.bin")],
        b"",
    )
    .await
    .ok();
    let gone = init["UploadId"].as_str().unwrap().to_string();
    call(
        &c,
        admin,
        "s3.multipart.abort",
        &[
            ("Bucket", "frames"),
            ("Key", "gone.bin"),
            ("Upload-Id", &gone),
        ],
        b"",
    )
    .await
    .ok();
    let again = call(
        &c,
        admin,
        "s3.multipart.upload",
        &[
            ("Bucket", "frames"),
            ("Key", "gone.bin"),
            ("Upload-Id", &gone),
            ("Part-Number", "1"),
        ],
        b"x",
    )
    .await;
    assert_eq!(again.code(), "NoSuchUpload");

    // Written over S3, read over NATS; deleted over NATS, gone over S3.
    let f = s.dir.path().join("s3.txt");
    std::fs::write(&f, b"from S3").unwrap();
    ok(s.aws_line(&format!("s3 cp {} s3://frames/s3.txt", f.display())));
    let r = call(
        &c,
        admin,
        "s3.getobject",
        &[("Bucket", "frames"), ("Key", "s3.txt")],
        b"",
    )
    .await;
    assert_eq!(&r.body[..], b"from S3");
    call(
        &c,
        admin,
        "s3.deleteobject",
        &[("Bucket", "frames"), ("Key", "s3.txt")],
        b"",
    )
    .await
    .ok();
    s.aws_fails("s3api head-object --bucket frames --key s3.txt", "404");

    // A key of the store: only what its grant allows, as over S3.
    let reader = create_key(&s, &["--name", "reader"]);
    ok(key_cmd(&s, &["allow", "reader", "frames/cam7", "--read"]));
    let reader = (reader.0.as_str(), reader.1.as_str());
    let r = call(
        &c,
        reader,
        "s3.getobject",
        &[("Bucket", "frames"), ("Key", "cam7/0001.txt")],
        b"",
    )
    .await;
    assert_eq!(r.body, body);
    for (subject, params) in [
        (
            "s3.putobject",
            vec![("Bucket", "frames"), ("Key", "cam7/new.txt")],
        ),
        (
            "s3.deleteobject",
            vec![("Bucket", "frames"), ("Key", "cam7/0001.txt")],
        ),
        (
            "s3.getobject",
            vec![("Bucket", "frames"), ("Key", "cam8/copy.txt")],
        ),
        ("s3.createbucket", vec![("Bucket", "readers-own")]),
        ("s3.deletebucket", vec![("Bucket", "frames")]),
    ] {
        let r = call(&c, reader, subject, &params, b"x").await;
        assert_eq!(r.code(), "AccessDenied", "{subject}: {}", r.message());
        assert_eq!(r.h["Status"], "403");
    }
    assert!(
        s.aws_line("s3api head-object --bucket frames --key cam7/new.txt")
            .status
            .code()
            != Some(0)
    );

    // Forged, tampered, replayed, stale, unsigned, unknown key: refused, nothing stored.
    let put = |key: &str| {
        vec![
            ("Bucket".to_string(), "frames".to_string()),
            ("Key".to_string(), key.to_string()),
        ]
    };
    let mut h = put("forged.txt");
    wire::sign(
        AK,
        "not-the-secret",
        "s3.putobject",
        &mut h,
        b"evil",
        now(),
        &nonce(),
    );
    assert_eq!(
        send(&c, "s3.putobject", h, b"evil").await.code(),
        "SignatureDoesNotMatch"
    );
    let mut h = put("innocent.txt");
    wire::sign(AK, SK, "s3.putobject", &mut h, b"data", now(), &nonce());
    let mut tampered = h.clone();
    tampered[1].1 = "tampered.txt".into();
    assert_eq!(
        send(&c, "s3.putobject", tampered, b"data").await.code(),
        "SignatureDoesNotMatch"
    );
    assert_eq!(
        send(&c, "s3.putobject", h.clone(), b"DATA").await.code(),
        "XAmzContentSHA256Mismatch"
    );
    assert_eq!(
        send(&c, "s3.deleteobject", h.clone(), b"data").await.code(),
        "SignatureDoesNotMatch"
    );
    send(&c, "s3.putobject", h.clone(), b"data").await.ok();
    let replay = send(&c, "s3.putobject", h, b"data").await;
    assert_eq!(replay.code(), "AccessDenied");
    assert!(
        replay.message().contains("already received"),
        "{}",
        replay.message()
    );
    let mut h = put("stale.txt");
    wire::sign(
        AK,
        SK,
        "s3.putobject",
        &mut h,
        b"old",
        now() - 3600,
        &nonce(),
    );
    assert_eq!(
        send(&c, "s3.putobject", h, b"old").await.code(),
        "RequestTimeTooSkewed"
    );
    assert_eq!(
        send(&c, "s3.putobject", put("unsigned.txt"), b"x")
            .await
            .code(),
        "MissingSecurityHeader"
    );
    let mut h = put("nokey.txt");
    wire::sign(
        "PSNOSUCHKEY000000000",
        SK,
        "s3.putobject",
        &mut h,
        b"x",
        now(),
        &nonce(),
    );
    assert_eq!(
        send(&c, "s3.putobject", h, b"x").await.code(),
        "InvalidAccessKeyId"
    );
    let r = call(&c, admin, "s3.nosuchop", &[], b"").await;
    assert_eq!(r.code(), "InvalidRequest");
    let listed = call(&c, admin, "s3.listobjects", &[("Bucket", "frames")], b"")
        .await
        .ok();
    let keys: Vec<&str> = listed["Contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["Key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["big.bin", "cam7/0001.txt", "cam8/copy.txt", "innocent.txt"]
    );

    // Cleaning up through NATS: a bucket with objects is refused, an empty one goes.
    assert_eq!(
        call(&c, admin, "s3.deletebucket", &[("Bucket", "frames")], b"")
            .await
            .code(),
        "BucketNotEmpty"
    );
    for k in keys {
        call(
            &c,
            admin,
            "s3.deleteobject",
            &[("Bucket", "frames"), ("Key", k)],
            b"",
        )
        .await
        .ok();
    }
    call(&c, admin, "s3.deletebucket", &[("Bucket", "frames")], b"")
        .await
        .ok();
    assert!(!s.log().contains(SK), "a secret in the log");
}

/// `/-/ready`'s body.
fn ready(s: &Server) -> String {
    let o = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(s.ca())
        .arg(format!("{}/-/ready", s.endpoint))
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn nats_restarted_under_load_s3_unaffected_requests_resume() {
    let store = tempfile::tempdir().unwrap();
    let port = free_port();
    let nats = Nats::start(port, store.path());
    let s = server_on(&nats.url());
    let c = async_nats::connect(nats.url()).await.unwrap();
    wait_served(&c).await;
    assert!(ready(&s).contains("nats: connected"), "{}", ready(&s));
    ok(s.aws_line("s3 mb s3://steady"));
    ok(s.aws(&[
        "s3api",
        "put-bucket-notification-configuration",
        "--bucket",
        "steady",
        "--notification-configuration",
        r#"{"TopicConfigurations":[{"Id":"puts","TopicArn":"arn:predastore:nats:::s3.events.steady","Events":["s3:ObjectCreated:Put"]}]}"#,
    ]));
    // S3 traffic the whole time.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        let endpoint = s.endpoint.clone();
        let ca = s.ca();
        let dir = s.dir.path().to_path_buf();
        std::thread::spawn(move || {
            let f = dir.join("load.bin");
            std::fs::write(&f, vec![7u8; 100_000]).unwrap();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let o = Command::new("aws")
                    .args([
                        "--endpoint-url",
                        &endpoint,
                        "--region",
                        "us-east-1",
                        "s3",
                        "cp",
                    ])
                    .arg(&f)
                    .arg(format!("s3://steady/obj{n}"))
                    .env("AWS_ACCESS_KEY_ID", AK)
                    .env("AWS_SECRET_ACCESS_KEY", SK)
                    .env("AWS_CA_BUNDLE", &ca)
                    .env("AWS_CONFIG_FILE", "/dev/null")
                    .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
                    .output()
                    .unwrap();
                assert!(
                    o.status.success(),
                    "S3 put {n} failed while NATS was away: {o:?}"
                );
                n += 1;
            }
            n
        })
    };
    drop(c);
    drop(nats);
    let t = Instant::now();
    while !ready(&s).contains("nats: disconnected") {
        assert!(t.elapsed() < Duration::from_secs(20), "{}", ready(&s));
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    // Back on the same port: s3d finds it again by itself.
    let nats = Nats::start(port, store.path());
    let c = async_nats::connect(nats.url()).await.unwrap();
    wait_served(&c).await;
    call(
        &c,
        (AK, SK),
        "s3.putobject",
        &[("Bucket", "steady"), ("Key", "after.txt")],
        b"back",
    )
    .await
    .ok();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let puts = load.join().unwrap();
    assert!(puts >= 2, "{puts}");
    assert!(ready(&s).contains("nats: connected"));
    let metrics = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(s.ca())
        .arg(format!("{}/-/metrics", s.endpoint))
        .output()
        .unwrap();
    let m = String::from_utf8_lossy(&metrics.stdout);
    assert!(m.contains("predastore_nats_connected 1"), "{m}");
    assert!(!m.contains("predastore_nats_disconnects_total 0"), "{m}");
    assert!(s.log().contains("NATS: disconnected"));
    // The events of every put, those made while NATS was away included, reach the stream
    // (JetStream kept its store across the restart), each once.
    let js = async_nats::jetstream::new(c.clone());
    let mut reader = events_consumer(&js).await;
    let ev = next_events(&mut reader, puts + 1).await;
    let mut keys: Vec<String> = ev.iter().map(|r| name_and_key(r).1).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), puts + 1);
    assert!(keys.contains(&"after.txt".to_string()));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        reader.stream.get_raw_message(reader.next).await.is_err(),
        "no duplicate after them"
    );
}

/// Runs the Python client of docs/nats.md (nats-py: an implementation of the wire format
/// written apart from s3d's).
fn python_client(url: &str, args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write;
    let script = format!(
        "{}/../docs/examples/nats_client.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut child = Command::new("python3")
        .arg(script)
        .arg(url)
        .args(args)
        .env("PREDASTORE_ACCESS_KEY", AK)
        .env("PREDASTORE_SECRET_KEY", SK)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_documented_python_client_works() {
    let store = tempfile::tempdir().unwrap();
    let nats = Nats::start(free_port(), store.path());
    let s = server_on(&nats.url());
    let c = async_nats::connect(nats.url()).await.unwrap();
    wait_served(&c).await;
    let url = nats.url();
    let o = python_client(&url, &["s3.createbucket", "Bucket=py-docs"], b"");
    assert!(o.status.success(), "{o:?}");
    let body = engine::testing::pseudo_random(3, 200_000);
    let o = python_client(
        &url,
        &[
            "s3.putobject",
            "Bucket=py-docs",
            "Key=a/b.bin",
            "Content-Type=application/x-test",
        ],
        &body,
    );
    assert!(o.status.success(), "{o:?}");
    let o = python_client(
        &url,
        &["s3.getobject", "Bucket=py-docs", "Key=a/b.bin"],
        b"",
    );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(o.stdout, body);
    assert!(String::from_utf8_lossy(&o.stderr).contains("Content-Type: application/x-test"));
    let o = python_client(
        &url,
        &["s3.getobject", "Bucket=py-docs", "Key=missing"],
        b"",
    );
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Error-Code: NoSuchKey"),
        "{o:?}"
    );
    // Over S3, the same object.
    let back = s.dir.path().join("b.bin");
    ok(s.aws_line(&format!("s3 cp s3://py-docs/a/b.bin {}", back.display())));
    assert_eq!(std::fs::read(back).unwrap(), body);
}

/// Reads the events stream (made by s3d's publisher: waited for) in order, from its start.
struct EventsReader {
    stream: async_nats::jetstream::stream::Stream,
    next: u64,
}

async fn events_consumer(js: &async_nats::jetstream::Context) -> EventsReader {
    let t = Instant::now();
    let stream = loop {
        if let Ok(s) = js.get_stream("PREDASTORE_EVENTS").await {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "no events stream");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    EventsReader { stream, next: 1 }
}

/// The next `n` event records (`Records[0]`) of the stream, waiting up to 30 s.
async fn next_events(r: &mut EventsReader, n: usize) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let t = Instant::now();
    while out.len() < n {
        match r.stream.get_raw_message(r.next).await {
            Ok(m) => {
                let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
                out.push(v["Records"][0].clone());
                r.next += 1;
            }
            Err(_) => {
                assert!(
                    t.elapsed() < Duration::from_secs(30),
                    "{} of {n} events: {out:?}",
                    out.len()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    out
}

fn name_and_key(r: &serde_json::Value) -> (String, String) {
    (
        r["eventName"].as_str().unwrap_or("").to_string(),
        r["s3"]["object"]["key"].as_str().unwrap_or("").to_string(),
    )
}

const NOTIFY_ALL: &str = r#"{"TopicConfigurations":[
  {"Id":"all","TopicArn":"arn:predastore:nats:::s3.events.cams","Events":["s3:ObjectCreated:*","s3:ObjectRemoved:*","s3:LifecycleExpiration:*"]},
  {"Id":"jpg","TopicArn":"arn:predastore:nats:::camera.jpg","Events":["s3:ObjectCreated:Put"],
   "Filter":{"Key":{"FilterRules":[{"Name":"suffix","Value":".jpg"}]}}}]}"#;

#[tokio::test(flavor = "multi_thread")]
async fn s3_changes_are_published_as_event_records() {
    let store = tempfile::tempdir().unwrap();
    let nats = Nats::start(free_port(), store.path());
    let s = server_on(&nats.url());
    let c = async_nats::connect(nats.url()).await.unwrap();
    wait_served(&c).await;
    let js = async_nats::jetstream::new(c.clone());
    let mut consumer = events_consumer(&js).await;
    let mut jpg = c.subscribe("camera.jpg").await.unwrap();
    c.flush().await.unwrap();

    ok(s.aws_line("s3 mb s3://cams"));
    // A target that is no NATS subject: refused, nothing set.
    s.aws_fails(
        r#"s3api put-bucket-notification-configuration --bucket cams --notification-configuration {"TopicConfigurations":[{"TopicArn":"arn:aws:sns:us-east-1:1:t","Events":["s3:ObjectCreated:*"]}]}"#,
        "InvalidArgument",
    );
    ok(s.aws(&[
        "s3api",
        "put-bucket-notification-configuration",
        "--bucket",
        "cams",
        "--notification-configuration",
        NOTIFY_ALL,
    ]));
    let got = ok(s.aws_line("s3api get-bucket-notification-configuration --bucket cams"));
    assert!(
        got.contains("arn:predastore:nats:::camera.jpg") && got.contains(".jpg"),
        "{got}"
    );

    let f = s.dir.path().join("a.jpg");
    std::fs::write(&f, b"jpeg bytes").unwrap();
    ok(s.aws_line(&format!("s3 cp {} s3://cams/a.jpg", f.display())));
    ok(s.aws_line("s3 cp s3://cams/a.jpg s3://cams/b.jpg"));
    let big = s.dir.path().join("big.bin");
    write_file(&big, 1, 12_000_000);
    ok(s.aws_line(&format!("s3 cp {} s3://cams/big.bin", big.display())));
    ok(s.aws_line("s3 rm s3://cams/b.jpg"));
    let ev = next_events(&mut consumer, 4).await;
    let names: Vec<(String, String)> = ev.iter().map(name_and_key).collect();
    assert_eq!(
        names,
        [
            ("s3:ObjectCreated:Put".to_string(), "a.jpg".to_string()),
            ("s3:ObjectCreated:Copy".into(), "b.jpg".into()),
            (
                "s3:ObjectCreated:CompleteMultipartUpload".into(),
                "big.bin".into()
            ),
            ("s3:ObjectRemoved:Delete".into(), "b.jpg".into()),
        ]
    );
    let put = &ev[0];
    assert_eq!(put["s3"]["bucket"]["name"], "cams");
    assert_eq!(put["s3"]["object"]["size"], 10);
    assert_eq!(put["s3"]["object"]["eTag"], md5_hex(b"jpeg bytes"));
    assert_eq!(put["s3"]["configurationId"], "all");
    assert_eq!(put["awsRegion"], "us-east-1");
    // The .jpg rule's subject has no stream: core NATS, and only the put of a.jpg.
    let m = tokio::time::timeout(Duration::from_secs(10), futures::StreamExt::next(&mut jpg))
        .await
        .unwrap()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
    assert_eq!(
        name_and_key(&v["Records"][0]),
        ("s3:ObjectCreated:Put".into(), "a.jpg".into())
    );

    // A subscriber that never reads does not hold writes back: 150 puts go through, and the
    // stream gets every event.
    let slow = async_nats::ConnectOptions::new()
        .subscription_capacity(1)
        .connect(nats.url())
        .await
        .unwrap();
    let _never_read = slow.subscribe("s3.events.>").await.unwrap();
    slow.flush().await.unwrap();
    for i in 0..150 {
        call(
            &c,
            (AK, SK),
            "s3.putobject",
            &[("Bucket", "cams"), ("Key", &format!("burst/{i:03}"))],
            b"x",
        )
        .await
        .ok();
    }
    ok(s.aws_line(&format!("s3 cp {} s3://cams/after-burst.jpg", f.display())));
    let ev = next_events(&mut consumer, 151).await;
    assert_eq!(name_and_key(&ev[0]).1, "burst/000");
    assert_eq!(name_and_key(&ev[150]).1, "after-burst.jpg");
    let mut keys: Vec<String> = ev.iter().map(|r| name_and_key(r).1).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 151, "every event once");
}

/// s3d with the NATS door configured by `envs`.
fn server_env(envs: &[(&str, String)]) -> Server {
    let envs: Vec<(String, String)> = envs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    Server::start_custom(tempfile::tempdir().unwrap(), &[], None, move |cmd| {
        cmd.envs(envs);
    })
}

/// A nats-server with extra arguments (credentials, TLS), stopped on drop.
fn nats_with(port: u16, store: &Path, extra: &[&str]) -> Nats {
    let child = Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(store)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server");
    wait_for_port(port);
    Nats { child, port }
}

/// Waits until `/-/ready` says `nats: WHAT`.
fn wait_ready(s: &Server, what: &str) {
    let t = Instant::now();
    while !ready(s).contains(what) {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{}\n{}",
            ready(s),
            s.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn s3d_authenticates_to_nats_by_password_token_nkey_and_tls() {
    let store = tempfile::tempdir().unwrap();
    // User and password: the right ones serve, a wrong one leaves S3 serving and says so.
    let port = free_port();
    let nats = nats_with(
        port,
        store.path(),
        &["--user", "predastore", "--pass", "s3cr3t-pass"],
    );
    let url = nats.url();
    let s = server_env(&[
        ("PREDASTORE_NATS_URL", url.clone()),
        ("PREDASTORE_NATS_USER", "predastore".into()),
        ("PREDASTORE_NATS_PASSWORD", "s3cr3t-pass".into()),
    ]);
    let c = async_nats::ConnectOptions::with_user_and_password(
        "predastore".into(),
        "s3cr3t-pass".into(),
    )
    .connect(&url)
    .await
    .unwrap();
    wait_served(&c).await;
    wait_ready(&s, "nats: connected");
    let wrong = server_env(&[
        ("PREDASTORE_NATS_URL", url.clone()),
        ("PREDASTORE_NATS_USER", "predastore".into()),
        ("PREDASTORE_NATS_PASSWORD", "wrong".into()),
    ]);
    wait_ready(&wrong, "nats: disconnected");
    ok(wrong.aws_line("s3 mb s3://still-serving"));
    assert!(!wrong.log().contains("wrong\""), "a password in the log");
    drop((s, wrong, c, nats));

    // Token.
    let port = free_port();
    let nats = nats_with(port, store.path(), &["--auth", "tok-0123456789"]);
    let s = server_env(&[
        ("PREDASTORE_NATS_URL", nats.url()),
        ("PREDASTORE_NATS_TOKEN", "tok-0123456789".into()),
    ]);
    let c = async_nats::ConnectOptions::with_token("tok-0123456789".into())
        .connect(nats.url())
        .await
        .unwrap();
    wait_served(&c).await;
    drop((s, c, nats));

    // NKey: the seed from a file, the server knowing only the public key.
    let kp = nkeys::KeyPair::new_user();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("nkey.conf");
    std::fs::write(
        &conf,
        format!(
            "authorization {{ users = [ {{ nkey: \"{}\" }} ] }}\n",
            kp.public_key()
        ),
    )
    .unwrap();
    let seed_file = dir.path().join("s3d.nk");
    std::fs::write(&seed_file, format!("{}\n", kp.seed().unwrap())).unwrap();
    let port = free_port();
    let nats = nats_with(port, store.path(), &["-c", conf.to_str().unwrap()]);
    let s = server_env(&[
        ("PREDASTORE_NATS_URL", nats.url()),
        (
            "PREDASTORE_NATS_NKEY_SEED_FILE",
            seed_file.display().to_string(),
        ),
    ]);
    let c = async_nats::ConnectOptions::with_nkey(kp.seed().unwrap())
        .connect(nats.url())
        .await
        .unwrap();
    wait_served(&c).await;
    wait_ready(&s, "nats: connected");
    drop((s, c, nats));

    // TLS, the server's certificate checked against a CA file.
    let ca = dir.path().join("ca.pem");
    let cert = dir.path().join("nats.pem");
    let key = dir.path().join("nats-key.pem");
    let ext = dir.path().join("ext.cnf");
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    for args in [
        vec![
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=predastore test CA",
            "-keyout",
            &p("ca.key"),
            "-out",
            &p("ca.pem"),
        ],
        vec![
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            &p("nats-key.pem"),
            "-out",
            &p("nats.csr"),
        ],
        vec![
            "x509",
            "-req",
            "-in",
            &p("nats.csr"),
            "-CA",
            &p("ca.pem"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &p("ext.cnf"),
            "-out",
            &p("nats.pem"),
        ],
    ] {
        let made = Command::new("openssl").args(&args).output().unwrap();
        assert!(made.status.success(), "{made:?}");
    }
    let port = free_port();
    let nats = nats_with(
        port,
        store.path(),
        &[
            "--tls",
            "--tlscert",
            cert.to_str().unwrap(),
            "--tlskey",
            key.to_str().unwrap(),
        ],
    );
    let tls_url = format!("tls://127.0.0.1:{port}");
    let s = server_env(&[
        ("PREDASTORE_NATS_URL", tls_url.clone()),
        ("PREDASTORE_NATS_CA", ca.display().to_string()),
    ]);
    let c = async_nats::ConnectOptions::new()
        .add_root_certificates(ca.clone())
        .require_tls(true)
        .connect(&tls_url)
        .await
        .unwrap();
    wait_served(&c).await;
    wait_ready(&s, "nats: connected");
    // Without the CA the certificate is not trusted: not connected, S3 unaffected.
    let untrusting = server_env(&[("PREDASTORE_NATS_URL", tls_url.clone())]);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        ready(&untrusting).contains("nats: disconnected"),
        "{}",
        ready(&untrusting)
    );
    ok(untrusting.aws_line("s3 mb s3://tls-unaffected"));
    drop((s, untrusting, c, nats));
}
