"""Digest challenges and credentials: RFC 2617/7616 vectors, round trips, nonces, bad input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

import sippy.SipWWWAuthenticate as www_mod
from sippy.Exceptions.SipParseError import SipParseError
from sippy.Security.SipNonce import (
    DGST_MD5,
    DGST_PRIOS,
    DGST_SHA256,
    NONCE_BAD,
    NONCE_OK,
    NONCE_STALE,
    HashOracle,
)
from sippy.SipAuthorization import SipAuthorization
from sippy.SipProxyAuthenticate import SipProxyAuthenticate
from sippy.SipProxyAuthorization import SipProxyAuthorization
from sippy.SipWWWAuthenticate import SipWWWAuthenticate
from tests.conftest import mutated_text

RFC2617_CHALLENGE = (
    'Digest realm="testrealm@host.com", qop="auth,auth-int", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)
RFC2617_CREDENTIALS = (
    'Digest username="Mufasa", realm="testrealm@host.com", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, nc=00000001, '
    'cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", '
    'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)
RFC7616_CHALLENGE = (
    'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, '
    'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
    'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
)
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"


def test_rfc2617_worked_example_parses_and_verifies() -> None:
    auth = SipAuthorization(RFC2617_CREDENTIALS)
    assert str(auth) == RFC2617_CREDENTIALS
    assert auth.verify("Circle Of Life", "GET", check_nonce=False)
    assert not auth.verify("Circle of Life", "GET", check_nonce=False)
    assert not auth.verify("Circle Of Life", "POST", check_nonce=False)
    # Not a nonce of ours: refused when nonces are checked.
    assert not auth.verify("Circle Of Life", "GET")
    assert str(auth) == RFC2617_CREDENTIALS
    assert (auth.username, auth.realm, auth.uri, auth.qop, auth.nc, auth.cnonce, auth.opaque) == (
        "Mufasa",
        "testrealm@host.com",
        "/dir/index.html",
        "auth",
        "00000001",
        "0a4f113b",
        "5ccc069c403ebaf9f0171e9517f40e41",
    )


def test_rfc2617_challenge_generates_the_worked_response(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(www_mod.secrets, "token_hex", lambda n: "0a4f113b")
    ch = SipWWWAuthenticate(RFC2617_CHALLENGE)
    assert ch.getRealm() == "testrealm@host.com"
    assert ch.getNonce() == "dcd98b7102dd2f0e8b11d0f600bfb0c093"
    assert ch.qop == ["auth", "auth-int"]
    assert str(ch) == RFC2617_CHALLENGE
    auth = ch.genAuthHF("Mufasa", "Circle Of Life", "GET", "/dir/index.html")
    assert type(auth) is SipAuthorization
    assert auth.response == "6629fae49393a05397450978507c4ef1"
    assert (auth.qop, auth.nc, auth.cnonce, auth.opaque) == ("auth", "00000001", "0a4f113b", ch.opaque)
    wire = str(auth)
    assert 'response="6629fae49393a05397450978507c4ef1"' in wire
    assert SipAuthorization(wire).verify("Circle Of Life", "GET", check_nonce=False)


@pytest.mark.parametrize(
    "alg,expected",
    [
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ],
)
def test_rfc7616_vectors(monkeypatch: pytest.MonkeyPatch, alg: str, expected: str) -> None:
    monkeypatch.setattr(www_mod.secrets, "token_hex", lambda n: RFC7616_CNONCE)
    ch = SipWWWAuthenticate(RFC7616_CHALLENGE.replace("SHA-256", alg))
    # Fields of a raw header parse on first access.
    assert ch.algorithm == alg
    assert ch.getRealm() == "http-auth@example.org"
    auth = ch.genAuthHF("Mufasa", "Circle of Life", "GET", "/dir/index.html")
    assert auth.response == expected
    back = SipAuthorization(str(auth))
    assert back.algorithm == alg
    assert back.verify("Circle of Life", "GET", check_nonce=False)


def test_local_challenge_round_trip_and_digest_attrs() -> None:
    ch = SipWWWAuthenticate(realm="sippy.example")
    ch.qop = ["auth"]
    wire_ch = str(ch)
    assert wire_ch.startswith('Digest realm="sippy.example",nonce="')
    peer = SipWWWAuthenticate(wire_ch)
    creds = peer.genAuthHF("alice", "s3cret", "INVITE", "sip:bob@sippy.example")
    got = SipAuthorization(str(creds))
    assert got.verify("s3cret", "INVITE")
    assert not got.verify("wrong", "INVITE")
    attrs = got.getDigestAttrs("INVITE")
    assert attrs == {
        "realm": "sippy.example",
        "nonce": ch.nonce,
        "method": "INVITE",
        "uri": "sip:bob@sippy.example",
        "algorithm": None,
        "username": "alice",
        "qop": "auth",
        "nc": "00000001",
        "cnonce": creds.cnonce,
        "response": creds.response,
    }


def test_tampered_and_foreign_nonces_are_refused() -> None:
    ch = SipWWWAuthenticate(realm="r")
    creds = SipWWWAuthenticate(str(ch)).genAuthHF("u", "p", "BYE", "sip:x@r")
    assert SipAuthorization(str(creds)).verify("p", "BYE")
    other = HashOracle()
    creds2 = SipWWWAuthenticate(realm="r", nonce=other.emit_challenge()).genAuthHF("u", "p", "BYE", "sip:x@r")
    assert not SipAuthorization(str(creds2)).verify("p", "BYE")
    bad = creds.getCopy()
    bad.nonce = creds.nonce[:-2] + ("AA" if not creds.nonce.endswith("AA") else "BB")
    bad.genResponse("p", "BYE")
    assert not bad.verify("p", "BYE")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_nonce_goes_stale_after_vtime() -> None:
    clock = FakeClock()
    ho = HashOracle(clock=clock, vtime=32)
    nonce = ho.emit_challenge(DGST_PRIOS)
    assert ho.check_challenge(nonce, (DGST_MD5,)) == NONCE_OK
    clock.now += 31.9
    assert ho.validate_challenge(nonce, (DGST_SHA256,))
    clock.now += 0.2
    assert ho.check_challenge(nonce, (DGST_MD5,)) == NONCE_STALE
    # An Authorization answering that nonce now fails even with the right password.
    auth = SipWWWAuthenticate(realm="r", nonce=nonce).genAuthHF("u", "p", "INVITE", "sip:r")
    auth.ho = ho
    assert not auth.verify("p", "INVITE")
    assert auth.verify("p", "INVITE", check_nonce=False)


def test_nonce_algorithm_mask_and_garbage() -> None:
    ho = HashOracle(clock=FakeClock())
    md5_only = ho.emit_challenge((DGST_MD5,))
    assert ho.check_challenge(md5_only, (DGST_MD5,)) == NONCE_OK
    assert ho.check_challenge(md5_only, (DGST_SHA256,)) == NONCE_BAD
    for junk in ("", "abc", "dcd98b7102dd2f0e8b11d0f600bfb0c093", "é" * 40, md5_only + "x", "!!!!"):
        assert ho.check_challenge(junk) == NONCE_BAD
    assert ho.emit_challenge() != ho.emit_challenge()


def test_auth_int_and_sess_and_sha512_256_round_trip() -> None:
    for alg in ("MD5-sess", "SHA-256-sess", "SHA-512-256", "SHA-512-256-sess"):
        ch = SipWWWAuthenticate(realm="r")
        ch.algorithm = alg
        ch.qop = ["auth-int", "auth"]
        body = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n"
        creds = SipWWWAuthenticate(str(ch)).genAuthHF("u", "pw", "INVITE", "sip:r", entity_body=body)
        assert creds.qop == "auth-int"
        got = SipAuthorization(str(creds))
        assert got.verify("pw", "INVITE", entity_body=body)
        assert not got.verify("pw", "INVITE", entity_body=body + "x")
    # Without a body, plain auth is chosen when offered.
    ch = SipWWWAuthenticate(realm="r")
    ch.qop = ["auth-int", "auth"]
    assert ch.genAuthHF("u", "pw", "INVITE", "sip:r").qop == "auth"


def test_no_qop_rfc2069_style() -> None:
    ch = SipWWWAuthenticate('Digest realm="r", nonce="n1"')
    creds = ch.genAuthHF("u", "pw", "REGISTER", "sip:r")
    assert creds.qop is None and creds.nc is None and creds.cnonce is None
    assert str(creds) == f'Digest username="u",realm="r",nonce="n1",uri="sip:r",response="{creds.response}"'
    assert SipAuthorization(str(creds)).verify("pw", "REGISTER", check_nonce=False)


def test_proxy_challenge_gives_proxy_authorization() -> None:
    ch = SipProxyAuthenticate('Digest realm="p", nonce="n", qop="auth", stale=TRUE')
    assert ch.getCanName("proxy-authenticate") == "Proxy-Authenticate"
    assert ch.getNonce() == "n"
    assert ch.stale == "TRUE"
    creds = ch.genAuthHF("u", "pw", "INVITE", "sip:x@p")
    assert isinstance(creds, SipProxyAuthorization)
    assert creds.getCanName("proxy-authorization") == "Proxy-Authorization"
    assert SipProxyAuthorization.hf_names == ("proxy-authorization",)
    assert SipWWWAuthenticate.hf_names == ("www-authenticate",)


def test_unsupported_challenges() -> None:
    assert not SipWWWAuthenticate('Digest realm="r", nonce="n", algorithm=FOO').supportedAlgorithm()
    assert not SipWWWAuthenticate('Digest realm="r", nonce="n", qop="auth-conf"').supportedAlgorithm()
    with pytest.raises(ValueError):
        SipWWWAuthenticate('Digest realm="r", nonce="n", algorithm=FOO').genAuthHF("u", "p", "X", "sip:r")
    assert not SipAuthorization(
        'Digest username="u",realm="r",nonce="n",uri="sip:r",response="00",algorithm=FOO'
    ).verify("p", "INVITE", check_nonce=False)


def test_edited_credentials_are_rebuilt_and_other_params_kept() -> None:
    a = SipAuthorization(
        'Digest username="u", realm="r", nonce="n", uri="sip:r", response="x", foo="b,c", bar=1'
    )
    a.parse()
    a.response = "y"
    assert str(a) == 'Digest username="u",realm="r",nonce="n",uri="sip:r",response="y",foo="b,c",bar=1'
    c = a.getCopy()
    c.otherparams.append(("baz", "2"))
    assert "baz" not in str(a)


BAD = [
    "",
    "Digest",
    'Digest realm="r"',
    'Digest realm="r", nonce="n',
    'Digest realm="r" nonce="n"',
    'Digest realm="r", nonce',
    'Digest =x, realm="r", nonce="n"',
    'Digest realm=a b, nonce="n"',
]


@pytest.mark.parametrize("text", BAD)
def test_malformed_challenges_raise_sip_parse_error(text: str) -> None:
    with pytest.raises(SipParseError):
        SipWWWAuthenticate(text).getRealm()


@pytest.mark.parametrize(
    "text",
    BAD
    + [
        'Digest realm="r", nonce="n", uri="u", response="x"',
        'Digest username="u", realm="r", nonce="n", uri="u"',
    ],
)
def test_malformed_credentials_raise_sip_parse_error(text: str) -> None:
    with pytest.raises(SipParseError):
        SipAuthorization(text).getDigestAttrs()


@settings(max_examples=300, deadline=None)
@given(mutated_text([RFC2617_CHALLENGE, RFC2617_CREDENTIALS, RFC7616_CHALLENGE], '=,"\\ ;aZ0é\t\x00'))
def test_mutated_auth_headers_raise_only_sip_parse_error(text: str) -> None:
    for hf in (SipWWWAuthenticate(text), SipAuthorization(text)):
        assert str(hf.getCopy()) == text
        try:
            realm = hf.realm
        except SipParseError:
            continue
        if hf.scheme.lower() != "digest":
            # Another scheme: opaque, unchanged, never answered or verified as digest.
            assert realm is None and str(hf) == text
            continue
        assert realm is not None
        assert str(hf) == text
        if isinstance(hf, SipWWWAuthenticate):
            if hf.supportedAlgorithm():
                creds = hf.genAuthHF("u", "p", "INVITE", "sip:x")
                assert SipAuthorization(str(creds)).verify("p", "INVITE", check_nonce=False)
        else:
            hf.verify("p", "INVITE")
            hf.response = "z"
            assert SipAuthorization(str(hf)).getDigestAttrs()["response"] == "z"


OPAQUE_CREDENTIALS = ['Basic realm="r"', "NoOneKnowsThisScheme opaque-data=here", "Bearer x y z,,"]


@pytest.mark.parametrize("text", OPAQUE_CREDENTIALS)
def test_unknown_auth_scheme_kept_as_opaque_text(text: str) -> None:
    # RFC 4475 3.3.7: not an error; such credentials are no digest credentials.
    creds = SipAuthorization(text)
    assert creds.username is None and str(creds) == text
    assert str(creds.getCopy()) == text
    challenge = SipWWWAuthenticate(text)
    assert not challenge.supportedAlgorithm() and str(challenge) == text
