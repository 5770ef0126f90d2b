"""A SIP party for media tests: a UDP SIP socket and an RTP socket, driven step by step.

SIPp cannot say, in the middle of a call, which media address it was given; a media test needs
exactly that (send RTP to the advertised address, count what arrives). ``Party`` writes the few
SIP messages such a test needs (INVITE, re-INVITE, ACK, BYE, CANCEL, answers) by hand and parses
what comes back, blocking with timeouts. Loopback only.
"""

from __future__ import annotations

import re
import secrets
import socket
import struct
from typing import Optional


class Msg:
    """One received SIP message: start line, headers (lower-case name -> values), body."""

    def __init__(self, data: bytes, source: tuple) -> None:
        text = data.decode("utf-8", "replace")
        head, _, self.body = text.partition("\r\n\r\n")
        lines = head.split("\r\n")
        self.start = lines[0]
        self.source = source
        self.headers: dict[str, list[str]] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers.setdefault(name.strip().lower(), []).append(value.strip())

    @property
    def method(self) -> Optional[str]:
        return None if self.start.startswith("SIP/2.0") else self.start.split()[0]

    @property
    def code(self) -> int:
        return int(self.start.split()[1]) if self.start.startswith("SIP/2.0") else 0

    def h(self, name: str) -> str:
        return self.headers[name][0]

    def media(self) -> list[tuple[str, int]]:
        """(address, port) of each m= line (its own c= or the session's)."""
        out = []
        session_c = None
        current: Optional[list] = None
        for line in self.body.splitlines():
            if line.startswith("c="):
                addr = line.split()[-1]
                if current is None:
                    session_c = addr
                else:
                    current[0] = addr
            elif line.startswith("m="):
                current = [session_c, int(line.split()[1])]
                out.append(current)
        return [(a, p) for a, p in out]

    def attrs(self) -> list[str]:
        return [line[2:] for line in self.body.splitlines() if line.startswith("a=")]


def sdp(
    host: str, port: int, direction: str = "sendrecv", c_addr: Optional[str] = None, version: int = 1
) -> str:
    atype = "IP6" if ":" in host else "IP4"
    c_addr = c_addr or host
    return (
        f"v=0\r\no=- 42 {version} IN {atype} {host}\r\ns=-\r\nc=IN {atype} {c_addr}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
        f"a=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\na={direction}\r\n"
    )


def _ctype(body: str) -> str:
    return "Content-Type: application/sdp\n" if body else ""


def _hp(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Party:
    """Caller or callee. ``dialog`` holds what in-dialog requests need once a call is set up."""

    def __init__(self, host: str = "127.0.0.1", name: str = "party") -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.host = host
        self.name = name
        self.sip = socket.socket(family, socket.SOCK_DGRAM)
        self.sip.bind((host, 0))
        self.port = self.sip.getsockname()[1]
        self.rtp = socket.socket(family, socket.SOCK_DGRAM)
        self.rtp.bind((host, 0))
        self.rtp_port = self.rtp.getsockname()[1]
        self.media_host = host
        self.cseq = 1
        self.dialog: dict[str, str] = {}
        self.peer: Optional[tuple] = None
        self.invite: Optional[Msg] = None

    def rebind_rtp(self, host: str) -> None:
        """A new RTP socket (new port; ``host`` may be of the other family than SIP's)."""
        self.rtp.close()
        self.rtp = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind((host, 0))
        self.media_host = host
        self.rtp_port = self.rtp.getsockname()[1]

    def offer(self, direction: str = "sendrecv", c_addr: Optional[str] = None, version: int = 1) -> str:
        """SDP for our RTP socket."""
        return sdp(self.media_host, self.rtp_port, direction, c_addr, version)

    def close(self) -> None:
        self.sip.close()
        self.rtp.close()

    # ----- raw I/O -----

    def send(self, text: str, addr: tuple) -> None:
        head, _, body = text.partition("\n\n")  # the templates' head lines end in \n alone
        head = head.replace("\n", "\r\n")
        data = f"{head}\r\nContent-Length: {len(body.encode())}\r\n\r\n{body}"
        self.sip.sendto(data.encode(), addr[:2])

    def recv(self, timeout: float = 5.0, skip: tuple[int, ...] = (100,)) -> Msg:
        """The next message, skipping the listed provisional codes; retransmissions are returned
        like any other message."""
        self.sip.settimeout(timeout)
        while True:
            data, src = self.sip.recvfrom(65536)
            msg = Msg(data, src)
            if msg.code not in skip:
                return msg

    def expect(self, what: str, timeout: float = 5.0) -> Msg:
        """The next message that is ``what`` (a method, or a response code as text); requests
        that are not it are answered 200 (e.g. a BYE crossing), responses dropped."""
        seen = []
        while True:
            try:
                msg = self.recv(timeout)
            except OSError:
                raise AssertionError(f"{self.name}: no {what} within {timeout} s; got {seen}") from None
            if (msg.method or str(msg.code)) == what:
                return msg
            seen.append(msg.start)
            if msg.method not in (None, "ACK"):
                self.respond(msg, 200)

    # ----- building requests and answers -----

    def _via(self) -> str:
        return f"SIP/2.0/UDP {_hp(self.host, self.port)};branch=z9hG4bK{secrets.token_hex(8)};rport"

    def call(self, b2b: tuple, cld: str = "5551234", body: Optional[str] = None) -> None:
        """Send the INVITE of a new call (offer on our RTP socket; ``body=""``: no offer)."""
        self.peer = b2b
        ftag, cid = secrets.token_hex(6), secrets.token_hex(10)
        self.dialog = {
            "from": f"<sip:caller@{_hp(self.host, self.port)}>;tag={ftag}",
            "to": f"<sip:{cld}@{_hp(b2b[0], b2b[1])}>",
            "call-id": cid,
            "ruri": f"sip:{cld}@{_hp(b2b[0], b2b[1])}",
        }
        self.cseq = 1
        self._invite_via = self._via()
        self._send_invite(body if body is not None else self.offer())

    def _send_invite(self, body: str) -> None:
        d = self.dialog
        self.last_invite = (
            f"INVITE {d['ruri']} SIP/2.0\nVia: {self._invite_via}\nMax-Forwards: 70\nFrom: {d['from']}\n"
            f"To: {d['to']}\nCall-ID: {d['call-id']}\nCSeq: {self.cseq} INVITE\n"
            f"Contact: <sip:{self.name}@{_hp(self.host, self.port)}>\n{_ctype(body)}\n{body}"
        )
        assert self.peer is not None
        self.send(self.last_invite, self.peer)

    def reinvite(self, body: str) -> None:
        self.cseq += 1
        self._invite_via = self._via()
        self._send_invite(body)

    def connected(self, ok: Msg, body: str = "") -> None:
        """A 2xx to our INVITE: take the To tag and target, ACK it (``body``: an answer in the ACK)."""
        self.dialog["to"] = ok.h("to")
        contact = re.search(r"<([^>]+)>", ok.h("contact"))
        if contact:
            self.dialog["ruri"] = contact.group(1)
        self.ack(ok, body)

    def ack(self, resp: Msg, body: str = "") -> None:
        d = self.dialog
        via = self._invite_via if resp.code >= 300 else self._via()
        ruri = d["ruri"]
        to = resp.h("to")
        assert self.peer is not None
        self.send(
            f"ACK {ruri} SIP/2.0\nVia: {via}\nMax-Forwards: 70\nFrom: {d['from']}\nTo: {to}\n"
            f"Call-ID: {d['call-id']}\nCSeq: {self.cseq} ACK\n{_ctype(body)}\n{body}",
            self.peer,
        )

    def cancel(self) -> None:
        d = self.dialog
        assert self.peer is not None
        self.send(
            f"CANCEL {d['ruri']} SIP/2.0\nVia: {self._invite_via}\nMax-Forwards: 70\nFrom: {d['from']}\n"
            f"To: {d['to']}\nCall-ID: {d['call-id']}\nCSeq: {self.cseq} CANCEL\n\n",
            self.peer,
        )

    def bye(self) -> None:
        d = self.dialog
        self.cseq += 1
        assert self.peer is not None
        self.send(
            f"BYE {d['ruri']} SIP/2.0\nVia: {self._via()}\nMax-Forwards: 70\nFrom: {d['from']}\n"
            f"To: {d['to']}\nCall-ID: {d['call-id']}\nCSeq: {self.cseq} BYE\n\n",
            self.peer,
        )

    def answered(self, invite: Msg, code: int = 200, body: Optional[str] = None) -> None:
        """Callee: answer an INVITE (the first one also sets up our side of the dialog)."""
        if ";tag=" not in invite.h("to"):  # a new dialog
            tag = secrets.token_hex(6)
            self.invite = invite
            self.peer = invite.source
            contact = re.search(r"<([^>]+)>", invite.h("contact"))
            self.dialog = {
                "from": f"{invite.h('to')};tag={tag}",
                "to": invite.h("from"),
                "call-id": invite.h("call-id"),
                "ruri": contact.group(1) if contact else "",
            }
            self.cseq = 100
        self.respond(invite, code, body)

    def respond(self, req: Msg, code: int, body: Optional[str] = None, reason: str = "Whatever") -> None:
        to = req.h("to")
        if ";tag=" not in to and req.h("call-id") == self.dialog.get("call-id"):
            to = self.dialog["from"]
        vias = "".join(f"Via: {v}\n" for v in req.headers["via"])
        extra = f"Contact: <sip:{self.name}@{_hp(self.host, self.port)}>\n" if req.method == "INVITE" else ""
        ctype = "Content-Type: application/sdp\n" if body else ""
        self.send(
            f"SIP/2.0 {code} {reason}\n{vias}From: {req.h('from')}\nTo: {to}\nCall-ID: {req.h('call-id')}\n"
            f"CSeq: {req.h('cseq')}\n{extra}{ctype}\n{body or ''}",
            req.source,
        )

    # ----- media -----

    def send_rtp(self, addr: tuple, n: int = 5, ssrc: int = 0x1234) -> None:
        for seq in range(n):
            header = struct.pack("!BBHII", 0x80, 0, seq, seq * 160, ssrc)
            self.rtp.sendto(header + b"\xff" * 160, addr[:2])

    def count_rtp(self, timeout: float = 1.0) -> int:
        """Datagrams with an RTP version-2 header arriving within timeout (after the first one,
        each further one may take up to 0.2 s)."""
        n = 0
        self.rtp.settimeout(timeout)
        try:
            while True:
                data = self.rtp.recv(2048)
                if len(data) >= 12 and data[0] >> 6 == 2:
                    n += 1
                self.rtp.settimeout(0.2)
        except OSError:
            return n
