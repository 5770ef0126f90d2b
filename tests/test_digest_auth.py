"""Authentication that cannot be spoofed: the caller's address for Remote-IP authorisation, and the
digest nonces b2bua_radius issues (origin, staleness, reuse) checked before anything goes to
RADIUS. The call machinery of b2bua_radius on a fake wire with a Clock; the RADIUS side is a
recorder (the real exchange is in tests/test_b2bua_radius_aaa.py)."""

from __future__ import annotations

from typing import Any, Callable, Optional

import pytest
from twisted.internet.task import Clock

from sippy.B2BConfig import parse_args
from sippy.CallController import caller_address, cc_factory
from sippy.CallMap import CallMap
from sippy.Radius_client import RESULT_REJECT
from sippy.RadiusAuthorisation import AuthResult
from sippy.Security.AddressList import AddressList
from sippy.Security.DigestGuard import DigestGuard
from sippy.Security.SipNonce import NONCE_BAD, NONCE_OK, NONCE_STALE, HashOracle
from sippy.SipAuthorization import SipAuthorization
from sippy.SipRequest import SipRequest
from sippy.SipTransactionManager import SipTransactionManager
from sippy.SipWWWAuthenticate import SipWWWAuthenticate
from sippy.Time.MonoTime import MonoTime
from tests.test_load_regressions import Wire

CALLER = ("127.0.0.9", 5062)


def credentials(oracle: HashOracle, qop: bool = False, nc: int = 1) -> SipAuthorization:
    www = SipWWWAuthenticate(realm="127.0.0.1", nonce=oracle.emit_challenge())
    if qop:
        www.qop = ["auth"]
    auth = www.genAuthHF("alice", "wonderland", "INVITE", "sip:200@127.0.0.1")
    if qop:
        auth.nc = f"{nc:08x}"
    return auth


# ----- DigestGuard ------------------------------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    c = Clock()
    c.advance(1000)
    return c


def test_fresh_nonce_answers_one_invite_without_qop(clock: Clock) -> None:
    guard = DigestGuard(HashOracle(clock=clock.seconds))
    auth = credentials(guard.oracle)
    assert guard.check(auth) == NONCE_OK
    assert guard.check(auth) == NONCE_STALE  # a replay, even within the nonce's life
    assert guard.check(credentials(guard.oracle)) == NONCE_OK  # a new challenge's nonce is fine


def test_with_qop_the_nonce_count_must_go_up(clock: Clock) -> None:
    guard = DigestGuard(HashOracle(clock=clock.seconds))
    auth = credentials(guard.oracle, qop=True)
    assert guard.check(auth) == NONCE_OK
    assert guard.check(auth) == NONCE_STALE
    auth.nc = "00000003"
    assert guard.check(auth) == NONCE_OK
    auth.nc = "00000002"
    assert guard.check(auth) == NONCE_STALE
    auth.nc = "zz"
    assert guard.check(auth) == NONCE_BAD


def test_stale_forged_and_foreign_nonces(clock: Clock) -> None:
    guard = DigestGuard(HashOracle(clock=clock.seconds))
    old = credentials(guard.oracle)
    clock.advance(guard.oracle.vtime + 1)
    assert guard.check(old) == NONCE_STALE  # never used, but too old
    foreign = credentials(HashOracle(clock=clock.seconds))  # another process's key
    assert guard.check(foreign) == NONCE_BAD
    forged = credentials(guard.oracle)
    forged.nonce = forged.nonce[:-2] + ("AA" if not forged.nonce.endswith("AA") else "BB")
    assert guard.check(forged) == NONCE_BAD
    garbled = SipAuthorization(body="Digest username=alice")
    assert guard.check(garbled) == NONCE_BAD
    sha = credentials(guard.oracle)
    sha.algorithm = "SHA-512-256"
    assert guard.check(sha) == NONCE_OK  # the default challenge allows every algorithm we know


def test_the_ledger_is_bounded_and_forgets_stale_nonces(clock: Clock) -> None:
    guard = DigestGuard(HashOracle(clock=clock.seconds), max_nonces=3)
    creds = [credentials(guard.oracle) for _ in range(5)]
    assert [guard.check(a) for a in creds] == [NONCE_OK] * 5
    assert len(guard.used) == 3 and guard.evicted == 2
    clock.advance(guard.oracle.vtime + 1)
    assert guard.check(credentials(guard.oracle)) == NONCE_OK
    assert len(guard.used) == 1  # the stale ones went


# ----- the caller's address ---------------------------------------------------------------------


def invite(
    vias: tuple[str, ...] = (), auth: Optional[SipAuthorization] = None, cid: str = "c1", branch: str = "b1"
) -> str:
    hdrs = ["INVITE sip:200@127.0.0.1:5060 SIP/2.0"]
    hdrs += [f"Via: SIP/2.0/UDP {CALLER[0]}:{CALLER[1]};branch=z9hG4bK-{branch}"]
    hdrs += [f"Via: {v}" for v in vias]
    hdrs += [
        f"From: <sip:16045550000@{CALLER[0]}>;tag=t-{cid}",
        "To: <sip:200@127.0.0.1>",
        f"Call-ID: {cid}",
        "CSeq: 1 INVITE",
        f"Contact: <sip:16045550000@{CALLER[0]}:{CALLER[1]}>",
        "Max-Forwards: 70",
    ]
    if auth is not None:
        hdrs.append(f"Authorization: {auth}")
    return "\r\n".join(hdrs) + "\r\nContent-Length: 0\r\n\r\n"


def parsed(text: str, source: tuple[str, int] = CALLER) -> SipRequest:
    req = SipRequest(buf=text.encode())
    req.setSource(source)
    return req


DEEPER = (
    "SIP/2.0/UDP 192.0.2.55:5060;branch=z9hG4bK-x",
    "SIP/2.0/UDP 10.1.1.1:5060;received=198.51.100.7;branch=z9hG4bK-y",
)


def test_caller_address_is_the_datagram_source_unless_a_trusted_proxy_sent_it() -> None:
    req = parsed(invite(DEEPER))
    # A caller that writes extra Vias (as Sippy's old rule read the second one) gains nothing.
    assert caller_address(req, None) == "127.0.0.9"
    assert caller_address(req, AddressList(["192.0.2.0/24"])) == "127.0.0.9"
    # Behind a trusted proxy: the hop before it, and before that one if it is trusted too.
    assert caller_address(req, AddressList(["127.0.0.9"])) == "192.0.2.55"
    assert caller_address(req, AddressList(["127.0.0.9", "192.0.2.55"])) == "198.51.100.7"
    assert caller_address(parsed(invite()), AddressList(["127.0.0.9"])) == "127.0.0.9"


# ----- b2bua_radius's machinery: what goes to RADIUS, what the caller gets ----------------------


class RadiusRecorder:
    """Stands in for RadiusAuthorisation: keeps each request; the test answers it."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def do_auth(
        self,
        username: str,
        caller: Any,
        callee: Any,
        h323: str,
        cid: str,
        remote_ip: str,
        res_cb: Callable[[AuthResult], None],
        realm: Any = None,
        nonce: Any = None,
        *a: Any,
        **kw: Any,
    ) -> Any:
        self.requests.append({"username": username, "remote_ip": remote_ip, "nonce": nonce, "res_cb": res_cb})
        return self

    def cancel(self) -> None:
        pass


class Machinery:
    def __init__(self, *flags: str) -> None:
        self.clock = Clock()
        self.clock.advance(1000)
        self.wire = Wire()
        self.radius = RadiusRecorder()
        cfg = parse_args(["-f", "-A", "0", "-l", "127.0.0.1", *flags])
        cfg["_radius_auth"] = self.radius
        self.guard = DigestGuard(HashOracle(clock=self.clock.seconds))
        self.callmap = CallMap(
            cfg,
            lambda g, req, t: cc_factory(
                g, req, t, callmap=self.callmap, reactor=self.clock, digest_guard=self.guard
            ),
        )
        self.tm = SipTransactionManager(
            cfg, self.callmap.recvRequest, transport=self.wire, reactor=self.clock
        )
        cfg["_sip_tm"] = self.tm

    def send(self, text: str) -> None:
        self.tm.handleIncoming(text.encode(), CALLER, self.wire, MonoTime())

    def answers(self) -> list[str]:
        return [d.decode() for d, a in self.wire.sent if a == CALLER and not d.startswith(b"SIP/2.0 100")]


def www(answer: str) -> SipWWWAuthenticate:
    line = next(x for x in answer.split("\r\n") if x.lower().startswith("www-authenticate:"))
    return SipWWWAuthenticate(body=line.split(":", 1)[1].strip())


def test_remote_ip_authorisation_names_the_source_not_a_via() -> None:
    m = Machinery()
    m.send(invite(DEEPER))
    assert [(r["username"], r["remote_ip"]) for r in m.radius.requests] == [("127.0.0.9", "127.0.0.9")]
    m = Machinery("--trusted_proxies", "127.0.0.0/8")
    m.send(invite(DEEPER))
    assert [(r["username"], r["remote_ip"]) for r in m.radius.requests] == [("192.0.2.55", "192.0.2.55")]


def test_digest_replay_stale_and_foreign_nonces_never_reach_radius() -> None:
    m = Machinery()
    m.send(invite(cid="c1", branch="b1"))
    m.radius.requests[0]["res_cb"](AuthResult((), RESULT_REJECT))
    (first,) = m.answers()
    assert first.startswith("SIP/2.0 401 Unauthorized\r\n")
    challenge = www(first)
    assert challenge.stale is None and m.guard.oracle.check_challenge(challenge.nonce) == NONCE_OK
    auth = challenge.genAuthHF("alice", "wonderland", "INVITE", "sip:200@127.0.0.1")
    m.send(invite(auth=auth, cid="c2", branch="b2"))
    assert [r["nonce"] for r in m.radius.requests[1:]] == [challenge.nonce]  # the real attempt

    # The same credentials again (a replay): a new challenge with stale=true, RADIUS not asked.
    m.send(invite(auth=auth, cid="c3", branch="b3"))
    replayed = m.answers()[-1]
    assert replayed.startswith("SIP/2.0 401 Unauthorized\r\n") and www(replayed).stale == "true"
    assert www(replayed).nonce != challenge.nonce and len(m.radius.requests) == 2

    # An unused nonce past its lifetime: stale=true too.
    old = credentials(m.guard.oracle)
    m.clock.advance(m.guard.oracle.vtime + 1)
    m.send(invite(auth=old, cid="c4", branch="b4"))
    assert www(m.answers()[-1]).stale == "true" and len(m.radius.requests) == 2

    # A nonce this process never issued: challenged, not stale.
    m.send(invite(auth=credentials(HashOracle(clock=m.clock.seconds)), cid="c5", branch="b5"))
    last = m.answers()[-1]
    assert last.startswith("SIP/2.0 401 Unauthorized\r\n") and www(last).stale is None
    assert len(m.radius.requests) == 2
    assert (m.tm.bad_counts["stale_nonce"], m.tm.bad_counts["bad_nonce"]) == (2, 1)

    # The fresh nonce of the last challenge works at once.
    fresh = www(last).genAuthHF("alice", "wonderland", "INVITE", "sip:200@127.0.0.1")
    m.send(invite(auth=fresh, cid="c6", branch="b6"))
    assert len(m.radius.requests) == 3
