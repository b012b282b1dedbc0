#!/usr/bin/env python3
"""Soak test (run by hand, as root, never from CI): `scripts/soak.py [--minutes 30]`.

Mixed S3 traffic from many clients (puts of every size, ranged gets, lists, multipart uploads,
deletes) against a real s3d, while a mount of the same data dir writes files, while s3d or
mountd is killed with SIGKILL every 30-90 s and restarted, and while one disk directory is made
read-only for a while and restored. At the end every acknowledged object and file is read back
and compared, a scrub must be clean, and the peak RSS of s3d and mountd is reported.

Each client owns its keys, so what was acknowledged is known exactly; a request that failed
because its server was killed leaves its key "in doubt" between the old and the new content
until the next acknowledged write settles it. Binaries: $BIN_DIR (default target/release, else
target/debug). Prints a summary and exits non-zero on any lost or wrong object.
"""
import argparse
import hashlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import boto3
import botocore
from botocore.config import Config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AK, SK = "PSSOAKACCESSKEY00001", "soak-secret-key-0123456789abcdefghijklmn"
SIZES = [0, 1_000, 100_000, 1_000_000, 5_000_000, 20_000_000]
BUCKET = "soak"


def bin_dir():
    d = os.environ.get("BIN_DIR")
    if d:
        return d
    rel = os.path.join(ROOT, "target/release")
    return rel if os.path.exists(os.path.join(rel, "s3d")) else os.path.join(ROOT, "target/debug")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def body(seed, size):
    out = bytearray()
    h = hashlib.shake_256(str(seed).encode()).digest(min(size, 1 << 20) or 1)
    while len(out) < size:
        out += h
    return bytes(out[:size])


def md5(b):
    return hashlib.md5(b).hexdigest()


def du_mib(path):
    out = subprocess.run(["du", "-sm", path], capture_output=True, text=True).stdout.split()
    return int(out[0]) if out else 0


def rss_mib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


class Cluster:
    """s3d and mountd on one data dir, restartable."""

    def __init__(self, work):
        self.work = work
        self.data = os.path.join(work, "data")
        self.mnt = os.path.join(work, "mnt")
        os.makedirs(self.mnt, exist_ok=True)
        self.port = free_port()
        self.endpoint = f"https://127.0.0.1:{self.port}"
        self.ca = os.path.join(self.data, "tls/cert.pem")
        self.s3d = None
        self.mountd = None
        self.log = open(os.path.join(work, "servers.log"), "ab")
        self.peak = {"s3d": 0, "mountd": 0}
        self.kills = {"s3d": 0, "mountd": 0}

    def start_s3d(self):
        env = dict(os.environ, PREDASTORE_ACCESS_KEY=AK, PREDASTORE_SECRET_KEY=SK)
        self.s3d = subprocess.Popen(
            [os.path.join(bin_dir(), "s3d"), "--host", "127.0.0.1", "--port", str(self.port), "--data-dir", self.data],
            env=env, stdout=self.log, stderr=self.log,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("s3d did not start")

    def mounted(self):
        with open("/proc/self/mounts") as f:
            return any(l.split()[1] == self.mnt for l in f)

    def start_mountd(self):
        if self.mounted():
            subprocess.run(["fusermount3", "-u", "-z", self.mnt], check=False)
        self.mountd = subprocess.Popen(
            [os.path.join(bin_dir(), "mountd"), "--data-dir", self.data, self.mnt],
            stdout=self.log, stderr=self.log,
        )
        deadline = time.time() + 30
        while not self.mounted():
            if time.time() > deadline:
                raise RuntimeError("mountd did not mount")
            time.sleep(0.1)

    def kill(self, which):
        p = getattr(self, which)
        p.send_signal(signal.SIGKILL)
        p.wait()
        self.kills[which] += 1
        (self.start_s3d if which == "s3d" else self.start_mountd)()

    def sample(self):
        for name in ("s3d", "mountd"):
            p = getattr(self, name)
            if p:
                self.peak[name] = max(self.peak[name], rss_mib(p.pid))

    def stop(self):
        if self.mountd:
            subprocess.run(["fusermount3", "-u", self.mnt], check=False)
            self.mountd.wait(timeout=30)
            self.mountd = None
        if self.s3d:
            self.s3d.send_signal(signal.SIGTERM)
            self.s3d.wait(timeout=60)
            self.s3d = None


class Ledger:
    """What was acknowledged per key: md5 (or None: deleted), and what is in doubt."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}
        self.doubt = {}
        self.acks = 0
        self.failures = 0

    def ack(self, key, new):
        with self.lock:
            self.acked[key] = new
            self.doubt.pop(key, None)
            self.acks += 1

    def fail(self, key, new):
        with self.lock:
            self.doubt.setdefault(key, set()).add(new)
            self.failures += 1


def s3_client(c):
    cfg = Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=60, s3={"addressing_style": "path"})
    return boto3.client("s3", endpoint_url=c.endpoint, region_name="us-east-1", verify=c.ca,
                        aws_access_key_id=AK, aws_secret_access_key=SK, config=cfg)


def s3_worker(c, ledger, idx, stop, stats):
    rnd = random.Random(idx)
    s3 = s3_client(c)
    keys = [f"c{idx}/k{i}" for i in range(12)]
    while not stop.is_set():
        key = rnd.choice(keys)
        op = rnd.random()
        try:
            if op < 0.45:
                size = rnd.choice(SIZES)
                b = body(rnd.random(), size)
                new = md5(b)
                try:
                    if size >= 5_000_000 and rnd.random() < 0.5:
                        mp = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
                        parts = []
                        for n, off in enumerate(range(0, size, 5 * 1024 * 1024), 1):
                            r = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=mp, PartNumber=n,
                                               Body=b[off:off + 5 * 1024 * 1024])
                            parts.append({"PartNumber": n, "ETag": r["ETag"]})
                        s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=mp,
                                                     MultipartUpload={"Parts": parts})
                    else:
                        s3.put_object(Bucket=BUCKET, Key=key, Body=b)
                    ledger.ack(key, new)
                    stats["put"] += 1
                except Exception:
                    ledger.fail(key, new)
                    raise
            elif op < 0.55:
                try:
                    s3.delete_object(Bucket=BUCKET, Key=key)
                    ledger.ack(key, None)
                    stats["delete"] += 1
                except Exception:
                    ledger.fail(key, None)
                    raise
            elif op < 0.85:
                h = s3.head_object(Bucket=BUCKET, Key=key)
                n = h["ContentLength"]
                if n:
                    a = rnd.randrange(n)
                    s3.get_object(Bucket=BUCKET, Key=key, Range=f"bytes={a}-{min(n - 1, a + 70_000)}")["Body"].read()
                stats["get"] += 1
            else:
                s3.list_objects_v2(Bucket=BUCKET, Prefix=f"c{idx}/", MaxKeys=5)
                stats["list"] += 1
        except Exception:  # noqa: BLE001 - a killed server fails requests in many ways
            stats["errors"] += 1
            time.sleep(0.2)


def mount_worker(c, ledger, stop, stats):
    rnd = random.Random(99)
    d = os.path.join(c.mnt, BUCKET, "mount")
    while not stop.is_set():
        key = f"mount/f{rnd.randrange(12)}"
        b = body(rnd.random(), rnd.choice(SIZES[:5]))
        new = md5(b)
        try:
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(c.mnt, BUCKET, key), "wb") as f:
                f.write(b)
                f.flush()
                os.fsync(f.fileno())
            ledger.ack(key, new)
            stats["mount_write"] += 1
        except OSError:
            ledger.fail(key, new)
            stats["errors"] += 1
            time.sleep(0.3)


def readonly_disk(c, on):
    disk = os.path.join(c.data, "disks", "disk2")
    if on:
        subprocess.run(["mount", "--bind", disk, disk], check=True)
        subprocess.run(["mount", "-o", "remount,bind,ro", disk], check=True)
    else:
        subprocess.run(["umount", disk], check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--clients", type=int, default=8)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="predastore-soak-")
    c = Cluster(work)
    c.start_s3d()
    s3 = s3_client(c)
    s3.create_bucket(Bucket=BUCKET)
    c.start_mountd()
    ledger = Ledger()
    stop = threading.Event()
    stats = {k: 0 for k in ("put", "delete", "get", "list", "mount_write", "errors")}
    threads = [threading.Thread(target=s3_worker, args=(c, ledger, i, stop, stats)) for i in range(args.clients)]
    threads.append(threading.Thread(target=mount_worker, args=(c, ledger, stop, stats)))
    for t in threads:
        t.start()
    end = time.time() + args.minutes * 60
    rnd = random.Random(7)
    next_kill = time.time() + rnd.uniform(30, 90)
    ro_at, ro_until = time.time() + args.minutes * 60 * 0.3, time.time() + args.minutes * 60 * 0.5
    ro = False
    while time.time() < end:
        c.sample()
        now = time.time()
        if now >= next_kill:
            which = rnd.choice(["s3d", "mountd"])
            print(f"[{int(now - end + args.minutes * 60)} s] kill -9 {which}", flush=True)
            c.kill(which)
            next_kill = now + rnd.uniform(30, 90)
        if not ro and ro_at <= now < ro_until:
            print("disk2 read-only", flush=True)
            readonly_disk(c, True)
            ro = True
        if ro and now >= ro_until:
            print("disk2 writable again", flush=True)
            readonly_disk(c, False)
            ro = False
        time.sleep(2)
    stop.set()
    for t in threads:
        t.join()
    if ro:
        readonly_disk(c, False)
    # Read back everything, through a fresh s3d.
    c.stop()
    c.start_s3d()
    s3 = s3_client(c)
    lost = []
    # Keys only ever written in doubt may also hold nothing.
    expect = dict(ledger.acked)
    for key in ledger.doubt:
        expect.setdefault(key, None)
    for key, want in sorted(expect.items()):
        try:
            got = md5(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        except botocore.exceptions.ClientError as e:
            if e.response["ResponseMetadata"]["HTTPStatusCode"] != 404:
                raise
            got = None
        allowed = {want} | ledger.doubt.get(key, set())
        if got not in allowed:
            lost.append((key, want, got))
    c.stop()
    scrub = subprocess.run([os.path.join(bin_dir(), "s3d"), "--data-dir", c.data, "scrub"],
                           capture_output=True, text=True)
    before_gc = du_mib(c.data)
    gc = subprocess.run([os.path.join(bin_dir(), "s3d"), "--data-dir", c.data, "gc"],
                        capture_output=True, text=True)
    print(f"minutes: {args.minutes}, clients: {args.clients} + 1 mount writer")
    print(f"operations: {stats}, acknowledged writes: {ledger.acks}, failed (in doubt): {ledger.failures}")
    print(f"kills: {c.kills}; peak RSS MiB: {c.peak}")
    print(f"keys checked: {len(expect)}, wrong or lost: {len(lost)}")
    for l in lost[:20]:
        print("  LOST", l)
    print("scrub:", scrub.stdout.strip().splitlines()[-1] if scrub.stdout.strip() else scrub.stderr.strip())
    print(f"data dir: {before_gc} MiB before s3d gc (crashed writes' shards included), "
          f"{du_mib(c.data)} MiB after; {gc.stdout.strip()}")
    ok = not lost and scrub.returncode == 0
    print("RESULT:", "PASS" if ok else "FAIL")
    if ok:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print("kept for a look:", work)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
