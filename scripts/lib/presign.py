"""Presigned SigV4 URLs for the benchmark scripts' wrk runs (scripts/s3d-small-ops.sh,
scripts/cluster-bench.sh), with boto3, against an s3d on 127.0.0.1.

    presign.py setup|GET|PUT|MANY PORT CA ACCESS_KEY SECRET_KEY

setup: makes bucket `small` with the 4 KiB object `k4`; GET / PUT: one URL for `k4` / `p4`;
MANY: 20,000 PUT URLs for distinct keys `d/N`, one path-and-query per line.
"""
import sys
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

m, port, ca, ak, sk = sys.argv[1:6]
c = boto3.client("s3", endpoint_url=f"https://127.0.0.1:{port}", region_name="us-east-1",
                 aws_access_key_id=ak, aws_secret_access_key=sk, verify=ca,
                 config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
if m == "setup":
    c.create_bucket(Bucket="small")
    c.put_object(Bucket="small", Key="k4", Body=b"y" * 4096)
elif m == "MANY":
    for i in range(20000):
        u = urlsplit(c.generate_presigned_url(
            "put_object", Params={"Bucket": "small", "Key": f"d/{i}"}, ExpiresIn=3600))
        print(u.path + "?" + u.query)
else:
    op = "get_object" if m == "GET" else "put_object"
    print(c.generate_presigned_url(
        op, Params={"Bucket": "small", "Key": "k4" if m == "GET" else "p4"}, ExpiresIn=3600))
