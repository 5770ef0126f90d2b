"""Helpers for the SIP-over-WebSocket tests: a self-signed certificate and WebSocket clients."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path
from typing import Any, Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def make_cert(directory: Path, name: str = "b2bua") -> tuple[str, str]:
    """A self-signed certificate for localhost / 127.0.0.1 / ::1; (certfile, keyfile)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = directory / f"{name}.crt", directory / f"{name}.key"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(certfile), str(keyfile)


def client_ssl_context() -> ssl.SSLContext:
    """TLS as a test client: the certificate is self-signed, so not verified."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    # TLS 1.2: with TLS 1.3 about 1 handshake in 70 of the `websockets` sync client stalls until
    # the server's handshake timeout (its upgrade request never reaches the server); a plain ssl
    # client sending the same request over TLS 1.3 never stalled in 300 tries, nor did Chromium.
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def ws_connect(port: int, host: str = "127.0.0.1", subprotocols: Optional[list] = None) -> Any:
    """A blocking WebSocket client (the `websockets` package) on wss://host:port."""
    from websockets.sync.client import connect

    return connect(
        f"wss://{host}:{port}/",
        ssl=client_ssl_context(),
        subprotocols=["sip"] if subprotocols is None else subprotocols,
        open_timeout=15,  # TLS and WebSocket handshakes on a loaded 2-core machine
        close_timeout=2,
        max_size=None,
    )
