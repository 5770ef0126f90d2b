"""Digest credentials that must not reach RADIUS, end to end: b2bua_radius against a real
FreeRADIUS (tests/radius_e2e/users: alice/wonderland), the caller a plain UDP socket that replays
the Authorization of an accepted INVITE in a new call."""

from __future__ import annotations

import socket
import time
import uuid
from typing import Any, Optional

from sippy.SipWWWAuthenticate import SipWWWAuthenticate
from tests.radius_util import FreeRadius
from tests.test_b2bua_radius_aaa import B2bua, callee_ports, radconf, radius

__all__ = ("callee_ports", "radius")

CALLER_IP = "127.0.0.51"  # unknown to the server by address: Remote-IP is refused, digest asked


def invite(b2b: B2bua, lport: int, cid: str, auth: Optional[str] = None) -> bytes:
    lines = [
        f"INVITE sip:500@127.0.0.1:{b2b.port} SIP/2.0",
        f"Via: SIP/2.0/UDP {CALLER_IP}:{lport};branch=z9hG4bK{uuid.uuid4().hex}",
        f"From: <sip:alice@{CALLER_IP}:{lport}>;tag={cid[:8]}",
        f"To: <sip:500@127.0.0.1:{b2b.port}>",
        f"Call-ID: {cid}",
        "CSeq: 1 INVITE",
        f"Contact: <sip:alice@{CALLER_IP}:{lport}>",
        "Max-Forwards: 70",
    ]
    if auth is not None:
        lines.append(f"Authorization: {auth}")
    return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()


def final_answer(sock: socket.socket, cid: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            text = sock.recv(65535).decode(errors="replace")
        except socket.timeout:
            break
        if f"Call-ID: {cid}" in text and not text.startswith("SIP/2.0 1"):
            return text
    raise AssertionError(f"no final answer for {cid}")


def challenge_of(answer: str) -> SipWWWAuthenticate:
    line = next(x for x in answer.split("\r\n") if x.lower().startswith("www-authenticate:"))
    return SipWWWAuthenticate(body=line.split(":", 1)[1].strip())


def wait_until(cond: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.05)
    return bool(cond())


def test_replayed_authorization_is_challenged_stale_and_not_sent_to_radius(
    radius: FreeRadius, callee_ports: dict[str, int], tmp_path: Any
) -> None:
    with (
        B2bua(tmp_path, radconf(radius, tmp_path), ["-A", "0"]) as b2b,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock,
    ):
        sock.bind((CALLER_IP, 0))
        lport = sock.getsockname()[1]
        sock.sendto(invite(b2b, lport, "spoof-1"), b2b.address)
        first = final_answer(sock, "spoof-1")
        assert first.startswith("SIP/2.0 401 Unauthorized\r\n"), first
        auth = challenge_of(first).genAuthHF("alice", "wonderland", "INVITE", f"sip:500@127.0.0.1:{b2b.port}")
        # The honest retry: RADIUS accepts it and the call is placed.
        sock.sendto(invite(b2b, lport, "spoof-2", str(auth)), b2b.address)
        assert wait_until(lambda: "Login OK: [alice]" in radius.log()), radius.log()
        assert wait_until(lambda: "placing call #1" in b2b.log()), b2b.log()
        # The same Authorization in a new call (a captured INVITE replayed): challenged again.
        sock.sendto(invite(b2b, lport, "spoof-3", str(auth)), b2b.address)
        replayed = final_answer(sock, "spoof-3")
        assert replayed.startswith("SIP/2.0 401 Unauthorized\r\n"), replayed
        assert challenge_of(replayed).stale == "true"
        assert challenge_of(replayed).nonce != auth.nonce
        # A forged nonce: challenged, not stale.
        auth.nonce = "A" * len(auth.nonce)
        sock.sendto(invite(b2b, lport, "spoof-4", str(auth)), b2b.address)
        forged = final_answer(sock, "spoof-4")
        assert forged.startswith("SIP/2.0 401 Unauthorized\r\n") and challenge_of(forged).stale is None
        time.sleep(0.3)
        log = b2b.log()
    # Only the honest attempt reached the server.
    assert radius.log().count("[alice]") == 1, radius.log()
    assert "stale_nonce from 127.0.0.51:" in log and "bad_nonce from 127.0.0.51:" in log


def spoofed_invite(b2b: B2bua, lport: int, cid: str) -> bytes:
    """An INVITE from CALLER_IP whose second Via claims 127.0.0.21 (a caller the billing accepts
    by address): what a caller forges, or what a proxy in front of 127.0.0.21 sends."""
    text = invite(b2b, lport, cid).decode()
    first_via_end = text.index("\r\n", text.index("Via: ")) + 2
    deeper = "Via: SIP/2.0/UDP 127.0.0.21:5060;branch=z9hG4bKdeeper\r\n"
    return (text[:first_via_end] + deeper + text[first_via_end:]).encode()


def test_remote_ip_is_the_source_unless_it_is_a_trusted_proxy(
    radius: FreeRadius, callee_ports: dict[str, int], tmp_path: Any
) -> None:
    for trusted in (False, True):
        flags = ["-A", "0", "-D"] + (["--trusted_proxies", CALLER_IP] if trusted else [])
        with (
            B2bua(tmp_path, radconf(radius, tmp_path), flags) as b2b,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock,
        ):
            sock.bind((CALLER_IP, 0))
            cid = f"via-{int(trusted)}"
            sock.sendto(spoofed_invite(b2b, sock.getsockname()[1], cid), b2b.address)
            if trusted:
                # The proxy's word is taken: 127.0.0.21 is authorised and its first route tried.
                assert wait_until(lambda: "placing call #1 to 127.0.0.1:" in b2b.log()), b2b.log()
                assert "User-Name                        = '127.0.0.21'" in b2b.log()
            else:
                # A Via from anyone else changes nothing: the server is asked about the source.
                answer = final_answer(sock, cid)
                assert answer.startswith("SIP/2.0 403 Auth Failed\r\n"), answer
                assert "User-Name                        = '127.0.0.51'" in b2b.log()
                assert "placing call" not in b2b.log()
