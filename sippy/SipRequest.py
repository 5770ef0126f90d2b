"""SIP requests: parsed from a datagram or built from parts, plus the RFC 3261 derived requests."""

from __future__ import annotations

from typing import Any, Optional

from sippy.Exceptions.SipParseError import SipParseError
from sippy.SipCallId import SipCallId
from sippy.SipCSeq import SipCSeq
from sippy.SipExpires import SipExpires
from sippy.SipHeader import SIP_METHODS, SipHeader, is_token
from sippy.SipMaxForwards import SipMaxForwards
from sippy.SipMsg import SipMsg
from sippy.SipResponse import SipResponse
from sippy.SipUserAgent import SipUserAgent
from sippy.SipVia import SipVia

# Requests whose 1xx/2xx answers establish a dialog, so the answer carries the Record-Route set.
_DIALOG_METHODS = frozenset(("INVITE", "SUBSCRIBE", "REFER", "NOTIFY"))


class SipRequest(SipMsg):
    """A request. The Request-URI is kept as text until someone asks for it (`getRURI`)."""

    def __init__(
        self,
        buf: Optional[bytes | str] = None,
        method: Optional[str] = None,
        ruri: Any = None,
        sipver: str = "SIP/2.0",
        to: Any = None,
        fr0m: Any = None,
        via: Optional[SipVia] = None,
        cseq: Optional[int] = None,
        callid: Optional[SipCallId] = None,
        maxforwards: Optional[SipMaxForwards] = None,
        body: Any = None,
        contact: Any = None,
        routes: Any = (),
        target: Optional[tuple[str, int]] = None,
        user_agent: Any = None,
        expires: Optional[SipExpires] = None,
    ) -> None:
        self.method: Optional[str] = None
        self.sipver: Optional[str] = None
        self.user_agent: Any = None
        self._ruri: Any = None
        self._ruri_text: Optional[str] = None
        self._bad_version: Optional[str] = None
        self._bad_sl: Optional[str] = None
        if buf is not None:
            try:
                SipMsg.__init__(self, buf)
            except SipParseError as e:
                self._attach(e)
                raise
            return
        SipMsg.__init__(self)
        self.method = method
        self._ruri = ruri
        self.sipver = sipver
        if target is None:
            target = routes[0].getUrl().getAddr() if routes else ruri.getAddr()
        self.target = target
        if via is None:
            via = SipVia()
            via.genBranch()
        self.appendHeader(SipHeader(name="via", body=via))
        self.appendHeaders([SipHeader(name="route", body=x) for x in routes])
        self.appendHeader(SipHeader(name="max-forwards", body=maxforwards))
        self.appendHeader(SipHeader(name="from", body=fr0m))
        if to is None:
            from sippy.SipAddress import SipAddress
            from sippy.SipTo import SipTo

            to = SipTo(address=SipAddress(url=ruri.getCopy()))
        self.appendHeader(SipHeader(name="to", body=to))
        self.appendHeader(SipHeader(name="call-id", body=callid))
        self.appendHeader(SipHeader(name="cseq", body=SipCSeq(cseq=cseq, method=method)))
        if contact is not None:
            self.appendHeader(SipHeader(name="contact", body=contact))
        if expires is None and method == "INVITE":
            self.appendHeader(SipHeader(name="expires"))
        elif expires is not None:
            self.appendHeader(SipHeader(name="expires", body=expires))
        if user_agent is not None:
            self.user_agent = user_agent
            if isinstance(user_agent, str):
                user_agent = SipUserAgent(name=user_agent)
        self.appendHeader(SipHeader(name="user-agent", body=user_agent))
        if body is not None:
            self.setBody(body)

    # Start line

    def setSL(self, startline: str) -> None:
        parts = startline.split()
        method = parts[0] if parts and (parts[0] in SIP_METHODS or is_token(parts[0])) else None
        self.method = method
        if len(parts) != 3 or method is None:
            # Answered (400) once the headers needed for an answer are known: see _checkSL.
            self._bad_sl = "Bad Request-Line" if len(parts) != 3 else "Bad Method"
            return
        self._ruri_text = parts[1]
        sipver = parts[2]
        if sipver != "SIP/2.0" and sipver.upper() != "SIP/2.0":
            # Answered (505) once the headers needed for an answer are known: see _checkSL.
            self._bad_version = sipver
            sipver = "SIP/2.0"
        self.sipver = sipver

    def _checkSL(self) -> None:
        if self._bad_sl is not None:
            e = SipParseError(self._bad_sl)
            self._attach(e)
            raise e
        if self._bad_version is not None:
            e = SipParseError(f"Unsupported SIP version {self._bad_version[:16]}")
            e.sip_response = self._answer(505, "Version Not Supported")
            raise e

    def getSL(self) -> str:
        ruri = self._ruri
        return f"{self.method} {self._ruri_text if ruri is None else ruri} {self.sipver}"

    def getMethod(self) -> Optional[str]:
        return self.method

    def getRURI(self) -> Any:
        """The Request-URI as a SipURL, parsed on first call (a bad one raises SipParseError)."""
        ruri = self._ruri
        if ruri is None and self._ruri_text is not None:
            from sippy.SipHeader import _PARSE_FAILURES
            from sippy.SipURL import SipURL

            try:
                ruri = self._ruri = SipURL(self._ruri_text)
            except (SipParseError, *_PARSE_FAILURES) as ex:
                e = SipParseError("Malformed Request-URI")
                self._attach(e)
                raise e from ex
        return ruri

    def setRURI(self, ruri: Any) -> None:
        self._ruri = ruri

    ruri = property(getRURI, setRURI)

    # Answers and derived requests

    def _errorResponse(self, reason: str) -> Optional[SipResponse]:
        return self._answer(400, reason)

    def _answer(self, scode: int, reason: str) -> Optional[SipResponse]:
        """genErrorResponse, or None when no answer is possible (an ACK, no readable Via)."""
        if self.isACK():
            return None
        self._answering = True
        try:
            return self.genErrorResponse(scode, reason)
        except SipParseError:
            return None
        finally:
            self._answering = False

    def isACK(self) -> bool:
        """An ACK by its Request-Line or by its CSeq: either way it is never answered."""
        if self.method == "ACK":
            return True
        for h in self.headers:
            if h.name == "cseq":
                return (h.getValue() or "").rstrip().upper().endswith(" ACK")
        return False

    def genErrorResponse(self, scode: int, reason: str, via_parsed: bool = True) -> SipResponse:
        """An answer that depends on nothing but the top Via: the Vias and the first From, To,
        Call-ID and CSeq are copied as received (unparsed), and the To gets a tag only when it
        parses. A request that fails to parse is answered this way (RFC 3261 8.2.6). Raises
        SipParseError when the top Via is unreadable: there is nowhere to send the answer
        (`via_parsed=False`: the caller sends it elsewhere, see viaSentByReadable)."""
        if via_parsed:
            self.getHFBody("via")
        resp = SipResponse(scode=scode, reason=reason, sipver="SIP/2.0")
        hdrs = [h.getCopy() for h in self.getHFs("via")]
        for name in ("from", "to", "call-id", "cseq"):
            for h in self.headers:
                if h.name == name:
                    hdrs.append(h.getCopy())
                    break
        resp.headers[:0] = hdrs
        if scode > 100:
            for h in hdrs:
                if h.name == "to":
                    try:
                        to = h.getBody()
                        if to.getTag() is None:
                            to.genTag()
                    except SipParseError:
                        pass
        return resp

    def viaSentByReadable(self) -> bool:
        """Whether the top Via, though it does not parse whole, has a readable protocol and
        sent-by (its parameters are what is broken, as in RFC 4475 3.1.2.1)."""
        vias = self.getHFs("via")
        if not vias:
            return False
        head = (vias[0].getValue() or "").partition(";")[0]
        try:
            SipHeader(name="via", bodys=head).getBody().getAddr()
        except SipParseError:
            return False
        return True

    def genResponse(self, scode: int, reason: str, body: Any = None, server: Any = None) -> SipResponse:
        """A response per RFC 3261 8.2.6: Vias, From, To, Call-ID and CSeq copied as received.

        The To tag is left to the UA; Record-Route is copied into 1xx/2xx answers to requests that
        create a dialog (RFC 3261 12.1.1).
        """
        resp = SipResponse(scode=scode, reason=reason, sipver=self.sipver, server=server, body=body)
        hdrs = [h.getCopy() for h in self.getHFs("via")]
        if 100 < scode < 300 and self.method in _DIALOG_METHODS:
            hdrs.extend(h.getCopy() for h in self.getHFs("record-route"))
        hdrs.extend(self.getHF(name).getCopy() for name in ("from", "to", "call-id", "cseq"))
        resp.headers[:0] = hdrs
        return resp

    def genTrying(self) -> SipResponse:
        """The 100 Trying the transaction layer sends for a new INVITE: what genResponse(100,
        "Trying") gives, but with the request's own header objects instead of copies, since it
        is serialised at once and dropped (nothing changes it; copying them was most of its cost)."""
        resp = SipResponse(scode=100, reason="Trying", sipver=self.sipver)
        hdrs = self.getHFs("via")
        hdrs.extend(self.getHF(name) for name in ("from", "to", "call-id", "cseq"))
        resp.headers[:0] = hdrs
        return resp

    def _derived(self, method: str, to: Any, routes: bool) -> SipRequest:
        maxforwards = self.getHFBodys("max-forwards")
        return SipRequest(
            method=method,
            ruri=self.getRURI().getCopy(),
            sipver=self.sipver,
            fr0m=self.getHFBCopy("from"),
            to=to,
            via=self.getHFBCopy("via"),
            callid=self.getHFBCopy("call-id"),
            cseq=self.getHFBody("cseq").getCSeqNum(),
            maxforwards=maxforwards[0].getCopy() if maxforwards else None,
            routes=self.getHFBCopys("route") if routes else (),
            target=self.getTarget(),
            user_agent=self.user_agent,
        )

    def genACK(self, to: Any = None) -> SipRequest:
        """ACK for a non-2xx final answer (RFC 3261 17.1.1.3): same branch and Route set; `to` is
        the To of the response (with the remote tag)."""
        if to is None:
            to = self.getHFBody("to").getCopy()
        return self._derived("ACK", to, True)

    def genCANCEL(self) -> SipRequest:
        """CANCEL for this request (RFC 3261 9.1): same R-URI, top Via, From, To, Call-ID, CSeq
        number and Route set."""
        return self._derived("CANCEL", self.getHFBCopy("to"), True)

    def genRequest(self, method: str, cseq: Optional[int] = None) -> SipRequest:
        """Another request of the same shape (Sippy API); the caller fixes what differs."""
        req = self._derived(method, self.getHFBCopy("to"), False)
        if cseq is not None:
            req.getHFBody("cseq").cseq = cseq
        return req

    def getTIds(self) -> tuple:
        """Every (Call-ID, From tag, CSeq number, CSeq method, branch) a retransmission may match."""
        call_id = str(self.getHFBody("call-id"))
        ftag = self.getHFBody("from").getTag()
        cseq, method = self.getHFBody("cseq").getCSeq()
        return tuple((call_id, ftag, cseq, method, via.getBranch()) for via in self.getHFBodys("via"))
