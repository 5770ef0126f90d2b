"""Why a media relay step failed (no proxy online, no answer, an error reply)."""

from __future__ import annotations


class RtpProxyError(Exception):
    """The RTPproxy could not do what a call needed; the call fails cleanly with it.
    ``response``: what the caller is answered (503 unless the call itself is what no proxy can
    carry, e.g. WebRTC media without the proxy modules: 488)."""

    def __init__(self, message: str, response: tuple[int, str] = (503, "Service Unavailable")) -> None:
        super().__init__(message)
        self.response = response
