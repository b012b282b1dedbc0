#!/usr/bin/env python3
"""A Predastore NATS client in Python (nats-py), as docs/nats.md describes the wire format.

    PREDASTORE_ACCESS_KEY=… PREDASTORE_SECRET_KEY=… \\
    python3 nats_client.py nats://127.0.0.1:4222 s3.putobject Bucket=photos Key=a.jpg < a.jpg
    python3 nats_client.py nats://127.0.0.1:4222 s3.getobject Bucket=photos Key=a.jpg > a.jpg
    python3 nats_client.py nats://127.0.0.1:4222 s3.listobjects Bucket=photos Prefix=2026/

The reply's body goes to stdout, its headers to stderr; the exit status is 0 for Status 200.
"""
import asyncio
import datetime
import hashlib
import hmac
import os
import secrets
import sys

import nats

ALGORITHM = "PREDASTORE-NATS-HMAC-SHA256"


def sign(access_key, secret, subject, headers, body, now=None):
    """Adds the five Predastore-* headers to `headers` (a dict of str -> str)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    date = now.strftime("%Y%m%dT%H%M%SZ")
    headers["Predastore-Access-Key"] = access_key
    headers["Predastore-Date"] = date
    headers["Predastore-Nonce"] = secrets.token_hex(16)
    headers["Predastore-Content-SHA256"] = hashlib.sha256(body).hexdigest()
    lines = sorted((name.lower(), value.strip()) for name, value in headers.items())
    string_to_sign = "\n".join(
        [ALGORITHM, date, headers["Predastore-Nonce"], subject]
        + [f"{n}:{v}" for n, v in lines]
        + [headers["Predastore-Content-SHA256"]]
    )
    k_date = hmac.new(("PREDASTORE" + secret).encode(), date[:8].encode(), hashlib.sha256).digest()
    k_signing = hmac.new(k_date, b"predastore_nats", hashlib.sha256).digest()
    headers["Predastore-Signature"] = hmac.new(
        k_signing, string_to_sign.encode(), hashlib.sha256
    ).hexdigest()
    return headers


async def request(url, subject, params, body, access_key, secret, timeout=10):
    nc = await nats.connect(url)
    try:
        headers = sign(access_key, secret, subject, dict(params), body)
        msg = await nc.request(subject, body, timeout=timeout, headers=headers)
        return msg.headers or {}, msg.data
    finally:
        await nc.close()


def main():
    url, subject, *args = sys.argv[1:]
    params = dict(a.split("=", 1) for a in args)
    body = b"" if sys.stdin.isatty() else sys.stdin.buffer.read()
    headers, data = asyncio.run(
        request(url, subject, params, body,
                os.environ["PREDASTORE_ACCESS_KEY"], os.environ["PREDASTORE_SECRET_KEY"])
    )
    for name, value in sorted(headers.items()):
        print(f"{name}: {value}", file=sys.stderr)
    sys.stdout.buffer.write(data)
    sys.exit(0 if headers.get("Status") == "200" else 1)


if __name__ == "__main__":
    main()
