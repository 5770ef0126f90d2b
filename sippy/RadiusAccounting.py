"""RADIUS accounting of one call leg in the Cisco CDR style billing engines expect.

One `RadiusAccounting` per leg (`origin='answer'` for the caller's leg, `'originate'` for the
callee's): an optional Start when the leg connects, optional periodic Alive (interim) records,
and exactly one Stop, also for calls that failed or were cancelled (session time 0, with the
cause). Times and codes come in as plain parameters (MonoTime or epoch floats), so the
controller needs no particular UA class; `ua_conn`/`ua_disc` adapt a Sippy-style UA's
`conn_cbs`/`disc_cbs` call.
"""

from __future__ import annotations

import time
from typing import Any, Optional, Sequence

from sippy.CiscoCDR import cisco_time, format_attributes, h323_disconnect_cause, party_attributes, realtime
from sippy.Radius_client import RESULT_ACCEPT, RESULT_NO_ANSWER, Radius_client
from sippy.RadiusAcctSpool import AcctSpool
from sippy.SipLogger import SIPLOG_ERR, SIPLOG_INFO
from sippy.Time.Timeout import Timeout, default_reactor

# release-source values (Cisco): who ended the call.
RELEASE_SOURCE = {"caller": "2", "callee": "4"}
RELEASE_SOURCE_INTERNAL = "8"


class RadiusAccounting:
    """Accounting record set of one leg; see docs/internals.md, section RADIUS."""

    def __init__(
        self,
        radius_client: Radius_client,
        origin: str,
        lperiod: Optional[float] = None,
        send_start: bool = False,
        *,
        logger: Any = None,
        ms_precision: bool = False,
        reactor: Any = None,
        spool: Optional[AcctSpool] = None,
    ) -> None:
        """spool: send through it (records no server answers are kept and sent again later)."""
        self.radius_client = radius_client
        self.spool = spool
        self.origin = origin
        self.lperiod = lperiod
        self.send_start = send_start
        self.logger = logger
        self.ms_precision = ms_precision
        self.reactor = reactor if reactor is not None else default_reactor()
        self._attributes: list[tuple[str, Any]] = [
            ("h323-call-origin", origin),
            ("h323-call-type", "VoIP"),
            ("h323-session-protocol", "sipv2"),
        ]
        self.sip_cid: Optional[str] = None
        self.complete = False
        self.crec = False
        self.drec = False
        self.setup_time: Optional[float] = None
        self.connect_time: Optional[float] = None
        self._connect_clock = 0.0
        self.user_agent: Optional[str] = None
        self.p1xx_ts: Optional[float] = None
        self.p100_ts: Optional[float] = None
        self.el: Optional[Timeout] = None

    def setParams(
        self,
        username: str,
        caller: Optional[str],
        callee: Optional[str],
        h323_cid: str,
        sip_cid: str,
        remote_ip: str,
        h323_in_cid: Optional[str] = None,
    ) -> None:
        """Who and what the leg is; nothing is sent before this is called."""
        self._attributes.append(("User-Name", username))
        self._attributes.extend(party_attributes(caller, callee, h323_cid, sip_cid))
        self._attributes.extend((("Acct-Session-Id", sip_cid), ("h323-remote-address", remote_ip)))
        if h323_in_cid is not None and h323_in_cid != h323_cid:
            self._attributes.append(("h323-incoming-conf-id", h323_in_cid))
        self.sip_cid = str(sip_cid)
        self.complete = True

    def addAttributes(self, attributes: Sequence[tuple[str, Any]]) -> None:
        """Extra attributes sent in every record of this leg (the po_proc routines add them)."""
        self._attributes.extend(attributes)

    def _note(self, remote_ua: Optional[str], p1xx_ts: Any, p100_ts: Any) -> None:
        if remote_ua is not None and self.user_agent is None:
            self.user_agent = remote_ua
        if p1xx_ts is not None:
            self.p1xx_ts = realtime(p1xx_ts)
        if p100_ts is not None:
            self.p100_ts = realtime(p100_ts)

    def conn(
        self,
        setup_ts: Any,
        connect_ts: Any,
        rtime: Any = None,
        origin: Optional[str] = None,
        *,
        remote_ua: Optional[str] = None,
        p1xx_ts: Any = None,
        p100_ts: Any = None,
    ) -> None:
        """The leg connected (200 OK): Start (if send_start) and the Alive timer (if lperiod).

        setup_ts: when the INVITE was sent/received; connect_ts: when the 200 came; rtime: the
        time of the event being reported (defaults to connect_ts), used for Acct-Delay-Time.
        """
        if self.crec:
            return
        self.crec = True
        self.setup_time = realtime(setup_ts)
        self.connect_time = realtime(connect_ts)
        self._connect_clock = self.reactor.seconds()
        self._note(remote_ua, p1xx_ts, p100_ts)
        if self.send_start:
            self._send("Start", self.connect_time if rtime is None else realtime(rtime))
        self._attributes.extend((("h323-voice-quality", 0), ("Acct-Terminate-Cause", "User-Request")))
        if self.lperiod is not None and self.lperiod > 0:
            self.el = Timeout(self._alive, self.lperiod, -1, reactor=self.reactor)

    def _alive(self) -> None:
        assert self.connect_time is not None
        # Elapsed time on the reactor's clock, so a test Clock drives the session time as well.
        now = self.connect_time + (self.reactor.seconds() - self._connect_clock)
        self._send("Alive", now, event_time=now)

    def disc(
        self,
        rtime: Any,
        origin: Optional[str] = None,
        result: int = 0,
        *,
        setup_ts: Any = None,
        connect_ts: Any = None,
        remote_ua: Optional[str] = None,
        p1xx_ts: Any = None,
        p100_ts: Any = None,
    ) -> None:
        """The leg ended at rtime: send the Stop (once).

        origin: 'caller', 'callee' (who hung up) or anything else (the B2BUA itself).
        result: the SIP code the call failed with (>= 400), or 0 / < 200 for a normal hang-up.
        A leg that never connected (no conn(), no connect_ts) gets session time 0.
        """
        if self.drec:
            return
        self.drec = True
        if self.el is not None:
            self.el.cancel()
            self.el = None
        disc_time = realtime(rtime)
        if self.setup_time is None:
            self.setup_time = realtime(setup_ts) if setup_ts is not None else disc_time
        if self.connect_time is None and connect_ts is not None:
            self.connect_time = realtime(connect_ts)
        self._note(remote_ua, p1xx_ts, p100_ts)
        self._send("Stop", disc_time, origin=origin, result=result)

    def ua_conn(self, ua: Any, rtime: Any, origin: Optional[str]) -> None:
        """`conn` for a Sippy-style UA's conn_cbs: reads ua.setup_ts, ua.connect_ts, ua.remote_ua,
        ua.p1xx_ts, ua.p100_ts."""
        self.conn(
            ua.setup_ts,
            ua.connect_ts,
            rtime,
            origin,
            remote_ua=getattr(ua, "remote_ua", None),
            p1xx_ts=getattr(ua, "p1xx_ts", None),
            p100_ts=getattr(ua, "p100_ts", None),
        )

    def ua_disc(self, ua: Any, rtime: Any, origin: Optional[str], result: int = 0) -> None:
        """`disc` for a Sippy-style UA's disc_cbs/fail_cbs."""
        self.disc(
            rtime,
            origin,
            result,
            setup_ts=getattr(ua, "setup_ts", None),
            connect_ts=getattr(ua, "connect_ts", None),
            remote_ua=getattr(ua, "remote_ua", None),
            p1xx_ts=getattr(ua, "p1xx_ts", None),
            p100_ts=getattr(ua, "p100_ts", None),
        )

    def build(
        self, rtype: str, now: float, origin: Optional[str] = None, result: int = 0
    ) -> list[tuple[str, Any]]:
        """The attributes of one record (`Start`, `Alive` or `Stop`) for an event at `now`."""
        assert self.setup_time is not None
        connected = self.connect_time is not None
        # A leg that never connected reports its connect time as the time it ended.
        connect_time = self.connect_time if self.connect_time is not None else now
        duration = now - connect_time if connected else 0.0
        if not self.ms_precision:
            duration = round(duration)
        attributes = list(self._attributes)
        if rtype != "Start":
            attributes.extend(
                (
                    ("h323-disconnect-time", cisco_time(connect_time + duration, self.ms_precision)),
                    ("Acct-Session-Time", round(duration)),
                    ("h323-disconnect-cause", h323_disconnect_cause(result)),
                )
            )
        if rtype == "Stop":
            attributes.append(("release-source", RELEASE_SOURCE.get(origin or "", RELEASE_SOURCE_INTERNAL)))
        attributes.extend(
            (
                ("h323-connect-time", cisco_time(connect_time, self.ms_precision)),
                ("h323-setup-time", cisco_time(self.setup_time, self.ms_precision)),
                ("Acct-Status-Type", rtype),
            )
        )
        if self.user_agent is not None:
            attributes.append(("h323-ivr-out", "sip_ua:" + self.user_agent))
        if self.p1xx_ts is not None:
            attributes.append(("alert-timepoint", cisco_time(self.p1xx_ts, self.ms_precision)))
        if self.p100_ts is not None:
            attributes.append(("provisional-timepoint", cisco_time(self.p100_ts, self.ms_precision)))
        return attributes

    def _send(
        self,
        rtype: str,
        now: float,
        origin: Optional[str] = None,
        result: int = 0,
        event_time: Optional[float] = None,
    ) -> None:
        if not self.complete:
            return
        attributes = self.build(rtype, now, origin, result)
        event_ts = now if event_time is None else event_time
        if self.logger is not None and self.logger.isEnabledFor(SIPLOG_INFO):
            self.logger.write(
                f"sending Acct {rtype} ({self.origin.capitalize()}):\n",
                format_attributes(attributes),
                call_id=self.sip_cid,
            )
        sent = time.monotonic()
        if self.spool is not None:
            assert self.sip_cid is not None
            self.spool.send_record(
                self.sip_cid, attributes, event_ts, lambda res: self._process_result(res, self.sip_cid, sent)
            )
            return
        # RFC 2866: how long after the event this record leaves the B2BUA.
        attributes.append(("Acct-Delay-Time", max(0, round(time.time() - event_ts))))
        self.radius_client.do_acct(attributes, self._process_result, self.sip_cid, sent)

    def _process_result(self, results: tuple[Any, int], sip_cid: Optional[str], btime: float) -> None:
        if self.logger is None:
            return
        rcode = results[1]
        level = SIPLOG_ERR if rcode == RESULT_NO_ANSWER else SIPLOG_INFO
        if not self.logger.isEnabledFor(level):
            return
        delay = time.monotonic() - btime
        if rcode == RESULT_ACCEPT:
            msg = f"Acct/{self.origin} request accepted (delay is {delay:.3f})\n"
        elif rcode == RESULT_NO_ANSWER:
            spooled = ", spooled" if self.spool is not None else ""
            msg = f"Error sending Acct/{self.origin} request (delay is {delay:.3f}){spooled}\n"
        else:
            msg = f"Acct/{self.origin} request rejected (delay is {delay:.3f})\n"
        self.logger.write(msg, call_id=sip_cid, level=level)
