"""Security headers and TLS hygiene against the s3d a Rust test started (s3d/tests/tls.rs):
headers on every kind of answer, TLS versions and suites as a client offering old ones sees
them, and the certificate reloaded on SIGHUP while a connection made before goes on."""
import http.client
import os
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.parse

from s3suite import CA, ENDPOINT, check, finish, s3

URL = urllib.parse.urlparse(ENDPOINT)
HOST, PORT = URL.hostname, URL.port
PID = int(os.environ["S3D_PID"])
LOG = os.environ["S3D_LOG"]
CERT = CA  # the generated certificate, in the data dir
KEY = os.path.join(os.path.dirname(CA), "key.pem")


def trusting(cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False
    return ctx


def any_certificate():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def request(method, path, headers=None, ctx=None):
    c = http.client.HTTPSConnection(HOST, PORT, context=ctx or trusting(CA), timeout=10)
    c.request(method, path, headers=headers or {})
    r = c.getresponse()
    r.read()
    c.close()
    return r


def assert_security_headers(h, what):
    assert h.get("Server") == "Predastore", (what, h.get("Server"))
    assert h.get("X-Content-Type-Options") == "nosniff", (what, dict(h))
    assert h.get("Strict-Transport-Security") == "max-age=31536000", (what, dict(h))
    for name in h.keys():
        assert "version" not in name.lower() or name.lower().startswith("x-amz"), (what, name)


@check
def every_kind_of_answer_carries_the_headers():
    s3.create_bucket(Bucket="hdr")
    s3.put_object(Bucket="hdr", Key="page.html", Body=b"<script>alert(1)</script>", ContentType="text/html")
    signed = s3.generate_presigned_url("get_object", Params={"Bucket": "hdr", "Key": "page.html"})
    answers = {
        "health": request("GET", "/-/health"),
        "metrics": request("GET", "/-/metrics"),
        "unknown admin path": request("GET", "/-/nothing"),
        "anonymous S3 refusal": request("GET", "/hdr/page.html"),
        "missing bucket": request("GET", "/no-such-bucket-here/x"),
        "presigned read": request("GET", urllib.parse.urlparse(signed).path + "?" + urllib.parse.urlparse(signed).query),
        "CORS preflight": request("OPTIONS", "/hdr/page.html", {"Origin": "https://a.example", "Access-Control-Request-Method": "GET"}),
        "bad path": request("GET", "/%ff%fe"),
    }
    assert answers["presigned read"].status == 200
    assert answers["anonymous S3 refusal"].status == 403
    for what, r in answers.items():
        assert_security_headers(r.headers, what)
    meta = s3.head_object(Bucket="hdr", Key="page.html")["ResponseMetadata"]["HTTPHeaders"]
    assert meta["x-content-type-options"] == "nosniff", meta
    assert meta["server"] == "Predastore", meta


def s_client(*args):
    """openssl s_client against the server; (handshake done, output)."""
    p = subprocess.run(
        ["openssl", "s_client", "-connect", f"{HOST}:{PORT}", "-servername", "localhost", *args],
        input=b"", capture_output=True, timeout=20,
    )
    out = (p.stdout + p.stderr).decode(errors="replace")
    return "Cipher is (NONE)" not in out and "New, " in out and p.returncode == 0, out


@check
def only_tls12_and_13_with_modern_suites():
    ok, out = s_client("-tls1_3")
    assert ok and "TLSv1.3" in out, out
    ok, out = s_client("-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256")
    assert ok and "TLSv1.2" in out, out
    # Offered by the client (security level 0 lets it offer them) and refused by the server
    # with an alert: not a client that gave up by itself ("no protocols available").
    for args in [
        ["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"],
        ["-tls1", "-cipher", "DEFAULT@SECLEVEL=0"],
        ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:AES128-SHA:AES256-SHA256@SECLEVEL=0"],
        ["-tls1_2", "-cipher", "AES128-GCM-SHA256:AES256-GCM-SHA384"],
    ]:
        ok, out = s_client(*args)
        assert not ok, (args, out)
        assert "alert handshake failure" in out or "alert protocol version" in out, (args, out)
        assert "written 0 bytes" not in out, (args, out)


def fingerprint(sock):
    return sock.getpeercert(binary_form=True)


def new_certificate(d, name):
    cert, key = os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", key, "-out", cert],
        check=True, capture_output=True,
    )
    return cert, key


def replace(path, source):
    tmp = path + ".new"
    with open(source, "rb") as f, open(tmp, "wb") as g:
        g.write(f.read())
    os.replace(tmp, path)


def served_certificate():
    c = http.client.HTTPSConnection(HOST, PORT, context=any_certificate(), timeout=10)
    c.connect()
    der = fingerprint(c.sock)
    c.close()
    return der


def log_lines(text):
    with open(LOG, encoding="utf-8", errors="replace") as f:
        return sum(text in line for line in f)


@check
def sighup_reloads_the_certificate_and_keeps_open_connections():
    with tempfile.TemporaryDirectory() as d:
        old = served_certificate()
        kept = http.client.HTTPSConnection(HOST, PORT, context=trusting(CA), timeout=10)
        kept.request("GET", "/-/health")
        assert kept.getresponse().read() == b"ok\n"
        assert fingerprint(kept.sock) == old
        new_cert, new_key = new_certificate(d, "renewed")
        replace(KEY, new_key)
        replace(CERT, new_cert)
        reloaded = log_lines("TLS certificate reloaded")
        os.kill(PID, signal.SIGHUP)
        deadline = time.time() + 10
        while served_certificate() == old:
            assert time.time() < deadline, "the new certificate was not served"
            time.sleep(0.1)
        assert log_lines("TLS certificate reloaded") == reloaded + 1
        new = served_certificate()
        # The connection opened before goes on with the certificate it started with.
        kept.request("GET", "/-/health")
        assert kept.getresponse().read() == b"ok\n"
        assert fingerprint(kept.sock) == old
        kept.close()
        # New connections verify against the renewed certificate, and the S3 API works.
        r = request("GET", "/-/health", ctx=trusting(new_cert))
        assert r.status == 200
        # A broken renewal leaves the certificate of before in place.
        with open(CERT, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot one\n-----END CERTIFICATE-----\n")
        refused = log_lines("TLS certificate not reloaded")
        os.kill(PID, signal.SIGHUP)
        deadline = time.time() + 10
        while log_lines("TLS certificate not reloaded") == refused:
            assert time.time() < deadline, "no error logged for a broken certificate"
            time.sleep(0.1)
        assert served_certificate() == new
        assert request("GET", "/-/ready", ctx=trusting(new_cert)).status == 200
        replace(CERT, new_cert)


finish()
