"""The collector serves HTTPS, and with a client CA it admits only shippers holding a cert."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from collector.wire import NDJSON, PATH_LOGS
from tests.conftest import ES_URL, Process, free_port, wait_until

pytestmark = pytest.mark.integration


def openssl(*args: str, cwd: Path) -> None:
    """Run the openssl command line in `cwd`."""
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(folder: Path) -> None:
    """A CA, a server cert for 127.0.0.1 and a client cert, all signed by the CA."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
            "-keyout", "ca.key", "-out", "ca.pem", cwd=folder)  # fmt: skip
    for name, ext in (
        ("server", "subjectAltName=IP:127.0.0.1"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=folder)  # fmt: skip
        (folder / f"{name}.ext").write_text(ext + "\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext",
                "-out", f"{name}.pem", cwd=folder)  # fmt: skip


def batch() -> bytes:
    """One source and one log line with a fresh timestamp."""
    source = {"kind": "source", "src": 0, "host": "tls-host", "container_id": "e" * 64,
              "container_name": "tls", "image": "busybox"}  # fmt: skip
    line = {"kind": "log", "src": 0, "stream": "stdout", "ts": time.time_ns(), "message": "tls"}
    return (json.dumps(source) + "\n" + json.dumps(line)).encode()


def post(url: str, token: str, context: ssl.SSLContext) -> int:
    """POST a batch over HTTPS; the status."""
    headers = {"Content-Type": NDJSON, "Authorization": f"Bearer {token}"}
    request = urllib.request.Request(url + PATH_LOGS, data=batch(), headers=headers)
    with urllib.request.urlopen(request, timeout=30, context=context) as resp:
        return int(resp.status)


def test_mutual_tls_admits_only_clients_with_a_certificate(tmp_path: Path, template: None) -> None:
    """Over HTTPS a client cert signed by the client CA is required; with it, batches go in."""
    make_pki(tmp_path)
    port, token = free_port(), uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGPIPE_")} | {
        "LOGPIPE_ES_URL": ES_URL,
        "LOGPIPE_LISTEN": f"127.0.0.1:{port}",
        "LOGPIPE_TOKENS": token,
        "LOGPIPE_ROUTING__DATASET": "tls." + uuid.uuid4().hex[:8],
        "LOGPIPE_TLS_CERT": str(tmp_path / "server.pem"),
        "LOGPIPE_TLS_KEY": str(tmp_path / "server.key"),
        "LOGPIPE_TLS_CLIENT_CA": str(tmp_path / "ca.pem"),
    }
    proc = Process(
        "collector", [sys.executable, "-m", "collector", "serve"], env, tmp_path / "c.log"
    )
    proc.start()
    url = f"https://127.0.0.1:{port}"
    try:
        with_cert = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        with_cert.load_cert_chain(tmp_path / "client.pem", tmp_path / "client.key")
        ready = urllib.request.Request(url + "/readyz")

        def is_ready() -> bool:
            try:
                with urllib.request.urlopen(ready, timeout=2, context=with_cert) as resp:
                    status: int = resp.status  # urlopen's answer is untyped
                    return status == 200
            except (OSError, urllib.error.HTTPError):
                return False

        wait_until(is_ready, 30)
        assert post(url, token, with_cert) == 200
        without_cert = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
            post(url, token, without_cert)
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
    finally:
        proc.stop()
