#!/usr/bin/env bash
# 4 KiB GET and PUT request rates through s3d over TLS (wrk on presigned SigV4 URLs), for one
# or more s3d binaries side by side in the same run (e.g. before and after a change), and in
# each round the two limits they are measured against: nginx serving a 4 KiB file over TLS to
# the same wrk load, and the disk's single-writer 4 KiB write+fsync rate (fio, psync, on the
# filesystem of the data directories).
#   scripts/s3d-small-ops.sh [ROUNDS] BIN [BIN...]
# Needs wrk, nginx and fio (Debian packages) and boto3. Prints one line per binary and round,
# then medians and the ratios.
set -euo pipefail
ROUNDS=${1:-3}
shift
BINS=("$@")
[ ${#BINS[@]} -gt 0 ] || BINS=("$(cd "$(dirname "$0")/.." && pwd)/target/release/s3d")
AK=PSLOADACCESSKEY00001
SK=load-secret-key-0123456789abcdefghijklmn
WORK=$(mktemp -d -p "${TMPDIR:-/tmp}")
trap 'kill $PID 2>/dev/null || true; [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null; rm -rf "$WORK"' EXIT
PID=
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# nginx over TLS (a P-256 self-signed certificate, like s3d's), one worker per core, a 4 KiB file.
NPORT=$(free_port)
mkdir -p "$WORK/nginx/www" "$WORK/nginx/tmp"
head -c 4096 /dev/zero | tr '\0' y > "$WORK/nginx/www/k4"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$WORK/nginx/key.pem" -out "$WORK/nginx/cert.pem" 2>/dev/null
cat > "$WORK/nginx/nginx.conf" <<EOF
daemon on; worker_processes auto; pid $WORK/nginx.pid; error_log $WORK/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off; sendfile on;
  client_body_temp_path $WORK/nginx/tmp; proxy_temp_path $WORK/nginx/tmp;
  fastcgi_temp_path $WORK/nginx/tmp; uwsgi_temp_path $WORK/nginx/tmp; scgi_temp_path $WORK/nginx/tmp;
  server {
    listen 127.0.0.1:$NPORT ssl;
    ssl_certificate $WORK/nginx/cert.pem; ssl_certificate_key $WORK/nginx/key.pem;
    root $WORK/nginx/www;
  }
}
EOF
nginx -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log"
for _ in $(seq 50); do [ -f "$WORK/nginx.pid" ] && break; sleep 0.1; done
cat > "$WORK/put.lua" <<'EOF'
wrk.method = "PUT"
wrk.body = string.rep("x", 4096)
EOF

LIB=$(cd "$(dirname "$0")" && pwd)/lib
presign() { python3 "$LIB/presign.py" "$1" "$2" "$3" "$AK" "$SK"; } # METHOD PORT CA

rps() { awk '/Requests\/sec/ {print $2}'; }
fsync_rate() { # one writer, each 4 KiB write followed by fsync, 10 s, on $WORK's filesystem
    fio --name=fsync4k --directory="$WORK" --rw=write --bs=4k --size=64M --fsync=1 \
        --ioengine=psync --numjobs=1 --runtime=10 --time_based --output-format=json 2>/dev/null |
        python3 -c 'import json,sys; print("%.0f" % json.load(sys.stdin)["jobs"][0]["write"]["iops"])'
    rm -f "$WORK"/fsync4k.*
}

declare -A GETS PUTS
NGINX= FSYNC=
for r in $(seq "$ROUNDS"); do
    ng=$(SSL_CERT_FILE="$WORK/nginx/cert.pem" wrk -t2 -c32 -d10s "https://127.0.0.1:$NPORT/k4" | rps)
    fs=$(fsync_rate)
    echo "round $r: nginx_get_4KiB_rps=$ng disk_4KiB_write_fsync_per_s=$fs"
    NGINX+="$ng " FSYNC+="$fs "
    for b in "${BINS[@]}"; do
        PORT=$(free_port)
        D="$WORK/d$r-$(basename "$b")"
        PREDASTORE_ACCESS_KEY=$AK PREDASTORE_SECRET_KEY=$SK PREDASTORE_LOG=warn \
            "$b" --host 127.0.0.1 --port "$PORT" --data-dir "$D" > /dev/null 2>&1 &
        PID=$!
        for _ in $(seq 100); do curl -s -o /dev/null --cacert "$D/tls/cert.pem" "https://127.0.0.1:$PORT/-/health" && break; sleep 0.1; done
        presign setup "$PORT" "$D/tls/cert.pem"
        get=$(SSL_CERT_FILE="$D/tls/cert.pem" wrk -t2 -c32 -d10s "$(presign GET "$PORT" "$D/tls/cert.pem")" | rps)
        put=$(SSL_CERT_FILE="$D/tls/cert.pem" wrk -t2 -c32 -d10s -s "$WORK/put.lua" "$(presign PUT "$PORT" "$D/tls/cert.pem")" | rps)
        kill "$PID"; wait "$PID" 2>/dev/null || true
        echo "round $r $b: get_4KiB_rps=$get put_4KiB_rps=$put"
        GETS[$b]+="$get "
        PUTS[$b]+="$put "
    done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ng=$(echo "$NGINX" | median) fs=$(echo "$FSYNC" | median)
echo "median: nginx_get_4KiB_rps=$ng disk_4KiB_write_fsync_per_s=$fs"
for b in "${BINS[@]}"; do
    g=$(echo "${GETS[$b]}" | median) p=$(echo "${PUTS[$b]}" | median)
    echo "median $b: get_4KiB_rps=$g put_4KiB_rps=$p" \
        "get/nginx=$(python3 -c "print('%.2f' % ($g / $ng))") put/fsync=$(python3 -c "print('%.2f' % ($p / $fs))")"
done
