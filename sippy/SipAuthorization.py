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
    HashOracle,
    default_oracle,
)
from sippy.SipGenericHF import SipGenericHF


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


def parse_auth_params(body: str) -> tuple[str, list[tuple[str, str, bool]]]:
    """Split `Scheme name=value, name="quoted, value"` into the scheme and (name, value, quoted).

    Quoted values are returned with their escapes removed.
    """
    scheme, _, rest = body.strip().partition(" ")
    if not scheme or not rest.strip():
        raise SipParseError(f"bad credentials/challenge: {body!r}")
    params = []
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " \t,":
            i += 1
        if i >= n:
            break
        eq = rest.find("=", i)
        if eq == -1:
            raise SipParseError(f"auth parameter without a value: {body!r}")
        name = rest[i:eq].strip()
        if not name or any(c in name for c in ' \t,"'):
            raise SipParseError(f"bad auth parameter name: {body!r}")
        i = eq + 1
        while i < n and rest[i] in " \t":
            i += 1
        if i < n and rest[i] == '"':
            i += 1
            out = []
            while i < n and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < n:
                    i += 1
                out.append(rest[i])
                i += 1
            if i >= n:
                raise SipParseError(f"unterminated quoted auth parameter: {body!r}")
            i += 1
            params.append((name, "".join(out), True))
        else:
            end = rest.find(",", i)
            end = n if end == -1 else end
            value = rest[i:end].strip()
            if not value or any(c in value for c in ' \t"'):
                raise SipParseError(f"bad auth parameter value: {body!r}")
            params.append((name, value, False))
            i = end
        while i < n and rest[i] in " \t":
            i += 1
        if i < n and rest[i] != ",":
            raise SipParseError(f"junk after auth parameter: {body!r}")
    if not params:
        raise SipParseError(f"no auth parameters: {body!r}")
    return scheme, params


def quote_param(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class SipAuthorization(SipGenericHF):
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

    def __getattr__(self, name: str) -> Any:
        # Only reached for fields of a header still in raw form: parse it, then answer.
        if name.startswith("__") or self.__dict__.get("parsed", True):
            raise AttributeError(name)
        self.parse()
        return getattr(self, name)

    def _state(self) -> tuple:
        return tuple(getattr(self, f) for f in self._fields) + (self.opaque, tuple(self.otherparams))

    def parse(self) -> None:
        self._init_fields()
        self.scheme, params = parse_auth_params(self.body)
        if self.scheme.lower() != "digest":
            raise SipParseError(f"unsupported auth scheme: {self.scheme!r}")
        for name, value, quoted in params:
            lname = name.lower()
            if lname in self._fields or lname == "opaque":
                setattr(self, lname, value)
            else:
                self.otherparams.append((name, quote_param(value) if quoted else value))
        if self.username is None or self.realm is None or self.nonce is None or self.uri is None:
            raise SipParseError(f"digest credentials missing username/realm/nonce/uri: {self.body!r}")
        if self.response is None:
            raise SipParseError(f"digest credentials without response: {self.body!r}")
        self.parsed = True
        self._snap = self._state()

    def _ensure(self) -> None:
        if not self.parsed:
            self.parse()

    def __str__(self) -> str:
        return self.localStr()

    def localStr(self, local_addr: Optional[str] = None, local_port: Optional[int] = None) -> str:
        if self.body is not None and (not self.parsed or self._state() == self._snap):
            return self.body
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
        return rval + "".join(f",{k}={v}" for k, v in self.otherparams)

    def getCopy(self) -> SipAuthorization:
        new = super().getCopy()
        if self.parsed:
            new.otherparams = list(self.otherparams)
        return new

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
        if check_nonce and not self.ho.validate_challenge(self.nonce, (_HASH_FUNC[alg][1],)):
            return False
        expected = DigestCalcResponse(
            alg, ha1, self.nonce, self.nc, self.cnonce, self.qop, method, self.uri, entity_body
        )
        return hmac.compare_digest(expected, (self.response or "").lower())

    def getDigestAttrs(self, method: Optional[str] = None) -> dict[str, Optional[str]]:
        """The fields RADIUS digest authentication sends (draft-sterman); every key is present,
        None where the credentials lack it. The method is not in the header: pass the request's."""
        self._ensure()
        attrs: dict[str, Optional[str]] = {f: getattr(self, f) for f in self._fields}
        attrs["method"] = method
        return attrs
