"""Base of the address-type headers (From, To, Contact, Route, ...), plus the comma splitter."""

from __future__ import annotations

import secrets
from typing import Any, Optional

from sippy.SipAddress import SipAddress, plain_name_addr, split_unquoted
from sippy.SipGenericHF import SipGenericHF, keeps_text
from sippy.SipURL import SipURL, _TextURL


def split_top_level(s: str) -> list[str]:
    """Split a header value on commas outside quoted strings and <...>, dropping empty items.

    Used for every multi-value header line (Via, Contact, Route, ...): a comma inside a quoted
    display name or inside a bracketed URI does not separate values.
    """
    if "," not in s:
        return [s.strip()]
    return [p for p in (x.strip() for x in split_unquoted(s, ",", angles=True)) if p]


class SipAddressHF(SipGenericHF):
    """An address header: the value is a `SipAddress`, parsed on first access."""

    # A held call keeps several (its From and To on each leg): slots, no per-instance dict.
    __slots__ = ("address",)

    # From/To tolerate an empty host (`<sip:123@>`) the way Sippy does.
    relaxedparser: bool = False

    @keeps_text
    def __init__(self, body: Optional[str] = None, address: Optional[SipAddress] = None) -> None:
        super().__init__(body)
        if body is None:
            self.parsed = True
            self.address: Optional[SipAddress] = address if address is not None else self._newAddress()

    @classmethod
    def kept(cls, address: SipAddress) -> SipAddressHF:
        """A header of this class with a copy of address, for a dialog to keep for the whole call.

        A plain name-addr (see SipAddress) is held as its text: read again it gives the same
        address, and until then it is copied and written back as it is and takes a tag (setTag)
        without being parsed. A dialog mostly only writes its From and To back, so each costs a
        string instead of an address, a URL and their tables."""
        url = address.url
        # A placeholder host (None) is only known when the message is sent: kept as an address.
        if address.name != "" and (type(url) is _TextURL or url.host is not None):
            text = address.localStr()
            if plain_name_addr(text) is not None:
                return cls(text)
        return cls(address=address.getCopy())

    @staticmethod
    def _newAddress() -> Optional[SipAddress]:
        """The address of a header made with neither text nor address (subclasses pick one)."""
        return None

    def __getattr__(self, name: str) -> Any:
        # `.address` of a header still in raw form: parse on first access.
        if name != "address" or getattr(self, "parsed", True):
            raise AttributeError(name)
        self.parse()
        return self.address

    def parse(self) -> None:
        self.address = SipAddress(self.body, relaxedparser=self.relaxedparser)
        self.parsed = True

    def _addr(self) -> SipAddress:
        return self.address

    def __str__(self) -> str:
        return self.localStr()

    def localStr(self, local_addr: Optional[str] = None, local_port: Optional[int] = None) -> str:
        if not self.parsed:
            return self.body
        return self.address.localStr(local_addr, local_port)

    def getCopy(self) -> SipAddressHF:
        new = super().getCopy()
        if self.parsed and getattr(self, "address", None) is not None:
            new.address = self.address.getCopy()
        return new

    def getUri(self) -> SipAddress:
        """Sippy's name for the whole address."""
        return self._addr()

    def setBody(self, address: SipAddress) -> None:
        self.address = address
        self.parsed = True

    def getUrl(self) -> SipURL:
        return self._addr().url

    def setUrl(self, url: SipURL) -> None:
        self._addr().url = url

    def getTag(self) -> Optional[str]:
        if not self.parsed:
            m = plain_name_addr(self.body)
            if m is not None:
                return m.group(4)
        return self._addr().getParam("tag")

    def setTag(self, value: str) -> None:
        if not self.parsed and value is not None:
            m = plain_name_addr(self.body)
            if m is not None and m.group(4) is None:
                # What the parsed address would write: its text, then the new parameter.
                self.body = m.group(0) + ";tag=" + value
                return
        self._addr().setParam("tag", value)

    def genTag(self) -> str:
        """Set a fresh random tag (32 hex digits, RFC 3261 19.3 wants 32 random bits at least)."""
        tag = secrets.token_hex(16)
        self._addr().setParam("tag", tag)
        return tag

    def delTag(self) -> None:
        self._addr().delParam("tag")
