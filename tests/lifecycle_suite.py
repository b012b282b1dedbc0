"""Lifecycle configurations and their effect, with boto3, against an s3d whose lifecycle day
is one second and whose lifecycle passes run every second (s3d/tests/lifecycle.rs starts it).

Prints one line per check and a final 'N passed, N failed'; exits non-zero on failure.
"""
import time

import botocore

from s3suite import check, error_code, finish, s3


def wait_until(what, cond, timeout=30):
    t = time.time()
    while not cond():
        if time.time() - t > timeout:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.25)


def put_rules(bucket, rules):
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})


@check
def configurations_round_trip_and_bad_ones_change_nothing():
    b = "lc-config"
    s3.create_bucket(Bucket=b)
    got = error_code(lambda: s3.get_bucket_lifecycle_configuration(Bucket=b))
    assert got == ("NoSuchLifecycleConfiguration", 404), got
    rules = [
        {"ID": "logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 30}},
        {"ID": "tagged", "Status": "Enabled",
         "Filter": {"And": {"Prefix": "tmp/", "Tags": [{"Key": "k", "Value": "v"}],
                            "ObjectSizeGreaterThan": 10}},
         "Expiration": {"Days": 2}},
        {"ID": "versions", "Status": "Disabled", "Filter": {"Prefix": ""},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 7, "NewerNoncurrentVersions": 3},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}},
        {"ID": "markers", "Status": "Enabled", "Filter": {"Prefix": "m/"},
         "Expiration": {"ExpiredObjectDeleteMarker": True}},
    ]
    put_rules(b, rules)
    back = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=b)["Rules"]}
    assert back["logs"]["Expiration"] == {"Days": 30} and back["logs"]["Filter"] == {"Prefix": "logs/"}
    a = back["tagged"]["Filter"]["And"]
    assert a["Prefix"] == "tmp/" and a["Tags"] == [{"Key": "k", "Value": "v"}] and a["ObjectSizeGreaterThan"] == 10
    assert back["versions"]["Status"] == "Disabled"
    assert back["versions"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 7, "NewerNoncurrentVersions": 3}
    assert back["versions"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert back["markers"]["Expiration"] == {"ExpiredObjectDeleteMarker": True}
    bad = [
        ([], "MalformedXML"),
        ([{"ID": "a", "Status": "Enabled", "Filter": {"Prefix": ""}}], "InvalidArgument"),
        ([{"ID": "a", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 0}}], "InvalidArgument"),
        ([{"ID": "a", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}},
          {"ID": "a", "Status": "Enabled", "Filter": {"Prefix": "x"}, "Expiration": {"Days": 1}}], "InvalidArgument"),
        ([{"ID": "a", "Status": "Enabled", "Filter": {"Prefix": ""},
           "Transitions": [{"Days": 1, "StorageClass": "GLACIER"}]}], "InvalidArgument"),
        ([{"ID": "a", "Status": "Enabled", "Filter": {"Prefix": ""},
           "Expiration": {"Days": 1, "ExpiredObjectDeleteMarker": True}}], "MalformedXML"),
        ([{"ID": "a", "Status": "Enabled", "Filter": {"Tag": {"Key": "k", "Value": "v"}},
           "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}], "InvalidArgument"),
    ]
    for rules_, code in bad:
        got = error_code(lambda: put_rules(b, rules_))
        assert got[0] == code and got[1] == 400, (rules_, got)
    assert len(s3.get_bucket_lifecycle_configuration(Bucket=b)["Rules"]) == 4, "a refused put changed the rules"
    # x-amz-expiration on PUT, HEAD and GET of an object a rule will expire.
    r = s3.put_object(Bucket=b, Key="logs/today", Body=b"x")
    assert 'rule-id="logs"' in r["Expiration"] and "expiry-date=" in r["Expiration"], r
    assert 'rule-id="logs"' in s3.head_object(Bucket=b, Key="logs/today")["Expiration"]
    assert 'rule-id="logs"' in s3.get_object(Bucket=b, Key="logs/today")["Expiration"]
    s3.put_object(Bucket=b, Key="other", Body=b"x")
    assert "Expiration" not in s3.head_object(Bucket=b, Key="other")
    # A rule in the older form (Prefix outside any Filter) is answered in that form.
    older = [{"ID": "old-form", "Status": "Enabled", "Prefix": "test1/", "Expiration": {"Days": 3}}]
    put_rules(b, older)
    assert s3.get_bucket_lifecycle_configuration(Bucket=b)["Rules"] == older
    s3.delete_bucket_lifecycle(Bucket=b)
    got = error_code(lambda: s3.get_bucket_lifecycle_configuration(Bucket=b))
    assert got == ("NoSuchLifecycleConfiguration", 404), got


@check
def rules_expire_objects_versions_markers_and_uploads():
    b = "lc-run"
    s3.create_bucket(Bucket=b)
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=b, Key="tmp/a", Body=b"soon gone")
    s3.put_object(Bucket=b, Key="keep/b", Body=b"stays")
    for body in (b"v1", b"v2", b"v3"):
        s3.put_object(Bucket=b, Key="doc", Body=body)
    stale = s3.create_multipart_upload(Bucket=b, Key="big")["UploadId"]
    put_rules(b, [
        {"ID": "tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 2}},
        {"ID": "old", "Status": "Enabled", "Filter": {"Prefix": ""},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 1, "NewerNoncurrentVersions": 1},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}},
    ])

    def live(key):
        try:
            s3.head_object(Bucket=b, Key=key)
            return True
        except botocore.exceptions.ClientError:
            return False

    def versions(key):
        r = s3.list_object_versions(Bucket=b, Prefix=key)
        return r.get("Versions", []), r.get("DeleteMarkers", [])

    wait_until("tmp/a expired", lambda: not live("tmp/a"))
    assert live("keep/b") and s3.get_object(Bucket=b, Key="doc")["Body"].read() == b"v3"
    wait_until("doc's oldest version deleted", lambda: len(versions("doc")[0]) == 2)
    vs = versions("doc")[0]
    assert [s3.get_object(Bucket=b, Key="doc", VersionId=v["VersionId"])["Body"].read() for v in vs] == [b"v3", b"v2"]
    wait_until("stale upload aborted", lambda: not s3.list_multipart_uploads(Bucket=b).get("Uploads"))
    got = error_code(lambda: s3.list_parts(Bucket=b, Key="big", UploadId=stale))
    assert got == ("NoSuchUpload", 404), got
    # The expired object left a delete marker over its version (versioned bucket).
    vs, markers = versions("tmp/a")
    assert len(markers) == 1 and markers[0]["IsLatest"], markers


finish()
