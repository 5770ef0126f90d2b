"""SIP over TLS (RFC 3261 section 26.2.1, `sips:` and `transport=tls`): Tcp_server's connections
and framing over Twisted's TLS. The listener's certificate and key come from PEM files, checked at
start-up (`sippy.Wss_server.tls_options`: one line naming a bad file). Connections we open verify
the peer's certificate against `ca_file` (None: the system's trust store) and its name or IP
address, unless `verify` is off; to a peer that asks for ours (mutual TLS) they show the
listener's certificate.
"""

from __future__ import annotations

from typing import Any, Optional

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from twisted.internet import ssl

from sippy.Tcp_server import Tcp_server, Tcp_server_opts
from sippy.Wss_server import WssConfigError, _read, tls_options


class Tls_server_opts(Tcp_server_opts):
    """`Tcp_server_opts` plus the PEM files of the listener (`certfile`, `keyfile`), the CA file
    peers we connect to are verified against (`ca_file`; None: the system store) and `verify`."""

    def __init__(
        self,
        laddress: tuple[Optional[str], int],
        data_callback: Any,
        *,
        certfile: Optional[str] = None,
        keyfile: Optional[str] = None,
        ca_file: Optional[str] = None,
        verify: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(laddress, data_callback, **kwargs)
        self.certfile = certfile
        self.keyfile = keyfile
        self.ca_file = ca_file
        self.verify = verify


def trust_root(ca_file: Optional[str]) -> Any:
    """The CAs of ca_file (PEM, one or more), or the platform's; WssConfigError names a bad file."""
    if ca_file is None:
        return ssl.platformTrust()
    try:
        certs = x509.load_pem_x509_certificates(_read(ca_file, "CA"))
    except ValueError:
        raise WssConfigError(f"CA file {ca_file}: no PEM certificate in it") from None
    return ssl.trustRootFromCertificates(
        [ssl.Certificate.loadPEM(cert.public_bytes(Encoding.PEM)) for cert in certs]
    )


class Tls_server(Tcp_server):
    """One listening TLS socket and its connections, in and out."""

    transport = "tls"
    uri_transport = "tls"

    def __init__(self, global_config: Any, uopts: Tls_server_opts, reactor: Any = None) -> None:
        if uopts.certfile is None or uopts.keyfile is None:
            raise WssConfigError("Tls_server needs certfile and keyfile")
        self._server_tls = tls_options(uopts.certfile, uopts.keyfile)
        self._trust = trust_root(uopts.ca_file) if uopts.verify else None
        # What we show a peer that asks who we are (mutual TLS): the listener's certificate.
        self._client_cert = ssl.PrivateCertificate.loadPEM(
            _read(uopts.certfile, "certificate") + b"\n" + _read(uopts.keyfile, "key")
        )
        super().__init__(global_config, uopts, reactor)

    def _listen(self, port: int, factory: Any, host: str) -> Any:
        return self.reactor.listenSSL(port, factory, self._server_tls, interface=host)

    def _connect(self, host: str, port: int, factory: Any) -> Any:
        if self._trust is None:
            client_tls: Any = ssl.CertificateOptions(
                verify=False,
                privateKey=self._client_cert.privateKey.original,
                certificate=self._client_cert.original,
            )
        else:
            client_tls = ssl.optionsForClientTLS(
                host, trustRoot=self._trust, clientCertificate=self._client_cert
            )
        return self.reactor.connectSSL(host, port, factory, client_tls, timeout=self.uopts.connect_timeout)
