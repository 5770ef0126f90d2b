"""Authorization header (RFC 2617 / RFC 7616 digest credentials) and the digest arithmetic."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Callable, Optional, Union

from sippy.Exceptions.SipParseError import SipParseError
from sippy.Security.SipNonce import (
    DGST_MD5,
    DGST_MD5SESS,
    DGST_SHA256,
    DGST_SHA256SESS,
    DGST_SHA512,
    DGST_SHA512SESS,
    NONCE_BAD,
    NONCE_OK,
    HashOracle,
    default_oracle,
)
from sippy.SipDigestHF import SipDigestHF, quote_param


def _sha512_256() -> Any:
    return hashlib.new("sha512_256")


# algorithm -> (hash constructor, nonce mask bit); None means the RFC 2617 default, MD5.
_HASH_FUNC: dict[Optional[str], tuple[Callable[[], Any], int]] = {
    None: (hashlib.md5, DGST_MD5),
    "MD5": (hashlib.md5, DGST_MD5),
    "MD5-sess": (hashlib.md5, DGST_MD5SESS),
    "SHA-256": (hashlib.sha256, DGST_SHA256),
    "SHA-256-sess": (hashlib.sha256, DGST_SHA256SESS),
    "SHA-512-256": (_sha512_256, DGST_SHA512),
    "SHA-512-256-sess": (_sha512_256, DGST_SHA512SESS),
}
_ALG_CANON = {k.lower(): k for k in _HASH_FUNC if k is not None}


def canonAlgorithm(algorithm: Optional[str]) -> Optional[str]:
    """Algorithm names are case-insensitive on the wire; map to the spelling used here."""
    if algorithm is None:
        return None
    return _ALG_CANON.get(algorithm.lower(), algorithm)


def IsDigestAlgSupported(algorithm: Optional[str]) -> bool:
    return canonAlgorithm(algorithm) in _HASH_FUNC


def _h(alg: Optional[str], *parts: Union[str, bytes]) -> str:
    m = _HASH_FUNC[canonAlgorithm(alg)][0]()
    m.update(b":".join(p if isinstance(p, bytes) else p.encode() for p in parts))
    return m.hexdigest()


def DigestCalcHA1(
    algorithm: Optional[str], username: str, realm: str, password: str, nonce: str, cnonce: str
) -> str:
    """H(A1) as hex; for -sess algorithms the RFC 7616 form H(H(u:r:p):nonce:cnonce)."""
    ha1 = _h(algorithm, username, realm, password)
    if algorithm is not None and algorithm.lower().endswith("-sess"):
        ha1 = _h(algorithm, ha1, nonce, cnonce)
    return ha1


def DigestCalcResponse(
    algorithm: Optional[str],
    ha1: str,
    nonce: str,
    nc: Optional[str],
    cnonce: Optional[str],
    qop: Optional[str],
    method: str,
    uri: str,
    entity_body: Union[str, bytes, None] = None,
) -> str:
    if qop == "auth-int":
        ha2 = _h(algorithm, method, uri, _h(algorithm, entity_body or b""))
    else:
        ha2 = _h(algorithm, method, uri)
    if qop:
        return _h(algorithm, ha1, nonce, nc or "", cnonce or "", qop, ha2)
    return _h(algorithm, ha1, nonce, ha2)


class SipAuthorization(SipDigestHF):
    """Digest credentials; `verify()` checks them locally, `getDigestAttrs()` feeds RADIUS."""

    hf_names = ("authorization",)
    can_name = "Authorization"
    # The oracle that issued our challenges; it is immutable (key and clock only).
    ho: HashOracle = default_oracle
    _fields = ("username", "realm", "nonce", "uri", "response", "algorithm", "qop", "nc", "cnonce")

    def __init__(
        self,
        body: Optional[str] = None,
        username: Optional[str] = None,
        uri: Optional[str] = None,
        realm: Optional[str] = None,
        nonce: Optional[str] = None,
        response: Optional[str] = None,
        cself: Optional[SipAuthorization] = None,
    ) -> None:
        super().__init__(body)
        if cself is not None:
            self.body = cself.body
            self.parsed = cself.parsed
            self.__dict__.update(cself.__dict__)
            if "otherparams" in cself.__dict__:
                self.otherparams = list(cself.otherparams)
            return
        if body is not None:
            # Fields appear on first access (see __getattr__), so raw credentials cost nothing.
            return
        self._init_fields()
        self.username = username
        self.uri = uri
        self.realm = realm
        self.nonce = nonce
        self.response = response
        self.parsed = True

    def _init_fields(self) -> None:
        self.scheme = "Digest"
        self.username: Optional[str] = None
        self.uri: Optional[str] = None
        self.realm: Optional[str] = None
        self.nonce: Optional[str] = None
        self.response: Optional[str] = None
        self.qop: Optional[str] = None
        self.cnonce: Optional[str] = None
        self.nc: Optional[str] = None
        self.algorithm: Optional[str] = None
        self.opaque: Optional[str] = None
        self.otherparams: list[tuple[str, str]] = []
        self._snap: Optional[tuple] = None

    def _state(self) -> tuple:
        return tuple(getattr(self, f) for f in self._fields) + (self.opaque, tuple(self.otherparams))

    def _take(self, lname: str, value: str) -> bool:
        if lname in self._fields or lname == "opaque":
            setattr(self, lname, value)
            return True
        return False

    def _check(self) -> None:
        if self.username is None or self.realm is None or self.nonce is None or self.uri is None:
            raise SipParseError(f"digest credentials missing username/realm/nonce/uri: {self.body!r}")
        if self.response is None:
            raise SipParseError(f"digest credentials without response: {self.body!r}")

    def _build(self) -> str:
        rval = (
            f"Digest username={quote_param(self.username or '')},realm={quote_param(self.realm or '')},"
            f"nonce={quote_param(self.nonce or '')},uri={quote_param(self.uri or '')},"
            f"response={quote_param(self.response or '')}"
        )
        if self.algorithm is not None:
            rval += f",algorithm={self.algorithm}"
        if self.qop is not None:
            rval += f",qop={self.qop},nc={self.nc},cnonce={quote_param(self.cnonce or '')}"
        if self.opaque is not None:
            rval += f",opaque={quote_param(self.opaque)}"
        return rval

    def genResponse(self, password: str, method: str, entity_body: Union[str, bytes, None] = None) -> None:
        ha1 = DigestCalcHA1(
            self.algorithm, self.username, self.realm, password, self.nonce, self.cnonce or ""
        )
        self.response = DigestCalcResponse(
            self.algorithm, ha1, self.nonce, self.nc, self.cnonce, self.qop, method, self.uri, entity_body
        )

    def verify(
        self,
        password: str,
        method: str,
        entity_body: Union[str, bytes, None] = None,
        check_nonce: bool = True,
    ) -> bool:
        """True when the response matches password; also requires a fresh nonce of ours unless
        check_nonce is False (for credentials answering someone else's challenge)."""
        self._ensure()
        if not IsDigestAlgSupported(self.algorithm):
            return False
        ha1 = DigestCalcHA1(
            self.algorithm, self.username, self.realm, password, self.nonce, self.cnonce or ""
        )
        return self.verifyHA1(ha1, method, entity_body, check_nonce)

    def verifyHA1(
        self,
        ha1: str,
        method: str,
        entity_body: Union[str, bytes, None] = None,
        check_nonce: bool = True,
    ) -> bool:
        self._ensure()
        alg = canonAlgorithm(self.algorithm)
        if alg not in _HASH_FUNC or self.qop not in (None, "auth", "auth-int"):
            return False
        if self.qop is not None and (not self.nc or not self.cnonce):
            return False
        if check_nonce and self.nonceState() != NONCE_OK:
            return False
        expected = DigestCalcResponse(
            alg, ha1, self.nonce, self.nc, self.cnonce, self.qop, method, self.uri, entity_body
        )
        return hmac.compare_digest(expected, (self.response or "").lower())

    def nonceState(self, ho: Optional[HashOracle] = None) -> int:
        """Whether the nonce is one `ho` (default: this process's oracle) issued for this
        algorithm and is still fresh: NONCE_OK, NONCE_STALE or NONCE_BAD."""
        self._ensure()
        alg = canonAlgorithm(self.algorithm)
        if alg not in _HASH_FUNC or self.nonce is None:
            return NONCE_BAD
        return (ho or self.ho).check_challenge(self.nonce, (_HASH_FUNC[alg][1],))

    def getDigestAttrs(self, method: Optional[str] = None) -> dict[str, Optional[str]]:
        """The fields RADIUS digest authentication sends (draft-sterman); every key is present,
        None where the credentials lack it. The method is not in the header: pass the request's."""
        self._ensure()
        attrs: dict[str, Optional[str]] = {f: getattr(self, f) for f in self._fields}
        attrs["method"] = method
        return attrs
