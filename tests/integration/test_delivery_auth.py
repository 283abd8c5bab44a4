"""A refused token or an untrusted certificate is a clear error and a metric; the shipper
keeps buffering, and once the cause is fixed every line arrives once. Good TLS and
mutual TLS work. Certificates are made in the test with the `cryptography` package."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import urllib.request
from collections.abc import Callable
from pathlib import Path

import docker
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.conftest import Pipeline, wait_until
from tests.integration.delivered import assert_each_once, metric, numbered, run, wait_log

pytestmark = pytest.mark.integration

N = 300


class Pki:
    """A CA that signs server and client certificates, written as PEM files."""

    def __init__(self, folder: Path, name: str) -> None:
        self.folder = folder
        self.name = name
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} test CA")])
        self.cert = (
            self._builder(subject, subject, self.key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.ca_file = self._write(
            f"{name}-ca.crt", self.cert.public_bytes(serialization.Encoding.PEM)
        )

    def _builder(
        self, subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
    ) -> x509.CertificateBuilder:
        now = datetime.datetime.now(datetime.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
        )

    def issue(self, cn: str, client: bool = False) -> tuple[Path, Path]:
        """A certificate (for 127.0.0.1, or a client one) and its key, as files."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        builder = self._builder(subject, self.cert.subject, key.public_key()).add_extension(
            x509.ExtendedKeyUsage([usage]), critical=False
        )
        if not client:
            san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
            builder = builder.add_extension(san, critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return (
            self._write(f"{self.name}-{cn}.crt", cert.public_bytes(serialization.Encoding.PEM)),
            self._write(f"{self.name}-{cn}.key", key_pem),
        )

    def _write(self, name: str, data: bytes) -> Path:
        path = self.folder / name
        path.write_bytes(data)
        return path


def _start_tls_collector(p: Pipeline, pki: Pki, client_ca: Path | None = None) -> None:
    cert, key = pki.issue("collector")
    p.collector.env["LOGPIPE_TLS_CERT"] = str(cert)
    p.collector.env["LOGPIPE_TLS_KEY"] = str(key)
    if client_ca is not None:
        p.collector.env["LOGPIPE_TLS_CLIENT_CA"] = str(client_ca)
    p.shipper.env["LOGPIPE_COLLECTOR_URL"] = f"https://127.0.0.1:{p.port}"
    p.collector.start()
    ctx = ssl.create_default_context(cafile=str(pki.ca_file))
    if client_ca is not None:
        ctx.load_cert_chain(*pki.issue("probe", client=True))

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{p.port}/readyz", context=ctx):
                return True
        except OSError:
            return False

    wait_until(ready, 30)


def _restart_shipper(p: Pipeline, **env: str) -> None:
    assert p.shipper.stop() == 0
    p.shipper.env.update(env)
    p.shipper.start()
    p.wait_shipper()


def _buffering(p: Pipeline, reason: str) -> None:
    """The shipper read every line and holds it in the disk buffer, counting `reason`."""
    wait_until(lambda: metric(p, "logpipe_shipper_batches_failed_total", reason=reason) > 0, 60)
    wait_until(lambda: metric(p, "logpipe_shipper_lines_read_total") >= N, 60)
    wait_until(lambda: metric(p, "logpipe_shipper_buffer_bytes") > 0, 30)


def test_a_wrong_token_is_reported_and_buffered_until_the_collector_accepts_it(
    pipeline_factory: Callable[..., Pipeline], docker_client: docker.DockerClient
) -> None:
    """401s are logged with what to check and counted; after the fix every line arrives once."""
    p = pipeline_factory(token="not-the-token")
    p.start()
    c = run(docker_client, p, numbered("line", N))
    line = wait_log(p, "batch not delivered")
    assert line["log.level"] == "error"
    assert "401" in line["reason"]
    assert "LOGPIPE_TOKEN" in line["reason"]
    _buffering(p, "unauthorized")
    assert p.status()["collector_error"]
    p.collector.stop()
    p.collector.env["LOGPIPE_TOKENS"] = f"{p.token},not-the-token"
    p.collector.start()
    assert_each_once(p, c.id, "line", N)


def test_an_untrusted_collector_certificate_is_reported_and_buffered(
    pipeline_factory: Callable[..., Pipeline], docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    """A collector certificate from another CA is a clear TLS error; the right CA file fixes it."""
    right, wrong = Pki(tmp_path, "right"), Pki(tmp_path, "wrong")
    p = pipeline_factory(ca_file=str(wrong.ca_file))
    _start_tls_collector(p, right)
    p.shipper.start()
    p.wait_shipper()
    c = run(docker_client, p, numbered("line", N))
    line = wait_log(p, "batch not delivered")
    assert line["log.level"] == "error"
    assert "certificate verify failed" in line["reason"]
    assert "LOGPIPE_CA_FILE" in line["reason"]
    _buffering(p, "tls")
    _restart_shipper(p, LOGPIPE_CA_FILE=str(right.ca_file))
    assert_each_once(p, c.id, "line", N)


def test_mutual_tls_needs_the_client_certificate_and_works_with_it(
    pipeline_factory: Callable[..., Pipeline], docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    """Without a client certificate the collector refuses us (a TLS error); with one, all arrive."""
    pki = Pki(tmp_path, "mtls")
    p = pipeline_factory(ca_file=str(pki.ca_file))
    _start_tls_collector(p, pki, client_ca=pki.ca_file)
    p.shipper.start()
    p.wait_shipper()
    c = run(docker_client, p, numbered("line", N))
    line = wait_log(p, "batch not delivered")
    assert "TLS failed" in line["reason"]
    _buffering(p, "tls")
    cert, key = pki.issue("shipper", client=True)
    _restart_shipper(p, LOGPIPE_CLIENT_CERT=str(cert), LOGPIPE_CLIENT_KEY=str(key))
    assert_each_once(p, c.id, "line", N)
