"""Contact header: a UA's direct address, or `*` in a REGISTER that removes all bindings."""

from __future__ import annotations

from typing import Optional

from sippy.Exceptions.SipParseError import SipParseError
from sippy.SipAddress import SipAddress
from sippy.SipAddressHF import SipAddressHF
from sippy.SipURL import SipURL


class SipContact(SipAddressHF):
    __slots__ = ("asterisk",)

    hf_names = ("contact", "m")
    can_name = "Contact"
    compact_name = "m"
    isMulti = True

    def __init__(self, body: Optional[str] = None, address: Optional[SipAddress] = None) -> None:
        super().__init__(body, address)
        self.asterisk = body is not None and body.strip() == "*"

    @staticmethod
    def _newAddress() -> SipAddress:
        # Placeholder host: the transport's address is written when the message is sent.
        return SipAddress(name="Anonymous", url=SipURL())

    def parse(self) -> None:
        if self.asterisk:
            self.address = None
            self.parsed = True
            return
        super().parse()

    def _addr(self) -> SipAddress:
        if self.asterisk:
            raise SipParseError("Contact: * has no address")
        return super()._addr()

    def localStr(self, local_addr: Optional[str] = None, local_port: Optional[int] = None) -> str:
        if self.asterisk:
            return "*"
        return super().localStr(local_addr, local_port)

    def getCopy(self) -> SipContact:
        new = super().getCopy()
        new.asterisk = self.asterisk
        return new

    def getExpires(self) -> Optional[int]:
        """The binding's expires parameter in seconds, None when absent."""
        v = self._addr().getParam("expires")
        if v is None:
            return None
        if not v.isdigit() or not v.isascii():
            raise SipParseError(f"bad Contact expires: {v!r}")
        return int(v)

    def setExpires(self, secs: Optional[int]) -> None:
        if secs is None:
            self._addr().delParam("expires")
        else:
            self._addr().setParam("expires", str(secs))

    def getQ(self) -> Optional[float]:
        """The q preference (0..1), None when absent."""
        v = self._addr().getParam("q")
        if v is None:
            return None
        try:
            q = float(v)
        except ValueError as ex:
            raise SipParseError(f"bad Contact q: {v!r}") from ex
        if not 0.0 <= q <= 1.0:
            raise SipParseError(f"Contact q out of range: {v!r}")
        return q
