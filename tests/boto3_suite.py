"""boto3 against a running s3d, with boto3's default checksum settings.

Run by s3d/tests/boto3.rs, which starts the server and passes S3_ENDPOINT, S3_CA, AWS keys.
Prints one line per check and a final 'N passed, N failed'; exits non-zero on failure.
"""
import hashlib
import io
import ssl
import time
import urllib.error
import urllib.request

import boto3
import botocore
from botocore.config import Config

from s3suite import CA, ENDPOINT, check, error_code, finish, s3

B = "boto-suite"


def data(n, seed=1):
    return hashlib.shake_256(str(seed).encode()).digest(n) if n else b""


s3.create_bucket(Bucket=B)


@check
def put_get_with_default_checksums():
    body = data(100_000)
    r = s3.put_object(Bucket=B, Key="k1", Body=body)
    assert r["ETag"].strip('"') == hashlib.md5(body).hexdigest()
    got = s3.get_object(Bucket=B, Key="k1", ChecksumMode="ENABLED")
    assert got["Body"].read() == body


@check
def streaming_upload_with_trailer_checksum():
    # A non-seekable stream makes botocore send aws-chunked with a trailing checksum.
    class Unseekable(io.RawIOBase):
        def __init__(self, b):
            self.b = io.BytesIO(b)

        def readable(self):
            return True

        def readinto(self, buf):
            chunk = self.b.read(len(buf))
            buf[: len(chunk)] = chunk
            return len(chunk)

    body = data(3_000_000, 2)
    s3.upload_fileobj(Unseekable(body), B, "streamed")
    assert s3.get_object(Bucket=B, Key="streamed")["Body"].read() == body


@check
def explicit_checksums_are_stored_and_returned():
    body = data(5000, 3)
    for alg in ["CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"]:
        r = s3.put_object(Bucket=B, Key="c-" + alg, Body=body, ChecksumAlgorithm=alg)
        h = s3.head_object(Bucket=B, Key="c-" + alg, ChecksumMode="ENABLED")
        assert h.get("Checksum" + alg) == r.get("Checksum" + alg), (alg, h, r)


@check
def wrong_checksum_is_bad_digest_and_stores_nothing():
    code, status = error_code(lambda: s3.put_object(Bucket=B, Key="bad", Body=b"hello", ChecksumCRC32="AAAAAA=="))
    assert (code, status) == ("BadDigest", 400), (code, status)
    code, _ = error_code(lambda: s3.head_object(Bucket=B, Key="bad"))
    assert code == "404", code


@check
def wrong_content_md5_is_bad_digest():
    code, _ = error_code(lambda: s3.put_object(Bucket=B, Key="bad", Body=b"hello", ContentMD5="1B2M2Y8AsgTpgAmY7PhCfg=="))
    assert code == "BadDigest", code
    code, _ = error_code(lambda: s3.put_object(Bucket=B, Key="bad", Body=b"hello", ContentMD5="not base64"))
    assert code == "InvalidDigest", code


@check
def multipart_upload_file():
    body = data(20 * 1024 * 1024 + 5, 4)
    s3.upload_fileobj(io.BytesIO(body), B, "mp", Config=boto3.s3.transfer.TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20))
    h = s3.head_object(Bucket=B, Key="mp")
    assert h["ContentLength"] == len(body) and h["ETag"].strip('"').endswith("-3"), h
    assert s3.get_object(Bucket=B, Key="mp")["Body"].read() == body
    p2 = s3.get_object(Bucket=B, Key="mp", PartNumber=2)
    assert p2["Body"].read() == body[8 << 20 : 16 << 20] and p2["PartsCount"] == 3


@check
def multipart_errors():
    u = s3.create_multipart_upload(Bucket=B, Key="mperr")["UploadId"]
    e1 = s3.upload_part(Bucket=B, Key="mperr", UploadId=u, PartNumber=1, Body=b"a" * 100)["ETag"]
    e2 = s3.upload_part(Bucket=B, Key="mperr", UploadId=u, PartNumber=2, Body=b"b" * 100)["ETag"]
    parts = s3.list_parts(Bucket=B, Key="mperr", UploadId=u)["Parts"]
    assert [p["PartNumber"] for p in parts] == [1, 2]
    ups = s3.list_multipart_uploads(Bucket=B)["Uploads"]
    assert any(x["UploadId"] == u for x in ups)
    mk = lambda ps: s3.complete_multipart_upload(Bucket=B, Key="mperr", UploadId=u, MultipartUpload={"Parts": ps})
    assert error_code(lambda: mk([{"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}]))[0] == "InvalidPartOrder"
    assert error_code(lambda: mk([{"PartNumber": 1, "ETag": '"ffff"'}]))[0] == "InvalidPart"
    assert error_code(lambda: mk([{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]))[0] == "EntityTooSmall"
    s3.abort_multipart_upload(Bucket=B, Key="mperr", UploadId=u)
    assert error_code(lambda: s3.list_parts(Bucket=B, Key="mperr", UploadId=u))[0] == "NoSuchUpload"



@check
def a_retried_completion_gets_the_same_answer():
    u = s3.create_multipart_upload(Bucket=B, Key="twice")["UploadId"]
    e = s3.upload_part(Bucket=B, Key="twice", UploadId=u, PartNumber=1, Body=b"once")["ETag"]
    done = {"Parts": [{"PartNumber": 1, "ETag": e}]}
    first = s3.complete_multipart_upload(Bucket=B, Key="twice", UploadId=u, MultipartUpload=done)
    again = s3.complete_multipart_upload(Bucket=B, Key="twice", UploadId=u, MultipartUpload=done)
    assert again["ETag"] == first["ETag"], (first, again)
    # Once the object is replaced, the upload is simply gone.
    s3.put_object(Bucket=B, Key="twice", Body=b"other")
    got = error_code(lambda: s3.complete_multipart_upload(Bucket=B, Key="twice", UploadId=u, MultipartUpload=done))
    assert got == ("NoSuchUpload", 404), got



@check
def multipart_checksums_composite_and_full_object():
    import base64
    import zlib

    p1, p2 = data(5 << 20, 31), data(1000, 32)

    def upload(key, algorithm, **kind):
        u = s3.create_multipart_upload(Bucket=B, Key=key, ChecksumAlgorithm=algorithm, **kind)["UploadId"]
        parts = []
        for n, body in ((1, p1), (2, p2)):
            r = s3.upload_part(Bucket=B, Key=key, UploadId=u, PartNumber=n, Body=body, ChecksumAlgorithm=algorithm)
            parts.append({"PartNumber": n, "ETag": r["ETag"], f"Checksum{algorithm}": r[f"Checksum{algorithm}"]})
        return u, parts

    def complete(key, u, parts, **extra):
        return s3.complete_multipart_upload(Bucket=B, Key=key, UploadId=u, MultipartUpload={"Parts": parts}, **extra)

    # COMPOSITE (SHA256's default): the checksum of the parts' checksums, then "-2".
    u, parts = upload("ck-comp", "SHA256")
    done = complete("ck-comp", u, parts)
    raw = hashlib.sha256(p1).digest() + hashlib.sha256(p2).digest()
    want = base64.b64encode(hashlib.sha256(raw).digest()).decode() + "-2"
    assert done.get("ChecksumSHA256") == want, (done.get("ChecksumSHA256"), want)
    h = s3.head_object(Bucket=B, Key="ck-comp", ChecksumMode="ENABLED")
    assert h.get("ChecksumSHA256") == want and h.get("ChecksumType") == "COMPOSITE", h
    # FULL_OBJECT CRC32: the parts' CRCs combined are the CRC of the whole body.
    u, parts = upload("ck-full", "CRC32", ChecksumType="FULL_OBJECT")
    crc = zlib.crc32(p1 + p2)
    whole = base64.b64encode(crc.to_bytes(4, "big")).decode()
    wrong = base64.b64encode((crc ^ 1).to_bytes(4, "big")).decode()
    got = error_code(lambda: complete("ck-full", u, parts, ChecksumCRC32=wrong, ChecksumType="FULL_OBJECT"))
    assert got == ("BadDigest", 400), got
    assert error_code(lambda: s3.head_object(Bucket=B, Key="ck-full"))[1] == 404
    done = complete("ck-full", u, parts, ChecksumCRC32=whole, ChecksumType="FULL_OBJECT")
    assert done.get("ChecksumCRC32") == whole and done.get("ChecksumType") == "FULL_OBJECT", done
    g = s3.get_object(Bucket=B, Key="ck-full", ChecksumMode="ENABLED")
    assert g["Body"].read() == p1 + p2 and g.get("ChecksumCRC32") == whole, g.get("ChecksumCRC32")
    # A part copied into such an upload gets its checksum as if it had been sent.
    u = s3.create_multipart_upload(Bucket=B, Key="ck-copy", ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT")["UploadId"]
    r = s3.upload_part_copy(Bucket=B, Key="ck-copy", UploadId=u, PartNumber=1, CopySource={"Bucket": B, "Key": "ck-full"})
    done = complete("ck-copy", u, [{"PartNumber": 1, "ETag": r["CopyPartResult"]["ETag"]}])
    assert done.get("ChecksumCRC32") == whole, done
    # A part named with a checksum that is not its own; a type the algorithm does not allow.
    u, parts = upload("ck-bad", "CRC32")
    parts[0]["ChecksumCRC32"] = "AAAAAA=="
    assert error_code(lambda: complete("ck-bad", u, parts)) == ("InvalidPart", 400)
    got = error_code(lambda: s3.create_multipart_upload(Bucket=B, Key="ck-x", ChecksumAlgorithm="CRC64NVME", ChecksumType="COMPOSITE"))
    assert got == ("InvalidRequest", 400), got
    got = error_code(lambda: s3.create_multipart_upload(Bucket=B, Key="ck-x", ChecksumType="FULL_OBJECT"))
    assert got == ("InvalidRequest", 400), got
    assert not any(x["Key"] == "ck-x" for x in s3.list_multipart_uploads(Bucket=B).get("Uploads", []))


@check
def upload_part_copy_with_range():
    src = data(6 * 1024 * 1024, 5)
    s3.put_object(Bucket=B, Key="src", Body=src)
    u = s3.create_multipart_upload(Bucket=B, Key="pc")["UploadId"]
    r1 = s3.upload_part_copy(Bucket=B, Key="pc", UploadId=u, PartNumber=1, CopySource={"Bucket": B, "Key": "src"}, CopySourceRange="bytes=0-5242879")
    r2 = s3.upload_part_copy(Bucket=B, Key="pc", UploadId=u, PartNumber=2, CopySource={"Bucket": B, "Key": "src"}, CopySourceRange="bytes=5242880-6291455")
    s3.complete_multipart_upload(Bucket=B, Key="pc", UploadId=u, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": r1["CopyPartResult"]["ETag"]},
        {"PartNumber": 2, "ETag": r2["CopyPartResult"]["ETag"]}]})
    assert s3.get_object(Bucket=B, Key="pc")["Body"].read() == src


@check
def conditional_requests():
    r = s3.put_object(Bucket=B, Key="cond", Body=b"v1")
    etag = r["ETag"]
    code, status = error_code(lambda: s3.put_object(Bucket=B, Key="cond", Body=b"v2", IfNoneMatch="*"))
    assert (code, status) == ("PreconditionFailed", 412), (code, status)
    try:
        s3.get_object(Bucket=B, Key="cond", IfNoneMatch=etag)
        raise AssertionError("expected 304")
    except botocore.exceptions.ClientError as e:
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 304
        assert e.response["ResponseMetadata"]["HTTPHeaders"].get("etag") == etag, e.response
    code, status = error_code(lambda: s3.get_object(Bucket=B, Key="cond", IfMatch='"0000"'))
    assert status == 412, (code, status)
    assert s3.get_object(Bucket=B, Key="cond", IfMatch=etag)["Body"].read() == b"v1"



@check
def conditional_writes_with_etags():
    etag = s3.put_object(Bucket=B, Key="cw", Body=b"v1")["ETag"]
    # If-None-Match with an ETag: refused when it is the current one, not otherwise.
    assert error_code(lambda: s3.put_object(Bucket=B, Key="cw", Body=b"x", IfNoneMatch=etag)) == ("PreconditionFailed", 412)
    s3.put_object(Bucket=B, Key="cw", Body=b"v2", IfNoneMatch='"00000000000000000000000000000000"')
    # If-Match: only onto the ETag named (or "*": onto any existing object).
    etag = s3.head_object(Bucket=B, Key="cw")["ETag"]
    assert error_code(lambda: s3.put_object(Bucket=B, Key="cw", Body=b"x", IfMatch='"0000"')) == ("PreconditionFailed", 412)
    s3.put_object(Bucket=B, Key="cw", Body=b"v3", IfMatch=etag)
    s3.put_object(Bucket=B, Key="cw", Body=b"v4", IfMatch="*")
    # If-Match with no object to match: NoSuchKey, as S3 answers.
    assert error_code(lambda: s3.put_object(Bucket=B, Key="cw-none", Body=b"x", IfMatch="*")) == ("NoSuchKey", 404)
    assert error_code(lambda: s3.put_object(Bucket=B, Key="cw-none", Body=b"x", IfMatch=etag)) == ("NoSuchKey", 404)
    assert s3.get_object(Bucket=B, Key="cw")["Body"].read() == b"v4"
    # The same conditions on CompleteMultipartUpload, decided against the object it replaces.
    current = s3.head_object(Bucket=B, Key="cw")["ETag"]
    def complete(**cond):
        u = s3.create_multipart_upload(Bucket=B, Key="cw")["UploadId"]
        e = s3.upload_part(Bucket=B, Key="cw", UploadId=u, PartNumber=1, Body=b"mp")["ETag"]
        return s3.complete_multipart_upload(Bucket=B, Key="cw", UploadId=u, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e}]}, **cond)
    assert error_code(lambda: complete(IfNoneMatch=current)) == ("PreconditionFailed", 412)
    assert error_code(lambda: complete(IfMatch='"0000"')) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket=B, Key="cw")["Body"].read() == b"v4"
    complete(IfMatch=current)
    assert s3.get_object(Bucket=B, Key="cw")["Body"].read() == b"mp"



@check
def object_attributes_size_etag_checksum_and_parts():
    body = data(12 * 1024 * 1024, 21)
    s3.upload_fileobj(io.BytesIO(body), B, "attrs-mp", Config=boto3.s3.transfer.TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20))
    head = s3.head_object(Bucket=B, Key="attrs-mp")
    a = s3.get_object_attributes(Bucket=B, Key="attrs-mp", ObjectAttributes=["ETag", "ObjectSize", "StorageClass", "ObjectParts"])
    assert a["ObjectSize"] == len(body) and a["StorageClass"] == "STANDARD", a
    assert a["ETag"].strip('"') == head["ETag"].strip('"'), (a["ETag"], head["ETag"])
    p = a["ObjectParts"]
    assert p["TotalPartsCount"] == 3 and [x["Size"] for x in p["Parts"]] == [5 << 20, 5 << 20, 2 << 20], p
    page = s3.get_object_attributes(Bucket=B, Key="attrs-mp", ObjectAttributes=["ObjectParts"], MaxParts=2)["ObjectParts"]
    assert [x["PartNumber"] for x in page["Parts"]] == [1, 2] and page["IsTruncated"], page
    rest = s3.get_object_attributes(Bucket=B, Key="attrs-mp", ObjectAttributes=["ObjectParts"], MaxParts=2, PartNumberMarker=page["NextPartNumberMarker"])["ObjectParts"]
    assert [x["PartNumber"] for x in rest["Parts"]] == [3] and not rest["IsTruncated"], rest
    # A single put: no parts; its checksum when it was sent with one.
    s3.put_object(Bucket=B, Key="attrs-one", Body=b"abc", ChecksumAlgorithm="SHA256")
    one = s3.get_object_attributes(Bucket=B, Key="attrs-one", ObjectAttributes=["Checksum", "ObjectParts", "ObjectSize"])
    assert one["ObjectSize"] == 3 and "ObjectParts" not in one, one
    assert one["Checksum"]["ChecksumSHA256"] == "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=", one
    assert error_code(lambda: s3.get_object_attributes(Bucket=B, Key="no-such-key", ObjectAttributes=["ETag"]))[1] == 404
    # Bad input: an attribute S3 does not know, a negative max-parts.
    got = error_code(lambda: s3.get_object_attributes(Bucket=B, Key="attrs-one", ObjectAttributes=["Colour"]))
    assert got == ("InvalidArgument", 400), got
    got = error_code(lambda: s3.get_object_attributes(Bucket=B, Key="attrs-mp", ObjectAttributes=["ObjectParts"], MaxParts=-1))
    assert got == ("InvalidArgument", 400), got


@check
def ranges():
    body = data(10_000, 6)
    s3.put_object(Bucket=B, Key="r", Body=body)
    for rng, want in [("bytes=0-0", body[:1]), ("bytes=100-199", body[100:200]), ("bytes=-10", body[-10:]), ("bytes=9990-", body[9990:]), ("bytes=9000-20000", body[9000:])]:
        g = s3.get_object(Bucket=B, Key="r", Range=rng)
        assert g["Body"].read() == want, rng
        assert g["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert g["ContentRange"].endswith("/10000"), g["ContentRange"]
    code, status = error_code(lambda: s3.get_object(Bucket=B, Key="r", Range="bytes=10000-"))
    assert (code, status) == ("InvalidRange", 416), (code, status)


@check
def metadata_and_headers():
    s3.put_object(Bucket=B, Key="m.txt", Body=b"x", ContentType="text/plain", CacheControl="max-age=5",
                  ContentDisposition="attachment", ContentLanguage="en", Metadata={"Color": "blue"})
    h = s3.head_object(Bucket=B, Key="m.txt")
    assert h["ContentType"] == "text/plain" and h["CacheControl"] == "max-age=5"
    assert h["Metadata"] == {"color": "blue"}, h["Metadata"]
    hdr = h["ResponseMetadata"]["HTTPHeaders"]
    for name in ["x-amz-request-id", "x-amz-id-2", "date", "server", "last-modified", "etag", "accept-ranges"]:
        assert name in hdr, (name, hdr)
    g = s3.get_object(Bucket=B, Key="m.txt", ResponseContentType="application/x-override")
    assert g["ContentType"] == "application/x-override"
    s3.put_object(Bucket=B, Key="no-type", Body=b"x", ContentEncoding="aws-chunked,gzip")
    h = s3.head_object(Bucket=B, Key="no-type")
    assert h["ContentType"] == "binary/octet-stream", h["ContentType"]
    assert h.get("ContentEncoding") == "gzip", h.get("ContentEncoding")


@check
def listing_pagination():
    for i in range(25):
        s3.put_object(Bucket=B, Key=f"list/{i:03d}", Body=b"")
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=B, Prefix="list/", PaginationConfig={"PageSize": 10}):
        keys += [o["Key"] for o in page.get("Contents", [])]
    assert keys == [f"list/{i:03d}" for i in range(25)], keys
    keys = []
    for page in s3.get_paginator("list_objects").paginate(Bucket=B, Prefix="list/", PaginationConfig={"PageSize": 7}):
        keys += [o["Key"] for o in page.get("Contents", [])]
    assert len(keys) == 25
    r = s3.list_objects_v2(Bucket=B, Prefix="list/", StartAfter="list/020")
    assert [o["Key"] for o in r["Contents"]] == [f"list/{i:03d}" for i in range(21, 25)]
    r = s3.list_objects_v2(Bucket=B, Delimiter="/")
    assert {"Prefix": "list/"} in r["CommonPrefixes"]
    r = s3.list_objects_v2(Bucket=B, Prefix="list/", EncodingType="url", MaxKeys=1)
    assert r["KeyCount"] == 1


@check
def delete_objects_quiet_and_versions_cleanup():
    for i in range(5):
        s3.put_object(Bucket=B, Key=f"del/{i}", Body=b"x")
    r = s3.delete_objects(Bucket=B, Delete={"Objects": [{"Key": f"del/{i}"} for i in range(5)], "Quiet": True})
    assert not r.get("Deleted") and not r.get("Errors"), r
    assert "Contents" not in s3.list_objects_v2(Bucket=B, Prefix="del/")
    # The cleanup pattern of ceph's s3-tests: list versions, delete them with VersionId.
    s3.put_object(Bucket=B, Key="ver", Body=b"x")
    vs = s3.list_object_versions(Bucket=B, Prefix="ver")["Versions"]
    assert vs[0]["VersionId"] == "null"
    s3.delete_objects(Bucket=B, Delete={"Objects": [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in vs]})
    assert "Contents" not in s3.list_objects_v2(Bucket=B, Prefix="ver")


@check
def presigned_urls():
    s3.put_object(Bucket=B, Key="pre", Body=b"presigned body")
    ctx = ssl.create_default_context(cafile=CA)
    v4 = boto3.client("s3", endpoint_url=ENDPOINT, region_name="us-east-1", verify=CA,
                      config=Config(signature_version="s3v4"))
    url = v4.generate_presigned_url("get_object", Params={"Bucket": B, "Key": "pre"}, ExpiresIn=60)
    assert "X-Amz-Signature" in url
    assert urllib.request.urlopen(url, context=ctx).read() == b"presigned body"
    put = v4.generate_presigned_url("put_object", Params={"Bucket": B, "Key": "pre-put"}, ExpiresIn=60)
    req = urllib.request.Request(put, data=b"uploaded", method="PUT")
    urllib.request.urlopen(req, context=ctx).read()
    assert s3.get_object(Bucket=B, Key="pre-put")["Body"].read() == b"uploaded"
    expired = v4.generate_presigned_url("get_object", Params={"Bucket": B, "Key": "pre"}, ExpiresIn=1)
    time.sleep(2)
    try:
        urllib.request.urlopen(expired, context=ctx)
        raise AssertionError("expired URL accepted")
    except urllib.error.HTTPError as e:
        assert e.code == 403 and b"AccessDenied" in e.read()


@check
def key_too_long_and_bad_names():
    code, _ = error_code(lambda: s3.put_object(Bucket=B, Key="k" * 1025, Body=b"x"))
    assert code == "KeyTooLongError", code
    s3.put_object(Bucket=B, Key="k" * 1024, Body=b"x")
    try:
        s3.get_object(Bucket=B, Key="nope")
        raise AssertionError("expected NoSuchKey")
    except botocore.exceptions.ClientError as e:
        err = e.response["Error"]
        assert err["Code"] == "NoSuchKey", err
        # The error body names the resource and the request id of the response header.
        assert e.response.get("Error", {}).get("Resource") == f"/{B}/nope", e.response
        assert e.response["ResponseMetadata"]["RequestId"] == e.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]


@check
def request_time_too_skewed():
    import datetime
    import botocore.auth

    real = botocore.auth.datetime.datetime

    class Past(real):
        @classmethod
        def utcnow(cls):
            return real.utcnow() - datetime.timedelta(minutes=20)

        @classmethod
        def now(cls, tz=None):
            return real.now(tz) - datetime.timedelta(minutes=20)

    botocore.auth.datetime.datetime = Past
    try:
        code, status = error_code(lambda: s3.list_buckets())
    finally:
        botocore.auth.datetime.datetime = real
    assert (code, status) == ("RequestTimeTooSkewed", 403), (code, status)


@check
def truncated_body_stores_nothing():
    # Sign a PUT for 1000 bytes, send 100 and hang up: nothing may become visible.
    import socket
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from urllib.parse import urlparse

    u = urlparse(ENDPOINT)
    req = AWSRequest(method="PUT", url=f"{ENDPOINT}/{B}/truncated", data=b"x" * 1000,
                     headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    SigV4Auth(s3._request_signer._credentials.get_frozen_credentials(), "s3", "us-east-1").add_auth(req)
    ctx = ssl.create_default_context(cafile=CA)
    raw = socket.create_connection((u.hostname, u.port))
    conn = ctx.wrap_socket(raw, server_hostname=u.hostname)
    head = f"PUT /{B}/truncated HTTP/1.1\r\nHost: {u.netloc}\r\nContent-Length: 1000\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in req.headers.items() if k.lower() not in ("host", "content-length"))
    conn.sendall(head.encode() + b"\r\n" + b"x" * 100)
    time.sleep(0.3)
    conn.close()
    time.sleep(0.5)
    code, _ = error_code(lambda: s3.head_object(Bucket=B, Key="truncated"))
    assert code == "404", code


def _signed_chunked_put(key, chunks, tamper=None):
    """PUT with STREAMING-AWS4-HMAC-SHA256-PAYLOAD: every chunk signed, chained on the seed."""
    import hmac
    import socket
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from urllib.parse import urlparse

    creds = s3._request_signer._credentials.get_frozen_credentials()
    u = urlparse(ENDPOINT)
    decoded = sum(len(c) for c in chunks)
    req = AWSRequest(method="PUT", url=f"{ENDPOINT}/{B}/{key}", headers={
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(decoded),
    })
    SigV4Auth(creds, "s3", "us-east-1").add_auth(req)
    amz_date = req.headers["X-Amz-Date"]
    seed = req.headers["Authorization"].split("Signature=")[1]
    day = amz_date[:8]
    scope = f"{day}/us-east-1/s3/aws4_request"
    k = hmac.new(("AWS4" + creds.secret_key).encode(), day.encode(), "sha256").digest()
    for part in ("us-east-1", "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), "sha256").digest()
    empty = hashlib.sha256(b"").hexdigest()
    body, prev = b"", seed
    for i, c in enumerate(list(chunks) + [b""]):
        sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, empty, hashlib.sha256(c).hexdigest()])
        sig = hmac.new(k, sts.encode(), "sha256").hexdigest()
        prev = sig
        if tamper == "signature" and i == 1:
            sig = "0" * 64
        size = f"{len(c):x}" if tamper != "framing" or i != 1 else "zz"
        body += f"{size};chunk-signature={sig}\r\n".encode() + c + b"\r\n"
    head = f"PUT /{B}/{key} HTTP/1.1\r\nHost: {u.netloc}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in req.headers.items() if k.lower() not in ("host", "content-length"))
    ctx = ssl.create_default_context(cafile=CA)
    conn = ctx.wrap_socket(socket.create_connection((u.hostname, u.port)), server_hostname=u.hostname)
    resp = b""
    try:
        conn.sendall(head.encode() + b"\r\n" + body)
    except (ssl.SSLError, OSError):
        pass  # the server may answer and close before the whole body is sent
    try:
        while True:
            got = conn.recv(65536)
            if not got:
                break
            resp += got
    except (ssl.SSLError, OSError):
        pass
    conn.close()
    # 0: the server closed the connection without an answer we could read (a refusal).
    return (int(resp.split(b" ", 2)[1]) if resp.startswith(b"HTTP/") else 0), resp


@check
def signed_aws_chunked_upload():
    chunks = [data(65536, 7), data(65536, 8), data(1000, 9)]
    status, resp = _signed_chunked_put("chunked", chunks)
    assert status == 200, resp[:500]
    assert s3.get_object(Bucket=B, Key="chunked")["Body"].read() == b"".join(chunks)
    h = s3.head_object(Bucket=B, Key="chunked")
    assert h.get("ContentEncoding") in (None, ""), h.get("ContentEncoding")


@check
def bad_chunk_signature_or_framing_stores_nothing():
    chunks = [data(65536, 10), data(65536, 11), data(10, 12)]
    status, resp = _signed_chunked_put("chunked-bad-sig", chunks, tamper="signature")
    assert status in (400, 403, 0), resp[:500]
    assert error_code(lambda: s3.head_object(Bucket=B, Key="chunked-bad-sig"))[0] == "404"
    status, resp = _signed_chunked_put("chunked-bad-frame", chunks, tamper="framing")
    assert status in (400, 0), resp[:500]
    assert error_code(lambda: s3.head_object(Bucket=B, Key="chunked-bad-frame"))[0] == "404"



@check
def unset_bucket_configurations_are_s3s_404s():
    # SDKs (minio-py, boto3 waiters) read these 404s as "none configured"; a 501 breaks them.
    calls = [
        (s3.get_bucket_lifecycle_configuration, "NoSuchLifecycleConfiguration"),
        (s3.get_bucket_policy, "NoSuchBucketPolicy"),
        (s3.get_bucket_policy_status, "NoSuchBucketPolicy"),
        (s3.get_bucket_tagging, "NoSuchTagSet"),
        (s3.get_object_lock_configuration, "ObjectLockConfigurationNotFoundError"),
        (s3.get_bucket_cors, "NoSuchCORSConfiguration"),
    ]
    for call, code in calls:
        got = error_code(lambda: call(Bucket=B))
        assert got == (code, 404), (call.__name__, got)
    # AWS's error table gives this one 400, not 404.
    got = error_code(lambda: s3.get_bucket_encryption(Bucket=B))
    assert got == ("ServerSideEncryptionConfigurationNotFoundError", 400), got
    for call, _ in calls + [(s3.get_bucket_encryption, None)]:
        got = error_code(lambda: call(Bucket="no-such-bucket-here"))
        assert got == ("NoSuchBucket", 404), (call.__name__, got)


@check
def bucket_tags_round_trip_and_bad_sets_change_nothing():
    tags = [{"Key": "team", "Value": "edge"}, {"Key": "empty", "Value": ""}]
    s3.put_bucket_tagging(Bucket=B, Tagging={"TagSet": tags})
    got = s3.get_bucket_tagging(Bucket=B)["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in got) == [("empty", ""), ("team", "edge")], got
    bad = [
        [{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}],
        [{"Key": "k" * 129, "Value": "1"}],
        [{"Key": "v", "Value": "x" * 257}],
        [{"Key": f"k{n}", "Value": ""} for n in range(51)],
    ]
    for b in bad:
        got = error_code(lambda: s3.put_bucket_tagging(Bucket=B, Tagging={"TagSet": b}))
        assert got == ("InvalidTag", 400), got
    assert len(s3.get_bucket_tagging(Bucket=B)["TagSet"]) == 2
    # Fifty is the limit, not 10 as for objects.
    many = [{"Key": f"k{n}", "Value": str(n)} for n in range(50)]
    s3.put_bucket_tagging(Bucket=B, Tagging={"TagSet": many})
    assert len(s3.get_bucket_tagging(Bucket=B)["TagSet"]) == 50
    s3.delete_bucket_tagging(Bucket=B)
    assert error_code(lambda: s3.get_bucket_tagging(Bucket=B)) == ("NoSuchTagSet", 404)
    assert error_code(lambda: s3.put_bucket_tagging(Bucket="no-such-bucket-here", Tagging={"TagSet": tags}))[0] == "NoSuchBucket"


@check
def get_object_says_how_many_tags():
    s3.put_object(Bucket=B, Key="tagged", Body=b"x", Tagging="a=1&b=2")
    assert s3.get_object(Bucket=B, Key="tagged")["TagCount"] == 2
    head = s3.head_object(Bucket=B, Key="tagged")["ResponseMetadata"]["HTTPHeaders"]
    assert head.get("x-amz-tagging-count") == "2", head
    s3.put_object(Bucket=B, Key="untagged", Body=b"x")
    assert "TagCount" not in s3.get_object(Bucket=B, Key="untagged")
    assert "x-amz-tagging-count" not in s3.head_object(Bucket=B, Key="untagged")["ResponseMetadata"]["HTTPHeaders"]


@check
def list_buckets_by_prefix_and_page():
    names = ["lb-a", "lb-b", "lb-c"]
    for n in names:
        s3.create_bucket(Bucket=n)
    try:
        r = s3.list_buckets(Prefix="lb-", MaxBuckets=2)
        assert [b["Name"] for b in r["Buckets"]] == ["lb-a", "lb-b"], r["Buckets"]
        assert r.get("Prefix") == "lb-"
        token = r["ContinuationToken"]
        r = s3.list_buckets(Prefix="lb-", MaxBuckets=2, ContinuationToken=token)
        assert [b["Name"] for b in r["Buckets"]] == ["lb-c"], r["Buckets"]
        assert "ContinuationToken" not in r
        everything = [b["Name"] for b in s3.list_buckets()["Buckets"]]
        assert B in everything and set(names) <= set(everything), everything
        got = error_code(lambda: s3.list_buckets(ContinuationToken="not base64 !!"))
        assert got == ("InvalidArgument", 400), got
        got = error_code(lambda: s3.list_buckets(MaxBuckets=10001))
        assert got == ("InvalidArgument", 400), got
    finally:
        for n in names:
            s3.delete_bucket(Bucket=n)


@check
def versioning_keeps_versions_and_deletes_make_markers():
    vb = "boto-versions"
    s3.create_bucket(Bucket=vb)
    assert "Status" not in s3.get_bucket_versioning(Bucket=vb)
    s3.put_bucket_versioning(Bucket=vb, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=vb)["Status"] == "Enabled"
    got = error_code(lambda: s3.put_bucket_versioning(
        Bucket=vb, MFA="123456 000000",
        VersioningConfiguration={"Status": "Enabled", "MFADelete": "Enabled"}))
    assert got == ("InvalidArgument", 400), got
    bodies = [data(10, 1), data(6 * 1024 * 1024, 2), data(0, 3)]
    ids = [s3.put_object(Bucket=vb, Key="k", Body=b)["VersionId"] for b in bodies]
    assert len(set(ids)) == 3 and "null" not in ids, ids
    for vid, b in zip(ids, bodies):
        r = s3.get_object(Bucket=vb, Key="k", VersionId=vid)
        assert r["Body"].read() == b and r["VersionId"] == vid
        assert s3.head_object(Bucket=vb, Key="k", VersionId=vid)["ContentLength"] == len(b)
    assert s3.get_object(Bucket=vb, Key="k")["VersionId"] == ids[2]
    vs = s3.list_object_versions(Bucket=vb)["Versions"]
    assert [v["VersionId"] for v in vs] == ids[::-1], vs
    assert [v["IsLatest"] for v in vs] == [True, False, False]

    # A delete makes a marker: 404 with x-amz-delete-marker, 405 for the marker by id.
    d = s3.delete_object(Bucket=vb, Key="k")
    assert d["DeleteMarker"] is True
    marker = d["VersionId"]
    try:
        s3.get_object(Bucket=vb, Key="k")
        raise AssertionError("GET of a deleted key succeeded")
    except botocore.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == "NoSuchKey", e.response
        assert e.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-delete-marker"] == "true"
    got = error_code(lambda: s3.get_object(Bucket=vb, Key="k", VersionId=marker))
    assert got == ("MethodNotAllowed", 405), got
    assert error_code(lambda: s3.head_object(Bucket=vb, Key="k", VersionId=marker))[1] == 405
    assert "Contents" not in s3.list_objects_v2(Bucket=vb)
    r = s3.list_object_versions(Bucket=vb)
    assert [(m["VersionId"], m["IsLatest"]) for m in r["DeleteMarkers"]] == [(marker, True)]
    assert all(not v["IsLatest"] for v in r["Versions"])
    # Removing the marker brings the object back.
    assert s3.delete_object(Bucket=vb, Key="k", VersionId=marker)["DeleteMarker"] is True
    assert s3.get_object(Bucket=vb, Key="k")["Body"].read() == bodies[2]

    # Copies, part copies and tags address one version.
    c = s3.copy_object(Bucket=vb, Key="copy", CopySource={"Bucket": vb, "Key": "k", "VersionId": ids[0]})
    assert c["CopySourceVersionId"] == ids[0] and c["VersionId"] not in ids
    assert s3.get_object(Bucket=vb, Key="copy")["Body"].read() == bodies[0]
    up = s3.create_multipart_upload(Bucket=vb, Key="mp")["UploadId"]
    pc = s3.upload_part_copy(Bucket=vb, Key="mp", UploadId=up, PartNumber=1,
                             CopySource={"Bucket": vb, "Key": "k", "VersionId": ids[1]})
    done = s3.complete_multipart_upload(Bucket=vb, Key="mp", UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": pc["CopyPartResult"]["ETag"]}]})
    assert done["VersionId"]
    assert s3.get_object(Bucket=vb, Key="mp")["Body"].read() == bodies[1]
    s3.put_object_tagging(Bucket=vb, Key="k", VersionId=ids[0],
                          Tagging={"TagSet": [{"Key": "old", "Value": "yes"}]})
    t = s3.get_object_tagging(Bucket=vb, Key="k", VersionId=ids[0])
    assert t["TagSet"] == [{"Key": "old", "Value": "yes"}] and t["VersionId"] == ids[0]
    assert s3.get_object_tagging(Bucket=vb, Key="k")["TagSet"] == []

    # Bad and unknown version ids.
    got = error_code(lambda: s3.get_object(Bucket=vb, Key="k", VersionId="not-a-version"))
    assert got == ("InvalidArgument", 400), got
    got = error_code(lambda: s3.get_object(Bucket=vb, Key="k", VersionId="0" * 32))
    assert got == ("NoSuchVersion", 404), got
    got = error_code(lambda: s3.list_object_versions(Bucket=vb, VersionIdMarker=ids[0]))
    assert got == ("InvalidArgument", 400), got

    # Pages of one entry give the whole listing.
    full = s3.list_object_versions(Bucket=vb)
    want = [(v["Key"], v["VersionId"]) for v in full["Versions"]]
    seen, kw = [], {}
    while True:
        r = s3.list_object_versions(Bucket=vb, MaxKeys=1, **kw)
        seen += [(v["Key"], v["VersionId"]) for v in r.get("Versions", [])]
        if not r["IsTruncated"]:
            break
        kw = {"KeyMarker": r["NextKeyMarker"], "VersionIdMarker": r["NextVersionIdMarker"]}
    assert seen == want, (seen, want)

    # Suspended: writes are the null version; the versions made before stay.
    s3.put_bucket_versioning(Bucket=vb, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket=vb)["Status"] == "Suspended"
    # (A write of the null version says no version id, as S3; GET and HEAD say "null".)
    assert "VersionId" not in s3.put_object(Bucket=vb, Key="k", Body=b"n1")
    assert "VersionId" not in s3.put_object(Bucket=vb, Key="k", Body=b"n2")
    assert s3.head_object(Bucket=vb, Key="k")["VersionId"] == "null"
    vs = s3.list_object_versions(Bucket=vb, Prefix="k")["Versions"]
    assert [v["VersionId"] for v in vs] == ["null"] + ids[::-1], vs

    # A bucket with versions is not empty; DeleteObjects by version id empties it.
    assert error_code(lambda: s3.delete_bucket(Bucket=vb)) == ("BucketNotEmpty", 409)
    r = s3.list_object_versions(Bucket=vb)
    objs = [{"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in r.get("Versions", []) + r.get("DeleteMarkers", [])]
    d = s3.delete_objects(Bucket=vb, Delete={"Objects": objs})
    assert sorted(x["VersionId"] for x in d["Deleted"]) == sorted(o["VersionId"] for o in objs)
    r = s3.list_object_versions(Bucket=vb)
    assert not r.get("Versions") and not r.get("DeleteMarkers"), r
    s3.delete_bucket(Bucket=vb)


@check
def object_lock_protects_versions_from_everyone():
    import datetime
    lb = "boto-vault"
    s3.create_bucket(Bucket=lb, ObjectLockEnabledForBucket=True)
    assert s3.get_bucket_versioning(Bucket=lb)["Status"] == "Enabled"
    c = s3.get_object_lock_configuration(Bucket=lb)["ObjectLockConfiguration"]
    assert c["ObjectLockEnabled"] == "Enabled" and "Rule" not in c, c
    s3.put_object_lock_configuration(Bucket=lb, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    rule = s3.get_object_lock_configuration(Bucket=lb)["ObjectLockConfiguration"]["Rule"]
    assert rule["DefaultRetention"] == {"Mode": "GOVERNANCE", "Days": 1}, rule
    got = error_code(lambda: s3.put_bucket_versioning(
        Bucket=lb, VersioningConfiguration={"Status": "Suspended"}))
    assert got == ("InvalidBucketState", 409), got

    # The default retention: GOVERNANCE, deletable by id only with the bypass.
    v = s3.put_object(Bucket=lb, Key="g", Body=b"governed")["VersionId"]
    h = s3.head_object(Bucket=lb, Key="g")
    assert h["ObjectLockMode"] == "GOVERNANCE" and h["ObjectLockRetainUntilDate"], h
    assert s3.delete_object(Bucket=lb, Key="g")["DeleteMarker"] is True
    got = error_code(lambda: s3.delete_object(Bucket=lb, Key="g", VersionId=v))
    assert got == ("AccessDenied", 403), got
    s3.delete_object(Bucket=lb, Key="g", VersionId=v, BypassGovernanceRetention=True)

    # COMPLIANCE: nobody deletes or shortens it; it can be extended.
    until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=3)
    cv = s3.put_object(Bucket=lb, Key="c", Body=b"kept", ObjectLockMode="COMPLIANCE",
                       ObjectLockRetainUntilDate=until)["VersionId"]
    got = error_code(lambda: s3.delete_object(Bucket=lb, Key="c", VersionId=cv,
                                              BypassGovernanceRetention=True))
    assert got == ("AccessDenied", 403), got
    r = s3.delete_objects(Bucket=lb, BypassGovernanceRetention=True,
                          Delete={"Objects": [{"Key": "c", "VersionId": cv}]})
    assert r["Errors"][0]["Code"] == "AccessDenied", r
    got = error_code(lambda: s3.put_object_retention(
        Bucket=lb, Key="c", VersionId=cv, BypassGovernanceRetention=True,
        Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until - datetime.timedelta(days=1)}))
    assert got == ("AccessDenied", 403), got
    s3.put_object_retention(Bucket=lb, Key="c", VersionId=cv, Retention={
        "Mode": "COMPLIANCE", "RetainUntilDate": until + datetime.timedelta(days=1)})
    r = s3.get_object_retention(Bucket=lb, Key="c", VersionId=cv)["Retention"]
    assert r["Mode"] == "COMPLIANCE" and r["RetainUntilDate"] > until, r
    assert s3.get_object(Bucket=lb, Key="c", VersionId=cv)["Body"].read() == b"kept"

    # A version without retention says so with S3's 404.
    s3.create_bucket(Bucket="boto-vault-plain", ObjectLockEnabledForBucket=True)
    s3.put_object(Bucket="boto-vault-plain", Key="free", Body=b"x")
    got = error_code(lambda: s3.get_object_retention(Bucket="boto-vault-plain", Key="free"))
    assert got == ("NoSuchObjectLockConfiguration", 404), got
    assert s3.get_object_legal_hold(Bucket="boto-vault-plain", Key="free")["LegalHold"]["Status"] == "OFF"
    # A legal hold: no delete, bypass or not, until it is lifted.
    hv = s3.put_object(Bucket=lb, Key="h", Body=b"held", ObjectLockLegalHoldStatus="ON")["VersionId"]
    assert s3.get_object_legal_hold(Bucket=lb, Key="h")["LegalHold"]["Status"] == "ON"
    got = error_code(lambda: s3.delete_object(Bucket=lb, Key="h", VersionId=hv,
                                              BypassGovernanceRetention=True))
    assert got == ("AccessDenied", 403), got
    s3.put_object_legal_hold(Bucket=lb, Key="h", VersionId=hv, LegalHold={"Status": "OFF"})
    s3.delete_object(Bucket=lb, Key="h", VersionId=hv, BypassGovernanceRetention=True)

    # Lock headers and lock configurations where there is no object lock.
    got = error_code(lambda: s3.put_object(Bucket=B, Key="nolock", Body=b"x",
                                           ObjectLockLegalHoldStatus="ON"))
    assert got == ("InvalidRequest", 400), got
    assert error_code(lambda: s3.head_object(Bucket=B, Key="nolock"))[1] == 404
    got = error_code(lambda: s3.put_object_lock_configuration(
        Bucket=B, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"}))
    assert got == ("InvalidBucketState", 409), got
    got = error_code(lambda: s3.put_object(Bucket=lb, Key="x", Body=b"x", ObjectLockMode="GOVERNANCE"))
    assert got == ("InvalidArgument", 400), got
    got = error_code(lambda: s3.put_object_lock_configuration(Bucket=lb, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 0}}}))
    assert got == ("InvalidRetentionPeriod", 400), got


finish()
