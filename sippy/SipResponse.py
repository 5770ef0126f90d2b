"""SIP responses: parsed from a datagram or built from parts (usually by SipRequest.genResponse)."""

from __future__ import annotations

from typing import Any, Optional

from sippy.Exceptions.SipParseError import SipParseError
from sippy.SipHeader import SipHeader
from sippy.SipMsg import SipMsg
from sippy.SipServer import SipServer


class SipResponse(SipMsg):
    """A response; a parse error never carries an answer (responses are not answered)."""

    def __init__(
        self,
        buf: Optional[bytes | str] = None,
        scode: Optional[int] = None,
        reason: Optional[str] = None,
        sipver: str = "SIP/2.0",
        to: Any = None,
        fr0m: Any = None,
        callid: Any = None,
        vias: Any = None,
        cseq: Any = None,
        body: Any = None,
        rrs: Any = (),
        server: Any = None,
    ) -> None:
        if buf is not None:
            SipMsg.__init__(self, buf)
            return
        SipMsg.__init__(self)
        self.scode: Optional[int] = scode
        self.reason: Optional[str] = reason
        self.sipver: Optional[str] = sipver
        if vias is not None:
            self.appendHeaders([SipHeader(name="via", body=x) for x in vias])
            self.appendHeaders([SipHeader(name="record-route", body=x) for x in rrs])
            self.appendHeader(SipHeader(name="from", body=fr0m))
            self.appendHeader(SipHeader(name="to", body=to))
            self.appendHeader(SipHeader(name="call-id", body=callid))
            self.appendHeader(SipHeader(name="cseq", body=cseq))
        if server is not None:
            if isinstance(server, str):
                server = SipServer(name=server)
            self.appendHeader(SipHeader(name="server", body=server))
        if body is not None:
            self.setBody(body)

    def setSL(self, startline: str) -> None:
        parts = startline.split(None, 2)
        if len(parts) < 2:
            raise SipParseError("Malformed Status-Line")
        sipver, scode = parts[0], parts[1]
        if sipver.upper() != "SIP/2.0":
            raise SipParseError("Unsupported SIP version in Status-Line")
        if len(scode) != 3 or not (scode.isascii() and scode.isdigit()) or scode[0] not in "123456":
            raise SipParseError("Malformed status code")
        self.sipver = sipver
        self.scode = int(scode)
        self.reason = parts[2] if len(parts) == 3 else ""

    def getSL(self) -> str:
        return f"{self.sipver} {self.scode} {self.reason}"

    def getSCode(self) -> tuple[Optional[int], Optional[str]]:
        return (self.scode, self.reason)

    def setSCode(self, scode: int, reason: str) -> None:
        self.scode = scode
        self.reason = reason

    def getSCodeNum(self) -> Optional[int]:
        return self.scode

    def getSCodeReason(self) -> Optional[str]:
        return self.reason

    def setSCodeReason(self, reason: str) -> None:
        self.reason = reason

    def getRTId(self) -> tuple:
        """(Call-ID, From tag, RSeq, CSeq number, CSeq method): what a PRACK acknowledges."""
        cseq, method = self.getHFBody("cseq").getCSeq()
        return (
            str(self.getHFBody("call-id")),
            self.getHFBody("from").getTag(),
            self.getHFBody("rseq").getNum(),
            cseq,
            method,
        )
