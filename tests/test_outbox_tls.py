"""SMTP over TLS and STARTTLS against aiosmtpd with a throwaway certificate (needs `openssl`)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from tests.outbox_fixtures import CUSTOMER, customer_mail, open_mail_desk
from tests.smtpserver import SmtpServer


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed; the TLS tests need it to make a certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return key, cert


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_mail_goes_out_over_an_encrypted_connection_verified_against_the_ca_file(
    db_url: str, certificate: tuple[Path, Path], security: str
) -> None:
    key, cert = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    if security == "starttls":
        server = SmtpServer(tls_context=context, require_starttls=True)
    else:
        server = SmtpServer(ssl_context=context)
    server.start()
    mail = await open_mail_desk(db_url, server, security=security, ca_file=str(cert))
    try:
        await mail.receive(customer_mail())
        assert (await mail.worker().flush()).sent == 1
        assert len(server.recorder.to(CUSTOMER)) == 1
        # Without our CA the certificate is not trusted: the mail stays queued, nothing is sent in clear.
        await mail.receive(customer_mail("Second", sender="dora@customer.example"))
        counts = await mail.worker(ca_file=None).flush()
        assert (counts.sent, counts.deferred) == (0, 1)
        assert server.recorder.to("dora@customer.example") == []
    finally:
        await mail.desk.close()
        server.stop()
