#!/usr/bin/env bash
# make docker_test: builds the images, starts docker-compose.yml under a project name of its
# own on a free loopback port, runs the aws cli against it, restarts it, runs mountd in a
# container with its mount propagated to this host, and removes everything it made.
# Needs root (the bind mount's propagation), Docker Engine (started here when none runs),
# docker-compose, the aws cli and curl.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "docker_test: $*"; }
fail() { echo "docker_test: FAILED: $*" >&2; exit 1; }

started_dockerd=
if ! docker info >/dev/null 2>&1; then
    say "starting dockerd"
    mkdir -p target
    dockerd >target/dockerd.log 2>&1 &
    started_dockerd=$!
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
    docker info >/dev/null 2>&1 || fail "dockerd did not start (target/dockerd.log)"
fi

scripts/docker-build.sh

project="predastore-test-$$"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
work=$(mktemp -d)
mnt="$work/mnt"
mount_ctr="$project-mountd"
mount_vol="$project-mount-data"
compose() { PREDASTORE_HOST_PORT=$port docker-compose -p "$project" -f docker-compose.yml "$@"; }
cleanup() {
    set +e
    docker rm -f "$mount_ctr" >/dev/null 2>&1
    if mountpoint -q "$mnt/bucket-view" 2>/dev/null; then umount -l "$mnt/bucket-view"; fi
    if mountpoint -q "$mnt" 2>/dev/null; then umount -l "$mnt"; fi
    docker volume rm -f "$mount_vol" >/dev/null 2>&1
    compose down -v --remove-orphans >/dev/null 2>&1
    rm -rf "$work"
    if [ -n "$started_dockerd" ]; then kill "$started_dockerd"; wait "$started_dockerd" 2>/dev/null; fi
}
trap cleanup EXIT

compose up -d
s3d_ctr=$(compose ps -q s3d)
nats_ctr=$(compose ps -q nats)
health() { docker inspect -f '{{.State.Health.Status}}' "$s3d_ctr"; }
for _ in $(seq 1 60); do [ "$(health)" = healthy ] && break; sleep 1; done
[ "$(health)" = healthy ] || { compose logs; fail "s3d is $(health), not healthy"; }
say "s3d healthy (its HEALTHCHECK runs s3d health inside the image)"

logs=$(compose logs --no-color s3d)
ak=$(sed -n 's/.*access key: \([A-Z0-9]*\).*/\1/p' <<<"$logs" | head -1)
sk=$(sed -n 's/.*secret key: \([^ ]*\).*/\1/p' <<<"$logs" | head -1)
[ -n "$ak" ] && [ -n "$sk" ] || fail "no generated keys in the log: $logs"
docker cp "$s3d_ctr:/data/tls/cert.pem" "$work/ca.pem"

export AWS_ACCESS_KEY_ID=$ak AWS_SECRET_ACCESS_KEY=$sk AWS_CA_BUNDLE=$work/ca.pem
export AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
endpoint="https://127.0.0.1:$port"
aws_() { aws --endpoint-url "$endpoint" "$@"; }

head -c 20000000 /dev/urandom >"$work/big.bin"
echo "hello from the host" >"$work/small.txt"
aws_ s3 mb s3://docker-test >/dev/null
aws_ s3 cp "$work/big.bin" s3://docker-test/big.bin >/dev/null
aws_ s3 cp "$work/small.txt" s3://docker-test/dir/small.txt >/dev/null
listing=$(aws_ s3 ls --recursive s3://docker-test)
grep -q "dir/small.txt" <<<"$listing" || fail "listing: $listing"
aws_ s3 cp s3://docker-test/big.bin "$work/big.back" >/dev/null
cmp "$work/big.bin" "$work/big.back" || fail "20 MB object differs"
url=$(aws_ s3 presign s3://docker-test/dir/small.txt)
curl -sS --fail --cacert "$work/ca.pem" "$url" | cmp - "$work/small.txt" || fail "presigned GET"
headers=$(curl -sS -o /dev/null -D - --cacert "$work/ca.pem" "$endpoint/-/health")
grep -qi '^server: Predastore' <<<"$headers" || fail "Server header: $headers"
grep -qi '^strict-transport-security:' <<<"$headers" || fail "HSTS header: $headers"
say "aws cli: bucket, 20 MB up and down, listing, presigned URL, headers"
ready() { curl -sS --cacert "$work/ca.pem" "$endpoint/-/ready"; }
for _ in $(seq 1 40); do
    grep -q "nats: connected" <<<"$(ready)" && break
    sleep 0.5
done
grep -q "nats: connected" <<<"$(ready)" ||
    fail "s3d is not connected to the compose's NATS: $(compose logs --no-color s3d | tail -5)"
say "s3d connected to NATS on the compose network"

# Not root inside, and nothing but the two binaries in the image.
pid=$(docker inspect -f '{{.State.Pid}}' "$s3d_ctr")
uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
[ "$uid" = 10001 ] || fail "s3d runs as uid '$uid', not 10001"
nats_log=$(docker logs "$nats_ctr" 2>&1)
grep -q "Starting JetStream" <<<"$nats_log" || fail "NATS without JetStream: $(tail -5 <<<"$nats_log")"
say "s3d runs as uid 10001; NATS runs with JetStream"

# Data and keys survive a restart of the container (the volume).
compose restart s3d >/dev/null 2>&1
for _ in $(seq 1 60); do [ "$(health)" = healthy ] && break; sleep 1; done
[ "$(health)" = healthy ] || fail "not healthy after a restart"
aws_ s3 cp s3://docker-test/dir/small.txt - | cmp - "$work/small.txt" || fail "data after restart"
aws_ s3 rm --recursive s3://docker-test >/dev/null
aws_ s3 rb s3://docker-test >/dev/null
say "restart keeps data and keys"

# mountd in a container (root, /dev/fuse, SYS_ADMIN) on a volume of its own, its mount
# propagated to this host through a shared bind mount.
mkdir -p "$mnt"
mount --bind "$mnt" "$mnt"
mount --make-rshared "$mnt"
mkdir -p "$mnt/bucket-view"
docker volume create "$mount_vol" >/dev/null
docker run -d --name "$mount_ctr" --user 0:0 \
    --device /dev/fuse --cap-add SYS_ADMIN --security-opt apparmor=unconfined \
    -v "$mount_vol:/data" -v "$mnt:/mnt:rshared" \
    --entrypoint /usr/bin/mountd predastore/s3d:latest /mnt/bucket-view >/dev/null
for _ in $(seq 1 60); do mountpoint -q "$mnt/bucket-view" && break; sleep 0.5; done
mountpoint -q "$mnt/bucket-view" || fail "the container's mount is not visible here: $(docker logs "$mount_ctr" 2>&1 | tail -5)"
mkdir "$mnt/bucket-view/photos"
cp "$work/big.bin" "$mnt/bucket-view/photos/big.bin"
cmp "$work/big.bin" "$mnt/bucket-view/photos/big.bin" || fail "file through the propagated mount"
[ -d "$mnt/bucket-view/photos" ] || fail "bucket directory"
docker stop "$mount_ctr" >/dev/null
for _ in $(seq 1 40); do mountpoint -q "$mnt/bucket-view" || break; sleep 0.5; done
mountpoint -q "$mnt/bucket-view" && fail "mountd did not unmount on stop"
docker start "$mount_ctr" >/dev/null
for _ in $(seq 1 60); do mountpoint -q "$mnt/bucket-view" && break; sleep 0.5; done
cmp "$work/big.bin" "$mnt/bucket-view/photos/big.bin" || fail "file after mountd's restart"
say "mountd in a container: mount propagated to the host, data kept across a restart"

docker image inspect -f '{{.Size}}' predastore/s3d:latest |
    awk '{printf "docker_test: image predastore/s3d:latest is %.1f MiB\n", $1 / 1048576}'
say "passed"
