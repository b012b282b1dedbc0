"""Access control through boto3 with several keys (owner, device-7, reader, other: their ids
and secrets are the arguments), anonymous curl and presigned URLs. Every allowed action works;
every other is 403 (or S3's own code) and changes nothing stored."""
import json
import subprocess
import sys

import boto3
from botocore.config import Config

from s3suite import CA, ENDPOINT, check, error_code, finish, s3 as admin

owner_ak, owner_sk, dev_ak, dev_sk, reader_ak, reader_sk, other_ak, other_sk = sys.argv[1:9]
device_ak_ = dev_ak


def client(ak, sk):
    return boto3.client(
        "s3",
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        verify=CA,
        aws_access_key_id=ak,
        aws_secret_access_key=sk,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


owner = client(owner_ak, owner_sk)
device = client(dev_ak, dev_sk)
reader = client(reader_ak, reader_sk)
other = client(other_ak, other_sk)
B = "fleet"


def denied(fn):
    code, status = error_code(fn)
    # A HEAD answer has no body: its code is the status.
    assert (code, status) in (("AccessDenied", 403), ("403", 403)), (code, status)


def keys_in(bucket=B, prefix=""):
    r = admin.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for o in r.get("Contents", []))


def curl(url, method="GET", data=None):
    args = ["curl", "-sS", "-o", "/dev/stderr", "-w", "%{http_code}", "--cacert", CA]
    args += ["-I"] if method == "HEAD" else ["-X", method]
    if data is not None:
        # No Content-Type: a presigned URL's signature does not cover one.
        args += ["--data-binary", data, "-H", "Content-Type:"]
    r = subprocess.run(args + [url], capture_output=True, text=True, check=True)
    return int(r.stdout), r.stderr


def set_policy(statements):
    owner.put_bucket_policy(
        Bucket=B, Policy=json.dumps({"Version": "2012-10-17", "Statement": statements})
    )


@check
def owner_does_everything_on_its_bucket():
    owner.put_object(Bucket=B, Key="private/report.txt", Body=b"secret numbers")
    owner.put_object(Bucket=B, Key="public/firmware.bin", Body=b"\x7fELF firmware")
    assert owner.get_object(Bucket=B, Key="private/report.txt")["Body"].read() == b"secret numbers"
    owner.get_bucket_versioning(Bucket=B)
    owner.put_bucket_tagging(Bucket=B, Tagging={"TagSet": [{"Key": "site", "Value": "a"}]})
    assert [b["Name"] for b in owner.list_buckets()["Buckets"]] == [B]
    # What belongs to a key's bucket is the key's, in every listing that names an owner.
    assert owner.list_buckets()["Owner"]["ID"] == owner_ak
    r = owner.list_objects_v2(Bucket=B, FetchOwner=True)
    assert {o["Owner"]["ID"] for o in r["Contents"]} == {owner_ak}, r
    up = owner.create_multipart_upload(Bucket=B, Key="private/mpu")
    parts = owner.list_parts(Bucket=B, Key="private/mpu", UploadId=up["UploadId"])
    assert parts["Owner"]["ID"] == owner_ak and parts["Initiator"]["ID"] == owner_ak, parts
    uploads = owner.list_multipart_uploads(Bucket=B)["Uploads"]
    assert [u["Owner"]["ID"] for u in uploads] == [owner_ak], uploads
    owner.abort_multipart_upload(Bucket=B, Key="private/mpu", UploadId=up["UploadId"])


@check
def another_key_cannot_take_the_name():
    assert error_code(lambda: other.create_bucket(Bucket=B)) == ("BucketAlreadyExists", 409)
    assert error_code(lambda: owner.create_bucket(Bucket=B)) == ("BucketAlreadyOwnedByYou", 409)
    other.create_bucket(Bucket="other-bucket")
    assert [b["Name"] for b in other.list_buckets()["Buckets"]] == ["other-bucket"]
    # The owner of fleet has no say over other-bucket, nor the device key.
    denied(lambda: owner.put_object(Bucket="other-bucket", Key="x", Body=b"x"))
    denied(lambda: owner.list_objects_v2(Bucket="other-bucket"))
    denied(lambda: device.delete_bucket(Bucket="other-bucket"))
    # Administrators see every bucket.
    names = [b["Name"] for b in admin.list_buckets()["Buckets"]]
    assert "other-bucket" in names and B in names


@check
def keys_without_the_right_cannot_create_buckets():
    denied(lambda: device.create_bucket(Bucket="device-bucket"))
    denied(lambda: reader.create_bucket(Bucket="reader-bucket"))
    names = [b["Name"] for b in admin.list_buckets()["Buckets"]]
    assert "device-bucket" not in names and "reader-bucket" not in names


@check
def device_key_writes_under_its_prefix_only():
    device.put_object(Bucket=B, Key="device-7/0001.jpg", Body=b"frame 1")
    up = device.create_multipart_upload(Bucket=B, Key="device-7/clip.mp4")
    part = device.upload_part(
        Bucket=B, Key="device-7/clip.mp4", UploadId=up["UploadId"], PartNumber=1, Body=b"x" * 1000
    )
    device.complete_multipart_upload(
        Bucket=B,
        Key="device-7/clip.mp4",
        UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    denied(lambda: device.put_object(Bucket=B, Key="device-8/0001.jpg", Body=b"intruder"))
    denied(lambda: device.put_object(Bucket=B, Key="private/report.txt", Body=b"overwrite"))
    denied(lambda: device.create_multipart_upload(Bucket=B, Key="device-8/x"))
    assert keys_in(prefix="device-8/") == []
    assert admin.get_object(Bucket=B, Key="private/report.txt")["Body"].read() == b"secret numbers"
    assert keys_in(prefix="device-7/") == ["device-7/0001.jpg", "device-7/clip.mp4"]


@check
def device_key_cannot_read_list_or_copy_out():
    denied(lambda: device.get_object(Bucket=B, Key="device-7/0001.jpg"))
    denied(lambda: device.head_object(Bucket=B, Key="device-7/0001.jpg"))
    denied(lambda: device.get_object(Bucket=B, Key="private/report.txt"))
    denied(lambda: device.list_objects_v2(Bucket=B, Prefix="device-7/"))
    denied(lambda: device.list_objects_v2(Bucket=B))
    # A copy reads its source: the device key may not read, so it may not copy either.
    denied(
        lambda: device.copy_object(
            Bucket=B, Key="device-7/stolen.txt", CopySource={"Bucket": B, "Key": "private/report.txt"}
        )
    )
    assert keys_in(prefix="device-7/stolen") == []
    denied(lambda: device.get_bucket_policy(Bucket=B))
    denied(lambda: device.put_bucket_versioning(Bucket=B, VersioningConfiguration={"Status": "Enabled"}))
    assert [b["Name"] for b in device.list_buckets()["Buckets"]] == [B]


@check
def reader_reads_and_lists_but_changes_nothing():
    assert reader.get_object(Bucket=B, Key="private/report.txt")["Body"].read() == b"secret numbers"
    assert reader.head_object(Bucket=B, Key="device-7/0001.jpg")["ContentLength"] == 7
    r = reader.list_objects_v2(Bucket=B)
    assert len(r["Contents"]) == 4
    reader.get_object_tagging(Bucket=B, Key="private/report.txt")
    denied(lambda: reader.put_object(Bucket=B, Key="private/report.txt", Body=b"changed"))
    denied(lambda: reader.delete_object(Bucket=B, Key="private/report.txt"))
    denied(lambda: reader.put_object_tagging(
        Bucket=B, Key="private/report.txt", Tagging={"TagSet": [{"Key": "a", "Value": "b"}]}))
    denied(lambda: reader.put_bucket_tagging(Bucket=B, Tagging={"TagSet": []}))
    denied(lambda: reader.delete_bucket(Bucket=B))
    denied(lambda: reader.put_bucket_policy(Bucket=B, Policy="{}"))
    r = reader.delete_objects(
        Bucket=B, Delete={"Objects": [{"Key": "private/report.txt"}, {"Key": "device-7/0001.jpg"}]}
    )
    assert sorted(e["Code"] for e in r["Errors"]) == ["AccessDenied", "AccessDenied"], r
    assert not r.get("Deleted"), r
    assert len(keys_in()) == 4
    assert admin.get_object(Bucket=B, Key="private/report.txt")["Body"].read() == b"secret numbers"


@check
def presigned_urls_carry_their_signers_permissions():
    get_r = reader.generate_presigned_url("get_object", Params={"Bucket": B, "Key": "private/report.txt"})
    assert curl(get_r) == (200, "secret numbers")
    put_r = reader.generate_presigned_url("put_object", Params={"Bucket": B, "Key": "private/report.txt"})
    assert curl(put_r, "PUT", "overwritten")[0] == 403
    get_d = device.generate_presigned_url("get_object", Params={"Bucket": B, "Key": "private/report.txt"})
    assert curl(get_d)[0] == 403
    put_d = device.generate_presigned_url("put_object", Params={"Bucket": B, "Key": "device-7/0002.jpg"})
    r = curl(put_d, "PUT", "frame 2")
    assert r[0] == 200, r
    # A presigned URL for one object cannot be turned into a listing or another object.
    assert curl(get_r.replace("private/report.txt", "public/firmware.bin"))[0] == 403
    assert admin.get_object(Bucket=B, Key="private/report.txt")["Body"].read() == b"secret numbers"


def post_form(url, fields, body=b"form data", filename="f.bin"):
    args = ["curl", "-sS", "-o", "/dev/stderr", "-w", "%{http_code}", "--cacert", CA]
    for k, v in fields.items():
        args += ["-F", f"{k}={v}"]
    import tempfile
    with tempfile.NamedTemporaryFile() as f:
        f.write(body)
        f.flush()
        args += ["-F", f"file=@{f.name};filename={filename}"]
        r = subprocess.run(args + [url], capture_output=True, text=True, check=True)
    return int(r.stdout), r.stderr


@check
def browser_form_uploads_carry_their_signers_permissions():
    post = device.generate_presigned_post(B, "device-7/form.jpg", ExpiresIn=600)
    assert post_form(post["url"], post["fields"])[0] == 204
    assert admin.get_object(Bucket=B, Key="device-7/form.jpg")["Body"].read() == b"form data"
    # The same key's signature on another key's form: the policy's conditions refuse it (the S3
    # layer says which condition; AWS says 403 AccessDenied).
    fields = dict(post["fields"], key="device-8/form.jpg")
    r = post_form(post["url"], fields)
    assert r[0] == 400 and "InvalidPolicyDocument" in r[1] and "device-7/form.jpg" in r[1], r
    # A form the device key signs for a key outside its prefix: its permissions refuse it.
    post = device.generate_presigned_post(B, "private/form.jpg", ExpiresIn=600)
    assert post_form(post["url"], post["fields"])[0] == 403
    # An expired form.
    post = device.generate_presigned_post(B, "device-7/late.jpg", ExpiresIn=-60)
    r = post_form(post["url"], post["fields"])
    assert r[0] in (400, 403) and "xpired" in r[1], r
    # Conditions: a size range the body breaks.
    post = device.generate_presigned_post(B, "device-7/big.jpg", ExpiresIn=600,
                                          Conditions=[["content-length-range", 1, 4]])
    status, body = post_form(post["url"], post["fields"])
    assert status == 400 and "EntityTooLarge" in body, (status, body)
    # No signature at all: anonymous, refused without a policy.
    assert post_form(f"{ENDPOINT}/{B}", {"key": "device-7/anon.jpg"})[0] == 403
    assert sorted(k for k in keys_in(prefix="device-7/") if "form" in k or "big" in k or "anon" in k or "late" in k) == ["device-7/form.jpg"]
    assert keys_in(prefix="device-8/") == [] and "private/form.jpg" not in keys_in()


@check
def anonymous_requests_are_refused_without_a_policy():
    assert curl(f"{ENDPOINT}/{B}/public/firmware.bin")[0] == 403
    assert curl(f"{ENDPOINT}/{B}/private/report.txt")[0] == 403
    assert curl(f"{ENDPOINT}/{B}?list-type=2")[0] == 403
    assert curl(f"{ENDPOINT}/")[0] == 403
    assert curl(f"{ENDPOINT}/{B}/public/new.bin", "PUT", "anon")[0] == 403
    assert "public/new.bin" not in keys_in()


@check
def public_read_policy_opens_a_prefix_to_anyone():
    set_policy([
        {"Sid": "PublicFirmware", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{B}/public/*"},
        {"Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket",
         "Resource": f"arn:aws:s3:::{B}", "Condition": {"StringLike": {"s3:prefix": "public/*"}}},
    ])
    assert owner.get_bucket_policy_status(Bucket=B)["PolicyStatus"]["IsPublic"] is True
    r = curl(f"{ENDPOINT}/{B}/public/firmware.bin")
    assert r == (200, "\x7fELF firmware"), r
    assert curl(f"{ENDPOINT}/{B}/public/firmware.bin", "HEAD")[0] == 200
    status, body = curl(f"{ENDPOINT}/{B}?list-type=2&prefix=public/")
    assert status == 200 and "public/firmware.bin" in body, body
    assert curl(f"{ENDPOINT}/{B}?list-type=2")[0] == 403
    assert curl(f"{ENDPOINT}/{B}/private/report.txt")[0] == 403
    assert curl(f"{ENDPOINT}/{B}/public/firmware.bin", "PUT", "anon")[0] == 403
    assert curl(f"{ENDPOINT}/{B}/public/firmware.bin", "DELETE")[0] == 403
    assert admin.get_object(Bucket=B, Key="public/firmware.bin")["Body"].read() == b"\x7fELF firmware"


@check
def policy_grants_a_key_and_an_explicit_deny_beats_a_grant():
    set_policy([
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::000000000000:user/other"},
         "Action": ["s3:GetObject"], "Resource": f"arn:aws:s3:::{B}/public/*",
         "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}},
        {"Effect": "Allow", "Principal": {"AWS": other_ak},
         "Action": ["s3:GetObject"], "Resource": f"arn:aws:s3:::{B}/private/*",
         "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}},
        {"Effect": "Deny", "Principal": {"AWS": dev_ak}, "Action": "s3:PutObject",
         "Resource": f"arn:aws:s3:::{B}/device-7/locked/*"},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": [f"arn:aws:s3:::{B}", f"arn:aws:s3:::{B}/*"],
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    ])
    assert owner.get_bucket_policy_status(Bucket=B)["PolicyStatus"]["IsPublic"] is False
    assert other.get_object(Bucket=B, Key="public/firmware.bin")["Body"].read() == b"\x7fELF firmware"
    denied(lambda: other.get_object(Bucket=B, Key="private/report.txt"))
    device.put_object(Bucket=B, Key="device-7/open/1.jpg", Body=b"ok")
    denied(lambda: device.put_object(Bucket=B, Key="device-7/locked/1.jpg", Body=b"no"))
    assert keys_in(prefix="device-7/locked/") == []
    # The anonymous grant went with the old policy.
    assert curl(f"{ENDPOINT}/{B}/public/firmware.bin")[0] == 403


@check
def policy_object_tag_condition():
    owner.put_object(Bucket=B, Key="media/a.jpg", Body=b"a", Tagging="share=yes")
    owner.put_object(Bucket=B, Key="media/b.jpg", Body=b"b", Tagging="share=no")
    set_policy([
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{B}/media/*",
         "Condition": {"StringEquals": {"s3:ExistingObjectTag/share": "yes"}}},
    ])
    assert curl(f"{ENDPOINT}/{B}/media/a.jpg") == (200, "a")
    assert curl(f"{ENDPOINT}/{B}/media/b.jpg")[0] == 403
    assert curl(f"{ENDPOINT}/{B}/media/none.jpg")[0] == 403


@check
def a_refused_read_of_a_missing_object_is_404_for_who_may_list_it():
    set_policy([{"Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket",
                 "Resource": f"arn:aws:s3:::{B}", "Condition": {"StringLike": {"s3:prefix": "listed/*"}}}])
    assert curl(f"{ENDPOINT}/{B}/listed/missing", "HEAD")[0] == 404
    assert curl(f"{ENDPOINT}/{B}/private/missing", "HEAD")[0] == 403
    # An object that exists stays 403: listing does not grant reading.
    owner.put_object(Bucket=B, Key="listed/there", Body=b"x")
    assert curl(f"{ENDPOINT}/{B}/listed/there")[0] == 403
    owner.delete_object(Bucket=B, Key="listed/there")


@check
def malformed_policies_are_refused_and_change_nothing():
    before = owner.get_bucket_policy(Bucket=B)["Policy"]
    cases = [
        "not json",
        json.dumps({"Statement": []}),
        json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:Fly",
                                   "Resource": f"arn:aws:s3:::{B}/*"}]}),
        json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                   "Resource": "arn:aws:s3:::other-bucket/*"}]}),
        json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:user/nobody"},
                                   "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{B}/*"}]}),
        json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                   "Resource": f"arn:aws:s3:::{B}/*",
                                   "Condition": {"StringEquals": {"aws:SourceArn": "x"}}}]}),
    ]
    for p in cases:
        try:
            owner.put_bucket_policy(Bucket=B, Policy=p)
        except Exception as e:  # noqa: BLE001
            err = e.response["Error"]
            assert err["Code"] == "MalformedPolicy" and err["Message"], (p, err)
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        else:
            raise AssertionError(f"accepted {p}")
    assert owner.get_bucket_policy(Bucket=B)["Policy"] == before


@check
def deleting_the_policy():
    owner.delete_bucket_policy(Bucket=B)
    assert error_code(lambda: owner.get_bucket_policy(Bucket=B)) == ("NoSuchBucketPolicy", 404)
    assert error_code(lambda: owner.get_bucket_policy_status(Bucket=B)) == ("NoSuchBucketPolicy", 404)
    owner.delete_bucket_policy(Bucket=B)
    assert curl(f"{ENDPOINT}/{B}/media/a.jpg")[0] == 403


@check
def an_administrator_can_always_remove_a_policy_that_locks_everyone_out():
    set_policy([{"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                 "Resource": [f"arn:aws:s3:::{B}", f"arn:aws:s3:::{B}/*"]}])
    denied(lambda: owner.get_object(Bucket=B, Key="private/report.txt"))
    denied(lambda: owner.delete_bucket_policy(Bucket=B))
    denied(lambda: admin.get_object(Bucket=B, Key="private/report.txt"))
    admin.delete_bucket_policy(Bucket=B)
    assert owner.get_object(Bucket=B, Key="private/report.txt")["Body"].read() == b"secret numbers"


def preflight(origin, method, headers=None, key="public/firmware.bin"):
    args = ["curl", "-sS", "-o", "/dev/null", "-D", "-", "--cacert", CA, "-X", "OPTIONS"]
    if origin:
        args += ["-H", f"Origin: {origin}"]
    if method:
        args += ["-H", f"Access-Control-Request-Method: {method}"]
    if headers:
        args += ["-H", f"Access-Control-Request-Headers: {headers}"]
    out = subprocess.run(args + [f"{ENDPOINT}/{B}/{key}"], capture_output=True, text=True, check=True).stdout
    lines = out.replace("\r", "").split("\n")
    status = int(lines[0].split()[1])
    h = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            h[k.strip().lower()] = v.strip()
    return status, h


@check
def cors_rules_answer_browsers():
    assert preflight("https://app.example.com", "PUT")[0] == 403, "no rules: no CORS"
    owner.put_bucket_cors(Bucket=B, CORSConfiguration={"CORSRules": [
        {"AllowedOrigins": ["https://app.example.com"], "AllowedMethods": ["PUT", "POST"],
         "AllowedHeaders": ["content-type", "x-amz-*"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 600},
        {"AllowedOrigins": ["*"], "AllowedMethods": ["GET", "HEAD"]},
    ]})
    rules = owner.get_bucket_cors(Bucket=B)["CORSRules"]
    assert rules[0]["MaxAgeSeconds"] == 600 and rules[1]["AllowedOrigins"] == ["*"], rules
    status, h = preflight("https://app.example.com", "PUT", "Content-Type, X-Amz-Date")
    assert status == 200, (status, h)
    assert h["access-control-allow-origin"] == "https://app.example.com", h
    assert h["access-control-allow-methods"] == "PUT, POST", h
    assert h["access-control-allow-headers"] == "content-type, x-amz-date", h
    assert h["access-control-max-age"] == "600" and h["access-control-expose-headers"] == "ETag", h
    assert preflight("https://evil.example.com", "PUT")[0] == 403
    assert preflight("https://app.example.com", "PUT", "authorization")[0] == 403
    assert preflight("https://app.example.com", "DELETE")[0] == 403
    assert preflight(None, "PUT")[0] == 400
    assert preflight("https://app.example.com", None)[0] == 400
    status, h = preflight("https://anywhere.example", "GET")
    assert status == 200 and h["access-control-allow-origin"] == "*", h
    # The actual request: a browser's upload to a presigned URL gets the headers; a request
    # without Origin gets none.
    url = owner.generate_presigned_url("put_object", Params={"Bucket": B, "Key": "uploads/a.txt"})
    out = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-D", "-", "--cacert", CA, "-X", "PUT", "--data-binary", "hi",
         "-H", "Content-Type:", "-H", "Origin: https://app.example.com", url],
        capture_output=True, text=True, check=True).stdout.lower()
    assert " 200" in out.split("\n")[0] and "access-control-allow-origin: https://app.example.com" in out, out
    assert "access-control-expose-headers: etag" in out, out
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-D", "-", "--cacert", CA,
                          owner.generate_presigned_url("get_object", Params={"Bucket": B, "Key": "uploads/a.txt"})],
                         capture_output=True, text=True, check=True).stdout.lower()
    assert "access-control" not in out, out
    # Rules S3 refuses change nothing.
    code, status = error_code(lambda: owner.put_bucket_cors(Bucket=B, CORSConfiguration={"CORSRules": [
        {"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}]}))
    assert (code, status) == ("InvalidRequest", 400), (code, status)
    assert len(owner.get_bucket_cors(Bucket=B)["CORSRules"]) == 2
    denied(lambda: reader.put_bucket_cors(Bucket=B, CORSConfiguration={"CORSRules": [
        {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]}))
    owner.delete_bucket_cors(Bucket=B)
    assert error_code(lambda: owner.get_bucket_cors(Bucket=B)) == ("NoSuchCORSConfiguration", 404)
    assert preflight("https://anywhere.example", "GET")[0] == 403
    owner.delete_object(Bucket=B, Key="uploads/a.txt")


@check
def canned_acls_open_a_bucket_and_objects():
    owner.create_bucket(Bucket="acl-bucket", ACL="public-read")
    owner.put_object(Bucket="acl-bucket", Key="open.txt", Body=b"open", ACL="public-read")
    owner.put_object(Bucket="acl-bucket", Key="closed.txt", Body=b"closed")
    owner.put_object(Bucket="acl-bucket", Key="signed.txt", Body=b"signed", ACL="authenticated-read")
    status, body = curl(f"{ENDPOINT}/acl-bucket?list-type=2")
    assert status == 200 and "closed.txt" in body, body
    assert curl(f"{ENDPOINT}/acl-bucket/open.txt") == (200, "open")
    assert curl(f"{ENDPOINT}/acl-bucket/closed.txt")[0] == 403
    assert curl(f"{ENDPOINT}/acl-bucket/signed.txt")[0] == 403
    assert device.get_object(Bucket="acl-bucket", Key="signed.txt")["Body"].read() == b"signed"
    denied(lambda: device.get_object(Bucket="acl-bucket", Key="closed.txt"))
    assert curl(f"{ENDPOINT}/acl-bucket/new.txt", "PUT", "anon")[0] == 403
    acl = owner.get_bucket_acl(Bucket="acl-bucket")
    assert acl["Owner"]["ID"] == owner_ak, acl
    perms = {(g["Grantee"].get("URI", g["Grantee"].get("ID")), g["Permission"]) for g in acl["Grants"]}
    assert perms == {("http://acs.amazonaws.com/groups/global/AllUsers", "READ"), (owner_ak, "FULL_CONTROL")}, perms
    denied(lambda: reader.get_bucket_acl(Bucket="acl-bucket"))


@check
def acl_grants_to_a_key():
    owner.put_object_acl(Bucket="acl-bucket", Key="closed.txt", GrantRead=f'id="{reader_ak}"')
    assert reader.get_object(Bucket="acl-bucket", Key="closed.txt")["Body"].read() == b"closed"
    denied(lambda: device.get_object(Bucket="acl-bucket", Key="closed.txt"))
    grants = owner.get_object_acl(Bucket="acl-bucket", Key="closed.txt")["Grants"]
    assert {"ID": reader_ak, "Type": "CanonicalUser", "DisplayName": reader_ak} in [g["Grantee"] for g in grants], grants
    denied(lambda: reader.put_object_acl(Bucket="acl-bucket", Key="closed.txt", ACL="public-read"))
    owner.put_bucket_acl(Bucket="acl-bucket", AccessControlPolicy={
        "Owner": {"ID": owner_ak},
        "Grants": [{"Grantee": {"Type": "CanonicalUser", "ID": device_ak_}, "Permission": "WRITE"}]})
    device.put_object(Bucket="acl-bucket", Key="from-device.txt", Body=b"d")
    assert curl(f"{ENDPOINT}/acl-bucket?list-type=2")[0] == 403, "the public READ went with the old ACL"
    code, status = error_code(lambda: owner.put_bucket_acl(Bucket="acl-bucket", GrantRead='emailAddress="a@b.c"'))
    assert (code, status) == ("UnresolvableGrantByEmailAddress", 400), (code, status)


@check
def public_access_block_blocks_and_ignores():
    owner.put_public_access_block(Bucket="acl-bucket", PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    c = owner.get_public_access_block(Bucket="acl-bucket")["PublicAccessBlockConfiguration"]
    assert all(c.values()), c
    assert curl(f"{ENDPOINT}/acl-bucket/open.txt")[0] == 403, "IgnorePublicAcls"
    denied(lambda: owner.put_object(Bucket="acl-bucket", Key="x.txt", Body=b"x", ACL="public-read"))
    assert "x.txt" not in keys_in("acl-bucket")
    denied(lambda: owner.put_bucket_acl(Bucket="acl-bucket", ACL="public-read"))
    public = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*",
        "Action": "s3:GetObject", "Resource": "arn:aws:s3:::acl-bucket/*"}]})
    denied(lambda: owner.put_bucket_policy(Bucket="acl-bucket", Policy=public))
    owner.put_public_access_block(Bucket="acl-bucket", PublicAccessBlockConfiguration={
        "BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": False, "RestrictPublicBuckets": True})
    owner.put_bucket_policy(Bucket="acl-bucket", Policy=public)
    assert curl(f"{ENDPOINT}/acl-bucket/closed.txt")[0] == 403, "RestrictPublicBuckets"
    assert curl(f"{ENDPOINT}/acl-bucket/open.txt")[0] == 200, "public ACLs count again"
    owner.delete_public_access_block(Bucket="acl-bucket")
    assert curl(f"{ENDPOINT}/acl-bucket/closed.txt")[0] == 200
    assert error_code(lambda: owner.get_public_access_block(Bucket="acl-bucket"))[1] == 404
    owner.delete_bucket_policy(Bucket="acl-bucket")


@check
def ownership_controls_are_kept():
    assert error_code(lambda: owner.get_bucket_ownership_controls(Bucket="acl-bucket")) == ("OwnershipControlsNotFoundError", 404)
    # A bucket with an ACL cannot be enforced: private first.
    code, status = error_code(lambda: owner.put_bucket_ownership_controls(
        Bucket="acl-bucket", OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}))
    assert (code, status) == ("InvalidBucketAclWithObjectOwnership", 400), (code, status)
    owner.put_bucket_acl(Bucket="acl-bucket", ACL="private")
    owner.put_bucket_ownership_controls(Bucket="acl-bucket", OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    r = owner.get_bucket_ownership_controls(Bucket="acl-bucket")["OwnershipControls"]["Rules"]
    assert r == [{"ObjectOwnership": "BucketOwnerEnforced"}], r
    # Enforced: ACLs are refused (private ones pass) and the ones set before count for nothing.
    r = curl(f"{ENDPOINT}/acl-bucket/open.txt")
    assert r[0] == 403, r
    code, status = error_code(lambda: owner.put_object(Bucket="acl-bucket", Key="y", Body=b"y", ACL="public-read"))
    assert (code, status) == ("AccessControlListNotSupported", 400), (code, status)
    owner.put_object(Bucket="acl-bucket", Key="y", Body=b"y", ACL="bucket-owner-full-control")
    code, status = error_code(lambda: owner.put_object(Bucket="acl-bucket", Key="z", Body=b"z", ACL="private"))
    assert (code, status) == ("AccessControlListNotSupported", 400), (code, status)
    code, status = error_code(lambda: owner.put_bucket_acl(Bucket="acl-bucket", ACL="private"))
    assert (code, status) == ("AccessControlListNotSupported", 400), (code, status)
    code, status = error_code(lambda: owner.put_object_acl(Bucket="acl-bucket", Key="y", ACL="private"))
    assert (code, status) == ("AccessControlListNotSupported", 400), (code, status)
    owner.delete_bucket_ownership_controls(Bucket="acl-bucket")
    owner.create_bucket(Bucket="public-bucket", ACL="public-read")
    code, status = error_code(lambda: owner.put_bucket_ownership_controls(
        Bucket="public-bucket", OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}))
    assert (code, status) == ("InvalidBucketAclWithObjectOwnership", 400), (code, status)
    owner.put_bucket_acl(Bucket="public-bucket", ACL="private")
    owner.put_bucket_ownership_controls(
        Bucket="public-bucket", OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    owner.delete_bucket(Bucket="public-bucket")
    assert curl(f"{ENDPOINT}/acl-bucket/open.txt")[0] == 200
    code, status = error_code(lambda: owner.put_object_acl(Bucket="acl-bucket", Key="y", GrantRead='id="PKNOSUCHKEY000000000"'))
    assert (code, status) == ("InvalidArgument", 400), (code, status)
    code, status = error_code(lambda: owner.create_bucket(Bucket="enforced-bucket", ACL="public-read", ObjectOwnership="BucketOwnerEnforced"))
    assert (code, status) == ("InvalidBucketAclWithObjectOwnership", 400), (code, status)
    assert "enforced-bucket" not in [b["Name"] for b in admin.list_buckets()["Buckets"]]
    owner.create_bucket(Bucket="enforced-bucket", ObjectOwnership="BucketOwnerEnforced")
    r = owner.get_bucket_ownership_controls(Bucket="enforced-bucket")["OwnershipControls"]["Rules"]
    assert r == [{"ObjectOwnership": "BucketOwnerEnforced"}], r
    owner.delete_bucket(Bucket="enforced-bucket")
    for k in keys_in("acl-bucket"):
        owner.delete_object(Bucket="acl-bucket", Key=k)
    owner.delete_bucket(Bucket="acl-bucket")


@check
def owner_deletes_its_objects_and_bucket_others_cannot():
    denied(lambda: other.delete_bucket(Bucket=B))
    for k in keys_in():
        owner.delete_object(Bucket=B, Key=k)
    owner.delete_bucket(Bucket=B)
    owner.create_bucket(Bucket=B)


finish()
