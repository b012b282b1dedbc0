"""What the boto3 suites share: the client for the server a Rust test started (S3_ENDPOINT,
S3_CA, AWS keys in the environment), and the checks' bookkeeping: each check prints one line,
and finish() prints 'N passed, N failed' and exits non-zero on a failure."""
import os
import sys
import traceback

import boto3
import botocore
from botocore.config import Config

ENDPOINT = os.environ["S3_ENDPOINT"]
CA = os.environ["S3_CA"]
s3 = boto3.client(
    "s3",
    endpoint_url=ENDPOINT,
    region_name="us-east-1",
    verify=CA,
    config=Config(retries={"max_attempts": 1, "mode": "standard"}),
)
results = []


def check(fn):
    try:
        fn()
        results.append((fn.__name__, None))
        print("ok   ", fn.__name__)
    except Exception:  # noqa: BLE001 - report every failure and go on
        results.append((fn.__name__, traceback.format_exc()))
        print("FAIL ", fn.__name__)
        traceback.print_exc()
    return fn


def error_code(fn):
    try:
        fn()
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError("expected an error")


def finish():
    failed = [n for n, e in results if e]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)
