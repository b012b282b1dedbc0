#!/usr/bin/env bash
# Builds Predastore's images without any registry: s3d and mountd linked statically against
# musl into an image FROM scratch (predastore/s3d), and Debian's nats-server with the libraries
# it links (predastore/nats) for docker-compose.yml. Prints the images' sizes.
#   scripts/docker-build.sh            (make docker)
# Needs: docker (a running daemon), musl-tools, the Rust target x86_64-unknown-linux-musl,
# nats-server and ca-certificates (Debian packages; .ci/run installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=x86_64-unknown-linux-musl
CARGO=${CARGO:-cargo}
STAGE=target/docker

rustup target list --installed 2>/dev/null | grep -qx "$TARGET" || rustup target add "$TARGET"
# Static, stripped release binaries; ring, LMDB and zstd's C parts built with musl-gcc.
CC_x86_64_unknown_linux_musl=musl-gcc \
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static -C strip=symbols" \
    $CARGO build --release --locked --target "$TARGET" -p s3d -p mountd
for b in s3d mountd; do
    if readelf -d "target/$TARGET/release/$b" | grep -q NEEDED; then
        echo "target/$TARGET/release/$b links shared libraries" >&2
        exit 1
    fi
done

# predastore/s3d
rm -rf "$STAGE/s3d"
mkdir -p "$STAGE/s3d/rootfs/usr/bin" "$STAGE/s3d/rootfs/etc/ssl/certs" "$STAGE/s3d/rootfs/tmp" "$STAGE/s3d/data"
chmod 1777 "$STAGE/s3d/rootfs/tmp"
chmod 0700 "$STAGE/s3d/data"
install -m 0755 "target/$TARGET/release/s3d" "target/$TARGET/release/mountd" "$STAGE/s3d/rootfs/usr/bin/"
cp /etc/ssl/certs/ca-certificates.crt "$STAGE/s3d/rootfs/etc/ssl/certs/"
printf 'root:x:0:0:root:/:/nonexistent\npredastore:x:10001:10001:Predastore:/data:/nonexistent\n' > "$STAGE/s3d/rootfs/etc/passwd"
printf 'root:x:0:\npredastore:x:10001:\n' > "$STAGE/s3d/rootfs/etc/group"
docker build -q -t predastore/s3d:latest -f docker/Dockerfile.s3d "$STAGE/s3d" >/dev/null

# predastore/nats: the binary and what ldd says it loads.
rm -rf "$STAGE/nats"
mkdir -p "$STAGE/nats/rootfs/usr/sbin" "$STAGE/nats/rootfs/etc" "$STAGE/nats/jetstream"
NATS=$(command -v nats-server)
install -m 0755 "$NATS" "$STAGE/nats/rootfs/usr/sbin/nats-server"
for lib in $(ldd "$NATS" | grep -o '/[^ ]*'); do
    mkdir -p "$STAGE/nats/rootfs$(dirname "$lib")"
    cp -L "$lib" "$STAGE/nats/rootfs$lib"
done
printf 'nats:x:10002:10002:NATS:/jetstream:/nonexistent\n' > "$STAGE/nats/rootfs/etc/passwd"
printf 'nats:x:10002:\n' > "$STAGE/nats/rootfs/etc/group"
docker build -q -t predastore/nats:latest -f docker/Dockerfile.nats "$STAGE/nats" >/dev/null

for image in predastore/s3d:latest predastore/nats:latest; do
    size=$(docker image inspect -f '{{.Size}}' "$image")
    echo "$image: $((size / 1024 / 1024)) MiB ($size bytes)"
done
