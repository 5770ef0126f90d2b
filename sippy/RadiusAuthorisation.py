"""RADIUS authorisation of an incoming call, Cisco style, for the b2bua_radius call controller.

Two methods, as in Sippy: Remote-IP (the caller's address is the user name, the password is a
fixed word, the billing engine decides by address and numbers) and Digest (the caller's
Authorization header goes to the server as draft-sterman-aaa-sip attributes; the server, which
knows the password, decides). The controller gets an `AuthResult` with the routes and overrides
already picked out of the reply, and the log says what crossed the wire.
"""

from __future__ import annotations

import time
from typing import Any, Callable, NamedTuple, Optional

from sippy.CiscoCDR import format_attributes, party_attributes
from sippy.Radius_client import RESULT_ACCEPT, RESULT_NO_ANSWER, RESULT_REJECT, Radius_client, RadiusRequest
from sippy.SipLogger import SIPLOG_ERR, SIPLOG_INFO

REMOTE_IP_PASSWORD = "cisco"


class AuthResult(NamedTuple):
    """`(attributes, rcode)` as Sippy's controllers index it, plus named views of the reply.

    rcode: 0 accepted, 1 rejected (by the server, or by a non-zero h323-return-code), -1 no server
    answered.
    """

    attributes: tuple[tuple[str, str], ...]
    rcode: int

    @property
    def accepted(self) -> bool:
        return self.rcode == RESULT_ACCEPT

    @property
    def no_answer(self) -> bool:
        return self.rcode == RESULT_NO_ANSWER

    def values(self, name: str) -> list[str]:
        return [v for a, v in self.attributes if a == name]

    def _ivr_in(self, prefix: str) -> list[str]:
        return [v[len(prefix) :] for v in self.values("h323-ivr-in") if v.startswith(prefix)]

    @property
    def routes(self) -> list[str]:
        """Route strings of each `h323-ivr-in = Routing:...`, in reply order, for B2BRoute."""
        return self._ivr_in("Routing:")

    @property
    def cli(self) -> Optional[str]:
        """CLI override (`h323-ivr-in = CLI:...`); '' means send no CLI; None: no override."""
        found = self._ivr_in("CLI:")
        return found[0] if found else None

    @property
    def caller_name(self) -> Optional[str]:
        """Caller name override (`h323-ivr-in = CNAM:...`), same convention as cli."""
        found = self._ivr_in("CNAM:")
        return found[0] if found else None

    @property
    def credit_time(self) -> Optional[int]:
        return _first_int(self.values("h323-credit-time"))

    @property
    def return_code(self) -> Optional[int]:
        return _first_int(self.values("h323-return-code"))


def _first_int(values: list[str]) -> Optional[int]:
    for v in values:
        try:
            return int(v)
        except ValueError:
            continue
    return None


class RadiusAuthorisation:
    """`do_auth(...)` for each new call; the result arrives through `res_cb(AuthResult)`."""

    def __init__(self, radius_client: Radius_client, *, logger: Any = None) -> None:
        self.radius_client = radius_client
        self.logger = logger

    def do_auth(
        self,
        username: str,
        caller: Optional[str],
        callee: Optional[str],
        h323_cid: str,
        sip_cid: str,
        remote_ip: str,
        res_cb: Callable[[AuthResult], None],
        realm: Optional[str] = None,
        nonce: Optional[str] = None,
        uri: Optional[str] = None,
        response: Optional[str] = None,
        extra_attributes: Optional[list[tuple[str, Any]]] = None,
        *,
        method: str = "INVITE",
        algorithm: Optional[str] = None,
        qop: Optional[str] = None,
        cnonce: Optional[str] = None,
        nc: Optional[str] = None,
    ) -> RadiusRequest:
        """Send the Access-Request; digest method when realm, nonce, uri and response are all
        given (qop/cnonce/nc too when the caller used qop), Remote-IP method otherwise.

        Returns the request: `cancel()` it if the call goes away first (res_cb then never runs).
        """
        sip_cid = str(sip_cid)
        attributes: list[tuple[str, Any]]
        if realm is not None and nonce is not None and uri is not None and response is not None:
            attributes = [
                ("User-Name", username),
                ("Digest-Realm", realm),
                ("Digest-Nonce", nonce),
                ("Digest-Method", method),
                ("Digest-URI", uri),
                ("Digest-Algorithm", algorithm or "MD5"),
                ("Digest-User-Name", username),
            ]
            for name, value in (("Digest-QOP", qop), ("Digest-CNonce", cnonce), ("Digest-Nonce-Count", nc)):
                if value is not None:
                    attributes.append((name, value))
            attributes.append(("Digest-Response", response))
        else:
            attributes = [("User-Name", remote_ip), ("User-Password", REMOTE_IP_PASSWORD)]
        attributes.extend(party_attributes(caller, callee, h323_cid, sip_cid))
        attributes.extend((("h323-remote-address", remote_ip), ("h323-session-protocol", "sipv2")))
        if extra_attributes:
            attributes.extend(extra_attributes)
        if self._enabled():
            self.logger.write("sending AAA request:\n", format_attributes(attributes), call_id=sip_cid)
        return self.radius_client.do_auth(attributes, self._process_result, res_cb, sip_cid, time.monotonic())

    def _enabled(self) -> bool:
        return self.logger is not None and self.logger.isEnabledFor(SIPLOG_INFO)

    def _process_result(
        self,
        results: tuple[tuple[tuple[str, str], ...], int],
        res_cb: Callable[[AuthResult], None],
        sip_cid: str,
        btime: float,
    ) -> None:
        attributes, rcode = results
        result = AuthResult(attributes, rcode)
        if rcode == RESULT_ACCEPT and result.return_code:
            # The billing engine says no even though the password matched.
            result = AuthResult(attributes, RESULT_REJECT)
        if rcode == RESULT_NO_ANSWER:
            if self.logger is not None and self.logger.isEnabledFor(SIPLOG_ERR):
                delay = time.monotonic() - btime
                msg = f"Error sending AAA request (delay is {delay:.3f})\n"
                self.logger.write(msg, call_id=sip_cid, level=SIPLOG_ERR)
        elif self._enabled():
            delay = time.monotonic() - btime
            verdict = "accepted" if result.accepted else "rejected"
            msg = f"AAA request {verdict} (delay is {delay:.3f}), processing response:\n"
            self.logger.write(msg, format_attributes(attributes), call_id=sip_cid)
        res_cb(result)
