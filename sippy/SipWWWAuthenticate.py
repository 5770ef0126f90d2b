"""WWW-Authenticate header: a digest challenge, and the credentials that answer it."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Optional, Union

from sippy.Exceptions.SipParseError import SipParseError
from sippy.Security.SipNonce import DGST_PRIOS, HashOracle, default_oracle
from sippy.SipAuthorization import (
    IsDigestAlgSupported,
    SipAuthorization,
    quote_param,
)
from sippy.SipDigestHF import SipDigestHF


class SipWWWAuthenticate(SipDigestHF):
    """A digest challenge; `genAuthHF()` builds the matching Authorization (class `aclass`)."""

    hf_names = ("www-authenticate",)
    can_name = "WWW-Authenticate"
    aclass: type[SipAuthorization] = SipAuthorization
    ho: HashOracle = default_oracle

    def __init__(
        self,
        body: Optional[str] = None,
        realm: Optional[str] = None,
        nonce: Optional[str] = None,
        enabled_algos: Iterable[int] = DGST_PRIOS,
    ) -> None:
        super().__init__(body)
        if body is not None:
            # Fields appear on first access (see __getattr__).
            return
        self._init_fields()
        self.parsed = True
        self.realm = realm
        self.nonce = nonce if nonce is not None else self.ho.emit_challenge(enabled_algos)
        if realm is None:
            from sippy.SipConf import SipConf

            self.realm = str(SipConf.my_address)

    def _init_fields(self) -> None:
        self.scheme = "Digest"
        self.realm: Optional[str] = None
        self.nonce: Optional[str] = None
        self.algorithm: Optional[str] = None
        # Offered qop values in order, None when the challenge has no qop (RFC 2069 style).
        self.qop: Optional[list[str]] = None
        self.opaque: Optional[str] = None
        self.stale: Optional[str] = None
        self.domain: Optional[str] = None
        self.otherparams: list[tuple[str, str]] = []
        self._snap: Optional[tuple] = None

    def _state(self) -> tuple:
        qop = None if self.qop is None else tuple(self.qop)
        return (
            self.realm,
            self.nonce,
            self.algorithm,
            qop,
            self.opaque,
            self.stale,
            self.domain,
            tuple(self.otherparams),
        )

    def _take(self, lname: str, value: str) -> bool:
        if lname == "qop":
            self.qop = [q.strip() for q in value.split(",") if q.strip()]
        elif lname in ("realm", "nonce", "algorithm", "opaque", "stale", "domain"):
            setattr(self, lname, value)
        else:
            return False
        return True

    def _check(self) -> None:
        if self.realm is None or self.nonce is None:
            raise SipParseError(f"digest challenge without realm/nonce: {self.body!r}")

    def _build(self) -> str:
        rval = f"Digest realm={quote_param(self.realm or '')},nonce={quote_param(self.nonce or '')}"
        if self.qop is not None:
            rval += f",qop={quote_param(','.join(self.qop))}"
        if self.algorithm is not None:
            rval += f",algorithm={self.algorithm}"
        if self.opaque is not None:
            rval += f",opaque={quote_param(self.opaque)}"
        if self.domain is not None:
            rval += f",domain={quote_param(self.domain)}"
        if self.stale is not None:
            rval += f",stale={self.stale}"
        return rval

    def getCopy(self) -> SipWWWAuthenticate:
        new = super().getCopy()
        if self.parsed and self.qop is not None:
            new.qop = list(self.qop)
        return new

    def getRealm(self) -> Optional[str]:
        self._ensure()
        return self.realm

    def getNonce(self) -> Optional[str]:
        self._ensure()
        return self.nonce

    def supportedAlgorithm(self) -> bool:
        """True when genAuthHF can answer this challenge (known algorithm, usable qop)."""
        self._ensure()
        if self.scheme.lower() != "digest":
            return False
        if self.qop is not None and "auth" not in self.qop and "auth-int" not in self.qop:
            return False
        return IsDigestAlgSupported(self.algorithm)

    def genAuthHF(
        self,
        username: str,
        password: str,
        method: str,
        uri: str,
        entity_body: Union[str, bytes, None] = None,
    ) -> SipAuthorization:
        """Credentials answering this challenge. qop=auth-int is used only when offered and a body
        is given (or when it is the only qop offered); raises ValueError if unanswerable."""
        if not self.supportedAlgorithm():
            raise ValueError(f"cannot answer digest challenge: algorithm={self.algorithm} qop={self.qop}")
        auth = self.aclass(realm=self.realm, nonce=self.nonce, uri=uri, username=username)
        auth.algorithm = self.algorithm
        auth.opaque = self.opaque
        if self.qop is not None:
            if "auth-int" in self.qop and (entity_body is not None or "auth" not in self.qop):
                auth.qop = "auth-int"
            else:
                auth.qop = "auth"
            auth.nc = "00000001"
            auth.cnonce = secrets.token_hex(8)
        auth.genResponse(password, method, entity_body)
        return auth
