"""sippy.Radius_client and the radiusclient.conf reader, against a real FreeRADIUS and UDP peers.

Every request goes through the global Twisted reactor, turned by run_reactor_until(); servers
that never answer are plain loopback sockets we own, so the test also counts the retransmissions.
"""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pyrad import packet
from twisted.internet import reactor
from twisted.internet.protocol import DatagramProtocol

from sippy import Radius_client as Radius_client_mod
from sippy.Radius_client import RESULT_ACCEPT, RESULT_NO_ANSWER, RESULT_REJECT, Radius_client
from sippy.RadiusConf import RadiusConf, RadiusConfError, RadiusServer, read_radconf
from tests.radius_util import (
    TOP_DICTIONARY,
    FreeRadius,
    loopback_client,
    run_reactor_until,
    running_freeradius,
    top_dictionary,
)

DICT = top_dictionary()


@pytest.fixture(scope="module")
def radius() -> Iterator[FreeRadius]:
    with running_freeradius() as srv:
        yield srv


class Silent:
    """A loopback UDP port that receives and never answers; counts what arrived."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # The default buffer holds exactly 256 small datagrams, the burst of the 300-request
        # test: one more byte per packet and the kernel would drop some.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.got: list[bytes] = []

    def received(self) -> list[bytes]:
        """Everything that arrived so far (call it while waiting: the socket buffer is small)."""
        while True:
            try:
                self.got.append(self.sock.recv(4096))
            except BlockingIOError:
                return self.got

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def silent() -> Iterator[Silent]:
    s = Silent()
    yield s
    s.close()


REMOTE_IP_ATTRS = [("User-Name", "127.0.0.2"), ("User-Password", "cisco"), ("call-id", "c1")]


# --- against FreeRADIUS -----------------------------------------------------------------------


def test_accept_returns_reply_attributes(radius: FreeRadius) -> None:
    rc = loopback_client(radius.secret, [radius.auth_port], [radius.acct_port])
    res: list[Any] = []
    try:
        rc.do_auth(REMOTE_IP_ATTRS, lambda r, tag: res.append((r, tag)), "tag")
        run_reactor_until(lambda: res)
    finally:
        rc.shutdown()
    (attrs, rcode), tag = res[0]
    assert (rcode, tag) == (RESULT_ACCEPT, "tag")
    assert ("h323-credit-time", "30") in attrs
    assert [v for a, v in attrs if a == "h323-ivr-in"][:2] == [
        "Routing:200@127.0.0.1:5070;expires=30",
        "Routing:300@127.0.0.1:5071;cli=555",
    ]


def test_server_drops_unsigned_requests_and_answers_ours(radius: FreeRadius) -> None:
    """tests/radius/radiusd.conf has require_message_authenticator = yes: an Access-Request
    without Message-Authenticator gets no answer there, so every accepted request in these tests
    proves the client signs its requests; the server signs its replies, which the client checks."""
    rc = loopback_client(radius.secret, [radius.auth_port])
    try:
        pkt, raw = rc.encode(packet.AccessRequest, rc.translate(REMOTE_IP_ATTRS), radius.secret.encode(), 7)
        assert pkt.message_authenticator
        unsigned = packet.AuthPacket(id=8, secret=radius.secret.encode(), dict=DICT)
        unsigned.AddAttribute("User-Name", "127.0.0.2")
        unsigned.AddAttribute("User-Password", unsigned.PwCrypt("cisco"))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(1.0)
            s.sendto(unsigned.RequestPacket(), ("127.0.0.1", radius.auth_port))
            with pytest.raises(TimeoutError):
                s.recv(4096)
            s.sendto(raw, ("127.0.0.1", radius.auth_port))
            reply = pkt.CreateReply(packet=s.recv(4096))
        assert reply.code == packet.AccessAccept and reply.message_authenticator
        assert pkt.VerifyReply(reply, enforce_ma=True)
    finally:
        rc.shutdown()


def test_wrong_password_is_rejected_without_reply_items(radius: FreeRadius) -> None:
    rc = loopback_client(radius.secret, [radius.auth_port], [radius.acct_port])
    res: list[Any] = []
    try:
        rc.do_auth([("User-Name", "127.0.0.2"), ("User-Password", "nope")], res.append)
        run_reactor_until(lambda: res)
    finally:
        rc.shutdown()
    assert res == [((), RESULT_REJECT)]


def test_silent_server_fails_after_timeout_times_retries(radius: FreeRadius, silent: Silent) -> None:
    rc = loopback_client(radius.secret, [silent.port], [silent.port], timeout=0.2, retries=3)
    res: list[Any] = []
    start = time.monotonic()
    try:
        rc.do_auth(REMOTE_IP_ATTRS, res.append)
        run_reactor_until(lambda: res, timeout=3)
    finally:
        rc.shutdown()
    elapsed = time.monotonic() - start
    assert res == [((), RESULT_NO_ANSWER)]
    assert 0.6 <= elapsed < 1.5
    sent = silent.received()
    # Three tries, the same packet each time (same identifier and authenticator).
    assert len(sent) == 3 and sent[0] == sent[1] == sent[2]


def test_second_server_answers_when_first_is_silent(radius: FreeRadius, silent: Silent) -> None:
    rc = loopback_client(
        radius.secret, [silent.port, radius.auth_port], [silent.port, radius.acct_port], 0.2, 2
    )
    res: list[Any] = []
    acct: list[Any] = []
    try:
        rc.do_auth(REMOTE_IP_ATTRS, res.append)
        rc.do_acct(
            [("User-Name", "u"), ("Acct-Status-Type", "Stop"), ("call-id", "failover-acct")], acct.append
        )
        run_reactor_until(lambda: res and acct, timeout=3)
    finally:
        rc.shutdown()
    assert res[0][1] == RESULT_ACCEPT
    assert acct == [((), RESULT_ACCEPT)]
    assert len(silent.received()) == 4  # two tries each for the auth and the acct request
    assert any(r.get("Cisco-AVPair") == ["call-id=failover-acct"] for r in radius.detail_records())


def test_concurrent_requests_get_distinct_identifiers(radius: FreeRadius) -> None:
    rc = loopback_client(radius.secret, [radius.auth_port], [radius.acct_port])
    res: list[Any] = []
    try:
        reqs = [rc.do_auth(REMOTE_IP_ATTRS, res.append) for _ in range(5)]
        ids = {r.pkt_id for r in reqs}
        run_reactor_until(lambda: len(res) == 5)
    finally:
        rc.shutdown()
    assert len(ids) == 5
    assert all(r[1] == RESULT_ACCEPT for r in res)


def test_cancelled_request_never_calls_back(radius: FreeRadius) -> None:
    rc = loopback_client(radius.secret, [radius.auth_port], [radius.acct_port])
    res: list[Any] = []
    other: list[Any] = []
    try:
        rc.do_auth(REMOTE_IP_ATTRS, res.append).cancel()
        rc.do_auth(REMOTE_IP_ATTRS, other.append)
        # The server answers both; the answer to the cancelled one no longer matches anything.
        run_reactor_until(lambda: other and rc.stats["ignored"] == 1)
    finally:
        rc.shutdown()
    assert res == [] and other[0][1] == RESULT_ACCEPT


# --- against a hand-made peer: forged and late replies ----------------------------------------


class Replier(DatagramProtocol):
    """Answers each request with the replies make_replies(request) returns, after delay."""

    def __init__(self, make_replies: Any, delay: float = 0.0) -> None:
        self.make_replies = make_replies
        self.delay = delay
        self.got = 0
        self.requests: list[Any] = []

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        self.got += 1
        req = packet.AuthPacket(packet=data, secret=b"right", dict=DICT)
        self.requests.append(req)
        for raw in self.make_replies(req):
            reactor.callLater(self.delay, self.transport.write, raw, addr)


def accept_with(secret: bytes, req: Any, msg: str, signed: bool = True) -> bytes:
    """An Access-Accept; signed: with a Message-Authenticator (computed with secret)."""
    req.secret = secret
    reply = req.CreateReply(message_authenticator=signed)
    reply.AddAttribute("Reply-Message", msg)
    return reply.ReplyPacket()


def auth_through(
    peer: Replier, timeout: float, await_ignored: bool = False, require_ma: bool = True
) -> tuple[list[Any], Radius_client]:
    """One Access-Request to peer (secret "right", no retry): what the caller got, and the
    client for its counters; await_ignored also waits for a reply the client dropped."""
    port = reactor.listenUDP(0, peer, interface="127.0.0.1")
    rc = loopback_client("right", [port.getHost().port], timeout=timeout, retries=1, require_ma=require_ma)
    res: list[Any] = []
    try:
        rc.do_auth([("User-Name", "x")], res.append)
        run_reactor_until(lambda: res)
        if await_ignored:
            run_reactor_until(lambda: rc.stats["ignored"] >= 1, timeout=2)
    finally:
        rc.shutdown()
        port.stopListening()
    return res, rc


def test_forged_reply_is_ignored_and_genuine_one_accepted() -> None:
    peer = Replier(lambda req: [accept_with(b"forged", req, "forged"), accept_with(b"right", req, "genuine")])
    res, rc = auth_through(peer, timeout=1)
    assert res == [((("Reply-Message", "genuine"),), RESULT_ACCEPT)]
    assert rc.stats["ignored"] == 1


def test_reply_without_message_authenticator_is_refused_by_default() -> None:
    # BlastRADIUS: a valid response authenticator (here: the right secret) is not enough.
    peer = Replier(lambda req: [accept_with(b"right", req, "unsigned", signed=False)])
    res, rc = auth_through(peer, timeout=0.3, await_ignored=True)
    assert res == [((), RESULT_NO_ANSWER)] and rc.stats["ignored"] == 1
    assert peer.got == 1 and peer.requests[0].message_authenticator


def test_reply_without_message_authenticator_accepted_when_not_required() -> None:
    peer = Replier(lambda req: [accept_with(b"right", req, "unsigned", signed=False)])
    res, _ = auth_through(peer, timeout=1, require_ma=False)
    assert res == [((("Reply-Message", "unsigned"),), RESULT_ACCEPT)]


def test_bad_message_authenticator_refused_even_when_not_required() -> None:
    def tampered(req: Any) -> list[bytes]:
        raw = bytearray(accept_with(b"right", req, "tampered"))
        # The Message-Authenticator (type 80, first attribute pyrad writes) loses a bit; the
        # response authenticator is recomputed so that only the MAC is wrong.
        i = raw.index(bytes((80, 18)), 20)
        raw[i + 2] ^= 1
        raw[4:20] = hashlib.md5(bytes(raw[:4]) + req.authenticator + bytes(raw[20:]) + b"right").digest()
        return [bytes(raw)]

    res, rc = auth_through(Replier(tampered), timeout=0.3, await_ignored=True, require_ma=False)
    assert res == [((), RESULT_NO_ANSWER)] and rc.stats["ignored"] == 1


def test_late_reply_after_giving_up_is_ignored() -> None:
    peer = Replier(lambda req: [accept_with(b"right", req, "late")], delay=0.4)
    res, _ = auth_through(peer, timeout=0.15, await_ignored=True)
    assert res == [((), RESULT_NO_ANSWER)]


# --- radiusclient.conf reader -----------------------------------------------------------------


def write(path: str, text: str) -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def test_radconf_reads_servers_secrets_and_options(tmp_path: Any) -> None:
    write(str(tmp_path / "servers"), "# host secret\n127.0.0.1 s3cr3t\nradius2.example:1645 other\n")
    conf = read_radconf(
        write(
            str(tmp_path / "radiusclient.conf"),
            "auth_order radius\n"
            "authserver 127.0.0.1:1812, radius2.example:1645\n"
            "authserver [::1]:1812:inline\n"
            "acctserver 127.0.0.1\n"
            "servers servers\n"
            f"dictionary {TOP_DICTIONARY}\n"
            "radius_timeout 2\nradius_retries 4\nbindaddr 127.0.0.1\n",
        )
    )
    assert conf.authservers == [
        RadiusServer("127.0.0.1", 1812, b"s3cr3t"),
        RadiusServer("radius2.example", 1645, b"other"),
        RadiusServer("::1", 1812, b"inline"),
    ]
    assert conf.acctservers == [RadiusServer("127.0.0.1", 1813, b"s3cr3t")]
    assert (conf.timeout, conf.retries, conf.bindaddr) == (2.0, 4, "127.0.0.1")
    assert conf.dictionary is not None and "h323-ivr-out" not in conf.dictionary.attributes


def base_conf(tmp_path: Any, extra: str = "", dictionary: str = TOP_DICTIONARY) -> str:
    write(str(tmp_path / "servers"), "127.0.0.1 s\n")
    return write(
        str(tmp_path / "radiusclient.conf"),
        f"authserver 127.0.0.1\nacctserver 127.0.0.1\nservers {tmp_path / 'servers'}\n"
        f"dictionary {dictionary}\n{extra}",
    )


def test_radconf_missing_file_names_it() -> None:
    with pytest.raises(RadiusConfError, match=r"^/nonexistent/radiusclient.conf: cannot read .*No such file"):
        read_radconf("/nonexistent/radiusclient.conf")


def test_radconf_unknown_option_names_file_and_line(tmp_path: Any) -> None:
    path = base_conf(tmp_path, "radius_timeout 3\nauthservr 10.0.0.1\n")
    with pytest.raises(RadiusConfError, match=rf"^{path}:6: unknown option 'authservr'"):
        read_radconf(path)


def test_radconf_server_without_secret_names_line(tmp_path: Any) -> None:
    path = base_conf(tmp_path, "acctserver 127.0.0.9:1646\n")
    with pytest.raises(
        RadiusConfError, match=rf"^{path}:5: no shared secret for acctserver 127.0.0.9 in .*servers"
    ):
        read_radconf(path)


def test_radconf_bad_dictionary_line_names_dictionary_and_line(tmp_path: Any) -> None:
    bad = write(str(tmp_path / "dict"), "ATTRIBUTE\tUser-Name\t1\tstring\nATTRIBUTE\tBroken\t2\n")
    with pytest.raises(RadiusConfError, match=rf"^{bad}:2: bad dictionary line"):
        read_radconf(base_conf(tmp_path, dictionary=bad))


def test_radconf_bad_values_name_line(tmp_path: Any) -> None:
    path = base_conf(tmp_path, "radius_retries many\n")
    with pytest.raises(RadiusConfError, match=rf"^{path}:5: radius_retries"):
        read_radconf(path)
    path = base_conf(tmp_path, "authserver 127.0.0.1:99999\n")
    with pytest.raises(RadiusConfError, match=rf"^{path}:5: authserver: bad port"):
        read_radconf(path)


def test_radconf_file_drives_a_working_client(radius: FreeRadius, tmp_path: Any) -> None:
    conf = radius.write_radconf(
        str(tmp_path),
        [f"127.0.0.1:{radius.auth_port}"],
        [f"127.0.0.1:{radius.acct_port}"],
        radius_timeout="1",
    )
    rc = Radius_client.from_file(conf)
    res: list[Any] = []
    try:
        rc.do_auth(REMOTE_IP_ATTRS, res.append)
        run_reactor_until(lambda: res)
    finally:
        rc.shutdown()
    assert res[0][1] == RESULT_ACCEPT


def test_more_than_256_requests_wait_for_a_free_identifier(silent: Silent) -> None:
    server = RadiusServer("127.0.0.1", silent.port, b"s")
    rc = Radius_client(RadiusConf(authservers=[server], dictionary=DICT, timeout=0.2, retries=1))
    res: list[Any] = []
    try:
        for _ in range(300):
            rc.do_auth([("User-Name", "x")], res.append)
        run_reactor_until(lambda: silent.received() and len(res) == 300, timeout=3)
    finally:
        rc.shutdown()
    sent = silent.received()
    # 256 at once (all identifiers in use), the other 44 once the first ones gave up.
    assert len(sent) == 300
    assert len({p[1] for p in sent[:256]}) == 256
    assert all(r == ((), RESULT_NO_ANSWER) for r in res)


def test_waiting_requests_are_bounded_the_next_one_moves_on(silent: Silent, monkeypatch: Any) -> None:
    """Past 256 in flight and MAX_WAITING queued, a request goes on as if the server were silent."""
    monkeypatch.setattr(Radius_client_mod, "MAX_WAITING", 4)
    second = Silent()
    servers = [RadiusServer("127.0.0.1", port, b"s") for port in (silent.port, second.port)]
    rc = Radius_client(RadiusConf(authservers=servers, dictionary=DICT, timeout=5, retries=1))
    res: list[Any] = []
    try:
        for i in range(256 + 4 + 2):
            rc.do_auth([("User-Name", "x")], lambda r, i=i: res.append((i, r)))
        assert res == [], "never called back inside do_auth"
        run_reactor_until(lambda: len(second.received()) == 2, timeout=2)
        assert len(silent.received()) == 256 and rc.stats["refused"] == 2
        assert res == [], "the two refused by the first server wait on the second"
    finally:
        rc.shutdown()
        second.close()


def test_waiting_requests_bound_with_one_server_fails_as_no_answer(silent: Silent, monkeypatch: Any) -> None:
    monkeypatch.setattr(Radius_client_mod, "MAX_WAITING", 4)
    server = RadiusServer("127.0.0.1", silent.port, b"s")
    rc = Radius_client(RadiusConf(authservers=[server], dictionary=DICT, timeout=5, retries=1))
    res: list[Any] = []
    try:
        for i in range(256 + 4 + 2):
            rc.do_auth([("User-Name", "x")], lambda r, i=i: res.append((i, r)))
        run_reactor_until(lambda: len(res) == 2, timeout=1)
        assert res == [(260, ((), RESULT_NO_ANSWER)), (261, ((), RESULT_NO_ANSWER))]
    finally:
        rc.shutdown()


def test_server_given_by_name_is_resolved_on_the_reactor(radius: FreeRadius) -> None:
    server = RadiusServer("localhost", radius.auth_port, radius.secret.encode())
    rc = Radius_client(RadiusConf(authservers=[server], dictionary=DICT, timeout=1, retries=1))
    res: list[Any] = []
    try:
        rc.do_auth(REMOTE_IP_ATTRS, res.append)
        rc.do_auth(REMOTE_IP_ATTRS, res.append)
        run_reactor_until(lambda: len(res) == 2)
    finally:
        rc.shutdown()
    assert [r[1] for r in res] == [RESULT_ACCEPT, RESULT_ACCEPT]


def test_requests_waiting_for_a_server_name_are_bounded(silent: Silent, monkeypatch: Any) -> None:
    """A resolver that never answers: MAX_WAITING requests wait for the name, the next moves on."""
    from twisted.internet import defer

    monkeypatch.setattr(Radius_client_mod, "MAX_WAITING", 3)
    servers = [RadiusServer("radius.example.test", 1812, b"s"), RadiusServer("127.0.0.1", silent.port, b"s")]
    rc = Radius_client(RadiusConf(authservers=servers, dictionary=DICT, timeout=5, retries=1))
    lookups: list[str] = []

    class Stuck:
        def getHostByName(self, name: str) -> Any:
            lookups.append(name)
            return defer.Deferred()

    rc._resolver = Stuck()
    try:
        for _ in range(5):
            rc.do_auth([("User-Name", "x")], lambda r: None)
        run_reactor_until(lambda: len(silent.received()) == 2, timeout=2)
        assert lookups == ["radius.example.test"] and rc.stats["refused"] == 2
        assert len(rc._resolving["radius.example.test"]) == 3
    finally:
        rc.shutdown()
